//! The software offload engine: the reference implementation of the NVMe-oF target offload
//! API ([`OffloadProvider`]), standing where an offloading NIC stands.
//!
//! An [`Engine`] wraps one real device context (sim or verbs) and presents two faces:
//!
//! - [`OffloadProvider`]: caps, NVMe-oF SRQs with a staging buffer, backend controllers,
//!   namespace mappings, `qp_set_nvmf`, counters and offload events. Every argument goes
//!   through `harness::api::check`, the rule book, so the errno returned is the one the
//!   requirement table states.
//! - [`Engine::context`]: the **device context software uses**, as on a real offloading
//!   NIC where QPs, CQs and receives live on the same device. QPs attached to an NVMe-oF
//!   SRQ are the engine's to inspect: every command capsule arrives at the engine first;
//!   it serves offloaded commands itself (RDMA READ/WRITE to host memory, staging buffer,
//!   backend controller doorbells, response SEND) and delivers everything else to
//!   software as ordinary SRQ receives.
//!
//! Two parts, each owning its state behind its own lock:
//!
//! - the **virtual NIC** (`Nic`): the engine context's CQs, QPs and SRQs as software
//!   sees them, memory regions, and the routing of every work request posted on a real QP
//!   to its owner (`context.rs`, the device context);
//! - the **offload data path** (`Path`): NVMe-oF SRQs (staging, mappings, counters,
//!   software's receives), backend controllers and the commands in flight
//!   (`datapath.rs`: capsule → offload decision → data movement → response;
//!   `backend_link.rs`: backend SQ submission, CQ reaping, timeouts, PCI errors;
//!   `command.rs`: a command's life; `staging.rs`: the staging allocator).
//!
//! `provider.rs` holds the provider calls. A step that touches both parts (a capsule
//! arrives on a QP, a command posts a work request) takes both locks, `nic` first; the
//! backend side (submission, reaping, timeouts, PCI errors) takes only the data path's,
//! and software's verbs (polling and waiting on CQs, posting) only the NIC's.

mod backend_link;
mod command;
mod context;
mod datapath;
mod provider;
pub mod staging;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use harness::api::profile::DeviceLimits;
use harness::api::{
    CtrlHandle, NsCounters, NvmfCaps, NvmfSrqAttrs, OffloadEvent, OffloadProvider, SrqCounters,
    SrqHandle,
};
use harness::fabric::{
    AsyncEvent, CqId, DeviceContext, FabricError, MrInfo, PdId, QpId, RecvWr, SrqId, WorkCompletion,
};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::quirks::Quirks;
use harness::backend::emulated::BackendController;
use harness::backend::{BackendBus, BackendPort};
use harness::backend::{CqReader, SqWriter};
use staging::Staging;

pub(crate) use command::{BackendSide, Cmd, DataSrc, HostSide};

pub use context::EngineContext;

/// Command timeout of a backend controller created with `cmd_timeout_us` 0.
pub const DEFAULT_CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// The reference offload engine; see the module docs.
pub struct Engine {
    core: Arc<Core>,
}

impl Engine {
    /// An engine over `real` with these capabilities. `bus` is where software attaches the
    /// backend controllers it creates (a [`harness::backend::emulated::PciBus`] in-process, a
    /// [`harness::backend::host::HostBus`] in a plugin). Must be called inside a tokio runtime.
    pub fn new(
        real: Arc<dyn DeviceContext>,
        caps: NvmfCaps,
        quirks: Quirks,
        bus: Arc<dyn BackendBus>,
    ) -> Arc<Engine> {
        Engine::with_limits(real, caps, DeviceLimits::default(), quirks, bus)
    }

