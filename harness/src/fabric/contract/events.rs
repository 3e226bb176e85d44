//! Async events: none without a cause, and only to the context that owns the object.

use super::{
    all_remote, contract_case, rdma_write, CaseResult, ContractCase, Env, Need, PairOpts, QUIET,
};
use crate::fabric::{AsyncEvent, QpAttr, QpState, WcStatus};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "events.idle.none",
            "events",
            &[],
            "successful traffic on a pair raises no QP, CQ or SRQ async event",
            idle_none
        ),
        contract_case!(
            "events.modify-err.no-fatal",
            "events",
            &[],
            "an application moving its QP to ERR gets no QpFatal (or other QP error) event",
            modify_err_no_fatal
        ),
        contract_case!(
            "events.access-err.owner-only",
            "events",
            &[Need::NotSoftRoce(
                "rxe (Linux 6.1 and 6.12) raises no IBV_EVENT_QP_ACCESS_ERR at the responder of a remote access violation",
            )],
            "QpAccessErr of a responder QP is delivered to the responder's context only",
            owner_only
        ),
    ]
}

fn qp_or_cq_event(e: &AsyncEvent) -> bool {
    !matches!(e, AsyncEvent::PortActive(_) | AsyncEvent::PortErr(_))
}

async fn idle_none(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(4096, all_remote())?;
    p.b.post_recv(1, vec![dst.sge(0, 64)])?;
    p.a.send(2, vec![src.sge(0, 64)])?;
    p.a.post_send(rdma_write(3, dst.addr + 64, dst.rkey, vec![src.sge(0, 64)]))?;
    p.a.wcs(2, "SEND and RDMA WRITE").await?;
    p.b.wc("receive").await?;
    tokio::time::sleep(QUIET).await;
    p.a.dev
        .no_event("QP/CQ/SRQ event after successful traffic", qp_or_cq_event)
        .await?;
    p.b.dev
        .no_event("QP/CQ/SRQ event after successful traffic", qp_or_cq_event)
        .await?;
    Ok(())
}

async fn modify_err_no_fatal(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    p.a.modify(QpAttr::state(QpState::Err))?;
    let qp = p.a.qp.id;
    p.a.dev
        .no_event("QP error event after an application modify_qp(ERR)", |e| {
            matches!(e, AsyncEvent::QpFatal(q) | AsyncEvent::QpReqErr(q) | AsyncEvent::QpAccessErr(q) if *q == qp)
        })
        .await?;
    p.b.dev
        .no_event(
            "event on the peer of a QP the application moved to ERR",
            qp_or_cq_event,
        )
        .await?;
    Ok(())
}

async fn owner_only(env: Env) -> CaseResult {
    let p = env.pair(PairOpts::default())?;
    let (src, dst) = p.mrs(4096, all_remote())?;
    let bad = dst.rkey ^ 0x00ff_ff00;
    p.a.post_completes(
        rdma_write(1, dst.addr, bad, vec![src.sge(0, 64)]),
        WcStatus::RemAccessErr,
        "RDMA WRITE with a wrong rkey",
    )
    .await?;
    let qp = p.b.qp.id;
    p.b.dev
        .event(&format!("QpAccessErr({qp}) at the responder"), |e| {
            *e == AsyncEvent::QpAccessErr(qp)
        })
        .await?;
    p.a.dev
        .no_event("QpAccessErr at the requester's context", |e| {
            matches!(e, AsyncEvent::QpAccessErr(_))
        })
        .await?;
    Ok(())
}
