//! Connect command data, 1024 bytes (NVM Express over Fabrics 1.1, "Connect Command –
//! Data"; Linux `struct nvmf_connect_data`).
//!
//! | bytes | field |
//! |-------|-------|
//! | 15:0 | HOSTID, host identifier (UUID) |
//! | 17:16 | CNTLID, u16 (FFFFh: dynamic controller model) |
//! | 255:18 | reserved |
//! | 511:256 | SUBNQN, NVM subsystem NQN |
//! | 767:512 | HOSTNQN, host NQN |
//! | 1023:768 | reserved |
//!
//! NQNs are UTF-8, NUL-terminated, at most 223 bytes long (NVMe Base Specification 2.0
//! "NVMe Qualified Names"; Linux `NVMF_NQN_SIZE`). Decision: bytes after the terminator are ignored when
//! parsing (hosts zero them; the specification does not require it) and zeroed when
//! emitting.

use super::field::{check_len, check_zero, Field};
use super::view::{accessors, view};
use super::{Result, WireError};

/// Length of the Connect data in bytes.
pub const CONNECT_DATA_LEN: usize = 1024;
/// Size of an NQN field in the Connect data.
pub const NQN_FIELD_LEN: usize = 256;
/// Maximum length of an NQN in bytes, without the NUL terminator.
pub const NQN_MAX_LEN: usize = 223;

/// Byte offsets inside the Connect data.
pub mod field {
    use super::Field;
    /// Host Identifier, 16 bytes.
    pub const HOSTID: Field = 0..16;
    /// Controller ID, u16.
    pub const CNTLID: Field = 16..18;
    /// Reserved bytes 255:18.
    pub const RESERVED1: Field = 18..256;
    /// NVM Subsystem NQN, 256 bytes.
    pub const SUBNQN: Field = 256..512;
    /// Host NQN, 256 bytes.
    pub const HOSTNQN: Field = 512..768;
    /// Reserved bytes 1023:768.
    pub const RESERVED2: Field = 768..1024;
}

view!(
    /// A read/write view of the Connect data.
    ConnectData,
    CONNECT_DATA_LEN,
    "connect data"
);

accessors!(ConnectData {
    /// Controller ID.
    cntlid, set_cntlid: u16 @ field::CNTLID;
    /// The 256 bytes of the SUBNQN field.
    subnqn_field, subnqn_field_mut: [u8] @ field::SUBNQN;
    /// The 256 bytes of the HOSTNQN field.
    hostnqn_field, hostnqn_field_mut: [u8] @ field::HOSTNQN;
});

impl<T: AsRef<[u8]>> ConnectData<T> {
    /// Host Identifier.
    pub fn hostid(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id.copy_from_slice(&self.buffer.as_ref()[field::HOSTID]);
        id
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ConnectData<T> {
    /// Sets the Host Identifier.
    pub fn set_hostid(&mut self, value: &[u8; 16]) {
        self.buffer.as_mut()[field::HOSTID].copy_from_slice(value);
    }
}

/// Reads a NUL-terminated NQN from a 256-byte field.
fn parse_nqn(bytes: &[u8], name: &'static str) -> Result<String> {
    match bytes.iter().position(|&b| b == 0) {
        Some(len) if len > NQN_MAX_LEN => Err(WireError::NqnTooLong {
            field: name,
            len,
            max: NQN_MAX_LEN,
        }),
        Some(len) => core::str::from_utf8(&bytes[..len])
            .map(str::to_owned)
            .map_err(|_| WireError::NqnInvalid { field: name }),
        None => Err(WireError::NqnUnterminated {
            field: name,
            max: NQN_MAX_LEN,
        }),
    }
}

/// Writes `nqn`, its NUL terminator and zero padding into a 256-byte field.
fn emit_nqn(nqn: &str, out: &mut [u8], name: &'static str) -> Result<()> {
    if nqn.len() > NQN_MAX_LEN {
        return Err(WireError::NqnTooLong {
            field: name,
            len: nqn.len(),
            max: NQN_MAX_LEN,
        });
    }
    if nqn.as_bytes().contains(&0) {
        return Err(WireError::NqnInvalid { field: name });
    }
    out.fill(0);
    out[..nqn.len()].copy_from_slice(nqn.as_bytes());
    Ok(())
}

/// Parsed Connect data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ConnectDataRepr {
    /// Host Identifier (a UUID, in wire byte order).
    pub hostid: [u8; 16],
    /// Controller ID: FFFFh asks for a dynamic controller (required on the admin queue
    /// with the dynamic model); on an I/O queue, the ID returned by the admin Connect.
    pub cntlid: u16,
    /// NVM subsystem NQN.
    pub subnqn: String,
    /// Host NQN.
    pub hostnqn: String,
}

impl ConnectDataRepr {
    /// Parses the Connect data: reserved bytes must be zero, NQNs must be NUL-terminated
    /// UTF-8 of at most 223 bytes (errors name `subnqn` or `hostnqn`).
    pub fn parse<T: AsRef<[u8]>>(data: &ConnectData<T>) -> Result<ConnectDataRepr> {
        data.check_len()?;
        let b = data.buffer.as_ref();
        check_zero(b, field::RESERVED1, "connect data reserved bytes 255:18")?;
        check_zero(b, field::RESERVED2, "connect data reserved bytes 1023:768")?;
        Ok(ConnectDataRepr {
            hostid: data.hostid(),
            cntlid: data.cntlid(),
            subnqn: parse_nqn(data.subnqn_field(), "subnqn")?,
            hostnqn: parse_nqn(data.hostnqn_field(), "hostnqn")?,
        })
    }

