//! Shared receive queues.

use nix::errno::Errno;

use super::{
    all_remote, check_bytes, connect_qps, contract_case, expect_errno, fill_queue, pattern,
    CaseResult, Context, ContractCase, Dev, Env, Failure, Need, PairOpts,
};
use crate::fabric::{
    Access, AsyncEvent, CqId, MrInfo, QpAttr, QpInfo, QpInit, QpState, RecvWr, SendOp, SendWr,
    SrqId, SrqInit, WcOpcode, WcStatus,
};
use crate::{check, check_eq};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "srq.recv.shared-by-two-qps",
            "srq",
            &[],
            "SENDs to two QPs consume receives of their one SRQ; completions name the QP and the source",
            shared
        ),
        contract_case!(
            "srq.create.bad-args-einval",
            "srq",
            &[],
            "create_srq with max_wr 0, above max_srq_wr or a limit above max_wr, and arm above max_wr, are EINVAL",
            create_bad
        ),
        contract_case!(
            "srq.limit.event-once",
            "srq",
            &[],
            "SrqLimitReached fires once when posted receives drop below the armed limit, and disarms",
            limit_once
        ),
        contract_case!(
            "srq.post.full-enomem",
            "srq",
            &[],
            "post_srq_recv past the SRQ's (possibly rounded-up) depth fails with ENOMEM",
            full
        ),
        contract_case!(
            "srq.destroy.in-use-ebusy",
            "srq",
            &[],
            "destroy_srq is EBUSY while a QP uses the SRQ, and succeeds after destroy_qp",
            destroy_busy
        ),
        contract_case!(
            "srq.qp-err.last-wqe-reached",
            "srq",
            &[Need::NotSoftRoce(
                "rxe of Linux 6.1 raises no IBV_EVENT_QP_LAST_WQE_REACHED when an SRQ-attached QP goes to ERR (6.12 does)",
            )],
            "an SRQ-attached QP moved to ERR raises QpLastWqeReached",
            last_wqe
        ),
    ]
}

/// `n` RC connections from `a` to SRQ-attached QPs on `b`.
struct Rig {
    a: Dev,
    b: Dev,
    a_cq: CqId,
    b_cq: CqId,
    srq: SrqId,
    qps: Vec<(QpInfo, QpInfo)>,
    src: MrInfo,
    dst: MrInfo,
}

fn rig(env: &Env, n: usize, max_wr: u32) -> Result<Rig, Failure> {
    let a = env.open("a", 0)?;
    let b = env.open("b", 1)?;
    let a_pd = a.pd()?;
    let b_pd = b.pd()?;
    let a_cq = a.cq(256)?;
    let b_cq = b.cq(256)?;
    let srq = b
        .ctx
        .create_srq(b_pd, SrqInit::new(max_wr))
        .ctx(format!("create_srq(max_wr {max_wr})"))?;
    let mut qps = Vec::new();
    for _ in 0..n {
        let qa = a.qp(a_pd, QpInit::on_cq(a_cq, None))?;
        let qb = b.qp(b_pd, QpInit::on_cq(b_cq, Some(srq)))?;
        connect_qps(&a, qa, &b, qb, PairOpts::default())?;
        qps.push((qa, qb));
    }
    let src = a.mr(a_pd, 4096, Access::LOCAL_WRITE)?;
    let dst = b.mr(b_pd, 65536, all_remote())?;
    Ok(Rig {
        a,
        b,
        a_cq,
        b_cq,
        srq,
        qps,
        src,
        dst,
    })
}

impl Rig {
    fn post(&self, wr_id: u64) -> CaseResult {
        let slot = wr_id % 256;
        self.b
            .ctx
            .post_srq_recv(
                self.srq,
                &RecvWr {
                    wr_id,
                    sg_list: vec![self.dst.sge(slot * 256, 256)],
                },
            )
            .ctx(format!("post_srq_recv(wr_id {wr_id})"))
    }

    /// A SEND of 8 bytes on connection `i`, waiting for both completions.
    async fn send(&self, i: usize, wr_id: u64) -> CaseResult {
        self.a
            .ctx
            .post_send(
                self.qps[i].0.id,
                &SendWr::new(wr_id, SendOp::Send, vec![self.src.sge(0, 8)]),
            )
            .ctx("post_send")?;
        self.a
            .completes(
                self.a_cq,
                "SEND to an SRQ-attached QP",
                wr_id,
                WcStatus::Success,
                Some(WcOpcode::Send),
            )
            .await?;
        let r = self.b.wc(self.b_cq, "SRQ receive").await?;
        check!(
            r.status == WcStatus::Success,
            "SRQ receive: expected SUCCESS, got {r:?}"
        );
        Ok(())
    }

