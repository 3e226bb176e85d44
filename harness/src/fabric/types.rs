//! The verbs objects a fabric user handles: typed handles, memory regions, work requests,
//! completions, queue pair states and attributes, async events and connection-manager events.
//!
//! The numbering of statuses, opcodes and events follows libibverbs (`ibv_wc_status`,
//! `ibv_event_type`), so a trace reads the same on `sim` and on real verbs.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bitflags::bitflags;
use serde::{Deserialize, Serialize};

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u32);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

handle!(
    /// A protection domain of one device context.
    PdId, "pd"
);
handle!(
    /// A registered memory region of one device context.
    MrId, "mr"
);
handle!(
    /// A completion queue of one device context.
    CqId, "cq"
);
handle!(
    /// A shared receive queue of one device context.
    SrqId, "srq"
);
handle!(
    /// A queue pair of one device context (its wire number is [`QpInfo::qpn`]).
    QpId, "qp"
);
handle!(
    /// A connection-manager listener of one device context.
    ListenerId, "listen"
);
handle!(
    /// A connection-manager identifier (one side of one connection) of one device context.
    ConnId, "conn"
);

/// A 128-bit port GID; RoCEv2 ports carry IPv4-mapped GIDs (`::ffff:a.b.c.d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Gid(pub [u8; 16]);

impl Gid {
    /// The IPv4-mapped GID of an address, as RoCEv2 uses at GID index 1.
    pub fn from_ipv4(ip: Ipv4Addr) -> Gid {
        let mut g = [0u8; 16];
        g[10] = 0xff;
        g[11] = 0xff;
        g[12..].copy_from_slice(&ip.octets());
        Gid(g)
    }

    /// The IPv4 address of an IPv4-mapped GID.
    pub fn to_ipv4(&self) -> Option<Ipv4Addr> {
        let g = &self.0;
        if g[..10].iter().all(|b| *b == 0) && g[10] == 0xff && g[11] == 0xff {
            Some(Ipv4Addr::new(g[12], g[13], g[14], g[15]))
        } else {
            None
        }
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{:02x}{:02x}", pair[0], pair[1])?;
        }
        Ok(())
    }
}

/// What `ibv_query_device` tells about a device, the limits a fabric enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAttr {
    /// Device name, e.g. `sim0` or `rxe0`.
    pub name: String,
    /// Number of physical ports (numbered from 1).
    pub phys_port_cnt: u8,
    /// Largest number of queue pairs.
    pub max_qp: u32,
    /// Largest number of work requests on one queue.
    pub max_qp_wr: u32,
    /// Largest scatter/gather list in one work request.
    pub max_sge: u32,
    /// Largest number of completion queues.
    pub max_cq: u32,
    /// Largest number of entries of one completion queue.
    pub max_cqe: u32,
    /// Largest number of memory regions.
    pub max_mr: u32,
    /// Largest memory region in bytes.
    pub max_mr_size: u64,
    /// Largest number of protection domains.
    pub max_pd: u32,
    /// Largest number of shared receive queues.
    pub max_srq: u32,
    /// Largest number of work requests on one SRQ.
    pub max_srq_wr: u32,
    /// Largest number of outstanding RDMA READs a QP may have as responder or requester.
    pub max_qp_rd_atom: u32,
}

/// Logical state of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortState {
    /// Link down.
    Down,
    /// Link up and usable.
    Active,
}

/// What `ibv_query_port` tells about a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAttr {
    /// Port number, from 1.
    pub port: u8,
    /// Link state.
    pub state: PortState,
    /// Active MTU in bytes (256..4096).
    pub active_mtu: u32,
    /// The port's IPv4 address (RoCEv2), used by the connection manager.
    pub addr: Ipv4Addr,
    /// GID table; index 1 is the IPv4-mapped RoCEv2 GID.
    pub gids: Vec<Gid>,
}

bitflags! {
    /// Access rights of a memory region or a queue pair (`ibv_access_flags`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub struct Access: u32 {
        /// The local HCA may write (needed for receives and RDMA READ targets).
        const LOCAL_WRITE = 1 << 0;
        /// A remote peer may RDMA WRITE.
        const REMOTE_WRITE = 1 << 1;
        /// A remote peer may RDMA READ.
        const REMOTE_READ = 1 << 2;
        /// A remote peer may perform atomics.
        const REMOTE_ATOMIC = 1 << 3;
    }
}

