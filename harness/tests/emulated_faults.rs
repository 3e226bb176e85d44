//! Injected faults: PCI error, timeouts, DMA faults, media errors, slow completions.

mod emulated_rig;

use std::time::Duration;

use emulated_rig::rig_ns;
use harness::backend::emulated::{CmdMatch, Fault, LbaFormat};
use harness::backend::CtrlState;
use harness::wire::{NvmOpcode, RwCommand, SqeCommand, Status};
use tokio::time::{timeout, Instant};

fn read(slba: u64, n: u32) -> SqeCommand {
    SqeCommand::Read(RwCommand::new(slba, n))
}

#[tokio::test(start_paused = true)]
async fn pci_error_now_ignores_doorbells() {
    let mut r = rig_ns(LbaFormat::L512, 16);
    let mut state = r.ctrl.watch_state();
    assert_eq!(*state.borrow(), CtrlState::Running);
    r.ctrl.inject(Fault::PciError).unwrap();
    timeout(Duration::from_secs(1), state.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*state.borrow(), CtrlState::PciError);
    assert_eq!(r.ctrl.state(), CtrlState::PciError);
    r.submit(1, SqeCommand::Flush, 0);
    let got = r.collect_within(1, Duration::from_secs(2)).await;
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(r.ctrl.counters().commands, 0, "doorbell ignored");
}

#[tokio::test(start_paused = true)]
async fn pci_error_on_command_loses_outstanding_commands() {
    let mut r = rig_ns(LbaFormat::L512, 16);
    let mut state = r.ctrl.watch_state();
    // Command 2 is delayed (outstanding), command 3 raises the PCI error.
    r.ctrl
        .inject(Fault::Timeout {
            on: CmdMatch::Nth(2),
            delay: Some(Duration::from_millis(10)),
        })
        .unwrap();
    r.ctrl.inject(Fault::PciErrorOn(CmdMatch::Nth(3))).unwrap();
    let first = r.submit(1, SqeCommand::Flush, 0);
    let got = r.collect(1).await;
    assert_eq!(got[0].cid, first);
    r.submit(1, SqeCommand::Flush, 0);
    r.submit(1, SqeCommand::Flush, 0);
    r.submit(1, SqeCommand::Flush, 0);
    let waited = timeout(
        Duration::from_secs(1),
        state.wait_for(|s| *s == CtrlState::PciError),
    )
    .await
    .unwrap();
    assert!(waited.is_ok());
    let got = r.collect_within(1, Duration::from_secs(2)).await;
    assert!(
        got.is_empty(),
        "nothing completes after a PCI error: {got:?}"
    );
    let k = r.ctrl.counters();
    assert_eq!((k.commands, k.completions), (3, 1), "{k:?}");
}

#[tokio::test(start_paused = true)]
async fn timeout_delays_a_completion() {
    let mut r = rig_ns(LbaFormat::L512, 16);
    let delay = Duration::from_millis(30);
    r.ctrl
        .inject(Fault::Timeout {
            on: CmdMatch::Nth(1),
            delay: Some(delay),
        })
        .unwrap();
    let t0 = Instant::now();
    let late = r.submit(1, SqeCommand::Flush, 0);
    let on_time = r.submit(1, SqeCommand::Flush, 0);
    let got = r.collect(1).await;
    assert_eq!(got[0].cid, on_time, "the delayed command is overtaken");
    assert!(t0.elapsed() < delay);
    let got = r.collect(1).await;
    assert_eq!((got[0].cid, got[0].status), (late, Status::SUCCESS));
    assert!(t0.elapsed() >= delay, "{:?}", t0.elapsed());
    assert!(t0.elapsed() < delay * 2);
    // One-shot: the next command is on time.
    let t1 = Instant::now();
    r.run(1, SqeCommand::Flush, 0).await;
    assert!(t1.elapsed() < delay);
}

