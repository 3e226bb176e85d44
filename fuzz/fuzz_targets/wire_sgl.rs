//! `SglRepr::parse` on any bytes: never panics; emit(parse(x)) parses back to the same repr.
#![no_main]

use harness::wire::{Sgl, SglRepr, SGL_DESC_LEN};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::{read_view, roundtrip};

fuzz_target!(|data: &[u8]| {
    let r = roundtrip("sgl", data, SglRepr::parse_bytes, |r| {
        let mut b = vec![0u8; SGL_DESC_LEN];
        r.emit(&mut b).map(|()| b)
    });
    if let Some(r) = r {
        let _ = (r.identifier(), r.length());
        // A too-short buffer is an error, never a panic.
        assert!(r.emit(&mut [0u8; SGL_DESC_LEN - 1]).is_err());
    }
    read_view!(Sgl, data; identifier, desc_type, subtype, address);
    read_view!(Sgl, data; length, keyed_length, key, reserved);
});
