//! What the target's tasks share ([`Shared`]): the device, the engine, the subsystems with
//! their SRQs and backend controllers, the ports, the controllers hosts created, the
//! connections, and the event log; and how a controller is torn down and a backend built.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use harness::api::{
    CtrlHandle, MemRef, NsMapping, NvmeCtrlAttrs, NvmfSrq, NvmfSrqAttrs, OffloadEvent,
    OffloadProvider,
};
use harness::backend::emulated::PciBus;
use harness::backend::emulated::{BackendController, DmaRegion, Namespace};
use harness::fabric::{Access, ConnId, DeviceContext, ListenerId, MrInfo, PdId};
use harness::wire::{ArbitrationRepr, ErrorRecoveryRepr, PowerManagementRepr};
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::backend::{Backend, RealController};
use super::config::{Backing, SubsystemConfig};
use super::TargetError;
use crate::engine::Engine;
use crate::quirks::Quirks;

/// Receives software keeps posted on each subsystem's NVMe-oF SRQ (and its depth).
pub const SW_RECEIVES: u32 = 256;
/// In-capsule data the target offers on I/O queues when the caps allow (bytes).
pub const IN_CAPSULE_DATA: u32 = 4096;
/// Bound of every wait on the fabric inside the target (RDMA READ/WRITE, SEND).
pub const OP_BOUND: Duration = Duration::from_secs(5);
/// Period at which idle loops re-check whether they should stop.
pub(crate) const IDLE_TICK: Duration = Duration::from_secs(1);

/// Everything the target's tasks share.
pub(crate) struct Shared {
    /// The in-process engine; `None` over a plugin's device ([`Target::start_on_device`]).
    pub engine: Option<Arc<Engine>>,
    /// The provider every offload call goes through (the engine's, or a wrapper of it).
    pub provider: Arc<dyn OffloadProvider>,
    pub ctx: Arc<dyn DeviceContext>,
    pub bus: Arc<PciBus>,
    pub quirks: Quirks,
    pub subs: Vec<Subsystem>,
    /// The ports, in the config's order (port ID = index + 1).
    pub ports: Vec<Port>,
    /// Each listener's port (an index into `ports`).
    pub listeners: BTreeMap<ListenerId, usize>,
    pub st: Mutex<State>,
    pub(crate) log: Mutex<Vec<String>>,
    pub(crate) log_notify: Notify,
    pub(crate) offload_events: Mutex<Vec<OffloadEvent>>,
    pub(crate) tasks: Mutex<Vec<AbortHandle>>,
}

/// One subsystem as built.
pub(crate) struct Subsystem {
    pub cfg: SubsystemConfig,
    pub pd: PdId,
    pub srq: NvmfSrq,
    pub attrs: NvmfSrqAttrs,
    pub staging_mr: MrInfo,
    pub recv_mr: MrInfo,
    pub slot_len: u64,
    /// Most entries of a host I/O queue (CAP.MQES + 1).
    pub depth: u16,
    /// The subsystem's maximum data transfer size, bytes (Identify Controller's MDTS):
    /// [`super::identity::mdts_bytes`]. Each connection's bounce buffer for
    /// software-served data is this long.
    pub mdts: u64,
    /// The real controller behind it (a `vfio` backend), opened at start.
    pub real: Option<Arc<RealController>>,
}

/// One listening port as built.
#[derive(Debug, Clone)]
pub(crate) struct Port {
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    /// The subsystem it serves (an index into `subs`).
    pub sub: usize,
}

/// The backend controller of a subsystem.
pub(crate) struct BackendSlot {
    /// The engine's handle; `None` once released after a PCI error.
    pub ctrl: Option<CtrlHandle>,
    pub backend: Backend,
    pub rings: MrInfo,
    pub attrs: NvmeCtrlAttrs,
    /// How many times it was re-created.
    pub generation: u32,
}

/// The Composite Temperature's over threshold at first, in kelvins (70 °C).
pub(crate) const TEMP_OVER: u16 = 343;

/// What Set Features keeps per controller (Number of Queues, Asynchronous Event
/// Configuration and KATO live in the controller itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FeatureValues {
    pub arbitration: ArbitrationRepr,
    pub power: PowerManagementRepr,
    pub temp_over: u16,
    pub temp_under: u16,
    pub error_recovery: ErrorRecoveryRepr,
    pub write_cache: bool,
    pub atomicity_dn: bool,
}

impl Default for FeatureValues {
    fn default() -> FeatureValues {
        FeatureValues {
            arbitration: ArbitrationRepr {
                ab: 0b111,
                ..ArbitrationRepr::default()
            },
            power: PowerManagementRepr::default(),
            temp_over: TEMP_OVER,
            temp_under: 0,
            error_recovery: ErrorRecoveryRepr::default(),
            write_cache: true,
            atomicity_dn: false,
        }
    }
}

