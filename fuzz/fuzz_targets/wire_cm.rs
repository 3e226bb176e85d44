//! RDMA CM private data (`CmRequestRepr`, `CmAcceptRepr`, `CmRejectRepr`) on any bytes:
//! never panic; emit(parse(x)) parses back to the same repr.
#![no_main]

use harness::wire::{CmAcceptRepr, CmRejectRepr, CmRejectStatus, CmRequestRepr};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::roundtrip_repr;

fuzz_target!(|data: &[u8]| {
    roundtrip_repr::<CmRequestRepr>("cm request", data);
    roundtrip_repr::<CmAcceptRepr>("cm accept", data);
    roundtrip_repr::<CmRejectRepr>("cm reject", data);
    if data.len() >= 2 {
        let v = u16::from_le_bytes([data[0], data[1]]);
        if let Ok(s) = CmRejectStatus::try_from(v) {
            assert_eq!(u16::from(s), v, "cm reject status round trip");
        }
    }
});
