//! `CqeRepr::parse` on any bytes: never panics; emit(parse(x)) parses back to the same repr
//! (every 16-byte pattern is a valid CQE, so here emit must also give the bytes back).
#![no_main]

use harness::wire::{Cqe, CqeRepr, CQE_LEN};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::{read_view, roundtrip_repr};

fuzz_target!(|data: &[u8]| {
    let r = roundtrip_repr::<CqeRepr>("cqe", data);
    if let Some(r) = r {
        assert_eq!(
            &r.to_bytes().unwrap()[..],
            &data[..CQE_LEN],
            "cqe: emit(parse(x)) != x"
        );
        let _ = (r.dw0(), r.dw1(), r.status.to_string(), r.status.name());
    }
    read_view!(Cqe, data; result, dw0, dw1, sq_head, sq_id, cid, status_word, phase, status);
});
