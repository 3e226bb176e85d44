//! The RC queue pair state machine and what may be posted in each state.

use std::collections::BTreeSet;

use nix::errno::Errno;

use super::{
    all_remote, contract_case, expect_errno, fill_queue, CaseResult, Context, ContractCase, Env,
    Failure, Need, PairOpts, Side,
};
use crate::fabric::{
    Access, CqId, QpAttr, QpCap, QpInit, QpState, RecvWr, SendOp, SendWr, SrqId, WcOpcode, WcStatus,
};
use crate::{check, check_eq};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "qp.state.reset-to-rts",
            "qp",
            &[],
            "a new QP is in RESET and moves RESET -> INIT -> RTR -> RTS, query_qp following",
            reset_to_rts
        ),
        contract_case!(
            "qp.state.reset-to-rtr-einval",
            "qp",
            &[],
            "RESET -> RTR is EINVAL and leaves the QP in RESET",
            reset_to_rtr
        ),
        contract_case!(
            "qp.state.reset-to-rts-einval",
            "qp",
            &[],
            "RESET -> RTS is EINVAL and leaves the QP in RESET",
            reset_to_rts_illegal
        ),
        contract_case!(
            "qp.state.init-to-rts-einval",
            "qp",
            &[],
            "INIT -> RTS is EINVAL and leaves the QP in INIT",
            init_to_rts
        ),
        contract_case!(
            "qp.state.backwards-einval",
            "qp",
            &[],
            "RTS -> RTR, RTS -> INIT and RTR -> INIT are EINVAL and change nothing",
            backwards
        ),
        contract_case!(
            "qp.state.init-missing-attrs-einval",
            "qp",
            &[],
            "RESET -> INIT without port or without access flags is EINVAL; port 0 too",
            init_missing
        ),
        contract_case!(
            "qp.state.rtr-missing-dest-einval",
            "qp",
            &[],
            "INIT -> RTR without a destination is EINVAL and leaves the QP in INIT",
            rtr_missing_dest
        ),
        contract_case!(
            "qp.state.any-to-err-to-reset",
            "qp",
            &[],
            "RESET, INIT, RTR and RTS all go to ERR; ERR goes to RESET and the QP is reusable",
            any_to_err
        ),
        contract_case!(
            "qp.create.bad-args-einval",
            "qp",
            &[],
            "create_qp with an unknown CQ or SRQ or caps above the device limits is EINVAL",
            create_bad
        ),
        contract_case!(
            "qp.post-send.not-rts-einval",
            "qp",
            &[],
            "post_send in RESET, INIT and RTR fails with EINVAL",
            post_send_not_rts
        ),
        contract_case!(
            "qp.post-recv.reset-einval",
            "qp",
            &[],
            "post_recv in RESET fails with EINVAL and succeeds in INIT",
            post_recv_reset
        ),
        contract_case!(
            "qp.post-recv.srq-attached-einval",
            "qp",
            &[],
            "post_recv on a QP attached to an SRQ fails with EINVAL",
            post_recv_srq
        ),
        contract_case!(
            "qp.post-send.too-many-sge-einval",
            "qp",
            &[],
            "post_send with more SGEs than the device's max_sge fails with EINVAL",
            too_many_sge
        ),
        contract_case!(
            "qp.post.queue-full-enomem",
            "qp",
            &[],
            "posting past the (possibly rounded-up) send and receive queue depths fails with ENOMEM",
            queue_full
        ),
        contract_case!(
            "qp.err.flushes-outstanding",
            "qp",
            &[],
            "moving a QP to ERR flushes its outstanding sends and receives with WR_FLUSH_ERR",
            err_flushes
        ),
        contract_case!(
            "qp.err.post-flushes",
            "qp",
            &[Need::NotSoftRoce(
                "rxe (Linux 6.1 and 6.12) does not flush a receive posted to a QP already in ERR",
            )],
            "post_send and post_recv in ERR succeed and complete with WR_FLUSH_ERR",
            post_in_err
        ),
        contract_case!(
            "qp.state.rtr-receives",
            "qp",
            &[],
            "a QP left in RTR receives a SEND into a receive posted in INIT, and acknowledges it",
            rtr_receives
        ),
        contract_case!(
            "qp.state.reset-reuse-clears-queues",
            "qp",
            &[],
            "ERR -> RESET discards flushed receives; reconnected, the QP uses only new receives",
            reset_reuse
        ),
        contract_case!(
            "qp.err.peer-sends-retry-exc-err",
            "qp",
            &[],
            "SENDs to a peer QP in ERR are not answered and end with RETRY_EXC_ERR",
            peer_in_err
        ),
        contract_case!(
            "qp.destroy.any-state",
            "qp",
            &[],
            "QPs destroy in RESET, INIT, RTS and ERR",
            destroy_any
        ),
    ]
}

