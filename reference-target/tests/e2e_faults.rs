//! Faults end to end: keep-alive expiry, a backend PCI error, a backend command timeout
//! (controller re-created), and an op the device cannot serve on an offloaded QP.

use std::time::Duration;

use harness::api::{OffloadEvent, OffloadProvider};
use harness::backend::emulated::{CmdMatch, Fault};
use harness::fabric::Access;
use harness::initiator::{Command, Controller, DataMode, HostConfig, IoQueue};
use harness::wire::{RwCommand, SglRepr, SqeCommand, Status};
use reference_target::testing::data::*;
use reference_target::testing::target::*;

/// [`SUB0`] on `profile` with a 4 MiB namespace 1 of 4 KiB blocks and queues 64 deep;
/// backend commands time out after `cmd_timeout_ms` when given.
fn one_ns(profile: &str, cmd_timeout_ms: Option<u32>) -> String {
    let timeout = cmd_timeout_ms.map(|ms| format!("cmd_timeout_ms = {ms}"));
    let mut settings = vec!["queue_depth = 64"];
    settings.extend(timeout.as_deref());
    ConfigText::profile(profile)
        .port(4420, SUB0)
        .subsystem(SUB0, &settings)
        .namespace(1, "4MiB", "4096")
        .build()
}

/// Connects a controller of `cfg` to [`SUB0`], and its I/O queue 1 (16 deep) on namespace 1.
async fn connect_queue(rig: &TargetRig, cfg: HostConfig) -> (Controller, IoQueue) {
    let mut c = connect(rig, 4420, cfg).await;
    let io = c.connect_io_queue(1, 16, 0, 1, 4096).await.unwrap();
    (c, io)
}

/// Starts the target of `one_ns("full", Some(100))` with `seed`, and connects a controller
/// and its I/O queue as [`connect_queue`] does.
async fn one_queue(seed: u64) -> (TargetRig, Controller, IoQueue) {
    let rig = start(seed, &one_ns("full", Some(100)));
    let (c, io) = connect_queue(&rig, host_config(SUB0)).await;
    (rig, c, io)
}

/// Injects `fault` into the backend of [`SUB0`]'s namespace 1.
fn inject(rig: &TargetRig, fault: Fault) {
    rig.target.inject(SUB0, 1, fault).unwrap();
}

/// Submits `n` one-block reads without waiting; returns their CIDs.
fn submit_reads(io: &mut IoQueue, n: usize) -> Vec<u16> {
    let q = io.queue();
    let ctx = q.ctx().clone();
    let mut cids = Vec::new();
    for i in 0..n {
        let mr = ctx
            .reg_mr(q.pd(), 4096, Access::LOCAL_WRITE | Access::REMOTE_WRITE)
            .unwrap();
        let cmd = Command::Nvme {
            nsid: 1,
            command: SqeCommand::Read(RwCommand::new(i as u64, 1)),
        };
        cids.push(
            q.submit(&cmd, SglRepr::keyed(mr.addr, 4096, mr.rkey), &[])
                .unwrap(),
        );
    }
    cids
}

#[tokio::test(start_paused = true)]
async fn keep_alive_expiry_tears_the_controller_down() {
    let rig = start(31, &one_ns("full", Some(100)));
    let mut cfg = host_config(SUB0);
    cfg.kato_ms = 500;
    let (mut c, mut io) = connect_queue(&rig, cfg).await;
    // Keep-alives every 200 ms keep it up for 2 s.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.keep_alive().await.unwrap();
    }
    assert_eq!(rig.target.controllers(SUB0), vec![c.cntlid()]);
    assert_eq!(rig.target.connections(), 2);
    // Then silence.
    tokio::time::sleep(Duration::from_secs(2)).await;
    rig.expect_event("kato-expired").await;
    assert!(rig.target.controllers(SUB0).is_empty());
    wait_until(Duration::from_millis(10), || rig.target.connections() == 0).await;
    assert_eq!(
        rig.target.connections(),
        0,
        "admin and I/O queues disconnected"
    );
    assert!(c.keep_alive().await.is_err(), "the admin queue is gone");
    assert!(io.flush().await.is_err(), "the I/O queue is gone");
}

