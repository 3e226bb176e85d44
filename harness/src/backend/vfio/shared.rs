//! A real controller shared out as backend controllers ([`SharedController`]): each port
//! the engine drives is one I/O queue pair of it ([`VfioPort`], rings in the engine's
//! memory), and one queue pair of the driver's own serves I/O the caller runs itself
//! (software-served commands on the reference target, media checks in the suites).
//!
//! Both users — the reference target's control plane and the suites' real-controller
//! backend — go through it, so that mapping, recovery and teardown are written once:
//! the staging buffers a port needs are mapped for DMA once each, a reset after a PCI
//! error drops every port and starts the driver's queue over, and dropping it deletes
//! every queue and unmaps every mapping.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::controller::IoQueue;
use super::sysfs::Roots;
use super::{PciAddress, VfioController, VfioError, VfioNamespace, VfioPort};
use crate::fabric::{DeviceContext, MrInfo};
use crate::wire::{SqeCommand, Status};

/// The driver's own queue pair.
pub const SOFTWARE_QID: u16 = 2;
/// Entries of the driver's own queue pair.
const SOFTWARE_DEPTH: u16 = 32;

/// One port handed out, and the staging range mapped for it.
struct Lent {
    port: Arc<VfioPort>,
    qid: u16,
    staging: (u64, u64),
}

struct Inner {
    ctrl: VfioController,
    sw: IoQueue,
    lent: Vec<Lent>,
}