/// Two unconnected QPs in RESET, one per device.
fn two(env: &Env) -> Result<(Side, Side), Failure> {
    let a = Side::create(&env.open("a", 0)?, QpCap::default())?;
    let b = Side::create(&env.open("b", 1)?, QpCap::default())?;
    Ok((a, b))
}

fn expect_transition_fails(side: &Side, attr: QpAttr, from: QpState, what: &str) -> CaseResult {
    expect_errno(
        side.dev.ctx.modify_qp(side.qp.id, &attr),
        Errno::EINVAL,
        what,
    )?;
    check_eq!(side.state()?, from, "state after the refused {what}");
    Ok(())
}

async fn reset_to_rts(env: Env) -> CaseResult {
    let (a, b) = two(&env)?;
    check_eq!(a.state()?, QpState::Reset, "state of a new QP");
    a.modify(QpAttr::init(1, all_remote()))?;
    check_eq!(a.state()?, QpState::Init, "state after RESET -> INIT");
    a.modify(QpAttr::rtr(b.dest()))?;
    check_eq!(a.state()?, QpState::Rtr, "state after INIT -> RTR");
    a.modify(QpAttr::rts(7, 7))?;
    check_eq!(a.state()?, QpState::Rts, "state after RTR -> RTS");
    Ok(())
}

async fn reset_to_rtr(env: Env) -> CaseResult {
    let (a, b) = two(&env)?;
    expect_transition_fails(&a, QpAttr::rtr(b.dest()), QpState::Reset, "RESET -> RTR")
}

async fn reset_to_rts_illegal(env: Env) -> CaseResult {
    let (a, _b) = two(&env)?;
    expect_transition_fails(&a, QpAttr::rts(7, 7), QpState::Reset, "RESET -> RTS")
}

async fn init_to_rts(env: Env) -> CaseResult {
    let (a, _b) = two(&env)?;
    a.modify(QpAttr::init(1, all_remote()))?;
    expect_transition_fails(&a, QpAttr::rts(7, 7), QpState::Init, "INIT -> RTS")
}

async fn backwards(env: Env) -> CaseResult {
    let (a, b) = two(&env)?;
    a.modify(QpAttr::init(1, all_remote()))?;
    a.modify(QpAttr::rtr(b.dest()))?;
    expect_transition_fails(
        &a,
        QpAttr::init(1, all_remote()),
        QpState::Rtr,
        "RTR -> INIT",
    )?;
    a.modify(QpAttr::rts(7, 7))?;
    expect_transition_fails(&a, QpAttr::rtr(b.dest()), QpState::Rts, "RTS -> RTR")?;
    expect_transition_fails(
        &a,
        QpAttr::init(1, all_remote()),
        QpState::Rts,
        "RTS -> INIT",
    )?;
    Ok(())
}

async fn init_missing(env: Env) -> CaseResult {
    let (a, _b) = two(&env)?;
    let no_port = QpAttr {
        port: None,
        ..QpAttr::init(1, all_remote())
    };
    expect_transition_fails(&a, no_port, QpState::Reset, "RESET -> INIT without port")?;
    let no_access = QpAttr {
        access: None,
        ..QpAttr::init(1, all_remote())
    };
    expect_transition_fails(
        &a,
        no_access,
        QpState::Reset,
        "RESET -> INIT without access flags",
    )?;
    expect_transition_fails(
        &a,
        QpAttr::state(QpState::Init),
        QpState::Reset,
        "RESET -> INIT with no attributes",
    )?;
    expect_transition_fails(
        &a,
        QpAttr::init(0, all_remote()),
        QpState::Reset,
        "RESET -> INIT on port 0",
    )?;
    a.modify(QpAttr::init(1, Access::empty()))?;
    check_eq!(
        a.state()?,
        QpState::Init,
        "state after RESET -> INIT with empty access flags"
    );
    Ok(())
}

async fn rtr_missing_dest(env: Env) -> CaseResult {
    let (a, _b) = two(&env)?;
    a.modify(QpAttr::init(1, all_remote()))?;
    expect_transition_fails(
        &a,
        QpAttr::state(QpState::Rtr),
        QpState::Init,
        "INIT -> RTR without dest",
    )
}