    fn posted(&self) -> Result<u32, Failure> {
        Ok(self.b.ctx.query_srq(self.srq).ctx("query_srq")?.posted)
    }
}

async fn shared(env: Env) -> CaseResult {
    let r = rig(&env, 2, 16)?;
    for id in 0..4 {
        r.post(id)?;
    }
    check_eq!(r.posted()?, 4, "query_srq().posted after four receives");
    let m0 = pattern(env.seed, 60, 40);
    let m1 = pattern(env.seed, 61, 50);
    r.a.write(&r.src, 0, &m0)?;
    r.a.write(&r.src, 1024, &m1)?;
    r.a.ctx
        .post_send(
            r.qps[0].0.id,
            &SendWr::new(1, SendOp::Send, vec![r.src.sge(0, 40)]),
        )
        .ctx("post_send on the first connection")?;
    r.a.ctx
        .post_send(
            r.qps[1].0.id,
            &SendWr::new(2, SendOp::Send, vec![r.src.sge(1024, 50)]),
        )
        .ctx("post_send on the second connection")?;
    let s = r.a.wcs(r.a_cq, 2, "two SENDs").await?;
    for wc in &s {
        check!(
            wc.status == WcStatus::Success,
            "SEND to an SRQ-attached QP: {wc:?}"
        );
    }
    let got = r.b.wcs(r.b_cq, 2, "two SRQ receives").await?;
    let mut seen = Vec::new();
    for wc in &got {
        check!(
            wc.status == WcStatus::Success && wc.opcode == WcOpcode::Recv && wc.wr_id < 4,
            "SRQ receive: expected SUCCESS of a posted wr_id (0..4), got {wc:?}"
        );
        let (i, msg) = if wc.qp == r.qps[0].1.id {
            (0, &m0)
        } else {
            (1, &m1)
        };
        check_eq!(
            wc.qp,
            r.qps[i].1.id,
            "completion's qp (one of the two SRQ-attached QPs)"
        );
        check_eq!(
            wc.qp_num,
            r.qps[i].1.qpn,
            "completion's qp_num for {}",
            wc.qp
        );
        check_eq!(
            wc.src_qp,
            r.qps[i].0.qpn,
            "completion's src_qp for {}",
            wc.qp
        );
        check_eq!(wc.byte_len as usize, msg.len(), "byte_len on {}", wc.qp);
        check_bytes(
            &r.b.read(&r.dst, (wc.wr_id % 256) * 256, msg.len())?,
            msg,
            &format!("bytes in SRQ receive wr_id {}", wc.wr_id),
        )?;
        seen.push(i);
        check!(
            !seen[..seen.len() - 1].contains(&i),
            "two receives completed on {}",
            wc.qp
        );
    }
    check_eq!(
        r.posted()?,
        2,
        "query_srq().posted after two of four receives were consumed"
    );
    Ok(())
}

async fn create_bad(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let pd = dev.pd()?;
    let max = dev.ctx.device_attr().max_srq_wr;
    let init = SrqInit::new(16);
    expect_errno(
        dev.ctx.create_srq(pd, SrqInit { max_wr: 0, ..init }),
        Errno::EINVAL,
        "create_srq(max_wr 0)",
    )?;
    if max < u32::MAX {
        expect_errno(
            dev.ctx.create_srq(
                pd,
                SrqInit {
                    max_wr: max + 1,
                    ..init
                },
            ),
            Errno::EINVAL,
            format!("create_srq(max_wr {} above max_srq_wr)", max + 1),
        )?;
    }
    expect_errno(
        dev.ctx.create_srq(
            pd,
            SrqInit {
                srq_limit: 17,
                ..init
            },
        ),
        Errno::EINVAL,
        "create_srq(max_wr 16, srq_limit 17)",
    )?;
    let srq = dev.ctx.create_srq(pd, init).ctx("create_srq(max_wr 16)")?;
    let attr = dev.ctx.query_srq(srq).ctx("query_srq")?;
    check!(
        attr.max_wr >= 16,
        "query_srq().max_wr {} is below the 16 asked",
        attr.max_wr
    );
    check_eq!(attr.posted, 0, "query_srq().posted of a new SRQ");
    check_eq!(
        attr.srq_limit,
        0,
        "query_srq().srq_limit of an SRQ created unarmed"
    );
    expect_errno(
        dev.ctx.arm_srq(srq, attr.max_wr + 1),
        Errno::EINVAL,
        format!("arm_srq({}) above max_wr {}", attr.max_wr + 1, attr.max_wr),
    )?;
    Ok(())
}

