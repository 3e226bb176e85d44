//! Tests of `sqe`.

use super::*;
use crate::wire::sgl::SGL_ID_KEYED;
use crate::wire::testing::reserved;

/// A write of 8 blocks at LBA 0x1_0000_0010 with a keyed SGL, written by hand.
fn write_bytes() -> [u8; 64] {
    let mut b = [0u8; 64];
    b[0] = 0x01; // opcode Write
    b[1] = 0x40; // PSDT 01b
    b[2..4].copy_from_slice(&0xBEEFu16.to_le_bytes()); // CID
    b[4..8].copy_from_slice(&7u32.to_le_bytes()); // NSID
    b[24..32].copy_from_slice(&0x7f00_0000_1000u64.to_le_bytes()); // SGL address
    b[32..35].copy_from_slice(&[0x00, 0x10, 0x00]); // SGL length 4096
    b[35..39].copy_from_slice(&0x1234_5678u32.to_le_bytes()); // SGL key
    b[39] = SGL_ID_KEYED;
    b[40..44].copy_from_slice(&0x10u32.to_le_bytes()); // SLBA low
    b[44..48].copy_from_slice(&0x1u32.to_le_bytes()); // SLBA high
    b[48..52].copy_from_slice(&(7u32 | 1 << 30).to_le_bytes()); // NLB 7 (8 blocks), FUA
    b
}

#[test]
fn write_by_hand() {
    let r = SqeRepr::parse_bytes(&write_bytes()).unwrap();
    assert_eq!(r.opcode(), 0x01);
    assert_eq!(r.cid, 0xBEEF);
    assert_eq!(r.nsid, 7);
    assert_eq!(r.psdt, Psdt::SglMptrContiguous);
    assert_eq!(
        r.sgl1(),
        Some(&SglRepr::keyed(0x7f00_0000_1000, 4096, 0x1234_5678))
    );
    let SqeCommand::Write(w) = r.command else {
        panic!("not a write: {:?}", r.command)
    };
    assert_eq!(w.slba, 0x1_0000_0010);
    assert_eq!(w.nlb, 7);
    assert_eq!(w.blocks(), 8);
    assert!(w.fua);
    assert!(!w.lr);
    assert_eq!(r.to_bytes().unwrap(), write_bytes());
}

#[test]
fn emit_offsets() {
    let cmd = RwCommand {
        lr: true,
        prinfo: 0b1001,
        dsm: 0x07,
        ilbrt: 0xAABB_CCDD,
        lbat: 0x1122,
        lbatm: 0x3344,
        ..RwCommand::new(0x0102_0304_0506_0708, 256)
    };
    let r = SqeRepr::new(3, 1, SqeCommand::Read(cmd), SglRepr::in_capsule(0, 0));
    let b = r.to_bytes().unwrap();
    assert_eq!(b[0], 0x02);
    assert_eq!(b[1], 0x40);
    assert_eq!(&b[2..4], &[3, 0]);
    assert_eq!(&b[4..8], &[1, 0, 0, 0]);
    assert_eq!(b[39], 0x01);
    assert_eq!(&b[40..48], &[8, 7, 6, 5, 4, 3, 2, 1]);
    // CDW12: NLB 255, PRINFO 1001b at 29:26, LR bit 31.
    assert_eq!(
        u32::from_le_bytes(b[48..52].try_into().unwrap()),
        255 | 0b1001 << 26 | 1 << 31
    );
    assert_eq!(&b[52..56], &[7, 0, 0, 0]);
    assert_eq!(&b[56..60], &[0xDD, 0xCC, 0xBB, 0xAA]);
    assert_eq!(&b[60..64], &[0x22, 0x11, 0x44, 0x33]);
}

