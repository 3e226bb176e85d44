//! The reference target's capsule receive path. Input: one selector byte, then the raw
//! capsule bytes (at most 8 KiB: SQE + in-capsule data), sent as one SEND on a fresh
//! queue of the running target (`nvmf_conform_fuzz::world`):
//!
//! | selector % 4 | queue |
//! |---|---|
//! | 0 | a connected I/O queue of the offloaded subsystem (an SRQ receive the engine sees first) |
//! | 1 | a connected I/O queue of the software-only subsystem |
//! | 2 | the admin queue of a fresh controller (capsules cut to 1088 bytes) |
//! | 3 | the admin queue of a fresh, enabled controller (cut to 1088 bytes) |
//!
//! The target must not panic, and afterwards a well-behaved queue of each subsystem must
//! still complete a read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nvmf_conform_fuzz::world::{self, Path};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, capsule)) = data.split_first() else {
        return;
    };
    world::run(
        Path::CAPSULE[usize::from(sel) % Path::CAPSULE.len()],
        capsule,
    );
});
