//! The backend NVMe controllers a case creates for the device under test ([`Backends`]):
//! emulated by the project (with fault injection and counters; made and looked at through
//! the messages of [`harness::remote::backend`], so the same calls reach them in another
//! process), or queue pairs
//! of a real controller driven through VFIO ([`RealBackend`], `nvmf-conform run --backend
//! vfio:PCI`, in [`super::real`]), with real faults asked of the host's fault broker. A session holds its
//! controller as a [`BackendRef`]: what either kind can do (media read and written behind
//! the device's back, faults) goes through it; what only the emulated one has (counters,
//! armed faults, extra SQs) is reached with [`BackendRef::emulated`], by cases that
//! declare [`super::Need::EmulatedBackend`].

use std::sync::Arc;

use harness::api::{NvmeCtrlAttrs, NvmfSrqAttrs};
use harness::backend::emulated::{CmdMatch, Counters, Fault, LbaFormat, PciBus};
use harness::backend::vfio::broker::RealFault;
use harness::backend::vfio::RingLayout;
use harness::fabric::{Access, DeviceContext, MrInfo, PdId};
use harness::remote::{
    BackendCall, BackendHost, BackendId, BackendLink, BackendReply, JsonBackendLink, NsSource,
};
use harness::trace::Recorder;

use super::failure::Failure;
pub use super::real::RealBackend;

/// Why a case that makes the backend slow runs on emulated controllers only
/// ([`super::Need::EmulatedBackend`]).
pub const SLOW_BACKEND: &str = "delays every completion by a set time (the broker sets no \
     per-command delay on QEMU's controller)";

/// Blocks of each namespace the harness creates on an emulated backend.
pub const NS_BLOCKS: u64 = 1024;

