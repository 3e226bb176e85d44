//! The RDMA fabric seam: what a verbs user sees, as two traits.
//!
//! [`Fabric`] is the transport as a whole (its devices, opening one, injecting faults);
//! [`DeviceContext`] is one opened device with its connection-manager channel, the
//! equivalent of an `ibv_context` plus an `rdma_event_channel`. Both are implemented by
//! [`sim`] (in-process, deterministic, the default) and, with the `verbs` cargo feature, by
//! `verbs` (libibverbs and librdmacm through `rdma-sys`: hardware or soft-RoCE). The
//! contract tests in `harness/tests/fabric_contract.rs` are written against these traits
//! only, so they run unchanged on both.
//!
//! Every call returns a [`FabricError`] whose [`FabricError::errno`] is what libibverbs or
//! librdmacm would return. Waits (`wait_cq`, `next_async_event`, `next_cm_event`) are
//! unbounded here: callers bound them, e.g. with [`wait::completion`].

pub mod contract;
mod error;
pub mod sim;
mod types;
#[cfg(feature = "verbs")]
pub mod verbs;
pub mod wait;

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

pub use error::{FabricError, Result};
pub use types::*;

/// An RDMA transport: a set of devices that can be opened, and faults that can be injected.
pub trait Fabric: Send + Sync {
    /// Which implementation this is: `"sim"` or `"verbs"`.
    fn kind(&self) -> &'static str;

    /// Names of the devices present. An empty list means no RDMA device (skip, don't fail).
    fn devices(&self) -> Result<Vec<String>>;

    /// Opens a device: ENODEV when no device has that name.
    fn open(&self, device: &str) -> Result<Arc<dyn DeviceContext>>;

    /// Injects a fault. EOPNOTSUPP where the fabric cannot (real verbs cannot most of them).
    fn inject(&self, fault: Fault) -> Result<()>;
}

/// One opened RDMA device: verbs objects, data path, async events and connection manager.
///
/// Handles are only valid on the context that created them (ENOENT elsewhere).
#[async_trait]
pub trait DeviceContext: Send + Sync {
    /// Device attributes and limits (`ibv_query_device`).
    fn device_attr(&self) -> DeviceAttr;

    /// Port attributes (`ibv_query_port`); EINVAL for a port number out of range.
    fn port_attr(&self, port: u8) -> Result<PortAttr>;

    // ---- protection domains and memory ----

    /// Allocates a protection domain; ENOMEM past `max_pd`.
    fn alloc_pd(&self) -> Result<PdId>;

    /// Frees a protection domain; EBUSY while MRs, QPs or SRQs still use it.
    fn dealloc_pd(&self, pd: PdId) -> Result<()>;

    /// Allocates `len` zeroed bytes and registers them (`ibv_reg_mr`).
    /// EINVAL for `len` 0, above `max_mr_size`, or REMOTE_WRITE without LOCAL_WRITE;
    /// ENOMEM past `max_mr`.
    fn reg_mr(&self, pd: PdId, len: u64, access: Access) -> Result<MrInfo>;

    /// Deregisters and frees a region; remote access with its rkey fails from then on.
    fn dereg_mr(&self, mr: MrId) -> Result<()>;

    /// CPU write into a region of this context; EINVAL when out of its bounds.
    fn mr_write(&self, mr: MrId, offset: u64, data: &[u8]) -> Result<()>;

    /// CPU read from a region of this context; EINVAL when out of its bounds.
    fn mr_read(&self, mr: MrId, offset: u64, buf: &mut [u8]) -> Result<()>;

    // ---- completion queues ----

    /// Creates a CQ of at least `cqe` entries; EINVAL for 0 or above `max_cqe`.
    fn create_cq(&self, cqe: u32) -> Result<CqId>;

    /// Destroys a CQ; EBUSY while a QP uses it.
    fn destroy_cq(&self, cq: CqId) -> Result<()>;

    /// Takes up to `max` completions, oldest first (`ibv_poll_cq`).
    fn poll_cq(&self, cq: CqId, max: usize) -> Result<Vec<WorkCompletion>>;

    /// Returns once the CQ holds at least one completion (completion channel).
    async fn wait_cq(&self, cq: CqId) -> Result<()>;

    // ---- shared receive queues ----

