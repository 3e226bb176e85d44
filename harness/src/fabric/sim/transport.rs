//! The RC transport of the simulated fabric: executing send requests, receives, RDMA,
//! acknowledgements, RNR and transport retries, and flushing on error.
//!
//! A QP executes its send queue in order, one request on the wire at a time, which keeps
//! RC ordering (a request blocked by RNR blocks those behind it, as on real hardware).

use std::time::Duration;

use super::net::{Net, PendingSend, Timed, ACK_TIMEOUT, RNR_TIMER};
use super::tap::{AckKind, TapMessage, TapOp};
use crate::fabric::{
    Access, AsyncEvent, MrId, QpId, QpState, SendOp, SendWr, Sge, WcOpcode, WcStatus,
    WorkCompletion,
};

/// Why a local scatter/gather list is unusable.
pub(crate) struct SgeFault;

impl Net {
    /// Finds the region of `ctx` an SGE points into and checks PD, bounds and rights.
    fn sge_region(
        &self,
        ctx: usize,
        pd: crate::fabric::PdId,
        sge: &Sge,
        need: Access,
    ) -> Result<(MrId, usize), SgeFault> {
        let c = &self.ctxs[ctx];
        let (id, mr) = c
            .mrs
            .iter()
            .find(|(_, m)| m.lkey == sge.lkey)
            .ok_or(SgeFault)?;
        if mr.pd != pd || !mr.access.contains(need) {
            return Err(SgeFault);
        }
        let off = sge.addr.checked_sub(mr.addr).ok_or(SgeFault)?;
        let end = off.checked_add(u64::from(sge.length)).ok_or(SgeFault)?;
        if end > mr.data.len() as u64 {
            return Err(SgeFault);
        }
        Ok((*id, off as usize))
    }

    /// Checks a whole list.
    pub(crate) fn check_sges(
        &self,
        ctx: usize,
        pd: crate::fabric::PdId,
        sges: &[Sge],
        need: Access,
    ) -> Result<(), SgeFault> {
        for s in sges {
            self.sge_region(ctx, pd, s, need)?;
        }
        Ok(())
    }

    /// Reads a checked gather list.
    fn gather(&self, ctx: usize, pd: crate::fabric::PdId, sges: &[Sge]) -> Vec<u8> {
        let mut out = Vec::new();
        for s in sges {
            if let Ok((mr, off)) = self.sge_region(ctx, pd, s, Access::empty()) {
                let m = &self.ctxs[ctx].mrs[&mr];
                out.extend_from_slice(&m.data[off..off + s.length as usize]);
            }
        }
        out
    }