async fn limit_once(env: Env) -> CaseResult {
    let r = rig(&env, 1, 16)?;
    for id in 0..8 {
        r.post(id)?;
    }
    r.b.ctx.arm_srq(r.srq, 4).ctx("arm_srq(4)")?;
    check_eq!(
        r.b.ctx.query_srq(r.srq).ctx("query_srq")?.srq_limit,
        4,
        "srq_limit after arm_srq(4)"
    );
    let is_limit = |e: &AsyncEvent| *e == AsyncEvent::SrqLimitReached(r.srq);
    for id in 0..4 {
        r.send(0, id).await?;
    }
    check_eq!(r.posted()?, 4, "posted after 4 of 8 receives were consumed");
    r.b.no_event(
        "SrqLimitReached while posted (4) is not below the limit (4)",
        is_limit,
    )
    .await?;
    r.send(0, 4).await?;
    r.b.event(
        "SrqLimitReached once posted (3) is below the limit (4)",
        is_limit,
    )
    .await?;
    check_eq!(
        r.b.ctx.query_srq(r.srq).ctx("query_srq")?.srq_limit,
        0,
        "srq_limit after the event (disarmed)"
    );
    // Refill above the old limit and drain below it again: no second event without re-arming.
    for id in 100..104 {
        r.post(id)?;
    }
    for id in 5..10 {
        r.send(0, id).await?;
    }
    r.b.no_event("a second SrqLimitReached without re-arming", is_limit)
        .await?;
    Ok(())
}

async fn full(env: Env) -> CaseResult {
    let dev = env.open("b", 0)?;
    let pd = dev.pd()?;
    let mr = dev.mr(pd, 4096, Access::LOCAL_WRITE)?;
    let srq = dev
        .ctx
        .create_srq(pd, SrqInit::new(8))
        .ctx("create_srq(8)")?;
    let recvs = "receives on an SRQ of max_wr 8";
    let posted = fill_queue("post_srq_recv", "a full SRQ", recvs, 8 * 4 + 64, |i| {
        let wr = RecvWr {
            wr_id: i,
            sg_list: vec![mr.sge(0, 64)],
        };
        dev.ctx.post_srq_recv(srq, &wr)
    })?;
    let attr = dev.ctx.query_srq(srq).ctx("query_srq")?;
    check_eq!(
        u64::from(attr.posted),
        posted,
        "query_srq().posted of a full SRQ"
    );
    Ok(())
}

async fn destroy_busy(env: Env) -> CaseResult {
    let dev = env.open("b", 0)?;
    let (pd, srq, qp) = dev.srq_qp(8)?;
    expect_errno(
        dev.ctx.destroy_srq(srq),
        Errno::EBUSY,
        "destroy_srq with a QP attached",
    )?;
    expect_errno(
        dev.ctx.dealloc_pd(pd),
        Errno::EBUSY,
        "dealloc_pd with an SRQ and QP on it",
    )?;
    dev.ctx.destroy_qp(qp.id).ctx("destroy_qp")?;
    dev.ctx
        .destroy_srq(srq)
        .ctx("destroy_srq after destroy_qp")?;
    Ok(())
}

async fn last_wqe(env: Env) -> CaseResult {
    let r = rig(&env, 1, 16)?;
    for id in 0..2 {
        r.post(id)?;
    }
    r.send(0, 1).await?;
    let qb = r.qps[0].1.id;
    r.b.ctx
        .modify_qp(qb, &QpAttr::state(QpState::Err))
        .ctx("modify_qp(ERR) of the SRQ-attached QP")?;
    r.b.event(&format!("QpLastWqeReached({qb})"), |e| {
        *e == AsyncEvent::QpLastWqeReached(qb)
    })
    .await?;
    // The SRQ's remaining receive stays posted for other QPs: it is not flushed.
    check_eq!(
        r.posted()?,
        1,
        "SRQ receives left after the attached QP went to ERR"
    );
    Ok(())
}
