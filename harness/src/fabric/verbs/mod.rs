//! The real-verbs fabric: [`Fabric`] and [`DeviceContext`] over libibverbs and librdmacm
//! (through `rdma-sys`), for hardware RNICs and soft-RoCE (`rdma_rxe`).
//!
//! Built with the harness's `verbs` cargo feature (it needs libibverbs-dev, librdmacm-dev
//! and libclang-dev to build; the default build needs none of them).
//!
//! | file | holds |
//! |---|---|
//! | `device.rs` | discovery (`ibv_get_device_list`), open, device and port attributes, the RoCEv2 GID |
//! | `memory.rs` | protection domains, memory regions over buffers the harness allocates |
//! | `cq.rs` | completion queues, each with its own completion channel driven by `AsyncFd` |
//! | `srq.rs` | shared receive queues, the limit watermark |
//! | `qp.rs` | RC queue pairs and their state machine |
//! | `post.rs` | posting work requests, polling and translating completions |
//! | `events.rs` | async events from the context's descriptor |
//! | `cm.rs` | the connection manager: listen, resolve, connect / accept / reject with private data |
//! | `raw/` | every `unsafe` call, as owning wrappers (`mod.rs` devices, `mem.rs`, `cq.rs`, `srq.rs`, `qp.rs`, `cm.rs`) |
//!
//! **No device.** [`VerbsFabric::open_default`] and [`Fabric::devices`] fail with
//! [`FabricError::NoDevice`] whose text starts with `no RDMA device:` and gives the reason
//! (no kernel support: `ibv_get_device_list` fails with ENOSYS; or an empty list). Callers
//! turn that into a skip ([`is_no_rdma_device`]).
//!
//! **Async.** Completion channels, the context's async event descriptor and the CM event
//! channel are non-blocking descriptors watched with tokio's `AsyncFd`: `wait_cq`,
//! `next_async_event` and `next_cm_event` await readiness, never spin; `poll_*` never
//! block. Opening a device needs a tokio runtime with I/O enabled (`enable_io`/`enable_all`):
//! each context spawns one task that drives its CM channel (address and route resolution,
//! the QP transitions the CM asks for), so connections progress while the caller waits on
//! something else.
//!
//! **Fault injection** is not possible on real devices: [`Fabric::inject`] is EOPNOTSUPP
//! for every [`Fault`], and contract cases that need one skip with that reason.
//!
//! **Adapting verbs to the trait** (where Linux verbs and the trait differ, this fabric
//! follows the trait): RESET → ERR, which `ib_modify_qp_is_ok` refuses on every device,
//! passes through INIT; a receive completion's `src_qp` on an RC QP, which devices only
//! fill for UD, is the QP's peer (`IBV_QP_DEST_QPN`); `query_srq().posted`, which verbs
//! cannot query, is counted here (up on `post_srq_recv`, down on each SRQ receive
//! completion polled); a peer's disconnect is answered (`rdma_disconnect` sends the DREP)
//! so both sides see `Disconnected` promptly.
//!
//! **Where rxe differs from `sim`** (measured on rxe0 with Linux 6.1 and 6.12,
//! rdma-core 44; the contract cases skip on rxe with the reason,
//! `contract::Need::NotSoftRoce`): a send with an unknown lkey completes with
//! LOC_QP_OP_ERR (6.1) or WR_FLUSH_ERR (6.12), not LOC_PROT_ERR, and one past its region's
//! end with WR_FLUSH_ERR on 6.12; a receive too small completes with LOC_QP_OP_ERR, not
//! LOC_LEN_ERR; no QP_ACCESS_ERR event at the responder of an access violation; no
//! QP_LAST_WQE_REACHED on 6.1; a receive posted in ERR is not flushed. SEND with
//! invalidate of a plain MR's rkey is skipped on every real device
//! (`contract::Need::InvalidatePlainMr`; rxe answers REM_INV_REQ_ERR): hardware only
//! invalidates memory windows and fast-registration MRs, which the trait does not model.

