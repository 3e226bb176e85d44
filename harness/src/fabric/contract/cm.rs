//! The connection manager: listen, connect, accept, reject, disconnect, and data over it.
//!
//! Private data is compared as "the bytes sent, then zeros": real RDMA CM over IB/RoCE
//! delivers the whole private-data field of the CM message (56 bytes of a REQ, 196 of a
//! REP, 148 of a REJ), zero-padded.

use std::net::{IpAddr, SocketAddr};

use nix::errno::Errno;

use super::{
    all_remote, check_bytes, check_private_data, contract_case, expect_errno, pattern, rdma_read,
    rdma_write, CaseResult, Context, ContractCase, Env, Failure, Side, BOUND, FOREIGN_ADDR,
};
use crate::fabric::{
    Access, CmEventKind, ConnId, ConnParam, ListenerId, QpAttr, QpCap, QpState, WcOpcode,
    CM_REJ_CONSUMER_DEFINED, CM_REJ_INVALID_SERVICE_ID, CM_REJ_PRIVATE_DATA_MAX,
    CM_REP_PRIVATE_DATA_MAX, CM_REQ_PRIVATE_DATA_MAX,
};
use crate::{check, check_eq, fail};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "cm.listen.twice-eaddrinuse",
            "cm",
            &[],
            "listening twice on the same address fails with EADDRINUSE",
            listen_twice
        ),
        contract_case!(
            "cm.listen.foreign-addr-eaddrnotavail",
            "cm",
            &[],
            "listening on an address no port owns fails with EADDRNOTAVAIL",
            listen_foreign
        ),
        contract_case!(
            "cm.listen.close-reuse",
            "cm",
            &[],
            "after cm_close_listener the address can be listened on again",
            listen_close_reuse
        ),
        contract_case!(
            "cm.listen.wildcard",
            "cm",
            &[],
            "a listener on 0.0.0.0 gets requests sent to the device's address",
            listen_wildcard
        ),
        contract_case!(
            "cm.connect.private-data-in-request",
            "cm",
            &[],
            "32 bytes of connect private data arrive in the ConnectRequest, with the peer address",
            connect_private_data
        ),
        contract_case!(
            "cm.poll.queued-request",
            "cm",
            &[],
            "poll_cm_event, which never waits, returns a queued ConnectRequest (listener, peer, private data) and then nothing",
            poll_queued
        ),
        contract_case!(
            "cm.connect.private-data-too-long-einval",
            "cm",
            &[],
            "cm_connect with 57 bytes of private data is EINVAL; 56 bytes go through",
            connect_too_long
        ),
        contract_case!(
            "cm.connect.qp-not-reset-einval",
            "cm",
            &[],
            "cm_connect with a QP that is not in RESET is EINVAL",
            connect_qp_not_reset
        ),
        contract_case!(
            "cm.connect.no-listener",
            "cm",
            &[],
            "connecting to a port nobody listens on ends Rejected(INVALID_SERVICE_ID) or Unreachable",
            connect_no_listener
        ),
        contract_case!(
            "cm.accept.private-data-established",
            "cm",
            &[],
            "the accept's private data arrives in the active side's Established",
            accept_private_data
        ),
        contract_case!(
            "cm.accept.private-data-too-long-einval",
            "cm",
            &[],
            "cm_accept with 197 bytes of private data is EINVAL; 196 bytes go through",
            accept_too_long
        ),
        contract_case!(
            "cm.accept.twice-einval",
            "cm",
            &[],
            "accepting an already accepted request is EINVAL",
            accept_twice
        ),
        contract_case!(
            "cm.established.qps-rts",
            "cm",
            &[],
            "after Established on both sides both QPs are in RTS",
            established_rts
        ),
        contract_case!(
            "cm.reject.private-data",
            "cm",
            &[],
            "a reject with private data ends Rejected(CONSUMER_DEFINED) carrying the data",
            reject
        ),
        contract_case!(
            "cm.disconnect.both-sides",
            "cm",
            &[],
            "cm_disconnect: both sides get Disconnected and both QPs end in ERR",
            disconnect
        ),
        contract_case!(
            "cm.destroy.connected-disconnects",
            "cm",
            &[],
            "cm_destroy of a connected identifier disconnects the peer",
            destroy_connected
        ),
        contract_case!(
            "cm.destroy-qp.connected-ok",
            "cm",
            &[],
            "destroy_qp of a CM-connected QP succeeds and discards its work without completions",
            destroy_qp_connected
        ),
        contract_case!(
            "cm.data.send-and-rdma",
            "cm",
            &[],
            "SEND, RDMA WRITE and RDMA READ work over a CM connection",
            data_flow
        ),
    ]
}