/// A registered memory region: its handle, address in the context's virtual space, and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MrInfo {
    /// Handle for `dereg_mr`, `mr_read`, `mr_write`.
    pub id: MrId,
    /// First byte's virtual address, as used in SGEs and RDMA remote addresses.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
    /// Local key for SGEs.
    pub lkey: u32,
    /// Remote key for RDMA READ / WRITE by a peer.
    pub rkey: u32,
    /// Rights given at registration.
    pub access: Access,
}

impl MrInfo {
    /// An SGE covering `len` bytes at `offset` within this region.
    pub fn sge(&self, offset: u64, len: u32) -> Sge {
        Sge {
            addr: self.addr + offset,
            length: len,
            lkey: self.lkey,
        }
    }
}

/// One scatter/gather element (`ibv_sge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sge {
    /// Virtual address inside a local memory region.
    pub addr: u64,
    /// Length in bytes.
    pub length: u32,
    /// The region's local key.
    pub lkey: u32,
}

/// What a send work request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendOp {
    /// SEND: consumes a receive at the peer.
    Send,
    /// SEND with invalidate: as SEND, and the peer invalidates its region with `rkey`.
    SendWithInv {
        /// The peer's remote key to invalidate.
        rkey: u32,
    },
    /// RDMA WRITE of the gather list into the peer's memory.
    RdmaWrite {
        /// Peer virtual address.
        remote_addr: u64,
        /// Peer remote key.
        rkey: u32,
    },
    /// RDMA READ from the peer's memory into the scatter list.
    RdmaRead {
        /// Peer virtual address.
        remote_addr: u64,
        /// Peer remote key.
        rkey: u32,
    },
}

impl SendOp {
    /// The opcode of this operation's send-queue completion.
    pub fn wc_opcode(&self) -> WcOpcode {
        match self {
            SendOp::Send | SendOp::SendWithInv { .. } => WcOpcode::Send,
            SendOp::RdmaWrite { .. } => WcOpcode::RdmaWrite,
            SendOp::RdmaRead { .. } => WcOpcode::RdmaRead,
        }
    }
}

/// A send-queue work request (`ibv_send_wr`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendWr {
    /// Caller's identifier, returned in the completion.
    pub wr_id: u64,
    /// The operation.
    pub op: SendOp,
    /// Local buffers (gather for SEND / WRITE, scatter for READ).
    pub sg_list: Vec<Sge>,
    /// Whether a successful completion is generated (errors always are).
    pub signaled: bool,
}

impl SendWr {
    /// A signaled work request.
    pub fn new(wr_id: u64, op: SendOp, sg_list: Vec<Sge>) -> SendWr {
        SendWr {
            wr_id,
            op,
            sg_list,
            signaled: true,
        }
    }

    /// Total bytes of the local list.
    pub fn len(&self) -> u64 {
        self.sg_list.iter().map(|s| u64::from(s.length)).sum()
    }

    /// Whether the local list is empty (a zero-length operation).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A receive work request (`ibv_recv_wr`), posted to a QP or an SRQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecvWr {
    /// Caller's identifier, returned in the completion.
    pub wr_id: u64,
    /// Where an incoming SEND is scattered.
    pub sg_list: Vec<Sge>,
}

/// Completion status, numbered as `ibv_wc_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum WcStatus {
    /// IBV_WC_SUCCESS.
    Success = 0,
    /// IBV_WC_LOC_LEN_ERR: a received message was longer than the receive buffer.
    LocLenErr = 1,
    /// IBV_WC_LOC_QP_OP_ERR: an internal QP consistency error.
    LocQpOpErr = 2,
    /// IBV_WC_LOC_PROT_ERR: a local SGE's key or bounds are wrong.
    LocProtErr = 4,
    /// IBV_WC_WR_FLUSH_ERR: the QP went to error before this request completed.
    WrFlushErr = 5,
    /// IBV_WC_LOC_ACCESS_ERR: local access violation.
    LocAccessErr = 8,
    /// IBV_WC_REM_INV_REQ_ERR: the peer found the request invalid (e.g. too long for its buffer).
    RemInvReqErr = 9,
    /// IBV_WC_REM_ACCESS_ERR: the peer refused the rkey, bounds or rights.
    RemAccessErr = 10,
    /// IBV_WC_REM_OP_ERR: the peer could not complete the operation.
    RemOpErr = 11,
    /// IBV_WC_RETRY_EXC_ERR: the peer did not answer within the retry count.
    RetryExcErr = 12,
    /// IBV_WC_RNR_RETRY_EXC_ERR: the peer had no receive posted within the RNR retry count.
    RnrRetryExcErr = 13,
    /// IBV_WC_GENERAL_ERR.
    GeneralErr = 21,
}

