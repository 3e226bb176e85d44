//! `CqeRepr::parse` on any bytes: never panics; emit(parse(x)) parses back to the same repr
//! (every 16-byte pattern is a valid CQE, so here emit must also give the bytes back).
#![no_main]

use harness::wire::{Cqe, CqeRepr, CQE_LEN};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::roundtrip;

fuzz_target!(|data: &[u8]| {
    let r = roundtrip("cqe", data, CqeRepr::parse_bytes, |r| {
        r.to_bytes().map(|b| b.to_vec())
    });
    if let Some(r) = r {
        assert_eq!(
            &r.to_bytes().unwrap()[..],
            &data[..CQE_LEN],
            "cqe: emit(parse(x)) != x"
        );
        let _ = (r.dw0(), r.dw1(), r.status.to_string(), r.status.name());
    }
    if let Ok(v) = Cqe::new_checked(data) {
        let _ = (
            v.result(),
            v.dw0(),
            v.dw1(),
            v.sq_head(),
            v.sq_id(),
            v.cid(),
        );
        let _ = (v.status_word(), v.phase(), v.status());
    }
});
