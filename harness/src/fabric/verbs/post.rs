//! Posting work requests and translating completions.
//!
//! The trait's checks that a device may not make itself (state of the QP, SGE counts
//! against the sizes asked at creation, receives on an SRQ-attached QP) are made here
//! first, with the errno verbs gives for them.

use super::raw::{self, RecvQueue};
use super::{os, srq::sges, State, VerbsContext};
use crate::fabric::{
    FabricError, QpId, RecvWr, Result, SendOp, SendWr, WcOpcode, WcStatus, WorkCompletion,
};

fn wc_status(s: u32) -> WcStatus {
    match s {
        0 => WcStatus::Success,
        1 => WcStatus::LocLenErr,
        2 => WcStatus::LocQpOpErr,
        4 => WcStatus::LocProtErr,
        5 => WcStatus::WrFlushErr,
        8 => WcStatus::LocAccessErr,
        9 => WcStatus::RemInvReqErr,
        10 => WcStatus::RemAccessErr,
        11 => WcStatus::RemOpErr,
        12 => WcStatus::RetryExcErr,
        13 => WcStatus::RnrRetryExcErr,
        // MW bind, bad response, remote abort, fatal, ...: no finer name in the trait.
        _ => WcStatus::GeneralErr,
    }
}

fn wc_opcode(op: u32) -> WcOpcode {
    match op {
        1 => WcOpcode::RdmaWrite,
        2 => WcOpcode::RdmaRead,
        op if op & 0x80 != 0 => WcOpcode::Recv,
        _ => WcOpcode::Send,
    }
}

impl VerbsContext {
    /// A polled completion in the trait's terms; an SRQ receive lowers its `posted` count.
    pub(super) fn translate(s: &mut State, r: raw::RawWc) -> WorkCompletion {
        let is_recv = r.opcode & 0x80 != 0;
        let found = s
            .qps
            .iter()
            .find(|(_, q)| q.qpn == r.qp_num)
            .map(|(id, q)| (*id, q.srq));
        // Devices fill src_qp for UD only (rxe leaves it 0 on RC); on an RC QP the source is
        // by definition the connected peer, whose number the QP holds since RTR.
        let src_qp = match found {
            _ if !is_recv => 0,
            _ if r.src_qp != 0 => r.src_qp,
            Some((id, _)) => s.qps[&id].qp.query_dest_qpn().unwrap_or(0),
            None => 0,
        };
        let qp = found.map_or(QpId(u32::MAX), |(id, _)| id);
        if let Some((_, Some(srq))) = found {
            if is_recv {
                if let Some(o) = s.srqs.get_mut(&srq) {
                    o.posted = o.posted.saturating_sub(1);
                }
            }
        }
        WorkCompletion {
            wr_id: r.wr_id,
            status: wc_status(r.status),
            opcode: wc_opcode(r.opcode),
            byte_len: r.byte_len,
            qp,
            qp_num: r.qp_num,
            src_qp,
            invalidated_rkey: if is_recv { r.invalidated_rkey } else { None },
        }
    }

    pub(super) fn post_send_impl(&self, qp: QpId, wr: &SendWr) -> Result<()> {
        let s = self.lock();
        let o = s.qps.get(&qp).ok_or(FabricError::NotFound("qp"))?;
        let state = o.qp.query_state().map_err(|e| os("ibv_query_qp", e))?;
        // RESET, INIT, RTR: nothing may be sent yet.
        if state <= 2 {
            return Err(FabricError::Invalid("post_send: QP not in RTS"));
        }
        if wr.sg_list.len() > o.cap.max_send_sge as usize {
            return Err(FabricError::Invalid(
                "post_send: more SGEs than max_send_sge",
            ));
        }
        let list: Vec<(u64, u32, u32)> = wr
            .sg_list
            .iter()
            .map(|g| (g.addr, g.length, g.lkey))
            .collect();
        let (opcode, remote, invalidate_rkey) = match wr.op {
            SendOp::Send => (2, None, None),
            SendOp::SendWithInv { rkey } => (9, None, Some(rkey)),
            SendOp::RdmaWrite { remote_addr, rkey } => (0, Some((remote_addr, rkey)), None),
            SendOp::RdmaRead { remote_addr, rkey } => (4, Some((remote_addr, rkey)), None),
        };
        o.qp.post_send(&raw::RawSend {
            wr_id: wr.wr_id,
            opcode,
            sges: &list,
            signaled: wr.signaled,
            remote,
            invalidate_rkey,
        })
        .map_err(|e| match e {
            nix::errno::Errno::ENOMEM => FabricError::NoMemory("post_send: the send queue is full"),
            nix::errno::Errno::EINVAL => FabricError::Invalid("post_send: rejected by the device"),
            e => os("ibv_post_send", e),
        })
    }

    pub(super) fn post_recv_impl(&self, qp: QpId, wr: &RecvWr) -> Result<()> {
        let s = self.lock();
        let o = s.qps.get(&qp).ok_or(FabricError::NotFound("qp"))?;
        if o.srq.is_some() {
            return Err(FabricError::Invalid("post_recv: the QP uses an SRQ"));
        }
        let state = o.qp.query_state().map_err(|e| os("ibv_query_qp", e))?;
        if state == 0 {
            return Err(FabricError::Invalid("post_recv: QP in RESET"));
        }
        if wr.sg_list.len() > o.cap.max_recv_sge as usize {
            return Err(FabricError::Invalid(
                "post_recv: more SGEs than max_recv_sge",
            ));
        }
        o.qp.post_recv(wr.wr_id, &sges(wr)).map_err(|e| match e {
            nix::errno::Errno::ENOMEM => {
                FabricError::NoMemory("post_recv: the receive queue is full")
            }
            e => os("ibv_post_recv", e),
        })
    }
}
