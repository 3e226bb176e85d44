//! Queue pairs ([`Qp`]): creation, state changes, posting.

#![allow(unsafe_code)]

use super::*;

handle!(
    /// An RC queue pair.
    Qp,
    ibv_qp,
    ibv_destroy_qp
);

/// Sizes of a new QP.
pub(in crate::fabric::verbs) struct QpCaps {
    pub max_send_wr: u32,
    pub max_recv_wr: u32,
    pub max_send_sge: u32,
    pub max_recv_sge: u32,
}

/// What one `ibv_modify_qp` sets; `None` fields are left out of the mask.
#[derive(Default, Clone, Copy)]
pub(in crate::fabric::verbs) struct Modify {
    pub state: u32,
    pub port: Option<u8>,
    pub access: Option<u32>,
    /// (dgid, dest qpn, sgid index, path mtu enum, max_dest_rd_atomic)
    pub rtr: Option<([u8; 16], u32, u8, u32, u8)>,
    /// (retry_cnt, rnr_retry, max_rd_atomic)
    pub rts: Option<(u8, u8, u8)>,
}

/// One send request, flattened.
pub(in crate::fabric::verbs) struct RawSend<'a> {
    pub wr_id: u64,
    /// IBV_WR_* opcode.
    pub opcode: u32,
    pub sges: &'a [(u64, u32, u32)],
    pub signaled: bool,
    pub remote: Option<(u64, u32)>,
    pub invalidate_rkey: Option<u32>,
}

impl Qp {
    pub(in crate::fabric::verbs) fn create(
        pd: &Pd,
        send_cq: &Cq,
        recv_cq: &Cq,
        srq: Option<&Srq>,
        caps: &QpCaps,
    ) -> Result<Qp, Errno> {
        let mut init = sys::ibv_qp_init_attr {
            qp_context: ptr::null_mut(),
            send_cq: send_cq.ptr,
            recv_cq: recv_cq.ptr,
            srq: srq.map_or(ptr::null_mut(), |s| s.ptr),
            cap: sys::ibv_qp_cap {
                max_send_wr: caps.max_send_wr,
                max_recv_wr: if srq.is_some() { 0 } else { caps.max_recv_wr },
                max_send_sge: caps.max_send_sge,
                max_recv_sge: if srq.is_some() { 0 } else { caps.max_recv_sge },
                max_inline_data: 0,
            },
            qp_type: sys::ibv_qp_type::IBV_QPT_RC,
            sq_sig_all: 0,
        };
        // SAFETY: live PD, CQs and SRQ; valid attributes.
        let ptr = unsafe { sys::ibv_create_qp(pd.ptr, &mut init) };
        if ptr.is_null() {
            Err(last_errno())
        } else {
            Ok(Qp { ptr })
        }
    }

    pub(in crate::fabric::verbs) fn qp_num(&self) -> u32 {
        // SAFETY: live QP, plain field.
        unsafe { (*self.ptr).qp_num }
    }

    /// `ibv_modify_qp` with the fields `m` names.
    pub(in crate::fabric::verbs) fn modify(&self, m: &Modify) -> Result<(), Errno> {
        use sys::ibv_qp_attr_mask as M;
        // SAFETY: plain old data; zero is a valid value for every field.
        let mut a: sys::ibv_qp_attr = unsafe { std::mem::zeroed() };
        a.qp_state = m.state;
        let mut mask = M::IBV_QP_STATE.0;
        if let Some(port) = m.port {
            a.port_num = port;
            a.pkey_index = 0;
            mask |= M::IBV_QP_PORT.0 | M::IBV_QP_PKEY_INDEX.0;
        }
        if let Some(acc) = m.access {
            a.qp_access_flags = acc;
            mask |= M::IBV_QP_ACCESS_FLAGS.0;
        }
        if let Some((dgid, dqpn, sgid_index, mtu, rd)) = m.rtr {
            a.path_mtu = mtu;
            a.dest_qp_num = dqpn;
            a.rq_psn = 0;
            a.max_dest_rd_atomic = rd;
            a.min_rnr_timer = 12;
            a.ah_attr.is_global = 1;
            a.ah_attr.grh.dgid = sys::ibv_gid { raw: dgid };
            a.ah_attr.grh.sgid_index = sgid_index;
            a.ah_attr.grh.hop_limit = 64;
            a.ah_attr.port_num = 1;
            mask |= M::IBV_QP_AV.0
                | M::IBV_QP_PATH_MTU.0
                | M::IBV_QP_DEST_QPN.0
                | M::IBV_QP_RQ_PSN.0
                | M::IBV_QP_MAX_DEST_RD_ATOMIC.0
                | M::IBV_QP_MIN_RNR_TIMER.0;
        }
        if let Some((retry, rnr, rd)) = m.rts {
            a.timeout = 12;
            a.retry_cnt = retry;
            a.rnr_retry = rnr;
            a.sq_psn = 0;
            a.max_rd_atomic = rd;
            mask |= M::IBV_QP_TIMEOUT.0
                | M::IBV_QP_RETRY_CNT.0
                | M::IBV_QP_RNR_RETRY.0
                | M::IBV_QP_SQ_PSN.0
                | M::IBV_QP_MAX_QP_RD_ATOMIC.0;
        }
        // SAFETY: live QP; `a` is valid for every field in `mask`.
        rc(unsafe { sys::ibv_modify_qp(self.ptr, &mut a, mask as i32) })
    }

