//! The backend NVMe controllers a case creates for the device under test ([`Backends`]):
//! emulated by the project (in-process, with fault injection and counters), or queue pairs
//! of a real controller driven through VFIO ([`RealBackend`], `nvmf-conform run --backend
//! vfio:PCI`, in [`super::real`]), with real faults asked of the host's fault broker. A session holds its
//! controller as a [`BackendRef`]: what either kind can do (media read and written behind
//! the device's back, faults) goes through it; what only the emulated one has (counters,
//! armed faults, extra SQs) is reached with [`BackendRef::emulated`], by cases that
//! declare [`super::Need::EmulatedBackend`].

use std::sync::{Arc, Mutex};

use harness::api::{MemRef, NvmeCtrlAttrs, NvmfSrqAttrs};
use harness::backend::emulated::{
    BackendController, CmdMatch, Counters, DmaRegion, Fault, LbaFormat, Namespace, PciBus,
};
use harness::backend::vfio::broker::RealFault;
use harness::backend::vfio::RingLayout;
use harness::fabric::{Access, DeviceContext, MrInfo, PdId};
use harness::trace::Recorder;

use super::failure::Failure;
pub use super::real::RealBackend;

/// Why a case that makes the backend slow runs on emulated controllers only
/// ([`super::Need::EmulatedBackend`]).
pub const SLOW_BACKEND: &str = "delays every completion by a set time (the broker sets no \
     per-command delay on QEMU's controller)";

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
        self.create_rings(pd, srq, staging, nsqs, (0, 0), namespaces)
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
        let mut attrs = NvmeCtrlAttrs {
            sq_buf,
            cq_buf,
            sqdb,
            cqdb,
            sqdb_ini: sq_ini,
            cqdb_ini: cq_ini,
            cmd_timeout_us: 0,
            extra_sqs,
        };
        let dma = DmaRegion::from_mem(&srq.staging_buf, staging)
            .ok_or_else(|| Failure::new("staging buffer outside its region"))?;
        let ctrl = Arc::new(
            self.bus
                .spawn(
                    self.ctx.clone(),
                    pd,
                    &mut attrs,
                    srq.nvme_queue_depth as u16,
                    &[m, *staging],
                    vec![dma],
                )
                .map_err(|e| Failure::from(e).context("backend spawn"))?,
        );
        if let Some(rec) = &self.rec {
            ctrl.trace_into(rec.clone());
        }
        for ns in namespaces {
            ctrl.add_namespace(ns)
                .map_err(|e| Failure::from(e).context("namespace"))?;
        }
        self.bus
            .attach(attrs.sqdb.mr, attrs.sqdb.addr, ctrl.clone());
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
        let attrs = layout.ctrl_attrs(&rings, 0);
        self.bus.attach_port(attrs.sqdb.mr, attrs.sqdb.addr, port);
        Ok(attrs)
    }

    /// The controller behind attributes made by [`Backends::create`], as a session holds
    /// it.
    pub fn backend_of(&self, attrs: &NvmeCtrlAttrs) -> Option<BackendRef> {
        match &self.real {
            Some(r) => Some(BackendRef::Real(r.clone())),
            None => self
                .controller(attrs)
                .map(|c| BackendRef::Emulated(EmulatedBackend(c))),
        }
    }

    /// The real controller of this run, if it names one.
    pub fn real(&self) -> Option<&Arc<RealBackend>> {
        self.real.as_ref()
    }

    /// Lets go of every controller made (the emulated ones, the real one's queue pairs).
    pub(crate) fn release(&self) {
        // A stall first: QEMU's controller deletes a queue, or resets, only once every
        // request it holds has finished, so a stalled one would hang it.
        if let Some(r) = &self.real {
            r.lift_stall();
        }
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

/// A session's backend controller: emulated, or a queue pair of the real controller.
#[derive(Clone)]
pub enum BackendRef {
    /// Emulated by the project.
    Emulated(EmulatedBackend),
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
    /// those matching `on`; on the real one, the next read the controller passes to its
    /// backing store (blkdebug breakpoints are one-shot; reads only, see
    /// `ci/softroce/fault-broker.py`).
    Stall {
        /// Which commands an emulated controller holds.
        on: CmdMatch,
    },
    /// Lifts a stall: the real controller's stalled command completes (and its drive
    /// serves at full speed again).
    Resume,
    /// Every command completes `delay` late: on the real controller, its drive throttled
    /// to 50 commands a second (about 20 ms apart), until [`BackendFault::Resume`].
    Slow {
        /// How late an emulated controller completes each command.
        delay: std::time::Duration,
    },
}

/// An emulated backend controller as a case holds it: what it counts, the faults it is
/// given, the media of its namespace 1. Every look is fallible, as a look across a
/// control channel is.
#[derive(Clone)]
pub struct EmulatedBackend(Arc<BackendController>);

impl EmulatedBackend {
    /// What the controller counted so far.
    pub fn counters(&self) -> Result<Counters, Failure> {
        Ok(self.0.counters())
    }

    /// Injects `fault`.
    pub fn inject(&self, fault: Fault) -> Result<(), Failure> {
        (self.0.inject(fault)).map_err(|e| Failure::from(e).context("fault injection"))
    }

    /// Lifts every fault (a stall's commands complete; bad blocks are repaired).
    pub fn clear_faults(&self) -> Result<(), Failure> {
        self.0.clear_faults();
        Ok(())
    }

    /// Block `slba` of namespace 1, read from the media.
    pub fn read_block(&self, slba: u64) -> Result<Vec<u8>, Failure> {
        (self.0.with_namespace(1, |ns| ns.read_blocks(slba, 1)))
            .ok_or_else(|| Failure::new("the backend has no namespace 1"))?
            .map_err(|e| Failure::from(e).context("reading the backend's media"))
    }

    /// Puts `data` on namespace 1 from block `slba` on.
    pub fn write_blocks(&self, slba: u64, data: &[u8]) -> Result<(), Failure> {
        (self.0.with_namespace(1, |ns| ns.write_blocks(slba, data)))
            .ok_or_else(|| Failure::new("the backend has no namespace 1"))?
            .map_err(|e| Failure::from(e).context("writing the backend's media"))
    }

    /// Blocks of namespace 1.
    pub fn blocks(&self) -> u64 {
        self.0
            .with_namespace(1, |n| n.blocks())
            .unwrap_or(NS_BLOCKS)
    }

    /// Takes namespace `nsid` away from the controller, data included (to hand it to
    /// another one with [`Backends::create_with`]).
    pub fn take_namespace(&self, nsid: u32) -> Result<Namespace, Failure> {
        (self.0.remove_namespace(nsid))
            .map_err(|e| Failure::from(e).context("taking the namespace back"))
    }
}

impl BackendRef {
    /// The emulated controller, or a failure saying the case needs one (such a case
    /// declares [`super::Need::EmulatedBackend`], so it does not get here on a real one).
    pub fn emulated(&self) -> Result<&EmulatedBackend, Failure> {
        match self {
            BackendRef::Emulated(c) => Ok(c),
            BackendRef::Real(_) => Err(Failure::new(
                "this check needs the project's emulated controller, and the run's backend is \
                 a real controller",
            )),
        }
    }

    /// Injects `fault`, one only the emulated controller has (such a case declares
    /// [`super::Need::EmulatedBackend`]).
    pub fn inject_emulated(&self, fault: Fault) -> Result<(), Failure> {
        self.emulated()?.inject(fault)
    }

    /// What an emulated controller counted so far; `None` on the real one (QEMU's
    /// controller has no such counters).
    pub fn counters_if_emulated(&self) -> Result<Option<Counters>, Failure> {
        match self {
            BackendRef::Emulated(c) => c.counters().map(Some),
            BackendRef::Real(_) => Ok(None),
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
                    BackendFault::Slow { delay } => Fault::SlowCompletions { delay },
                    BackendFault::Resume => return c.clear_faults(),
                };
                c.inject(f)
            }
            BackendRef::Real(r) => {
                r.inject(match fault {
                    BackendFault::PciError => RealFault::PciError,
                    BackendFault::Stall { .. } => RealFault::Stall,
                    BackendFault::Resume => RealFault::Resume,
                    BackendFault::Slow { .. } => RealFault::Slow,
                })
                .await
            }
        }
    }

    /// Block `slba` of namespace 1, read from the media behind the device's back.
    pub fn read_block(&self, slba: u64) -> Result<Vec<u8>, Failure> {
        match self {
            BackendRef::Emulated(c) => c.read_block(slba),
            BackendRef::Real(r) => r.read_block(slba),
        }
    }

    /// Puts `data` on namespace 1 from block `slba` on, behind the device's back.
    pub fn write_blocks(&self, slba: u64, data: &[u8]) -> Result<(), Failure> {
        match self {
            BackendRef::Emulated(c) => c.write_blocks(slba, data),
            BackendRef::Real(r) => r.write_blocks(slba, data),
        }
    }

    /// Blocks of namespace 1.
    pub fn blocks(&self) -> u64 {
        match self {
            BackendRef::Emulated(c) => c.blocks(),
            BackendRef::Real(r) => r.facts().map_or(0, |f| f.blocks),
        }
    }
}
