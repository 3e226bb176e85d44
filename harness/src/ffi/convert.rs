//! Conversions between the Rust model and the C mirrors of [`super::abi`] that involve no
//! pointer (those that do are in [`super::bridge`]). `from_c` functions refuse values
//! the C enum does not define; bit sets keep unknown bits (so an invalid request reaches the
//! device and gets the device's errno, as it would through libibverbs).

use std::collections::BTreeSet;
use std::ffi::c_char;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::abi::{self, *};

mod backend;
use crate::api::{
    CtrlHandle, MemRef, NsCounters, NsMapping, NvmfCaps, NvmfSrq, NvmfSrqAttrs, OffloadEvent,
    OffloadOps, OffloadType, SrqCounters, SrqHandle,
};
use crate::fabric::{
    Access, AsyncEvent, CmEvent, CmEventKind, ConnParam, CqId, DeviceAttr, Gid, ListenerId, MrId,
    MrInfo, PortAttr, PortState, QpAttr, QpCap, QpDest, QpId, QpInfo, QpInit, QpState, Sge,
    SrqAttr, SrqId, SrqInit, WcOpcode, WcStatus, WorkCompletion,
};
pub use backend::*;

/// `ibv_device_attr` → C.
pub fn device_attr_to_c(a: &DeviceAttr) -> NvmfDeviceAttr {
    let mut name = [0 as c_char; NVMF_DEVICE_NAME_MAX];
    for (d, s) in name
        .iter_mut()
        .zip(a.name.bytes().take(NVMF_DEVICE_NAME_MAX - 1))
    {
        *d = s as c_char;
    }
    NvmfDeviceAttr {
        name,
        phys_port_cnt: a.phys_port_cnt,
        reserved: [0; 3],
        max_qp: a.max_qp,
        max_qp_wr: a.max_qp_wr,
        max_sge: a.max_sge,
        max_cq: a.max_cq,
        max_cqe: a.max_cqe,
        max_mr: a.max_mr,
        max_pd: a.max_pd,
        max_mr_size: a.max_mr_size,
        max_srq: a.max_srq,
        max_srq_wr: a.max_srq_wr,
        max_qp_rd_atom: a.max_qp_rd_atom,
        reserved2: 0,
    }
}

/// C → `DeviceAttr`.
pub fn device_attr_from_c(c: &NvmfDeviceAttr) -> DeviceAttr {
    let bytes: Vec<u8> = c
        .name
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as u8)
        .collect();
    DeviceAttr {
        name: String::from_utf8_lossy(&bytes).into_owned(),
        phys_port_cnt: c.phys_port_cnt,
        max_qp: c.max_qp,
        max_qp_wr: c.max_qp_wr,
        max_sge: c.max_sge,
        max_cq: c.max_cq,
        max_cqe: c.max_cqe,
        max_mr: c.max_mr,
        max_mr_size: c.max_mr_size,
        max_pd: c.max_pd,
        max_srq: c.max_srq,
        max_srq_wr: c.max_srq_wr,
        max_qp_rd_atom: c.max_qp_rd_atom,
    }
}

/// Port attributes → C (at most [`NVMF_MAX_GIDS`] GIDs).
pub fn port_attr_to_c(a: &PortAttr) -> NvmfPortAttr {
    let mut c = NvmfPortAttr {
        port: a.port,
        state: match a.state {
            PortState::Down => NVMF_PORT_DOWN,
            PortState::Active => NVMF_PORT_ACTIVE,
        },
        active_mtu: a.active_mtu,
        addr: a.addr.octets(),
        ..Default::default()
    };
    for (i, g) in a.gids.iter().take(NVMF_MAX_GIDS).enumerate() {
        c.gids[i] = g.0;
        c.num_gids = i as u32 + 1;
    }
    c
}

/// C → port attributes.
pub fn port_attr_from_c(c: &NvmfPortAttr) -> PortAttr {
    PortAttr {
        port: c.port,
        state: if c.state == NVMF_PORT_ACTIVE {
            PortState::Active
        } else {
            PortState::Down
        },
        active_mtu: c.active_mtu,
        addr: Ipv4Addr::from(c.addr),
        gids: c.gids[..(c.num_gids as usize).min(NVMF_MAX_GIDS)]
            .iter()
            .map(|g| Gid(*g))
            .collect(),
    }
}

