//! A real NVMe controller opened through VFIO: checked in sysfs, its device opened, brought
//! up with an admin queue in DMA memory, identified (controller, active namespaces, each
//! namespace's formats) through the `wire` types the reference target writes Identify data
//! with. I/O queue pairs are created on demand ([`VfioController::create_io_queue`]); the
//! [`VfioController::io`] helper moves one buffer (what `nvmf-reference-target
//! vfio-check` uses to prove a controller works).

use std::time::Duration;

use super::bringup::{self, Settings, SystemClock};
use super::queue::QueuePair;
use super::sys::{DmaBuffer, VfioDevice, PAGE};
use super::sysfs::{self, Roots};
use super::{PciAddress, VfioError};
use crate::backend::prp;
use crate::wire::{
    parse_nsid_list, AdminCommand, CapRepr, CreateIoCqRepr, CreateIoSqRepr, IdentifyControllerRepr,
    IdentifyNamespaceRepr, RwCommand, SqeCommand, SqeRepr, Status, IDENTIFY_LEN,
};

/// Entries of the admin queues.
const ADMIN_DEPTH: u16 = 32;
/// Bound of one admin command.
const ADMIN_BOUND: Duration = Duration::from_secs(5);

/// A namespace of the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfioNamespace {
    /// Its nsid.
    pub nsid: u32,
    /// Identify Namespace.
    pub identify: IdentifyNamespaceRepr,
}

impl VfioNamespace {
    /// Bytes per block of the format in use (FLBAS), data only.
    pub fn block_size(&self) -> u32 {
        let index = usize::from(self.identify.flbas & 0x0f);
        self.identify
            .lbaf
            .get(index)
            .map_or(512, |f| 1u32 << f.lbads)
    }

    /// Metadata bytes per block of the format in use.
    pub fn metadata_size(&self) -> u32 {
        let index = usize::from(self.identify.flbas & 0x0f);
        self.identify.lbaf.get(index).map_or(0, |f| u32::from(f.ms))
    }

    /// Whether the format in use keeps its metadata in a separate buffer (FLBAS bit 4
    /// clear) rather than as extended LBAs.
    pub fn separate_metadata(&self) -> bool {
        self.metadata_size() > 0 && self.identify.flbas & 0x10 == 0
    }
}

/// One read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// A write (else a read).
    pub write: bool,
    /// The namespace.
    pub nsid: u32,
    /// The first block.
    pub slba: u64,
    /// Blocks, at least one.
    pub blocks: u16,
}

impl Transfer {
    /// A read (`write` false) or write of the one block `slba` of namespace `nsid`.
    pub fn block(write: bool, nsid: u32, slba: u64) -> Transfer {
        Transfer {
            write,
            nsid,
            slba,
            blocks: 1,
        }
    }
}

/// An opened, ready controller.
pub struct VfioController {
    dev: VfioDevice,
    admin: QueuePair<DmaBuffer>,
    cap: CapRepr,
    identify: IdentifyControllerRepr,
    namespaces: Vec<VfioNamespace>,
}

impl std::fmt::Debug for VfioController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioController")
            .field("address", &self.dev.target().address)
            .field("model", &self.identify.mn)
            .finish_non_exhaustive()
    }
}

/// An I/O queue pair of the driver's own.
pub type IoQueue = QueuePair<DmaBuffer>;

