//! `nvmf-reference-target --vfio-check`: proves a controller can be driven through VFIO
//! before a target is configured on it. It opens and brings the controller up, prints what
//! Identify says, reads the blocks asked for (printing each status, so an injected media
//! error shows), and, only with the operator's explicit consent naming the device, writes
//! a pattern to one block and reads it back.

use std::time::Duration;

use super::controller::{Transfer, VfioController};
use super::sysfs::Roots;
use super::{PciAddress, VfioError};
use crate::wire::Status;

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
}

/// What the check found: statuses that were not success, and data that did not match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckOutcome {
    /// Reads that completed with an error status, with it.
    pub failed_reads: Vec<(u64, Status)>,
    /// Whether the written block read back the same (when one was written).
    pub verified: Option<bool>,
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
    say: &mut dyn FnMut(String),
) -> Result<CheckOutcome, VfioError> {
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
        let read = Transfer {
            write: false,
            nsid: ns.nsid,
            slba: lba,
            blocks: 1,
        };
        let status = ctrl.io(&mut queue, read, &buf, plan.bound)?;
        say(format!("read nsid {} lba {lba}: {status}", ns.nsid));
        if !status.same_code(Status::SUCCESS) {
            out.failed_reads.push((lba, status));
        }
    }
    if let Some(lba) = plan.write_verify {
        let data = pattern(lba, block);
        buf.write(0, &data);
        let write = Transfer {
            write: true,
            nsid: ns.nsid,
            slba: lba,
            blocks: 1,
        };
        let status = ctrl.io(&mut queue, write, &buf, plan.bound)?;
        say(format!("write nsid {} lba {lba}: {status}", ns.nsid));
        buf.write(0, &vec![0u8; block]);
        let status = ctrl.io(
            &mut queue,
            Transfer {
                write: false,
                ..write
            },
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
    Ok(out)
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
        let e = run(a, &Roots::default(), &CheckPlan::default(), &mut |l| {
            said.push(l)
        })
        .unwrap_err();
        assert!(matches!(e, VfioError::NoSuchDevice(..)), "{e}");
        assert!(said.is_empty());
    }
}
