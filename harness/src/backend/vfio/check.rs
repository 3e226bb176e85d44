//! `nvmf-reference-target --vfio-check`: proves a controller can be driven through VFIO
//! before a target is configured on it. It opens and brings the controller up, prints what
//! Identify says, reads the blocks asked for (printing each status, so an injected media
//! error shows), and, only with the operator's explicit consent naming the device, writes
//! a pattern to one block and reads it back.
//!
//! With a fault broker ([`super::broker`]) it also meets real faults, in the order asked:
//! - **stall**: reads stall on the backing store; a read gets no completion within its bound
//!   while CSTS stays ready (what a backend timeout is on a real controller), and completes
//!   with success once the stall is lifted;
//! - **pci-error**: an uncorrectable AER error on the controller's port; VFIO's error
//!   eventfd must fire, and the controller, reset by the kernel's recovery, completes no
//!   more commands (a read gets no completion, or the controller reads fatal or gone).
//!
//! - **unplug**: the controller is unplugged (`device_del`); VFIO's request eventfd must
//!   fire (the kernel asks for the device back), and the check then releases it.
//!
//! One fault needs no broker:
//! - **controller-fatal**: the driver takes a queue's CQ away from the controller (unmaps
//!   its page from the IOMMU); the controller's next completion write fails, it sets
//!   CSTS.CFS, and the driver must report the controller fatal rather than wait.

use std::time::Duration;

use std::os::fd::AsFd;
use std::time::Instant;

use super::broker::{Broker, RealFault};
use super::controller::{IoQueue, Transfer, VfioController};
use super::sys::{DmaBuffer, Notifier};
use super::sysfs::Roots;
use super::{regs, PciAddress, VfioError};
use crate::wire::Status;

/// A real fault the check meets (through the broker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCheck {
    /// A stalled read, then the stall lifted.
    Stall,
    /// An AER error on the controller's port.
    PciError,
    /// A queue's CQ unmapped from the IOMMU: the controller goes fatal (CSTS.CFS).
    ControllerFatal,
    /// The controller unplugged: VFIO asks for it back.
    Unplug,
}

impl FaultCheck {
    /// Whether the broker injects it (else the driver does).
    pub fn needs_broker(self) -> bool {
        !matches!(self, FaultCheck::ControllerFatal)
    }
}

impl std::str::FromStr for FaultCheck {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultCheck, String> {
        match s {
            "stall" => Ok(FaultCheck::Stall),
            "pci-error" => Ok(FaultCheck::PciError),
            "controller-fatal" => Ok(FaultCheck::ControllerFatal),
            "unplug" => Ok(FaultCheck::Unplug),
            other => Err(format!(
                "unknown fault `{other}` (stall, pci-error, controller-fatal, unplug)"
            )),
        }
    }
}

/// What to do on the controller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckPlan {
    /// Namespace to read and write (0: the first active one).
    pub nsid: u32,
    /// Blocks to read, one command each.
    pub reads: Vec<u64>,
    /// A block to overwrite with a pattern and read back (destructive).
    pub write_verify: Option<u64>,
    /// How long one I/O command may take.
    pub bound: Duration,
    /// Real faults to meet, in order (they need a broker).
    pub faults: Vec<FaultCheck>,
}

/// What the check found: statuses that were not success, and data that did not match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckOutcome {
    /// Reads that completed with an error status, with it.
    pub failed_reads: Vec<(u64, Status)>,
    /// Whether the written block read back the same (when one was written).
    pub verified: Option<bool>,
    /// Each fault met, and whether the controller behaved as expected.
    pub faults: Vec<(FaultCheck, bool)>,
}

/// The data pattern written by a write-verify of block `lba`.
pub fn pattern(lba: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 ^ lba.wrapping_mul(0x9e37)).wrapping_mul(31) as u8)
        .collect()
}