impl VfioController {
    /// Opens, brings up and identifies the controller at `address`.
    pub fn open(address: PciAddress, roots: &Roots) -> Result<VfioController, VfioError> {
        let target = sysfs::check(roots, address)?;
        let dev = VfioDevice::open(&target)?;
        let sq = dev.dma(1)?;
        let cq = dev.dma(1)?;
        let settings = Settings {
            page: PAGE as u64,
            admin_entries: ADMIN_DEPTH,
            asq: sq.iova(),
            acq: cq.iova(),
        };
        let ready = bringup::bring_up(dev.bar0(), &settings, &mut SystemClock::default())?;
        let admin = QueuePair::new(0, ADMIN_DEPTH, ready.cap.dstrd, sq, cq);
        let mut ctrl = VfioController {
            dev,
            admin,
            cap: ready.cap,
            identify: IdentifyControllerRepr::default(),
            namespaces: Vec::new(),
        };
        let data = ctrl.identify(1, 0)?;
        ctrl.identify = IdentifyControllerRepr::parse(&data)
            .map_err(|e| VfioError::Unsupported(format!("Identify Controller: {e}")))?;
        let list = ctrl.identify(2, 0)?;
        let nsids = parse_nsid_list(&list)
            .map_err(|e| VfioError::Unsupported(format!("active namespace list: {e}")))?;
        for nsid in nsids {
            let data = ctrl.identify(0, nsid)?;
            let identify = IdentifyNamespaceRepr::parse(&data)
                .map_err(|e| VfioError::Unsupported(format!("Identify Namespace {nsid}: {e}")))?;
            ctrl.namespaces.push(VfioNamespace { nsid, identify });
        }
        Ok(ctrl)
    }

    /// Resets the controller and brings it up again (after a PCI error or a fatal status):
    /// memory space and bus mastering on, CC.EN = 0 until CSTS.RDY = 0, the admin queue
    /// started over, enabled again. Every I/O queue is gone; the namespaces are those read
    /// at open.
    pub fn reset(&mut self) -> Result<(), VfioError> {
        self.dev.enable()?;
        self.admin.restart();
        let settings = Settings {
            page: PAGE as u64,
            admin_entries: ADMIN_DEPTH,
            asq: self.admin.sq_iova(),
            acq: self.admin.cq_iova(),
        };
        let ready = bringup::bring_up(self.dev.bar0(), &settings, &mut SystemClock::default())?;
        self.cap = ready.cap;
        Ok(())
    }

    /// The device.
    pub fn device(&self) -> &VfioDevice {
        &self.dev
    }

    /// CAP as read at bring-up.
    pub fn cap(&self) -> &CapRepr {
        &self.cap
    }

    /// Identify Controller.
    pub fn identify_controller(&self) -> &IdentifyControllerRepr {
        &self.identify
    }

    /// The active namespaces.
    pub fn namespaces(&self) -> &[VfioNamespace] {
        &self.namespaces
    }

    /// Runs an admin command (data, if any, to or from `prp1`) and fails unless it
    /// succeeds.
    fn admin(
        &mut self,
        what: &'static str,
        cmd: AdminCommand,
        nsid: u32,
        prp1: u64,
    ) -> Result<(), VfioError> {
        let sqe = SqeRepr::with_prps(0, nsid, cmd.to_sqe_command(), prp1, 0);
        let cqe = self.admin.command(
            self.dev.bar0(),
            &sqe,
            ADMIN_BOUND,
            &mut SystemClock::default(),
            what,
        )?;
        if cqe.status.same_code(Status::SUCCESS) {
            Ok(())
        } else {
            Err(VfioError::Status {
                what,
                status: cqe.status,
            })
        }
    }

    /// Identify with CNS `cns` for `nsid`: its 4096 bytes.
    fn identify(&mut self, cns: u8, nsid: u32) -> Result<Vec<u8>, VfioError> {
        let buf = self.dev.dma(1)?;
        self.admin(
            "Identify",
            AdminCommand::Identify { cns, cntid: 0 },
            nsid,
            buf.iova(),
        )?;
        let mut data = vec![0u8; IDENTIFY_LEN];
        buf.read(0, &mut data);
        Ok(data)
    }

    /// Creates I/O CQ and SQ `qid` of `depth` entries (interrupts off) with rings in DMA
    /// memory of their own.
    pub fn create_io_queue(&mut self, qid: u16, depth: u16) -> Result<IoQueue, VfioError> {
        self.check_depth(depth)?;
        let sq = self.dev.dma((usize::from(depth) * 64).div_ceil(PAGE))?;
        let cq = self.dev.dma((usize::from(depth) * 16).div_ceil(PAGE))?;
        self.create_queues_at(qid, depth, sq.iova(), cq.iova(), None)?;
        Ok(QueuePair::new(qid, depth, self.cap.dstrd, sq, cq))
    }

