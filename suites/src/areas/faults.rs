//! Areas `pci-error` and `timeout`: backend controller failures injected at the
//! interesting moments. The device must report them with the right controller, answer
//! every affected command (never drop it), keep other controllers serving, and work again
//! once software re-creates the controller.
//!
//! The cases use whatever op the device offloads (`FaultOp`: a read when it offloads
//! reads, else a write), so a device that offloads only writes (or only reads) is tested
//! on faults too; only one that offloads neither skips them. Data written is checked on
//! the backend's media when the device cannot read it back.

use std::time::Duration;

use harness::api::{CtrlHandle, NsCounters, NsMapping, NvmeCtrlAttrs, OffloadEvent, OffloadOps};
use harness::backend::emulated::{CmdMatch, Counters, Fault};
use harness::fabric::Access;
use harness::initiator::{Command, Completion, DataMode, HostQueue, InitiatorError, IoQueue};
use harness::wire::{RwCommand, SglRepr, SqeCommand};

use crate::framework::backends::{BackendFault, BackendRef};
use crate::framework::counters::{self, BackendDid, Sent};
use crate::framework::dut::expect_errno;
use crate::framework::session::{block_holds, pattern, Session, SessionOpts, FE_NSID};
use crate::framework::{blame, wait, Case, Dut, Failure, Need};
use crate::{check, check_eq};
use harness::wire::Status;

const BOUND: Duration = Duration::from_secs(5);
/// Backend command timeout of these cases' controllers.
const TIMEOUT_US: u32 = 1_000_000;
const RW: OffloadOps = OffloadOps::READ.union(OffloadOps::WRITE);

/// The op a fault case sends: a read when the device offloads reads, else a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultOp {
    Read,
    Write,
}

impl FaultOp {
    fn of(d: &Dut) -> FaultOp {
        if d.caps.offload_ops_allowed(OffloadOps::READ) {
            FaultOp::Read
        } else {
            FaultOp::Write
        }
    }

    /// Fails unless `status` is an error: the command's backend failed or never completed.
    /// A write answered with success there was acknowledged before its backend completed
    /// it (`DP-ACK-AFTER-BACKEND`); a read, the requirement in force.
    fn not_success(self, status: Status, what: &str) -> Result<(), Failure> {
        let _rule = (self == FaultOp::Write).then(|| blame::under("DP-ACK-AFTER-BACKEND"));
        check!(
            !status.is_success(),
            "{what} {} answered with success",
            self.name()
        );
        Ok(())
    }

    fn name(self) -> &'static str {
        match self {
            FaultOp::Read => "read",
            FaultOp::Write => "write",
        }
    }

    /// Sends the op on block `slba` and fails unless it is answered, with an error
    /// ([`FaultOp::not_success`]); `what` names the command in the messages ("the stuck").
    async fn fails(self, io: &mut IoQueue, slba: u64, what: &str) -> Result<(), Failure> {
        let r = self.send(io, slba).await.map_err(|e| {
            Failure::from(e).context(format!("{what} {} got no answer", self.name()))
        })?;
        self.not_success(r.cqe.status, what)
    }

    /// Waits for the op started in the background (`h`, [`op_in_background`]) and fails
    /// unless it is answered, with an error; `what` names it in the messages ("the stuck").
    async fn background_fails(self, h: BackgroundOp, what: &str) -> Result<(), Failure> {
        let (_, r) = h.await.map_err(|e| Failure::from(e).context("host task"))?;
        let status = r.map_err(|e| {
            Failure::from(e).context(format!("{what} {} got no answer", self.name()))
        })?;
        self.not_success(status, what)
    }

    /// Sends the op on block 0 to a controller that failed and fails unless it is answered
    /// with an error before the command timeout: the device knows the controller is dead
    /// (`failed` says how, in the message) and waits on nothing.
    async fn fails_at_once(
        self,
        io: &mut IoQueue,
        what: &str,
        failed: &str,
    ) -> Result<(), Failure> {
        let t0 = tokio::time::Instant::now();
        let r = self.send(io, 0).await?;
        let took = t0.elapsed();
        self.not_success(r.cqe.status, what)?;
        check!(
            took < Duration::from_micros(TIMEOUT_US.into()),
            "answered after {took:?}: the device waited on a controller {failed}"
        );
        Ok(())
    }

    /// Sends the op on block `slba` (a write writes a pattern) and waits for its answer.
    async fn send(self, io: &mut IoQueue, slba: u64) -> Result<Completion, InitiatorError> {
        match self {
            FaultOp::Read => io.read(slba, 1, DataMode::Keyed).await,
            FaultOp::Write => {
                let data = pattern(io.lba_size() as usize, slba as u8);
                io.write(slba, &data, DataMode::Keyed).await
            }
        }
    }
}