/// Runs `plan` on the controller at `address`, printing each step with `say`.
pub fn run(
    address: PciAddress,
    roots: &Roots,
    plan: &CheckPlan,
    mut broker: Option<&mut Broker>,
    say: &mut dyn FnMut(String),
) -> Result<CheckOutcome, VfioError> {
    if plan.faults.iter().any(|f| f.needs_broker()) && broker.is_none() {
        return Err(VfioError::Broker(format!(
            "the fault checks need a fault broker ({} names its directory; run-vm.sh \
             --broker starts one)",
            super::broker::ENV
        )));
    }
    let mut ctrl = VfioController::open(address, roots)?;
    let cap = *ctrl.cap();
    say(format!(
        "CAP mqes={} dstrd={} to={} mpsmin={} mpsmax={}",
        cap.mqes, cap.dstrd, cap.to, cap.mpsmin, cap.mpsmax
    ));
    let id = ctrl.identify_controller().clone();
    say(format!(
        "model {:?} serial {:?} firmware {:?} nn={} mdts={}",
        id.mn, id.sn, id.fr, id.nn, id.mdts
    ));
    for ns in ctrl.namespaces() {
        say(format!(
            "namespace {}: {} blocks of {} bytes",
            ns.nsid,
            ns.identify.nsze,
            ns.block_size()
        ));
    }
    let Some(ns) = ctrl
        .namespaces()
        .iter()
        .find(|n| plan.nsid == 0 || n.nsid == plan.nsid)
        .cloned()
    else {
        return Err(VfioError::Unsupported(format!(
            "no active namespace {}",
            if plan.nsid == 0 {
                "at all".to_string()
            } else {
                plan.nsid.to_string()
            }
        )));
    };
    let block = ns.block_size() as usize;
    let mut queue = ctrl.create_io_queue(1, 16)?;
    say("I/O queue 1 created (16 entries, polled)".to_string());
    let buf = ctrl.device().dma(block.div_ceil(super::sys::PAGE))?;
    let mut out = CheckOutcome::default();
    for &lba in &plan.reads {
        let read = Transfer::block(false, ns.nsid, lba);
        buf.write(0, &vec![0u8; block]);
        let status = ctrl.io(&mut queue, read, &buf, plan.bound)?;
        let mut got = vec![0u8; block];
        buf.read(0, &mut got);
        // says when the block holds what a write-verify of it wrote (in an earlier run)
        let written = status.same_code(Status::SUCCESS) && got == pattern(lba, block);
        say(format!(
            "read nsid {} lba {lba}: {status}{}",
            ns.nsid,
            if written {
                ", the write-verify pattern"
            } else {
                ""
            }
        ));
        if !status.same_code(Status::SUCCESS) {
            out.failed_reads.push((lba, status));
        }
    }
    if let Some(lba) = plan.write_verify {
        let data = pattern(lba, block);
        buf.write(0, &data);
        let write = Transfer::block(true, ns.nsid, lba);
        let status = ctrl.io(&mut queue, write, &buf, plan.bound)?;
        say(format!("write nsid {} lba {lba}: {status}", ns.nsid));
        buf.write(0, &vec![0u8; block]);
        let status = ctrl.io(
            &mut queue,
            Transfer::block(false, ns.nsid, lba),
            &buf,
            plan.bound,
        )?;
        let mut back = vec![0u8; block];
        buf.read(0, &mut back);
        let same = status.same_code(Status::SUCCESS) && back == data;
        say(format!(
            "read back nsid {} lba {lba}: {status}, data {}",
            ns.nsid,
            if same { "matches" } else { "DIFFERS" }
        ));
        out.verified = Some(same);
    }
    for &fault in &plan.faults {
        let ok = match (fault, broker.as_deref_mut()) {
            (FaultCheck::ControllerFatal, _) => controller_fatal(&mut ctrl, ns.nsid, &buf, say)?,
            (FaultCheck::Stall, Some(broker)) => {
                stall(&mut ctrl, &mut queue, broker, ns.nsid, &buf, say)?
            }
            (FaultCheck::PciError, Some(broker)) => pci_error(
                &mut ctrl, &mut queue, broker, ns.nsid, &buf, plan.bound, say,
            )?,
            (FaultCheck::Unplug, Some(broker)) => unplug(&mut ctrl, broker, say)?,
            (FaultCheck::Stall | FaultCheck::PciError | FaultCheck::Unplug, None) => {
                return Err(VfioError::Broker(format!("{fault:?} needs a fault broker")))
            }
        };
        out.faults.push((fault, ok));
    }
    Ok(out)
}

