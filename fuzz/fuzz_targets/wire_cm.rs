//! RDMA CM private data (`CmRequestRepr`, `CmAcceptRepr`, `CmRejectRepr`) on any bytes:
//! never panic; emit(parse(x)) parses back to the same repr.
#![no_main]

use harness::wire::{CmAcceptRepr, CmRejectRepr, CmRejectStatus, CmRequestRepr};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::roundtrip;

fuzz_target!(|data: &[u8]| {
    roundtrip("cm request", data, CmRequestRepr::parse_bytes, |r| {
        Ok::<_, harness::wire::WireError>(r.to_bytes().to_vec())
    });
    roundtrip("cm accept", data, CmAcceptRepr::parse_bytes, |r| {
        Ok::<_, harness::wire::WireError>(r.to_bytes().to_vec())
    });
    roundtrip("cm reject", data, CmRejectRepr::parse_bytes, |r| {
        Ok::<_, harness::wire::WireError>(r.to_bytes().to_vec())
    });
    if data.len() >= 2 {
        let v = u16::from_le_bytes([data[0], data[1]]);
        if let Ok(s) = CmRejectStatus::try_from(v) {
            assert_eq!(u16::from(s), v, "cm reject status round trip");
        }
    }
});