/// Memory region → C.
pub fn mr_to_c(m: &MrInfo) -> NvmfMrInfo {
    NvmfMrInfo {
        id: m.id.0,
        lkey: m.lkey,
        rkey: m.rkey,
        access: m.access.bits(),
        addr: m.addr,
        len: m.len,
    }
}

/// C → memory region.
pub fn mr_from_c(c: &NvmfMrInfo) -> MrInfo {
    MrInfo {
        id: MrId(c.id),
        addr: c.addr,
        len: c.len,
        lkey: c.lkey,
        rkey: c.rkey,
        access: Access::from_bits_retain(c.access),
    }
}

/// SGE → C.
pub fn sge_to_c(s: &Sge) -> NvmfSge {
    NvmfSge {
        addr: s.addr,
        length: s.length,
        lkey: s.lkey,
    }
}

/// C → SGE.
pub fn sge_from_c(c: &NvmfSge) -> Sge {
    Sge {
        addr: c.addr,
        length: c.length,
        lkey: c.lkey,
    }
}

/// A completion status from its `ibv_wc_status` number.
pub fn wc_status_from_u32(v: u32) -> Option<WcStatus> {
    use WcStatus::*;
    [
        Success,
        LocLenErr,
        LocQpOpErr,
        LocProtErr,
        WrFlushErr,
        LocAccessErr,
        RemInvReqErr,
        RemAccessErr,
        RemOpErr,
        RetryExcErr,
        RnrRetryExcErr,
        GeneralErr,
    ]
    .into_iter()
    .find(|s| *s as u32 == v)
}

/// Work completion → C.
pub fn wc_to_c(w: &WorkCompletion) -> NvmfWc {
    NvmfWc {
        wr_id: w.wr_id,
        status: w.status as u32,
        opcode: match w.opcode {
            WcOpcode::Send => NVMF_WC_SEND,
            WcOpcode::RdmaWrite => NVMF_WC_RDMA_WRITE,
            WcOpcode::RdmaRead => NVMF_WC_RDMA_READ,
            WcOpcode::Recv => NVMF_WC_RECV,
        },
        byte_len: w.byte_len,
        qp: w.qp.0,
        qp_num: w.qp_num,
        src_qp: w.src_qp,
        invalidated_rkey: w.invalidated_rkey.unwrap_or(0),
        wc_flags: if w.invalidated_rkey.is_some() {
            NVMF_WC_WITH_INV
        } else {
            0
        },
    }
}

/// C → work completion; `None` for an undefined status or opcode.
pub fn wc_from_c(c: &NvmfWc) -> Option<WorkCompletion> {
    Some(WorkCompletion {
        wr_id: c.wr_id,
        status: wc_status_from_u32(c.status)?,
        opcode: match c.opcode {
            NVMF_WC_SEND => WcOpcode::Send,
            NVMF_WC_RDMA_WRITE => WcOpcode::RdmaWrite,
            NVMF_WC_RDMA_READ => WcOpcode::RdmaRead,
            NVMF_WC_RECV => WcOpcode::Recv,
            _ => return None,
        },
        byte_len: c.byte_len,
        qp: QpId(c.qp),
        qp_num: c.qp_num,
        src_qp: c.src_qp,
        invalidated_rkey: (c.wc_flags & NVMF_WC_WITH_INV != 0).then_some(c.invalidated_rkey),
    })
}

/// QP creation attributes → C.
pub fn qp_init_to_c(i: &QpInit) -> NvmfQpInit {
    NvmfQpInit {
        send_cq: i.send_cq.0,
        recv_cq: i.recv_cq.0,
        srq: i.srq.map_or(0, |s| s.0),
        has_srq: u32::from(i.srq.is_some()),
        cap: NvmfQpCap {
            max_send_wr: i.cap.max_send_wr,
            max_recv_wr: i.cap.max_recv_wr,
            max_send_sge: i.cap.max_send_sge,
            max_recv_sge: i.cap.max_recv_sge,
        },
    }
}

/// C → QP creation attributes.
pub fn qp_init_from_c(c: &NvmfQpInit) -> QpInit {
    QpInit {
        send_cq: CqId(c.send_cq),
        recv_cq: CqId(c.recv_cq),
        srq: (c.has_srq != 0).then_some(SrqId(c.srq)),
        cap: QpCap {
            max_send_wr: c.cap.max_send_wr,
            max_recv_wr: c.cap.max_recv_wr,
            max_send_sge: c.cap.max_send_sge,
            max_recv_sge: c.cap.max_recv_sge,
        },
    }
}