/// `n` commands of `op` sent, `errors` of them failed (for [`counters::moved`]).
fn sent(op: FaultOp, n: u64, errors: u64) -> Sent {
    match op {
        FaultOp::Read => Sent {
            reads: n,
            writes: 0,
            errors,
        },
        FaultOp::Write => Sent {
            reads: 0,
            writes: n,
            errors,
        },
    }
}

fn counters_of(d: &Dut, ctrl: CtrlHandle) -> Result<NsCounters, Failure> {
    Ok(d.provider.ns_counters(ctrl, FE_NSID)?)
}

/// Whether the device can read back what the case wrote (else the case looks at the
/// backend's media).
fn reads(d: &Dut) -> bool {
    d.caps.offload_ops_allowed(OffloadOps::READ)
}

/// The queue serves I/O to block `slba` (of `backend`): a write of `pattern(seed)` read
/// back (or found on the media, when the device does not offload reads), or a read when
/// it offloads only reads. `what` says when, for the messages.
async fn serves(
    d: &Dut,
    io: &mut IoQueue,
    backend: &BackendRef,
    (slba, seed): (u64, u8),
    what: &str,
) -> Result<(), Failure> {
    if !d.caps.offload_ops_allowed(OffloadOps::WRITE) {
        let r = io.read(slba, 1, DataMode::Keyed).await?;
        check_eq!(r.cqe.status, Status::SUCCESS, "read {what}");
        return Ok(());
    }
    let data = pattern(io.lba_size() as usize, seed);
    let w = io.write(slba, &data, DataMode::Keyed).await?;
    check_eq!(w.cqe.status, Status::SUCCESS, "write {what}");
    let what = format!("block {slba} {what}");
    block_holds(io, backend, reads(d), (slba, &data), &what).await
}

/// The controller fails: emulated at once, real through AER on its root port.
async fn pci_error(b: &BackendRef) -> Result<(), Failure> {
    b.inject(BackendFault::PciError).await
}

/// The backend stops completing `op`: an emulated controller every command matching `on`,
/// the real one the next read it passes to its backing store (its broker holds reads
/// only: a case that holds a write there declares [`Need::EmulatedBackend`]).
async fn stall(b: &BackendRef, op: FaultOp, on: CmdMatch) -> Result<(), Failure> {
    check!(
        op == FaultOp::Read || !b.is_real(),
        "the real controller's fault broker holds reads only, and this device offloads no \
         reads to hold"
    );
    b.inject(BackendFault::Stall { on }).await
}

/// [`stall`] on every command, after reading what an emulated controller counted so far
/// (QEMU's has no such counters: `None`).
async fn stall_counted(b: &BackendRef, op: FaultOp) -> Result<Option<Counters>, Failure> {
    let was = b.counters_if_emulated()?;
    stall(b, op, CmdMatch::Any).await?;
    Ok(was)
}

/// [`counters::backend_moved`] on an emulated controller whose counters were read (`was`,
/// from [`stall_counted`]); on the real one only the device's own counters say it.
fn emulated_moved(b: &BackendRef, was: Option<Counters>, did: BackendDid) -> Result<(), Failure> {
    match (b, was) {
        (BackendRef::Emulated(c), Some(was)) => counters::backend_moved(&was, &c.counters()?, did),
        _ => Ok(()),
    }
}

/// How long a command sent in the background takes to reach the backend: on the real
/// controller it crosses soft-RoCE and QEMU's device model, far slower than the sim, yet
/// the wait must stay well inside the command timeout (not scaled: [`TIMEOUT_US`] is
/// what the device is told), or the case would see the timeout it waits before.
fn reach(b: &BackendRef) -> Duration {
    if b.is_real() {
        Duration::from_micros(u64::from(TIMEOUT_US) * 3 / 10)
    } else {
        Duration::from_millis(50)
    }
}

async fn session(d: &Dut) -> Result<Session, Failure> {
    let opts = SessionOpts {
        format: d.ns_format(),
        cmd_timeout_us: TIMEOUT_US,
        ..Default::default()
    };
    d.session(&opts, 4420).await
}

/// How often [`expect_event`] polls for an event.
const EVENT_POLL: Duration = Duration::from_millis(1);

/// Waits for the next offload event and checks it, under the requirement that the device
/// raises it (`PCI-EVENT`, `TMO-EVENT`).
async fn expect_event(
    d: &Dut,
    want: impl Fn(&OffloadEvent) -> bool,
    what: &str,
) -> Result<OffloadEvent, Failure> {
    let _rule = blame::under(if what.contains("PCI") {
        "PCI-EVENT"
    } else {
        "TMO-EVENT"
    });
    // Polled, not awaited: the API's non-blocking poll_event must hand the event over too
    // (the other cases wait with next_event).
    let deadline = tokio::time::Instant::now() + wait(BOUND);
    let ev = loop {
        if let Some(ev) = d.provider.poll_event() {
            break ev;
        }
        check!(
            tokio::time::Instant::now() < deadline,
            "no {what} event within {} s (poll_event)",
            wait(BOUND).as_secs()
        );
        tokio::time::sleep(EVENT_POLL).await;
    };
    check!(want(&ev), "expected {what}, got {ev}");
    Ok(ev)
}