    /// Parses the first 1024 bytes of `bytes`.
    pub fn parse_bytes(bytes: &[u8]) -> Result<ConnectDataRepr> {
        ConnectDataRepr::parse(&ConnectData::new_checked(bytes)?)
    }

    /// Length of the emitted data (1024).
    pub const fn buffer_len(&self) -> usize {
        CONNECT_DATA_LEN
    }

    /// Writes the data into the first 1024 bytes of `buf`, reserved bytes zeroed. Fails
    /// when `buf` is short or an NQN is too long or contains NUL.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("connect data", CONNECT_DATA_LEN, buf.len())?;
        let buf = &mut buf[..CONNECT_DATA_LEN];
        // Validate both NQNs before touching the buffer.
        let mut sub = [0u8; NQN_FIELD_LEN];
        let mut host = [0u8; NQN_FIELD_LEN];
        emit_nqn(&self.subnqn, &mut sub, "subnqn")?;
        emit_nqn(&self.hostnqn, &mut host, "hostnqn")?;
        buf.fill(0);
        let mut d = ConnectData::new_unchecked(buf);
        d.set_hostid(&self.hostid);
        d.set_cntlid(self.cntlid);
        d.subnqn_field_mut().copy_from_slice(&sub);
        d.hostnqn_field_mut().copy_from_slice(&host);
        Ok(())
    }

    /// The 1024 emitted bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut b = vec![0u8; CONNECT_DATA_LEN];
        self.emit(&mut b)?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::reserved;

    const SUB: &str = "nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
    const HOST: &str = "nqn.2014-08.org.nvmexpress:uuid:0c6d2c2e-2f4b-4a0f-9a57-000000000001";

    fn by_hand() -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        for (i, x) in b[0..16].iter_mut().enumerate() {
            *x = i as u8 + 1;
        }
        b[16] = 0xff;
        b[17] = 0xff;
        b[256..256 + SUB.len()].copy_from_slice(SUB.as_bytes());
        b[512..512 + HOST.len()].copy_from_slice(HOST.as_bytes());
        b
    }

    #[test]
    fn layout_by_hand() {
        let r = ConnectDataRepr::parse_bytes(&by_hand()).unwrap();
        assert_eq!(r.hostid[0], 1);
        assert_eq!(r.hostid[15], 16);
        assert_eq!(r.cntlid, 0xffff);
        assert_eq!(r.subnqn, SUB);
        assert_eq!(r.hostnqn, HOST);
        assert_eq!(r.to_bytes().unwrap(), by_hand());
        assert_eq!(field::SUBNQN.start, 256);
        assert_eq!(field::HOSTNQN.start, 512);
    }

    #[test]
    fn nqn_limits() {
        let mut b = by_hand();
        // Exactly 223 bytes and a terminator at 223: accepted.
        b[256..512].fill(0);
        b[256..256 + 223].fill(b'a');
        assert_eq!(ConnectDataRepr::parse_bytes(&b).unwrap().subnqn.len(), 223);
        // 224 bytes: too long.
        b[256 + 223] = b'a';
        assert_eq!(
            ConnectDataRepr::parse_bytes(&b),
            Err(WireError::NqnTooLong {
                field: "subnqn",
                len: 224,
                max: 223
            })
        );
        // No terminator in the whole field.
        b[512..768].fill(b'h');
        b[256..512].fill(0);
        assert_eq!(
            ConnectDataRepr::parse_bytes(&b),
            Err(WireError::NqnUnterminated {
                field: "hostnqn",
                max: 223
            })
        );
        // Not UTF-8.
        b[512..768].fill(0);
        b[512] = 0xff;
        assert_eq!(
            ConnectDataRepr::parse_bytes(&b),
            Err(WireError::NqnInvalid { field: "hostnqn" })
        );
        // Bytes after the terminator are ignored.
        let mut b = by_hand();
        b[700] = 0x55;
        assert_eq!(ConnectDataRepr::parse_bytes(&b).unwrap().hostnqn, HOST);
    }

    #[test]
    fn reserved_bytes() {
        for (at, what) in [
            (18, "connect data reserved bytes 255:18"),
            (1023, "connect data reserved bytes 1023:768"),
        ] {
            let mut b = by_hand();
            b[at] = 1;
            assert_eq!(reserved(ConnectDataRepr::parse_bytes(&b)), (what, at));
        }
    }

    #[test]
    fn emit_errors() {
        let r = ConnectDataRepr {
            subnqn: "x".repeat(224),
            ..Default::default()
        };
        assert_eq!(
            r.to_bytes(),
            Err(WireError::NqnTooLong {
                field: "subnqn",
                len: 224,
                max: 223
            })
        );
        let r = ConnectDataRepr {
            hostnqn: "a\0b".into(),
            ..Default::default()
        };
        assert_eq!(
            r.to_bytes(),
            Err(WireError::NqnInvalid { field: "hostnqn" })
        );
        let mut short = vec![0u8; 1023];
        assert!(ConnectDataRepr::default().emit(&mut short).is_err());
        for n in [0, 1, 17, 511, 1023] {
            assert_eq!(
                ConnectDataRepr::parse_bytes(&vec![0u8; n]),
                Err(WireError::Truncated {
                    what: "connect data",
                    need: 1024,
                    got: n
                })
            );
        }
    }
}