/// New QP → C.
pub fn qp_info_to_c(q: &QpInfo) -> NvmfQpInfo {
    NvmfQpInfo {
        id: q.id.0,
        qpn: q.qpn,
    }
}

/// C → new QP.
pub fn qp_info_from_c(c: &NvmfQpInfo) -> QpInfo {
    QpInfo {
        id: QpId(c.id),
        qpn: c.qpn,
    }
}

/// QP state → `ibv_qp_state` number.
pub fn qp_state_to_u32(s: QpState) -> u32 {
    match s {
        QpState::Reset => 0,
        QpState::Init => 1,
        QpState::Rtr => 2,
        QpState::Rts => 3,
        QpState::Sqd => 4,
        QpState::Sqe => 5,
        QpState::Err => 6,
    }
}

/// `ibv_qp_state` number → QP state.
pub fn qp_state_from_u32(v: u32) -> Option<QpState> {
    Some(match v {
        0 => QpState::Reset,
        1 => QpState::Init,
        2 => QpState::Rtr,
        3 => QpState::Rts,
        4 => QpState::Sqd,
        5 => QpState::Sqe,
        6 => QpState::Err,
        _ => return None,
    })
}

/// `modify_qp` attributes → C.
pub fn qp_attr_to_c(a: &QpAttr) -> NvmfQpAttr {
    let mut c = NvmfQpAttr {
        state: qp_state_to_u32(a.state),
        retry_cnt: a.retry_cnt,
        rnr_retry: a.rnr_retry,
        ..Default::default()
    };
    if let Some(p) = a.port {
        c.attr_mask |= NVMF_QP_ATTR_PORT;
        c.port = p;
    }
    if let Some(x) = a.access {
        c.attr_mask |= NVMF_QP_ATTR_ACCESS;
        c.access = x.bits();
    }
    if let Some(d) = a.dest {
        c.attr_mask |= NVMF_QP_ATTR_DEST;
        c.dest_gid = d.gid.0;
        c.dest_qpn = d.qpn;
    }
    c
}

/// C → `modify_qp` attributes; `None` for an undefined state.
pub fn qp_attr_from_c(c: &NvmfQpAttr) -> Option<QpAttr> {
    Some(QpAttr {
        state: qp_state_from_u32(c.state)?,
        port: (c.attr_mask & NVMF_QP_ATTR_PORT != 0).then_some(c.port),
        access: (c.attr_mask & NVMF_QP_ATTR_ACCESS != 0)
            .then(|| Access::from_bits_retain(c.access)),
        dest: (c.attr_mask & NVMF_QP_ATTR_DEST != 0).then_some(QpDest {
            gid: Gid(c.dest_gid),
            qpn: c.dest_qpn,
        }),
        retry_cnt: c.retry_cnt,
        rnr_retry: c.rnr_retry,
    })
}

/// SRQ creation attributes → C.
pub fn srq_init_to_c(i: &SrqInit) -> NvmfSrqInit {
    NvmfSrqInit {
        max_wr: i.max_wr,
        max_sge: i.max_sge,
        srq_limit: i.srq_limit,
    }
}

/// C → SRQ creation attributes.
pub fn srq_init_from_c(c: &NvmfSrqInit) -> SrqInit {
    SrqInit {
        max_wr: c.max_wr,
        max_sge: c.max_sge,
        srq_limit: c.srq_limit,
    }
}

/// SRQ attributes → C.
pub fn srq_attr_to_c(a: &SrqAttr) -> NvmfSrqAttr {
    NvmfSrqAttr {
        max_wr: a.max_wr,
        posted: a.posted,
        srq_limit: a.srq_limit,
    }
}

/// C → SRQ attributes.
pub fn srq_attr_from_c(c: &NvmfSrqAttr) -> SrqAttr {
    SrqAttr {
        max_wr: c.max_wr,
        posted: c.posted,
        srq_limit: c.srq_limit,
    }
}

