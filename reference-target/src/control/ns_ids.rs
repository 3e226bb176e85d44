//! A namespace's identifiers (NGUID, EUI-64, UUID): set in the configuration
//! (`[[subsystem.namespace]] uuid = "…"`, `nguid`, `eui64`), else derived from the subsystem
//! NQN and the nsid so that they are the same on every run of one configuration (Linux keys
//! `/dev/disk/by-id` names and multipath on them). Identify Namespace reports the NGUID and
//! EUI-64, the Namespace Identification Descriptor list (CNS 03h) each identifier the
//! namespace has.

/// The identifiers a namespace's configuration sets (each `None`: not set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NamespaceIds {
    /// UUID (RFC 9562 byte order, as written).
    pub uuid: Option<[u8; 16]>,
    /// Namespace Globally Unique Identifier.
    pub nguid: Option<[u8; 16]>,
    /// IEEE Extended Unique Identifier.
    pub eui64: Option<[u8; 8]>,
}

/// The hex digits of `s` as `N` bytes; `-` separators are skipped where `dashes` allows
/// them (their places, as byte offsets into the digits); the error says what is wrong.
fn hex<const N: usize>(s: &str, dashes: &[usize]) -> Result<[u8; N], String> {
    let mut digits = String::with_capacity(2 * N);
    for (i, c) in s.chars().enumerate() {
        if c == '-' {
            if !dashes.contains(&digits.len()) {
                return Err(format!("{s:?}: a `-` at character {}", i + 1));
            }
            continue;
        }
        if !c.is_ascii_hexdigit() {
            return Err(format!("{s:?}: {c:?} is not a hex digit"));
        }
        digits.push(c);
    }
    if digits.len() != 2 * N {
        return Err(format!(
            "{s:?}: {} hex digits, expected {}",
            digits.len(),
            2 * N
        ));
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("{s:?}: not hex"))?;
    }
    Ok(out)
}

/// A UUID as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (or its 32 digits without dashes).
pub fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let dashed = s.contains('-');
    let u: [u8; 16] = hex(s, &[8, 12, 16, 20])?;
    if dashed && s.matches('-').count() != 4 {
        return Err(format!(
            "{s:?}: expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
        ));
    }
    if u == [0; 16] {
        return Err(format!("{s:?}: the nil UUID identifies nothing"));
    }
    Ok(u)
}

/// `N` bytes as `2N` hex digits (dashes allowed between bytes), not all zero: `what`
/// names the identifier in the error.
fn parse_bytes<const N: usize>(s: &str, what: &str) -> Result<[u8; N], String> {
    let every: Vec<usize> = (1..N).map(|i| 2 * i).collect();
    let v: [u8; N] = hex(s, &every)?;
    if v == [0; N] {
        return Err(format!("{s:?}: {what} of zeroes means none"));
    }
    Ok(v)
}

/// An NGUID: 32 hex digits (dashes anywhere between bytes allowed).
pub fn parse_nguid(s: &str) -> Result<[u8; 16], String> {
    parse_bytes(s, "an NGUID")
}

/// An EUI-64: 16 hex digits (dashes between bytes allowed).
pub fn parse_eui64(s: &str) -> Result<[u8; 8], String> {
    parse_bytes(s, "an EUI-64")
}