#[test]
fn write_zeroes_deac() {
    let mut b = [0u8; 64];
    b[0] = 0x08;
    b[1] = 0x40;
    b[39] = SGL_ID_KEYED; // the null keyed SGL Linux sends for commands without data
    b[48..52].copy_from_slice(&(15u32 | 1 << 25).to_le_bytes());
    let r = SqeRepr::parse_bytes(&b).unwrap();
    assert_eq!(
        r.command,
        SqeCommand::WriteZeroes(WriteZeroesCommand {
            nlb: 15,
            deac: true,
            ..Default::default()
        })
    );
    assert_eq!(r.to_bytes().unwrap(), b);
    b[50] = 0x01; // CDW12 bit 16: reserved
    assert_eq!(
        reserved(SqeRepr::parse_bytes(&b)),
        ("write zeroes cdw12 reserved bits 23:16", 50)
    );
    b[50] = 0;
    b[53] = 1; // CDW13 reserved
    assert_eq!(reserved(SqeRepr::parse_bytes(&b)).1, 53);
}

#[test]
fn dataset_management() {
    let mut b = [0u8; 64];
    b[0] = 0x09;
    b[1] = 0x40;
    b[39] = 0x01;
    b[32..36].copy_from_slice(&64u32.to_le_bytes());
    b[40] = 3; // NR = 3 -> 4 ranges
    b[44] = 0b100; // AD
    let r = SqeRepr::parse_bytes(&b).unwrap();
    let SqeCommand::DatasetManagement(d) = r.command else {
        panic!()
    };
    assert_eq!(d.ranges(), 4);
    assert!(d.ad && !d.idr && !d.idw);
    assert_eq!(r.to_bytes().unwrap(), b);
    b[41] = 1;
    assert_eq!(
        reserved(SqeRepr::parse_bytes(&b)),
        ("dsm cdw10 reserved bits 31:8", 41)
    );
    b[41] = 0;
    b[44] = 0b1000;
    assert!(SqeRepr::parse_bytes(&b).is_err());
    b[44] = 0;
    b[60] = 1;
    assert_eq!(
        reserved(SqeRepr::parse_bytes(&b)),
        ("dsm cdw12..15 (reserved)", 60)
    );
}

#[test]
fn flush_and_reserved_bits() {
    let r = SqeRepr::new(1, 1, SqeCommand::Flush, SglRepr::keyed(0, 0, 0));
    let mut b = r.to_bytes().unwrap();
    assert_eq!(b[0], 0x00);
    assert_eq!(SqeRepr::parse_bytes(&b).unwrap(), r);
    b[44] = 1;
    assert_eq!(
        reserved(SqeRepr::parse_bytes(&b)),
        ("flush cdw10..15 (reserved)", 44)
    );
    b[44] = 0;
    b[1] |= 0x04;
    assert_eq!(
        reserved(SqeRepr::parse_bytes(&b)),
        ("sqe cdw0 reserved bits 13:10", 1)
    );
}

#[test]
fn read_reserved_fields() {
    let r = SqeRepr::new(
        1,
        1,
        SqeCommand::Read(RwCommand::new(0, 1)),
        SglRepr::keyed(0, 512, 1),
    );
    let mut b = r.to_bytes().unwrap();
    b[50] = 0x10; // CDW12 bit 20: DTYPE, reserved for Read
    assert_eq!(reserved(SqeRepr::parse_bytes(&b)).1, 50);
    b[0] = 0x01; // ...but a Write may carry a directive type
    let w = SqeRepr::parse_bytes(&b).unwrap();
    let SqeCommand::Write(c) = w.command else {
        panic!()
    };
    assert_eq!(c.dtype, 1);
    b[51] = 0x02; // CDW12 bit 25: reserved
    assert_eq!(reserved(SqeRepr::parse_bytes(&b)).1, 51);
    let bad = RwCommand {
        dspec: 1,
        ..RwCommand::new(0, 1)
    };
    let r = SqeRepr::new(1, 1, SqeCommand::Read(bad), SglRepr::keyed(0, 0, 0));
    assert!(r.to_bytes().is_err());
}