/// A real NVMe controller, opened through VFIO, lending queue pairs; see the module docs.
pub struct SharedController {
    address: PciAddress,
    namespaces: Vec<VfioNamespace>,
    model: String,
    max_transfer: Option<u64>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SharedController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedController")
            .field("address", &self.address)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl SharedController {
    /// Opens the controller at `address` (checked, reset, brought up, identified) and
    /// creates the driver's own queue pair.
    pub fn open(address: PciAddress) -> Result<SharedController, VfioError> {
        SharedController::open_in(address, &Roots::default())
    }

    /// [`SharedController::open`] with sysfs and `/dev` at `roots`.
    pub fn open_in(address: PciAddress, roots: &Roots) -> Result<SharedController, VfioError> {
        let mut ctrl = VfioController::open(address, roots)?;
        let sw = ctrl.create_io_queue(SOFTWARE_QID, SOFTWARE_DEPTH)?;
        // MDTS is in units of the minimum memory page size (CAP.MPSMIN); 0: no limit.
        let mdts = ctrl.identify_controller().mdts;
        let page = 4096u64 << ctrl.cap().mpsmin;
        Ok(SharedController {
            address,
            namespaces: ctrl.namespaces().to_vec(),
            model: ctrl.identify_controller().mn.trim().to_string(),
            max_transfer: (mdts != 0).then(|| page.saturating_mul(1u64 << mdts.min(40))),
            inner: Mutex::new(Inner {
                ctrl,
                sw,
                lent: Vec::new(),
            }),
        })
    }

    /// Its PCI address.
    pub fn address(&self) -> PciAddress {
        self.address
    }

    /// Its model (Identify Controller MN, trimmed).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The largest data transfer of one command it takes (Identify Controller MDTS), bytes;
    /// `None`: no limit.
    pub fn max_transfer(&self) -> Option<u64> {
        self.max_transfer
    }

    /// Its active namespaces, as identified at open.
    pub fn namespaces(&self) -> &[VfioNamespace] {
        &self.namespaces
    }

    /// Namespace `nsid`, if active.
    pub fn namespace(&self, nsid: u32) -> Option<&VfioNamespace> {
        self.namespaces.iter().find(|n| n.nsid == nsid)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a queue pair of `depth` entries over `rings` (a region of `ctx` laid out as
    /// [`super::RingLayout::new`] says) on the lowest free queue ID, and maps `staging`
    /// (whole pages) for the controller's DMA unless a port already mapped it: the port
    /// the engine drives. Undone by [`SharedController::give_back`], a reset, or drop.
    pub fn lend(
        &self,
        ctx: Arc<dyn DeviceContext>,
        rings: MrInfo,
        staging: &MrInfo,
        depth: u16,
    ) -> Result<Arc<VfioPort>, VfioError> {
        let mut inner = self.lock();
        let range = (staging.addr, staging.len);
        if staging.len % 4096 != 0 || staging.addr % 4096 != 0 {
            return Err(VfioError::Unsupported(format!(
                "a staging buffer of {} bytes at {:#x} is not whole pages",
                staging.len, staging.addr
            )));
        }
        let mapped = inner.lent.iter().any(|l| l.staging == range);
        if !mapped {
            inner.ctrl.map(range.0, range.1).map_err(|e| {
                VfioError::Unsupported(format!(
                    "mapping the staging buffer for DMA ({e}); the VFIO backend needs the \
                     verbs fabric, whose memory regions are this process's memory"
                ))
            })?;
        }
        let qid = (1..=u16::MAX)
            .find(|q| *q != SOFTWARE_QID && !inner.lent.iter().any(|l| l.qid == *q))
            .unwrap_or(u16::MAX);
        match VfioPort::attach(&mut inner.ctrl, ctx, rings, depth, qid) {
            Ok(p) => {
                let port = Arc::new(p);
                inner.lent.push(Lent {
                    port: port.clone(),
                    qid,
                    staging: range,
                });
                Ok(port)
            }
            Err(e) => {
                if !mapped {
                    let _ = inner.ctrl.unmap(range.0, range.1);
                }
                Err(e)
            }
        }
    }

    /// Deletes `port`'s queue pair (when the controller still answers) and unmaps its
    /// rings, and its staging buffer when no other port uses it.
    pub fn give_back(&self, port: &Arc<VfioPort>) {
        let mut inner = self.lock();
        let Some(i) = inner.lent.iter().position(|l| Arc::ptr_eq(&l.port, port)) else {
            return;
        };
        let lent = inner.lent.remove(i);
        let _ = lent.port.detach(&mut inner.ctrl);
        if !inner.lent.iter().any(|l| l.staging == lent.staging) {
            let _ = inner.ctrl.unmap(lent.staging.0, lent.staging.1);
        }
    }

    /// Resets the controller after a PCI error or a fatal status: every port lent is
    /// given back first (its queue pair is gone with the reset), then the driver's own
    /// queue pair is created again.
    pub fn reset(&self) -> Result<(), VfioError> {
        let mut inner = self.lock();
        inner.give_back_all();
        inner.ctrl.reset()?;
        inner.sw = inner.ctrl.create_io_queue(SOFTWARE_QID, SOFTWARE_DEPTH)?;
        Ok(())
    }

    /// Why a lent port stopped (a PCI error, a fatal status, an unplug), if one did.
    pub fn why_stopped(&self) -> Option<&'static str> {
        self.lock().lent.iter().find_map(|l| l.port.why())
    }

    /// Runs `command` on namespace `nsid` through the driver's own queue pair, moving
    /// `out` to the controller (a write's data) or `in_len` bytes from it (a read's),
    /// waiting at most `bound`: the completion's status and the data read.
    pub fn run(
        &self,
        nsid: u32,
        command: SqeCommand,
        out: &[u8],
        in_len: u64,
        bound: Duration,
        what: &'static str,
    ) -> Result<(Status, Vec<u8>), VfioError> {
        let mut inner = self.lock();
        let Inner { ctrl, sw, .. } = &mut *inner;
        let len = (out.len() as u64).max(in_len);
        let buf = ctrl.device().dma((len as usize).div_ceil(4096).max(1))?;
        if !out.is_empty() {
            buf.write(0, out);
        }
        let data = (len > 0).then_some((&buf, len));
        let status = ctrl.run(sw, nsid, command, data, bound, what)?;
        let mut back = vec![0u8; in_len as usize];
        if in_len > 0 {
            buf.read(0, &mut back);
        }
        Ok((status, back))
    }
}

impl Inner {
    /// Detaches every lent port and unmaps each staging range once (ports may share one).
    fn give_back_all(&mut self) {
        let mut ranges: Vec<(u64, u64)> = self.lent.iter().map(|l| l.staging).collect();
        ranges.sort_unstable();
        ranges.dedup();
        for lent in std::mem::take(&mut self.lent) {
            let _ = lent.port.detach(&mut self.ctrl);
        }
        for (addr, len) in ranges {
            let _ = self.ctrl.unmap(addr, len);
        }
    }
}

impl Drop for SharedController {
    fn drop(&mut self) {
        self.inner
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .give_back_all();
    }
}
