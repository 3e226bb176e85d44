//! `SqeRepr::parse` (I/O queue) and `SqeRepr::parse_raw` (admin queue) on any bytes: never
//! panic; emit(parse(x)) parses back to the same repr. The view's getters on a checked
//! buffer never panic either.
#![no_main]

use harness::wire::{Sqe, SqeRepr};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::roundtrip;

fuzz_target!(|data: &[u8]| {
    roundtrip("sqe", data, SqeRepr::parse_bytes, |r| {
        r.to_bytes().map(|b| b.to_vec())
    });
    let raw = |b: &[u8]| Sqe::new_checked(b).and_then(|v| SqeRepr::parse_raw(&v));
    roundtrip("sqe (raw)", data, raw, |r| r.to_bytes().map(|b| b.to_vec()));
    if let Ok(v) = Sqe::new_checked(data) {
        let _ = (
            v.opcode(),
            v.flags(),
            v.fuse(),
            v.psdt(),
            v.cid(),
            v.nsid(),
            v.mptr(),
        );
        let _ = v.dptr();
        let _ = v.sgl1();
        for n in 0..16 {
            let _ = v.cdw(n);
        }
    }
});