#[test]
fn prp_and_reserved_psdt_are_raw() {
    let mut b = write_bytes();
    b[1] = 0x00; // PSDT 00b: PRPs
    let r = SqeRepr::parse_bytes(&b).unwrap();
    assert_eq!(r.psdt, Psdt::Prp);
    let DataPointer::Raw(raw) = r.dptr else {
        panic!()
    };
    assert_eq!(&raw[..], &b[24..40]);
    assert_eq!(r.to_bytes().unwrap(), b);
    b[1] = 0xC3; // PSDT 11b, FUSE 11b: reserved values, parsed for the target to judge
    let r = SqeRepr::parse_bytes(&b).unwrap();
    assert_eq!(r.psdt, Psdt::Reserved);
    assert_eq!(r.fuse, Fuse::Reserved);
    assert_eq!(r.to_bytes().unwrap(), b);
}

#[test]
fn psdt_must_match_dptr() {
    let mut r = SqeRepr::new(1, 1, SqeCommand::Flush, SglRepr::keyed(0, 0, 0));
    r.psdt = Psdt::Prp;
    assert!(matches!(
        r.to_bytes(),
        Err(WireError::BadValue { value: 0, .. })
    ));
}

#[test]
fn invalid_sgl_is_an_error() {
    let mut b = write_bytes();
    b[39] = 0x5a;
    assert_eq!(
        SqeRepr::parse_bytes(&b),
        Err(WireError::BadValue {
            field: "sgl.type",
            value: 5
        })
    );
    // Without SGL (PSDT 00b) the same bytes are just PRPs.
    b[1] = 0;
    assert!(SqeRepr::parse_bytes(&b).is_ok());
}

#[test]
fn admin_opcodes_parse_raw() {
    let mut b = [0u8; 64];
    b[0] = 0x06; // Identify
    b[1] = 0x40;
    b[39] = 0x40;
    b[40] = 0x01; // CNS 1
    let r = SqeRepr::parse_raw(&Sqe::new_checked(&b[..]).unwrap()).unwrap();
    assert_eq!(
        r.command,
        SqeCommand::Other {
            opcode: 0x06,
            cdw: [1, 0, 0, 0, 0, 0]
        }
    );
    assert_eq!(r.to_bytes().unwrap(), b);
    // Get Log Page (02h) on the admin queue is Read on an I/O queue.
    b[0] = 0x02;
    b[40..44].copy_from_slice(&0x00ff_0002u32.to_le_bytes());
    assert!(SqeRepr::parse_raw(&Sqe::new_checked(&b[..]).unwrap()).is_ok());
}

#[test]
fn truncated() {
    let b = write_bytes();
    for n in 0..64 {
        assert_eq!(
            SqeRepr::parse_bytes(&b[..n]),
            Err(WireError::Truncated {
                what: "sqe",
                need: 64,
                got: n
            })
        );
    }
    let mut short = [0u8; 63];
    assert!(SqeRepr::parse_bytes(&b).unwrap().emit(&mut short).is_err());
}

#[test]
fn rw_new_counts_blocks() {
    assert_eq!(RwCommand::new(0, 1).nlb, 0);
    assert_eq!(RwCommand::new(0, 8).blocks(), 8);
    assert_eq!(RwCommand::new(0, 0x1_0000).nlb, 0xffff);
    assert_eq!(RwCommand::new(0, 0).nlb, 0);
    assert_eq!(RwCommand::new(0, 0x2_0000).nlb, 0xffff);
}

#[test]
fn view_accessors() {
    let mut b = write_bytes();
    let mut v = Sqe::new_checked(&mut b[..]).unwrap();
    assert_eq!(v.cdw(10), 0x10);
    v.set_fuse(Fuse::First);
    v.set_psdt(Psdt::SglMptrSegment);
    assert_eq!(v.flags(), 0x81);
    v.set_cdw(15, 9);
    assert_eq!(v.cdw(15), 9);
    assert_eq!(v.sgl1().identifier(), SGL_ID_KEYED);
    assert_eq!(v.mptr(), 0);
    assert_eq!(v.into_inner()[60], 9);
}
