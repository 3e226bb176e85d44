//! The fabric's and the offload API's values as they will cross a process boundary (two-host
//! mode, issue 19): every call argument and result type serializes to JSON and comes back
//! equal, for any value proptest makes, and so do both kinds of error
//! (`harness::remote::error::ErrorRepr`).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use harness::api::{BackendSq, MemRef, NsMapping, NvmeCtrlAttrs, OffloadError, OffloadEvent};
use harness::fabric::{
    Access, AsyncEvent, CmEvent, CmEventKind, ConnId, ConnParam, CqId, FabricError, Gid,
    ListenerId, MrId, MrInfo, QpAttr, QpCap, QpDest, QpId, QpInit, QpState, RecvWr, SendOp, SendWr,
    Sge, SrqId, SrqInit, WcOpcode, WcStatus, WorkCompletion,
};
use harness::remote::error::ErrorRepr;
use nix::errno::Errno;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(v: &T) {
    let text = serde_json::to_string(v).unwrap();
    assert!(!text.contains('\n'), "one line: {text}");
    let back: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(&back, v, "{text}");
}

fn sge() -> impl Strategy<Value = Sge> {
    (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(addr, length, lkey)| Sge {
        addr,
        length,
        lkey,
    })
}

fn send_op() -> impl Strategy<Value = SendOp> {
    prop_oneof![
        Just(SendOp::Send),
        any::<u32>().prop_map(|rkey| SendOp::SendWithInv { rkey }),
        (any::<u64>(), any::<u32>())
            .prop_map(|(remote_addr, rkey)| SendOp::RdmaWrite { remote_addr, rkey }),
        (any::<u64>(), any::<u32>())
            .prop_map(|(remote_addr, rkey)| SendOp::RdmaRead { remote_addr, rkey }),
    ]
}

fn access() -> impl Strategy<Value = Access> {
    any::<u32>().prop_map(Access::from_bits_truncate)
}

fn wc_status() -> impl Strategy<Value = WcStatus> {
    prop::sample::select(vec![
        WcStatus::Success,
        WcStatus::LocLenErr,
        WcStatus::LocQpOpErr,
        WcStatus::LocProtErr,
        WcStatus::WrFlushErr,
        WcStatus::LocAccessErr,
        WcStatus::RemInvReqErr,
        WcStatus::RemAccessErr,
        WcStatus::RemOpErr,
        WcStatus::RetryExcErr,
        WcStatus::RnrRetryExcErr,
        WcStatus::GeneralErr,
    ])
}