    /// Moves the QP to `state` with the attributes the connection manager computes for
    /// `id` (`rdma_init_qp_attr`), overriding the RDMA READ depths and the RNR timer.
    pub(in crate::fabric::verbs) fn modify_by_cm(
        &self,
        id: &CmId,
        state: u32,
        max_dest_rd_atomic: Option<u8>,
        max_rd_atomic: Option<u8>,
    ) -> Result<(), Errno> {
        use sys::ibv_qp_attr_mask as M;
        // SAFETY: plain old data.
        let mut a: sys::ibv_qp_attr = unsafe { std::mem::zeroed() };
        a.qp_state = state;
        let mut mask: i32 = 0;
        // SAFETY: live CM id, valid out pointers.
        rc(unsafe { sys::rdma_init_qp_attr(id.ptr, &mut a, &mut mask) })?;
        let mut mask = mask as u32;
        if let Some(rd) = max_dest_rd_atomic {
            a.max_dest_rd_atomic = rd;
            a.min_rnr_timer = 12;
            mask |= M::IBV_QP_MAX_DEST_RD_ATOMIC.0 | M::IBV_QP_MIN_RNR_TIMER.0;
        }
        if let Some(rd) = max_rd_atomic {
            a.max_rd_atomic = rd;
            mask |= M::IBV_QP_MAX_QP_RD_ATOMIC.0;
        }
        // SAFETY: live QP, attributes from the CM plus the fields set above.
        rc(unsafe { sys::ibv_modify_qp(self.ptr, &mut a, mask as i32) })
    }

    /// The QP's state (`ibv_query_qp`), as the `ibv_qp_state` value.
    pub(in crate::fabric::verbs) fn query_state(&self) -> Result<u32, Errno> {
        Ok(self.query(sys::ibv_qp_attr_mask::IBV_QP_STATE)?.qp_state)
    }

    /// The peer QP number set at RTR (`IBV_QP_DEST_QPN`).
    pub(in crate::fabric::verbs) fn query_dest_qpn(&self) -> Result<u32, Errno> {
        Ok(self
            .query(sys::ibv_qp_attr_mask::IBV_QP_DEST_QPN)?
            .dest_qp_num)
    }

    /// `ibv_query_qp` of the attributes `mask` names (the others are left zero).
    fn query(&self, mask: sys::ibv_qp_attr_mask) -> Result<sys::ibv_qp_attr, Errno> {
        // SAFETY: plain old data.
        let mut a: sys::ibv_qp_attr = unsafe { std::mem::zeroed() };
        // SAFETY: plain old data.
        let mut init: sys::ibv_qp_init_attr = unsafe { std::mem::zeroed() };
        // SAFETY: live QP, valid out pointers.
        rc(unsafe { sys::ibv_query_qp(self.ptr, &mut a, mask.0 as i32, &mut init) })?;
        Ok(a)
    }

    /// Posts one send request.
    pub(in crate::fabric::verbs) fn post_send(&self, s: &RawSend<'_>) -> Result<(), Errno> {
        let mut list = sge_list(s.sges);
        // SAFETY: ibv_send_wr is plain old data (pointers, integers, unions of those).
        let mut wr: sys::ibv_send_wr = unsafe { std::mem::zeroed() };
        wr.wr_id = s.wr_id;
        wr.next = ptr::null_mut();
        wr.sg_list = if list.is_empty() {
            ptr::null_mut()
        } else {
            list.as_mut_ptr()
        };
        wr.num_sge = i32::try_from(list.len()).unwrap_or(i32::MAX);
        wr.opcode = s.opcode;
        wr.send_flags = if s.signaled {
            sys::ibv_send_flags::IBV_SEND_SIGNALED.0
        } else {
            0
        };
        if let Some(rkey) = s.invalidate_rkey {
            wr.imm_data_invalidated_rkey_union.invalidated_rkey = rkey;
        }
        if let Some((remote_addr, rkey)) = s.remote {
            wr.wr.rdma = sys::rdma_t { remote_addr, rkey };
        }
        let mut bad = ptr::null_mut();
        // SAFETY: live QP; `wr` and its list live across the call.
        rc(unsafe { sys::ibv_post_send(self.ptr, &mut wr, &mut bad) })
    }
}

impl RecvQueue for Qp {
    unsafe fn post_raw(&self, wr: &mut sys::ibv_recv_wr, bad: &mut *mut sys::ibv_recv_wr) -> i32 {
        // SAFETY: live QP (its own receive queue); the caller keeps `wr`'s list alive.
        unsafe { sys::ibv_post_recv(self.ptr, wr, bad) }
    }
}
