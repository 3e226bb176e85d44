//! Tests of `convert`.

use super::*;

#[test]
fn events_round_trip() {
    let evs = [
        OffloadEvent::NvmePciErr {
            ctrl: CtrlHandle(3),
        },
        OffloadEvent::NvmeTimeout {
            ctrl: CtrlHandle(1),
            sqid: None,
            cid: Some(7),
        },
        OffloadEvent::UnsupportedNvmfOp {
            qp: QpId(2),
            opcode: 9,
        },
        OffloadEvent::QpLastNvmeCqeReached { qp: QpId(4) },
        OffloadEvent::QpFatal { qp: QpId(5) },
        OffloadEvent::SrqLimitReached { srq: SrqId(6) },
        OffloadEvent::Fabric(AsyncEvent::CqErr(CqId(1))),
        OffloadEvent::Fabric(AsyncEvent::PortErr(1)),
        OffloadEvent::Fabric(AsyncEvent::DeviceFatal),
    ];
    for e in evs {
        assert_eq!(
            offload_event_from_c(&offload_event_to_c(&e)),
            Some(e.clone())
        );
    }
}

#[test]
fn caps_round_trip() {
    let c = NvmfCaps::typical();
    assert_eq!(caps_from_c(&caps_to_c(&c)), c);
}

#[test]
fn wc_and_cm_round_trip() {
    let w = WorkCompletion {
        wr_id: 9,
        status: WcStatus::RemAccessErr,
        opcode: WcOpcode::Recv,
        byte_len: 64,
        qp: QpId(3),
        qp_num: 0x11,
        src_qp: 0x12,
        invalidated_rkey: Some(77),
    };
    assert_eq!(wc_from_c(&wc_to_c(&w)), Some(w));
    let e = CmEvent {
        conn: crate::fabric::ConnId(2),
        kind: CmEventKind::ConnectRequest {
            listener: ListenerId(1),
            peer: "127.0.10.2:4420".parse().unwrap(),
            param: ConnParam {
                private_data: vec![1, 2, 3],
                responder_resources: 4,
                initiator_depth: 5,
                rnr_retry_count: 7,
            },
        },
    };
    assert_eq!(cm_event_from_c(&cm_event_to_c(&e)), Some(e));
    let a = QpAttr::rtr(QpDest {
        gid: Gid([7; 16]),
        qpn: 5,
    });
    assert_eq!(qp_attr_from_c(&qp_attr_to_c(&a)), Some(a));
}
