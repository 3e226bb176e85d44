//! Discovery log page (LID 70h) on any bytes: the input as one entry
//! (`DiscoveryEntryRepr::parse`, 1024 bytes: text fields, SUBNQN, RDMA TSAS), as a header
//! and as a whole log (`DiscoveryLogRepr::parse_bytes`: header then NUMREC entries, an
//! untrusted NUMREC must never allocate or overflow). Never panics; emit(parse(x)) parses
//! back to the same repr.
#![no_main]

use harness::wire::{
    DiscoveryEntry, DiscoveryEntryRepr, DiscoveryLogHeader, DiscoveryLogHeaderRepr,
    DiscoveryLogRepr,
};
use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::{read_view, roundtrip_repr};

fuzz_target!(|data: &[u8]| {
    if let Some(e) = roundtrip_repr::<DiscoveryEntryRepr>("discovery entry", data) {
        assert_eq!(e.buffer_len(), 1024, "discovery entry: buffer_len");
    }
    roundtrip_repr::<DiscoveryLogHeaderRepr>("discovery log header", data);
    let log = roundtrip_repr::<DiscoveryLogRepr>("discovery log", data);
    if let Some(log) = log {
        assert_eq!(
            log.header.numrec,
            log.entries.len() as u64,
            "discovery log: numrec differs from the entries parsed"
        );
        assert!(log.buffer_len() <= data.len(), "discovery log: buffer_len");
    }
    read_view!(DiscoveryEntry, data; trtype, adrfam, subtype, treq, portid, cntlid, asqsz);
    read_view!(DiscoveryEntry, data; eflags, trsvcid_field, subnqn_field, traddr_field);
    read_view!(DiscoveryEntry, data; tsas_field, rdma_qptype, rdma_prtype, rdma_cms, rdma_pkey);
    read_view!(DiscoveryLogHeader, data; genctr, numrec, recfmt);
});