/// The NGUID and UUID a namespace without configured ones gets: FNV-1a of the subsystem
/// NQN and the nsid, so they are the same on every run and differ between namespaces and
/// subsystems. The UUID is a version 8 (custom) UUID.
pub fn derived(nqn: &str, nsid: u32) -> ([u8; 16], [u8; 16]) {
    let fnv = |basis: u64| {
        let mut h = basis;
        for b in nqn.bytes().chain(nsid.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let mut nguid = [0u8; 16];
    nguid[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    nguid[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&fnv(0x8422_2325_cbf2_9ce4).to_be_bytes());
    uuid[8..].copy_from_slice(&fnv(0x07bb_0142_6c62_272e).to_be_bytes());
    uuid[6] = (uuid[6] & 0x0f) | 0x80;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    (nguid, uuid)
}

impl NamespaceIds {
    /// What namespace `nsid` of subsystem `nqn` reports: the configured identifiers, the
    /// derived NGUID and UUID where none is configured; the EUI-64 only when configured.
    pub fn reported(&self, nqn: &str, nsid: u32) -> NamespaceIds {
        let (nguid, uuid) = derived(nqn, nsid);
        NamespaceIds {
            uuid: Some(self.uuid.unwrap_or(uuid)),
            nguid: Some(self.nguid.unwrap_or(nguid)),
            eui64: self.eui64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_parse_and_bad_ones_say_why() {
        let u = parse_uuid("0f4c2a1e-9b3d-4c5e-8a7f-1b2c3d4e5f60").unwrap();
        assert_eq!(u[0], 0x0f);
        assert_eq!(u[15], 0x60);
        assert_eq!(parse_uuid("0f4c2a1e9b3d4c5e8a7f1b2c3d4e5f60"), Ok(u));
        for (bad, says) in [
            ("0f4c2a1e-9b3d-4c5e-8a7f", "hex digits"),
            ("0f4c2a1e-9b3d4c5e-8a7f-1b2c3d4e5f60", "expected xxxxxxxx"),
            ("0f4c2a1e9-b3d-4c5e-8a7f-1b2c3d4e5f60", "a `-`"),
            ("0g4c2a1e-9b3d-4c5e-8a7f-1b2c3d4e5f60", "not a hex digit"),
            ("00000000-0000-0000-0000-000000000000", "nil UUID"),
        ] {
            let e = parse_uuid(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert_eq!(
            parse_nguid("00112233445566778899aabbccddeeff").unwrap()[15],
            0xff
        );
        assert!(parse_nguid("0011").unwrap_err().contains("expected 32"));
        assert_eq!(parse_eui64("00-11-22-33-44-55-66-77").unwrap()[7], 0x77);
        assert!(parse_eui64("0000000000000000")
            .unwrap_err()
            .contains("zeroes"));
    }

    #[test]
    fn configured_identifiers_win_and_derived_ones_are_stable() {
        let (n1, u1) = derived("nqn.a", 1);
        assert_eq!(derived("nqn.a", 1), (n1, u1));
        assert_ne!(derived("nqn.a", 2).0, n1);
        assert_eq!(u1[6] >> 4, 8, "a version 8 UUID");
        let none = NamespaceIds::default().reported("nqn.a", 1);
        assert_eq!(
            (none.nguid, none.uuid, none.eui64),
            (Some(n1), Some(u1), None)
        );
        let set = NamespaceIds {
            uuid: Some([7; 16]),
            nguid: None,
            eui64: Some([9; 8]),
        };
        let r = set.reported("nqn.a", 1);
        assert_eq!(
            (r.uuid, r.nguid, r.eui64),
            (Some([7; 16]), Some(n1), Some([9; 8]))
        );
    }
}

#[cfg(test)]
mod config_tests {
    use crate::control::Config;

    fn config(ns: &str) -> String {
        format!(
            "[[subsystem]]\nnqn = \"nqn.2026-12.test:a\"\nallow_any_host = true\n\n\
             [[subsystem.namespace]]\nnsid = 1\nsize = 4096\n{ns}\n\
             [[subsystem.namespace]]\nnsid = 2\nsize = 4096\n"
        )
    }

    #[test]
    fn the_configuration_gives_identifiers_and_names_a_bad_one() {
        let c = Config::parse(
            "t",
            &config(
                "uuid = \"0f4c2a1e-9b3d-4c5e-8a7f-1b2c3d4e5f60\"\neui64 = \"0a1b2c3d4e5f6071\"\n",
            ),
        )
        .unwrap();
        let ids = c.subsystems[0].namespaces[0].ids;
        assert_eq!(ids.uuid.unwrap()[0], 0x0f);
        assert_eq!(ids.eui64.unwrap()[7], 0x71);
        assert_eq!(ids.nguid, None);
        assert_eq!(c.subsystems[0].namespaces[1].ids, Default::default());
        let e = Config::parse("t", &config("nguid = \"0011\"\n")).unwrap_err();
        assert_eq!(e.field, "subsystem.namespace.nguid");
        assert!(e.message.contains("expected 32"), "{e}");
        let twice = config("eui64 = \"0a1b2c3d4e5f6071\"\n").replace(
            "nsid = 2\n",
            "nsid = 2\neui64 = \"0a-1b-2c-3d-4e-5f-60-71\"\n",
        );
        let e = Config::parse("t", &twice).unwrap_err();
        assert_eq!(e.field, "subsystem.namespace.eui64");
        assert!(e.message.contains("another namespace"), "{e}");
        assert!(Config::parse("t", &config("uuid = 7\n")).is_err());
    }
}
