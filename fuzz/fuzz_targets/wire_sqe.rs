//! `SqeRepr::parse` (I/O queue) and `SqeRepr::parse_raw` (admin queue) on any bytes: never
//! panic; emit(parse(x)) parses back to the same repr. The view's getters on a checked
//! buffer never panic either.
#![no_main]

use harness::wire::{Sqe, SqeRepr};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::{read_view, roundtrip, roundtrip_repr, WireRepr};

fuzz_target!(|data: &[u8]| {
    roundtrip_repr::<SqeRepr>("sqe", data);
    let raw = |b: &[u8]| Sqe::new_checked(b).and_then(|v| SqeRepr::parse_raw(&v));
    roundtrip("sqe (raw)", data, raw, SqeRepr::emit_wire);
    read_view!(Sqe, data; opcode, flags, fuse, psdt, cid, nsid, mptr, dptr, sgl1);
    if let Ok(v) = Sqe::new_checked(data) {
        for n in 0..16 {
            let _ = v.cdw(n);
        }
    }
});
