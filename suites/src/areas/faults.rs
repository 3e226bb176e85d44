//! Areas `pci-error` and `timeout`: backend controller failures injected at the
//! interesting moments. The device must report them with the right controller, answer
//! every affected command (never drop it), keep other controllers serving, and work again
//! once software re-creates the controller.

use std::sync::Arc;
use std::time::Duration;

use harness::api::{CtrlHandle, NsMapping, OffloadEvent, OffloadOps};
use harness::initiator::{DataMode, InitiatorError, IoQueue};
use reference_target::backend::{BackendController, CmdMatch, Fault};

use crate::offload::session::{pattern, Session, SessionOpts, FE_NSID};
use crate::offload::{blame, wait, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const BOUND: Duration = Duration::from_secs(5);
/// Backend command timeout of these cases' controllers.
const TIMEOUT_US: u32 = 1_000_000;
const RW: OffloadOps = OffloadOps::READ.union(OffloadOps::WRITE);

fn inject(b: &Arc<BackendController>, f: Fault) -> Result<(), Failure> {
    b.inject(f)
        .map_err(|e| Failure::from(e).context("fault injection"))
}

async fn session(d: &Dut) -> Result<Session, Failure> {
    let opts = SessionOpts {
        format: d.ns_format(),
        cmd_timeout_us: TIMEOUT_US,
        ..Default::default()
    };
    d.session(&opts, 4420).await
}

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
    let ev = tokio::time::timeout(wait(BOUND), d.provider.next_event())
        .await
        .map_err(|_| {
            Failure::new(format!(
                "no {what} event within {} s",
                wait(BOUND).as_secs()
            ))
        })?;
    check!(want(&ev), "expected {what}, got {ev}");
    Ok(ev)
}

/// Starts a read in the background; returns its eventual status (or the host error).
fn read_in_background(
    mut io: IoQueue,
    slba: u64,
) -> tokio::task::JoinHandle<(IoQueue, Result<harness::wire::Status, InitiatorError>)> {
    tokio::spawn(async move {
        let r = io.read(slba, 1, DataMode::Keyed).await;
        (io, r.map(|c| c.cqe.status))
    })
}

/// Before a fault: the queue serves a read (so a device that drops commands anyway is
/// blamed for that, `DP-ANSWERED`, not for the fault handling the case is about).
async fn warm_up(io: &mut IoQueue) -> Result<(), Failure> {
    let r = io
        .read(0, 1, DataMode::Keyed)
        .await
        .map_err(|e| Failure::from(e).context("the read before the fault"))?;
    check!(
        r.cqe.status.is_success(),
        "the read before the fault: {}",
        r.cqe.status
    );
    Ok(())
}

/// A second controller with its own namespace, mapped as fe_nsid 2, on the session's SRQ.
fn second_ctrl(d: &Dut, s: &Session) -> Result<CtrlHandle, Failure> {
    let a = d
        .backends()?
        .create(s.pd, &s.attrs, &s.staging, 1, &[(1, d.ns_format())])?;
    let c = d.provider.create_nvme_ctrl(s.srq.handle, &a)?;
    d.provider.map_nsid(
        c,
        &NsMapping {
            fe_nsid: 2,
            nvme_nsid: 1,
            lba_data_size: d.ns_format().lba_data_size(),
        },
    )?;
    Ok(c)
}