/// How long the broker may take to inject a fault.
const BROKER_BOUND: Duration = Duration::from_secs(30);

/// A read stalled on the backing store: no completion within 2 s while CSTS stays ready;
/// after the stall is lifted it completes with success within 10 s.
fn stall(
    ctrl: &mut VfioController,
    queue: &mut IoQueue,
    broker: &mut Broker,
    nsid: u32,
    buf: &DmaBuffer,
    say: &mut dyn FnMut(String),
) -> Result<bool, VfioError> {
    let answer = broker.inject(RealFault::Stall, BROKER_BOUND)?;
    say(format!("stall: injected ({answer})"));
    let read = Transfer::block(false, nsid, 8);
    let stalled = ctrl.io(queue, read, buf, Duration::from_secs(2));
    let (raw, csts) = regs::csts(ctrl.device().bar0());
    let mut ok = matches!(stalled, Err(VfioError::NoCompletion { .. })) && csts.rdy && !csts.cfs;
    say(format!(
        "stall: read nsid {nsid} lba 8: {} (CSTS {raw:#010x}: rdy={} cfs={})",
        match &stalled {
            Ok(s) => format!("completed {s}, but it should have stalled"),
            Err(e) => e.to_string(),
        },
        u8::from(csts.rdy),
        u8::from(csts.cfs)
    ));
    let answer = broker.inject(RealFault::Resume, BROKER_BOUND)?;
    say(format!("stall: lifted ({answer})"));
    match ctrl.wait_completion(queue, Duration::from_secs(10)) {
        Ok((cqe, after)) => {
            ok &= cqe.status.same_code(Status::SUCCESS);
            say(format!(
                "stall: the stalled read completed {} ms after the stall was lifted: {}",
                after.as_millis(),
                cqe.status
            ));
        }
        Err(e) => {
            ok = false;
            say(format!("stall: {e}"));
        }
    }
    Ok(ok)
}

/// A fresh I/O queue (qid 2) whose CQ page is then unmapped from the IOMMU: a read on it
/// must end with the controller fatal (CSTS.CFS), reported as such within 5 s.
fn controller_fatal(
    ctrl: &mut VfioController,
    nsid: u32,
    buf: &DmaBuffer,
    say: &mut dyn FnMut(String),
) -> Result<bool, VfioError> {
    let mut queue = ctrl.create_io_queue(2, 16)?;
    ctrl.device()
        .unmap(queue.cq_iova(), super::sys::PAGE as u64)?;
    say("controller-fatal: I/O queue 2's CQ page unmapped from the IOMMU".to_string());
    let read = Transfer::block(false, nsid, 0);
    let after = ctrl.io(&mut queue, read, buf, Duration::from_secs(5));
    let (raw, csts) = regs::csts(ctrl.device().bar0());
    say(format!(
        "controller-fatal: a read on queue 2: {} (CSTS {raw:#010x})",
        match &after {
            Ok(s) => format!("completed {s}"),
            Err(e) => e.to_string(),
        }
    ));
    Ok(matches!(after, Err(VfioError::ControllerFatal { .. })) && csts.cfs)
}