/// [`expect_event`]: NVME_PCI_ERR naming `ctrl`.
async fn pci_err_event(d: &Dut, ctrl: CtrlHandle) -> Result<OffloadEvent, Failure> {
    expect_event(
        d,
        |e| *e == OffloadEvent::NvmePciErr { ctrl },
        "NVME_PCI_ERR",
    )
    .await
}

/// [`expect_event`]: NVME_TIMEOUT naming `ctrl`.
async fn timeout_event(d: &Dut, ctrl: CtrlHandle) -> Result<OffloadEvent, Failure> {
    let names =
        |e: &OffloadEvent| matches!(e, OffloadEvent::NvmeTimeout { ctrl: c, .. } if *c == ctrl);
    expect_event(d, names, "NVME_TIMEOUT").await
}

/// Sends `n` one-block commands of `op` (blocks 0..n, keyed slices of one region) without
/// waiting; their CIDs.
fn submit_many(q: &mut HostQueue, op: FaultOp, n: u32, lba: u32) -> Result<Vec<u16>, Failure> {
    let access = match op {
        FaultOp::Read => Access::LOCAL_WRITE | Access::REMOTE_WRITE,
        FaultOp::Write => Access::LOCAL_WRITE | Access::REMOTE_READ,
    };
    let mr = q.ctx().reg_mr(q.pd(), u64::from(n * lba), access)?;
    (0..n)
        .map(|i| {
            let rw = RwCommand::new(u64::from(i), 1);
            let command = match op {
                FaultOp::Read => SqeCommand::Read(rw),
                FaultOp::Write => SqeCommand::Write(rw),
            };
            let sgl = SglRepr::keyed(mr.addr + u64::from(i * lba), lba, mr.rkey);
            Ok(q.submit(
                &Command::Nvme {
                    nsid: FE_NSID,
                    command,
                },
                sgl,
                &[],
            )?)
        })
        .collect()
}

/// An op sent in the background: its queue and its eventual status (or the host error).
type BackgroundOp = tokio::task::JoinHandle<(IoQueue, Result<Status, InitiatorError>)>;

/// Starts `op` in the background; returns its eventual status (or the host error).
fn op_in_background(mut io: IoQueue, op: FaultOp, slba: u64) -> BackgroundOp {
    tokio::spawn(async move {
        let r = op.send(&mut io, slba).await;
        (io, r.map(|c| c.cqe.status))
    })
}

/// Before a fault: the queue serves `op` (so a device that drops commands anyway is
/// blamed for that, `DP-ANSWERED`, not for the fault handling the case is about).
async fn warm_up(io: &mut IoQueue, op: FaultOp) -> Result<(), Failure> {
    let r = op
        .send(io, 0)
        .await
        .map_err(|e| Failure::from(e).context(format!("the {} before the fault", op.name())))?;
    check_eq!(
        r.cqe.status,
        Status::SUCCESS,
        "the {} before the fault",
        op.name()
    );
    Ok(())
}

/// A session whose queue served the device's fault op ([`warm_up`]); the op and the
/// namespace counters after it.
async fn warmed(d: &Dut) -> Result<(Session, FaultOp, NsCounters), Failure> {
    let mut s = session(d).await?;
    let op = FaultOp::of(d);
    warm_up(&mut s.io, op).await?;
    let before = s.counters(d)?;
    Ok((s, op, before))
}

/// The backend stalls `op`, which is then started in the background on block 0 and given
/// the time to reach it ([`reach`]).
async fn stuck_in_background(
    io: IoQueue,
    backend: &BackendRef,
    op: FaultOp,
) -> Result<BackgroundOp, Failure> {
    stall(backend, op, CmdMatch::Any).await?;
    let h = op_in_background(io, op, 0);
    tokio::time::sleep(reach(backend)).await;
    Ok(h)
}

/// A controller of the session's SRQ made from `a`, its namespace 1 mapped as `fe_nsid`;
/// its handle and its backend (`which`, for the message when it is not on the bus).
fn attach(
    d: &Dut,
    s: &Session,
    a: &NvmeCtrlAttrs,
    fe_nsid: u32,
    which: &str,
) -> Result<(CtrlHandle, BackendRef), Failure> {
    let c = d.provider.create_nvme_ctrl(s.srq.handle, a)?;
    let lba_data_size = d.ns_format().lba_data_size();
    d.provider.map_nsid(
        c,
        &NsMapping {
            fe_nsid,
            nvme_nsid: 1,
            lba_data_size,
        },
    )?;
    let backend = d
        .backends()?
        .backend_of(a)
        .ok_or_else(|| Failure::new(format!("{which} is not on the bus")))?;
    Ok((c, backend))
}

