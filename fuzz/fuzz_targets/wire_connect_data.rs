//! Connect data (`ConnectDataRepr::parse`, 1024 bytes, two NQNs) on any bytes: never
//! panics; emit(parse(x)) parses back to the same repr.
#![no_main]

use harness::wire::{ConnectData, ConnectDataRepr};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::{read_view, roundtrip_repr};

fuzz_target!(|data: &[u8]| {
    roundtrip_repr::<ConnectDataRepr>("connect data", data);
    read_view!(ConnectData, data; hostid, cntlid, subnqn_field, hostnqn_field);
});
