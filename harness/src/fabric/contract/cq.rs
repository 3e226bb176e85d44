//! Completion queues.

use nix::errno::Errno;

use super::{all_remote, contract_case, expect_errno, CaseResult, Context, ContractCase, Env};
use crate::fabric::{AsyncEvent, QpAttr, QpCap, QpInit, QpState};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "cq.create.bad-size-einval",
            "cq",
            &[],
            "create_cq of 0 entries or above max_cqe fails with EINVAL",
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
    dev.cq(1)?;
    Ok(())
}

async fn poll_empty(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let cq = dev.cq(16)?;
    let got = dev.ctx.poll_cq(cq, 16).ctx("poll_cq(new CQ, 16)")?;
    ensure!(got.is_empty(), "poll_cq of a new CQ returned {got:?}");
    let got = dev.ctx.poll_cq(cq, 0).ctx("poll_cq(new CQ, 0)")?;
    ensure!(got.is_empty(), "poll_cq(max 0) returned {got:?}");
    dev.no_wc(cq, "new CQ").await?;
    dev.ctx.destroy_cq(cq).ctx("destroy_cq(unused)")?;
    Ok(())
}

async fn destroy_busy(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    let scq = dev.cq(16)?;
    let rcq = dev.cq(16)?;
    let qp = dev.qp(
        pd,
        QpInit {
            send_cq: scq,
            recv_cq: rcq,
            srq: None,
            cap: QpCap::default(),
        },
    )?;
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
            send_cq: scq,
            recv_cq: tiny,
            srq: None,
            cap,
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