    /// [`Engine::new`] reporting and enforcing `limits` below those of `real` (a profile's
    /// `[device]` section).
    pub fn with_limits(
        real: Arc<dyn DeviceContext>,
        caps: NvmfCaps,
        limits: DeviceLimits,
        quirks: Quirks,
        bus: Arc<dyn BackendBus>,
    ) -> Arc<Engine> {
        let core = Arc::new(Core {
            real: real.clone(),
            caps,
            limits,
            quirks,
            bus,
            access: Mutex::new(Default::default()),
            nic: Mutex::new(Nic::default()),
            path: Mutex::new(Path::default()),
            events: EventQueue::default(),
            ctx_events: EventQueue::default(),
            tasks: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&core);
        let task = tokio::spawn(async move {
            loop {
                let ev = real.next_async_event().await;
                let Some(core) = weak.upgrade() else { return };
                core.forward_async_event(ev);
            }
        });
        core.tasks_lock().push(task.abort_handle());
        Arc::new(Engine { core })
    }

    /// Makes the device report `access` as how it reaches backends
    /// ([`OffloadProvider::backend_access`]); its bus must reach them that way (a plugin's
    /// [`harness::backend::host::HostBus::with_access`]).
    pub fn set_backend_access(&self, access: harness::backend::BackendAccess) {
        *relock(&self.core.access) = access;
    }

    /// The device context software must use for everything that touches offload: QPs on an
    /// NVMe-oF SRQ, their CQs, receives and sends, MRs used with them.
    pub fn context(&self) -> Arc<dyn DeviceContext> {
        Arc::new(EngineContext {
            core: self.core.clone(),
        })
    }

    /// The engine as a provider trait object.
    pub fn provider(self: &Arc<Self>) -> Arc<dyn OffloadProvider> {
        self.clone()
    }

    /// The quirks it runs with.
    pub fn quirks(&self) -> &Quirks {
        &self.core.quirks
    }

    /// The backend controller behind a controller handle (for fault injection in tests);
    /// `None` when it is not in this process (a plugin's engine).
    pub fn backend_of(&self, ctrl: CtrlHandle) -> Option<Arc<BackendController>> {
        let port = self
            .core
            .path()
            .ctrls
            .get(&ctrl)
            .map(|c| c.backend.clone())?;
        port.controller()
    }

    /// Forgets every backend controller and stops its reaper: the controllers reach host
    /// memory through the engine's context, so engine and controllers hold each other
    /// until this breaks the loop. For a target that stops; the device is unusable after.
    pub fn release_backends(&self) {
        let ctrls = std::mem::take(&mut self.core.path().ctrls);
        for c in ctrls.values() {
            c.task.abort();
        }
    }

    /// Offloaded commands accepted but not yet retired (staging waits included).
    pub fn commands_in_flight(&self) -> usize {
        self.core.path().cmds.len()
    }

    /// One line per offloaded command not yet retired, for failure messages.
    pub fn describe_in_flight(&self) -> Vec<String> {
        self.core
            .path()
            .cmds
            .iter()
            .map(|(id, c)| {
                format!(
                    "cmd{id} qp={} cid={} op={:#04x} nsid={} len={} staging={:?} host={:?} \
                     backend={:?} backend_failed={}",
                    c.vqp,
                    c.sqe.cid,
                    c.sqe.opcode(),
                    c.fe_nsid,
                    c.len,
                    c.staging,
                    c.host,
                    c.backend,
                    c.backend_failed
                )
            })
            .collect()
    }
}

/// What the engine's tasks and faces share.
pub(crate) struct Core {
    pub(crate) real: Arc<dyn DeviceContext>,
    pub(crate) caps: NvmfCaps,
    pub(crate) limits: DeviceLimits,
    pub(crate) quirks: Quirks,
    pub(crate) bus: Arc<dyn BackendBus>,
    /// How the device reaches backends, as it reports it ([`Engine::set_backend_access`]).
    pub(crate) access: Mutex<harness::backend::BackendAccess>,
    /// The virtual NIC part. Lock order: `nic` before `path`, never the other way round.
    pub(crate) nic: Mutex<Nic>,
    /// The offload data path part.
    pub(crate) path: Mutex<Path>,
    /// Offload events for [`OffloadProvider::next_event`].
    pub(crate) events: EventQueue<OffloadEvent>,
    /// Async events for the engine context's `next_async_event`.
    pub(crate) ctx_events: EventQueue<AsyncEvent>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Drop for Core {
    fn drop(&mut self) {
        for t in self.tasks_lock().iter() {
            t.abort();
        }
        // each QP's drain task holds the real device until it is stopped
        for q in relock(&self.nic).qps.values() {
            q.task.abort();
        }
    }
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Events queued for a consumer that polls them or waits for the next.
pub(crate) struct EventQueue<E> {
    queue: Mutex<VecDeque<E>>,
    notify: Notify,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
        }
    }
}

impl<E> EventQueue<E> {
    /// Queues `ev` and wakes the waiters.
    pub(crate) fn push(&self, ev: E) {
        relock(&self.queue).push_back(ev);
        self.notify.notify_waiters();
    }

