//! Identify data structures (NVMe Base Specification 2.0, "Identify Controller Data
//! Structure", "Identify Namespace Data Structure" of the NVM Command Set Specification
//! 1.0, "Namespace Identification Descriptor"): the fields a host uses to bring up a
//! controller over Fabrics, as Linux `struct nvme_id_ctrl` / `nvme_id_ns` name them.
//!
//! Each structure is 4096 bytes. [`IdentifyControllerRepr`] and
//! [`IdentifyNamespaceRepr`] hold the fields listed in their `field` modules; `emit`
//! writes those fields and zeroes the rest, so `parse(emit(r)) == r`. Reserved and vendor
//! bytes are not checked on parse: a host reading Identify data ignores them.

use super::field::{
    check_len, get_u16, get_u32, get_u64, put_text, set_u16, set_u32, set_u64, text, Field,
};
use super::{Result, WireError};

/// Length of an Identify data structure.
pub const IDENTIFY_LEN: usize = 4096;

/// Field offsets of Identify Controller.
pub mod ctrl_field {
    use super::Field;
    /// PCI Vendor ID.
    pub const VID: Field = 0..2;
    /// PCI Subsystem Vendor ID.
    pub const SSVID: Field = 2..4;
    /// Serial Number (ASCII, space padded).
    pub const SN: Field = 4..24;
    /// Model Number (ASCII, space padded).
    pub const MN: Field = 24..64;
    /// Firmware Revision (ASCII, space padded).
    pub const FR: Field = 64..72;
    /// Recommended Arbitration Burst.
    pub const RAB: usize = 72;
    /// Controller Multi-Path I/O and Namespace Sharing Capabilities.
    pub const CMIC: usize = 76;
    /// Maximum Data Transfer Size (2^MDTS minimum pages; 0: no limit).
    pub const MDTS: usize = 77;
    /// Controller ID.
    pub const CNTLID: Field = 78..80;
    /// Version.
    pub const VER: Field = 80..84;
    /// Controller Type (1 I/O, 2 discovery, 3 administrative).
    pub const CNTRLTYPE: usize = 111;
    /// Asynchronous Event Request Limit (0's based).
    pub const AERL: usize = 259;
    /// Firmware Updates.
    pub const FRMW: usize = 260;
    /// Log Page Attributes.
    pub const LPA: usize = 261;
    /// Keep Alive Support (granularity, 100 ms units).
    pub const KAS: Field = 320..322;
    /// Submission Queue Entry Size (required and maximum, log2).
    pub const SQES: usize = 512;
    /// Completion Queue Entry Size (required and maximum, log2).
    pub const CQES: usize = 513;
    /// Maximum Outstanding Commands.
    pub const MAXCMD: Field = 514..516;
    /// Number of Namespaces (the highest nsid).
    pub const NN: Field = 516..520;
    /// Optional NVM Command Support.
    pub const ONCS: Field = 520..522;
    /// Volatile Write Cache.
    pub const VWC: usize = 525;
    /// SGL Support.
    pub const SGLS: Field = 536..540;
    /// NVM Subsystem NVMe Qualified Name (NUL padded).
    pub const SUBNQN: Field = 768..1024;
    /// I/O Queue Command Capsule Supported Size (16-byte units).
    pub const IOCCSZ: Field = 1792..1796;
    /// I/O Queue Response Capsule Supported Size (16-byte units).
    pub const IORCSZ: Field = 1796..1800;
    /// In Capsule Data Offset (16-byte units).
    pub const ICDOFF: Field = 1800..1802;
    /// Fabrics Controller Attributes.
    pub const FCATT: usize = 1802;
    /// Maximum SGL Data Block Descriptors.
    pub const MSDBD: usize = 1803;
}

/// Field offsets of Identify Namespace (NVM command set).
pub mod ns_field {
    use super::Field;
    /// Namespace Size, in logical blocks.
    pub const NSZE: Field = 0..8;
    /// Namespace Capacity.
    pub const NCAP: Field = 8..16;
    /// Namespace Utilization.
    pub const NUSE: Field = 16..24;
    /// Namespace Features.
    pub const NSFEAT: usize = 24;
    /// Number of LBA Formats (0's based).
    pub const NLBAF: usize = 25;
    /// Formatted LBA Size.
    pub const FLBAS: usize = 26;
    /// Metadata Capabilities.
    pub const MC: usize = 27;
    /// Namespace Multi-path I/O and Namespace Sharing Capabilities.
    pub const NMIC: usize = 30;
    /// Namespace Globally Unique Identifier.
    pub const NGUID: Field = 104..120;
    /// IEEE Extended Unique Identifier.
    pub const EUI64: Field = 120..128;
    /// LBA Format 0; format `i` is at `LBAF0 + 4 * i`.
    pub const LBAF0: usize = 128;
}