mod cm;
mod cq;
mod device;
mod events;
mod memory;
mod post;
mod qp;
mod raw;
mod srq;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use nix::errno::Errno;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use super::{
    AsyncEvent, CmEvent, ConnId, ConnParam, CqId, DeviceAttr, DeviceContext, Fabric, FabricError,
    Fault, ListenerId, MrId, MrInfo, PdId, PortAttr, QpAttr, QpId, QpInfo, QpInit, QpState, RecvWr,
    Result, SendWr, SrqAttr, SrqId, SrqInit, WorkCompletion,
};
use crate::fabric::Access;

pub use device::is_no_rdma_device;

/// The real-verbs fabric: the host's RDMA devices.
#[derive(Debug, Default)]
pub struct VerbsFabric {
    _private: (),
}

impl VerbsFabric {
    /// The fabric of this host's RDMA devices (nothing is opened yet).
    pub fn new() -> Arc<VerbsFabric> {
        Arc::new(VerbsFabric { _private: () })
    }

    /// The fabric, checked to have at least one device: `NoDevice("no RDMA device: …")`
    /// otherwise, which callers turn into a skip.
    pub fn open_default() -> Result<Arc<VerbsFabric>> {
        let f = VerbsFabric::new();
        f.devices()?;
        Ok(f)
    }
}

impl Fabric for VerbsFabric {
    fn kind(&self) -> &'static str {
        "verbs"
    }

    fn devices(&self) -> Result<Vec<String>> {
        device::list()
    }

    fn open(&self, device: &str) -> Result<Arc<dyn DeviceContext>> {
        let ctx: Arc<dyn DeviceContext> = VerbsContext::open(device)?;
        Ok(ctx)
    }

    fn inject(&self, fault: Fault) -> Result<()> {
        let _ = fault;
        Err(FabricError::NotSupported(
            "fault injection: real verbs devices cannot fake link, QP, delay or drop faults",
        ))
    }
}

/// A FabricError for a failed library call.
pub(crate) fn os(call: &'static str, errno: Errno) -> FabricError {
    FabricError::Os { call, errno }
}

/// The objects of one context, by handle. Dropped in reverse creation order
/// (connections, listeners, QPs, SRQs, CQs, MRs, PDs) by [`VerbsContext`]'s `Drop`.
#[derive(Default)]
struct State {
    next_id: u32,
    pds: BTreeMap<PdId, memory::PdObj>,
    mrs: BTreeMap<MrId, memory::MrObj>,
    cqs: BTreeMap<CqId, cq::CqObj>,
    srqs: BTreeMap<SrqId, srq::SrqObj>,
    qps: BTreeMap<QpId, qp::QpObj>,
    listeners: BTreeMap<ListenerId, cm::ListenerObj>,
    conns: BTreeMap<ConnId, cm::ConnObj>,
}

impl State {
    fn alloc_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn clear(&mut self) {
        // Connections before the QPs they moved, QPs before their CQs / SRQ / PD, MRs
        // before their PD.
        self.conns.clear();
        self.listeners.clear();
        self.qps.clear();
        self.srqs.clear();
        self.cqs.clear();
        self.mrs.clear();
        self.pds.clear();
    }
}

/// One opened device: an `ibv_context` and an `rdma_event_channel`.
pub struct VerbsContext {
    name: String,
    attr: DeviceAttr,
    port: device::PortInfo,
    state: Mutex<State>,
    async_fd: AsyncFd<OwnedFd>,
    cm_events: Mutex<VecDeque<CmEvent>>,
    cm_notify: Notify,
    cm_task: Mutex<Option<tokio::task::AbortHandle>>,
    // Dropped last, in this order: the channel after every identifier, the device after
    // every object.
    channel: raw::EventChannel,
    ctx: raw::Context,
}

impl VerbsContext {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for VerbsContext {
    fn drop(&mut self) {
        if let Some(t) = self
            .cm_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            t.abort();
        }
        self.lock().clear();
    }
}

#[async_trait]
impl DeviceContext for VerbsContext {
    fn device_attr(&self) -> DeviceAttr {
        self.attr.clone()
    }

    fn port_attr(&self, port: u8) -> Result<PortAttr> {
        self.port_attr_impl(port)
    }

    fn alloc_pd(&self) -> Result<PdId> {
        self.alloc_pd_impl()
    }

