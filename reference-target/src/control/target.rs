//! [`Target`]: the target's software side, started from a [`Config`].
//!
//! [`Target::start`] builds, inside a tokio runtime: the offload [`Engine`] over the real
//! device context (profile caps, quirks, a [`PciBus`]); per subsystem a PD, the staging
//! buffer, the NVMe-oF SRQ, the receive buffers software posts on it, one backend NVMe
//! controller holding every namespace of the subsystem (attached to the bus, created with
//! `create_nvme_ctrl`, each namespace mapped fe_nsid → the same backend nsid); a CM
//! listener per port; then three kinds of tasks: the CM loop (connect requests,
//! disconnects), one task per connection (its capsules, see `control/queue.rs`), and the
//! offload-event task ([`super::events`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use harness::api::{
    CtrlHandle, MemRef, NsMapping, NvmeCtrlAttrs, NvmfSrq, NvmfSrqAttrs, OffloadEvent,
    OffloadProvider,
};
use harness::fabric::{
    Access, CmEventKind, ConnId, DeviceContext, ListenerId, MrInfo, PdId, RecvWr, SrqInit,
};
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::config::{Backing, Config, SubsystemConfig};
use super::connect;
use super::TargetError;
use crate::engine::Engine;
use crate::quirks::Quirks;
use harness::backend::emulated::PciBus;
use harness::backend::emulated::{
    BackendController, ControllerConfig, DmaRegion, Fault, Namespace,
};

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
    log: Mutex<Vec<String>>,
    log_notify: Notify,
    offload_events: Mutex<Vec<OffloadEvent>>,
    tasks: Mutex<Vec<AbortHandle>>,
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
    /// Size of each connection's bounce buffer for software-served data.
    pub data_len: u64,
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
    pub backend: Arc<BackendController>,
    pub rings: MrInfo,
    pub attrs: NvmeCtrlAttrs,
    /// How many times it was re-created.
    pub generation: u32,
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
    pub last_ka: Instant,
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
        let what = |m: String| TargetError::new(format!("subsystem `{}` backend", s.cfg.nqn), m);
        let depth = u64::from(s.attrs.nvme_queue_depth);
        let sq_len = depth * 64;
        let cq_len = depth * 16;
        let rings = self
            .ctx
            .reg_mr(s.pd, sq_len + cq_len + 8, Access::LOCAL_WRITE)
            .map_err(|e| what(format!("rings: {e}")))?;
        let attrs = NvmeCtrlAttrs {
            sq_buf: MemRef::of(&rings, 0, sq_len),
            cq_buf: MemRef::of(&rings, sq_len, cq_len),
            sqdb: MemRef::of(&rings, sq_len + cq_len, 4),
            cqdb: MemRef::of(&rings, sq_len + cq_len + 4, 4),
            sqdb_ini: 0,
            cqdb_ini: 0,
            cmd_timeout_us: s.cfg.cmd_timeout_ms.saturating_mul(1000),
            extra_sqs: vec![],
        };
        let mrs = [rings, s.staging_mr];
        let dma = DmaRegion::from_mem(&s.attrs.staging_buf, &s.staging_mr)
            .ok_or_else(|| what("staging buffer outside its region".into()))?;
        let cfg = ControllerConfig::from_attrs(
            &attrs,
            s.attrs.nvme_queue_depth as u16,
            harness::api::check::mr_table(&mrs),
            vec![dma],
        )
        .map_err(|e| what(e.to_string()))?;
        let backend = Arc::new(
            BackendController::spawn(self.ctx.clone(), cfg).map_err(|e| what(e.to_string()))?,
        );
        for n in &s.cfg.namespaces {
            let ns = match old.and_then(|o| o.remove_namespace(n.nsid).ok()) {
                Some(ns) => ns,
                None => match &n.backing {
                    Backing::Ram => Namespace::ram(n.nsid, n.lba_format, n.blocks()),
                    Backing::File(p) => Namespace::file(n.nsid, p, n.lba_format, n.blocks()),
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
        let ctrl = match self.provider.create_nvme_ctrl(s.srq.handle, &attrs) {
            Ok(c) => c,
            Err(e) => {
                self.bus.detach(attrs.sqdb.mr, attrs.sqdb.addr);
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
}

/// A running target; see the module docs.
pub struct Target {
    sh: Arc<Shared>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("subsystems", &self.sh.subs.len())
            .field("listeners", &self.sh.listeners.len())
            .finish()
    }
}

impl Target {
    /// Starts the target on `real` (a sim or verbs device context) with `config`. Must be
    /// called inside a tokio runtime. Errors name the object that could not be built.
    pub fn start(real: Arc<dyn DeviceContext>, config: Config) -> Result<Target, TargetError> {
        let bus = PciBus::new();
        let engine = Engine::with_limits(
            real,
            config.profile.caps.clone(),
            config.profile.device,
            config.quirks.clone(),
            bus.clone(),
        );
        let ctx = engine.context();
        let provider = engine.provider();
        Target::start_on(engine, bus, ctx, provider, config)
    }

    /// Starts the target over an engine the caller built (`Engine::new` with `bus`), so
    /// that the caller can see what the control plane does: `ctx` and `provider` are the
    /// device context and provider every call goes through — the engine's own, or
    /// wrappers of them (e.g. `harness::trace`'s traced ones, recording the device calls).
    /// The caps are `provider`'s (the config's profile is not used); the quirks are the
    /// config's and the engine's. Must be called inside a tokio runtime.
    pub fn start_on(
        engine: Arc<Engine>,
        bus: Arc<PciBus>,
        ctx: Arc<dyn DeviceContext>,
        provider: Arc<dyn OffloadProvider>,
        config: Config,
    ) -> Result<Target, TargetError> {
        Target::start_over(Some(engine), bus, ctx, provider, config)
    }

    /// Starts the target over any device under test: `ctx` and `provider` are what a
    /// vendor plugin returned (`harness::plugin::Plugin::open`), `bus` the PCI bus the
    /// plugin reaches the backend controllers on. There is no in-process engine
    /// ([`Target::offload_engine`] is `None`); the quirks are the config's (control-plane
    /// quirks; the device's own are the plugin's business). Must be called inside a tokio
    /// runtime.
    pub fn start_on_device(
        bus: Arc<PciBus>,
        ctx: Arc<dyn DeviceContext>,
        provider: Arc<dyn OffloadProvider>,
        config: Config,
    ) -> Result<Target, TargetError> {
        Target::start_over(None, bus, ctx, provider, config)
    }

    fn start_over(
        engine: Option<Arc<Engine>>,
        bus: Arc<PciBus>,
        ctx: Arc<dyn DeviceContext>,
        provider: Arc<dyn OffloadProvider>,
        config: Config,
    ) -> Result<Target, TargetError> {
        let caps = provider.caps();
        let mut quirks = config.quirks.clone();
        for q in engine.iter().flat_map(|e| e.quirks().iter()) {
            quirks.insert(q);
        }
        let dev = ctx.device_attr();
        let mut subs = Vec::new();
        for s in &config.subsystems {
            let e = |what: &str, m: String| {
                TargetError::new(format!("subsystem `{}` {what}", s.nqn), m)
            };
            let pd = ctx.alloc_pd().map_err(|x| e("pd", x.to_string()))?;
            let staging_len = s
                .staging_buf
                .unwrap_or_else(|| caps.min_staging_buf_size.max(1 << 20));
            let staging = ctx
                .reg_mr(pd, staging_len, Access::LOCAL_WRITE)
                .map_err(|x| e("staging_buf", x.to_string()))?;
            let depth = s
                .queue_depth
                .clamp(
                    caps.min_nvme_queue_depth.max(2),
                    caps.max_nvme_queue_depth.max(2),
                )
                .min(32768);
            let ioccsz = (4 + IN_CAPSULE_DATA / 16)
                .min(caps.max_ioccsz)
                .max(caps.min_ioccsz)
                .max(4);
            let rq_depth = SW_RECEIVES.min(dev.max_srq_wr);
            let attrs = NvmfSrqAttrs {
                rq: SrqInit {
                    max_wr: rq_depth,
                    max_sge: 1,
                    srq_limit: 0,
                },
                offload_ops: caps.allowed_offload_ops(),
                max_namespaces: caps.max_srq_namespaces.max(1),
                nvme_log_page_sz: 0,
                ioccsz,
                icdoff: 0,
                max_io_sz: caps.max_io_sz,
                nvme_queue_depth: depth,
                staging_buf: MemRef::of(&staging, 0, staging_len),
            };
            let srq = provider
                .create_srq(pd, &attrs)
                .map_err(|x| e("NVMe-oF SRQ (staging_buf, queue_depth)", x.to_string()))?;
            let slot_len = (u64::from(ioccsz) * 16).max(64 + 1024);
            let recv_mr = ctx
                .reg_mr(pd, slot_len * u64::from(rq_depth), Access::LOCAL_WRITE)
                .map_err(|x| e("receive buffers", x.to_string()))?;
            for slot in 0..rq_depth {
                let wr = RecvWr {
                    wr_id: u64::from(slot),
                    sg_list: vec![recv_mr.sge(u64::from(slot) * slot_len, slot_len as u32)],
                };
                ctx.post_srq_recv(srq.srq, &wr)
                    .map_err(|x| e("receive buffers", x.to_string()))?;
            }
            subs.push(Subsystem {
                cfg: s.clone(),
                pd,
                srq,
                attrs,
                staging_mr: staging,
                recv_mr,
                slot_len,
                depth: depth.min(u32::from(u16::MAX)) as u16,
                data_len: (u64::from(caps.max_io_sz) * 2).max(64 * 1024),
            });
        }
        let mut listeners = BTreeMap::new();
        let mut ports = Vec::new();
        for p in &config.ports {
            let sub = subs
                .iter()
                .position(|s| s.cfg.nqn == p.subsystem)
                .ok_or_else(|| {
                    TargetError::new(format!("port {}", p.addr), "unknown subsystem".into())
                })?;
            let l = ctx.cm_listen(p.addr).map_err(|x| {
                TargetError::new(format!("port {} (port.addr)", p.addr), x.to_string())
            })?;
            listeners.insert(l, ports.len());
            ports.push(Port { addr: p.addr, sub });
        }
        let sh = Arc::new(Shared {
            engine,
            provider,
            ctx,
            bus,
            quirks,
            subs,
            ports,
            listeners,
            st: Mutex::new(State::default()),
            log: Mutex::new(Vec::new()),
            log_notify: Notify::new(),
            offload_events: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
        });
        for i in 0..sh.subs.len() {
            let slot = sh.build_backend(i, None, 0)?;
            sh.log(format!(
                "subsystem-ready nqn={} srq={} ctrl={} namespaces={}",
                sh.subs[i].cfg.nqn,
                sh.subs[i].srq.handle,
                slot.ctrl.map_or("-".to_string(), |c| c.to_string()),
                sh.subs[i].cfg.namespaces.len()
            ));
            sh.lock().backends.insert(i, slot);
        }
        sh.spawn(cm_loop(sh.clone()));
        sh.spawn(super::events::event_loop(sh.clone()));
        Ok(Target { sh })
    }

    /// The offload engine (the provider and its counters).
    ///
    /// # Panics
    /// When the target runs over a plugin's device ([`Target::start_on_device`]); use
    /// [`Target::offload_engine`] where that can be.
    pub fn engine(&self) -> &Arc<Engine> {
        self.offload_engine()
            .expect("the target runs over a plugin's device: no in-process engine")
    }

    /// The in-process offload engine, `None` over a plugin's device.
    pub fn offload_engine(&self) -> Option<&Arc<Engine>> {
        self.sh.engine.as_ref()
    }

    /// The device context the target uses (the engine's).
    pub fn context(&self) -> &Arc<dyn DeviceContext> {
        &self.sh.ctx
    }

    /// The target event log so far (one line per event, stable prefixes such as
    /// `offload-event NVME_PCI_ERR`, `ctrl-teardown`, `ctrl-recreated`).
    pub fn events(&self) -> Vec<String> {
        self.sh
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The offload events received from the engine so far.
    pub fn offload_events(&self) -> Vec<OffloadEvent> {
        self.sh
            .offload_events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (bounded) until a log line containing `needle` exists; returns it.
    pub async fn wait_event(&self, needle: &str, bound: Duration) -> Option<String> {
        let deadline = Instant::now() + bound;
        loop {
            let n = self.sh.log_notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if let Some(l) = self.events().into_iter().find(|l| l.contains(needle)) {
                return Some(l);
            }
            if tokio::time::timeout_at(deadline, n).await.is_err() {
                return None;
            }
        }
    }

    fn sub_index(&self, subnqn: &str) -> Option<usize> {
        self.sh.subs.iter().position(|s| s.cfg.nqn == subnqn)
    }

    /// The NVMe-oF SRQ of a subsystem.
    pub fn srq(&self, subnqn: &str) -> Option<NvmfSrq> {
        self.sub_index(subnqn).map(|i| self.sh.subs[i].srq)
    }

    /// The engine's handle of the backend controller serving `nsid` of `subnqn` (`None`
    /// when unknown or released after a PCI error).
    pub fn ctrl_of(&self, subnqn: &str, nsid: u32) -> Option<CtrlHandle> {
        let i = self.sub_index(subnqn)?;
        if !self.sh.subs[i]
            .cfg
            .namespaces
            .iter()
            .any(|n| n.nsid == nsid)
        {
            return None;
        }
        self.sh.lock().backends.get(&i).and_then(|b| b.ctrl)
    }

    /// The backend controller serving `nsid` of `subnqn`.
    pub fn backend_of(&self, subnqn: &str, nsid: u32) -> Option<Arc<BackendController>> {
        let i = self.sub_index(subnqn)?;
        if !self.sh.subs[i]
            .cfg
            .namespaces
            .iter()
            .any(|n| n.nsid == nsid)
        {
            return None;
        }
        self.sh.lock().backends.get(&i).map(|b| b.backend.clone())
    }

    /// How many times the backend controller of `subnqn` was re-created.
    pub fn backend_generation(&self, subnqn: &str) -> Option<u32> {
        let i = self.sub_index(subnqn)?;
        self.sh.lock().backends.get(&i).map(|b| b.generation)
    }

    /// Injects a backend fault into the controller serving `nsid` of `subnqn`.
    pub fn inject(&self, subnqn: &str, nsid: u32, fault: Fault) -> Result<(), TargetError> {
        let b = self.backend_of(subnqn, nsid).ok_or_else(|| {
            TargetError::new(
                format!("subsystem `{subnqn}` nsid {nsid}"),
                "unknown".into(),
            )
        })?;
        b.inject(fault).map_err(|e| {
            TargetError::new(format!("subsystem `{subnqn}` nsid {nsid}"), e.to_string())
        })
    }

    /// Controller IDs of the live NVMe-oF controllers of `subnqn`.
    pub fn controllers(&self, subnqn: &str) -> Vec<u16> {
        let Some(i) = self.sub_index(subnqn) else {
            return vec![];
        };
        self.sh
            .lock()
            .ctrls
            .keys()
            .filter(|(s, _)| *s == i)
            .map(|(_, c)| *c)
            .collect()
    }

    /// I/O commands of `subnqn` that software answered (any status).
    pub fn software_io_commands(&self, subnqn: &str) -> u64 {
        let Some(i) = self.sub_index(subnqn) else {
            return 0;
        };
        self.sh.lock().sw_io.get(&i).copied().unwrap_or(0)
    }

    /// Live connections (queues) over all subsystems.
    pub fn connections(&self) -> usize {
        self.sh.lock().conns.len()
    }

    /// Stops the target: closes listeners, disconnects every queue, stops every task.
    pub fn shutdown(self) {
        let conns: Vec<ConnId> = {
            let st = self.sh.lock();
            for e in st.conns.values() {
                let _ = e.cancel.send(true);
            }
            st.conns.keys().copied().collect()
        };
        for c in conns {
            let _ = self.sh.ctx.cm_disconnect(c);
        }
        self.sh.log("target-shutdown".into());
        self.abort_tasks();
    }

    fn abort_tasks(&self) {
        for t in self
            .sh
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

impl Drop for Target {
    /// Stops listening and stops every task (queues are not disconnected: use
    /// [`Target::shutdown`] for an orderly stop), then lets go of the backend controllers,
    /// so that nothing holds the device any more (a real device's ports and memory are
    /// freed once the caller drops it too).
    fn drop(&mut self) {
        for l in self.sh.listeners.keys() {
            let _ = self.sh.ctx.cm_close_listener(*l);
        }
        self.abort_tasks();
        // Commands the engine still has in flight finish first (a restarted target must
        // not race the old one's last backend writes), within a bound; without a runtime
        // nothing can be in flight.
        let sh = self.sh.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn(async move {
                if let Some(e) = &sh.engine {
                    let deadline = Instant::now() + RELEASE_BOUND;
                    while e.commands_in_flight() != 0 && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                release_backends(&sh);
            })),
            Err(_) => release_backends(&sh),
        }
    }
}

/// Longest a stopped target waits for its engine's commands in flight before it lets go
/// of the backend controllers.
pub const RELEASE_BOUND: Duration = Duration::from_secs(10);

/// Lets go of a stopped target's backend controllers, which reach host memory through the
/// engine's context (so engine and controllers hold each other until this runs).
fn release_backends(sh: &Shared) {
    if let Some(e) = &sh.engine {
        e.release_backends();
    }
    drop(sh.bus.detach_all());
    sh.lock().backends.clear();
}

/// The CM loop: connect requests (checked and accepted or rejected) and disconnects.
async fn cm_loop(sh: Arc<Shared>) {
    loop {
        let Ok(ev) = tokio::time::timeout(IDLE_TICK, sh.ctx.next_cm_event()).await else {
            continue;
        };
        match ev.kind {
            CmEventKind::ConnectRequest {
                listener, param, ..
            } => connect::on_connect_request(&sh, ev.conn, listener, &param),
            CmEventKind::Disconnected => {
                if let Some(e) = sh.lock().conns.get(&ev.conn) {
                    let _ = e.cancel.send(true);
                }
            }
            CmEventKind::Established { .. }
            | CmEventKind::Rejected { .. }
            | CmEventKind::Unreachable => {}
        }
    }
}
