//! The target software's side of an I/O queue's Fabrics Connect, for cases and tests that
//! build an offloading target by hand on the offload API (no control plane): the Connect
//! arrives through the device as a software receive on the NVMe-oF SRQ; software checks
//! it, posts the receive again and answers with success. The RFC enables offload on the QP
//! only after this ("once a CONNECT command was received"), and the device learns the
//! queue's QID and size from the Connect as it passes through it.

use std::sync::Arc;
use std::time::Duration;

use super::admin::HostConfig;
use super::connect::{fabrics_connect, ConnectOptions};
use super::error::{InitiatorError, Result};
use super::queue::HostQueue;
use crate::fabric::{
    wait, Access, CqId, DeviceContext, MrInfo, PdId, QpId, RecvWr, SendOp, SendWr, SrqId, WcStatus,
};
use crate::wire::{ConnectSuccess, CqeRepr, FabricsRepr, Status, CQE_LEN, SQE_LEN};

/// Software's receives on an NVMe-oF SRQ: receive `wr_base + i` scatters into slot `i` of
/// `buf`, each `slot` bytes long.
#[derive(Debug, Clone, Copy)]
pub struct SoftwareRecvs {
    /// The SRQ.
    pub srq: SrqId,
    /// The buffer.
    pub buf: MrInfo,
    /// Bytes per slot (the SRQ's IOCCSZ × 16).
    pub slot: u64,
    /// The work request ID of slot 0.
    pub wr_base: u64,
    /// Whether software posts the receive the Connect used again (a standing pool of
    /// receives), or not (a receive posted for the Connect alone).
    pub repost: bool,
}

/// Takes the host's Connect from software's receive on the SRQ (completed on the target
/// QP's CQ `cq`), checks it is the one `sent` describes, posts the receive again and
/// answers on `qp` with success: CNTLID `cntlid`, SQHD 1 (the queue's first capsule),
/// SQID = the Connect's QID. `pd` holds the response buffer. Every wait is bounded by
/// `bound`.
#[allow(clippy::too_many_arguments)]
pub async fn answer_connect(
    ctx: &Arc<dyn DeviceContext>,
    (qp, cq, pd): (QpId, CqId, PdId),
    sw: SoftwareRecvs,
    sent: &ConnectOptions,
    cntlid: u16,
    bound: Duration,
) -> Result<()> {
    let protocol = |m: String| InitiatorError::Protocol(format!("target software: {m}"));
    let wc = wait::completion(ctx.as_ref(), cq, bound)
        .await
        .map_err(|e| InitiatorError::from_wait(e, "software's receive of the Connect"))?;
    if wc.status != WcStatus::Success || wc.wr_id < sw.wr_base {
        return Err(protocol(format!(
            "expected the host's Connect as a receive on the SRQ, got wr_id {} {}",
            wc.wr_id,
            wc.status.name()
        )));
    }
    let off = (wc.wr_id - sw.wr_base) * sw.slot;
    let mut capsule = vec![0u8; SQE_LEN];
    ctx.mr_read(sw.buf.id, off, &mut capsule)?;
    if sw.repost {
        ctx.post_srq_recv(
            sw.srq,
            &RecvWr {
                wr_id: wc.wr_id,
                sg_list: vec![sw.buf.sge(off, sw.slot as u32)],
            },
        )?;
    }
    let connect = match FabricsRepr::parse_bytes(&capsule) {
        Ok(FabricsRepr::Connect(c)) => c,
        other => {
            return Err(protocol(format!(
                "expected the host's Connect, got {other:?}"
            )))
        }
    };
    if (connect.qid, connect.sqsize) != (sent.qid, sent.sqsize) {
        return Err(protocol(format!(
            "the Connect received has QID {} SQSIZE {}; the host sent QID {} SQSIZE {}",
            connect.qid, connect.sqsize, sent.qid, sent.sqsize
        )));
    }
    let cqe = CqeRepr {
        result: u64::from(ConnectSuccess { cntlid, authreq: 0 }.dw0()),
        sq_head: 1,
        sq_id: connect.qid,
        cid: connect.cid,
        phase: false,
        status: Status::SUCCESS,
    };
    let resp = ctx.reg_mr(pd, CQE_LEN as u64, Access::LOCAL_WRITE)?;
    ctx.mr_write(resp.id, 0, &cqe.to_bytes()?)?;
    ctx.post_send(
        qp,
        &SendWr::new(1, SendOp::Send, vec![resp.sge(0, CQE_LEN as u32)]),
    )?;
    let done = wait::completion(ctx.as_ref(), cq, bound)
        .await
        .map_err(|e| InitiatorError::from_wait(e, "software's Connect response"))?;
    ctx.dereg_mr(resp.id)?;
    if done.status != WcStatus::Success {
        return Err(protocol(format!(
            "the Connect response's SEND completed with {}",
            done.status.name()
        )));
    }
    Ok(())
}

/// Connects `queue` (CM-connected to target QP `qp`, whose CQ is `cq`, in `pd`) with a
/// Fabrics Connect that target software answers through one receive it posts on `srq`
/// for it: what a target built by hand does before `qp_set_nvmf(ENABLE)`. Returns the
/// CNTLID granted (`cntlid`).
pub async fn connect_through_software(
    queue: &mut HostQueue,
    ctx: &Arc<dyn DeviceContext>,
    (qp, cq, pd): (QpId, CqId, PdId),
    srq: SrqId,
    cntlid: u16,
    bound: Duration,
) -> Result<u16> {
    let slot = SQE_LEN as u64;
    let buf = ctx.reg_mr(pd, slot, Access::LOCAL_WRITE)?;
    let sw = SoftwareRecvs {
        srq,
        buf,
        slot,
        wr_base: CONNECT_WR,
        repost: false,
    };
    ctx.post_srq_recv(
        srq,
        &RecvWr {
            wr_id: CONNECT_WR,
            sg_list: vec![buf.sge(0, slot as u32)],
        },
    )?;
    let opts = ConnectOptions::for_queue(queue, 0, false);
    let data = HostConfig::new(HAND_BUILT_NQN).connect_data(cntlid);
    let (hosted, answered) = tokio::join!(
        fabrics_connect(queue, &data, &opts),
        answer_connect(ctx, (qp, cq, pd), sw, &opts, cntlid, bound)
    );
    answered?;
    let granted = hosted?;
    ctx.dereg_mr(buf.id)?;
    Ok(granted.cntlid)
}

/// The work request ID of the receive [`connect_through_software`] posts.
pub const CONNECT_WR: u64 = 999;

/// The subsystem NQN hosts of hand-built targets name in their Connect data.
pub const HAND_BUILT_NQN: &str = "nqn.2024-01.io.nvmf-conform:session";