    fn dealloc_pd(&self, pd: PdId) -> Result<()> {
        self.dealloc_pd_impl(pd)
    }

    fn reg_mr(&self, pd: PdId, len: u64, access: Access) -> Result<MrInfo> {
        self.reg_mr_impl(pd, len, access)
    }

    fn dereg_mr(&self, mr: MrId) -> Result<()> {
        self.dereg_mr_impl(mr)
    }

    fn mr_write(&self, mr: MrId, offset: u64, data: &[u8]) -> Result<()> {
        self.mr_write_impl(mr, offset, data)
    }

    fn mr_read(&self, mr: MrId, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.mr_read_impl(mr, offset, buf)
    }

    fn create_cq(&self, cqe: u32) -> Result<CqId> {
        self.create_cq_impl(cqe)
    }

    fn destroy_cq(&self, cq: CqId) -> Result<()> {
        self.destroy_cq_impl(cq)
    }

    fn poll_cq(&self, cq: CqId, max: usize) -> Result<Vec<WorkCompletion>> {
        self.poll_cq_impl(cq, max)
    }

    async fn wait_cq(&self, cq: CqId) -> Result<()> {
        self.wait_cq_impl(cq).await
    }

    fn create_srq(&self, pd: PdId, init: SrqInit) -> Result<SrqId> {
        self.create_srq_impl(pd, init)
    }

    fn arm_srq(&self, srq: SrqId, limit: u32) -> Result<()> {
        self.arm_srq_impl(srq, limit)
    }

    fn query_srq(&self, srq: SrqId) -> Result<SrqAttr> {
        self.query_srq_impl(srq)
    }

    fn destroy_srq(&self, srq: SrqId) -> Result<()> {
        self.destroy_srq_impl(srq)
    }

    fn post_srq_recv(&self, srq: SrqId, wr: &RecvWr) -> Result<()> {
        self.post_srq_recv_impl(srq, wr)
    }

    fn create_qp(&self, pd: PdId, init: QpInit) -> Result<QpInfo> {
        self.create_qp_impl(pd, init)
    }

    fn modify_qp(&self, qp: QpId, attr: &QpAttr) -> Result<()> {
        self.modify_qp_impl(qp, attr)
    }

    fn query_qp(&self, qp: QpId) -> Result<QpState> {
        self.query_qp_impl(qp)
    }

    fn destroy_qp(&self, qp: QpId) -> Result<()> {
        self.destroy_qp_impl(qp)
    }

    fn post_send(&self, qp: QpId, wr: &SendWr) -> Result<()> {
        self.post_send_impl(qp, wr)
    }

    fn post_recv(&self, qp: QpId, wr: &RecvWr) -> Result<()> {
        self.post_recv_impl(qp, wr)
    }

    fn poll_async_event(&self) -> Option<AsyncEvent> {
        self.poll_async_event_impl()
    }

    async fn next_async_event(&self) -> AsyncEvent {
        self.next_async_event_impl().await
    }

    fn cm_listen(&self, addr: SocketAddr) -> Result<ListenerId> {
        self.cm_listen_impl(addr)
    }

    fn cm_close_listener(&self, listener: ListenerId) -> Result<()> {
        self.cm_close_listener_impl(listener)
    }

    fn cm_connect(&self, addr: SocketAddr, qp: QpId, param: &ConnParam) -> Result<ConnId> {
        self.cm_connect_impl(addr, qp, param)
    }

    fn cm_accept(&self, conn: ConnId, qp: QpId, param: &ConnParam) -> Result<()> {
        self.cm_accept_impl(conn, qp, param)
    }

    fn cm_reject(&self, conn: ConnId, private_data: &[u8]) -> Result<()> {
        self.cm_reject_impl(conn, private_data)
    }

    fn cm_disconnect(&self, conn: ConnId) -> Result<()> {
        self.cm_disconnect_impl(conn)
    }

    fn cm_destroy(&self, conn: ConnId) -> Result<()> {
        self.cm_destroy_impl(conn)
    }

    fn poll_cm_event(&self) -> Option<CmEvent> {
        self.poll_cm_event_impl()
    }

    async fn next_cm_event(&self) -> CmEvent {
        self.next_cm_event_impl().await
    }
}