/// Creates backend NVMe controllers reachable by the device: emulated ones, made by a
/// [`BackendHost`] through its messages ([`BackendLink`]), or queue pairs of a real
/// controller when the run names one.
pub struct Backends {
    ctx: Arc<dyn DeviceContext>,
    /// The bus the device finds them on (none here when the device is on another host).
    bus: Option<Arc<PciBus>>,
    /// The emulated controllers' host.
    link: Arc<dyn BackendLink>,
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
        ini: (u16, u16),
        namespaces: &[(u32, LbaFormat)],
    ) -> Result<NvmeCtrlAttrs, Failure> {
        if self.real.is_some() {
            return self.build_real(pd, srq, staging, nsqs, ini, namespaces);
        }
        let namespaces = (namespaces.iter())
            .map(|&(nsid, format)| NsSource::Ram {
                nsid,
                format,
                blocks: NS_BLOCKS,
            })
            .collect();
        self.build(pd, srq, staging, nsqs, ini, namespaces)
    }

    /// As [`Backends::create`], with namespace `nsid` taken away from `from` (a failed
    /// controller), data and all; on the real controller, which keeps its namespace, a new
    /// queue pair.
    pub fn create_taking(
        &self,
        pd: PdId,
        srq: &NvmfSrqAttrs,
        staging: &MrInfo,
        from: &BackendRef,
        (nsid, format): (u32, LbaFormat),
    ) -> Result<NvmeCtrlAttrs, Failure> {
        match from {
            BackendRef::Emulated(b) => {
                let ns = NsSource::From { from: b.id, nsid };
                self.build(pd, srq, staging, 1, (0, 0), vec![ns])
            }
            BackendRef::Real(_) => self.create(pd, srq, staging, 1, &[(nsid, format)]),
        }
    }

    fn build(
        &self,
        pd: PdId,
        srq: &NvmfSrqAttrs,
        staging: &MrInfo,
        nsqs: usize,
        ini: (u16, u16),
        namespaces: Vec<NsSource>,
    ) -> Result<NvmeCtrlAttrs, Failure> {
        let nsqs = u32::try_from(nsqs).unwrap_or(u32::MAX);
        BackendCall::check_nsqs(nsqs)?;
        // The rings' region is registered here, on the device's context as this process
        // reaches it, so the trace names it wherever the backend host is.
        let len = BackendCall::rings_len(srq.nvme_queue_depth, nsqs);
        let rings = (self.ctx.reg_mr(pd, len, Access::LOCAL_WRITE))
            .map_err(|e| Failure::from(e).context("registering the backend's rings"))?;
        let call = BackendCall::Create {
            pd,
            srq: srq.clone(),
            staging: *staging,
            rings,
            nsqs,
            ini,
            namespaces,
        };
        match self.link.call(&call) {
            BackendReply::Created { attrs, .. } => Ok(attrs),
            other => Err(unexpected(other)),
        }
    }

    /// A queue pair of the real controller: rings in a region of the device's context laid
    /// out as [`RingLayout`] says, registered here so the trace names it wherever the
    /// controller is, then made by the host that lends it ([`BackendHost::lending`]: this
    /// process's, or the target host's), which refuses what the real controller does not
    /// have (more than one SQ, doorbells not from 0, another namespace format; cases that
    /// need it declare [`super::Need::EmulatedBackend`] and are skipped before they get
    /// here).
    fn build_real(
        &self,
        pd: PdId,
        srq: &NvmfSrqAttrs,
        staging: &MrInfo,
        nsqs: usize,
        ini: (u16, u16),
        namespaces: &[(u32, LbaFormat)],
    ) -> Result<NvmeCtrlAttrs, Failure> {
        let layout = RingLayout::new(srq.nvme_queue_depth as u16);
        let rings = self.ctx.reg_mr(pd, layout.len, Access::LOCAL_WRITE)?;
        let call = BackendCall::Create {
            pd,
            srq: srq.clone(),
            staging: *staging,
            rings,
            nsqs: u32::try_from(nsqs).unwrap_or(u32::MAX),
            ini,
            namespaces: (namespaces.iter())
                .map(|&(nsid, format)| NsSource::Ram {
                    nsid,
                    format,
                    blocks: 0,
                })
                .collect(),
        };
        match self.link.call(&call) {
            BackendReply::Created { attrs, .. } => Ok(attrs),
            other => Err(unexpected(other)),
        }
    }

    /// The controller behind attributes made by [`Backends::create`], as a session holds
    /// it.
    pub fn backend_of(&self, attrs: &NvmeCtrlAttrs) -> Option<BackendRef> {
        if let Some(r) = &self.real {
            return Some(BackendRef::Real(r.clone()));
        }
        let call = BackendCall::Find {
            attrs: attrs.clone(),
        };
        match self.link.call(&call) {
            BackendReply::Found(Some(id)) => Some(BackendRef::Emulated(EmulatedBackend {
                link: self.link.clone(),
                id,
            })),
            _ => None,
        }
    }

    /// The real controller of this run, if it names one.
    pub fn real(&self) -> Option<&Arc<RealBackend>> {
        self.real.as_ref()
    }

    /// Lets go of every controller made (the emulated ones, the real one's queue pairs).
    pub(crate) fn release(&self) {
        // the emulated controllers, and the real one's ports, leave the bus; a host that
        // lends a real controller lifts a stall first and resets it if it failed
        let _ = self.link.call(&BackendCall::Release);
    }

    /// The emulated PCIe bus the device finds these controllers on (not in this process
    /// when the device is on another host).
    pub fn bus(&self) -> Result<&Arc<PciBus>, Failure> {
        (self.bus.as_ref())
            .ok_or_else(|| Failure::new("the backends' bus is on the remote target's host"))
    }
}

impl Backends {
    /// Emulated controllers for `ctx`'s device on `bus`, traced into `rec` when given;
    /// every call through JSON text when `json` (as the control channel carries them).
    pub fn emulated(
        ctx: Arc<dyn DeviceContext>,
        bus: Arc<PciBus>,
        rec: Option<Recorder>,
        json: bool,
    ) -> Self {
        let host = BackendHost::new(ctx.clone(), bus.clone(), rec);
        Backends {
            ctx,
            bus: Some(bus),
            link: if json {
                Arc::new(JsonBackendLink(host))
            } else {
                Arc::new(host)
            },
            real: None,
        }
    }

