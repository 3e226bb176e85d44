//! Completion queues.

use nix::errno::Errno;

use super::{
    all_remote, check_wc, connect_qps, contract_case, expect_errno, CaseResult, Context,
    ContractCase, Dev, Env, Failure, PairOpts, Side,
};
use crate::fabric::{
    Access, AsyncEvent, CqId, PdId, QpAttr, QpCap, QpInfo, QpInit, QpState, RecvWr, SendOp, SendWr,
    WcOpcode, WcStatus,
};
use crate::{check, check_eq};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "cq.create.bad-size-einval",
            "cq",
            &[],
            "create_cq of 0 entries or above max_cqe fails with EINVAL; exactly max_cqe succeeds",
            create_bad_size
        ),
        contract_case!(
            "cq.poll.empty",
            "cq",
            &[],
            "polling a new CQ returns nothing; an unused CQ destroys",
            poll_empty
        ),
        contract_case!(
            "cq.destroy.in-use-ebusy",
            "cq",
            &[],
            "destroy_cq is EBUSY while a QP uses the CQ, and succeeds after destroy_qp",
            destroy_busy
        ),
        contract_case!(
            "cq.split.send-and-receive",
            "cq",
            &[],
            "with a separate send CQ and receive CQ, a QP's send completions (success and flush) land only on the send CQ and its receive completions (success and flush) only on the receive CQ",
            split
        ),
        contract_case!(
            "cq.overflow.cq-err-event",
            "cq",
            &[],
            "flushing more completions than a 1-entry CQ holds raises the CqErr async event",
            overflow
        ),
    ]
}

async fn create_bad_size(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    expect_errno(dev.ctx.create_cq(0), Errno::EINVAL, "create_cq(0)")?;
    let max = dev.ctx.device_attr().max_cqe;
    if max < u32::MAX {
        expect_errno(
            dev.ctx.create_cq(max + 1),
            Errno::EINVAL,
            format!("create_cq(max_cqe {max} + 1)"),
        )?;
    }
    // The bound itself is allowed; a device with an absurd bound is not asked for it.
    if max <= MAX_CQE_TRIED {
        let cq = dev
            .ctx
            .create_cq(max)
            .ctx(format!("create_cq(max_cqe {max})"))?;
        dev.ctx.destroy_cq(cq).ctx("destroy_cq(max_cqe entries)")?;
    }
    dev.cq(1)?;
    Ok(())
}

/// The largest `max_cqe` [`create_bad_size`] creates a CQ of (rxe: 32767; mlx5: 4 Mi).
const MAX_CQE_TRIED: u32 = 1 << 22;

async fn split(env: Env) -> CaseResult {
    let a = env.open("a", 0)?;
    let b = Side::create(&env.open("b", 1)?, QpCap::default())?;
    let (pd, scq, rcq, qp) = split_cqs(&a)?;
    connect_qps(&a, qp, &b.dev, b.qp, PairOpts::default())?;
    let mr = a.mr(pd, 4096, Access::LOCAL_WRITE)?;
    let bmr = b.mr(4096, Access::LOCAL_WRITE)?;
    let post_recv = |wr_id| {
        a.ctx
            .post_recv(
                qp.id,
                &RecvWr {
                    wr_id,
                    sg_list: vec![mr.sge(0, 64)],
                },
            )
            .ctx(format!("a: post_recv(wr_id {wr_id})"))
    };
    post_recv(1)?;
    b.post_recv(20, vec![bmr.sge(0, 64)])?;
    a.ctx
        .post_send(qp.id, &SendWr::new(2, SendOp::Send, vec![mr.sge(64, 32)]))
        .ctx("a: post_send(wr_id 2)")?;
    a.completes(
        scq,
        "the SEND's completion on the send CQ",
        2,
        WcStatus::Success,
        Some(WcOpcode::Send),
    )
    .await?;
    b.wc("b's receive").await?;
    b.send(21, vec![bmr.sge(0, 16)])?;
    let r = a
        .wc(rcq, "the receive's completion on the receive CQ")
        .await?;
    check_wc(&r, 1, WcStatus::Success, Some(WcOpcode::Recv), "receive CQ")?;
    check_eq!(r.byte_len, 16, "receive CQ: byte_len");
    check_eq!(r.qp, qp.id, "receive CQ: the QP");
    b.wc("b's SEND completion").await?;
    // Flushed work lands where its queue's completions go, too.
    post_recv(3)?;
    a.ctx
        .modify_qp(qp.id, &QpAttr::state(QpState::Err))
        .ctx("a: modify_qp(ERR)")?;
    a.ctx
        .post_send(qp.id, &SendWr::new(4, SendOp::Send, vec![mr.sge(64, 32)]))
        .ctx("a: post_send(wr_id 4) in ERR")?;
    a.completes(
        rcq,
        "the flushed receive on the receive CQ",
        3,
        WcStatus::WrFlushErr,
        None,
    )
    .await?;
    a.completes(
        scq,
        "the flushed SEND on the send CQ",
        4,
        WcStatus::WrFlushErr,
        None,
    )
    .await?;
    a.no_wc(scq, "send CQ after the flushes").await?;
    a.no_wc(rcq, "receive CQ after the flushes").await?;
    Ok(())
}