    /// The oldest queued event, if any.
    pub(crate) fn pop(&self) -> Option<E> {
        relock(&self.queue).pop_front()
    }

    /// The oldest queued event, waiting for one when none is queued.
    pub(crate) async fn next(&self) -> E {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = self.pop() {
                return e;
            }
            notified.await;
        }
    }
}

impl Core {
    /// The virtual NIC's state.
    pub(crate) fn nic(&self) -> MutexGuard<'_, Nic> {
        relock(&self.nic)
    }

    /// The data path's state.
    pub(crate) fn path(&self) -> MutexGuard<'_, Path> {
        relock(&self.path)
    }

    /// Both, in the lock order.
    pub(crate) fn both(&self) -> (MutexGuard<'_, Nic>, MutexGuard<'_, Path>) {
        let nic = self.nic();
        (nic, self.path())
    }

    /// The device's SRQ limit: the real device's, or the profile's when lower.
    pub(crate) fn max_srq(&self) -> u32 {
        let real = self.real.device_attr().max_srq;
        self.limits.max_srq.map_or(real, |m| m.min(real))
    }

    /// ENOMEM (as a verbs device answers) when `st` already holds [`Core::max_srq`] SRQs.
    pub(crate) fn check_srq_room(&self, nic: &Nic) -> std::result::Result<(), FabricError> {
        if nic.srqs.len() as u64 >= u64::from(self.max_srq()) {
            return Err(FabricError::NoMemory(
                "create_srq: the device's max_srq reached",
            ));
        }
        Ok(())
    }

    fn tasks_lock(&self) -> MutexGuard<'_, Vec<AbortHandle>> {
        relock(&self.tasks)
    }

    /// Translates a real async event to the engine context's handles and queues it.
    fn forward_async_event(&self, ev: AsyncEvent) {
        let (nic, path) = self.both();
        let vqp = |q: QpId| nic.real_qp.get(&q).copied();
        let vsrq = |s: SrqId| {
            nic.srqs.iter().find_map(|(v, x)| match x {
                CtxSrq::Plain { real } if *real == s => Some(*v),
                CtxSrq::Nvmf { handle } if path.nvmf.get(handle).map(|n| n.real) == Some(s) => {
                    Some(*v)
                }
                _ => None,
            })
        };
        let out = match ev {
            AsyncEvent::QpFatal(q) => vqp(q).map(AsyncEvent::QpFatal),
            AsyncEvent::QpReqErr(q) => vqp(q).map(AsyncEvent::QpReqErr),
            AsyncEvent::QpAccessErr(q) => vqp(q).map(AsyncEvent::QpAccessErr),
            AsyncEvent::CommEst(q) => vqp(q).map(AsyncEvent::CommEst),
            AsyncEvent::SqDrained(q) => vqp(q).map(AsyncEvent::SqDrained),
            AsyncEvent::QpLastWqeReached(q) => vqp(q).map(AsyncEvent::QpLastWqeReached),
            // The engine posts the receives of NVMe-oF SRQs: their watermark is its own.
            AsyncEvent::SrqLimitReached(s) => vsrq(s).and_then(|v| match nic.srqs.get(&v) {
                Some(CtxSrq::Plain { .. }) => Some(AsyncEvent::SrqLimitReached(v)),
                _ => None,
            }),
            AsyncEvent::SrqErr(s) => vsrq(s).map(AsyncEvent::SrqErr),
            // The engine's own CQs are sized never to overflow; a real overflow is fatal.
            AsyncEvent::CqErr(_) => Some(AsyncEvent::DeviceFatal),
            e @ (AsyncEvent::PortActive(_) | AsyncEvent::PortErr(_) | AsyncEvent::DeviceFatal) => {
                Some(e)
            }
        };
        drop(path);
        drop(nic);
        if let Some(e) = out {
            self.ctx_events.push(e);
        }
    }
}

/// A completion queue of the engine context (completions are routed into it).
pub(crate) struct CtxCq {
    pub cqe: u32,
    pub entries: VecDeque<WorkCompletion>,
    pub overrun: bool,
    pub notify: Arc<Notify>,
}

