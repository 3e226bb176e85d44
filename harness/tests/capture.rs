//! `harness::capture`: RoCEv2 pcap captures of the simulated fabric.
//!
//! A small scripted NVMe-oF exchange (CM connect with the NVMe-oF private data, a Fabrics
//! Connect capsule whose data the target RDMA-READs, a write and a read command with their
//! data moved by RDMA READ / WRITE, responses by SEND and SEND with invalidate) is captured
//! and checked: frame structure, BTH fields, PSNs, the ICRC against an independent bitwise
//! CRC-32, determinism, and — when `tshark` is installed — Wireshark's NVMe-oF decode.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use harness::capture::roce::{self, opcode};
use harness::capture::{cm, Capture, Frame};
use harness::fabric::sim::SimFabric;
use harness::fabric::wait;
use harness::fabric::{
    Access, CmEventKind, ConnParam, DeviceContext, Fabric, Gid, MrInfo, QpAttr, QpCap, QpDest,
    QpId, QpInit, RecvWr, SendOp, SendWr, WcOpcode, WcStatus,
};
use harness::initiator::misbehave;
use harness::wire::{
    CmAcceptRepr, CmRequestRepr, ConnectRepr, CqeRepr, FabricsRepr, Psdt, SglRepr, Status,
    CONNECT_DATA_LEN,
};

const BOUND: Duration = Duration::from_secs(5);
const WRITE_LEN: u32 = 12 * 512; // two packets at MTU 4096
const READ_LEN: u32 = 10 * 512; // two packets

fn target_addr() -> SocketAddr {
    "127.0.10.1:4420".parse().unwrap()
}

fn qp_init(cq: harness::fabric::CqId) -> QpInit {
    QpInit {
        send_cq: cq,
        recv_cq: cq,
        srq: None,
        cap: QpCap {
            max_send_wr: 16,
            max_recv_wr: 16,
            max_send_sge: 1,
            max_recv_sge: 1,
        },
    }
}

/// The scenario's CM parameters: `private_data`, the RDMA read depths given, RNR retry 7.
fn conn_param(private_data: &[u8], responder_resources: u8, initiator_depth: u8) -> ConnParam {
    ConnParam {
        private_data: private_data.to_vec(),
        responder_resources,
        initiator_depth,
        rnr_retry_count: 7,
    }
}

/// Posts four receives on `qp`, work requests `first_wr_id..`, each of `len` bytes of `mr`
/// one after the other.
fn post_recvs(ctx: &Arc<dyn DeviceContext>, qp: QpId, mr: &MrInfo, first_wr_id: u64, len: u32) {
    for i in 0..4u64 {
        let wr = RecvWr {
            wr_id: first_wr_id + i,
            sg_list: vec![mr.sge(i * u64::from(len), len)],
        };
        ctx.post_recv(qp, &wr).unwrap();
    }
}

/// One command of the scenario: capsule, CID, the target's data transfer and its length,
/// the rkey the response invalidates.
type Step<'a> = (&'a [u8], u16, SendOp, u32, Option<u32>);

/// Waits for the next completion on `cq` and checks it succeeded.
async fn done(ctx: &Arc<dyn DeviceContext>, cq: harness::fabric::CqId, op: WcOpcode) -> u32 {
    loop {
        let wc = wait::completion(ctx.as_ref(), cq, BOUND).await.unwrap();
        assert_eq!(wc.status, WcStatus::Success, "{wc:?}");
        if wc.opcode == op {
            return wc.byte_len;
        }
    }
}

/// Runs the scenario on a fresh fabric with `seed`; returns the capture.
async fn scenario(seed: u64) -> Capture {
    scenario_ending(seed, false).await
}