/// Async event → C.
pub fn async_event_to_c(e: &AsyncEvent) -> NvmfAsyncEvent {
    use abi::event as t;
    let (ty, el) = match e {
        AsyncEvent::CqErr(c) => (t::CQ_ERR, c.0),
        AsyncEvent::QpFatal(q) => (t::QP_FATAL, q.0),
        AsyncEvent::QpReqErr(q) => (t::QP_REQ_ERR, q.0),
        AsyncEvent::QpAccessErr(q) => (t::QP_ACCESS_ERR, q.0),
        AsyncEvent::CommEst(q) => (t::COMM_EST, q.0),
        AsyncEvent::SqDrained(q) => (t::SQ_DRAINED, q.0),
        AsyncEvent::QpLastWqeReached(q) => (t::QP_LAST_WQE_REACHED, q.0),
        AsyncEvent::SrqLimitReached(s) => (t::SRQ_LIMIT_REACHED, s.0),
        AsyncEvent::SrqErr(s) => (t::SRQ_ERR, s.0),
        AsyncEvent::PortActive(p) => (t::PORT_ACTIVE, u32::from(*p)),
        AsyncEvent::PortErr(p) => (t::PORT_ERR, u32::from(*p)),
        AsyncEvent::DeviceFatal => (t::DEVICE_FATAL, 0),
    };
    NvmfAsyncEvent {
        r#type: ty,
        element: el,
    }
}

/// C → async event; `None` for a type that is no verbs event.
pub fn async_event_from_c(c: &NvmfAsyncEvent) -> Option<AsyncEvent> {
    use abi::event as t;
    let el = c.element;
    Some(match c.r#type {
        t::CQ_ERR => AsyncEvent::CqErr(CqId(el)),
        t::QP_FATAL => AsyncEvent::QpFatal(QpId(el)),
        t::QP_REQ_ERR => AsyncEvent::QpReqErr(QpId(el)),
        t::QP_ACCESS_ERR => AsyncEvent::QpAccessErr(QpId(el)),
        t::COMM_EST => AsyncEvent::CommEst(QpId(el)),
        t::SQ_DRAINED => AsyncEvent::SqDrained(QpId(el)),
        t::QP_LAST_WQE_REACHED => AsyncEvent::QpLastWqeReached(QpId(el)),
        t::SRQ_LIMIT_REACHED => AsyncEvent::SrqLimitReached(SrqId(el)),
        t::SRQ_ERR => AsyncEvent::SrqErr(SrqId(el)),
        t::PORT_ACTIVE => AsyncEvent::PortActive(el as u8),
        t::PORT_ERR => AsyncEvent::PortErr(el as u8),
        t::DEVICE_FATAL => AsyncEvent::DeviceFatal,
        _ => return None,
    })
}

/// Socket address → C.
pub fn sockaddr_to_c(a: &SocketAddr) -> NvmfSockaddr {
    let mut c = NvmfSockaddr {
        port: a.port(),
        ..Default::default()
    };
    match a.ip() {
        IpAddr::V4(ip) => {
            c.family = 4;
            c.addr[..4].copy_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            c.family = 6;
            c.addr = ip.octets();
        }
    }
    c
}

/// C → socket address; `None` for an unknown family.
pub fn sockaddr_from_c(c: &NvmfSockaddr) -> Option<SocketAddr> {
    let ip = match c.family {
        4 => IpAddr::V4(Ipv4Addr::new(c.addr[0], c.addr[1], c.addr[2], c.addr[3])),
        6 => IpAddr::V6(Ipv6Addr::from(c.addr)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, c.port))
}

fn put_private(dst: &mut [u8; NVMF_CM_PRIVATE_DATA_MAX], data: &[u8]) -> u32 {
    let n = data.len().min(NVMF_CM_PRIVATE_DATA_MAX);
    dst[..n].copy_from_slice(&data[..n]);
    n as u32
}

