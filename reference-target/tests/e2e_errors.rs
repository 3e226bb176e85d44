//! Errors software answers: commands the engine hands over (unknown namespace, bad data
//! pointers, unknown opcodes, transfers above max_io_sz) and admin errors.

use harness::api::OffloadProvider;
use harness::fabric::Access;
use harness::initiator::{
    misbehave, Command, Controller, DataMode, InitiatorError, IoQueue, Transfer,
};
use harness::wire::{
    PropertySize, RwCommand, SglAddressing, SglRepr, SqeCommand, Status, WriteZeroesCommand,
};
use reference_target::testing::data::*;
use reference_target::testing::target::*;

/// Asserts that `e` is an NVMe error with the status code of `want`.
fn assert_nvme(e: &InitiatorError, want: Status) {
    assert!(e.nvme_status().unwrap().same_code(want), "{e:?}");
}

async fn raw(io: &mut IoQueue, capsule: &[u8]) -> Status {
    let cid = u16::from_le_bytes([capsule[2], capsule[3]]);
    misbehave::send_raw(io.queue(), capsule).unwrap();
    io.queue()
        .wait_response(cid, BOUND)
        .await
        .unwrap()
        .cqe
        .status
}

/// The errors both paths must give, checked on an offloaded queue (the engine hands the
/// capsule over) and on a software-only queue.
async fn common_errors(io: &mut IoQueue) {
    let ctx = io.queue().ctx().clone();
    let pd = io.queue().pd();
    let mr = ctx
        .reg_mr(
            pd,
            8192,
            Access::LOCAL_WRITE | Access::REMOTE_WRITE | Access::REMOTE_READ,
        )
        .unwrap();
    // Keyed length larger than the transfer.
    let c = misbehave::read_sqe(100, 1, 0, 1, SglRepr::keyed(mr.addr, 8192, mr.rkey)).unwrap();
    let s = raw(io, &c).await;
    assert!(
        s.same_code(Status::DATA_SGL_LENGTH_INVALID) && s.dnr,
        "{s:?}"
    );
    // Read with in-capsule data.
    let c = misbehave::read_sqe(101, 1, 0, 1, SglRepr::in_capsule(0, 4096)).unwrap();
    let s = raw(io, &c).await;
    assert!(s.same_code(Status::INVALID_FIELD) && s.dnr, "{s:?}");
    // An address data block (not keyed, not in-capsule).
    let sgl = SglRepr::DataBlock {
        addressing: SglAddressing::Address,
        address: mr.addr,
        length: 4096,
    };
    let c = misbehave::read_sqe(102, 1, 0, 1, sgl).unwrap();
    let s = raw(io, &c).await;
    assert!(
        s.same_code(Status::SGL_DESCRIPTOR_TYPE_INVALID) && s.dnr,
        "{s:?}"
    );
    // Unknown I/O opcode.
    let c = misbehave::opcode_sqe(103, 1, 0x7e).unwrap();
    let s = raw(io, &c).await;
    assert!(s.same_code(Status::INVALID_OPCODE) && s.dnr, "{s:?}");
    // PRPs.
    let c = misbehave::prp_sqe(104, 1, 0).unwrap();
    let s = raw(io, &c).await;
    assert!(s.same_code(Status::INVALID_FIELD) && s.dnr, "{s:?}");
    // Unknown namespace.
    let c = misbehave::read_sqe(105, 77, 0, 1, SglRepr::keyed(mr.addr, 4096, mr.rkey)).unwrap();
    let s = raw(io, &c).await;
    assert!(s.same_code(Status::INVALID_NAMESPACE) && s.dnr, "{s:?}");
}

/// A target of two subsystems started with `seed`, a host connected to `sub` on `port`,
/// and its I/O queue 1 (depth 32, namespace 1, 4 KiB blocks, `in_capsule_data` bytes in
/// capsules) on which `common_errors` has been checked.
async fn io_queue_past_common_errors(
    seed: u64,
    port: u16,
    sub: &str,
    in_capsule_data: u32,
) -> (TargetRig, Controller, IoQueue) {
    let rig = start(seed, &two_subs());
    let mut c = connect(&rig, port, host_config(sub)).await;
    let mut io = c
        .connect_io_queue(1, 32, in_capsule_data, 1, 4096)
        .await
        .unwrap();
    common_errors(&mut io).await;
    (rig, c, io)
}

#[tokio::test(start_paused = true)]
async fn software_answers_what_the_engine_hands_over() {
    let (rig, _c, mut io) = io_queue_past_common_errors(41, 4420, SUB0, 0).await;
    let engine = rig.target.engine().clone();
    let srq = rig.target.srq(SUB0).unwrap();
    assert!(engine.srq_counters(srq.handle).unwrap().unknown_ns_cmds >= 1);
    let before = rig.target.software_io_commands(SUB0);
    assert_eq!(before, 6);

    // A transfer above max_io_sz (128 KiB) is not offloaded: software serves it.
    let big = pattern(256 * 1024, 9);
    let w = io.write(0, &big, DataMode::Keyed).await.unwrap();
    assert_eq!(w.cqe.status, Status::SUCCESS);
    let r = io.read(0, 64, DataMode::KeyedInvalidate).await.unwrap();
    assert_eq!(r.cqe.status, Status::SUCCESS);
    assert!(r.data == big);
    assert_eq!(
        r.invalidated_rkey, r.rkey,
        "software answers 4Fh with SEND with invalidate"
    );
    assert_eq!(rig.target.software_io_commands(SUB0), before + 2);
    let k = engine
        .ns_counters(rig.target.ctrl_of(SUB0, 1).unwrap(), 1)
        .unwrap();
    assert_eq!((k.write_cmds, k.read_cmds), (0, 0), "{k:?}");
    // The engine still serves what it can.
    let r = io.read(0, 2, DataMode::Keyed).await.unwrap();
    assert!(r.data == big[..8192]);
    let k = engine
        .ns_counters(rig.target.ctrl_of(SUB0, 1).unwrap(), 1)
        .unwrap();
    assert_eq!(k.read_cmds, 1);
}

