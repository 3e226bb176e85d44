//! [`Target`]: the target's software side, started from a [`Config`].
//!
//! [`Target::start`] builds, inside a tokio runtime: the offload [`Engine`] over the real
//! device context (profile caps, quirks, a [`PciBus`]); per subsystem a PD, the staging
//! buffer, the NVMe-oF SRQ, the receive buffers software posts on it, one backend NVMe
//! controller holding every namespace of the subsystem (attached to the bus, created with
//! `create_nvme_ctrl`, each namespace mapped fe_nsid → the same backend nsid); a CM
//! listener per port; then three kinds of tasks: the CM loop (connect requests,
//! disconnects), one task per connection (its capsules, see `control/serve.rs`), and the
//! offload-event task ([`super::events`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::api::{CtrlHandle, MemRef, NvmfSrq, NvmfSrqAttrs, OffloadEvent, OffloadProvider};
use harness::fabric::{Access, CmEventKind, ConnId, DeviceContext, RecvWr, SrqInit};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::accept;
use super::backend::RealController;
use super::config::{BackendConfig, Config};
use super::state::{Port, Shared, State, Subsystem, IDLE_TICK};
pub use super::state::{IN_CAPSULE_DATA, OP_BOUND, SW_RECEIVES};
use super::TargetError;
use crate::engine::Engine;
use harness::backend::emulated::PciBus;
use harness::backend::emulated::{BackendController, Fault};

/// A running target; see the module docs.
pub struct Target {
    sh: Arc<Shared>,
    /// [`Target::stop`] gave everything back: dropping it has nothing left to release.
    pub(super) released: bool,
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
            let mut cfg = s.clone();
            let real = match s.backend {
                BackendConfig::Emulated => None,
                BackendConfig::Vfio { pci } => {
                    let what = format!("backend (vfio {pci}, subsystem.backend.pci)");
                    let real = RealController::open(pci).map_err(|x| e(&what, x.to_string()))?;
                    cfg.namespaces = real.namespace_configs().map_err(|m| e(&what, m))?;
                    Some(Arc::new(real))
                }
            };
            let pd = ctx.alloc_pd().map_err(|x| e("pd", x.to_string()))?;
            let mut staging_len = s
                .staging_buf
                .unwrap_or_else(|| caps.min_staging_buf_size.max(1 << 20));
            if real.is_some() {
                // Mapped for the controller's DMA as it is: whole pages.
                staging_len = staging_len.div_ceil(4096) * 4096;
            }
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
            let mdts = super::identity::mdts_bytes(s, &caps);
            // The device offloads no transfer above what the target advertises, nor above
            // what a real controller takes in one command.
            let max_io_sz = [Some(mdts), real.as_ref().and_then(|r| r.max_transfer())]
                .into_iter()
                .flatten()
                .fold(caps.max_io_sz, |m, l| {
                    m.min(l.min(u64::from(u32::MAX)) as u32)
                });
            let attrs = NvmfSrqAttrs {
                rq: SrqInit::new(rq_depth),
                offload_ops: caps.allowed_offload_ops(),
                max_namespaces: caps.max_srq_namespaces.max(1),
                nvme_log_page_sz: 0,
                ioccsz,
                icdoff: 0,
                max_io_sz,
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
            if let Some(r) = &real {
                tracing::info!(
                    target: "nvmf_target",
                    "subsystem {} backend: {} at {} with {} namespace(s)",
                    s.nqn,
                    r.model(),
                    r.address(),
                    cfg.namespaces.len()
                );
            }
            subs.push(Subsystem {
                cfg,
                real,
                pd,
                srq,
                attrs,
                staging_mr: staging,
                recv_mr,
                slot_len,
                depth: depth.min(u32::from(u16::MAX)) as u16,
                mdts,
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
        Ok(Target {
            sh,
            released: false,
        })
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

    /// The index of subsystem `subnqn` when it has namespace `nsid`.
    fn sub_serving(&self, subnqn: &str, nsid: u32) -> Option<usize> {
        let i = self.sub_index(subnqn)?;
        let sub = &self.sh.subs[i].cfg;
        sub.namespaces.iter().any(|n| n.nsid == nsid).then_some(i)
    }

    /// The NVMe-oF SRQ of a subsystem.
    pub fn srq(&self, subnqn: &str) -> Option<NvmfSrq> {
        self.sub_index(subnqn).map(|i| self.sh.subs[i].srq)
    }

    /// The engine's handle of the backend controller serving `nsid` of `subnqn` (`None`
    /// when unknown or released after a PCI error).
    pub fn ctrl_of(&self, subnqn: &str, nsid: u32) -> Option<CtrlHandle> {
        let i = self.sub_serving(subnqn, nsid)?;
        self.sh.lock().backends.get(&i).and_then(|b| b.ctrl)
    }

    /// The emulated backend controller serving `nsid` of `subnqn` (`None` for a real
    /// controller).
    pub fn backend_of(&self, subnqn: &str, nsid: u32) -> Option<Arc<BackendController>> {
        let i = self.sub_serving(subnqn, nsid)?;
        self.sh
            .lock()
            .backends
            .get(&i)
            .and_then(|b| b.backend.emulated().cloned())
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

    /// The nsids `subnqn` serves (for a real controller, the ones its Identify listed).
    pub fn namespace_ids(&self, subnqn: &str) -> Vec<u32> {
        self.sub_index(subnqn).map_or_else(Vec::new, |i| {
            self.sh.subs[i]
                .cfg
                .namespaces
                .iter()
                .map(|n| n.nsid)
                .collect()
        })
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
        self.disconnect_all();
        self.sh.log("target-shutdown".into());
        self.abort_tasks();
    }

    /// Tells every connection's task to stop and disconnects it.
    pub(super) fn disconnect_all(&self) {
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
    }

    /// What the target's tasks share.
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.sh
    }

    pub(super) fn abort_tasks(&self) {
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
        if self.released {
            return;
        }
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
pub(super) fn release_backends(sh: &Shared) {
    if let Some(e) = &sh.engine {
        e.release_backends();
    }
    drop(sh.bus.detach_all());
    sh.lock().backends.clear();
    for s in &sh.subs {
        if let Some(real) = &s.real {
            real.detach_engine();
        }
    }
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
            } => accept::on_connect_request(&sh, ev.conn, listener, &param),
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