    /// Refuses a queue depth the controller cannot take (CAP.MQES) or whose SQ ring would
    /// need more than 16 pages.
    fn check_depth(&self, depth: u16) -> Result<(), VfioError> {
        let most = u32::from(self.cap.mqes) + 1;
        if depth < 2 || u32::from(depth) > most || usize::from(depth) * 64 > PAGE * 16 {
            return Err(VfioError::AdminQueueSize {
                entries: u32::from(depth),
                max: most,
            });
        }
        Ok(())
    }

    /// Creates I/O CQ and SQ `qid` of `depth` entries over rings at bus addresses `sq` and
    /// `cq` that the caller owns and has mapped ([`Self::map`]); the CQ raises MSI-X
    /// `vector` when one is given, else it is polled.
    pub fn create_queues_at(
        &mut self,
        qid: u16,
        depth: u16,
        sq: u64,
        cq: u64,
        vector: Option<u16>,
    ) -> Result<(), VfioError> {
        self.check_depth(depth)?;
        let qsize = depth - 1;
        self.admin(
            "Create I/O Completion Queue",
            AdminCommand::CreateIoCq(CreateIoCqRepr {
                qid,
                qsize,
                pc: true,
                ien: vector.is_some(),
                iv: vector.unwrap_or(0),
            }),
            0,
            cq,
        )?;
        let created = self.admin(
            "Create I/O Submission Queue",
            AdminCommand::CreateIoSq(CreateIoSqRepr {
                qid,
                qsize,
                pc: true,
                qprio: 0,
                cqid: qid,
            }),
            0,
            sq,
        );
        if created.is_err() {
            let _ = self.admin(
                "Delete I/O Completion Queue",
                AdminCommand::DeleteIoCq { qid },
                0,
                0,
            );
        }
        created
    }

    /// Deletes I/O SQ `qid`, then its CQ (what must happen before their rings are
    /// unmapped).
    pub fn delete_queues(&mut self, qid: u16) -> Result<(), VfioError> {
        let sq = self.admin(
            "Delete I/O Submission Queue",
            AdminCommand::DeleteIoSq { qid },
            0,
            0,
        );
        let cq = self.admin(
            "Delete I/O Completion Queue",
            AdminCommand::DeleteIoCq { qid },
            0,
            0,
        );
        sq.and(cq)
    }

    /// Maps `len` bytes of this process's memory at `vaddr` for the controller's DMA at
    /// IOVA = `vaddr`; both page aligned.
    pub fn map(&self, vaddr: u64, len: u64) -> Result<(), VfioError> {
        let page = PAGE as u64;
        if vaddr % page != 0 || len % page != 0 || len == 0 {
            return Err(VfioError::Unsupported(format!(
                "DMA mapping of {len} bytes at {vaddr:#x}: both must be whole pages"
            )));
        }
        self.dev.map(vaddr, len)
    }

    /// Undoes [`Self::map`].
    pub fn unmap(&self, vaddr: u64, len: u64) -> Result<(), VfioError> {
        self.dev.unmap(vaddr, len)
    }

    /// Moves `io` into or from `buf` on `queue` (PRPs built for it, with a PRP list when it
    /// spans more than two pages), waiting at most `bound`; the completion's status.
    pub fn io(
        &mut self,
        queue: &mut IoQueue,
        io: Transfer,
        buf: &DmaBuffer,
        bound: Duration,
    ) -> Result<Status, VfioError> {
        let Transfer {
            write,
            nsid,
            slba,
            blocks,
        } = io;
        let block = self
            .namespaces
            .iter()
            .find(|n| n.nsid == nsid)
            .map_or(512, VfioNamespace::block_size);
        let len = u64::from(blocks) * u64::from(block);
        let rw = RwCommand {
            slba,
            nlb: blocks.saturating_sub(1),
            ..RwCommand::default()
        };
        let command = if write {
            SqeCommand::Write(rw)
        } else {
            SqeCommand::Read(rw)
        };
        if blocks == 0 {
            return Err(VfioError::Unsupported("a transfer of 0 blocks".into()));
        }
        let what = if write { "a write" } else { "a read" };
        self.run(queue, nsid, command, Some((buf, len)), bound, what)
    }