/// CM event → C.
pub fn cm_event_to_c(e: &CmEvent) -> NvmfCmEvent {
    let mut c = NvmfCmEvent {
        conn: e.conn.0,
        kind: 0,
        listener: 0,
        status: 0,
        peer: NvmfSockaddr::default(),
        responder_resources: 0,
        initiator_depth: 0,
        rnr_retry_count: 0,
        reserved: 0,
        private_data_len: 0,
        private_data: [0; NVMF_CM_PRIVATE_DATA_MAX],
    };
    match &e.kind {
        CmEventKind::ConnectRequest {
            listener,
            peer,
            param,
        } => {
            c.kind = NVMF_CM_CONNECT_REQUEST;
            c.listener = listener.0;
            c.peer = sockaddr_to_c(peer);
            c.responder_resources = param.responder_resources;
            c.initiator_depth = param.initiator_depth;
            c.rnr_retry_count = param.rnr_retry_count;
            c.private_data_len = put_private(&mut c.private_data, &param.private_data);
        }
        CmEventKind::Established { private_data } => {
            c.kind = NVMF_CM_ESTABLISHED;
            c.private_data_len = put_private(&mut c.private_data, private_data);
        }
        CmEventKind::Rejected {
            status,
            private_data,
        } => {
            c.kind = NVMF_CM_REJECTED;
            c.status = *status;
            c.private_data_len = put_private(&mut c.private_data, private_data);
        }
        CmEventKind::Unreachable => c.kind = NVMF_CM_UNREACHABLE,
        CmEventKind::Disconnected => c.kind = NVMF_CM_DISCONNECTED,
    }
    c
}

/// C → CM event; `None` for an unknown kind or address family.
pub fn cm_event_from_c(c: &NvmfCmEvent) -> Option<CmEvent> {
    let n = (c.private_data_len as usize).min(NVMF_CM_PRIVATE_DATA_MAX);
    let pd = c.private_data[..n].to_vec();
    let kind = match c.kind {
        NVMF_CM_CONNECT_REQUEST => CmEventKind::ConnectRequest {
            listener: ListenerId(c.listener),
            peer: sockaddr_from_c(&c.peer)?,
            param: ConnParam {
                private_data: pd,
                responder_resources: c.responder_resources,
                initiator_depth: c.initiator_depth,
                rnr_retry_count: c.rnr_retry_count,
            },
        },
        NVMF_CM_ESTABLISHED => CmEventKind::Established { private_data: pd },
        NVMF_CM_REJECTED => CmEventKind::Rejected {
            status: c.status,
            private_data: pd,
        },
        NVMF_CM_UNREACHABLE => CmEventKind::Unreachable,
        NVMF_CM_DISCONNECTED => CmEventKind::Disconnected,
        _ => return None,
    };
    Some(CmEvent {
        conn: crate::fabric::ConnId(c.conn),
        kind,
    })
}

/// Builds caps of type `$ty` from `$c` (either layout): the fields both layouts hold under
/// one name and type are copied, `$rest` gives the others. A cap added to both layouts is
/// added here once.
macro_rules! caps_from {
    ($ty:ident, $c:expr, { $($rest:tt)* }) => {
        $ty {
            max_backend_ctrls_total: $c.max_backend_ctrls_total,
            max_srq_backend_ctrls: $c.max_srq_backend_ctrls,
            max_srq_namespaces: $c.max_srq_namespaces,
            max_namespaces: $c.max_namespaces,
            min_staging_buf_size: $c.min_staging_buf_size,
            max_staging_buf_size: $c.max_staging_buf_size,
            max_io_sz: $c.max_io_sz,
            max_nvme_queue_depth: $c.max_nvme_queue_depth,
            min_nvme_queue_depth: $c.min_nvme_queue_depth,
            max_ioccsz: $c.max_ioccsz,
            min_ioccsz: $c.min_ioccsz,
            max_icdoff: $c.max_icdoff,
            min_cmd_timeout_us: $c.min_cmd_timeout_us,
            max_cmd_timeout_us: $c.max_cmd_timeout_us,
            max_frontend_nsid: $c.max_frontend_nsid,
            max_extra_sqs: $c.max_extra_sqs,
            $($rest)*
        }
    };
}

/// Offload caps → C (at most [`NVMF_MAX_LBA_DATA_SIZES`] LBA data sizes, smallest first).
pub fn caps_to_c(c: &NvmfCaps) -> NvmfCapsC {
    let mut sizes = [0u32; NVMF_MAX_LBA_DATA_SIZES];
    let mut n = 0;
    for (d, s) in sizes.iter_mut().zip(c.lba_data_sizes.iter()) {
        *d = *s;
        n += 1;
    }
    caps_from!(NvmfCapsC, c, {
        offload_type_dc: c.offload_type_dc.bits(),
        offload_type_rc: c.offload_type_rc.bits(),
        supports_non_offloaded_ops: u8::from(c.supports_non_offloaded_ops),
        qp_last_nvme_cqe_reached: u8::from(c.qp_last_nvme_cqe_reached),
        num_lba_data_sizes: n,
        lba_data_sizes: sizes,
    })
}