/// A second controller with its own namespace, mapped as fe_nsid 2, on the session's SRQ;
/// its handle and its emulated backend.
fn second_ctrl(d: &Dut, s: &Session) -> Result<(CtrlHandle, BackendRef), Failure> {
    let a = d
        .backends()?
        .create(s.pd, &s.attrs, &s.staging, 1, &[(1, d.ns_format())])?;
    attach(d, s, &a, 2, "the second backend")
}

/// The backend controller fails (NVME_PCI_ERR raised) and software removes it, its
/// namespace unmapped first.
async fn fail_and_remove(d: &Dut, s: &Session) -> Result<(), Failure> {
    pci_error(&s.backend).await?;
    let pci_err = |e: &OffloadEvent| matches!(e, OffloadEvent::NvmePciErr { .. });
    expect_event(d, pci_err, "NVME_PCI_ERR").await?;
    d.provider.unmap_nsid(s.ctrl, FE_NSID)?;
    d.provider.remove_nvme_ctrl(s.srq.handle, s.ctrl)?;
    Ok(())
}

/// The cases of these areas.
pub fn cases() -> Vec<Case> {
    let needs = [Need::Backends, Need::BackendFaults, Need::AnyOps(RW)];
    // What the real controller cannot do, for the cases that need it.
    let held = Need::EmulatedBackend(
        "holds several commands at once (QEMU's blkdebug breakpoint holds one)",
    );
    let armed = Need::EmulatedBackend(
        "fails at a chosen command (QEMU's controller cannot be told to fail at a given \
         command)",
    );
    let apart = Need::EmulatedBackend(
        "fails one backend controller while another of the same SRQ keeps serving (the \
         real controller's queue pairs all fail with it)",
    );
    let held_at_failure = Need::EmulatedBackend(
        "holds a command while the controller fails (QEMU's controller resets only once \
         every request it holds has finished: a stalled one would hang the VM)",
    );
    let held_write = Need::EmulatedBackend(
        "holds a write at the backend (the broker holds reads only: QEMU 7.2's monitor hung \
         resuming a write held by a blkdebug breakpoint)",
    );
    let slow = Need::EmulatedBackend(
        "delays completions by a set time (the broker sets no per-command delay on QEMU's \
         controller)",
    );
    vec![
        Case::new("pci-error", "idle", "PCI-EVENT", "a PCI error on an idle backend controller raises NVME_PCI_ERR naming it", &[Need::Backends, Need::BackendFaults], |d| async move {
            let s = session(&d).await?;
            pci_error(&s.backend).await?;
            pci_err_event(&d, s.ctrl).await?;
            Ok(())
        }),
        Case::new("pci-error", "in-flight-answered", "PCI-INFLIGHT-ANSWERED", "a command in flight when the controller fails is answered with an error status", &[Need::Backends, Need::BackendFaults, Need::AnyOps(RW), held_at_failure], |d| async move {
            let (s, op, before) = warmed(&d).await?;
            let h = stuck_in_background(s.io, &s.backend, op).await?;
            pci_error(&s.backend).await?;
            blame::checking("PCI-INFLIGHT-ANSWERED");
            op.background_fails(h, "the in-flight").await?;
            expect_event(&d, |e| matches!(e, OffloadEvent::NvmePciErr { .. }), "NVME_PCI_ERR").await?;
            counters::moved(&before, &counters_of(&d, s.ctrl)?, sent(op, 1, 1))
        }),
        Case::new("pci-error", "many-in-flight-answered", "PCI-INFLIGHT-ANSWERED", "every one of several commands in flight is answered when the controller fails", &[Need::Backends, Need::AnyOps(RW), held], |d| async move {
            let mut s = session(&d).await?;
            s.backend.inject_emulated(Fault::Timeout { on: CmdMatch::Any, delay: None })?;
            let flushes = d.caps.offload_ops_allowed(OffloadOps::FLUSH);
            let op = FaultOp::of(&d);
            let before = s.counters(&d)?;
            let cids = if flushes {
                harness::initiator::misbehave::overrun_sqsize(s.io.queue(), FE_NSID, 8)?
            } else {
                submit_many(s.io.queue(), op, 8, d.ns_format().lba_data_size())?
            };
            tokio::time::sleep(Duration::from_millis(50)).await;
            pci_error(&s.backend).await?;
            blame::checking("PCI-INFLIGHT-ANSWERED");
            for cid in cids {
                let r = s.io.queue().wait_response(cid, wait(BOUND)).await
                    .map_err(|e| Failure::from(e).context(format!("cid {cid} got no answer")))?;
                if flushes {
                    check!(!r.cqe.status.is_success(), "flush cid {cid} answered with success");
                } else {
                    op.not_success(r.cqe.status, &format!("cid {cid}, the"))?;
                }
            }
            if !flushes {
                counters::moved(&before, &s.counters(&d)?, sent(op, 8, 8))?;
            }
            Ok(())
        }),
        Case::new("pci-error", "mid-transfer", "PCI-INFLIGHT-ANSWERED", "a write whose data is still crossing the fabric when its controller fails is answered with an error status", &[Need::Backends, Need::Ops(OffloadOps::WRITE), Need::FabricFaults], |d| async move {
            let s = session(&d).await?;
            // Slow the fabric so the write's RDMA READ of host data is in flight when the
            // controller fails.
            d.fabric.inject(harness::fabric::Fault::Delay(Duration::from_millis(200)))?;
            let data = pattern(d.ns_format().lba_data_size() as usize, 9);
            let mut io = s.io;
            let h = tokio::spawn(async move {
                let r = io.write(0, &data, DataMode::Keyed).await;
                r.map(|c| c.cqe.status)
            });
            tokio::time::sleep(Duration::from_millis(250)).await;
            pci_error(&s.backend).await?;
            blame::checking("PCI-INFLIGHT-ANSWERED");
            let r = h.await.map_err(|e| Failure::from(e).context("host task"))?;
            d.fabric.inject(harness::fabric::Fault::Delay(Duration::ZERO))?;
            let status = r.map_err(|e| Failure::from(e).context("the write got no answer"))?;
            blame::checking("DP-ACK-AFTER-BACKEND");
            check!(!status.is_success(), "the write was acknowledged although its controller failed mid-transfer");
            Ok(())
        }),
        Case::new("pci-error", "later-io-answered", "PCI-INFLIGHT-ANSWERED", "a command sent after the controller failed is answered with an error at once, not left hanging until the command timeout, and raises no event", &needs, |d| async move {
            let mut s = session(&d).await?;
            pci_error(&s.backend).await?;
            expect_event(&d, |e| matches!(e, OffloadEvent::NvmePciErr { .. }), "NVME_PCI_ERR").await?;
            let op = FaultOp::of(&d);
            let before = s.counters(&d)?;
            // The controller is known dead: nothing waits for its command timeout.
            op.fails_at_once(&mut s.io, "after the PCI error, the", "it knows has failed").await?;
            counters::moved(&before, &s.counters(&d)?, sent(op, 1, 1))?;
            d.no_event("PCI-INFLIGHT-ANSWERED", "a command sent to the failed controller").await
        }),
        Case::new("pci-error", "device-injected", "PCI-EVENT", "a device that makes its own path to a backend controller fail (inject_pci_error, ABI 2) reports it as a PCI error: NVME_PCI_ERR naming the controller, a command sent after it answered with an error at once without reaching the controller; asked for a controller it does not have, EINVAL", &[Need::Backends, Need::AnyOps(RW), Need::PciErrorHook], |d| async move {
            let mut s = session(&d).await?;
            let op = FaultOp::of(&d);
            warm_up(&mut s.io, op).await?;
            let unknown = CtrlHandle(s.ctrl.0.wrapping_add(1000));
            expect_errno(d.provider.inject_pci_error(unknown), nix::errno::Errno::EINVAL, "inject_pci_error for a controller the device does not have")?;
            d.no_event("PCI-EVENT", "a refused inject_pci_error").await?;
            d.provider.inject_pci_error(s.ctrl)?;
            pci_err_event(&d, s.ctrl).await?;
            blame::checking("PCI-INFLIGHT-ANSWERED");
            let fetched = s.backend.counters_if_emulated()?.map(|c| c.commands);
            op.fails_at_once(&mut s.io, "after the device's PCI error, the", "it failed itself").await?;
            if let (Some(before), Some(now)) = (fetched, s.backend.counters_if_emulated()?) {
                check_eq!(now.commands, before, "commands the failed path still passed to the controller");
            }
            d.no_event("PCI-INFLIGHT-ANSWERED", "a command sent after the device's PCI error").await
        }),
        Case::new("pci-error", "other-ctrl-unaffected", "PCI-ISOLATED", "another controller of the same SRQ keeps serving after one fails", &[Need::Backends, Need::AnyOps(RW), apart], |d| async move {
            let s = session(&d).await?;
            let (_b, b2) = second_ctrl(&d, &s)?;
            let (io, _, _) = d.connect_queue(&s.srq, s.pd, s.sw, &SessionOpts { format: d.ns_format(), ..Default::default() }, 4421).await?;
            let mut io2 = IoQueue::new(io.into_inner(), 2, d.ns_format().lba_data_size());
            pci_error(&s.backend).await?;
            pci_err_event(&d, s.ctrl).await?;
            serves(&d, &mut io2, &b2, (1, 4), "on the healthy controller").await
        }),
        Case::new("pci-error", "recreate", "PCI-RECOVER", "after removing the failed controller and creating a new one, I/O to the namespace works again", &needs, |d| async move {
            let mut s = session(&d).await?;
            fail_and_remove(&d, &s).await?;
            let a = d.backends()?.create(s.pd, &s.attrs, &s.staging, 1, &[(1, d.ns_format())])?;
            let (_, b) = attach(&d, &s, &a, FE_NSID, "the new backend")?;
            serves(&d, &mut s.io, &b, (2, 6), "after re-creation").await
        }),
        Case::new("pci-error", "acknowledged-writes-kept", "PCI-NO-ACKED-WRITE-LOST", "writes acknowledged before a PCI error read back after software moves the namespace to a new controller", &[Need::Backends, Need::BackendFaults, Need::Ops(OffloadOps::WRITE)], |d| async move {
            let mut s = session(&d).await?;
            let bs = d.ns_format().lba_data_size() as usize;
            let mut acked = Vec::new();
            for i in 0..8u64 {
                let data = pattern(bs, 40 + i as u8);
                let w = s.io.write(i, &data, DataMode::Keyed).await?;
                if w.cqe.status.is_success() {
                    acked.push((i, data));
                }
            }
            check_eq!(acked.len(), 8, "writes acknowledged before the fault");
            fail_and_remove(&d, &s).await?;
            // The media survives the controller: software hands the namespace to a new one
            // (the real controller keeps it, and is reset for the new queue pair).
            let a = d.backends()?.create_taking(s.pd, &s.attrs, &s.staging, &s.backend, (1, d.ns_format()))?;
            let (_, b) = attach(&d, &s, &a, FE_NSID, "the new backend")?;
            for (slba, data) in acked {
                let what = format!("acknowledged write to block {slba}");
                block_holds(&mut s.io, &b, reads(&d), (slba, &data), &what).await?;
            }
            Ok(())
        }),
        Case::new("pci-error", "on-a-later-command", "PCI-INFLIGHT-ANSWERED", "a controller that fails when it fetches the second command from now (a PCI error armed on command 2) serves the first with success and answers the second with an error, raising NVME_PCI_ERR naming it", &[Need::Backends, Need::AnyOps(RW), armed], |d| async move {
            let mut s = session(&d).await?;
            let op = FaultOp::of(&d);
            let before = s.counters(&d)?;
            s.backend.inject_emulated(Fault::PciErrorOn(CmdMatch::Nth(2)))?;
            let r = op.send(&mut s.io, 1).await?;
            check_eq!(r.cqe.status, Status::SUCCESS, "the {} before the armed command", op.name());
            d.no_event("PCI-EVENT", "the command before the armed one").await?;
            let _rule = blame::under("PCI-INFLIGHT-ANSWERED");
            op.fails(&mut s.io, 2, "the failing").await?;
            pci_err_event(&d, s.ctrl).await?;
            counters::moved(&before, &s.counters(&d)?, sent(op, 2, 1))
        }),
        Case::new("pci-error", "on-a-read", "PCI-INFLIGHT-ANSWERED", "a controller that fails on the first read it fetches (a PCI error armed on opcode 02h) first serves a write, whose data reaches the media, then answers the read with an error and raises NVME_PCI_ERR naming it", &[Need::Backends, Need::Ops(RW), armed], |d| async move {
            let mut s = session(&d).await?;
            warm_up(&mut s.io, FaultOp::Read).await?;
            let before = s.counters(&d)?;
            s.backend.inject_emulated(Fault::PciErrorOn(CmdMatch::Opcode(0x02)))?;
            let w = FaultOp::Write.send(&mut s.io, 4).await?;
            check_eq!(w.cqe.status, Status::SUCCESS, "the write before the read");
            check!(s.backend.read_block(4)? == pattern(d.ns_format().lba_data_size() as usize, 4), "the write's data is not on the media");
            d.no_event("PCI-EVENT", "a write to a controller armed to fail on reads").await?;
            let _rule = blame::under("PCI-INFLIGHT-ANSWERED");
            FaultOp::Read.fails(&mut s.io, 4, "the failing").await?;
            pci_err_event(&d, s.ctrl).await?;
            counters::moved(&before, &s.counters(&d)?, Sent { reads: 1, writes: 1, errors: 1 })
        }),
        Case::new("timeout", "event-and-answer", "TMO-EVENT", "a backend command that never completes raises NVME_TIMEOUT naming the controller and is answered with an error; it reached the backend once (not resubmitted)", &needs, |d| async move {
            let (mut s, op, before) = warmed(&d).await?;
            let backend_before = stall_counted(&s.backend, op).await?;
            blame::checking("TMO-EVENT");
            op.fails(&mut s.io, 0, "the timed-out").await?;
            timeout_event(&d, s.ctrl).await?;
            counters::moved(&before, &s.counters(&d)?, sent(op, 1, 1))?;
            // Not resubmitted: an emulated controller counts what it fetched (QEMU's has no
            // such counter, so on the real one only the device's own counters say it).
            emulated_moved(&s.backend, backend_before, BackendDid { commands: 1, dropped: 1, ..BackendDid::default() })
        }),
        Case::new("timeout", "not-before-timeout", "TMO-ANSWERED", "a stuck command is not answered before the controller's command timeout", &needs, |d| async move {
            let mut s = session(&d).await?;
            let op = FaultOp::of(&d);
            stall(&s.backend, op, CmdMatch::Any).await?;
            let t0 = tokio::time::Instant::now();
            let answer = op.send(&mut s.io, 0).await;
            let took = t0.elapsed();
            if let Ok(c) = &answer {
                op.not_success(c.cqe.status, "the stuck")?;
            }
            check!(took >= Duration::from_micros(TIMEOUT_US.into()), "answered after {took:?}, before the {TIMEOUT_US} µs timeout");
            Ok(())
        }),
        Case::new("timeout", "late-completion", "TMO-RECOVER", "a command completing after its timeout is answered once (with the error) and the queue keeps working", &needs, |d| async move {
            let (mut s, op, before) = warmed(&d).await?;
            // Emulated: the completion comes 3 s late. Real: the command is held until the
            // broker lifts the breakpoint, after its timeout.
            if s.backend.is_real() {
                stall(&s.backend, op, CmdMatch::Nth(1)).await?;
            } else {
                s.backend.inject_emulated(Fault::Timeout { on: CmdMatch::Nth(1), delay: Some(Duration::from_secs(3)) })?;
            }
            let stuck = blame::under("TMO-EVENT");
            let r = op.send(&mut s.io, 0).await?;
            op.not_success(r.cqe.status, "the timed-out")?;
            drop(stuck);
            if s.backend.is_real() {
                s.backend.inject(BackendFault::Resume).await?;
                tokio::time::sleep(wait(Duration::from_secs(2))).await;
            } else {
                tokio::time::sleep(Duration::from_secs(4)).await;
            }
            check!(s.io.queue().take_any_response()?.is_none(), "a second answer arrived for the timed-out command");
            // The late completion is not counted a second time.
            counters::moved(&before, &s.counters(&d)?, sent(op, 1, 1))?;
            serves(&d, &mut s.io, &s.backend, (5, 7), "after the late completion").await
        }),
        Case::new("timeout", "write-not-acknowledged-early", "DP-ACK-AFTER-BACKEND", "a write whose backend command never completes is never acknowledged with success", &[Need::Backends, Need::Ops(OffloadOps::WRITE), held_write], |d| async move {
            let mut s = session(&d).await?;
            stall(&s.backend, FaultOp::Write, CmdMatch::Any).await?;
            let data = pattern(d.ns_format().lba_data_size() as usize, 8);
            let stuck = blame::under("TMO-EVENT");
            let r = s.io.write(0, &data, DataMode::Keyed).await
                .map_err(|e| Failure::from(e).context("the stuck write got no answer"))?;
            drop(stuck);
            check!(!r.cqe.status.is_success(), "the write was acknowledged although the backend never completed it");
            Ok(())
        }),
        Case::new("timeout", "only-the-stuck-command", "TMO-RECOVER", "only the stuck command times out: the next one is served normally", &needs, |d| async move {
            let (mut s, op, before) = warmed(&d).await?;
            stall(&s.backend, op, CmdMatch::Nth(1)).await?;
            let stuck = blame::under("TMO-EVENT");
            let r = op.send(&mut s.io, 0).await?;
            op.not_success(r.cqe.status, "the stuck")?;
            drop(stuck);
            let _ = expect_event(&d, |e| matches!(e, OffloadEvent::NvmeTimeout { .. }), "NVME_TIMEOUT").await?;
            let r = op.send(&mut s.io, 0).await?;
            check_eq!(r.cqe.status, Status::SUCCESS, "the next {}'s status", op.name());
            counters::moved(&before, &s.counters(&d)?, sent(op, 2, 1))
        }),
        Case::new("timeout", "other-opcode-served", "TMO-RECOVER", "while a backend stalls every read (a fault on opcode 02h only), a write sent after a stuck read is served at once and reaches the media; the read alone times out, with NVME_TIMEOUT", &[Need::Backends, Need::BackendFaults, Need::Ops(RW)], |d| async move {
            let mut s = session(&d).await?;
            warm_up(&mut s.io, FaultOp::Read).await?;
            let before = s.counters(&d)?;
            stall(&s.backend, FaultOp::Read, CmdMatch::Opcode(0x02)).await?;
            let t0 = tokio::time::Instant::now();
            let cids = submit_many(s.io.queue(), FaultOp::Read, 1, d.ns_format().lba_data_size())?;
            let w = FaultOp::Write.send(&mut s.io, 3).await?;
            check_eq!(w.cqe.status, Status::SUCCESS, "the write sent while a read is stuck");
            let took = t0.elapsed();
            check!(took < Duration::from_micros(TIMEOUT_US.into()), "the write was answered {took:?} after the stuck read was sent: it waited for the read's timeout");
            check!(s.backend.read_block(3)? == pattern(d.ns_format().lba_data_size() as usize, 3), "the write's data is not on the media");
            let stuck = blame::under("TMO-EVENT");
            let r = s.io.queue().wait_response(cids[0], wait(BOUND)).await
                .map_err(|e| Failure::from(e).context("the stuck read got no answer"))?;
            FaultOp::Read.not_success(r.cqe.status, "the stuck")?;
            drop(stuck);
            timeout_event(&d, s.ctrl).await?;
            counters::moved(&before, &s.counters(&d)?, Sent { reads: 1, writes: 1, errors: 1 })
        }),
        Case::new("timeout", "stall-lifted", "TMO-RECOVER", "a backend that stalls every command, times one out (an error and NVME_TIMEOUT naming the controller) and then recovers serves the next command with success: the device does not give up on a controller after a timeout, and resubmits nothing to it", &needs, |d| async move {
            let (mut s, op, before) = warmed(&d).await?;
            let backend_before = stall_counted(&s.backend, op).await?;
            let stuck = blame::under("TMO-EVENT");
            op.fails(&mut s.io, 0, "the stuck").await?;
            timeout_event(&d, s.ctrl).await?;
            drop(stuck);
            // The backend recovers: its stall is lifted (the real controller's held command
            // then completes, late: the device must not answer it again).
            s.backend.inject(BackendFault::Resume).await?;
            serves(&d, &mut s.io, &s.backend, (6, 9), "once the backend recovered").await?;
            // The stuck command, then what `serves` sent: a write and its read back (a read
            // alone when the device does not offload writes).
            let stuck = sent(op, 1, 1);
            let (reads_after, writes_after) = if d.caps.offload_ops_allowed(OffloadOps::WRITE) { (u64::from(reads(&d)), 1) } else { (1, 0) };
            counters::moved(&before, &s.counters(&d)?, Sent { reads: stuck.reads + reads_after, writes: stuck.writes + writes_after, errors: 1 })?;
            // The stuck command stays stuck at the backend; the ones after it succeed there
            // (counted by an emulated controller only).
            emulated_moved(&s.backend, backend_before, BackendDid { commands: 1 + reads_after + writes_after, dropped: 1, ..BackendDid::default() })
        }),
        Case::new("timeout", "slow-backend-waited", "DP-ACK-AFTER-BACKEND", "a write whose backend completes 300 ms late (well within the 1 s command timeout) is acknowledged with success no earlier than its backend completed it, and raises no event; a read (when offloaded) returns the data only then", &[Need::Backends, Need::Ops(OffloadOps::WRITE), slow], |d| async move {
            let mut s = session(&d).await?;
            let delay = Duration::from_millis(300);
            s.backend.inject_emulated(Fault::SlowCompletions { delay })?;
            let data = pattern(d.ns_format().lba_data_size() as usize, 13);
            let t0 = tokio::time::Instant::now();
            let w = s.io.write(8, &data, DataMode::Keyed).await?;
            let took = t0.elapsed();
            check_eq!(w.cqe.status, Status::SUCCESS, "the slow write's status");
            check!(took >= delay, "the write was acknowledged after {took:?}, before its backend completed it ({delay:?})");
            check!(s.backend.read_block(8)? == data, "the slow write's data is not on the media");
            if reads(&d) {
                let t0 = tokio::time::Instant::now();
                let r = s.io.read(8, 1, DataMode::Keyed).await?;
                let took = t0.elapsed();
                check_eq!(r.cqe.status, Status::SUCCESS, "the slow read's status");
                check!(took >= delay, "the read was answered after {took:?}, before its backend completed it ({delay:?})");
                check!(r.data == data, "the slow read returned other data than the block written");
            }
            d.no_event("TMO-EVENT", "commands slower than usual but within the timeout").await
        }),
        Case::new("timeout", "removed-controller-answers-stuck", "DP-ANSWERED", "a command stuck in a backend controller that software unmaps and removes before its timeout is answered with an error when the controller goes, not dropped", &needs, |d| async move {
            let (s, op, before) = warmed(&d).await?;
            let h = stuck_in_background(s.io, &s.backend, op).await?;
            let k = counters_of(&d, s.ctrl)?;
            d.provider.unmap_nsid(s.ctrl, FE_NSID)?;
            d.provider.remove_nvme_ctrl(s.srq.handle, s.ctrl)?;
            let t0 = tokio::time::Instant::now();
            op.background_fails(h, "the stuck").await?;
            let took = t0.elapsed();
            check!(
                took < Duration::from_micros(TIMEOUT_US.into()),
                "answered {took:?} after its controller was removed: it waited for the command timeout"
            );
            // Nothing was answered before the removal; the counters read then are final
            // for the namespace (it is unmapped now).
            counters::moved(&before, &k, sent(op, 0, 0))?;
            d.no_event("DP-ANSWERED", "removing a controller with a command in it").await
        }),
    ]
}