#[tokio::test(start_paused = true)]
async fn timeout_never_by_cid_and_by_opcode() {
    let mut r = rig_ns(LbaFormat::L512, 16);
    r.ctrl
        .inject(Fault::Timeout {
            on: CmdMatch::Cid(100),
            delay: None,
        })
        .unwrap();
    r.ctrl
        .inject(Fault::Timeout {
            on: CmdMatch::Opcode(NvmOpcode::Read.into()),
            delay: Some(Duration::from_secs(2)),
        })
        .unwrap();
    let sqe = harness::backend::emulated::backend_sqe(100, 1, SqeCommand::Flush, 0);
    r.submit_raw(&sqe);
    let t0 = Instant::now();
    let rd = r.submit(1, read(0, 1), 0);
    let ok = r.submit(1, SqeCommand::Flush, 0);
    let got = r.collect_within(3, Duration::from_secs(10)).await;
    let cids: Vec<u16> = got.iter().map(|c| c.cid).collect();
    assert_eq!(cids, [ok, rd], "cid 100 never completes");
    assert!(t0.elapsed() >= Duration::from_secs(10));
    assert_eq!(r.ctrl.counters().dropped, 1);
    r.ctrl.clear_faults();
    let c = r.run(1, read(0, 1), 0).await;
    assert_eq!(c.status, Status::SUCCESS);
}

#[tokio::test(start_paused = true)]
async fn media_error_fails_reads_of_the_range() {
    let mut r = rig_ns(LbaFormat::L4096_8, 16);
    r.ctrl
        .inject(Fault::MediaError {
            nsid: 1,
            lbas: 4..6,
        })
        .unwrap();
    assert!(r
        .ctrl
        .inject(Fault::MediaError {
            nsid: 9,
            lbas: 0..1
        })
        .is_err());
    let c = r.run(1, read(3, 2), 0).await;
    assert_eq!(c.status, Status::UNRECOVERED_READ_ERROR);
    assert_eq!((c.status.sct, c.status.sc), (2, 0x81));
    assert_eq!(r.run(1, read(0, 4), 0).await.status, Status::SUCCESS);
    assert_eq!(r.run(1, read(6, 2), 0).await.status, Status::SUCCESS);
    let w = SqeCommand::Write(RwCommand::new(5, 1));
    assert_eq!(r.run(1, w, 0).await.status, Status::SUCCESS);
    assert_eq!(
        r.run(1, read(5, 1), 0).await.status,
        Status::UNRECOVERED_READ_ERROR
    );
    r.ctrl.clear_faults();
    assert_eq!(r.run(1, read(4, 2), 0).await.status, Status::SUCCESS);
    assert_eq!(r.ctrl.counters().errors, 2);
}

#[tokio::test(start_paused = true)]
async fn injected_dma_fault_hits_the_next_data_command() {
    let mut r = rig_ns(LbaFormat::L512, 16);
    r.ctrl.inject(Fault::DmaFault { count: 1 }).unwrap();
    assert_eq!(r.run(1, SqeCommand::Flush, 0).await.status, Status::SUCCESS);
    assert_eq!(
        r.run(1, read(0, 1), 0).await.status,
        Status::DATA_TRANSFER_ERROR
    );
    assert_eq!(r.run(1, read(0, 1), 0).await.status, Status::SUCCESS);
    assert_eq!(r.ctrl.counters().dma_faults, 1);
}

#[tokio::test(start_paused = true)]
async fn slow_completions_cost_virtual_time() {
    let mut r = rig_ns(LbaFormat::L512, 16);
    let d = Duration::from_millis(2);
    r.ctrl.inject(Fault::SlowCompletions { delay: d }).unwrap();
    let t0 = Instant::now();
    for _ in 0..3 {
        r.run(1, SqeCommand::Flush, 0).await;
    }
    let serial = t0.elapsed();
    assert!(serial >= d * 3 && serial < d * 4, "{serial:?}");
    // Commands in flight together are delayed together.
    let t1 = Instant::now();
    for _ in 0..5 {
        r.submit(1, read(0, 1), 0);
    }
    r.collect(5).await;
    let parallel = t1.elapsed();
    assert!(parallel >= d && parallel < d * 2, "{parallel:?}");
    r.ctrl.clear_faults();
    let t2 = Instant::now();
    r.run(1, SqeCommand::Flush, 0).await;
    assert!(t2.elapsed() < d);
}