fn param(data: Vec<u8>) -> ConnParam {
    ConnParam {
        private_data: data,
        responder_resources: 4,
        initiator_depth: 4,
        rnr_retry_count: 7,
    }
}

async fn listen_twice(env: Env) -> CaseResult {
    let dev = env.open("b", 1)?;
    let addr = env.listen_addr(&dev, 0);
    dev.ctx.cm_listen(addr).ctx(format!("cm_listen({addr})"))?;
    expect_errno(
        dev.ctx.cm_listen(addr),
        Errno::EADDRINUSE,
        format!("second cm_listen({addr})"),
    )
}

async fn listen_foreign(env: Env) -> CaseResult {
    let dev = env.open("b", 1)?;
    let addr = SocketAddr::new(IpAddr::V4(FOREIGN_ADDR), env.cm_port(0));
    expect_errno(
        dev.ctx.cm_listen(addr),
        Errno::EADDRNOTAVAIL,
        format!("cm_listen({addr})"),
    )
}

async fn listen_close_reuse(env: Env) -> CaseResult {
    let dev = env.open("b", 1)?;
    let addr = env.listen_addr(&dev, 0);
    let l = dev.ctx.cm_listen(addr).ctx(format!("cm_listen({addr})"))?;
    dev.ctx.cm_close_listener(l).ctx("cm_close_listener")?;
    dev.ctx.cm_listen(addr).ctx(format!(
        "cm_listen({addr}) after closing the first listener"
    ))?;
    Ok(())
}

async fn listen_wildcard(env: Env) -> CaseResult {
    let a = Side::create(&env.open("a", 0)?, QpCap::default())?;
    let b = Side::create(&env.open("b", 1)?, QpCap::default())?;
    let any = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), env.cm_port(1));
    let listener = b.dev.ctx.cm_listen(any).ctx(format!("cm_listen({any})"))?;
    let addr = env.listen_addr(&b.dev, 1);
    let conn_a = a
        .dev
        .ctx
        .cm_connect(addr, a.qp.id, &param(vec![1]))
        .ctx(format!("cm_connect({addr})"))?;
    let (conn_b, got_listener, _, _) = b
        .connect_request("ConnectRequest on the wildcard listener")
        .await?;
    check_eq!(got_listener, listener, "ConnectRequest.listener");
    b.dev
        .ctx
        .cm_accept(conn_b, b.qp.id, &param(vec![]))
        .ctx("cm_accept")?;
    a.established(conn_a, "active side").await?;
    b.established(conn_b, "passive side").await?;
    Ok(())
}

/// `a` connecting to `b`'s listener with `data` as private data.
struct Requested {
    a: Side,
    b: Side,
    listener: ListenerId,
    conn_a: ConnId,
    data: Vec<u8>,
}

/// `b` listening on slot 0 of its device, and `a` on another device.
struct Listening {
    a: Side,
    b: Side,
    addr: SocketAddr,
    listener: ListenerId,
}

/// Two sides, `b` listening on slot 0.
fn listening(env: &Env) -> Result<Listening, Failure> {
    let a = Side::create(&env.open("a", 0)?, QpCap::default())?;
    let b = Side::create(&env.open("b", 1)?, QpCap::default())?;
    let addr = env.listen_addr(&b.dev, 0);
    let listener = b.dev.ctx.cm_listen(addr).ctx("cm_listen")?;
    Ok(Listening {
        a,
        b,
        addr,
        listener,
    })
}