/// The Identify Controller fields a Fabrics host uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentifyControllerRepr {
    /// VID.
    pub vid: u16,
    /// SSVID.
    pub ssvid: u16,
    /// SN, without its padding.
    pub sn: String,
    /// MN, without its padding.
    pub mn: String,
    /// FR, without its padding.
    pub fr: String,
    /// RAB.
    pub rab: u8,
    /// CMIC.
    pub cmic: u8,
    /// MDTS.
    pub mdts: u8,
    /// CNTLID.
    pub cntlid: u16,
    /// VER.
    pub ver: u32,
    /// CNTRLTYPE.
    pub cntrltype: u8,
    /// AERL.
    pub aerl: u8,
    /// FRMW.
    pub frmw: u8,
    /// LPA.
    pub lpa: u8,
    /// KAS.
    pub kas: u16,
    /// SQES.
    pub sqes: u8,
    /// CQES.
    pub cqes: u8,
    /// MAXCMD.
    pub maxcmd: u16,
    /// NN.
    pub nn: u32,
    /// ONCS.
    pub oncs: u16,
    /// VWC.
    pub vwc: u8,
    /// SGLS.
    pub sgls: u32,
    /// SUBNQN, without its NUL padding.
    pub subnqn: String,
    /// IOCCSZ.
    pub ioccsz: u32,
    /// IORCSZ.
    pub iorcsz: u32,
    /// ICDOFF.
    pub icdoff: u16,
    /// FCATT.
    pub fcatt: u8,
    /// MSDBD.
    pub msdbd: u8,
}

impl IdentifyControllerRepr {
    /// Parses the fields from a 4096-byte structure.
    pub fn parse(b: &[u8]) -> Result<IdentifyControllerRepr> {
        use ctrl_field as f;
        check_len("Identify Controller", IDENTIFY_LEN, b.len())?;
        Ok(IdentifyControllerRepr {
            vid: get_u16(b, f::VID.start),
            ssvid: get_u16(b, f::SSVID.start),
            sn: text(&b[f::SN], b' '),
            mn: text(&b[f::MN], b' '),
            fr: text(&b[f::FR], b' '),
            rab: b[f::RAB],
            cmic: b[f::CMIC],
            mdts: b[f::MDTS],
            cntlid: get_u16(b, f::CNTLID.start),
            ver: get_u32(b, f::VER.start),
            cntrltype: b[f::CNTRLTYPE],
            aerl: b[f::AERL],
            frmw: b[f::FRMW],
            lpa: b[f::LPA],
            kas: get_u16(b, f::KAS.start),
            sqes: b[f::SQES],
            cqes: b[f::CQES],
            maxcmd: get_u16(b, f::MAXCMD.start),
            nn: get_u32(b, f::NN.start),
            oncs: get_u16(b, f::ONCS.start),
            vwc: b[f::VWC],
            sgls: get_u32(b, f::SGLS.start),
            subnqn: text(&b[f::SUBNQN], 0),
            ioccsz: get_u32(b, f::IOCCSZ.start),
            iorcsz: get_u32(b, f::IORCSZ.start),
            icdoff: get_u16(b, f::ICDOFF.start),
            fcatt: b[f::FCATT],
            msdbd: b[f::MSDBD],
        })
    }