/// How long after now `efd` became readable, if it did within `bound_ms`.
fn fired_within(
    efd: &std::os::fd::OwnedFd,
    bound_ms: u16,
    call: &'static str,
) -> Result<Option<Duration>, VfioError> {
    let start = Instant::now();
    let mut fds = [nix::poll::PollFd::new(
        efd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let n = nix::poll::poll(&mut fds, bound_ms).map_err(|errno| VfioError::Call { call, errno })?;
    Ok((n > 0).then(|| start.elapsed()))
}

/// The controller unplugged: VFIO's request eventfd fires within 15 s (the caller then
/// releases the device, which lets the removal finish).
fn unplug(
    ctrl: &mut VfioController,
    broker: &mut Broker,
    say: &mut dyn FnMut(String),
) -> Result<bool, VfioError> {
    let efd = ctrl.device().notifier(Notifier::Request)?;
    let answer = broker.inject(RealFault::Unplug, BROKER_BOUND)?;
    say(format!("unplug: injected ({answer})"));
    let fired = fired_within(&efd, 15_000, "poll(request eventfd)")?;
    say(format!(
        "unplug: VFIO request eventfd {}",
        match fired {
            Some(after) => format!("fired after {} ms; releasing the device", after.as_millis()),
            None => "did not fire within 15 s".to_string(),
        }
    ));
    Ok(fired.is_some())
}

/// An AER error on the controller's port: VFIO's error eventfd fires within 10 s, and the
/// controller completes no more commands.
fn pci_error(
    ctrl: &mut VfioController,
    queue: &mut IoQueue,
    broker: &mut Broker,
    nsid: u32,
    buf: &DmaBuffer,
    bound: Duration,
    say: &mut dyn FnMut(String),
) -> Result<bool, VfioError> {
    let efd = ctrl.device().notifier(Notifier::Error)?;
    let answer = broker.inject(RealFault::PciError, BROKER_BOUND)?;
    say(format!("pci-error: injected ({answer})"));
    let fired = fired_within(&efd, 10_000, "poll(error eventfd)")?;
    say(format!(
        "pci-error: VFIO error eventfd {}",
        match fired {
            Some(after) => format!("fired after {} ms", after.as_millis()),
            None => "did not fire within 10 s".to_string(),
        }
    ));
    // The kernel's recovery resets the link; give it time before looking.
    std::thread::sleep(Duration::from_secs(3));
    let (raw, _) = regs::csts(ctrl.device().bar0());
    say(format!("pci-error: CSTS {raw:#010x} after recovery"));
    let read = Transfer::block(false, nsid, 0);
    let after = ctrl.io(queue, read, buf, bound.min(Duration::from_secs(3)));
    let stopped = !matches!(after, Ok(s) if s.same_code(Status::SUCCESS));
    say(format!(
        "pci-error: a read after the error: {}",
        match &after {
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        }
    ));
    Ok(fired.is_some() && stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_depends_on_the_block() {
        assert_eq!(pattern(0, 4), [0, 31, 62, 93]);
        assert_ne!(pattern(1, 512), pattern(2, 512));
        assert_eq!(pattern(9, 512), pattern(9, 512));
    }

    #[test]
    fn a_missing_device_is_refused_before_any_call() {
        let a: PciAddress = "ffff:ff:1f.7".parse().unwrap();
        let mut said = Vec::new();
        let e = run(
            a,
            &Roots::default(),
            &CheckPlan::default(),
            None,
            &mut |l| said.push(l),
        )
        .unwrap_err();
        assert!(matches!(e, VfioError::NoSuchDevice(..)), "{e}");
        assert!(said.is_empty());
        let faults = CheckPlan {
            faults: vec![FaultCheck::Stall],
            ..CheckPlan::default()
        };
        let e = run(a, &Roots::default(), &faults, None, &mut |l| said.push(l)).unwrap_err();
        assert!(e.to_string().contains("need a fault broker"), "{e}");
        assert_eq!("pci-error".parse(), Ok(FaultCheck::PciError));
        assert!("aer"
            .parse::<FaultCheck>()
            .unwrap_err()
            .contains("stall, pci-error, controller-fatal, unplug"));
        assert!(FaultCheck::Unplug.needs_broker());
        assert!(!FaultCheck::ControllerFatal.needs_broker());
    }
}