/// C → offload caps.
pub fn caps_from_c(c: &NvmfCapsC) -> NvmfCaps {
    let n = (c.num_lba_data_sizes as usize).min(NVMF_MAX_LBA_DATA_SIZES);
    caps_from!(NvmfCaps, c, {
        offload_type_dc: OffloadType::from_bits_retain(c.offload_type_dc),
        offload_type_rc: OffloadType::from_bits_retain(c.offload_type_rc),
        supports_non_offloaded_ops: c.supports_non_offloaded_ops != 0,
        qp_last_nvme_cqe_reached: c.qp_last_nvme_cqe_reached != 0,
        lba_data_sizes: c.lba_data_sizes[..n].iter().copied().collect::<BTreeSet<_>>(),
    })
}

/// Memory reference → C.
pub fn mem_to_c(m: &MemRef) -> NvmfMrSg {
    NvmfMrSg {
        mr: m.mr.0,
        reserved: 0,
        addr: m.addr,
        len: m.len,
    }
}

/// C → memory reference.
pub fn mem_from_c(c: &NvmfMrSg) -> MemRef {
    MemRef {
        mr: MrId(c.mr),
        addr: c.addr,
        len: c.len,
    }
}

/// NVMe-oF SRQ attributes → C.
pub fn srq_attrs_to_c(a: &NvmfSrqAttrs) -> NvmfSrqAttrsC {
    NvmfSrqAttrsC {
        rq: srq_init_to_c(&a.rq),
        offload_ops: a.offload_ops.bits(),
        max_namespaces: a.max_namespaces,
        ioccsz: a.ioccsz,
        max_io_sz: a.max_io_sz,
        nvme_queue_depth: a.nvme_queue_depth,
        icdoff: a.icdoff,
        nvme_log_page_sz: a.nvme_log_page_sz,
        reserved: 0,
        staging_buf: mem_to_c(&a.staging_buf),
    }
}

/// C → NVMe-oF SRQ attributes.
pub fn srq_attrs_from_c(c: &NvmfSrqAttrsC) -> NvmfSrqAttrs {
    NvmfSrqAttrs {
        rq: srq_init_from_c(&c.rq),
        offload_ops: OffloadOps::from_bits_retain(c.offload_ops),
        max_namespaces: c.max_namespaces,
        nvme_log_page_sz: c.nvme_log_page_sz,
        ioccsz: c.ioccsz,
        icdoff: c.icdoff,
        max_io_sz: c.max_io_sz,
        nvme_queue_depth: c.nvme_queue_depth,
        staging_buf: mem_from_c(&c.staging_buf),
    }
}

/// Created NVMe-oF SRQ → C.
pub fn srq_to_c(s: &NvmfSrq) -> NvmfSrqC {
    NvmfSrqC {
        handle: s.handle.0,
        srq: s.srq.0,
    }
}

/// C → created NVMe-oF SRQ.
pub fn srq_from_c(c: &NvmfSrqC) -> NvmfSrq {
    NvmfSrq {
        handle: SrqHandle(c.handle),
        srq: SrqId(c.srq),
    }
}

/// Namespace mapping → C.
pub fn mapping_to_c(m: &NsMapping) -> NvmfNsMappingC {
    NvmfNsMappingC {
        fe_nsid: m.fe_nsid,
        nvme_nsid: m.nvme_nsid,
        lba_data_size: m.lba_data_size,
    }
}

/// C → namespace mapping.
pub fn mapping_from_c(c: &NvmfNsMappingC) -> NsMapping {
    NsMapping {
        fe_nsid: c.fe_nsid,
        nvme_nsid: c.nvme_nsid,
        lba_data_size: c.lba_data_size,
    }
}

/// Namespace counters → C.
pub fn ns_counters_to_c(k: &NsCounters) -> NvmfNsCountersC {
    NvmfNsCountersC {
        read_cmds: k.read_cmds,
        read_blocks: k.read_blocks,
        write_cmds: k.write_cmds,
        write_blocks: k.write_blocks,
        write_inline_cmds: k.write_inline_cmds,
        write_inline_blocks: k.write_inline_blocks,
        flush_cmds: k.flush_cmds,
        error_cmds: k.error_cmds,
        backend_error_cmds: k.backend_error_cmds,
    }
}

