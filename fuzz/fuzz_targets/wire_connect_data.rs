//! Connect data (`ConnectDataRepr::parse`, 1024 bytes, two NQNs) on any bytes: never
//! panics; emit(parse(x)) parses back to the same repr.
#![no_main]

use harness::wire::{ConnectData, ConnectDataRepr};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::roundtrip;

fuzz_target!(|data: &[u8]| {
    roundtrip("connect data", data, ConnectDataRepr::parse_bytes, |r| {
        r.to_bytes()
    });
    if let Ok(v) = ConnectData::new_checked(data) {
        let _ = (v.hostid(), v.cntlid(), v.subnqn_field(), v.hostnqn_field());
    }
});
