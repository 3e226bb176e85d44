//! The backend NVMe controllers a case creates for the device under test ([`Backends`]):
//! emulated by the project (in-process, with fault injection and counters), or queue pairs
//! of a real controller driven through VFIO ([`RealBackend`], `nvmf-conform run --backend
//! vfio:PCI`), with real faults asked of the host's fault broker. A session holds its
//! controller as a [`BackendRef`]: what either kind can do (media read and written behind
//! the device's back, faults) goes through it; what only the emulated one has (counters,
//! armed faults, extra SQs) is reached with [`BackendRef::emulated`], by cases that
//! declare [`super::Need::EmulatedBackend`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::api::{MemRef, NvmeCtrlAttrs, NvmfSrqAttrs};
use harness::backend::emulated::{
    BackendController, CmdMatch, ControllerConfig, DmaRegion, Fault, LbaFormat, Namespace, PciBus,
};
use harness::backend::vfio::broker::{Broker, RealFault};
use harness::backend::vfio::{PciAddress, RingLayout, SharedController, VfioPort};
use harness::case::RealBackendFacts;
use harness::fabric::{Access, DeviceContext, MrInfo, PdId};
use harness::trace::Recorder;
use harness::wire::{RwCommand, SqeCommand};

use super::failure::Failure;

/// Blocks of each namespace the harness creates on an emulated backend.
pub const NS_BLOCKS: u64 = 1024;

/// Creates backend NVMe controllers reachable by the device: emulated ones, or queue
/// pairs of a real controller when the run names one.
pub struct Backends {
    ctx: Arc<dyn DeviceContext>,
    bus: Arc<PciBus>,
    made: Mutex<Vec<Arc<BackendController>>>,
    /// Where the controllers record their doorbells, SQEs and CQEs (`None`: untraced Dut).
    rec: Option<Recorder>,
    /// The real controller every backend controller is made on, when the run names one.
    real: Option<Arc<RealBackend>>,
}