/// The scenario; with `disconnect`, the host then disconnects and both sides see it.
async fn scenario_ending(seed: u64, disconnect: bool) -> Capture {
    let fabric = SimFabric::new(seed);
    let capture = Capture::new();
    capture.attach(&fabric);

    let target = fabric.open("sim0").unwrap();
    let host = fabric.open("sim1").unwrap();
    target.cm_listen(target_addr()).unwrap();

    // Host side: QP, data region (remote read/write), command and response buffers.
    let hpd = host.alloc_pd().unwrap();
    let hcq = host.create_cq(64).unwrap();
    let hqp = host.create_qp(hpd, qp_init(hcq)).unwrap();
    let rw = Access::LOCAL_WRITE | Access::REMOTE_READ | Access::REMOTE_WRITE;
    let hdata: MrInfo = host.reg_mr(hpd, 16384, rw).unwrap();
    let hcmd = host.reg_mr(hpd, 4096, Access::LOCAL_WRITE).unwrap();
    let hresp = host.reg_mr(hpd, 4096, Access::LOCAL_WRITE).unwrap();

    // CM: the NVMe-oF RDMA CM request (admin queue) and accept.
    let req = CmRequestRepr {
        recfmt: 0,
        qid: 1,
        hrqsize: 32,
        hsqsize: 31,
        cntlid: 0xffff,
    };
    let conn = host
        .cm_connect(target_addr(), hqp.id, &conn_param(&req.to_bytes(), 16, 0))
        .unwrap();
    let ev = wait::cm_event(target.as_ref(), BOUND).await.unwrap();
    let CmEventKind::ConnectRequest { .. } = ev.kind else {
        panic!("expected a connect request, got {ev:?}");
    };
    let tpd = target.alloc_pd().unwrap();
    let tcq = target.create_cq(64).unwrap();
    let tqp = target.create_qp(tpd, qp_init(tcq)).unwrap();
    let trecv = target.reg_mr(tpd, 8192, Access::LOCAL_WRITE).unwrap();
    let tbuf = target.reg_mr(tpd, 16384, Access::LOCAL_WRITE).unwrap();
    let acc = CmAcceptRepr {
        recfmt: 0,
        crqsize: 32,
    };
    target
        .cm_accept(ev.conn, tqp.id, &conn_param(&acc.to_bytes(), 0, 16))
        .unwrap();
    // Both QPs are in RTS once accepted: receives go up before any SEND can arrive.
    post_recvs(&target, tqp.id, &trecv, 200, 1024);
    let ev = wait::cm_event(host.as_ref(), BOUND).await.unwrap();
    assert_eq!(ev.conn, conn);
    assert!(matches!(ev.kind, CmEventKind::Established { .. }), "{ev:?}");
    post_recvs(&host, hqp.id, &hresp, 100, 16);
    // The target's RTU.
    let ev = wait::cm_event(target.as_ref(), BOUND).await.unwrap();
    assert!(matches!(ev.kind, CmEventKind::Established { .. }), "{ev:?}");

    // Three commands: Connect (data RDMA-READ by the target), Write (data READ), Read
    // (data RDMA-WRITTEN, response with invalidate).
    let connect = FabricsRepr::Connect(ConnectRepr {
        psdt: Psdt::SglMptrContiguous,
        cid: 1,
        sgl1: SglRepr::keyed(hdata.addr, CONNECT_DATA_LEN as u32, hdata.rkey),
        recfmt: 0,
        qid: 1,
        sqsize: 31,
        cattr: 0,
        kato: 0,
    })
    .to_bytes()
    .unwrap();
    let write = misbehave::write_sqe(
        2,
        1,
        0,
        WRITE_LEN / 512,
        SglRepr::keyed(hdata.addr, WRITE_LEN, hdata.rkey),
    )
    .unwrap();
    let read = misbehave::read_sqe(
        3,
        1,
        0,
        READ_LEN / 512,
        SglRepr::keyed_invalidate(hdata.addr + 8192, READ_LEN, hdata.rkey),
    )
    .unwrap();
    host.mr_write(hdata.id, 0, &[0x5a; 8192]).unwrap();
    let steps: [Step; 3] = [
        (
            &connect,
            1,
            SendOp::RdmaRead {
                remote_addr: hdata.addr,
                rkey: hdata.rkey,
            },
            CONNECT_DATA_LEN as u32,
            None,
        ),
        (
            &write,
            2,
            SendOp::RdmaRead {
                remote_addr: hdata.addr,
                rkey: hdata.rkey,
            },
            WRITE_LEN,
            None,
        ),
        (
            &read,
            3,
            SendOp::RdmaWrite {
                remote_addr: hdata.addr + 8192,
                rkey: hdata.rkey,
            },
            READ_LEN,
            Some(hdata.rkey),
        ),
    ];
    for (i, (sqe, cid, op, len, inv)) in steps.into_iter().enumerate() {
        let off = i as u64 * 64;
        host.mr_write(hcmd.id, off, sqe).unwrap();
        let wr = SendWr::new(cid.into(), SendOp::Send, vec![hcmd.sge(off, 64)]);
        host.post_send(hqp.id, &wr).unwrap();
        assert_eq!(done(&target, tcq, WcOpcode::Recv).await, 64);
        // The data transfer.
        let wr = SendWr::new(7, op, vec![tbuf.sge(0, len)]);
        target.post_send(tqp.id, &wr).unwrap();
        let want = match op {
            SendOp::RdmaRead { .. } => WcOpcode::RdmaRead,
            _ => WcOpcode::RdmaWrite,
        };
        done(&target, tcq, want).await;
        // The response.
        let cqe = CqeRepr {
            result: if cid == 1 { 1 } else { 0 },
            sq_head: cid,
            sq_id: 1,
            cid,
            phase: false,
            status: Status::SUCCESS,
        }
        .to_bytes()
        .unwrap();
        let roff = 4096 + i as u64 * 16;
        target.mr_write(tbuf.id, roff, &cqe).unwrap();
        let sop = match inv {
            Some(rkey) => SendOp::SendWithInv { rkey },
            None => SendOp::Send,
        };
        let wr = SendWr::new(8, sop, vec![tbuf.sge(roff, 16)]);
        target.post_send(tqp.id, &wr).unwrap();
        done(&target, tcq, WcOpcode::Send).await;
        assert_eq!(done(&host, hcq, WcOpcode::Recv).await, 16);
    }
    // Let the last ACKs land.
    tokio::time::sleep(Duration::from_millis(5)).await;
    if disconnect {
        host.cm_disconnect(conn).unwrap();
        for ctx in [&target, &host] {
            let ev = wait::cm_event(ctx.as_ref(), BOUND).await.unwrap();
            assert!(matches!(ev.kind, CmEventKind::Disconnected), "{ev:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    capture.detach(&fabric);
    capture
}

#[tokio::test(start_paused = true)]
async fn a_dreq_is_answered_with_a_drep() {
    let capture = scenario_ending(3, true).await;
    let frames = capture.frames();
    let mads: Vec<(u16, u64, u32, u32, [u8; 4])> = frames
        .iter()
        .filter(|f| bth(f).0 == opcode::UD_SEND_ONLY)
        .map(|f| {
            let mad = &f.data[roce::BTH_OFFSET + 12 + 8..];
            let d = &mad[cm::MAD_HEADER_LEN..];
            let src: [u8; 4] = f.data[26..30].try_into().unwrap();
            (
                u16::from_be_bytes([mad[16], mad[17]]),
                u64::from_be_bytes(mad[8..16].try_into().unwrap()),
                u32::from_be_bytes(d[0..4].try_into().unwrap()),
                u32::from_be_bytes(d[4..8].try_into().unwrap()),
                src,
            )
        })
        .collect();
    let attrs: Vec<u16> = mads.iter().map(|m| m.0).collect();
    assert_eq!(
        attrs,
        vec![
            cm::ATTR_REQ,
            cm::ATTR_REP,
            cm::ATTR_RTU,
            cm::ATTR_DREQ,
            cm::ATTR_DREP
        ],
        "one DREQ, answered by one DREP"
    );
    let (dreq, drep) = (mads[3], mads[4]);
    assert_eq!(drep.1, dreq.1, "the DREP carries the DREQ's transaction ID");
    assert_eq!(
        (drep.2, drep.3),
        (dreq.3, dreq.2),
        "the DREP's local and remote communication IDs are the DREQ's, swapped"
    );
    assert_ne!(drep.4, dreq.4, "the DREP comes from the DREQ's receiver");
}

/// An independent, bitwise CRC-32 (IEEE 802.3, reflected) of `data`.
fn crc32_bitwise(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The ICRC of a frame recomputed from the RoCEv2 annex's masking rules.
fn icrc_independent(frame: &[u8]) -> u32 {
    let body = &frame[14..frame.len() - 4];
    let mut p = vec![0xffu8; 8];
    p.extend_from_slice(body);
    let (ip, udp, bth) = (8, 8 + 20, 8 + 28);
    p[ip + 1] = 0xff; // TOS
    p[ip + 8] = 0xff; // TTL
    p[ip + 10] = 0xff; // header checksum
    p[ip + 11] = 0xff;
    p[udp + 6] = 0xff; // UDP checksum
    p[udp + 7] = 0xff;
    p[bth + 4] = 0xff; // BTH reserved byte
    crc32_bitwise(&p)
}

fn bth(f: &Frame) -> (u8, u32, u32, bool) {
    let b = &f.data[roce::BTH_OFFSET..];
    let qp = u32::from_be_bytes([0, b[5], b[6], b[7]]);
    let psn = u32::from_be_bytes([0, b[9], b[10], b[11]]);
    (b[0], qp, psn, b[8] & 0x80 != 0)
}

#[test]
fn crc_vectors() {
    // The standard check value, both implementations.
    assert_eq!(crc32_bitwise(b"123456789"), 0xcbf4_3926);
    // CRC of eight 0xFF bytes without the final inversion: the constant rxe seeds with.
    assert_eq!(!crc32_bitwise(&[0xff; 8]), 0xdebb_20e3);
}

#[tokio::test(start_paused = true)]
async fn frames_are_well_formed_rocev2() {
    let cap = scenario(1).await;
    let frames = cap.frames();
    assert!(frames.len() >= 20, "{} frames", frames.len());
    let mut last_at = Duration::ZERO;
    for f in &frames {
        let d = &f.data;
        assert!(f.at >= last_at, "time order");
        last_at = f.at;
        assert_eq!(&d[12..14], &[0x08, 0x00], "IPv4 ethertype");
        assert_eq!(d[0], 0x02, "locally administered destination MAC");
        assert_eq!(d[14], 0x45);
        let ip_len = usize::from(u16::from_be_bytes([d[16], d[17]]));
        assert_eq!(ip_len, d.len() - 14, "IPv4 total length");
        assert_eq!(d[23], 17, "UDP");
        assert_eq!(
            roce::ipv4_checksum(&d[14..34]),
            u16::from_be_bytes([d[24], d[25]])
        );
        assert_eq!(u16::from_be_bytes([d[36], d[37]]), 4791, "RoCEv2 port");
        let udp_len = usize::from(u16::from_be_bytes([d[38], d[39]]));
        assert_eq!(udp_len, d.len() - 34, "UDP length");
        assert_eq!((d.len() - roce::BTH_OFFSET - 4) % 4, 0, "padded to 4 bytes");
        let icrc = u32::from_le_bytes(d[d.len() - 4..].try_into().unwrap());
        assert_eq!(icrc, icrc_independent(d), "ICRC of {:02x?}", &d[..64]);
        assert_eq!(icrc, roce::icrc(&d[14..d.len() - 4]));
    }

    // The CM exchange: REQ, REP, RTU as UD SEND_ONLY MADs to QP1.
    let cms: Vec<&Frame> = frames
        .iter()
        .filter(|f| bth(f).0 == opcode::UD_SEND_ONLY)
        .collect();
    assert_eq!(cms.len(), 3);
    let attr = |f: &Frame| {
        let mad = &f.data[roce::BTH_OFFSET + 12 + 8..];
        assert_eq!(mad.len(), cm::MAD_LEN + 4);
        assert_eq!((mad[0], mad[1], mad[2]), (1, cm::MGMT_CLASS_CM, 2));
        u16::from_be_bytes([mad[16], mad[17]])
    };
    let attrs: Vec<u16> = cms.iter().map(|f| attr(f)).collect();
    assert_eq!(attrs, vec![cm::ATTR_REQ, cm::ATTR_REP, cm::ATTR_RTU]);
    let req = &cms[0].data;
    assert_eq!(req.len(), 14 + 20 + 8 + 12 + 8 + 256 + 4);
    assert_eq!(bth(cms[0]).1, 1, "to QP1");
    let d = &req[roce::BTH_OFFSET + 20 + cm::MAD_HEADER_LEN..];
    assert_eq!(
        u64::from_be_bytes(d[8..16].try_into().unwrap()),
        0x0000_0000_0106_0000 | 4420,
        "service ID"
    );
    let private = &d[cm::REQ_PRIVATE_OFFSET + cm::CMA_HDR_LEN..];
    let want = CmRequestRepr {
        recfmt: 0,
        qid: 1,
        hrqsize: 32,
        hsqsize: 31,
        cntlid: 0xffff,
    }
    .to_bytes();
    assert_eq!(&private[..want.len()], &want);
    let req_qpn = u32::from_be_bytes([0, d[32], d[33], d[34]]);
    let req_psn = u32::from_be_bytes([0, d[44], d[45], d[46]]);

    // The host's first SEND (the Connect capsule): SEND_ONLY of 64 bytes, PSN as announced.
    let rc: Vec<&Frame> = frames
        .iter()
        .filter(|f| bth(f).0 != opcode::UD_SEND_ONLY)
        .collect();
    let (op, _, psn, ack_req) = bth(rc[0]);
    assert_eq!(op, opcode::RC_SEND_ONLY);
    assert_eq!(psn, req_psn);
    assert!(ack_req);
    assert_eq!(rc[0].data.len(), roce::BTH_OFFSET + 12 + 64 + 4);
    assert_eq!(rc[0].data[roce::BTH_OFFSET + 12], 0x7f, "Fabrics opcode");
    // Its ACK comes back to the host's QP with the same PSN.
    let ack = rc
        .iter()
        .find(|f| bth(f).0 == opcode::RC_ACKNOWLEDGE && bth(f).1 == req_qpn)
        .unwrap();
    assert_eq!(bth(ack).2, req_psn);

    // The 6144-byte write's data: READ request, then READ response FIRST + LAST with
    // consecutive PSNs; the requester's next PSN skips both.
    let reads: Vec<&&Frame> = rc
        .iter()
        .filter(|f| bth(f).0 == opcode::RC_RDMA_READ_REQUEST)
        .collect();
    assert_eq!(reads.len(), 2);
    let r = &reads[1].data[roce::BTH_OFFSET + 12..];
    assert_eq!(
        u32::from_be_bytes(r[12..16].try_into().unwrap()),
        WRITE_LEN,
        "RETH length"
    );
    let (_, _, rpsn, _) = bth(reads[1]);
    let first = rc
        .iter()
        .filter(|f| bth(f).0 == opcode::RC_RDMA_READ_RESPONSE_FIRST)
        .collect::<Vec<_>>();
    assert_eq!(first.len(), 1);
    assert_eq!(bth(first[0]).2, rpsn);
    assert_eq!(first[0].data.len(), roce::BTH_OFFSET + 12 + 4 + 4096 + 4);
    let last = rc
        .iter()
        .find(|f| bth(f).0 == opcode::RC_RDMA_READ_RESPONSE_LAST)
        .unwrap();
    assert_eq!(bth(last).2, rpsn + 1);
    assert_eq!(last.data.len(), roce::BTH_OFFSET + 12 + 4 + 2048 + 4);
    // The read's data: RDMA WRITE FIRST (with RETH) + LAST.
    let wf = rc
        .iter()
        .find(|f| bth(f).0 == opcode::RC_RDMA_WRITE_FIRST)
        .unwrap();
    assert_eq!(wf.data.len(), roce::BTH_OFFSET + 12 + 16 + 4096 + 4);
    let wl = rc
        .iter()
        .find(|f| bth(f).0 == opcode::RC_RDMA_WRITE_LAST)
        .unwrap();
    assert_eq!(bth(wl).2, bth(wf).2 + 1);
    assert!(bth(wl).3 && !bth(wf).3, "AckReq on the last packet only");
    // The target's responses: SEND_ONLY twice, then SEND_ONLY_WITH_INVALIDATE with IETH.
    let inv = rc
        .iter()
        .find(|f| bth(f).0 == opcode::RC_SEND_ONLY_WITH_INVALIDATE)
        .unwrap();
    assert_eq!(inv.data.len(), roce::BTH_OFFSET + 12 + 4 + 16 + 4);
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_bytes() {
    let a = scenario(42).await.to_pcap_bytes().unwrap();
    let b = scenario(42).await.to_pcap_bytes().unwrap();
    assert_eq!(a, b);
    let c = scenario(43).await.to_pcap_bytes().unwrap();
    assert_eq!(a.len(), c.len(), "same exchange, other seed: same frames");
    // pcap header: little-endian nanosecond magic, LINKTYPE_ETHERNET.
    assert_eq!(&a[..4], &0xa1b2_3c4du32.to_le_bytes());
    assert_eq!(u32::from_le_bytes(a[20..24].try_into().unwrap()), 1);
}

#[tokio::test(start_paused = true)]
async fn tshark_decodes_nvme_over_rdma() {
    let Ok(out) = std::process::Command::new("tshark")
        .arg("--version")
        .output()
    else {
        eprintln!("SKIPPED: tshark not installed");
        return;
    };
    if !out.status.success() {
        eprintln!("SKIPPED: tshark not installed");
        return;
    }
    let cap = scenario(5).await;
    let dir = std::env::temp_dir().join(format!("nvmf-conform-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scenario.pcap");
    cap.write_pcap(&path).unwrap();
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&path)
        .arg("-V")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // RoCEv2 is decoded on UDP 4791 by default; the nvme-rdma dissector takes the queue
    // from the CM request (RDMA_PS_TCP port 4420) and decodes the capsules and transfers.
    for want in [
        "CM ConnectRequest",
        "IP CM Destination IP: 127.0.10.1",
        "RDMA QP Controller Receive Queue Size: 32",
        "NVM Express Fabrics RDMA",
        "[Cmd Qid: 1 (IOQ)]",
        "Fabric Command Type: Connect (0x01)",
        "Opcode: 0x01 Write",
        "Opcode: 0x02 Read",
        "RDMA Read Request Sent to Host",
        "RDMA Write Request Sent to Host",
        "[Previous Read Transfer:",
    ] {
        assert!(text.contains(want), "tshark output lacks {want:?}:\n{text}");
    }
}

/// One side of a raw pair: its context, QP, CQ and region.
type RawSide = (
    Arc<dyn DeviceContext>,
    harness::fabric::QpInfo,
    harness::fabric::CqId,
    MrInfo,
);

/// A fabric seeded with `seed`, captured from the start, and a raw pair on it.
async fn captured_raw_pair(seed: u64) -> (Arc<SimFabric>, Capture, [RawSide; 2]) {
    let fabric = SimFabric::new(seed);
    let capture = Capture::new();
    capture.attach(&fabric);
    let pair = raw_pair(&fabric).await;
    (fabric, capture, pair)
}

/// Two QPs on sim0 / sim1 connected by hand (no CM), each with a CQ and a 64 KiB region.
async fn raw_pair(fabric: &Arc<SimFabric>) -> [RawSide; 2] {
    let a = fabric.open("sim0").unwrap();
    let b = fabric.open("sim1").unwrap();
    let side = |ctx: &Arc<dyn DeviceContext>| {
        let pd = ctx.alloc_pd().unwrap();
        let cq = ctx.create_cq(64).unwrap();
        let qp = ctx.create_qp(pd, qp_init(cq)).unwrap();
        let mr = ctx
            .reg_mr(pd, 65536, Access::LOCAL_WRITE | Access::REMOTE_WRITE)
            .unwrap();
        (ctx.clone(), qp, cq, mr)
    };
    let (sa, sb) = (side(&a), side(&b));
    for ((ctx, qp, ..), (_, peer, ..), ip) in [
        (&sa, &sb, harness::fabric::sim::SIM1_ADDR),
        (&sb, &sa, harness::fabric::sim::SIM0_ADDR),
    ] {
        let rw = Access::LOCAL_WRITE | Access::REMOTE_WRITE;
        ctx.modify_qp(qp.id, &QpAttr::init(1, rw)).unwrap();
        let dest = QpDest {
            gid: Gid::from_ipv4(ip),
            qpn: peer.qpn,
        };
        ctx.modify_qp(qp.id, &QpAttr::rtr(dest)).unwrap();
        ctx.modify_qp(qp.id, &QpAttr::rts(7, 7)).unwrap();
    }
    [sa, sb]
}

/// The AETH syndrome of an ACKNOWLEDGE frame.
fn aeth_syndrome(f: &Frame) -> u8 {
    f.data[roce::BTH_OFFSET + 12]
}

#[tokio::test(start_paused = true)]
async fn rnr_retransmission_keeps_its_psn_and_naks_are_captured() {
    let (_fabric, capture, [(a, aqp, acq, amr), (b, bqp, bcq, bmr)]) = captured_raw_pair(3).await;
    // No receive posted at b: RNR NAKs until one is.
    let wr = SendWr::new(1, SendOp::Send, vec![amr.sge(0, 100)]);
    a.post_send(aqp.id, &wr).unwrap();
    tokio::time::sleep(Duration::from_millis(3)).await;
    let recv = RecvWr {
        wr_id: 9,
        sg_list: vec![bmr.sge(0, 4096)],
    };
    b.post_recv(bqp.id, &recv).unwrap();
    assert_eq!(done(&b, bcq, WcOpcode::Recv).await, 100);
    done(&a, acq, WcOpcode::Send).await;
    // An RDMA WRITE with a key b never gave: NAK remote access error.
    let bad = SendOp::RdmaWrite {
        remote_addr: bmr.addr,
        rkey: bmr.rkey ^ 0x55,
    };
    a.post_send(aqp.id, &SendWr::new(2, bad, vec![amr.sge(0, 8)]))
        .unwrap();
    let wc = wait::completion(a.as_ref(), acq, BOUND).await.unwrap();
    assert_eq!(wc.status, WcStatus::RemAccessErr);
    tokio::time::sleep(Duration::from_millis(1)).await;

    let frames = capture.frames();
    let sends: Vec<&Frame> = frames
        .iter()
        .filter(|f| bth(f).0 == opcode::RC_SEND_ONLY)
        .collect();
    assert!(sends.len() >= 2, "retransmitted: {}", sends.len());
    let psn = bth(sends[0]).2;
    assert!(sends.iter().all(|f| bth(f).2 == psn), "same PSN");
    assert_eq!(sends[0].data.len(), roce::BTH_OFFSET + 12 + 100 + 4);
    assert_eq!(
        sends[0].data[roce::BTH_OFFSET + 1] >> 4 & 3,
        0,
        "no pad for 100"
    );
    let acks: Vec<&Frame> = frames
        .iter()
        .filter(|f| bth(f).0 == opcode::RC_ACKNOWLEDGE)
        .collect();
    let syndromes: Vec<u8> = acks.iter().map(|f| aeth_syndrome(f)).collect();
    assert_eq!(syndromes.len(), sends.len() + 1, "{syndromes:02x?}");
    assert!(syndromes[..sends.len() - 1]
        .iter()
        .all(|s| *s == roce::syndrome::RNR_NAK));
    assert_eq!(syndromes[sends.len() - 1], roce::syndrome::ACK);
    assert_eq!(bth(acks[sends.len() - 1]).2, psn);
    assert_eq!(
        *syndromes.last().unwrap(),
        roce::syndrome::NAK_REMOTE_ACCESS
    );
    // The WRITE took the next PSN; its NAK names it.
    let w = frames
        .iter()
        .find(|f| bth(f).0 == opcode::RC_RDMA_WRITE_ONLY)
        .unwrap();
    assert_eq!(bth(w).2, (psn + 1) & 0xff_ffff);
    assert_eq!(bth(acks.last().unwrap()).2, bth(w).2);
    // An 8-byte payload: no pad; 100 bytes: none either; ICRCs hold everywhere.
    for f in &frames {
        let icrc = u32::from_le_bytes(f.data[f.data.len() - 4..].try_into().unwrap());
        assert_eq!(icrc, icrc_independent(&f.data));
    }
}

#[tokio::test(start_paused = true)]
async fn odd_lengths_are_padded_and_bad_paths_are_errors() {
    let (_fabric, capture, [(a, aqp, acq, amr), (b, bqp, bcq, bmr)]) = captured_raw_pair(4).await;
    let recv = RecvWr {
        wr_id: 9,
        sg_list: vec![bmr.sge(0, 4096)],
    };
    b.post_recv(bqp.id, &recv).unwrap();
    a.post_send(aqp.id, &SendWr::new(1, SendOp::Send, vec![amr.sge(0, 13)]))
        .unwrap();
    assert_eq!(done(&b, bcq, WcOpcode::Recv).await, 13);
    done(&a, acq, WcOpcode::Send).await;
    let f = capture
        .frames()
        .into_iter()
        .find(|f| bth(f).0 == opcode::RC_SEND_ONLY)
        .unwrap();
    assert_eq!((f.data[roce::BTH_OFFSET + 1] >> 4) & 3, 3, "pad count");
    assert_eq!(f.data.len(), roce::BTH_OFFSET + 12 + 16 + 4);
    assert_eq!(
        icrc_independent(&f.data),
        u32::from_le_bytes(f.data[f.data.len() - 4..].try_into().unwrap())
    );
    let err = capture
        .write_pcap("/nonexistent-dir/x/capture.pcap")
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent-dir/x/capture.pcap"),
        "{err}"
    );
}