#[tokio::test(start_paused = true)]
async fn pci_error_answers_in_flight_commands_and_takes_the_namespace_offline() {
    let (rig, mut c, mut io) = one_queue(32).await;
    write_ok(&mut io, 0, &pattern(4096, 1), DataMode::Keyed).await;
    let engine = rig.target.engine().clone();
    let ctrl = rig.target.ctrl_of(SUB0, 1).unwrap();
    let backend = engine.backend_of(ctrl).unwrap();
    backend
        .inject(Fault::SlowCompletions {
            delay: Duration::from_millis(50),
        })
        .unwrap();
    let cids = submit_reads(&mut io, 4);
    wait_until(Duration::from_millis(1), || {
        engine.commands_in_flight() >= 4
    })
    .await;
    assert_eq!(
        engine.commands_in_flight(),
        4,
        "every read in flight in the engine"
    );
    backend.inject(Fault::PciError).unwrap();
    for cid in cids {
        let r = io.queue().wait_response(cid, BOUND).await.unwrap();
        assert!(r.cqe.status.same_code(Status::INTERNAL_ERROR), "{r:?}");
        assert!(!r.cqe.status.dnr, "retryable: {r:?}");
    }
    rig.expect_event("ctrl-released").await;
    assert!(rig
        .target
        .offload_events()
        .contains(&OffloadEvent::NvmePciErr { ctrl }));
    assert_eq!(rig.target.ctrl_of(SUB0, 1), None);
    // Later I/O is answered by software: Namespace Not Ready, DNR.
    let r = io.read(0, 1, DataMode::Keyed).await.unwrap();
    assert!(r.cqe.status.same_code(Status::NAMESPACE_NOT_READY), "{r:?}");
    assert!(r.cqe.status.dnr);
    assert_eq!(settle(&engine).await, 0);
    // The admin queue still works.
    c.keep_alive().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn timeout_recreates_the_controller_and_io_resumes() {
    let (rig, _c, mut io) = one_queue(33).await;
    let before = pattern(8192, 5);
    write_ok(&mut io, 0, &before, DataMode::Keyed).await;
    let old = rig.target.ctrl_of(SUB0, 1).unwrap();
    inject(
        &rig,
        Fault::Timeout {
            on: CmdMatch::Nth(1),
            delay: None,
        },
    );
    let r = io.read(0, 2, DataMode::Keyed).await.unwrap();
    assert!(r.cqe.status.same_code(Status::INTERNAL_ERROR), "{r:?}");
    assert!(!r.cqe.status.dnr);
    rig.expect_event("ctrl-recreated").await;
    assert!(rig
        .target
        .offload_events()
        .iter()
        .any(|e| matches!(e, OffloadEvent::NvmeTimeout { ctrl, .. } if *ctrl == old)));
    assert_eq!(rig.target.backend_generation(SUB0), Some(1));
    let new = rig.target.ctrl_of(SUB0, 1).unwrap();
    assert_ne!(new, old);
    // I/O works again, offloaded on the new controller, with the data kept.
    let r = io.read(0, 2, DataMode::Keyed).await.unwrap();
    assert_eq!(r.cqe.status, Status::SUCCESS);
    assert!(r.data == before, "data survives the re-creation");
    write_ok(&mut io, 2, &pattern(4096, 6), DataMode::Keyed).await;
    let k = rig.target.engine().ns_counters(new, 1).unwrap();
    assert_eq!((k.read_cmds, k.write_cmds), (1, 1), "{k:?}");
    assert_eq!(settle(rig.target.engine()).await, 0);
}

#[tokio::test(start_paused = true)]
async fn unsupported_op_on_minimal_profile_is_an_event() {
    let rig = start(34, &one_ns("minimal", None));
    let (_c, mut io) = connect_queue(&rig, host_config(SUB0)).await;
    // Writes are offloaded.
    write_ok(&mut io, 0, &pattern(4096, 2), DataMode::Keyed).await;
    io.queue().set_command_bound(Duration::from_millis(500));
    assert!(
        io.read(0, 1, DataMode::Keyed).await.is_err(),
        "the QP is in error"
    );
    rig.expect_event("offload-event UNSUPPORTED_NVMF_OP").await;
}

#[tokio::test(start_paused = true)]
async fn host_leaves_with_commands_in_flight() {
    let (rig, mut c, mut io) = one_queue(35).await;
    inject(
        &rig,
        Fault::SlowCompletions {
            delay: Duration::from_millis(50),
        },
    );
    submit_reads(&mut io, 4);
    let engine = rig.target.engine().clone();
    wait_until(Duration::from_millis(1), || {
        engine.commands_in_flight() >= 4
    })
    .await;
    io.disconnect(BOUND).await.unwrap();
    rig.expect_event("queue-closed").await;
    assert_eq!(settle(&engine).await, 0, "orphaned commands retire");
    // The controller and a new queue still work.
    rig.target.backend_of(SUB0, 1).unwrap().clear_faults();
    let mut io = c.connect_io_queue(1, 16, 0, 1, 4096).await.unwrap();
    write_read_compare(&mut io, 9, &pattern(4096, 8))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn several_timeouts_recreate_once_per_controller() {
    let (rig, _c, mut io) = one_queue(36).await;
    inject(
        &rig,
        Fault::Timeout {
            on: CmdMatch::Any,
            delay: None,
        },
    );
    let cids = submit_reads(&mut io, 3);
    for cid in cids {
        let r = io.queue().wait_response(cid, BOUND).await.unwrap();
        assert!(!r.cqe.status.is_success(), "{r:?}");
        assert!(!r.cqe.status.dnr, "retryable: {r:?}");
    }
    rig.expect_event("ctrl-recreated").await;
    let engine = rig.target.engine().clone();
    assert_eq!(settle(&engine).await, 0);
    let timeouts = rig
        .target
        .offload_events()
        .iter()
        .filter(|e| matches!(e, OffloadEvent::NvmeTimeout { .. }))
        .count();
    let recreated = rig.count_events("ctrl-recreated");
    assert!(timeouts >= 1);
    assert_eq!(recreated + rig.count_events("stale-event"), timeouts);
    // The new controller has no fault: I/O works.
    write_read_compare(&mut io, 1, &pattern(4096, 3))
        .await
        .unwrap();
}