    /// Writes the structure (4096 bytes; every other byte zero). Fails naming the field
    /// when a string does not fit.
    pub fn emit(&self) -> Result<Vec<u8>> {
        use ctrl_field as f;
        let mut b = vec![0u8; IDENTIFY_LEN];
        set_u16(&mut b, f::VID.start, self.vid);
        set_u16(&mut b, f::SSVID.start, self.ssvid);
        put_text(&mut b, f::SN, &self.sn, b' ', "SN")?;
        put_text(&mut b, f::MN, &self.mn, b' ', "MN")?;
        put_text(&mut b, f::FR, &self.fr, b' ', "FR")?;
        b[f::RAB] = self.rab;
        b[f::CMIC] = self.cmic;
        b[f::MDTS] = self.mdts;
        set_u16(&mut b, f::CNTLID.start, self.cntlid);
        set_u32(&mut b, f::VER.start, self.ver);
        b[f::CNTRLTYPE] = self.cntrltype;
        b[f::AERL] = self.aerl;
        b[f::FRMW] = self.frmw;
        b[f::LPA] = self.lpa;
        set_u16(&mut b, f::KAS.start, self.kas);
        b[f::SQES] = self.sqes;
        b[f::CQES] = self.cqes;
        set_u16(&mut b, f::MAXCMD.start, self.maxcmd);
        set_u32(&mut b, f::NN.start, self.nn);
        set_u16(&mut b, f::ONCS.start, self.oncs);
        b[f::VWC] = self.vwc;
        set_u32(&mut b, f::SGLS.start, self.sgls);
        put_text(&mut b, f::SUBNQN, &self.subnqn, 0, "SUBNQN")?;
        set_u32(&mut b, f::IOCCSZ.start, self.ioccsz);
        set_u32(&mut b, f::IORCSZ.start, self.iorcsz);
        set_u16(&mut b, f::ICDOFF.start, self.icdoff);
        b[f::FCATT] = self.fcatt;
        b[f::MSDBD] = self.msdbd;
        Ok(b)
    }
}

/// One LBA format of Identify Namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LbaFormatRepr {
    /// Metadata Size, bytes per block.
    pub ms: u16,
    /// LBA Data Size, log2 of the bytes per block.
    pub lbads: u8,
    /// Relative Performance (bits 1:0).
    pub rp: u8,
}

/// The Identify Namespace fields a host uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentifyNamespaceRepr {
    /// NSZE.
    pub nsze: u64,
    /// NCAP.
    pub ncap: u64,
    /// NUSE.
    pub nuse: u64,
    /// NSFEAT.
    pub nsfeat: u8,
    /// FLBAS.
    pub flbas: u8,
    /// MC.
    pub mc: u8,
    /// NMIC.
    pub nmic: u8,
    /// NGUID.
    pub nguid: [u8; 16],
    /// EUI64.
    pub eui64: [u8; 8],
    /// The LBA formats (NLBAF + 1 of them, at most 64).
    pub lbaf: Vec<LbaFormatRepr>,
}

impl IdentifyNamespaceRepr {
    /// Most LBA formats a namespace lists.
    pub const MAX_LBAF: usize = 64;

    /// Parses the fields from a 4096-byte structure.
    pub fn parse(b: &[u8]) -> Result<IdentifyNamespaceRepr> {
        use ns_field as f;
        check_len("Identify Namespace", IDENTIFY_LEN, b.len())?;
        let n = usize::from(b[f::NLBAF]) + 1;
        if n > Self::MAX_LBAF {
            return Err(WireError::BadValue {
                field: "NLBAF",
                value: b[f::NLBAF].into(),
            });
        }
        let lbaf = (0..n)
            .map(|i| {
                let at = f::LBAF0 + 4 * i;
                LbaFormatRepr {
                    ms: get_u16(b, at),
                    lbads: b[at + 2],
                    rp: b[at + 3] & 0b11,
                }
            })
            .collect();
        let mut nguid = [0u8; 16];
        nguid.copy_from_slice(&b[f::NGUID]);
        let mut eui64 = [0u8; 8];
        eui64.copy_from_slice(&b[f::EUI64]);
        Ok(IdentifyNamespaceRepr {
            nsze: get_u64(b, f::NSZE.start),
            ncap: get_u64(b, f::NCAP.start),
            nuse: get_u64(b, f::NUSE.start),
            nsfeat: b[f::NSFEAT],
            flbas: b[f::FLBAS],
            mc: b[f::MC],
            nmic: b[f::NMIC],
            nguid,
            eui64,
            lbaf,
        })
    }

    /// Writes the structure (4096 bytes). Fails naming NLBAF when there are no formats or
    /// more than [`Self::MAX_LBAF`], and RP when a relative performance is above 3.
    pub fn emit(&self) -> Result<Vec<u8>> {
        use ns_field as f;
        if self.lbaf.is_empty() || self.lbaf.len() > Self::MAX_LBAF {
            return Err(WireError::BadValue {
                field: "NLBAF",
                value: self.lbaf.len() as u64,
            });
        }
        let mut b = vec![0u8; IDENTIFY_LEN];
        set_u64(&mut b, f::NSZE.start, self.nsze);
        set_u64(&mut b, f::NCAP.start, self.ncap);
        set_u64(&mut b, f::NUSE.start, self.nuse);
        b[f::NSFEAT] = self.nsfeat;
        b[f::NLBAF] = (self.lbaf.len() - 1) as u8;
        b[f::FLBAS] = self.flbas;
        b[f::MC] = self.mc;
        b[f::NMIC] = self.nmic;
        b[f::NGUID].copy_from_slice(&self.nguid);
        b[f::EUI64].copy_from_slice(&self.eui64);
        for (i, l) in self.lbaf.iter().enumerate() {
            if l.rp > 3 {
                return Err(WireError::BadValue {
                    field: "RP",
                    value: l.rp.into(),
                });
            }
            let at = f::LBAF0 + 4 * i;
            set_u16(&mut b, at, l.ms);
            b[at + 2] = l.lbads;
            b[at + 3] = l.rp;
        }
        Ok(b)
    }

