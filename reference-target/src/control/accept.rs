//! A CM connect request on one of the target's listeners (its private data, 32 bytes),
//! checked in this order, each failure a CM reject whose private data is
//! `{recfmt 0, sts}`: fewer than 32 bytes → 01h invalid length; RECFMT ≠ 0 → 02h; QID above
//! [`MAX_IO_QUEUES`] → 03h; HSQSIZE 0 or HSQSIZE + 1 above the queue's limit (admin 32,
//! I/O CAP.MQES + 1) → 04h; HRQSIZE 0 or above that limit → 05h; QP resources → 06h.
//! Accepted: CRQSIZE = HSQSIZE + 1; the QP (admin queues too) is attached to the
//! subsystem's NVMe-oF SRQ, and the connection's task starts (`control/serve.rs`).

use std::sync::Arc;

use harness::fabric::{Access, ConnId, ConnParam, ListenerId, QpCap, QpInit};
use harness::wire::{CmAcceptRepr, CmRejectRepr, CmRejectStatus, CmRequest, CM_REQUEST_LEN};
use tokio::sync::watch;

use super::identity::{ADMIN_DEPTH_MAX, MAX_IO_QUEUES};
use super::queue::Queue;
use super::state::{ConnEntry, Shared};

fn reject(sh: &Shared, conn: ConnId, sts: CmRejectStatus, why: String) {
    let r = CmRejectRepr {
        recfmt: 0,
        status: sts,
    };
    let _ = sh.ctx.cm_reject(conn, &r.to_bytes());
    sh.log(format!("cm-reject sts={:#04x} {why}", sts as u16));
}

/// A CM connect request on one of the target's listeners: check, then accept (and start
/// the connection task) or reject.
pub(crate) fn on_connect_request(
    sh: &Arc<Shared>,
    conn: ConnId,
    listener: ListenerId,
    param: &ConnParam,
) {
    let Some(&port) = sh.listeners.get(&listener) else {
        reject(
            sh,
            conn,
            CmRejectStatus::NoResources,
            "unknown listener".into(),
        );
        return;
    };
    let sub = sh.ports[port].sub;
    let pd_bytes = &param.private_data;
    if pd_bytes.len() < CM_REQUEST_LEN {
        reject(
            sh,
            conn,
            CmRejectStatus::InvalidLength,
            format!("private data of {} bytes", pd_bytes.len()),
        );
        return;
    }
    let v = CmRequest::new_unchecked(&pd_bytes[..CM_REQUEST_LEN]);
    let (recfmt, qid, hrqsize, hsqsize) = (v.recfmt(), v.qid(), v.hrqsize(), v.hsqsize());
    if recfmt != 0 {
        reject(
            sh,
            conn,
            CmRejectStatus::InvalidRecfmt,
            format!("recfmt {recfmt}"),
        );
        return;
    }
    if qid > MAX_IO_QUEUES {
        reject(sh, conn, CmRejectStatus::InvalidQid, format!("qid {qid}"));
        return;
    }
    let s = &sh.subs[sub];
    let limit = if qid == 0 {
        ADMIN_DEPTH_MAX
    } else {
        u32::from(s.depth)
    };
    if hsqsize == 0 || u32::from(hsqsize) + 1 > limit {
        reject(
            sh,
            conn,
            CmRejectStatus::InvalidHsqsize,
            format!("hsqsize {hsqsize} qid {qid}"),
        );
        return;
    }
    if hrqsize == 0 || u32::from(hrqsize) > limit {
        reject(
            sh,
            conn,
            CmRejectStatus::InvalidHrqsize,
            format!("hrqsize {hrqsize} qid {qid}"),
        );
        return;
    }
    let ctx = &sh.ctx;
    let depth = u32::from(hsqsize) + 1;
    let built = (|| {
        let cq = ctx.create_cq(4 * depth + 64)?;
        let qp = match ctx.create_qp(
            s.pd,
            QpInit {
                send_cq: cq,
                recv_cq: cq,
                srq: Some(s.srq.srq),
                cap: QpCap {
                    max_send_wr: 2 * depth + 16,
                    max_recv_wr: 1,
                    max_send_sge: 1,
                    max_recv_sge: 1,
                },
            },
        ) {
            Ok(q) => q,
            Err(e) => {
                let _ = ctx.destroy_cq(cq);
                return Err(e);
            }
        };
        let resp = ctx.reg_mr(s.pd, 64, Access::LOCAL_WRITE)?;
        let data = ctx.reg_mr(s.pd, s.mdts, Access::LOCAL_WRITE)?;
        Ok((cq, qp, resp, data))
    })();
    let (cq, qp, resp, data) = match built {
        Ok(x) => x,
        Err(e) => {
            reject(
                sh,
                conn,
                CmRejectStatus::NoResources,
                format!("resources: {e}"),
            );
            return;
        }
    };
    let accept = CmAcceptRepr {
        recfmt: 0,
        crqsize: hsqsize.saturating_add(1),
    };
    let ird = ctx.device_attr().max_qp_rd_atom.min(255) as u8;
    let param_out = ConnParam {
        private_data: accept.to_bytes().to_vec(),
        responder_resources: 0,
        initiator_depth: param.responder_resources.min(ird).max(1),
        rnr_retry_count: 7,
    };
    let (tx, rx) = watch::channel(false);
    sh.lock().conns.insert(conn, ConnEntry { cancel: tx });
    if let Err(e) = ctx.cm_accept(conn, qp.id, &param_out) {
        sh.lock().conns.remove(&conn);
        let _ = ctx.destroy_qp(qp.id);
        let _ = ctx.destroy_cq(cq);
        let _ = ctx.dereg_mr(resp.id);
        let _ = ctx.dereg_mr(data.id);
        sh.log(format!("cm-accept-failed {e}"));
        return;
    }
    sh.log(format!(
        "cm-accept subsystem={} qid={qid} hsqsize={hsqsize} hrqsize={hrqsize}",
        s.cfg.nqn
    ));
    let q = Queue::new(sh.clone(), port, conn, qp.id, cq, (qid, depth), resp, data);
    sh.spawn(q.run(rx));
}