    /// Writes into a checked scatter list; returns false when it is too small.
    fn scatter(&mut self, ctx: usize, pd: crate::fabric::PdId, sges: &[Sge], data: &[u8]) -> bool {
        let cap: u64 = sges.iter().map(|s| u64::from(s.length)).sum();
        if (data.len() as u64) > cap {
            return false;
        }
        let mut rest = data;
        for s in sges {
            if rest.is_empty() {
                break;
            }
            if let Ok((mr, off)) = self.sge_region(ctx, pd, s, Access::empty()) {
                let n = rest.len().min(s.length as usize);
                let m = self.ctxs[ctx].mrs.get_mut(&mr).expect("checked region");
                m.data[off..off + n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
        }
        true
    }

    /// Puts the head of a QP's send queue on the wire if it is idle and in RTS.
    pub(crate) fn kick(&mut self, ctx: usize, qp: QpId) {
        let Some(q) = self.ctxs[ctx].qps.get(&qp) else {
            return;
        };
        if q.state != QpState::Rts || q.head_in_flight || q.sq.is_empty() {
            return;
        }
        let (pd, head_seq) = (q.pd, q.sq[0].seq);
        let (sges, need, carried) = {
            let h = &q.sq[0];
            let (need, carried) = match h.wr.op {
                SendOp::RdmaRead { .. } => (Access::LOCAL_WRITE, 0),
                _ => (Access::empty(), sge_bytes(&h.wr.sg_list)),
            };
            (h.wr.sg_list.clone(), need, carried)
        };
        if self.check_sges(ctx, pd, &sges, need).is_err() {
            self.fail_head(ctx, qp, WcStatus::LocProtErr);
            return;
        }
        let sent = self.now() + self.latency() + self.link.serialisation(carried);
        let q = self.ctxs[ctx].qps.get_mut(&qp).expect("qp exists");
        let at = sent.max(q.last_arrival);
        q.last_arrival = at;
        q.head_in_flight = true;
        self.schedule(
            at,
            Timed::Arrive {
                ctx,
                qp,
                seq: head_seq,
            },
        );
    }

    /// Completes the head request with an error and moves the QP to ERR.
    pub(crate) fn fail_head(&mut self, ctx: usize, qp: QpId, status: WcStatus) {
        let Some(q) = self.ctxs[ctx].qps.get_mut(&qp) else {
            return;
        };
        let Some(head) = q.sq.pop_front() else { return };
        q.head_in_flight = false;
        let (cq, qpn) = (q.send_cq, q.qpn);
        self.push_wc(ctx, cq, send_wc(&head.wr, status, qp, qpn, 0));
        self.qp_to_err(ctx, qp);
    }

    /// Moves a QP to ERR and flushes everything outstanding with WR_FLUSH_ERR.
    pub(crate) fn qp_to_err(&mut self, ctx: usize, qp: QpId) {
        let Some(q) = self.ctxs[ctx].qps.get_mut(&qp) else {
            return;
        };
        let was_err = q.state == QpState::Err;
        q.state = QpState::Err;
        q.head_in_flight = false;
        let sends: Vec<PendingSend> = q.sq.drain(..).collect();
        let recvs: Vec<_> = q.rq.drain(..).collect();
        let (scq, rcq, qpn, srq) = (q.send_cq, q.recv_cq, q.qpn, q.srq);
        for s in &sends {
            self.push_wc(ctx, scq, send_wc(&s.wr, WcStatus::WrFlushErr, qp, qpn, 0));
        }
        for r in recvs {
            self.push_wc(ctx, rcq, flush_recv_wc(r.wr_id, qp, qpn));
        }
        if srq.is_some() && !was_err {
            self.push_event(ctx, AsyncEvent::QpLastWqeReached(qp));
        }
    }

    /// The head request of `qp` (sequence `seq`) reaches the peer.
    pub(crate) fn on_arrive(&mut self, ctx: usize, qp: QpId, seq: u64) {
        let now = self.now();
        let Some(q) = self.ctxs[ctx].qps.get(&qp) else {
            return;
        };
        if q.state != QpState::Rts || q.sq.front().map(|h| h.seq) != Some(seq) {
            return; // flushed or reset meanwhile
        }
        let (pd, qpn, dest) = (q.pd, q.qpn, q.dest);
        let (op, sg_list) = {
            let h = &q.sq[0];
            (h.wr.op, h.wr.sg_list.clone())
        };
        let from_dev = self.ctxs[ctx].device;
        let to_dev = dest.and_then(|d| self.device_by_gid(&d.gid));
        // Resolve the responder QP; anything missing means the packet is lost.
        let remote = match (dest, to_dev) {
            (Some(d), Some(td)) if self.path_up(from_dev, qpn, Some(td)) => self.devices[td]
                .qpns
                .get(&d.qpn)
                .copied()
                .filter(|(rc, rq)| {
                    let r = &self.ctxs[*rc].qps[rq];
                    matches!(r.state, QpState::Rtr | QpState::Rts)
                        && r.dest.map(|x| x.qpn) == Some(qpn)
                        && !self.dropped.contains(&(td, d.qpn))
                }),
            _ => None,
        };
        let Some((rctx, rqp)) = remote else {
            self.lost(ctx, qp, seq);
            return;
        };
        let dst_qpn = dest.map(|d| d.qpn).unwrap_or(0);
        self.tap(|| {
            let op = match op {
                SendOp::Send => TapOp::Send {
                    payload: self.gather(ctx, pd, &sg_list),
                    invalidate: None,
                },
                SendOp::SendWithInv { rkey } => TapOp::Send {
                    payload: self.gather(ctx, pd, &sg_list),
                    invalidate: Some(rkey),
                },
                SendOp::RdmaWrite { remote_addr, rkey } => TapOp::RdmaWrite {
                    va: remote_addr,
                    rkey,
                    payload: self.gather(ctx, pd, &sg_list),
                },
                SendOp::RdmaRead { remote_addr, rkey } => TapOp::RdmaRead {
                    va: remote_addr,
                    rkey,
                    len: sg_list.iter().map(|s| s.length).fold(0, u32::wrapping_add),
                },
            };
            let msg = TapMessage::Request {
                src_qpn: qpn,
                dst_qpn,
                wr: seq,
                op,
            };
            Some((self.ctx_addr(ctx), self.ctx_addr(rctx), msg))
        });
        // Tells the tap of the NAK the responder returns.
        let nak = |net: &Net, kind: AckKind| {
            net.tap(|| {
                let msg = TapMessage::Ack {
                    src_qpn: dst_qpn,
                    dst_qpn: qpn,
                    wr: seq,
                    kind,
                };
                Some((net.ctx_addr(rctx), net.ctx_addr(ctx), msg))
            })
        };
        {
            let r = self.ctxs[rctx].qps.get_mut(&rqp).expect("resolved");
            if r.state == QpState::Rtr && !r.comm_est_sent {
                r.comm_est_sent = true;
                self.push_event(rctx, AsyncEvent::CommEst(rqp));
            }
        }
        let r = &self.ctxs[rctx].qps[&rqp];
        let (rpd, rqpn, raccess, rsrq, rcq) = (r.pd, r.qpn, r.access, r.srq, r.recv_cq);
        match op {
            SendOp::Send | SendOp::SendWithInv { .. } => {
                let payload = self.gather(ctx, pd, &sg_list);
                // Take a receive from the SRQ or the QP's own queue.
                let recv = match rsrq {
                    Some(s) => {
                        let srq = self.ctxs[rctx].srqs.get_mut(&s).expect("srq of live qp");
                        let r = srq.queue.pop_front();
                        let fire =
                            r.is_some() && srq.limit > 0 && (srq.queue.len() as u32) < srq.limit;
                        if fire {
                            srq.limit = 0;
                            self.push_event(rctx, AsyncEvent::SrqLimitReached(s));
                        }
                        r
                    }
                    None => self.ctxs[rctx]
                        .qps
                        .get_mut(&rqp)
                        .and_then(|r| r.rq.pop_front()),
                };
                let Some(recv) = recv else {
                    nak(self, AckKind::RnrNak);
                    self.rnr(ctx, qp, seq);
                    return;
                };
                let mut wc = WorkCompletion {
                    wr_id: recv.wr_id,
                    status: WcStatus::Success,
                    opcode: WcOpcode::Recv,
                    byte_len: payload.len() as u32,
                    qp: rqp,
                    qp_num: rqpn,
                    src_qp: qpn,
                    invalidated_rkey: None,
                };
                // A receive that cannot take the payload: (its completion's status, the NAK,
                // the sender's completion status).
                let refused = if self
                    .check_sges(rctx, rpd, &recv.sg_list, Access::LOCAL_WRITE)
                    .is_err()
                {
                    Some((
                        WcStatus::LocProtErr,
                        AckKind::NakRemoteOp,
                        WcStatus::RemOpErr,
                    ))
                } else if !self.scatter(rctx, rpd, &recv.sg_list, &payload) {
                    Some((
                        WcStatus::LocLenErr,
                        AckKind::NakInvalidRequest,
                        WcStatus::RemInvReqErr,
                    ))
                } else {
                    None
                };
                if let Some((status, ack, sender_status)) = refused {
                    wc.status = status;
                    nak(self, ack);
                    self.push_wc(rctx, rcq, wc);
                    self.qp_to_err(rctx, rqp);
                    self.fail_head(ctx, qp, sender_status);
                    return;
                }
                if let SendOp::SendWithInv { rkey } = op {
                    let target = self.devices[self.ctxs[rctx].device]
                        .rkeys
                        .get(&rkey)
                        .copied();
                    let ok = match target {
                        Some((mc, mr)) if mc == rctx && self.ctxs[mc].mrs[&mr].pd == rpd => {
                            self.ctxs[mc].mrs.get_mut(&mr).expect("mr").remote_valid = false;
                            true
                        }
                        _ => false,
                    };
                    if !ok {
                        wc.status = WcStatus::LocAccessErr;
                        nak(self, AckKind::NakRemoteOp);
                        self.push_wc(rctx, rcq, wc);
                        self.qp_to_err(rctx, rqp);
                        self.fail_head(ctx, qp, WcStatus::RemOpErr);
                        return;
                    }
                    wc.invalidated_rkey = Some(rkey);
                }
                self.push_wc(rctx, rcq, wc);
            }
            SendOp::RdmaWrite { remote_addr, rkey } | SendOp::RdmaRead { remote_addr, rkey } => {
                let is_read = matches!(op, SendOp::RdmaRead { .. });
                let len: u64 = sg_list.iter().map(|s| u64::from(s.length)).sum();
                let need = if is_read {
                    Access::REMOTE_READ
                } else {
                    Access::REMOTE_WRITE
                };
                let region = if len == 0 {
                    Some(None)
                } else {
                    self.remote_region(rctx, rpd, raccess, rkey, remote_addr, len, need)
                        .map(Some)
                };
                let Some(region) = region else {
                    nak(self, AckKind::NakRemoteAccess);
                    self.push_event(rctx, AsyncEvent::QpAccessErr(rqp));
                    self.qp_to_err(rctx, rqp);
                    self.fail_head(ctx, qp, WcStatus::RemAccessErr);
                    return;
                };
                if let Some((mr, off)) = region {
                    if is_read {
                        let data = self.ctxs[rctx].mrs[&mr].data[off..off + len as usize].to_vec();
                        let q = self.ctxs[ctx].qps.get_mut(&qp).expect("qp");
                        q.sq[0].read_data = Some(data);
                    } else {
                        let payload = self.gather(ctx, pd, &sg_list);
                        let m = self.ctxs[rctx].mrs.get_mut(&mr).expect("mr");
                        m.data[off..off + payload.len()].copy_from_slice(&payload);
                    }
                }
            }
        }
        // An RDMA READ's response carries its data back.
        let carried = match op {
            SendOp::RdmaRead { .. } => sge_bytes(&sg_list),
            _ => 0,
        };
        let lat = self.latency() + self.link.serialisation(carried);
        // The ACK travels back on the responder's side of the connection: what the
        // responder sends after it (a response to the request, say) arrives after it.
        let at = match self.ctxs[rctx].qps.get_mut(&rqp) {
            Some(r) => {
                let at = (now + lat).max(r.last_arrival);
                r.last_arrival = at;
                at
            }
            None => now + lat,
        };
        self.schedule(at, Timed::Ack { ctx, qp, seq });
    }

    /// Looks up the responder's region for an RDMA access and checks everything a real
    /// responder checks: key, PD, validity, region and QP rights, bounds.
    #[allow(clippy::too_many_arguments)]
    fn remote_region(
        &self,
        rctx: usize,
        rpd: crate::fabric::PdId,
        qp_access: Access,
        rkey: u32,
        addr: u64,
        len: u64,
        need: Access,
    ) -> Option<(MrId, usize)> {
        let (mc, mr) = *self.devices[self.ctxs[rctx].device].rkeys.get(&rkey)?;
        if mc != rctx {
            return None;
        }
        let m = &self.ctxs[mc].mrs[&mr];
        if m.pd != rpd || !m.remote_valid || !m.access.contains(need) || !qp_access.contains(need) {
            return None;
        }
        let off = addr.checked_sub(m.addr)?;
        if off.checked_add(len)? > m.data.len() as u64 {
            return None;
        }
        Some((mr, off as usize))
    }

    /// The responder had no receive posted: retry after the RNR timer, or give up.
    fn rnr(&mut self, ctx: usize, qp: QpId, seq: u64) {
        // An RNR retry count of 7 retries forever: nothing to count down.
        self.retry((ctx, qp, seq), RNR_TIMER, WcStatus::RnrRetryExcErr, |h| {
            (h.rnr_left != 7).then_some(&mut h.rnr_left)
        });
    }

    /// The packet (or its ACK) was lost: retry after the ACK timeout, or give up.
    fn lost(&mut self, ctx: usize, qp: QpId, seq: u64) {
        self.retry((ctx, qp, seq), ACK_TIMEOUT, WcStatus::RetryExcErr, |h| {
            Some(&mut h.retry_left)
        });
    }

    /// Sends the head request `seq` of `qp` again `after` from now, counting the retry
    /// down on the counter `left` names (none: retries are not counted); with no retry
    /// left, fails it with `exhausted` instead.
    fn retry(
        &mut self,
        (ctx, qp, seq): (usize, QpId, u64),
        after: Duration,
        exhausted: WcStatus,
        left: impl FnOnce(&mut PendingSend) -> Option<&mut u8>,
    ) {
        let at = self.now() + after;
        let q = self.ctxs[ctx].qps.get_mut(&qp).expect("qp");
        if let Some(left) = left(&mut q.sq[0]) {
            if *left == 0 {
                self.fail_head(ctx, qp, exhausted);
                return;
            }
            *left -= 1;
        }
        q.last_arrival = q.last_arrival.max(at);
        self.schedule(at, Timed::Arrive { ctx, qp, seq });
    }

    /// The head request's acknowledgement arrives: complete it and start the next one.
    pub(crate) fn on_ack(&mut self, ctx: usize, qp: QpId, seq: u64) {
        let Some(q) = self.ctxs[ctx].qps.get_mut(&qp) else {
            return;
        };
        if q.state != QpState::Rts || q.sq.front().map(|h| h.seq) != Some(seq) {
            return;
        }
        let head = q.sq.pop_front().expect("head");
        q.head_in_flight = false;
        let (pd, cq, qpn) = (q.pd, q.send_cq, q.qpn);
        let dest = q.dest;
        self.tap(|| {
            let d = dest?;
            let (src_qpn, wr) = (d.qpn, head.seq);
            let msg = match (&head.wr.op, &head.read_data) {
                (SendOp::RdmaRead { .. }, data) => TapMessage::ReadResponse {
                    src_qpn,
                    dst_qpn: qpn,
                    wr,
                    data: data.clone().unwrap_or_default(),
                },
                _ => TapMessage::Ack {
                    src_qpn,
                    dst_qpn: qpn,
                    wr,
                    kind: AckKind::Ack,
                },
            };
            Some((d.gid.to_ipv4()?, self.ctx_addr(ctx), msg))
        });
        if let Some(data) = &head.read_data {
            self.scatter(ctx, pd, &head.wr.sg_list, data);
        }
        if head.wr.signaled {
            let len = head.wr.len() as u32;
            self.push_wc(ctx, cq, send_wc(&head.wr, WcStatus::Success, qp, qpn, len));
        }
        self.kick(ctx, qp);
    }
}

/// The WR_FLUSH_ERR completion of a receive request.
pub(crate) fn flush_recv_wc(wr_id: u64, qp: QpId, qpn: u32) -> WorkCompletion {
    WorkCompletion {
        wr_id,
        status: WcStatus::WrFlushErr,
        opcode: WcOpcode::Recv,
        byte_len: 0,
        qp,
        qp_num: qpn,
        src_qp: 0,
        invalidated_rkey: None,
    }
}

/// The completion of a send-queue request.
pub(super) fn send_wc(
    wr: &SendWr,
    status: WcStatus,
    qp: QpId,
    qpn: u32,
    byte_len: u32,
) -> WorkCompletion {
    WorkCompletion {
        wr_id: wr.wr_id,
        status,
        opcode: wr.op.wc_opcode(),
        byte_len,
        qp,
        qp_num: qpn,
        src_qp: 0,
        invalidated_rkey: None,
    }
}

/// Bytes a scatter/gather list covers.
fn sge_bytes(sges: &[crate::fabric::Sge]) -> u64 {
    sges.iter().map(|s| u64::from(s.length)).sum()
}