    /// The format FLBAS selects (bits 3:0, and 6:5 above 16 formats), if listed.
    pub fn current_format(&self) -> Option<LbaFormatRepr> {
        let i = usize::from(self.flbas & 0x0f) | (usize::from(self.flbas >> 5 & 0b11) << 4);
        self.lbaf.get(i).copied()
    }
}

/// Namespace Identifier Type of a descriptor: IEEE EUI-64.
pub const NIDT_EUI64: u8 = 1;
/// Namespace Identifier Type of a descriptor: NGUID.
pub const NIDT_NGUID: u8 = 2;
/// Namespace Identifier Type of a descriptor: UUID.
pub const NIDT_UUID: u8 = 3;

/// One Namespace Identification Descriptor (Identify CNS 03h): a 4-byte header (NIDT,
/// NIDL, 2 reserved) and NIDL bytes of identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsDescriptorRepr {
    /// NIDT.
    pub nidt: u8,
    /// The identifier (NIDL bytes).
    pub nid: Vec<u8>,
}

impl NsDescriptorRepr {
    /// Parses the descriptor list of a 4096-byte structure, up to the first NIDT 0.
    /// A descriptor running past the structure is [`WireError::Truncated`].
    pub fn parse_list(b: &[u8]) -> Result<Vec<NsDescriptorRepr>> {
        check_len(
            "Namespace Identification Descriptor list",
            IDENTIFY_LEN,
            b.len(),
        )?;
        let b = &b[..IDENTIFY_LEN];
        let mut out = Vec::new();
        let mut at = 0;
        while at + 4 <= b.len() && b[at] != 0 {
            let len = usize::from(b[at + 1]);
            check_len("Namespace Identification Descriptor", at + 4 + len, b.len())?;
            out.push(NsDescriptorRepr {
                nidt: b[at],
                nid: b[at + 4..at + 4 + len].to_vec(),
            });
            at += 4 + len;
        }
        Ok(out)
    }

    /// Writes a descriptor list into a 4096-byte structure. Fails naming NIDL when an
    /// identifier is longer than 255 bytes, or the list does not fit.
    pub fn emit_list(list: &[NsDescriptorRepr]) -> Result<Vec<u8>> {
        let mut b = vec![0u8; IDENTIFY_LEN];
        let mut at = 0;
        for d in list {
            if d.nid.len() > 255 || d.nidt == 0 {
                return Err(WireError::BadValue {
                    field: if d.nidt == 0 { "NIDT" } else { "NIDL" },
                    value: d.nid.len() as u64,
                });
            }
            check_len(
                "Namespace Identification Descriptor list",
                at + 4 + d.nid.len(),
                b.len(),
            )?;
            b[at] = d.nidt;
            b[at + 1] = d.nid.len() as u8;
            b[at + 4..at + 4 + d.nid.len()].copy_from_slice(&d.nid);
            at += 4 + d.nid.len();
        }
        Ok(b)
    }
}

/// The active namespace list (Identify CNS 02h): up to 1024 nsids, ascending, ended by
/// the first 0.
pub fn parse_nsid_list(b: &[u8]) -> Result<Vec<u32>> {
    check_len("Active Namespace ID list", IDENTIFY_LEN, b.len())?;
    Ok(b[..IDENTIFY_LEN]
        .chunks_exact(4)
        .map(|c| get_u32(c, 0))
        .take_while(|&id| id != 0)
        .collect())
}