/// The cases of these areas.
pub fn cases() -> Vec<Case> {
    let needs = [Need::Backends, Need::Ops(RW)];
    vec![
        Case::new("pci-error", "idle", "PCI-EVENT", "a PCI error on an idle backend controller raises NVME_PCI_ERR naming it", &needs, |d| async move {
            let s = session(&d).await?;
            inject(&s.backend, Fault::PciError)?;
            expect_event(&d, |e| *e == OffloadEvent::NvmePciErr { ctrl: s.ctrl }, "NVME_PCI_ERR").await?;
            Ok(())
        }),
        Case::new("pci-error", "in-flight-answered", "PCI-INFLIGHT-ANSWERED", "a command in flight when the controller fails is answered with an error status", &needs, |d| async move {
            let mut s = session(&d).await?;
            warm_up(&mut s.io).await?;
            inject(&s.backend, Fault::Timeout { on: CmdMatch::Any, delay: None })?;
            let h = read_in_background(s.io, 0);
            tokio::time::sleep(Duration::from_millis(50)).await;
            inject(&s.backend, Fault::PciError)?;
            blame::checking("PCI-INFLIGHT-ANSWERED");
            let (_, r) = h.await.map_err(|e| Failure::from(e).context("host task"))?;
            let status = r.map_err(|e| Failure::from(e).context("the in-flight read got no answer"))?;
            check!(!status.is_success(), "the in-flight read was answered with success");
            expect_event(&d, |e| matches!(e, OffloadEvent::NvmePciErr { .. }), "NVME_PCI_ERR").await?;
            Ok(())
        }),
        Case::new("pci-error", "many-in-flight-answered", "PCI-INFLIGHT-ANSWERED", "every one of several commands in flight is answered when the controller fails", &needs, |d| async move {
            let mut s = session(&d).await?;
            inject(&s.backend, Fault::Timeout { on: CmdMatch::Any, delay: None })?;
            let cids = harness::initiator::misbehave::overrun_sqsize(s.io.queue(), FE_NSID, 8)?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            inject(&s.backend, Fault::PciError)?;
            blame::checking("PCI-INFLIGHT-ANSWERED");
            for cid in cids {
                let r = s.io.queue().wait_response(cid, wait(BOUND)).await
                    .map_err(|e| Failure::from(e).context(format!("flush cid {cid} got no answer")))?;
                check!(!r.cqe.status.is_success(), "flush cid {cid} answered with success");
            }
            Ok(())
        }),
        Case::new("pci-error", "mid-transfer", "PCI-INFLIGHT-ANSWERED", "a write whose data is still crossing the fabric when its controller fails is answered with an error status", &[Need::Backends, Need::Ops(RW), Need::FabricFaults], |d| async move {
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
            inject(&s.backend, Fault::PciError)?;
            blame::checking("PCI-INFLIGHT-ANSWERED");
            let r = h.await.map_err(|e| Failure::from(e).context("host task"))?;
            d.fabric.inject(harness::fabric::Fault::Delay(Duration::ZERO))?;
            let status = r.map_err(|e| Failure::from(e).context("the write got no answer"))?;
            blame::checking("DP-ACK-AFTER-BACKEND");
            check!(!status.is_success(), "the write was acknowledged although its controller failed mid-transfer");
            Ok(())
        }),
        Case::new("pci-error", "later-io-answered", "PCI-INFLIGHT-ANSWERED", "a command sent after the controller failed is answered with an error, not left hanging", &needs, |d| async move {
            let mut s = session(&d).await?;
            inject(&s.backend, Fault::PciError)?;
            expect_event(&d, |e| matches!(e, OffloadEvent::NvmePciErr { .. }), "NVME_PCI_ERR").await?;
            let r = s.io.read(0, 1, DataMode::Keyed).await?;
            check!(!r.cqe.status.is_success(), "read after the PCI error answered with success");
            Ok(())
        }),
        Case::new("pci-error", "other-ctrl-unaffected", "PCI-ISOLATED", "another controller of the same SRQ keeps serving after one fails", &needs, |d| async move {
            let s = session(&d).await?;
            let _b = second_ctrl(&d, &s)?;
            let (io, _, _) = d.connect_queue(&s.srq, s.pd, s.sw, &SessionOpts { format: d.ns_format(), ..Default::default() }, 4421).await?;
            let mut io2 = IoQueue::new(io.into_inner(), 2, d.ns_format().lba_data_size());
            inject(&s.backend, Fault::PciError)?;
            expect_event(&d, |e| *e == OffloadEvent::NvmePciErr { ctrl: s.ctrl }, "NVME_PCI_ERR").await?;
            let data = pattern(d.ns_format().lba_data_size() as usize, 4);
            let w = io2.write(1, &data, DataMode::Keyed).await?;
            check!(w.cqe.status.is_success(), "write to the healthy controller: {}", w.cqe.status);
            let r = io2.read(1, 1, DataMode::Keyed).await?;
            check!(r.data == data, "data of the healthy controller");
            Ok(())
        }),
        Case::new("pci-error", "recreate", "PCI-RECOVER", "after removing the failed controller and creating a new one, I/O to the namespace works again", &needs, |d| async move {
            let mut s = session(&d).await?;
            inject(&s.backend, Fault::PciError)?;
            expect_event(&d, |e| matches!(e, OffloadEvent::NvmePciErr { .. }), "NVME_PCI_ERR").await?;
            d.provider.unmap_nsid(s.ctrl, FE_NSID)?;
            d.provider.remove_nvme_ctrl(s.srq.handle, s.ctrl)?;
            let a = d.backends()?.create(s.pd, &s.attrs, &s.staging, 1, &[(1, d.ns_format())])?;
            let c = d.provider.create_nvme_ctrl(s.srq.handle, &a)?;
            d.provider.map_nsid(c, &NsMapping { fe_nsid: FE_NSID, nvme_nsid: 1, lba_data_size: d.ns_format().lba_data_size() })?;
            let data = pattern(d.ns_format().lba_data_size() as usize, 6);
            let w = s.io.write(2, &data, DataMode::Keyed).await?;
            check!(w.cqe.status.is_success(), "write after re-creation: {}", w.cqe.status);
            check!(s.io.read(2, 1, DataMode::Keyed).await?.data == data, "data after re-creation");
            Ok(())
        }),
        Case::new("pci-error", "acknowledged-writes-kept", "PCI-NO-ACKED-WRITE-LOST", "writes acknowledged before a PCI error read back after software moves the namespace to a new controller", &needs, |d| async move {
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
            inject(&s.backend, Fault::PciError)?;
            expect_event(&d, |e| matches!(e, OffloadEvent::NvmePciErr { .. }), "NVME_PCI_ERR").await?;
            d.provider.unmap_nsid(s.ctrl, FE_NSID)?;
            d.provider.remove_nvme_ctrl(s.srq.handle, s.ctrl)?;
            // The media survives the controller: software hands the namespace to a new one.
            let ns = s
                .backend
                .remove_namespace(1)
                .map_err(|e| Failure::from(e).context("taking the namespace back"))?;
            let a = d.backends()?.create_with(s.pd, &s.attrs, &s.staging, 1, vec![ns])?;
            let c = d.provider.create_nvme_ctrl(s.srq.handle, &a)?;
            d.provider.map_nsid(c, &NsMapping { fe_nsid: FE_NSID, nvme_nsid: 1, lba_data_size: d.ns_format().lba_data_size() })?;
            for (slba, data) in acked {
                let r = s.io.read(slba, 1, DataMode::Keyed).await?;
                check!(r.cqe.status.is_success(), "read of block {slba}: {}", r.cqe.status);
                check!(r.data == data, "acknowledged write to block {slba} lost");
            }
            Ok(())
        }),
        Case::new("timeout", "event-and-answer", "TMO-EVENT", "a backend command that never completes raises NVME_TIMEOUT naming the controller and is answered with an error", &needs, |d| async move {
            let mut s = session(&d).await?;
            warm_up(&mut s.io).await?;
            inject(&s.backend, Fault::Timeout { on: CmdMatch::Any, delay: None })?;
            blame::checking("TMO-EVENT");
            let r = s.io.read(0, 1, DataMode::Keyed).await
                .map_err(|e| Failure::from(e).context("the timed-out read got no answer"))?;
            check!(!r.cqe.status.is_success(), "timed-out read answered with success");
            expect_event(&d, |e| matches!(e, OffloadEvent::NvmeTimeout { ctrl, .. } if *ctrl == s.ctrl), "NVME_TIMEOUT").await?;
            Ok(())
        }),
        Case::new("timeout", "not-before-timeout", "TMO-ANSWERED", "a stuck command is not answered before the controller's command timeout", &needs, |d| async move {
            let mut s = session(&d).await?;
            inject(&s.backend, Fault::Timeout { on: CmdMatch::Any, delay: None })?;
            let t0 = tokio::time::Instant::now();
            let _ = s.io.read(0, 1, DataMode::Keyed).await;
            let took = t0.elapsed();
            check!(took >= Duration::from_micros(TIMEOUT_US.into()), "answered after {took:?}, before the {TIMEOUT_US} µs timeout");
            Ok(())
        }),
        Case::new("timeout", "late-completion", "TMO-RECOVER", "a command completing after its timeout is answered once (with the error) and the queue keeps working", &needs, |d| async move {
            let mut s = session(&d).await?;
            warm_up(&mut s.io).await?;
            inject(&s.backend, Fault::Timeout { on: CmdMatch::Nth(1), delay: Some(Duration::from_secs(3)) })?;
            let stuck = blame::under("TMO-EVENT");
            let r = s.io.read(0, 1, DataMode::Keyed).await?;
            check!(!r.cqe.status.is_success(), "timed-out read answered with success");
            drop(stuck);
            tokio::time::sleep(Duration::from_secs(4)).await;
            check!(s.io.queue().take_any_response()?.is_none(), "a second answer arrived for the timed-out command");
            let data = pattern(d.ns_format().lba_data_size() as usize, 7);
            let w = s.io.write(5, &data, DataMode::Keyed).await?;
            check!(w.cqe.status.is_success(), "write after the late completion: {}", w.cqe.status);
            check!(s.io.read(5, 1, DataMode::Keyed).await?.data == data, "data after the late completion");
            Ok(())
        }),
        Case::new("timeout", "write-not-acknowledged-early", "DP-ACK-AFTER-BACKEND", "a write whose backend command never completes is never acknowledged with success", &needs, |d| async move {
            let mut s = session(&d).await?;
            inject(&s.backend, Fault::Timeout { on: CmdMatch::Any, delay: None })?;
            let data = pattern(d.ns_format().lba_data_size() as usize, 8);
            let stuck = blame::under("TMO-EVENT");
            let r = s.io.write(0, &data, DataMode::Keyed).await
                .map_err(|e| Failure::from(e).context("the stuck write got no answer"))?;
            drop(stuck);
            check!(!r.cqe.status.is_success(), "the write was acknowledged although the backend never completed it");
            Ok(())
        }),
        Case::new("timeout", "only-the-stuck-command", "TMO-RECOVER", "only the stuck command times out: the next one is served normally", &needs, |d| async move {
            let mut s = session(&d).await?;
            warm_up(&mut s.io).await?;
            inject(&s.backend, Fault::Timeout { on: CmdMatch::Nth(1), delay: None })?;
            let stuck = blame::under("TMO-EVENT");
            let r = s.io.read(0, 1, DataMode::Keyed).await?;
            check!(!r.cqe.status.is_success(), "stuck read answered with success");
            drop(stuck);
            let _ = expect_event(&d, |e| matches!(e, OffloadEvent::NvmeTimeout { .. }), "NVME_TIMEOUT").await?;
            let r = s.io.read(0, 1, DataMode::Keyed).await?;
            check_eq!(r.cqe.status.is_success(), true, "the next read's success");
            Ok(())
        }),
    ]
}
