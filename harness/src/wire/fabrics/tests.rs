//! Tests of `fabrics`.

use super::*;
use crate::wire::connect_data::field as cd;
use crate::wire::sgl::{SGL_ID_IN_CAPSULE, SGL_ID_KEYED};
use crate::wire::testing::{reserved, with_byte};

#[test]
fn connect_by_hand() {
    let mut b = [0u8; 64];
    b[0] = 0x7f;
    b[1] = 0x40; // PSDT 01b as Linux sends it
    b[2..4].copy_from_slice(&0x0005u16.to_le_bytes()); // CID
    b[4] = 0x01; // Connect
    b[32..36].copy_from_slice(&1024u32.to_le_bytes()); // SGL length
    b[39] = SGL_ID_IN_CAPSULE;
    b[40..42].copy_from_slice(&0u16.to_le_bytes()); // RECFMT
    b[42..44].copy_from_slice(&3u16.to_le_bytes()); // QID
    b[44..46].copy_from_slice(&127u16.to_le_bytes()); // SQSIZE
    b[46] = CATTR_DISABLE_SQFLOW;
    b[48..52].copy_from_slice(&0u32.to_le_bytes()); // KATO
    let r = FabricsRepr::parse_bytes(&b).unwrap();
    let expect = ConnectRepr {
        cattr: CATTR_DISABLE_SQFLOW,
        ..ConnectRepr::new(5, 3, 127, 0)
    };
    assert_eq!(r, FabricsRepr::Connect(expect));
    assert_eq!(r.to_bytes().unwrap(), b);
}

#[test]
fn connect_emit_offsets() {
    let r = FabricsRepr::Connect(ConnectRepr {
        recfmt: 0x0102,
        sgl1: SglRepr::keyed(0xaa, 1024, 0xbb),
        ..ConnectRepr::new(0x1234, 0x0304, 0x0506, 0x0708_090a)
    });
    let b = r.to_bytes().unwrap();
    assert_eq!(b[field::OPCODE], 0x7f);
    assert_eq!(b[field::FCTYPE], 0x01);
    assert_eq!(&b[2..4], &[0x34, 0x12]);
    assert_eq!(b[39], SGL_ID_KEYED);
    assert_eq!(&b[40..42], &[0x02, 0x01]);
    assert_eq!(&b[42..44], &[0x04, 0x03]);
    assert_eq!(&b[44..46], &[0x06, 0x05]);
    assert_eq!(&b[48..52], &[0x0a, 0x09, 0x08, 0x07]);
    assert_eq!(field::CONNECT_QID.start, 42);
    assert_eq!(field::CONNECT_SQSIZE.start, 44);
    assert_eq!(field::CONNECT_CATTR, 46);
    assert_eq!(field::CONNECT_KATO.start, 48);
}

#[test]
fn property_get_set_by_hand() {
    // Property Get of CSTS (1Ch, 4 bytes) with Linux's null keyed SGL.
    let mut b = [0u8; 64];
    b[0] = 0x7f;
    b[1] = 0x40;
    b[2] = 9;
    b[4] = 0x04;
    b[39] = SGL_ID_KEYED;
    b[40] = 0; // 4 bytes
    b[44..48].copy_from_slice(&0x1cu32.to_le_bytes());
    let r = FabricsRepr::parse_bytes(&b).unwrap();
    assert_eq!(
        r,
        FabricsRepr::PropertyGet(PropertyGetRepr {
            psdt: Psdt::SglMptrContiguous,
            cid: 9,
            sgl1: SglRepr::keyed(0, 0, 0),
            size: PropertySize::Four,
            offset: 0x1c,
        })
    );
    assert_eq!(r.to_bytes().unwrap(), b);

    // Property Set of CC (14h, 4 bytes) = 0x00460001.
    b[4] = 0x00;
    b[48..56].copy_from_slice(&0x0046_0001u64.to_le_bytes());
    b[44..48].copy_from_slice(&0x14u32.to_le_bytes());
    let r = FabricsRepr::parse_bytes(&b).unwrap();
    let FabricsRepr::PropertySet(s) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        (s.offset, s.value, s.size),
        (0x14, 0x0046_0001, PropertySize::Four)
    );
    assert_eq!(r.to_bytes().unwrap(), b);

    // ...the same bytes are reserved in a Property Get.
    b[4] = 0x04;
    assert_eq!(
        reserved(FabricsRepr::parse_bytes(&b)),
        ("property get reserved bytes 63:48", 48)
    );
}