    /// These backends with every controller a queue pair of `real` from now on: on this
    /// host (its ports on this bus), or lent by the target host behind this link.
    pub fn with_real(&self, real: Arc<RealBackend>) -> Result<Self, Failure> {
        let link = match real.here() {
            // its ports go on this process's bus, made by a host lending it here
            Some(l) => Arc::new(
                BackendHost::new(self.ctx.clone(), self.bus()?.clone(), None).lending(l.clone()),
            ) as Arc<dyn BackendLink>,
            None => self.link.clone(),
        };
        Ok(Backends {
            ctx: self.ctx.clone(),
            bus: self.bus.clone(),
            link,
            real: Some(real),
        })
    }

    /// Emulated controllers made by a host elsewhere (two-host mode: the target host's),
    /// reached through `link`; `ctx` is the device's context as this process reaches it.
    pub fn linked(ctx: Arc<dyn DeviceContext>, link: Arc<dyn BackendLink>) -> Self {
        Backends {
            ctx,
            bus: None,
            link,
            real: None,
        }
    }
}

/// A reply other than the one asked for, as a case's failure.
fn unexpected(reply: BackendReply) -> Failure {
    match reply {
        BackendReply::Failed(why) => Failure::new(why),
        other => Failure::new(format!("the backend host answered {other:?}")),
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

/// An emulated backend controller as a case holds it: its number on the backend host and
/// the link to that host. Every look (what it counts, the faults it is given, the media
/// of its namespace 1) is a message.
#[derive(Clone)]
pub struct EmulatedBackend {
    link: Arc<dyn BackendLink>,
    id: BackendId,
}

/// Sends `$call` on `$self`'s link: `$reply` gives `Ok($out)`, any other a failure.
macro_rules! ask {
    ($self:ident, $call:expr, $reply:pat => $out:expr) => {
        match $self.link.call(&$call) {
            $reply => Ok($out),
            other => Err(unexpected(other)),
        }
    };
}

impl EmulatedBackend {
    /// What the controller counted so far.
    pub fn counters(&self) -> Result<Counters, Failure> {
        let call = BackendCall::Counters { backend: self.id };
        ask!(self, call, BackendReply::Counters(c) => c)
    }

    /// Injects `fault`.
    pub fn inject(&self, fault: Fault) -> Result<(), Failure> {
        let call = BackendCall::Inject {
            backend: self.id,
            fault,
        };
        ask!(self, call, BackendReply::Done => ())
    }

    /// Lifts every fault (a stall's commands complete; bad blocks are repaired).
    pub fn clear_faults(&self) -> Result<(), Failure> {
        let call = BackendCall::ClearFaults { backend: self.id };
        ask!(self, call, BackendReply::Done => ())
    }

    /// Block `slba` of namespace 1, read from the media.
    pub fn read_block(&self, slba: u64) -> Result<Vec<u8>, Failure> {
        let call = BackendCall::ReadBlock {
            backend: self.id,
            slba,
        };
        ask!(self, call, BackendReply::Bytes(b) => b)
    }

    /// Puts `data` on namespace 1 from block `slba` on.
    pub fn write_blocks(&self, slba: u64, data: &[u8]) -> Result<(), Failure> {
        let call = BackendCall::WriteBlocks {
            backend: self.id,
            slba,
            data: data.to_vec(),
        };
        ask!(self, call, BackendReply::Done => ())
    }

    /// Blocks of namespace 1.
    pub fn blocks(&self) -> u64 {
        let call = BackendCall::Blocks { backend: self.id };
        match self.link.call(&call) {
            BackendReply::Blocks(Some(n)) => n,
            _ => NS_BLOCKS,
        }
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