async fn any_to_err(env: Env) -> CaseResult {
    let (a, b) = two(&env)?;
    let to_err = |from: QpState| -> CaseResult {
        a.modify(QpAttr::state(QpState::Err))
            .map_err(|e| Failure::new(format!("{from:?} -> ERR: {e}")))?;
        check_eq!(a.state()?, QpState::Err, "state after {from:?} -> ERR");
        a.modify(QpAttr::state(QpState::Reset))
            .map_err(|e| Failure::new(format!("ERR -> RESET (reached from {from:?}): {e}")))?;
        check_eq!(a.state()?, QpState::Reset, "state after ERR -> RESET");
        Ok(())
    };
    to_err(QpState::Reset)?;
    a.modify(QpAttr::init(1, all_remote()))?;
    to_err(QpState::Init)?;
    a.modify(QpAttr::init(1, all_remote()))?;
    a.modify(QpAttr::rtr(b.dest()))?;
    to_err(QpState::Rtr)?;
    a.modify(QpAttr::init(1, all_remote()))?;
    a.modify(QpAttr::rtr(b.dest()))?;
    a.modify(QpAttr::rts(7, 7))?;
    to_err(QpState::Rts)?;
    // Reusable after RESET.
    a.modify(QpAttr::init(1, all_remote()))?;
    check_eq!(
        a.state()?,
        QpState::Init,
        "state after RESET -> INIT of a reset QP"
    );
    Ok(())
}

async fn create_bad(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    let cq = dev.cq(16)?;
    let attr = dev.ctx.device_attr();
    let init = QpInit::on_cq(cq, None);
    let bogus_cq = CqId(cq.0.wrapping_add(0x0100_0000));
    // Each of these is EINVAL, in this order.
    let mut bad = vec![
        (
            QpInit {
                send_cq: bogus_cq,
                ..init
            },
            "create_qp with an unknown send CQ".to_string(),
        ),
        (
            QpInit {
                recv_cq: bogus_cq,
                ..init
            },
            "create_qp with an unknown receive CQ".to_string(),
        ),
        (
            QpInit {
                srq: Some(SrqId(0x0100_0001)),
                ..init
            },
            "create_qp with an unknown SRQ".to_string(),
        ),
    ];
    // One above a device limit on a capacity: (the limit, its name, the capacity's name and
    // setter).
    type Above = (u32, &'static str, &'static str, fn(&mut QpCap, u32));
    let above: [Above; 2] = [
        (attr.max_qp_wr, "max_qp_wr", "max_send_wr", |c, n| {
            c.max_send_wr = n
        }),
        (attr.max_sge, "max_sge", "max_send_sge", |c, n| {
            c.max_send_sge = n
        }),
    ];
    for (max, limit, field, set) in above {
        if max < u32::MAX {
            let mut cap = QpCap::default();
            set(&mut cap, max + 1);
            let what = format!("create_qp with {field} {} above {limit}", max + 1);
            bad.push((QpInit { cap, ..init }, what));
        }
    }
    for (qp_init, what) in bad {
        expect_errno(dev.ctx.create_qp(pd, qp_init), Errno::EINVAL, what)?;
    }
    dev.qp(pd, init)?;
    Ok(())
}

fn empty_send(wr_id: u64) -> SendWr {
    SendWr::new(wr_id, SendOp::Send, vec![])
}

async fn post_send_not_rts(env: Env) -> CaseResult {
    let (a, b) = two(&env)?;
    expect_errno(
        a.dev.ctx.post_send(a.qp.id, &empty_send(1)),
        Errno::EINVAL,
        "post_send in RESET",
    )?;
    a.modify(QpAttr::init(1, all_remote()))?;
    expect_errno(
        a.dev.ctx.post_send(a.qp.id, &empty_send(2)),
        Errno::EINVAL,
        "post_send in INIT",
    )?;
    a.modify(QpAttr::rtr(b.dest()))?;
    expect_errno(
        a.dev.ctx.post_send(a.qp.id, &empty_send(3)),
        Errno::EINVAL,
        "post_send in RTR",
    )?;
    a.no_wc("after refused post_send").await?;
    Ok(())
}

async fn post_recv_reset(env: Env) -> CaseResult {
    let (a, _b) = two(&env)?;
    let mr = a.mr(4096, Access::LOCAL_WRITE)?;
    let wr = RecvWr {
        wr_id: 1,
        sg_list: vec![mr.sge(0, 4096)],
    };
    expect_errno(
        a.dev.ctx.post_recv(a.qp.id, &wr),
        Errno::EINVAL,
        "post_recv in RESET",
    )?;
    a.modify(QpAttr::init(1, all_remote()))?;
    a.post_recv(2, vec![mr.sge(0, 4096)])?;
    a.no_wc("a receive posted in INIT").await?;
    Ok(())
}

