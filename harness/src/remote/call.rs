//! The messages of a remote device context: one [`CtxCall`] per `DeviceContext` method that
//! answers at once, one [`CtxWait`] per method that waits, and the [`CtxReply`] each gets.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::error::ErrorRepr;
use crate::fabric::{
    Access, AsyncEvent, CmEvent, ConnId, ConnParam, CqId, DeviceAttr, ListenerId, MrId, MrInfo,
    PdId, PortAttr, QpAttr, QpId, QpInfo, QpInit, QpState, RecvWr, SendWr, SrqAttr, SrqId, SrqInit,
    WorkCompletion,
};

/// A `DeviceContext` call that answers at once, with its arguments. Each variant's fields
/// are the arguments of the method it names, documented there.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CtxCall {
    /// `device_attr`.
    DeviceAttr,
    /// `port_attr`.
    PortAttr { port: u8 },
    /// `alloc_pd`.
    AllocPd,
    /// `dealloc_pd`.
    DeallocPd { pd: PdId },
    /// `reg_mr`.
    RegMr { pd: PdId, len: u64, access: Access },
    /// `dereg_mr`.
    DeregMr { mr: MrId },
    /// `mr_write`.
    MrWrite {
        mr: MrId,
        offset: u64,
        data: Vec<u8>,
    },
    /// `mr_read` of `len` bytes.
    MrRead { mr: MrId, offset: u64, len: u64 },
    /// `create_cq`.
    CreateCq { cqe: u32 },
    /// `destroy_cq`.
    DestroyCq { cq: CqId },
    /// `poll_cq`.
    PollCq { cq: CqId, max: usize },
    /// `create_srq`.
    CreateSrq { pd: PdId, init: SrqInit },
    /// `arm_srq`.
    ArmSrq { srq: SrqId, limit: u32 },
    /// `query_srq`.
    QuerySrq { srq: SrqId },
    /// `destroy_srq`.
    DestroySrq { srq: SrqId },
    /// `post_srq_recv`.
    PostSrqRecv { srq: SrqId, wr: RecvWr },
    /// `create_qp`.
    CreateQp { pd: PdId, init: QpInit },
    /// `modify_qp`.
    ModifyQp { qp: QpId, attr: QpAttr },
    /// `query_qp`.
    QueryQp { qp: QpId },
    /// `destroy_qp`.
    DestroyQp { qp: QpId },
    /// `post_send`.
    PostSend { qp: QpId, wr: SendWr },
    /// `post_recv`.
    PostRecv { qp: QpId, wr: RecvWr },
    /// `poll_async_event`.
    PollAsyncEvent,
    /// `cm_listen`.
    CmListen { addr: SocketAddr },
    /// `cm_close_listener`.
    CmCloseListener { listener: ListenerId },
    /// `cm_connect`.
    CmConnect {
        addr: SocketAddr,
        qp: QpId,
        param: ConnParam,
    },
    /// `cm_accept`.
    CmAccept {
        conn: ConnId,
        qp: QpId,
        param: ConnParam,
    },
    /// `cm_reject`.
    CmReject { conn: ConnId, private_data: Vec<u8> },
    /// `cm_disconnect`.
    CmDisconnect { conn: ConnId },
    /// `cm_destroy`.
    CmDestroy { conn: ConnId },
    /// `poll_cm_event`.
    PollCmEvent,
}

/// A `DeviceContext` call that waits (the caller bounds it); fields as in [`CtxCall`].
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "wait", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CtxWait {
    /// `wait_cq`: the CQ holds a completion.
    Cq { cq: CqId },
    /// `next_async_event`.
    AsyncEvent,
    /// `next_cm_event`.
    CmEvent,
}

/// What a call or a wait gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "kebab-case")]
pub enum CtxReply {
    /// Done, nothing to give back.
    Done,
    /// The device's attributes.
    DeviceAttr(DeviceAttr),
    /// A port's attributes.
    PortAttr(PortAttr),
    /// A new PD.
    Pd(PdId),
    /// A new memory region.
    Mr(MrInfo),
    /// Bytes read.
    Bytes(Vec<u8>),
    /// A new CQ.
    Cq(CqId),
    /// Completions taken.
    Completions(Vec<WorkCompletion>),
    /// A new SRQ.
    Srq(SrqId),
    /// An SRQ's attributes.
    SrqAttr(SrqAttr),
    /// A new QP.
    Qp(QpInfo),
    /// A QP's state.
    QpState(QpState),
    /// An asynchronous event, if one was pending (or the one awaited).
    AsyncEvent(Option<AsyncEvent>),
    /// A new listener.
    Listener(ListenerId),
    /// A new connection.
    Conn(ConnId),
    /// A CM event, if one was pending (or the one awaited).
    CmEvent(Option<CmEvent>),
    /// The call failed (or the link broke: ENODEV).
    Error(ErrorRepr),
}