impl WcStatus {
    /// The name libibverbs' `ibv_wc_status_str` would give, in short form.
    pub fn name(self) -> &'static str {
        match self {
            WcStatus::Success => "SUCCESS",
            WcStatus::LocLenErr => "LOC_LEN_ERR",
            WcStatus::LocQpOpErr => "LOC_QP_OP_ERR",
            WcStatus::LocProtErr => "LOC_PROT_ERR",
            WcStatus::WrFlushErr => "WR_FLUSH_ERR",
            WcStatus::LocAccessErr => "LOC_ACCESS_ERR",
            WcStatus::RemInvReqErr => "REM_INV_REQ_ERR",
            WcStatus::RemAccessErr => "REM_ACCESS_ERR",
            WcStatus::RemOpErr => "REM_OP_ERR",
            WcStatus::RetryExcErr => "RETRY_EXC_ERR",
            WcStatus::RnrRetryExcErr => "RNR_RETRY_EXC_ERR",
            WcStatus::GeneralErr => "GENERAL_ERR",
        }
    }
}

/// What a completion completed, as `ibv_wc_opcode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WcOpcode {
    /// A SEND (with or without invalidate) of this side.
    Send,
    /// An RDMA WRITE of this side.
    RdmaWrite,
    /// An RDMA READ of this side.
    RdmaRead,
    /// A receive (an incoming SEND consumed a receive request).
    Recv,
}

/// A work completion (`ibv_wc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkCompletion {
    /// The request's identifier.
    pub wr_id: u64,
    /// Outcome.
    pub status: WcStatus,
    /// What completed. On error completions real devices may leave it undefined; `sim` fills it.
    pub opcode: WcOpcode,
    /// Bytes received (receives) or transferred.
    pub byte_len: u32,
    /// The local QP the request belonged to (for SRQ receives: the QP the message arrived on).
    pub qp: QpId,
    /// That QP's number.
    pub qp_num: u32,
    /// The peer QP number (receives only; 0 otherwise).
    pub src_qp: u32,
    /// The rkey the peer invalidated with SEND with invalidate (receives only).
    pub invalidated_rkey: Option<u32>,
}

/// Queue pair state (`ibv_qp_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QpState {
    /// Just created or reset.
    Reset,
    /// Initialised: receives may be posted.
    Init,
    /// Ready to receive.
    Rtr,
    /// Ready to send.
    Rts,
    /// Send queue drained (not produced by `sim`).
    Sqd,
    /// Send queue error (not produced by RC QPs).
    Sqe,
    /// Error: everything outstanding is flushed.
    Err,
}

/// Requested sizes of a new queue pair (`ibv_qp_cap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QpCap {
    /// Send queue depth.
    pub max_send_wr: u32,
    /// Receive queue depth (ignored with an SRQ).
    pub max_recv_wr: u32,
    /// Gather entries per send request.
    pub max_send_sge: u32,
    /// Scatter entries per receive request.
    pub max_recv_sge: u32,
}

impl Default for QpCap {
    fn default() -> Self {
        QpCap {
            max_send_wr: 64,
            max_recv_wr: 64,
            max_send_sge: 4,
            max_recv_sge: 4,
        }
    }
}

/// Creation attributes of an RC queue pair (`ibv_qp_init_attr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QpInit {
    /// Completion queue of the send queue.
    pub send_cq: CqId,
    /// Completion queue of the receive queue (or of the SRQ's receives for this QP).
    pub recv_cq: CqId,
    /// Shared receive queue replacing the QP's own, if any.
    pub srq: Option<SrqId>,
    /// Queue sizes.
    pub cap: QpCap,
}