async fn poll_empty(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let cq = dev.cq(16)?;
    let got = dev.ctx.poll_cq(cq, 16).ctx("poll_cq(new CQ, 16)")?;
    check!(got.is_empty(), "poll_cq of a new CQ returned {got:?}");
    let got = dev.ctx.poll_cq(cq, 0).ctx("poll_cq(new CQ, 0)")?;
    check!(got.is_empty(), "poll_cq(max 0) returned {got:?}");
    dev.no_wc(cq, "new CQ").await?;
    dev.ctx.destroy_cq(cq).ctx("destroy_cq(unused)")?;
    Ok(())
}

/// A PD, a send CQ and a receive CQ of 16 entries each, and an RC QP in RESET using them.
fn split_cqs(dev: &Dev) -> Result<(PdId, CqId, CqId, QpInfo), Failure> {
    let pd = dev.pd()?;
    let scq = dev.cq(16)?;
    let rcq = dev.cq(16)?;
    let qp = dev.qp(
        pd,
        QpInit {
            recv_cq: rcq,
            ..QpInit::on_cq(scq, None)
        },
    )?;
    Ok((pd, scq, rcq, qp))
}

async fn destroy_busy(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let (_, scq, rcq, qp) = split_cqs(&dev)?;
    expect_errno(
        dev.ctx.destroy_cq(scq),
        Errno::EBUSY,
        "destroy_cq of a QP's send CQ",
    )?;
    expect_errno(
        dev.ctx.destroy_cq(rcq),
        Errno::EBUSY,
        "destroy_cq of a QP's receive CQ",
    )?;
    dev.ctx.destroy_qp(qp.id).ctx("destroy_qp")?;
    dev.ctx
        .destroy_cq(scq)
        .ctx("destroy_cq(send CQ) after destroy_qp")?;
    dev.ctx
        .destroy_cq(rcq)
        .ctx("destroy_cq(receive CQ) after destroy_qp")?;
    Ok(())
}

async fn overflow(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    let scq = dev.cq(16)?;
    let tiny = dev.cq(1)?;
    let cap = QpCap {
        max_recv_wr: 64,
        ..QpCap::default()
    };
    let qp = dev.qp(
        pd,
        QpInit {
            recv_cq: tiny,
            cap,
            ..QpInit::on_cq(scq, None)
        },
    )?;
    let mr = dev.mr(pd, 4096, all_remote())?;
    dev.ctx
        .modify_qp(qp.id, &QpAttr::init(1, all_remote()))
        .ctx("modify_qp(INIT)")?;
    for i in 0..64u64 {
        dev.ctx
            .post_recv(
                qp.id,
                &crate::fabric::RecvWr {
                    wr_id: i,
                    sg_list: vec![mr.sge(0, 64)],
                },
            )
            .ctx(format!("post_recv #{i} in INIT"))?;
    }
    dev.ctx
        .modify_qp(qp.id, &QpAttr::state(QpState::Err))
        .ctx("modify_qp(ERR) flushing 64 receives")?;
    dev.event("CqErr(the 1-entry CQ)", |e| *e == AsyncEvent::CqErr(tiny))
        .await?;
    Ok(())
}