/// C → namespace counters.
pub fn ns_counters_from_c(c: &NvmfNsCountersC) -> NsCounters {
    NsCounters {
        read_cmds: c.read_cmds,
        read_blocks: c.read_blocks,
        write_cmds: c.write_cmds,
        write_blocks: c.write_blocks,
        write_inline_cmds: c.write_inline_cmds,
        write_inline_blocks: c.write_inline_blocks,
        flush_cmds: c.flush_cmds,
        error_cmds: c.error_cmds,
        backend_error_cmds: c.backend_error_cmds,
    }
}

/// SRQ counters → C.
pub fn srq_counters_to_c(k: &SrqCounters) -> NvmfSrqCountersC {
    NvmfSrqCountersC {
        unknown_ns_cmds: k.unknown_ns_cmds,
    }
}

/// C → SRQ counters.
pub fn srq_counters_from_c(c: &NvmfSrqCountersC) -> SrqCounters {
    SrqCounters {
        unknown_ns_cmds: c.unknown_ns_cmds,
    }
}

/// Offload event → C.
pub fn offload_event_to_c(e: &OffloadEvent) -> NvmfOffloadEventC {
    use abi::event as t;
    let mut c = NvmfOffloadEventC::default();
    match e {
        OffloadEvent::QpFatal { qp } => (c.r#type, c.element) = (t::QP_FATAL, qp.0),
        OffloadEvent::QpAccessErr { qp } => (c.r#type, c.element) = (t::QP_ACCESS_ERR, qp.0),
        OffloadEvent::SrqLimitReached { srq } => {
            (c.r#type, c.element) = (t::SRQ_LIMIT_REACHED, srq.0)
        }
        OffloadEvent::QpLastWqeReached { qp } => {
            (c.r#type, c.element) = (t::QP_LAST_WQE_REACHED, qp.0)
        }
        OffloadEvent::NvmePciErr { ctrl } => (c.r#type, c.element) = (t::NVME_PCI_ERR, ctrl.0),
        OffloadEvent::NvmeTimeout { ctrl, sqid, cid } => {
            (c.r#type, c.element) = (t::NVME_TIMEOUT, ctrl.0);
            if let Some(s) = sqid {
                c.flags |= NVMF_EVENT_HAS_SQID;
                c.sqid = *s;
            }
            if let Some(x) = cid {
                c.flags |= NVMF_EVENT_HAS_CID;
                c.cid = *x;
            }
        }
        OffloadEvent::UnsupportedNvmfOp { qp, opcode } => {
            (c.r#type, c.element) = (t::UNSUPPORTED_NVMF_OP, qp.0);
            c.opcode = *opcode;
        }
        OffloadEvent::QpLastNvmeCqeReached { qp } => {
            (c.r#type, c.element) = (t::QP_LAST_NVME_CQE_REACHED, qp.0)
        }
        OffloadEvent::Fabric(ev) => {
            let a = async_event_to_c(ev);
            (c.r#type, c.element) = (a.r#type, a.element);
        }
    }
    c
}

/// C → offload event; `None` for an unknown type.
pub fn offload_event_from_c(c: &NvmfOffloadEventC) -> Option<OffloadEvent> {
    use abi::event as t;
    Some(match c.r#type {
        t::NVME_PCI_ERR => OffloadEvent::NvmePciErr {
            ctrl: CtrlHandle(c.element),
        },
        t::NVME_TIMEOUT => OffloadEvent::NvmeTimeout {
            ctrl: CtrlHandle(c.element),
            sqid: (c.flags & NVMF_EVENT_HAS_SQID != 0).then_some(c.sqid),
            cid: (c.flags & NVMF_EVENT_HAS_CID != 0).then_some(c.cid),
        },
        t::UNSUPPORTED_NVMF_OP => OffloadEvent::UnsupportedNvmfOp {
            qp: QpId(c.element),
            opcode: c.opcode,
        },
        t::QP_LAST_NVME_CQE_REACHED => OffloadEvent::QpLastNvmeCqeReached {
            qp: QpId(c.element),
        },
        _ => OffloadEvent::from_fabric(async_event_from_c(&NvmfAsyncEvent {
            r#type: c.r#type,
            element: c.element,
        })?),
    })
}

#[cfg(test)]
mod tests;