impl Backends {
    /// A controller with `nsqs` SQs of `depth`, DMA-mapped to the SRQ's staging buffer,
    /// holding namespaces `(nsid, format)`; returns the attributes naming it.
    pub fn create(
        &self,
        pd: PdId,
        srq: &NvmfSrqAttrs,
        staging: &MrInfo,
        nsqs: usize,
        namespaces: &[(u32, LbaFormat)],
    ) -> Result<NvmeCtrlAttrs, Failure> {
        let nss = namespaces
            .iter()
            .map(|(nsid, fmt)| {
                Namespace::ram(*nsid, *fmt, NS_BLOCKS)
                    .map_err(|e| Failure::from(e).context("namespace"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.build(pd, srq, staging, nsqs, (0, 0), nss)
    }

    /// As [`Backends::create`], with every SQ's tail doorbell starting at `sq_ini` and the
    /// CQ's head doorbell at `cq_ini` (both below the SRQ's `nvme_queue_depth`) instead of
    /// 0: the device must begin each ring there.
    pub fn create_rings(
        &self,
        pd: PdId,
        srq: &NvmfSrqAttrs,
        staging: &MrInfo,
        nsqs: usize,
        (sq_ini, cq_ini): (u16, u16),
        namespaces: &[(u32, LbaFormat)],
    ) -> Result<NvmeCtrlAttrs, Failure> {
        let nss = namespaces
            .iter()
            .map(|(nsid, fmt)| {
                Namespace::ram(*nsid, *fmt, NS_BLOCKS)
                    .map_err(|e| Failure::from(e).context("namespace"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.build(pd, srq, staging, nsqs, (sq_ini, cq_ini), nss)
    }

    /// As [`Backends::create`], with existing namespaces (e.g. taken over from a failed
    /// controller, data included).
    pub fn create_with(
        &self,
        pd: PdId,
        srq: &NvmfSrqAttrs,
        staging: &MrInfo,
        nsqs: usize,
        namespaces: Vec<Namespace>,
    ) -> Result<NvmeCtrlAttrs, Failure> {
        self.build(pd, srq, staging, nsqs, (0, 0), namespaces)
    }

    fn build(
        &self,
        pd: PdId,
        srq: &NvmfSrqAttrs,
        staging: &MrInfo,
        nsqs: usize,
        (sq_ini, cq_ini): (u16, u16),
        namespaces: Vec<Namespace>,
    ) -> Result<NvmeCtrlAttrs, Failure> {
        if let Some(real) = &self.real {
            return self.build_real(real, pd, srq, staging, nsqs, (sq_ini, cq_ini), &namespaces);
        }
        let depth = srq.nvme_queue_depth as u64;
        let sq_len = depth * 64;
        let cq_len = depth * 16;
        // Room for every ring and doorbell with its alignment padding.
        let len = (sq_len + 128) * nsqs as u64 + cq_len + 256;
        let m = self.ctx.reg_mr(pd, len, Access::LOCAL_WRITE)?;
        let mut off: u64 = 0;
        let mut take = |n: u64, align: u64| {
            off = off.div_ceil(align) * align;
            let r = MemRef::of(&m, off, n);
            off += n;
            r
        };
        let sq_buf = take(sq_len, 64);
        let cq_buf = take(cq_len, 16);
        let sqdb = take(4, 4);
        let cqdb = take(4, 4);
        let extra_sqs = (1..nsqs)
            .map(|_| harness::api::BackendSq {
                buf: take(sq_len, 64),
                db: take(4, 4),
                db_ini: sq_ini,
            })
            .collect();
        let attrs = NvmeCtrlAttrs {
            sq_buf,
            cq_buf,
            sqdb,
            cqdb,
            sqdb_ini: sq_ini,
            cqdb_ini: cq_ini,
            cmd_timeout_us: 0,
            extra_sqs,
        };
        let mrs = [m, *staging];
        let dma = DmaRegion::from_mem(&srq.staging_buf, staging)
            .ok_or_else(|| Failure::new("staging buffer outside its region"))?;
        let cfg = ControllerConfig::from_attrs(
            &attrs,
            srq.nvme_queue_depth as u16,
            harness::api::check::mr_table(&mrs),
            vec![dma],
        )
        .map_err(|e| Failure::from(e).context("backend config"))?;
        let ctrl = Arc::new(
            BackendController::spawn(self.ctx.clone(), cfg)
                .map_err(|e| Failure::from(e).context("backend spawn"))?,
        );
        if let Some(rec) = &self.rec {
            ctrl.trace_into(rec.clone());
        }
        for ns in namespaces {
            ctrl.add_namespace(ns)
                .map_err(|e| Failure::from(e).context("namespace"))?;
        }
        self.bus.attach(sqdb.mr, sqdb.addr, ctrl.clone());
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ctrl);
        Ok(attrs)
    }

    /// A queue pair of the real controller: rings in a region of the device's context laid
    /// out as [`RingLayout`] says, `staging` mapped for DMA, the port on the bus. The real
    /// controller has what it has: one SQ per controller, doorbells starting at 0, its own
    /// namespace formats; anything else is refused (cases that need it declare
    /// [`super::Need::EmulatedBackend`] and are skipped before they get here).
    #[allow(clippy::too_many_arguments)]
    fn build_real(
        &self,
        real: &Arc<RealBackend>,
        pd: PdId,
        srq: &NvmfSrqAttrs,
        staging: &MrInfo,
        nsqs: usize,
        ini: (u16, u16),
        namespaces: &[Namespace],
    ) -> Result<NvmeCtrlAttrs, Failure> {
        if nsqs != 1 || ini != (0, 0) {
            return Err(Failure::new(format!(
                "the real controller's queue pairs have one SQ each, doorbells from 0 \
                 (asked: {nsqs} SQs, doorbells from {ini:?})"
            )));
        }
        for ns in namespaces {
            real.check_namespace(ns.nsid(), ns.format())?;
        }
        let depth = srq.nvme_queue_depth as u16;
        let layout = RingLayout::new(depth);
        let rings = self.ctx.reg_mr(pd, layout.len, Access::LOCAL_WRITE)?;
        let port = real.lend(self.ctx.clone(), rings, staging, depth)?;
        let attrs = NvmeCtrlAttrs {
            sq_buf: MemRef::of(&rings, layout.sq, layout.sq_len()),
            cq_buf: MemRef::of(&rings, layout.cq, layout.cq_len()),
            sqdb: MemRef::of(&rings, layout.doorbells, 4),
            cqdb: MemRef::of(&rings, layout.doorbells + 4, 4),
            sqdb_ini: 0,
            cqdb_ini: 0,
            cmd_timeout_us: 0,
            extra_sqs: vec![],
        };
        self.bus.attach_port(attrs.sqdb.mr, attrs.sqdb.addr, port);
        Ok(attrs)
    }

    /// The controller behind attributes made by [`Backends::create`], as a session holds
    /// it.
    pub fn backend_of(&self, attrs: &NvmeCtrlAttrs) -> Option<BackendRef> {
        match &self.real {
            Some(r) => Some(BackendRef::Real(r.clone())),
            None => self.controller(attrs).map(BackendRef::Emulated),
        }
    }

    /// The real controller of this run, if it names one.
    pub fn real(&self) -> Option<&Arc<RealBackend>> {
        self.real.as_ref()
    }

    /// Lets go of every controller made (the emulated ones, the real one's queue pairs).
    pub(crate) fn release(&self) {
        drop(self.bus.detach_all());
        self.made.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if let Some(r) = &self.real {
            r.release();
        }
    }

    /// The emulated PCIe bus the device finds these controllers on.
    pub fn bus(&self) -> &Arc<PciBus> {
        &self.bus
    }

    /// The emulated controller behind attributes made by [`Backends::create`] (none on a
    /// real controller).
    pub fn controller(&self, attrs: &NvmeCtrlAttrs) -> Option<Arc<BackendController>> {
        self.bus.find(attrs.sqdb.mr, attrs.sqdb.addr)
    }
}

impl Backends {
    /// Emulated controllers for `ctx`'s device on `bus`, traced into `rec` when given.
    pub fn emulated(ctx: Arc<dyn DeviceContext>, bus: Arc<PciBus>, rec: Option<Recorder>) -> Self {
        Backends {
            ctx,
            bus,
            made: Default::default(),
            rec,
            real: None,
        }
    }

    /// Queue pairs of `real` for `ctx`'s device on `bus`.
    pub fn on_real(ctx: Arc<dyn DeviceContext>, bus: Arc<PciBus>, real: Arc<RealBackend>) -> Self {
        Backends {
            ctx,
            bus,
            made: Default::default(),
            rec: None,
            real: Some(real),
        }
    }
}

/// Bound of one command the harness runs on the real controller itself.
const MEDIA_BOUND: Duration = Duration::from_secs(10);
/// Bound of the broker's answer.
const BROKER_BOUND: Duration = Duration::from_secs(20);

/// A real NVMe controller the cases' backend controllers are made on (one queue pair
/// each), with the host's fault broker when there is one.
pub struct RealBackend {
    shared: SharedController,
    broker: Option<Mutex<Broker>>,
    /// A stall asked of the broker and not lifted yet: lifted when the case ends.
    stalled: AtomicBool,
    /// A PCI error or an unplug since the last reset: the next controller made resets it.
    failed: AtomicBool,
}

impl std::fmt::Debug for RealBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealBackend")
            .field("controller", &self.shared)
            .field("broker", &self.broker.is_some())
            .finish_non_exhaustive()
    }
}

impl RealBackend {
    /// Opens the controller at `address` (reset, brought up, identified), with the broker
    /// `NVMF_FAULT_BROKER` names, if any. Its namespace 1 must be in a format the device
    /// can present (extended-LBA metadata, or none).
    pub fn open(address: PciAddress) -> Result<RealBackend, Failure> {
        let shared = SharedController::open(address)
            .map_err(|e| Failure::new(format!("real controller {address}: {e}")))?;
        let real = RealBackend {
            shared,
            broker: Broker::from_env().map(Mutex::new),
            stalled: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        };
        real.facts()?;
        Ok(real)
    }

    /// Its namespace 1's format and size, and whether faults can be injected.
    pub fn facts(&self) -> Result<RealBackendFacts, Failure> {
        let address = self.shared.address();
        let ns = self.shared.namespace(1).ok_or_else(|| {
            Failure::new(format!("real controller {address}: no active namespace 1"))
        })?;
        let id = &ns.identify;
        let meta = id
            .lbaf
            .get(usize::from(id.flbas & 0x0f))
            .map_or(0, |f| u32::from(f.ms));
        if meta > 0 && id.flbas & 0x10 == 0 {
            return Err(Failure::new(format!(
                "real controller {address}: namespace 1 keeps {meta} bytes of metadata in a \
                 separate buffer; the suites move metadata only as extended LBAs"
            )));
        }
        Ok(RealBackendFacts {
            format: LbaFormat::new(ns.block_size(), meta),
            blocks: id.nsze,
            broker: self.broker.is_some(),
        })
    }

    fn check_namespace(&self, nsid: u32, format: LbaFormat) -> Result<(), Failure> {
        let facts = self.facts()?;
        if nsid != 1 || format != facts.format {
            return Err(Failure::new(format!(
                "the real controller has namespace 1 in format {}; asked for namespace {nsid} \
                 in format {format}",
                facts.format
            )));
        }
        Ok(())
    }

    fn lend(
        &self,
        ctx: Arc<dyn DeviceContext>,
        rings: MrInfo,
        staging: &MrInfo,
        depth: u16,
    ) -> Result<Arc<VfioPort>, Failure> {
        if self.failed.swap(false, Ordering::SeqCst) || self.shared.why_stopped().is_some() {
            self.shared
                .reset()
                .map_err(|e| Failure::from(e).context("resetting the real controller"))?;
        }
        self.shared
            .lend(ctx, rings, staging, depth)
            .map_err(|e| Failure::from(e).context("a queue pair of the real controller"))
    }

    /// Block `slba` of namespace 1, read through the harness's own queue pair.
    pub fn read_block(&self, slba: u64) -> Result<Vec<u8>, Failure> {
        let block = u64::from(self.facts()?.format.lba_data_size());
        let (status, data) = self
            .shared
            .run(
                1,
                SqeCommand::Read(RwCommand::new(slba, 1)),
                &[],
                block,
                MEDIA_BOUND,
                "media read",
            )
            .map_err(|e| Failure::from(e).context("reading the real controller's media"))?;
        if !status.is_success() {
            return Err(Failure::new(format!(
                "reading block {slba} of the real controller's media: {status}"
            )));
        }
        Ok(data)
    }

    /// Writes `data` (whole blocks) from block `slba` on of namespace 1, through the
    /// harness's own queue pair.
    pub fn write_blocks(&self, slba: u64, data: &[u8]) -> Result<(), Failure> {
        let block = self.facts()?.format.lba_data_size() as usize;
        let blocks = (data.len() / block.max(1)) as u32;
        let (status, _) = self
            .shared
            .run(
                1,
                SqeCommand::Write(RwCommand::new(slba, blocks)),
                data,
                0,
                MEDIA_BOUND,
                "media write",
            )
            .map_err(|e| Failure::from(e).context("writing the real controller's media"))?;
        if !status.is_success() {
            return Err(Failure::new(format!(
                "writing block {slba} of the real controller's media: {status}"
            )));
        }
        Ok(())
    }

    /// Asks the broker for `fault` and waits for its answer (a bounded wait, off the
    /// runtime's threads).
    pub async fn inject(self: &Arc<Self>, fault: RealFault) -> Result<(), Failure> {
        if self.broker.is_none() {
            return Err(Failure::new(format!(
                "no fault broker ({} unset) to inject {} into the real controller",
                harness::backend::vfio::broker::ENV,
                fault.name()
            )));
        }
        match fault {
            RealFault::Stall | RealFault::StallWrites => self.stalled.store(true, Ordering::SeqCst),
            RealFault::Resume => self.stalled.store(false, Ordering::SeqCst),
            RealFault::PciError | RealFault::Unplug => self.failed.store(true, Ordering::SeqCst),
        }
        let me = self.clone();
        let asked = tokio::task::spawn_blocking(move || me.ask(fault)).await;
        match asked {
            Ok(r) => r,
            Err(e) => Err(Failure::new(format!("fault broker: {e}"))),
        }
    }

    fn ask(&self, fault: RealFault) -> Result<(), Failure> {
        let Some(b) = &self.broker else {
            return Ok(());
        };
        b.lock()
            .unwrap_or_else(|p| p.into_inner())
            .inject(fault, BROKER_BOUND)
            .map(|_| ())
            .map_err(|e| Failure::from(e).context("fault broker"))
    }

    /// Gives every queue pair back and lifts a stall left behind, so that the next case
    /// finds the controller as this one did.
    fn release(&self) {
        if self.stalled.swap(false, Ordering::SeqCst) {
            let _ = self.ask(RealFault::Resume);
        }
        if self.failed.load(Ordering::SeqCst) {
            let _ = self.shared.reset();
        }
    }
}

impl Drop for RealBackend {
    fn drop(&mut self) {
        self.release();
    }
}

/// A session's backend controller: emulated, or a queue pair of the real controller.
#[derive(Clone)]
pub enum BackendRef {
    /// Emulated by the project.
    Emulated(Arc<BackendController>),
    /// The real controller.
    Real(Arc<RealBackend>),
}

/// A fault either kind of backend can be given; see `docs/softroce.md` for how each maps
/// onto QEMU's controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendFault {
    /// The controller fails (a PCI error): emulated, at once; real, AER on its root port.
    PciError,
    /// Commands never complete until [`BackendFault::Resume`]: on an emulated controller
    /// those matching `on`; on the real one, the next read (or write, with `writes`) the
    /// controller passes to its backing store (blkdebug breakpoints are one-shot).
    Stall {
        /// Which commands an emulated controller holds.
        on: CmdMatch,
        /// The real controller holds the next write (else the next read).
        writes: bool,
    },
    /// Lifts a stall: the real controller's stalled command completes.
    Resume,
}

impl BackendRef {
    /// The emulated controller, or a failure saying the case needs one (such a case
    /// declares [`super::Need::EmulatedBackend`], so it does not get here on a real one).
    pub fn emulated(&self) -> Result<&Arc<BackendController>, Failure> {
        match self {
            BackendRef::Emulated(c) => Ok(c),
            BackendRef::Real(_) => Err(Failure::new(
                "this check needs the project's emulated controller, and the run's backend is \
                 a real controller",
            )),
        }
    }

    /// Whether this is the real controller.
    pub fn is_real(&self) -> bool {
        matches!(self, BackendRef::Real(_))
    }

    /// Injects `fault` (see [`BackendFault`]).
    pub async fn inject(&self, fault: BackendFault) -> Result<(), Failure> {
        match self {
            BackendRef::Emulated(c) => {
                let f = match fault {
                    BackendFault::PciError => Fault::PciError,
                    BackendFault::Stall { on, .. } => Fault::Timeout { on, delay: None },
                    BackendFault::Resume => {
                        c.clear_faults();
                        return Ok(());
                    }
                };
                c.inject(f)
                    .map_err(|e| Failure::from(e).context("fault injection"))
            }
            BackendRef::Real(r) => {
                r.inject(match fault {
                    BackendFault::PciError => RealFault::PciError,
                    BackendFault::Stall { writes: false, .. } => RealFault::Stall,
                    BackendFault::Stall { writes: true, .. } => RealFault::StallWrites,
                    BackendFault::Resume => RealFault::Resume,
                })
                .await
            }
        }
    }

    /// Block `slba` of namespace 1, read from the media behind the device's back.
    pub fn read_block(&self, slba: u64) -> Result<Vec<u8>, Failure> {
        match self {
            BackendRef::Emulated(c) => super::media::read(c, slba),
            BackendRef::Real(r) => r.read_block(slba),
        }
    }

    /// Puts `data` on namespace 1 from block `slba` on, behind the device's back.
    pub fn write_blocks(&self, slba: u64, data: &[u8]) -> Result<(), Failure> {
        match self {
            BackendRef::Emulated(c) => super::media::write(c, slba, data),
            BackendRef::Real(r) => r.write_blocks(slba, data),
        }
    }

    /// Blocks of namespace 1.
    pub fn blocks(&self) -> u64 {
        match self {
            BackendRef::Emulated(c) => c.with_namespace(1, |n| n.blocks()).unwrap_or(NS_BLOCKS),
            BackendRef::Real(r) => r.facts().map_or(0, |f| f.blocks),
        }
    }
}