fn qp_state() -> impl Strategy<Value = QpState> {
    prop::sample::select(vec![
        QpState::Reset,
        QpState::Init,
        QpState::Rtr,
        QpState::Rts,
        QpState::Sqd,
        QpState::Sqe,
        QpState::Err,
    ])
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    (any::<u32>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
}

fn conn_param() -> impl Strategy<Value = ConnParam> {
    (
        prop::collection::vec(any::<u8>(), 0..200),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
    )
        .prop_map(|(private_data, r, i, n)| ConnParam {
            private_data,
            responder_resources: r,
            initiator_depth: i,
            rnr_retry_count: n,
        })
}

proptest! {
    #[test]
    fn work_requests(wr_id in any::<u64>(), op in send_op(), sgl in prop::collection::vec(sge(), 0..5), signaled in any::<bool>()) {
        round_trip(&SendWr { wr_id, op, sg_list: sgl.clone(), signaled });
        round_trip(&RecvWr { wr_id, sg_list: sgl });
    }

    #[test]
    fn completions(wr_id in any::<u64>(), status in wc_status(), op in 0..4usize, byte_len in any::<u32>(), qp in any::<u32>(), qpn in any::<u32>(), src in any::<u32>(), inv in any::<Option<u32>>()) {
        let opcode = [WcOpcode::Send, WcOpcode::RdmaWrite, WcOpcode::RdmaRead, WcOpcode::Recv][op];
        round_trip(&WorkCompletion { wr_id, status, opcode, byte_len, qp: QpId(qp), qp_num: qpn, src_qp: src, invalidated_rkey: inv });
    }

    #[test]
    fn memory_regions(id in any::<u32>(), addr in any::<u64>(), len in any::<u64>(), lkey in any::<u32>(), rkey in any::<u32>(), access in access()) {
        round_trip(&MrInfo { id: MrId(id), addr, len, lkey, rkey, access });
    }

    #[test]
    fn queue_pairs(state in qp_state(), port in any::<Option<u8>>(), access in prop::option::of(access()), gid in any::<[u8; 16]>(), qpn in any::<u32>(), dest in any::<bool>(), retry in any::<u8>(), rnr in any::<u8>(), cq in any::<(u32, u32)>(), srq in any::<Option<u32>>(), cap in any::<[u32; 4]>()) {
        round_trip(&QpAttr {
            state,
            port,
            access,
            dest: dest.then_some(QpDest { gid: Gid(gid), qpn }),
            retry_cnt: retry,
            rnr_retry: rnr,
        });
        round_trip(&QpInit {
            send_cq: CqId(cq.0),
            recv_cq: CqId(cq.1),
            srq: srq.map(SrqId),
            cap: QpCap { max_send_wr: cap[0], max_recv_wr: cap[1], max_send_sge: cap[2], max_recv_sge: cap[3] },
        });
        round_trip(&SrqInit { max_wr: cap[0], max_sge: cap[1], srq_limit: cap[2] });
    }

    #[test]
    fn connection_events(conn in any::<u32>(), listener in any::<u32>(), peer in addr(), param in conn_param(), status in any::<u32>(), kind in 0..5usize) {
        let kind = match kind {
            0 => CmEventKind::ConnectRequest { listener: ListenerId(listener), peer, param },
            1 => CmEventKind::Established { private_data: param.private_data },
            2 => CmEventKind::Rejected { status, private_data: param.private_data },
            3 => CmEventKind::Unreachable,
            _ => CmEventKind::Disconnected,
        };
        round_trip(&CmEvent { conn: ConnId(conn), kind });
    }

    #[test]
    fn async_events(id in any::<u32>(), port in any::<u8>(), kind in 0..12usize) {
        let e = match kind {
            0 => AsyncEvent::CqErr(CqId(id)),
            1 => AsyncEvent::QpFatal(QpId(id)),
            2 => AsyncEvent::QpReqErr(QpId(id)),
            3 => AsyncEvent::QpAccessErr(QpId(id)),
            4 => AsyncEvent::CommEst(QpId(id)),
            5 => AsyncEvent::SqDrained(QpId(id)),
            6 => AsyncEvent::QpLastWqeReached(QpId(id)),
            7 => AsyncEvent::SrqLimitReached(SrqId(id)),
            8 => AsyncEvent::SrqErr(SrqId(id)),
            9 => AsyncEvent::PortActive(port),
            10 => AsyncEvent::PortErr(port),
            _ => AsyncEvent::DeviceFatal,
        };
        round_trip(&e);
        round_trip(&OffloadEvent::from_fabric(e));
    }

    #[test]
    fn controller_attributes(refs in prop::collection::vec(any::<(u32, u64, u64)>(), 4..10), ini in any::<(u16, u16, u32)>()) {
        let m = |(mr, addr, len): (u32, u64, u64)| MemRef { mr: MrId(mr), addr, len };
        round_trip(&NvmeCtrlAttrs {
            sq_buf: m(refs[0]),
            cq_buf: m(refs[1]),
            sqdb: m(refs[2]),
            cqdb: m(refs[3]),
            sqdb_ini: ini.0,
            cqdb_ini: ini.1,
            cmd_timeout_us: ini.2,
            extra_sqs: refs[4..].chunks(2).map(|c| BackendSq { buf: m(c[0]), db: m(c[c.len() - 1]), db_ini: ini.0 }).collect(),
        });
        round_trip(&NsMapping { fe_nsid: ini.2, nvme_nsid: refs[0].0, lba_data_size: refs[1].0 });
    }

    /// Any errno and any reason text: the error that comes back says the same.
    #[test]
    fn errors(errno in 1..134i32, reason in "[a-z_ ]{1,40}") {
        let e = OffloadError::from_errno(Errno::from_raw(errno), Box::leak(reason.clone().into_boxed_str()));
        let repr: ErrorRepr = serde_json::from_str(&serde_json::to_string(&ErrorRepr::from(&e)).unwrap()).unwrap();
        let back = OffloadError::from(&repr);
        prop_assert_eq!(back.errno(), e.errno());
        prop_assert_eq!(back.to_string(), e.to_string());
        let f = FabricError::from(&repr);
        prop_assert_eq!(f.errno(), Errno::from_raw(errno));
        let again = FabricError::from(&ErrorRepr::from(&f));
        prop_assert_eq!(again.to_string(), f.to_string());
    }
}