/// An NVMe-oF controller (what a host's admin Connect creates).
pub(crate) struct NvmfCtrl {
    pub hostnqn: String,
    /// A discovery controller (Connect to the discovery NQN): admin queue only, answers
    /// Identify and the discovery log (`control/discovery.rs`).
    pub discovery: bool,
    /// CIDs of the Asynchronous Event Requests held open (at most `AERL + 1`).
    pub aers: Vec<u16>,
    /// Asynchronous Event Configuration (Set Features 0Bh).
    pub aec: u32,
    pub kato: Duration,
    /// Which Keep Alive watchdog is current (`control/keepalive.rs`).
    pub kato_gen: u32,
    pub last_ka: Instant,
    /// Feature values Set Features changed (`control/features.rs`).
    pub features: FeatureValues,
    pub cc: u32,
    pub csts: u32,
    /// I/O queues granted by Set Features Number of Queues, if the host asked.
    pub granted: Option<u16>,
    pub io_qids: BTreeSet<u16>,
    pub admin_conn: ConnId,
    pub io_conns: BTreeSet<ConnId>,
}

/// A live connection.
pub(crate) struct ConnEntry {
    pub cancel: watch::Sender<bool>,
}

/// Mutable state behind one mutex.
#[derive(Default)]
pub(crate) struct State {
    pub backends: BTreeMap<usize, BackendSlot>,
    /// Namespaces answered with Namespace Not Ready by software, and why.
    pub ns_offline: BTreeMap<(usize, u32), &'static str>,
    pub ctrls: BTreeMap<(usize, u16), NvmfCtrl>,
    pub next_cntlid: BTreeMap<usize, u16>,
    pub conns: BTreeMap<ConnId, ConnEntry>,
    /// I/O commands served by software, per subsystem.
    pub sw_io: BTreeMap<usize, u64>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a line to the target event log.
    pub(crate) fn log(&self, line: String) {
        tracing::info!(target: "nvmf_target", "{line}");
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
        self.log_notify.notify_waiters();
    }

