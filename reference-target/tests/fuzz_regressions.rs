//! Inputs the fuzz targets (`fuzz/`, docs/fuzzing.md) found, replayed through the same
//! path: a fresh I/O queue of the target (offloaded `sub0` or software-only `sub1`), the
//! raw capsule with `misbehave::send_raw`, then a well-behaved read on the same queue.

use harness::initiator::{misbehave, DataMode};
use harness::wire::{RwCommand, SglRepr, SqeCommand, SqeRepr, Status};
use reference_target::testing::target::*;

/// `target_capsule` crash-42d43cd3, minimized (selector byte 1 = software-only I/O queue,
/// then this SQE): Write, NSID 1, SLBA 8, one block, SGL1 an in-capsule data block
/// (identifier 01h) at offset FFFF_FFFF_FFFF_FFFFh, length 1040h. `Queue::data_ref`
/// (control/queue.rs) computed `64 + icdoff + offset` unchecked: "attempt to add with
/// overflow", which kills the queue's task (with wrapping arithmetic it would instead take
/// the data from inside the SQE).
const CRASH_42D43CD3: [u8; 64] = [
    0x01, 0x40, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x04,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x40, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x32, 0x39, 0x40, 0x47, 0x5c,
];

/// Sends `capsule` on a fresh I/O queue of `sub` (port `port`) and returns the status the
/// target answers; a read on the same queue must still succeed afterwards.
async fn replay(port: u16, sub: &str, capsule: &[u8]) -> Status {
    let rig = start(42, &two_subs());
    let mut c = connect(&rig, port, host_config(sub)).await;
    let mut io = c.connect_io_queue(1, 32, 8192, 1, 4096).await.unwrap();
    let cid = misbehave::send_raw(io.queue(), capsule).unwrap().unwrap();
    let status = io
        .queue()
        .wait_response(cid, BOUND)
        .await
        .expect("the target answers the capsule")
        .cqe
        .status;
    let r = io.read(0, 1, DataMode::Keyed).await.unwrap();
    assert_eq!(r.cqe.status, Status::SUCCESS, "a read after the capsule");
    status
}

#[tokio::test(start_paused = true)]
async fn in_capsule_offset_overflow_software_queue() {
    let s = replay(4421, SUB1, &CRASH_42D43CD3).await;
    assert!(s.same_code(Status::SGL_OFFSET_INVALID) && s.dnr, "{s}");
}

#[tokio::test(start_paused = true)]
async fn in_capsule_offset_overflow_offloaded_queue() {
    // The SGL length (1040h) is not the transfer's, so the engine hands it to software.
    let s = replay(4420, SUB0, &CRASH_42D43CD3).await;
    assert!(s.same_code(Status::SGL_OFFSET_INVALID) && s.dnr, "{s}");
}

/// The engine's own in-capsule path (engine/datapath.rs) has the same unchecked sum and
/// then `start + len`: with the SGL length equal to the transfer (so the engine takes the
/// command) and an offset that makes `start + len` wrap, a build without overflow checks
/// slices `bytes[start..end]` with `start > end` and panics as well.
#[tokio::test(start_paused = true)]
async fn in_capsule_offset_overflow_engine() {
    let sqe = SqeRepr::new(
        5,
        1,
        SqeCommand::Write(RwCommand::new(8, 1)),
        SglRepr::in_capsule(u64::MAX - 64 - 100, 4096),
    )
    .to_bytes()
    .unwrap();
    let mut capsule = sqe.to_vec();
    capsule.extend(std::iter::repeat_n(0xa5u8, 4096));
    let s = replay(4420, SUB0, &capsule).await;
    assert!(s.same_code(Status::SGL_OFFSET_INVALID) && s.dnr, "{s}");
}