impl QpInit {
    /// Both queues completing on `cq`, receives from `srq` (the QP's own queue when `None`),
    /// default sizes.
    pub fn on_cq(cq: CqId, srq: Option<SrqId>) -> QpInit {
        QpInit {
            send_cq: cq,
            recv_cq: cq,
            srq,
            cap: QpCap::default(),
        }
    }
}

/// A new queue pair: handle and wire number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QpInfo {
    /// Handle.
    pub id: QpId,
    /// Queue pair number (24 bits).
    pub qpn: u32,
}

/// The remote end a QP is connected to in RTR (`ah_attr` + `dest_qp_num`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QpDest {
    /// The peer port's GID.
    pub gid: Gid,
    /// The peer QP number.
    pub qpn: u32,
}

/// A `modify_qp` request: the target state and the attributes that transition needs.
///
/// As in verbs: RESET→INIT needs `port` and `access`; INIT→RTR needs `dest`; any state
/// may go to RESET or ERR. Anything else, or a missing attribute, is EINVAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QpAttr {
    /// The state to move to.
    pub state: QpState,
    /// Port number (RESET→INIT).
    pub port: Option<u8>,
    /// Rights the peer gets on this QP (RESET→INIT).
    pub access: Option<Access>,
    /// Peer (INIT→RTR).
    pub dest: Option<QpDest>,
    /// Transport retries before RETRY_EXC_ERR (RTR→RTS), 0..=7.
    pub retry_cnt: u8,
    /// RNR retries before RNR_RETRY_EXC_ERR (RTR→RTS), 0..=7; 7 means forever.
    pub rnr_retry: u8,
}

impl QpAttr {
    /// A bare state change (to RESET or ERR, or any transition needing nothing more).
    pub fn state(state: QpState) -> QpAttr {
        QpAttr {
            state,
            port: None,
            access: None,
            dest: None,
            retry_cnt: 7,
            rnr_retry: 7,
        }
    }

    /// RESET→INIT on `port` with these remote rights.
    pub fn init(port: u8, access: Access) -> QpAttr {
        QpAttr {
            port: Some(port),
            access: Some(access),
            ..QpAttr::state(QpState::Init)
        }
    }

    /// INIT→RTR towards a peer.
    pub fn rtr(dest: QpDest) -> QpAttr {
        QpAttr {
            dest: Some(dest),
            ..QpAttr::state(QpState::Rtr)
        }
    }

    /// RTR→RTS with retry counts.
    pub fn rts(retry_cnt: u8, rnr_retry: u8) -> QpAttr {
        QpAttr {
            retry_cnt,
            rnr_retry,
            ..QpAttr::state(QpState::Rts)
        }
    }
}

/// Creation attributes of a shared receive queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrqInit {
    /// Depth.
    pub max_wr: u32,
    /// Scatter entries per receive.
    pub max_sge: u32,
    /// Limit watermark armed at creation (0 = not armed).
    pub srq_limit: u32,
}

impl SrqInit {
    /// `max_wr` receives of one scatter entry each, the limit not armed.
    pub fn new(max_wr: u32) -> SrqInit {
        SrqInit {
            max_wr,
            max_sge: 1,
            srq_limit: 0,
        }
    }
}

/// What `ibv_query_srq` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrqAttr {
    /// Depth.
    pub max_wr: u32,
    /// Receives currently posted.
    pub posted: u32,
    /// Armed limit, 0 when not armed.
    pub srq_limit: u32,
}