/// Two sides, `b` listening on slot 0 and `a` connecting to it with `data` as private data.
fn request(env: &Env, data: Vec<u8>) -> Result<Requested, Failure> {
    let Listening {
        a,
        b,
        addr,
        listener,
    } = listening(env)?;
    let conn_a = a
        .dev
        .ctx
        .cm_connect(addr, a.qp.id, &param(data.clone()))
        .ctx("cm_connect")?;
    Ok(Requested {
        a,
        b,
        listener,
        conn_a,
        data,
    })
}

impl Requested {
    /// The ConnectRequest `b` got names its listener, `a`'s address and `a`'s private data.
    fn check(&self, listener: ListenerId, peer: SocketAddr, param: &ConnParam) -> CaseResult {
        check_eq!(listener, self.listener, "ConnectRequest.listener");
        check_eq!(
            peer.ip(),
            IpAddr::V4(self.a.dev.port.addr),
            "ConnectRequest.peer address"
        );
        check_private_data(
            &param.private_data,
            &self.data,
            CM_REQ_PRIVATE_DATA_MAX,
            "ConnectRequest private data",
        )
    }
}

async fn connect_private_data(env: Env) -> CaseResult {
    let r = request(&env, pattern(env.seed, 70, 32))?;
    let (_conn, listener, peer, got) = r.b.connect_request("ConnectRequest").await?;
    r.check(listener, peer, &got)
}

