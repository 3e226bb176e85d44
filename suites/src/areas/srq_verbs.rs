//! Area `srq-verbs`: software's verbs on an NVMe-oF SRQ and its QPs keep the rules of an
//! ordinary SRQ. Software still posts receives on the SRQ (for what the device does not
//! offload), arms its limit, queries it and creates QPs on it; the bounds and errnos of
//! `ibv_post_srq_recv`, `ibv_modify_srq`, `ibv_query_srq` and `ibv_create_qp` hold there as
//! on any SRQ.

use std::time::Duration;

use harness::fabric::{wait, Access, QpCap, QpInit, QpState, RecvWr, SrqAttr, WcOpcode, WcStatus};
use harness::initiator::misbehave;
use harness::wire::SglRepr;
use nix::errno::Errno;

use crate::framework::dut::expect_errno;
use crate::framework::session::{SessionOpts, FE_NSID};
use crate::framework::{blame, Case, Dut, Failure};
use crate::{check, check_eq};

const PORT: u16 = 4420;
const REQ: &str = "SW-SRQ-VERBS";

/// The largest `max_qp_wr` a case creates a QP of (a real device's bound can be far larger
/// than a case should allocate).
const MAX_QP_WR_TRIED: u32 = 16384;

/// `query_srq` of `srq` on the device context.
fn query(d: &Dut, srq: harness::fabric::SrqId, what: &str) -> Result<SrqAttr, Failure> {
    d.ctx
        .query_srq(srq)
        .map_err(|e| Failure::from(e).context(format!("query_srq {what}")))
}

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "srq-verbs",
            "recv-bounds",
            REQ,
            "software can post max_wr receives on the NVMe-oF SRQ and query_srq counts them; \
             one more is ENOMEM; a receive with more SGEs than max_sge is EINVAL",
            &[],
            |d| async move {
                let (pd, _, attrs, srq) = d.srq()?;
                let (max_wr, max_sge) = (attrs.rq.max_wr, attrs.rq.max_sge);
                let fresh = query(&d, srq.srq, "of a new SRQ")?;
                check_eq!(
                    fresh,
                    SrqAttr {
                        max_wr,
                        posted: 0,
                        srq_limit: 0
                    },
                    "query_srq of a new NVMe-oF SRQ"
                );
                let buf = d
                    .ctx
                    .reg_mr(pd, 64 * u64::from(max_sge + 1), Access::LOCAL_WRITE)?;
                let recv = |wr_id: u64, sges: u32| RecvWr {
                    wr_id,
                    sg_list: (0..sges).map(|i| buf.sge(64 * u64::from(i), 64)).collect(),
                };
                expect_errno(
                    d.ctx.post_srq_recv(srq.srq, &recv(0, max_sge + 1)),
                    Errno::EINVAL,
                    format!("a receive with max_sge ({max_sge}) + 1 SGEs"),
                )?;
                for i in 0..max_wr {
                    d.ctx
                        .post_srq_recv(srq.srq, &recv(u64::from(i), max_sge))
                        .map_err(|e| {
                            Failure::from(e).context(format!(
                                "receive {} of max_wr {max_wr}, with max_sge {max_sge} SGEs",
                                i + 1
                            ))
                        })?;
                }
                blame::count();
                let full = query(&d, srq.srq, "with max_wr receives posted")?;
                check_eq!(full.posted, max_wr, "query_srq's posted receives");
                expect_errno(
                    d.ctx.post_srq_recv(srq.srq, &recv(u64::from(max_wr), 1)),
                    Errno::ENOMEM,
                    "a receive past max_wr",
                )?;
                let after = query(&d, srq.srq, "after the refused receive")?;
                check_eq!(
                    after.posted,
                    max_wr,
                    "posted receives after the refused one"
                );
                Ok(())
            },
        ),
        Case::new(
            "srq-verbs",
            "limit-bounds",
            REQ,
            "arming the NVMe-oF SRQ's limit at max_wr succeeds and query_srq reports it; a limit \
             above max_wr is EINVAL and leaves the armed limit as it was",
            &[],
            |d| async move {
                let (_, _, attrs, srq) = d.srq()?;
                let max_wr = attrs.rq.max_wr;
                d.ctx
                    .arm_srq(srq.srq, max_wr)
                    .map_err(|e| Failure::from(e).context(format!("arm_srq(max_wr {max_wr})")))?;
                blame::count();
                check_eq!(
                    query(&d, srq.srq, "once armed")?.srq_limit,
                    max_wr,
                    "query_srq's limit"
                );
                expect_errno(
                    d.ctx.arm_srq(srq.srq, max_wr + 1),
                    Errno::EINVAL,
                    format!("arm_srq(max_wr {max_wr} + 1)"),
                )?;
                check_eq!(
                    query(&d, srq.srq, "after the refused limit")?.srq_limit,
                    max_wr,
                    "query_srq's limit after the refused one"
                );
                Ok(())
            },
        ),
        Case::new(
            "srq-verbs",
            "qp-caps",
            REQ,
            "a QP on the NVMe-oF SRQ may ask for the device's max_qp_wr send requests (16384 \
             when max_qp_wr is larger); one more than max_qp_wr is EINVAL",
            &[],
            |d| async move {
                let (pd, _, _, srq) = d.srq()?;
                let max = d.ctx.device_attr().max_qp_wr;
                let cq = d.ctx.create_cq(16)?;
                let init = |max_send_wr| QpInit {
                    send_cq: cq,
                    recv_cq: cq,
                    srq: Some(srq.srq),
                    cap: QpCap {
                        max_send_wr,
                        ..QpCap::default()
                    },
                };
                if max < u32::MAX {
                    expect_errno(
                        d.ctx.create_qp(pd, init(max + 1)),
                        Errno::EINVAL,
                        format!("create_qp with max_send_wr = max_qp_wr ({max}) + 1"),
                    )?;
                }
                // At the bound itself, unless the bound is more than a case should allocate:
                // then as many as a case does.
                let most = max.min(MAX_QP_WR_TRIED);
                let qp = d.ctx.create_qp(pd, init(most)).map_err(|e| {
                    Failure::from(e).context(format!(
                        "create_qp with max_send_wr {most} (max_qp_wr {max})"
                    ))
                })?;
                blame::count();
                d.ctx.destroy_qp(qp.id)?;
                Ok(())
            },
        ),
        Case::new(
            "srq-verbs",
            "receive-too-small",
            REQ,
            "a capsule longer than software's receive on the NVMe-oF SRQ completes that receive \
             with LOC_LEN_ERR on the QP it arrived on, and the QP goes to ERR",
            &[crate::framework::Need::Backends],
            |d| async move {
                let opts = SessionOpts {
                    format: d.ns_format(),
                    offload: false,
                    sw_recvs: 1,
                    ..Default::default()
                };
                let mut s = d.session(&opts, PORT).await?;
                let sgl = SglRepr::keyed(0x1000, d.ns_format().lba_data_size(), 0x77);
                let first = misbehave::read_sqe(1, FE_NSID, 0, 1, sgl)?.to_vec();
                misbehave::send_raw(s.io.queue(), &first)?;
                {
                    let _rule = blame::under("SW-NOT-ENABLED");
                    crate::areas::software::received(&d, &s, &first, "the first capsule").await?;
                }
                // Software's only receive is now 16 bytes: the next 64-byte capsule overflows it.
                let small = 7;
                d.ctx.post_srq_recv(
                    s.srq.srq,
                    &RecvWr {
                        wr_id: small,
                        sg_list: vec![s.sw_buf.sge(0, 16)],
                    },
                )?;
                let second = misbehave::read_sqe(2, FE_NSID, 1, 1, sgl)?.to_vec();
                misbehave::send_raw(s.io.queue(), &second)?;
                let wc = wait::completion(
                    d.ctx.as_ref(),
                    s.cq,
                    crate::framework::wait(Duration::from_secs(5)),
                )
                .await
                .map_err(|e| Failure::from(e).context("the receive too small: no completion"))?;
                check_eq!(wc.wr_id, small, "the completion's wr_id");
                check_eq!(wc.status, WcStatus::LocLenErr, "the completion's status");
                check_eq!(wc.opcode, WcOpcode::Recv, "the completion's opcode");
                check_eq!(wc.qp, s.qp, "the QP the capsule arrived on");
                let deadline =
                    tokio::time::Instant::now() + crate::framework::wait(Duration::from_secs(5));
                loop {
                    let state = d.ctx.query_qp(s.qp)?;
                    if state == QpState::Err {
                        break;
                    }
                    check!(
                        tokio::time::Instant::now() < deadline,
                        "the QP stayed in {state:?} after its receive failed"
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                blame::count();
                Ok(())
            },
        ),
    ]
}