#[test]
fn property_attrib() {
    let r = FabricsRepr::PropertyGet(PropertyGetRepr {
        psdt: Psdt::SglMptrContiguous,
        cid: 1,
        sgl1: SglRepr::keyed(0, 0, 0),
        size: PropertySize::Eight,
        offset: 0,
    });
    let mut b = r.to_bytes().unwrap();
    assert_eq!(b[40], 1);
    b[40] = 2;
    assert_eq!(
        FabricsRepr::parse_bytes(&b),
        Err(WireError::BadValue {
            field: "property attrib.size",
            value: 2
        })
    );
    b[40] = 0x08;
    assert_eq!(reserved(FabricsRepr::parse_bytes(&b)).1, 40);
}

#[test]
fn rejections() {
    let good = FabricsRepr::Connect(ConnectRepr::new(1, 0, 31, 120_000))
        .to_bytes()
        .unwrap();
    let parse_with = |at, value| FabricsRepr::parse_bytes(&with_byte(good, at, value));
    // Byte 4 = 05h is Authentication Send: known but not parsed here.
    for (at, value, field) in [
        (0, 0x06, "opcode"),
        (4, 0x02, "fctype"),
        (4, 0x05, "fctype"),
    ] {
        assert_eq!(
            parse_with(at, value),
            Err(WireError::BadValue {
                field,
                value: value.into()
            })
        );
    }
    assert_eq!(
        reserved(parse_with(10, 1)),
        ("fabrics reserved bytes 23:5", 10)
    );
    for (at, value) in [(47, 1), (63, 1), (1, 0x41)] {
        assert_eq!(reserved(parse_with(at, value)).1, at);
    }
    // A segment with an undefined subtype.
    assert!(matches!(
        parse_with(39, 0x22),
        Err(WireError::BadValue { .. })
    ));
    for n in 0..64 {
        assert!(matches!(
            FabricsRepr::parse_bytes(&good[..n]),
            Err(WireError::Truncated { need: 64, .. })
        ));
    }
}

#[test]
fn connect_response_dw0() {
    // Linux target: IPO_IATTR_CONNECT_DATA(cntlid) = 1 << 16 | 16.
    let p = InvalidParam::data(cd::CNTLID.start);
    assert_eq!(p.dw0(), 0x0001_0010);
    // IPO_IATTR_CONNECT_SQE(qid) = 42.
    assert_eq!(InvalidParam::sqe(field::CONNECT_QID.start).dw0(), 42);
    assert_eq!(InvalidParam::data(cd::SUBNQN.start).dw0(), 0x0001_0100);
    assert_eq!(InvalidParam::data(cd::HOSTNQN.start).dw0(), 0x0001_0200);
    assert_eq!(
        ConnectResponse::decode(Status::CONNECT_INVALID_PARAMETERS.with_dnr(), 0x0001_0010),
        Ok(ConnectResponse::InvalidParameters(p))
    );
    assert_eq!(
        ConnectResponse::decode(Status::CONNECT_INVALID_PARAMETERS, 0x0002_0000),
        Err(WireError::Reserved {
            what: "connect response dw0 reserved bits 31:17",
            offset: 2
        })
    );
    let ok = ConnectResponse::decode(Status::SUCCESS, 0x0000_0007).unwrap();
    assert_eq!(
        ok,
        ConnectResponse::Success(ConnectSuccess {
            cntlid: 7,
            authreq: 0
        })
    );
    assert_eq!(ok.dw0(), 7);
    let busy = ConnectResponse::decode(Status::CONNECT_CONTROLLER_BUSY, 0xffff_ffff).unwrap();
    assert_eq!(busy.status(), Status::CONNECT_CONTROLLER_BUSY);
    assert_eq!(busy.dw0(), 0xffff_ffff);
}
