//! Faults end to end: keep-alive expiry, a backend PCI error, a backend command timeout
//! (controller re-created), and an op the device cannot serve on an offloaded QP.

use std::time::Duration;

use harness::api::{OffloadEvent, OffloadProvider};
use harness::backend::emulated::{CmdMatch, Fault};
use harness::fabric::Access;
use harness::initiator::{Command, DataMode, IoQueue};
use harness::wire::{RwCommand, SglRepr, SqeCommand, Status};
use reference_target::testing::data::*;
use reference_target::testing::target::*;

const ONE_NS: &str = r#"
profile = "full"
[[port]]
addr = "127.0.10.1:4420"
subsystem = "nqn.2026-11.io.nvmf-conform:sub0"
[[subsystem]]
nqn = "nqn.2026-11.io.nvmf-conform:sub0"
allow_any_host = true
queue_depth = 64
cmd_timeout_ms = 100
[[subsystem.namespace]]
nsid = 1
size = "4MiB"
lba_format = "4096"
"#;

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
    let rig = start(31, ONE_NS);
    let mut cfg = host_config(SUB0);
    cfg.kato_ms = 500;
    let mut c = connect(&rig, 4420, cfg).await;
    let mut io = c.connect_io_queue(1, 16, 0, 1, 4096).await.unwrap();
    // Keep-alives every 200 ms keep it up for 2 s.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.keep_alive().await.unwrap();
    }
    assert_eq!(rig.target.controllers(SUB0), vec![c.cntlid()]);
    assert_eq!(rig.target.connections(), 2);
    // Then silence.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rig.target.wait_event("kato-expired", BOUND).await.is_some());
    assert!(rig.target.controllers(SUB0).is_empty());
    let deadline = tokio::time::Instant::now() + BOUND;
    while rig.target.connections() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    let rig = start(32, ONE_NS);
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let mut io = c.connect_io_queue(1, 16, 0, 1, 4096).await.unwrap();
    let w = io
        .write(0, &pattern(4096, 1), DataMode::Keyed)
        .await
        .unwrap();
    assert_eq!(w.cqe.status, Status::SUCCESS);
    let engine = rig.target.engine().clone();
    let ctrl = rig.target.ctrl_of(SUB0, 1).unwrap();
    let backend = engine.backend_of(ctrl).unwrap();
    backend
        .inject(Fault::SlowCompletions {
            delay: Duration::from_millis(50),
        })
        .unwrap();
    let cids = submit_reads(&mut io, 4);
    let deadline = tokio::time::Instant::now() + BOUND;
    while engine.commands_in_flight() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
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
    assert!(rig
        .target
        .wait_event("ctrl-released", BOUND)
        .await
        .is_some());
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
    let rig = start(33, ONE_NS);
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let mut io = c.connect_io_queue(1, 16, 0, 1, 4096).await.unwrap();
    let before = pattern(8192, 5);
    assert_eq!(
        io.write(0, &before, DataMode::Keyed)
            .await
            .unwrap()
            .cqe
            .status,
        Status::SUCCESS
    );
    let old = rig.target.ctrl_of(SUB0, 1).unwrap();
    rig.target
        .inject(
            SUB0,
            1,
            Fault::Timeout {
                on: CmdMatch::Nth(1),
                delay: None,
            },
        )
        .unwrap();
    let r = io.read(0, 2, DataMode::Keyed).await.unwrap();
    assert!(r.cqe.status.same_code(Status::INTERNAL_ERROR), "{r:?}");
    assert!(!r.cqe.status.dnr);
    assert!(rig
        .target
        .wait_event("ctrl-recreated", BOUND)
        .await
        .is_some());
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
    let w = io
        .write(2, &pattern(4096, 6), DataMode::Keyed)
        .await
        .unwrap();
    assert_eq!(w.cqe.status, Status::SUCCESS);
    let k = rig.target.engine().ns_counters(new, 1).unwrap();
    assert_eq!((k.read_cmds, k.write_cmds), (1, 1), "{k:?}");
    assert_eq!(settle(rig.target.engine()).await, 0);
}