/// An asynchronous event (`ibv_async_event`), numbered after `ibv_event_type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AsyncEvent {
    /// IBV_EVENT_CQ_ERR: the CQ overflowed; completions were lost.
    CqErr(CqId),
    /// IBV_EVENT_QP_FATAL: the QP hit an error it could not report in a completion.
    QpFatal(QpId),
    /// IBV_EVENT_QP_REQ_ERR: the QP's peer sent an invalid request.
    QpReqErr(QpId),
    /// IBV_EVENT_QP_ACCESS_ERR: a peer's RDMA request violated this side's access rights.
    QpAccessErr(QpId),
    /// IBV_EVENT_COMM_EST: first packet arrived on a QP in RTR.
    CommEst(QpId),
    /// IBV_EVENT_SQ_DRAINED.
    SqDrained(QpId),
    /// IBV_EVENT_QP_LAST_WQE_REACHED: an SRQ-attached QP in error has consumed its last receive.
    QpLastWqeReached(QpId),
    /// IBV_EVENT_SRQ_LIMIT_REACHED: posted receives fell below the armed limit (disarms it).
    SrqLimitReached(SrqId),
    /// IBV_EVENT_SRQ_ERR.
    SrqErr(SrqId),
    /// IBV_EVENT_PORT_ACTIVE.
    PortActive(u8),
    /// IBV_EVENT_PORT_ERR: link went down.
    PortErr(u8),
    /// IBV_EVENT_DEVICE_FATAL.
    DeviceFatal,
}

/// Connection parameters carried by the connection manager (`rdma_conn_param`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnParam {
    /// Private data: at most 56 bytes on a request, 196 on an accept, 148 on a reject.
    pub private_data: Vec<u8>,
    /// Incoming RDMA READs this side accepts (IRD).
    pub responder_resources: u8,
    /// Outgoing RDMA READs this side issues (ORD).
    pub initiator_depth: u8,
    /// RNR retry count used for the QP, 0..=7.
    pub rnr_retry_count: u8,
}

/// Largest private data of a connect request (IB CM REQ).
pub const CM_REQ_PRIVATE_DATA_MAX: usize = 56;
/// Largest private data of an accept (IB CM REP).
pub const CM_REP_PRIVATE_DATA_MAX: usize = 196;
/// Largest private data of a reject (IB CM REJ).
pub const CM_REJ_PRIVATE_DATA_MAX: usize = 148;
/// `status` of a reject sent by the peer's application (IB_CM_REJ_CONSUMER_DEFINED).
pub const CM_REJ_CONSUMER_DEFINED: u32 = 28;
/// `status` of a connect that found no listener (IB_CM_REJ_INVALID_SERVICE_ID).
pub const CM_REJ_INVALID_SERVICE_ID: u32 = 8;

/// What happened on a connection-manager identifier (`rdma_cm_event_type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmEventKind {
    /// A peer asks to connect to one of our listeners; answer with accept or reject.
    ConnectRequest {
        /// The listener it arrived on.
        listener: ListenerId,
        /// The peer's address.
        peer: SocketAddr,
        /// The peer's parameters, private data included.
        param: ConnParam,
    },
    /// The connection is up; the QP is in RTS.
    Established {
        /// The peer's accept private data (active side) or empty.
        private_data: Vec<u8>,
    },
    /// The peer (or the CM) refused the connection.
    Rejected {
        /// CM status: [`CM_REJ_CONSUMER_DEFINED`] for an application reject.
        status: u32,
        /// The reject's private data.
        private_data: Vec<u8>,
    },
    /// The peer could not be reached (no route, link down, timeout).
    Unreachable,
    /// The connection is closed (by either side or by a fault); the QP is in ERR.
    Disconnected,
}

/// A connection-manager event for one identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmEvent {
    /// The identifier it concerns (for a request: the new passive-side identifier).
    pub conn: ConnId,
    /// What happened.
    pub kind: CmEventKind,
}

/// Faults a test can inject into a fabric (only `sim` supports them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Take a device's port down (`up: false`) or bring it back.
    Link {
        /// Which port of the device of the given address.
        addr: Ipv4Addr,
        /// New state.
        up: bool,
    },
    /// Force the QP with this number (on the device with this address) to error, as a
    /// fatal device error would (QP_FATAL event, outstanding work flushed).
    QpError {
        /// Device address.
        addr: Ipv4Addr,
        /// QP number.
        qpn: u32,
    },
    /// Set the latency added to every packet from now on (replaces any earlier value;
    /// `Delay(Duration::ZERO)` removes it).
    Delay(Duration),
    /// Break the connection of this QP: its packets and its peer's are lost from now on.
    DropConnection {
        /// Device address.
        addr: Ipv4Addr,
        /// QP number.
        qpn: u32,
    },
}