async fn post_recv_srq(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let (pd, _, qp) = dev.srq_qp(16)?;
    dev.ctx
        .modify_qp(qp.id, &QpAttr::init(1, all_remote()))
        .ctx("modify_qp(INIT)")?;
    let mr = dev.mr(pd, 4096, Access::LOCAL_WRITE)?;
    expect_errno(
        dev.ctx.post_recv(
            qp.id,
            &RecvWr {
                wr_id: 1,
                sg_list: vec![mr.sge(0, 64)],
            },
        ),
        Errno::EINVAL,
        "post_recv on a QP with an SRQ",
    )
}

async fn too_many_sge(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let max = p.a.dev.ctx.device_attr().max_sge;
    check!(
        max < 4096,
        "device max_sge {max} is implausibly large for this case"
    );
    let mr = p.a.mr(u64::from(max + 1) * 8, Access::LOCAL_WRITE)?;
    let sges = (0..=max).map(|i| mr.sge(u64::from(i) * 8, 8)).collect();
    expect_errno(
        p.a.dev
            .ctx
            .post_send(p.a.qp.id, &SendWr::new(1, SendOp::Send, sges)),
        Errno::EINVAL,
        format!("post_send with {} SGEs (max_sge {max})", max + 1),
    )?;
    let rsges = (0..=max).map(|i| mr.sge(u64::from(i) * 8, 8)).collect();
    expect_errno(
        p.a.dev.ctx.post_recv(
            p.a.qp.id,
            &RecvWr {
                wr_id: 2,
                sg_list: rsges,
            },
        ),
        Errno::EINVAL,
        format!("post_recv with {} SGEs (max_sge {max})", max + 1),
    )?;
    Ok(())
}

async fn queue_full(env: Env) -> CaseResult {
    // b posts no receive and RNR retries forever, so a's sends stay outstanding.
    let cap = QpCap {
        max_send_wr: 8,
        max_recv_wr: 8,
        max_send_sge: 1,
        max_recv_sge: 1,
    };
    let p = env.pair(PairOpts {
        cap,
        ..PairOpts::default()
    })?;
    let mr = p.a.mr(4096, Access::LOCAL_WRITE)?;
    let limit = 8 * 4 + 64;
    let sends = "requests on a QP with max_send_wr 8 and no completion";
    fill_queue("post_send", "a full send queue", sends, limit, |i| {
        let wr = SendWr::new(i, SendOp::Send, vec![mr.sge(0, 8)]);
        p.a.dev.ctx.post_send(p.a.qp.id, &wr)
    })?;
    // Nobody sends to a, so its receives stay posted.
    let recvs = "requests on a QP with max_recv_wr 8";
    fill_queue("post_recv", "a full receive queue", recvs, limit, |i| {
        let wr = RecvWr {
            wr_id: 1000 + i,
            sg_list: vec![mr.sge(64, 64)],
        };
        p.a.dev.ctx.post_recv(p.a.qp.id, &wr)
    })?;
    Ok(())
}

async fn err_flushes(env: Env) -> CaseResult {
    // b has no receive and a RNR-retries forever: a's sends stay outstanding.
    let p = env.pair(PairOpts::default())?;
    let mr = p.a.mr(4096, Access::LOCAL_WRITE)?;
    for id in [11, 12, 13] {
        p.a.post_recv(id, vec![mr.sge(id * 64, 64)])?;
    }
    for id in [21, 22] {
        p.a.send(id, vec![mr.sge(2048, 16)])?;
    }
    p.a.no_wc("outstanding sends (peer has no receive, rnr_retry 7) and receives")
        .await?;
    p.a.modify(QpAttr::state(QpState::Err))?;
    let wcs = p.a.wcs(5, "flush after modify_qp(ERR)").await?;
    for wc in &wcs {
        check!(
            wc.status == WcStatus::WrFlushErr,
            "flush after modify_qp(ERR): expected WR_FLUSH_ERR for every request, got {} for wr_id {}",
            wc.status.name(),
            wc.wr_id
        );
        check_eq!(wc.qp, p.a.qp.id, "flushed completion's QP");
    }
    let ids: BTreeSet<u64> = wcs.iter().map(|w| w.wr_id).collect();
    check_eq!(ids, BTreeSet::from([11, 12, 13, 21, 22]), "flushed wr_ids");
    p.a.no_wc("after the flush").await?;
    Ok(())
}