#[tokio::test(start_paused = true)]
async fn unsupported_op_on_minimal_profile_is_an_event() {
    let text = ONE_NS
        .replace("profile = \"full\"", "profile = \"minimal\"")
        .replace("cmd_timeout_ms = 100\n", "");
    let rig = start(34, &text);
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let mut io = c.connect_io_queue(1, 16, 0, 1, 4096).await.unwrap();
    let w = io
        .write(0, &pattern(4096, 2), DataMode::Keyed)
        .await
        .unwrap();
    assert_eq!(w.cqe.status, Status::SUCCESS, "writes are offloaded");
    io.queue().set_command_bound(Duration::from_millis(500));
    assert!(
        io.read(0, 1, DataMode::Keyed).await.is_err(),
        "the QP is in error"
    );
    assert!(rig
        .target
        .wait_event("offload-event UNSUPPORTED_NVMF_OP", BOUND)
        .await
        .is_some());
}

#[tokio::test(start_paused = true)]
async fn host_leaves_with_commands_in_flight() {
    let rig = start(35, ONE_NS);
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let mut io = c.connect_io_queue(1, 16, 0, 1, 4096).await.unwrap();
    rig.target
        .inject(
            SUB0,
            1,
            Fault::SlowCompletions {
                delay: Duration::from_millis(50),
            },
        )
        .unwrap();
    submit_reads(&mut io, 4);
    let engine = rig.target.engine().clone();
    let deadline = tokio::time::Instant::now() + BOUND;
    while engine.commands_in_flight() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    io.disconnect(BOUND).await.unwrap();
    assert!(rig.target.wait_event("queue-closed", BOUND).await.is_some());
    assert_eq!(settle(&engine).await, 0, "orphaned commands retire");
    // The controller and a new queue still work.
    rig.target.backend_of(SUB0, 1).unwrap().clear_faults();
    let mut io = c.connect_io_queue(1, 16, 0, 1, 4096).await.unwrap();
    let d = pattern(4096, 8);
    assert_eq!(
        io.write(9, &d, DataMode::Keyed).await.unwrap().cqe.status,
        Status::SUCCESS
    );
    assert!(io.read(9, 1, DataMode::Keyed).await.unwrap().data == d);
}

#[tokio::test(start_paused = true)]
async fn several_timeouts_recreate_once_per_controller() {
    let rig = start(36, ONE_NS);
    let mut c = connect(&rig, 4420, host_config(SUB0)).await;
    let mut io = c.connect_io_queue(1, 16, 0, 1, 4096).await.unwrap();
    rig.target
        .inject(
            SUB0,
            1,
            Fault::Timeout {
                on: CmdMatch::Any,
                delay: None,
            },
        )
        .unwrap();
    let cids = submit_reads(&mut io, 3);
    for cid in cids {
        let r = io.queue().wait_response(cid, BOUND).await.unwrap();
        assert!(!r.cqe.status.is_success(), "{r:?}");
        assert!(!r.cqe.status.dnr, "retryable: {r:?}");
    }
    assert!(rig
        .target
        .wait_event("ctrl-recreated", BOUND)
        .await
        .is_some());
    let engine = rig.target.engine().clone();
    assert_eq!(settle(&engine).await, 0);
    let timeouts = rig
        .target
        .offload_events()
        .iter()
        .filter(|e| matches!(e, OffloadEvent::NvmeTimeout { .. }))
        .count();
    let recreated = rig
        .target
        .events()
        .iter()
        .filter(|l| l.starts_with("ctrl-recreated"))
        .count();
    assert!(timeouts >= 1);
    assert_eq!(
        recreated
            + rig
                .target
                .events()
                .iter()
                .filter(|l| l.starts_with("stale-event"))
                .count(),
        timeouts
    );
    // The new controller has no fault: I/O works.
    let d = pattern(4096, 3);
    assert_eq!(
        io.write(1, &d, DataMode::Keyed).await.unwrap().cqe.status,
        Status::SUCCESS
    );
    assert!(io.read(1, 1, DataMode::Keyed).await.unwrap().data == d);
}