    pub(crate) fn record_offload_event(&self, ev: OffloadEvent) {
        self.offload_events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ev);
    }

    pub(crate) fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let h = tokio::spawn(f);
        let mut t = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        t.retain(|a| !a.is_finished());
        t.push(h.abort_handle());
    }

    /// Stops every connection of controller `(sub, cntlid)` and forgets it.
    pub(crate) fn teardown_ctrl(&self, sub: usize, cntlid: u16, why: &str) {
        let conns: Vec<ConnId> = {
            let mut st = self.lock();
            let Some(c) = st.ctrls.remove(&(sub, cntlid)) else {
                return;
            };
            let mut v: Vec<ConnId> = c.io_conns.into_iter().collect();
            v.push(c.admin_conn);
            for conn in &v {
                if let Some(e) = st.conns.get(conn) {
                    let _ = e.cancel.send(true);
                }
            }
            v
        };
        self.log(format!(
            "ctrl-teardown subsystem={} cntlid={cntlid} reason={why} queues={}",
            self.subs[sub].cfg.nqn,
            conns.len()
        ));
        for conn in conns {
            let _ = self.ctx.cm_disconnect(conn);
        }
    }

    /// Creates (or re-creates, moving the namespaces of `old`) the backend controller of
    /// subsystem `sub` and maps its namespaces. The caller holds no lock.
    pub(crate) fn build_backend(
        &self,
        sub: usize,
        old: Option<&BackendController>,
        generation: u32,
    ) -> Result<BackendSlot, TargetError> {
        let s = &self.subs[sub];
        let (backend, rings, attrs) = match &s.real {
            Some(real) => self.attach_real(sub, real)?,
            None => self.build_emulated(sub, old)?,
        };
        let ctrl = match self.provider.create_nvme_ctrl(s.srq.handle, &attrs) {
            Ok(c) => c,
            Err(e) => {
                self.bus.detach(attrs.sqdb.mr, attrs.sqdb.addr);
                self.bus.detach_port(attrs.sqdb.mr, attrs.sqdb.addr);
                if let Backend::Real(r) = &backend {
                    r.detach_engine();
                }
                return Err(TargetError::new(
                    format!(
                        "subsystem `{}` create_nvme_ctrl (cmd_timeout_ms, queue_depth)",
                        s.cfg.nqn
                    ),
                    e.to_string(),
                ));
            }
        };
        for n in &s.cfg.namespaces {
            let m = NsMapping {
                fe_nsid: n.nsid,
                nvme_nsid: n.nsid,
                lba_data_size: n.lba_format.lba_data_size(),
            };
            if let Err(e) = self.provider.map_nsid(ctrl, &m) {
                // Not offloadable on this device (e.g. LBA data size): software serves it.
                self.log(format!(
                    "map-nsid-refused subsystem={} nsid={} lba_data_size={} errno={} (served by software)",
                    s.cfg.nqn,
                    n.nsid,
                    m.lba_data_size,
                    e.errno()
                ));
            }
        }
        Ok(BackendSlot {
            ctrl: Some(ctrl),
            backend,
            rings,
            attrs,
            generation,
        })
    }

    /// The engine's queue pair on subsystem `sub`'s real controller: rings in a region of
    /// the engine's context, the staging buffer mapped, the port on the bus.
    fn attach_real(
        &self,
        sub: usize,
        real: &Arc<RealController>,
    ) -> Result<(Backend, MrInfo, NvmeCtrlAttrs), TargetError> {
        let s = &self.subs[sub];
        let what = |m: String| {
            TargetError::new(
                format!(
                    "subsystem `{}` backend (vfio {})",
                    s.cfg.nqn,
                    real.address()
                ),
                m,
            )
        };
        let depth = s.attrs.nvme_queue_depth as u16;
        let layout = harness::backend::vfio::RingLayout::new(depth);
        let rings = self
            .ctx
            .reg_mr(s.pd, layout.len, Access::LOCAL_WRITE)
            .map_err(|e| what(format!("rings: {e}")))?;
        let port = match real.attach_engine(self.ctx.clone(), rings, &s.staging_mr, depth) {
            Ok(p) => p,
            Err(e) => {
                let _ = self.ctx.dereg_mr(rings.id);
                return Err(what(e.to_string()));
            }
        };
        let attrs = layout.ctrl_attrs(&rings, s.cfg.cmd_timeout_ms.saturating_mul(1000));
        self.bus.attach_port(attrs.sqdb.mr, attrs.sqdb.addr, port);
        Ok((Backend::Real(real.clone()), rings, attrs))
    }

    /// A new emulated controller for subsystem `sub` (taking over the namespaces of `old`),
    /// attached to the bus.
    fn build_emulated(
        &self,
        sub: usize,
        old: Option<&BackendController>,
    ) -> Result<(Backend, MrInfo, NvmeCtrlAttrs), TargetError> {
        let s = &self.subs[sub];
        let what = |m: String| TargetError::new(format!("subsystem `{}` backend", s.cfg.nqn), m);
        let depth = u64::from(s.attrs.nvme_queue_depth);
        let sq_len = depth * 64;
        let cq_len = depth * 16;
        let rings = self
            .ctx
            .reg_mr(s.pd, sq_len + cq_len + 8, Access::LOCAL_WRITE)
            .map_err(|e| what(format!("rings: {e}")))?;
        let mut attrs = NvmeCtrlAttrs {
            sq_buf: MemRef::of(&rings, 0, sq_len),
            cq_buf: MemRef::of(&rings, sq_len, cq_len),
            sqdb: MemRef::of(&rings, sq_len + cq_len, 4),
            cqdb: MemRef::of(&rings, sq_len + cq_len + 4, 4),
            sqdb_ini: 0,
            cqdb_ini: 0,
            cmd_timeout_us: s.cfg.cmd_timeout_ms.saturating_mul(1000),
            extra_sqs: vec![],
        };
        let dma = DmaRegion::from_mem(&s.attrs.staging_buf, &s.staging_mr)
            .ok_or_else(|| what("staging buffer outside its region".into()))?;
        let backend = Arc::new(
            self.bus
                .spawn(
                    self.ctx.clone(),
                    s.pd,
                    &mut attrs,
                    s.attrs.nvme_queue_depth as u16,
                    &[rings, s.staging_mr],
                    vec![dma],
                )
                .map_err(|e| what(e.to_string()))?,
        );
        for n in &s.cfg.namespaces {
            let ns = match old.and_then(|o| o.remove_namespace(n.nsid).ok()) {
                Some(ns) => ns,
                None => match &n.backing {
                    Backing::Ram => Namespace::ram(n.nsid, n.lba_format, n.blocks()),
                    Backing::File(p) => Namespace::file(n.nsid, p, n.lba_format, n.blocks()),
                    Backing::Controller => {
                        return Err(what(format!(
                            "namespace {} is on a real controller, the backend is emulated",
                            n.nsid
                        )))
                    }
                }
                .map_err(|e| {
                    TargetError::new(
                        format!("subsystem `{}` namespace {}", s.cfg.nqn, n.nsid),
                        e.to_string(),
                    )
                })?,
            };
            backend.add_namespace(ns).map_err(|e| what(e.to_string()))?;
        }
        self.bus
            .attach(attrs.sqdb.mr, attrs.sqdb.addr, backend.clone());
        Ok((Backend::Emulated(backend), rings, attrs))
    }
}