/// Writes an active namespace list (at most 1024 nsids, none 0).
pub fn emit_nsid_list(ids: &[u32]) -> Result<Vec<u8>> {
    if ids.len() > IDENTIFY_LEN / 4 || ids.contains(&0) {
        return Err(WireError::BadValue {
            field: "NSID list",
            value: ids.len() as u64,
        });
    }
    let mut b = vec![0u8; IDENTIFY_LEN];
    for (i, id) in ids.iter().enumerate() {
        set_u32(&mut b, 4 * i, *id);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ascii(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("([!-~]([ -~]{{0,{}}}[!-~])?)?", max - 2)).unwrap()
    }

    prop_compose! {
        fn ctrl()(a in any::<(u16, u16, u8, u8, u8, u16, u32, u8, u8, u8)>(), lpa in any::<u8>(),
                  b in any::<(u16, u8, u8, u16, u32, u16, u8, u32)>(),
                  c in any::<(u32, u32, u16, u8, u8)>(),
                  sn in ascii(20), mn in ascii(40), fr in ascii(8), subnqn in ascii(255))
                  -> IdentifyControllerRepr {
            IdentifyControllerRepr {
                vid: a.0, ssvid: a.1, sn, mn, fr, rab: a.2, cmic: a.3, mdts: a.4, cntlid: a.5,
                ver: a.6, cntrltype: a.7, aerl: a.8, frmw: a.9, lpa, kas: b.0, sqes: b.1, cqes: b.2,
                maxcmd: b.3, nn: b.4, oncs: b.5, vwc: b.6, sgls: b.7, subnqn,
                ioccsz: c.0, iorcsz: c.1, icdoff: c.2, fcatt: c.3, msdbd: c.4,
            }
        }
    }

    prop_compose! {
        fn ns()(a in any::<(u64, u64, u64, u8, u8, u8, u8)>(), nguid in any::<[u8; 16]>(),
                eui64 in any::<[u8; 8]>(),
                lbaf in proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..4), 1..=64))
                -> IdentifyNamespaceRepr {
            IdentifyNamespaceRepr {
                nsze: a.0, ncap: a.1, nuse: a.2, nsfeat: a.3, flbas: a.4, mc: a.5, nmic: a.6,
                nguid, eui64,
                lbaf: lbaf.into_iter().map(|(ms, lbads, rp)| LbaFormatRepr { ms, lbads, rp }).collect(),
            }
        }
    }

    proptest! {
        #[test]
        fn controller_round_trips(r in ctrl()) {
            let b = r.emit().unwrap();
            prop_assert_eq!(b.len(), IDENTIFY_LEN);
            prop_assert_eq!(IdentifyControllerRepr::parse(&b).unwrap(), r);
        }

        #[test]
        fn namespace_round_trips(r in ns()) {
            let b = r.emit().unwrap();
            prop_assert_eq!(IdentifyNamespaceRepr::parse(&b).unwrap(), r);
        }

        #[test]
        fn descriptors_round_trip(list in proptest::collection::vec((1u8.., proptest::collection::vec(any::<u8>(), 0..40)), 0..20)) {
            let list: Vec<_> = list.into_iter().map(|(nidt, nid)| NsDescriptorRepr { nidt, nid }).collect();
            let b = NsDescriptorRepr::emit_list(&list).unwrap();
            prop_assert_eq!(NsDescriptorRepr::parse_list(&b).unwrap(), list);
        }

        #[test]
        fn nsid_lists_round_trip(ids in proptest::collection::vec(1u32.., 0..1024)) {
            prop_assert_eq!(parse_nsid_list(&emit_nsid_list(&ids).unwrap()).unwrap(), ids);
        }

        #[test]
        fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..4200)) {
            let _ = IdentifyControllerRepr::parse(&b);
            let _ = IdentifyNamespaceRepr::parse(&b);
            let _ = NsDescriptorRepr::parse_list(&b);
            let _ = parse_nsid_list(&b);
        }
    }

    #[test]
    fn short_buffers_name_the_structure() {
        let e = IdentifyControllerRepr::parse(&[0; 100]).unwrap_err();
        assert_eq!(
            e,
            WireError::Truncated {
                what: "Identify Controller",
                need: 4096,
                got: 100
            }
        );
        // Fifteen descriptors of 255 bytes, then one that runs past the structure.
        let mut b = vec![0u8; IDENTIFY_LEN];
        for i in 0..16 {
            b[i * 259] = NIDT_UUID;
            b[i * 259 + 1] = 255;
        }
        assert!(matches!(
            NsDescriptorRepr::parse_list(&b),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn a_string_too_long_names_its_field() {
        let r = IdentifyControllerRepr {
            sn: "x".repeat(21),
            ..Default::default()
        };
        assert_eq!(
            r.emit().unwrap_err(),
            WireError::BadValue {
                field: "SN",
                value: 21
            }
        );
    }
}
