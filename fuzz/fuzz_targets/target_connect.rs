//! The reference target's connection handling. Input: one selector byte, then bytes:
//!
//! | selector % 3 | bytes are |
//! |---|---|
//! | 0 | the first capsule (e.g. a Connect, 64 + 1024 bytes) of a fresh admin queue, CM-connected |
//! | 1 | the first capsule of a fresh I/O queue of the offloaded subsystem, CM-connected with the QID in the capsule's Connect QID field |
//! | 2 | the RDMA CM request private data (at most 56 bytes) of a fresh queue |
//!
//! The target must not panic, and afterwards a well-behaved queue of each subsystem must
//! still complete a read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::world::{self, Path};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    world::run(Path::CONNECT[usize::from(sel) % Path::CONNECT.len()], rest);
});