    /// Creates an SRQ; EINVAL for `max_wr` 0 or above `max_srq_wr`, or a limit above `max_wr`.
    fn create_srq(&self, pd: PdId, init: SrqInit) -> Result<SrqId>;

    /// Arms the limit event (`ibv_modify_srq` with IBV_SRQ_LIMIT); EINVAL above `max_wr`.
    fn arm_srq(&self, srq: SrqId, limit: u32) -> Result<()>;

    /// Queries an SRQ.
    fn query_srq(&self, srq: SrqId) -> Result<SrqAttr>;

    /// Destroys an SRQ; EBUSY while a QP uses it.
    fn destroy_srq(&self, srq: SrqId) -> Result<()>;

    /// Posts a receive to an SRQ; ENOMEM when full, EINVAL for too many SGEs.
    fn post_srq_recv(&self, srq: SrqId, wr: &RecvWr) -> Result<()>;

    // ---- queue pairs ----

    /// Creates an RC QP in RESET; EINVAL for unknown CQ/SRQ or caps above device limits.
    fn create_qp(&self, pd: PdId, init: QpInit) -> Result<QpInfo>;

    /// Moves a QP (`ibv_modify_qp`); EINVAL for an illegal transition or missing attribute.
    /// Going to ERR flushes all outstanding work with WR_FLUSH_ERR.
    fn modify_qp(&self, qp: QpId, attr: &QpAttr) -> Result<()>;

    /// The QP's current state (`ibv_query_qp`).
    fn query_qp(&self, qp: QpId) -> Result<QpState>;

    /// Destroys a QP in any state; outstanding work is discarded without completions.
    fn destroy_qp(&self, qp: QpId) -> Result<()>;

    /// Posts a send request; EINVAL in RESET/INIT/RTR or for too many SGEs,
    /// ENOMEM when the send queue is full. In ERR the request completes with WR_FLUSH_ERR.
    fn post_send(&self, qp: QpId, wr: &SendWr) -> Result<()>;

    /// Posts a receive to the QP's own queue; EINVAL in RESET or for a QP with an SRQ,
    /// ENOMEM when full. In ERR it completes with WR_FLUSH_ERR.
    fn post_recv(&self, qp: QpId, wr: &RecvWr) -> Result<()>;

    // ---- async events ----

    /// Takes the oldest pending async event, if any.
    fn poll_async_event(&self) -> Option<AsyncEvent>;

    /// Waits for the next async event (`ibv_get_async_event`).
    async fn next_async_event(&self) -> AsyncEvent;

    // ---- connection manager ----

    /// Listens on an address of one of this device's ports (0.0.0.0 = all);
    /// EADDRINUSE when taken, EADDRNOTAVAIL when no port has the address.
    fn cm_listen(&self, addr: SocketAddr) -> Result<ListenerId>;

    /// Stops listening; pending requests are rejected.
    fn cm_close_listener(&self, listener: ListenerId) -> Result<()>;

    /// Connects a QP in RESET to a listener (resolve, route, REQ with `param`);
    /// EINVAL if the QP is not in RESET or the private data is longer than 56 bytes.
    /// The outcome arrives as an `Established`, `Rejected` or `Unreachable` event.
    fn cm_connect(&self, addr: SocketAddr, qp: QpId, param: &ConnParam) -> Result<ConnId>;

    /// Accepts a connect request with a QP in RESET; both sides get `Established`.
    /// EINVAL when `conn` is not an unanswered request or private data exceeds 196 bytes.
    fn cm_accept(&self, conn: ConnId, qp: QpId, param: &ConnParam) -> Result<()>;

    /// Rejects a connect request with private data (at most 148 bytes); the peer gets
    /// `Rejected` with status [`CM_REJ_CONSUMER_DEFINED`].
    fn cm_reject(&self, conn: ConnId, private_data: &[u8]) -> Result<()>;

    /// Disconnects; both sides get `Disconnected` and their QPs go to ERR.
    fn cm_disconnect(&self, conn: ConnId) -> Result<()>;

    /// Releases an identifier (`rdma_destroy_id`); a connected one is disconnected first.
    fn cm_destroy(&self, conn: ConnId) -> Result<()>;

    /// Takes the oldest pending CM event, if any.
    fn poll_cm_event(&self) -> Option<CmEvent>;

    /// Waits for the next CM event (`rdma_get_cm_event`).
    async fn next_cm_event(&self) -> CmEvent;
}