/// A QP of the engine context: a real QP with a private real CQ.
pub(crate) struct CtxQp {
    pub real: QpId,
    pub qpn: u32,
    pub real_cq: CqId,
    pub send_cq: CqId,
    pub recv_cq: CqId,
    pub srq: Option<SrqId>,
    /// The NVMe-oF SRQ it is attached to.
    pub nvmf: Option<SrqHandle>,
    /// Whether `qp_set_nvmf(ENABLE)` was called (or the quirk enables it at creation).
    pub offload: bool,
    /// Capsules received (reported as SQHD in offloaded responses, modulo the queue's
    /// size once known, else 2^16).
    pub received: u64,
    /// The NVMe-oF queue this QP carries, learned from the Fabrics Connect capsule that
    /// passed through the engine to software (the RFC enables offload once the CONNECT was
    /// received): its QID (the SQID of offloaded responses) and its number of entries
    /// (SQSIZE + 1, the modulus of SQHD). `None` until a Connect passed.
    pub queue: Option<QueueOfQp>,
    pub task: AbortHandle,
}

/// An SRQ of the engine context.
#[derive(Clone, Copy)]
pub(crate) enum CtxSrq {
    /// An ordinary SRQ: receives go straight to the real one.
    Plain { real: SrqId },
    /// The receive side of an NVMe-oF SRQ: software's receives wait in the engine.
    Nvmf { handle: SrqHandle },
}

/// Who owns a work request posted on a real QP, by internal `wr_id`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wr {
    /// Software's send or receive on a QP (its own `wr_id`; unsignaled sends are posted
    /// signaled and their success completion is swallowed).
    Software {
        vqp: QpId,
        user: u64,
        signaled: bool,
        recv: bool,
    },
    /// Software's receive on a plain SRQ.
    SoftwareSrq { user: u64 },
    /// The engine's capsule receive buffer `slot` of an NVMe-oF SRQ.
    Capsule { srq: SrqHandle, slot: u32 },
    /// A step of an offloaded command.
    Cmd { cmd: u64, step: Step },
}

/// The engine's work requests for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// RDMA READ of write data (or DSM ranges) from the host into staging.
    Fetch,
    /// RDMA WRITE of read data from staging to the host.
    Deliver,
    /// SEND of the response capsule.
    Respond,
}

/// A namespace mapping and its counters.
pub(crate) struct NsMap {
    pub ctrl: CtrlHandle,
    pub nvme_nsid: u32,
    pub lba_data_size: u32,
    pub counters: NsCounters,
}

/// A capsule for software that arrived before software posted a receive.
pub(crate) struct Backlog {
    pub vqp: QpId,
    pub bytes: Vec<u8>,
    pub src_qp: u32,
}

/// One NVMe-oF SRQ.
pub(crate) struct OffloadSrq {
    pub vsrq: SrqId,
    pub real: SrqId,
    pub pd: PdId,
    pub attrs: NvmfSrqAttrs,
    pub staging_mr: MrInfo,
    /// Offset of the staging buffer inside `staging_mr`.
    pub staging_base: u64,
    pub staging: Staging,
    /// The engine's capsule receive buffers.
    pub recv_mr: MrInfo,
    pub slot_len: u64,
    /// The engine's response capsule buffers and which are free.
    pub resp_mr: MrInfo,
    pub resp_free: Vec<u32>,
    pub sw_recvs: VecDeque<RecvWr>,
    pub sw_limit: u32,
    pub backlog: VecDeque<Backlog>,
    /// Commands waiting for staging space or a response buffer, in arrival order.
    pub waiting: VecDeque<u64>,
    pub ctrls: BTreeSet<CtrlHandle>,
    pub ns: BTreeMap<u32, NsMap>,
    pub counters: SrqCounters,
}

/// One backend controller as the engine drives it.
pub(crate) struct Ctrl {
    pub srq: SrqHandle,
    pub backend: Arc<dyn BackendPort>,
    pub writers: Vec<SqWriter>,
    pub outstanding_per_sq: Vec<u16>,
    pub rr: usize,
    pub reader: CqReader,
    pub reaped: u64,
    pub depth: u16,
    pub free_cids: Vec<u16>,
    /// Backend CID → (command, SQ index).
    pub inflight: BTreeMap<u16, (u64, usize)>,
    /// Commands waiting for a free CID or SQ slot.
    pub queued: VecDeque<u64>,
    pub timeout: Duration,
    /// Backend CIDs whose command timed out: their late completion only frees the CID.
    pub abandoned: BTreeSet<u16>,
    pub dead: bool,
    /// Wakes the reaper to recompute its earliest deadline after a submission.
    pub kick: Arc<Notify>,
    pub task: AbortHandle,
}