#[tokio::test(start_paused = true)]
async fn software_path_errors() {
    let (rig, _c, mut io) = io_queue_past_common_errors(42, 4421, SUB1, 4096).await;
    // LBA out of range (1024 blocks).
    let r = io.read(1024, 1, DataMode::Keyed).await.unwrap();
    assert!(r.cqe.status.same_code(Status::LBA_OUT_OF_RANGE), "{r:?}");
    let r = io.write_zeroes(1020, 8).await.unwrap();
    assert!(r.cqe.status.same_code(Status::LBA_OUT_OF_RANGE), "{r:?}");
    // In-capsule data past the capsule.
    let mut cap = misbehave::write_sqe(110, 1, 0, 1, SglRepr::in_capsule(64, 4096))
        .unwrap()
        .to_vec();
    cap.extend_from_slice(&[0u8; 4096]);
    let cid = misbehave::send_raw(io.queue(), &cap).unwrap().unwrap();
    let s = io
        .queue()
        .wait_response(cid, BOUND)
        .await
        .unwrap()
        .cqe
        .status;
    assert!(s.same_code(Status::SGL_OFFSET_INVALID) && s.dnr, "{s:?}");
    // In-capsule write, write zeroes, DSM and flush, all served by software.
    let d = pattern(4096, 4);
    write_ok(&mut io, 3, &d, DataMode::InCapsule).await;
    assert!(io.read(3, 1, DataMode::Keyed).await.unwrap().data == d);
    let z = io
        .command(
            SqeCommand::WriteZeroes(WriteZeroesCommand {
                slba: 3,
                nlb: 0,
                ..Default::default()
            }),
            Transfer::None,
            DataMode::Keyed,
        )
        .await
        .unwrap();
    assert_eq!(z.cqe.status, Status::SUCCESS);
    assert!(io
        .read(3, 1, DataMode::Keyed)
        .await
        .unwrap()
        .data
        .iter()
        .all(|b| *b == 0));
    let dsm = io
        .dataset_management(&[(0, 4, 8)], true, DataMode::Keyed)
        .await
        .unwrap();
    assert_eq!(dsm.cqe.status, Status::SUCCESS);
    assert_eq!(io.flush().await.unwrap().cqe.status, Status::SUCCESS);
    let k = rig
        .target
        .engine()
        .ns_counters(rig.target.ctrl_of(SUB1, 1).unwrap(), 1)
        .unwrap();
    assert_eq!(k, Default::default(), "the engine served nothing");
    let _ = RwCommand::new(0, 1);
}

#[tokio::test(start_paused = true)]
async fn admin_errors() {
    let rig = start(43, &two_subs());
    let mut c =
        harness::initiator::Controller::connect(rig.host.clone(), addr(4420), host_config(SUB0))
            .await
            .unwrap();
    // Before CC.EN: admin commands are a sequence error, properties are not.
    let e = c.identify_controller().await.unwrap_err();
    assert_nvme(&e, Status::COMMAND_SEQUENCE_ERROR);
    assert_eq!(c.property_get(0x1c, PropertySize::Four).await.unwrap(), 0);
    c.enable().await.unwrap();
    // Unknown admin opcode.
    let cmd = Command::Nvme {
        nsid: 0,
        command: SqeCommand::Other {
            opcode: 0xc1,
            cdw: [0; 6],
        },
    };
    let e = c
        .admin_command("x", &cmd, Transfer::None)
        .await
        .unwrap_err();
    assert_nvme(&e, Status::INVALID_OPCODE);
    // Identify with an unknown CNS.
    let e = c.identify(0x55, 0).await.unwrap_err();
    assert_nvme(&e, Status::INVALID_FIELD);
    // Property Get of an unknown offset, and CAP read with 4 bytes.
    for (offset, size) in [(0x40, PropertySize::Four), (0x00, PropertySize::Four)] {
        let e = c.property_get(offset, size).await.unwrap_err();
        assert_nvme(&e, Status::INVALID_FIELD);
    }
    // CAP: MQES = queue depth - 1 (128 by default), CSS NVM; VS 1.3.
    let cap = c.property_get(0, PropertySize::Eight).await.unwrap();
    assert_eq!(cap & 0xffff, 127);
    assert_ne!(cap & (1 << 37), 0);
    assert_eq!(
        c.property_get(8, PropertySize::Four).await.unwrap(),
        0x0001_0300
    );
    // Shutdown then CSTS.SHST complete.
    c.shutdown().await.unwrap();
    let csts = c.property_get(0x1c, PropertySize::Four).await.unwrap();
    assert_eq!(csts & 0b1100, 0b1000);
}