async fn post_in_err(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let mr = p.a.mr(4096, Access::LOCAL_WRITE)?;
    p.a.modify(QpAttr::state(QpState::Err))?;
    p.a.post_recv(1, vec![mr.sge(0, 64)])?;
    let wc = p.a.wc("receive posted in ERR").await?;
    super::check_wc(&wc, 1, WcStatus::WrFlushErr, None, "receive posted in ERR")?;
    p.a.send(2, vec![mr.sge(0, 64)])?;
    let wc = p.a.wc("send posted in ERR").await?;
    super::check_wc(&wc, 2, WcStatus::WrFlushErr, None, "send posted in ERR")?;
    p.b.no_wc("peer of a QP in ERR").await?;
    Ok(())
}

async fn rtr_receives(env: Env) -> CaseResult {
    let (a, b) = two(&env)?;
    let src = a.mr(4096, Access::LOCAL_WRITE)?;
    let dst = b.mr(4096, Access::LOCAL_WRITE)?;
    a.modify(QpAttr::init(1, all_remote()))?;
    b.modify(QpAttr::init(1, all_remote()))?;
    b.post_recv(5, vec![dst.sge(0, 256)])?;
    a.modify(QpAttr::rtr(b.dest()))?;
    b.modify(QpAttr::rtr(a.dest()))?;
    a.modify(QpAttr::rts(7, 7))?;
    let data = super::pattern(env.seed, 5, 200);
    a.dev.write(&src, 0, &data)?;
    a.send(1, vec![src.sge(0, 200)])?;
    b.succeeds("receive on a QP in RTR", 5, WcOpcode::Recv)
        .await?;
    super::check_bytes(&b.dev.read(&dst, 0, 200)?, &data, "bytes received in RTR")?;
    a.succeeds("SEND to a QP in RTR", 1, WcOpcode::Send).await?;
    check_eq!(
        b.state()?,
        QpState::Rtr,
        "receiver state (never moved to RTS)"
    );
    Ok(())
}

async fn reset_reuse(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (buf, src) = p.mrs(4096, Access::LOCAL_WRITE)?;
    p.a.post_recv(1, vec![buf.sge(0, 64)])?;
    p.a.post_recv(2, vec![buf.sge(64, 64)])?;
    p.a.modify(QpAttr::state(QpState::Err))?;
    p.a.wcs(2, "receives flushed by ERR").await?;
    p.a.modify(QpAttr::state(QpState::Reset))?;
    p.a.no_wc("after ERR -> RESET").await?;
    p.a.modify(QpAttr::init(1, all_remote()))?;
    p.a.post_recv(3, vec![buf.sge(128, 64)])?;
    p.a.modify(QpAttr::rtr(p.b.dest()))?;
    p.a.modify(QpAttr::rts(7, 7))?;
    p.b.send(9, vec![src.sge(0, 32)])?;
    let r =
        p.a.wc("receive after the QP was reset and reconnected")
            .await?;
    super::check_wc(
        &r,
        3,
        WcStatus::Success,
        Some(crate::fabric::WcOpcode::Recv),
        "receive after reset (the flushed ones must not come back)",
    )?;
    p.b.succeeds("SEND to the reconnected QP", 9, WcOpcode::Send)
        .await?;
    Ok(())
}

async fn peer_in_err(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default().retries(2, 7))?;
    let (src, dst) = p.mrs(4096, Access::LOCAL_WRITE)?;
    p.b.post_recv(1, vec![dst.sge(0, 64)])?;
    p.b.modify(QpAttr::state(QpState::Err))?;
    p.b.wc("receive flushed by ERR").await?;
    p.a.send(2, vec![src.sge(0, 64)])?;
    p.a.retry_exceeded(2, "SEND to a peer in ERR").await?;
    p.b.no_wc("peer in ERR").await?;
    Ok(())
}

async fn destroy_any(env: Env) -> CaseResult {
    let (a, b) = two(&env)?;
    a.dev.ctx.destroy_qp(a.qp.id).ctx("destroy_qp in RESET")?;
    let c = Side::create(&a.dev, QpCap::default())?;
    c.modify(QpAttr::init(1, all_remote()))?;
    c.dev.ctx.destroy_qp(c.qp.id).ctx("destroy_qp in INIT")?;
    let d = Side::create(&a.dev, QpCap::default())?;
    super::connect_qps(&d.dev, d.qp, &b.dev, b.qp, PairOpts::default())?;
    check_eq!(d.state()?, QpState::Rts, "state after connect");
    d.dev.ctx.destroy_qp(d.qp.id).ctx("destroy_qp in RTS")?;
    b.modify(QpAttr::state(QpState::Err))?;
    b.dev.ctx.destroy_qp(b.qp.id).ctx("destroy_qp in ERR")?;
    expect_errno(
        b.dev.ctx.query_qp(b.qp.id),
        Errno::ENOENT,
        "query_qp of a destroyed QP",
    )?;
    Ok(())
}
