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
use nvmf_conform_fuzz::roundtrip;

fuzz_target!(|data: &[u8]| {
    let e = roundtrip(
        "discovery entry",
        data,
        DiscoveryEntryRepr::parse_bytes,
        DiscoveryEntryRepr::to_bytes,
    );
    if let Some(e) = e {
        assert_eq!(e.buffer_len(), 1024, "discovery entry: buffer_len");
    }
    roundtrip(
        "discovery log header",
        data,
        DiscoveryLogHeaderRepr::parse_bytes,
        DiscoveryLogHeaderRepr::to_bytes,
    );
    let log = roundtrip(
        "discovery log",
        data,
        DiscoveryLogRepr::parse_bytes,
        DiscoveryLogRepr::to_bytes,
    );
    if let Some(log) = log {
        assert_eq!(
            log.header.numrec,
            log.entries.len() as u64,
            "discovery log: numrec differs from the entries parsed"
        );
        assert!(log.buffer_len() <= data.len(), "discovery log: buffer_len");
    }
    if let Ok(v) = DiscoveryEntry::new_checked(data) {
        let _ = (v.trtype(), v.adrfam(), v.subtype(), v.treq());
        let _ = (v.portid(), v.cntlid(), v.asqsz(), v.eflags());
        let _ = (v.trsvcid_field(), v.subnqn_field(), v.traddr_field());
        let _ = (
            v.tsas_field(),
            v.rdma_qptype(),
            v.rdma_prtype(),
            v.rdma_cms(),
        );
        let _ = v.rdma_pkey();
    }
    if let Ok(v) = DiscoveryLogHeader::new_checked(data) {
        let _ = (v.genctr(), v.numrec(), v.recfmt());
    }
});
