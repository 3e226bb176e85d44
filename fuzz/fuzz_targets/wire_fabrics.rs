//! Fabrics commands (`FabricsRepr::parse`: Connect, Property Get, Property Set) on any
//! bytes: never panic; emit(parse(x)) parses back to the same repr. Also the Connect
//! response's DW0 decoders (`ConnectResponse::decode`, `InvalidParam::from_dw0`,
//! `ConnectSuccess::from_dw0`) on the first 6 bytes taken as status field + DW0.
#![no_main]

use harness::wire::{
    ConnectResponse, ConnectSuccess, FabricsCmd, FabricsRepr, InvalidParam, Status,
};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::{read_view, roundtrip_repr};

fuzz_target!(|data: &[u8]| {
    let r = roundtrip_repr::<FabricsRepr>("fabrics", data);
    if let Some(r) = r {
        let _ = (r.fctype().name(), r.cid());
    }
    read_view!(FabricsCmd, data; opcode, flags, psdt, cid, fctype, sgl1);
    read_view!(FabricsCmd, data; recfmt, qid, sqsize, cattr, kato, attrib, ofst, value);
    if data.len() >= 6 {
        let status = Status::from_field(u16::from_le_bytes([data[0], data[1]]));
        let dw0 = u32::from_le_bytes([data[2], data[3], data[4], data[5]]);
        if let Ok(resp) = ConnectResponse::decode(status, dw0) {
            let again = ConnectResponse::decode(resp.status(), resp.dw0())
                .expect("connect response: decode(encode(decode(x))) fails");
            assert_eq!(again, resp, "connect response round trip");
        }
        if let Ok(p) = InvalidParam::from_dw0(dw0) {
            assert_eq!(p.dw0(), dw0, "invalid param: dw0(from_dw0(x)) != x");
        }
        assert_eq!(
            ConnectSuccess::from_dw0(dw0).dw0(),
            dw0,
            "connect success dw0"
        );
    }
});