async fn poll_queued(env: Env) -> CaseResult {
    let r = request(&env, pattern(env.seed, 72, 8))?;
    let deadline = tokio::time::Instant::now() + BOUND;
    let e = loop {
        if let Some(e) = r.b.dev.ctx.poll_cm_event() {
            break e;
        }
        if tokio::time::Instant::now() >= deadline {
            fail!("b: poll_cm_event returned nothing within {BOUND:?} of a cm_connect");
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    match e.kind {
        CmEventKind::ConnectRequest {
            listener,
            peer,
            param,
        } => r.check(listener, peer, &param)?,
        other => fail!("b: poll_cm_event: expected ConnectRequest, got {other:?}"),
    }
    let again = r.b.dev.ctx.poll_cm_event();
    check!(
        again.is_none(),
        "b: poll_cm_event after the only event: {again:?}"
    );
    Ok(())
}

/// How often [`poll_queued`] polls.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(1);

async fn connect_too_long(env: Env) -> CaseResult {
    let Listening { a, b, addr, .. } = listening(&env)?;
    let long = pattern(env.seed, 71, CM_REQ_PRIVATE_DATA_MAX + 1);
    expect_errno(
        a.dev.ctx.cm_connect(addr, a.qp.id, &param(long.clone())),
        Errno::EINVAL,
        "cm_connect with 57 bytes of private data",
    )?;
    a.in_state(QpState::Reset, "QP state after the refused cm_connect")?;
    b.dev.no_cm_event("after a refused cm_connect").await?;
    let max = long[..CM_REQ_PRIVATE_DATA_MAX].to_vec();
    a.dev
        .ctx
        .cm_connect(addr, a.qp.id, &param(max.clone()))
        .ctx("cm_connect with 56 bytes")?;
    let (_, _, _, got) = b.connect_request("ConnectRequest with 56 bytes").await?;
    check_bytes(
        &got.private_data,
        &max,
        "ConnectRequest private data of 56 bytes",
    )?;
    Ok(())
}

async fn connect_qp_not_reset(env: Env) -> CaseResult {
    let a = Side::create(&env.open("a", 0)?, QpCap::default())?;
    let b = env.open("b", 1)?;
    let addr = env.listen_addr(&b, 0);
    b.ctx.cm_listen(addr).ctx("cm_listen")?;
    a.modify(QpAttr::init(1, all_remote()))?;
    expect_errno(
        a.dev.ctx.cm_connect(addr, a.qp.id, &param(vec![])),
        Errno::EINVAL,
        "cm_connect with a QP in INIT",
    )?;
    b.no_cm_event("after a refused cm_connect").await?;
    Ok(())
}

async fn connect_no_listener(env: Env) -> CaseResult {
    let a = Side::create(&env.open("a", 0)?, QpCap::default())?;
    let b = env.open("b", 1)?;
    let addr = env.listen_addr(&b, 5);
    let conn = a
        .dev
        .ctx
        .cm_connect(addr, a.qp.id, &param(vec![1, 2, 3]))
        .ctx("cm_connect")?;
    let e = a
        .dev
        .cm_event("connect to a port nobody listens on")
        .await?;
    check_eq!(e.conn, conn, "identifier of the CM event");
    // IB CM answers a REQ for an unknown service ID with REJ(INVALID_SERVICE_ID); a fabric
    // may equally give up on the route or time out: both are valid outcomes.
    match e.kind {
        CmEventKind::Rejected { status, .. } if status == CM_REJ_INVALID_SERVICE_ID => Ok(()),
        CmEventKind::Unreachable => Ok(()),
        other => fail!(
            "connect to {addr} (no listener): expected Rejected(status {CM_REJ_INVALID_SERVICE_ID}) or Unreachable, got {other:?}"
        ),
    }
}

async fn accept_private_data(env: Env) -> CaseResult {
    let data = pattern(env.seed, 72, 100);
    let p = env
        .cm_pair(0, &param(vec![9; 8]), &param(data.clone()))
        .await?;
    check_private_data(
        &p.established_a,
        &data,
        CM_REP_PRIVATE_DATA_MAX,
        "active side's Established private data",
    )?;
    check!(
        p.established_b.iter().all(|b| *b == 0),
        "passive side's Established private data: expected none, got {:02x?}",
        p.established_b
    );
    Ok(())
}

async fn accept_too_long(env: Env) -> CaseResult {
    let Requested { a, b, conn_a, .. } = request(&env, vec![])?;
    let (conn_b, _, _, _) = b.connect_request("ConnectRequest").await?;
    let long = pattern(env.seed, 73, CM_REP_PRIVATE_DATA_MAX + 1);
    expect_errno(
        b.dev.ctx.cm_accept(conn_b, b.qp.id, &param(long.clone())),
        Errno::EINVAL,
        "cm_accept with 197 bytes of private data",
    )?;
    a.dev.no_cm_event("after a refused cm_accept").await?;
    let max = long[..CM_REP_PRIVATE_DATA_MAX].to_vec();
    b.dev
        .ctx
        .cm_accept(conn_b, b.qp.id, &param(max.clone()))
        .ctx("cm_accept with 196 bytes")?;
    let got = a
        .established(conn_a, "active side after accept with 196 bytes")
        .await?;
    check_bytes(&got, &max, "Established private data of 196 bytes")?;
    b.established(conn_b, "passive side").await?;
    Ok(())
}

async fn accept_twice(env: Env) -> CaseResult {
    let p = env.cm_pair(0, &param(vec![]), &param(vec![])).await?;
    let other = Side::create(&p.b.dev, QpCap::default())?;
    expect_errno(
        p.b.dev.ctx.cm_accept(p.conn_b, other.qp.id, &param(vec![])),
        Errno::EINVAL,
        "second cm_accept of the same request",
    )?;
    other.in_state(
        QpState::Reset,
        "state of the QP offered to the refused accept",
    )?;
    p.b.in_state(QpState::Rts, "state of the accepted QP")
}

async fn established_rts(env: Env) -> CaseResult {
    let p = env.cm_pair(0, &param(vec![1]), &param(vec![2])).await?;
    p.a.in_state(QpState::Rts, "active QP state after Established")?;
    p.b.in_state(QpState::Rts, "passive QP state after Established")
}

async fn reject(env: Env) -> CaseResult {
    let Requested { a, b, conn_a, .. } = request(&env, vec![5; 16])?;
    let (conn_b, _, _, _) = b.connect_request("ConnectRequest").await?;
    let data = pattern(env.seed, 74, 20);
    b.dev.ctx.cm_reject(conn_b, &data).ctx("cm_reject")?;
    let e = a.dev.cm_event("active side after reject").await?;
    check_eq!(e.conn, conn_a, "identifier of the Rejected event");
    match e.kind {
        CmEventKind::Rejected {
            status,
            private_data,
        } => {
            check_eq!(
                status,
                CM_REJ_CONSUMER_DEFINED,
                "Rejected.status of an application reject"
            );
            check_private_data(
                &private_data,
                &data,
                CM_REJ_PRIVATE_DATA_MAX,
                "Rejected private data",
            )?;
        }
        other => fail!("active side after reject: expected Rejected, got {other:?}"),
    }
    check!(
        a.state()? != QpState::Rts,
        "active QP is in RTS after its connect was rejected"
    );
    Ok(())
}

async fn disconnect(env: Env) -> CaseResult {
    let p = env.cm_pair(0, &param(vec![]), &param(vec![])).await?;
    p.a.dev
        .ctx
        .cm_disconnect(p.conn_a)
        .ctx("cm_disconnect(active)")?;
    p.a.disconnected(p.conn_a, "active side after cm_disconnect")
        .await?;
    p.b.disconnected(p.conn_b, "passive side after the peer's cm_disconnect")
        .await?;
    p.a.reaches_state(QpState::Err, "active QP after Disconnected")
        .await?;
    p.b.reaches_state(QpState::Err, "passive QP after Disconnected")
        .await?;
    Ok(())
}

async fn destroy_connected(env: Env) -> CaseResult {
    let p = env.cm_pair(0, &param(vec![]), &param(vec![])).await?;
    p.a.dev
        .ctx
        .cm_destroy(p.conn_a)
        .ctx("cm_destroy(connected active identifier)")?;
    p.b.disconnected(p.conn_b, "passive side after the peer's cm_destroy")
        .await?;
    p.b.reaches_state(QpState::Err, "passive QP after Disconnected")
        .await?;
    p.a.reaches_state(QpState::Err, "active QP after its identifier was destroyed")
        .await?;
    Ok(())
}

async fn destroy_qp_connected(env: Env) -> CaseResult {
    let p = env.cm_pair(0, &param(vec![]), &param(vec![])).await?;
    let buf = p.a.mr(4096, Access::LOCAL_WRITE)?;
    p.a.post_recv(1, vec![buf.sge(0, 64)])?;
    p.a.dev
        .ctx
        .destroy_qp(p.a.qp.id)
        .ctx("destroy_qp of a CM-connected QP")?;
    expect_errno(
        p.a.dev.ctx.query_qp(p.a.qp.id),
        Errno::ENOENT,
        "query_qp of the destroyed QP",
    )?;
    // Outstanding work of a destroyed QP is discarded, not completed.
    p.a.no_wc("CQ of a QP destroyed with a receive posted")
        .await?;
    Ok(())
}

async fn data_flow(env: Env) -> CaseResult {
    let p = env.cm_pair(0, &param(vec![]), &param(vec![])).await?;
    let (src, dst) = p.mrs(8192, all_remote())?;
    let msg = pattern(env.seed, 75, 3000);
    p.a.dev.write(&src, 0, &msg)?;
    p.b.post_recv(1, vec![dst.sge(0, 4096)])?;
    p.a.send(2, vec![src.sge(0, 3000)])?;
    p.a.succeeds("SEND over the CM connection", 2, WcOpcode::Send)
        .await?;
    let r =
        p.b.succeeds("receive over the CM connection", 1, WcOpcode::Recv)
            .await?;
    check_eq!(r.byte_len, 3000, "byte_len over the CM connection");
    check_eq!(r.src_qp, p.a.qp.qpn, "src_qp over the CM connection");
    p.b.dev
        .check_read(&dst, 0, &msg, "SEND bytes over the CM connection")?;
    let remote = dst.addr + 4096;
    p.a.post_ok(
        rdma_write(3, remote, dst.rkey, vec![src.sge(0, 3000)]),
        "RDMA WRITE over the CM connection",
    )
    .await?;
    p.b.dev
        .check_read(&dst, 4096, &msg, "RDMA WRITE bytes over the CM connection")?;
    p.a.post_ok(
        rdma_read(4, remote, dst.rkey, vec![src.sge(4096, 3000)]),
        "RDMA READ over the CM connection",
    )
    .await?;
    p.a.dev
        .check_read(&src, 4096, &msg, "RDMA READ bytes over the CM connection")
}