    /// Runs an NVM command on `queue` whose data (if any) is the first `len` bytes of
    /// `buf`, waiting at most `bound`; the completion's status. `what` names it in errors.
    pub fn run(
        &mut self,
        queue: &mut IoQueue,
        nsid: u32,
        command: SqeCommand,
        data: Option<(&DmaBuffer, u64)>,
        bound: Duration,
        what: &'static str,
    ) -> Result<Status, VfioError> {
        let mut list = None;
        let (prp1, prp2) = match data {
            None | Some((_, 0)) => (0, 0),
            Some((buf, len)) => {
                if len > buf.len() as u64 {
                    return Err(VfioError::Unsupported(format!(
                        "{len} bytes do not fit the {}-byte buffer",
                        buf.len()
                    )));
                }
                let pages = prp::list_pages_needed(buf.iova(), len, PAGE as u64)
                    .map_err(|e| VfioError::Unsupported(e.to_string()))?;
                let pages_buf = self.dev.dma(pages.max(1))?;
                let plan = prp::plan(buf.iova(), len, PAGE as u64, pages_buf.iova())
                    .map_err(|e| VfioError::Unsupported(e.to_string()))?;
                for (i, entries) in plan.lists.iter().enumerate() {
                    let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
                    pages_buf.write(i * PAGE, &bytes);
                }
                list = Some(pages_buf);
                (plan.prp1, plan.prp2)
            }
        };
        let sqe = SqeRepr::with_prps(0, nsid, command, prp1, prp2);
        let cqe = queue.command(
            self.dev.bar0(),
            &sqe,
            bound,
            &mut SystemClock::default(),
            what,
        )?;
        drop(list);
        Ok(cqe.status)
    }
}

impl VfioController {
    /// Waits, at most `bound`, for the next completion on `queue` (of a command whose own
    /// wait ended without one): the CQE and how long it took.
    pub fn wait_completion(
        &mut self,
        queue: &mut IoQueue,
        bound: Duration,
    ) -> Result<(crate::wire::CqeRepr, Duration), VfioError> {
        let start = std::time::Instant::now();
        loop {
            if let Some(cqe) = queue.poll(self.dev.bar0()) {
                return Ok((cqe, start.elapsed()));
            }
            if start.elapsed() >= bound {
                return Err(VfioError::NoCompletion {
                    what: "a stalled command",
                    waited_ms: bound.as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for VfioController {
    /// Disables the controller (CC.EN = 0, bounded by CAP.TO) before its queues' memory is
    /// unmapped and the device released.
    fn drop(&mut self) {
        let _ = bringup::disable(self.dev.bar0(), &self.cap, &mut SystemClock::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::LbaFormatRepr;

    fn namespace(flbas: u8, lbaf: &[(u16, u8)]) -> VfioNamespace {
        let mut identify = IdentifyNamespaceRepr {
            flbas,
            ..Default::default()
        };
        identify.lbaf = lbaf
            .iter()
            .map(|&(ms, lbads)| LbaFormatRepr { ms, lbads, rp: 0 })
            .collect();
        VfioNamespace { nsid: 1, identify }
    }

    #[test]
    fn the_format_in_use_gives_block_and_metadata_sizes() {
        let formats = [(0, 9), (8, 9), (0, 12), (64, 12)];
        let plain = namespace(2, &formats);
        assert_eq!((plain.block_size(), plain.metadata_size()), (4096, 0));
        assert!(!plain.separate_metadata());
        let extended = namespace(0x10 | 3, &formats);
        assert_eq!(
            (extended.block_size(), extended.metadata_size()),
            (4096, 64)
        );
        assert!(
            !extended.separate_metadata(),
            "FLBAS bit 4 set: extended LBAs"
        );
        let separate = namespace(1, &formats);
        assert_eq!((separate.block_size(), separate.metadata_size()), (512, 8));
        assert!(separate.separate_metadata());
        // a format index past the list: 512 bytes, no metadata
        let unlisted = namespace(9, &formats);
        assert_eq!((unlisted.block_size(), unlisted.metadata_size()), (512, 0));
    }
}