/// What the engine learned of a QP's NVMe-oF queue from its Connect capsule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueOfQp {
    /// Queue ID.
    pub qid: u16,
    /// Entries of the submission queue (SQSIZE + 1).
    pub entries: u32,
}

impl QueueOfQp {
    /// The queue a capsule's Connect command describes, if the capsule holds one.
    pub fn from_connect(capsule: &[u8]) -> Option<QueueOfQp> {
        let sqe = capsule.get(..harness::wire::SQE_LEN)?;
        match harness::wire::FabricsRepr::parse_bytes(sqe).ok()? {
            harness::wire::FabricsRepr::Connect(c) => Some(QueueOfQp {
                qid: c.qid,
                entries: u32::from(c.sqsize) + 1,
            }),
            _ => None,
        }
    }

    /// SQHD after `received` capsules: the head pointer of a queue of this size.
    pub fn sq_head(queue: Option<QueueOfQp>, received: u64) -> u16 {
        match queue {
            Some(q) => (received % u64::from(q.entries)) as u16,
            None => received as u16,
        }
    }
}

/// The virtual NIC's state: the engine context's CQs, QPs and SRQs as software sees them,
/// its memory regions, and who owns each work request posted on a real QP.
#[derive(Default)]
pub(crate) struct Nic {
    pub next_id: u32,
    pub cqs: BTreeMap<CqId, CtxCq>,
    pub qps: BTreeMap<QpId, CtxQp>,
    pub real_qp: BTreeMap<QpId, QpId>,
    pub srqs: BTreeMap<SrqId, CtxSrq>,
    pub mrs: BTreeMap<harness::fabric::MrId, MrInfo>,
    pub wrs: BTreeMap<u64, Wr>,
    pub next_wr: u64,
}

/// The offload data path's state: NVMe-oF SRQs (staging, mappings, counters, software's
/// receives), backend controllers and the commands in flight.
#[derive(Default)]
pub(crate) struct Path {
    pub nvmf: BTreeMap<SrqHandle, OffloadSrq>,
    pub ctrls: BTreeMap<CtrlHandle, Ctrl>,
    pub cmds: BTreeMap<u64, Cmd>,
    pub next_cmd: u64,
    pub next_srq_handle: u32,
    pub next_ctrl_handle: u32,
    pub hung_once: bool,
}

impl Nic {
    pub(crate) fn alloc_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn wr(&mut self, owner: Wr) -> u64 {
        self.next_wr += 1;
        self.wrs.insert(self.next_wr, owner);
        self.next_wr
    }

    /// Tags a work request for `owner` and posts it through `post`, which gets the tag as
    /// its wr_id; a refused post forgets the tag.
    pub(crate) fn post_tagged<E>(
        &mut self,
        owner: Wr,
        post: impl FnOnce(u64) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let id = self.wr(owner);
        let result = post(id);
        if result.is_err() {
            self.wrs.remove(&id);
        }
        result
    }

    /// Queues a completion on an engine-context CQ (overflow: CQ error event, lost).
    pub(crate) fn push_wc(&mut self, cq: CqId, wc: WorkCompletion) -> Option<AsyncEvent> {
        let ctx_cq = self.cqs.get_mut(&cq)?;
        if ctx_cq.overrun {
            return None;
        }
        if ctx_cq.entries.len() >= ctx_cq.cqe as usize {
            ctx_cq.overrun = true;
            return Some(AsyncEvent::CqErr(cq));
        }
        ctx_cq.entries.push_back(wc);
        ctx_cq.notify.notify_waiters();
        None
    }

    /// The region of this context that holds `[addr, addr + len)` under `lkey`.
    pub(crate) fn region(&self, lkey: u32, addr: u64, len: u64) -> Option<(MrInfo, u64)> {
        self.mrs.values().find_map(|m| {
            let off = addr.checked_sub(m.addr)?;
            (m.lkey == lkey && off.checked_add(len)? <= m.len).then_some((*m, off))
        })
    }
}
