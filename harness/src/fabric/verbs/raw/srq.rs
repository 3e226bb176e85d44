//! Shared receive queues ([`Srq`]).

#![allow(unsafe_code)]

use super::*;

handle!(
    /// A shared receive queue.
    Srq,
    ibv_srq,
    ibv_destroy_srq
);

impl Srq {
    pub(in crate::fabric::verbs) fn create(
        pd: &Pd,
        max_wr: u32,
        max_sge: u32,
        limit: u32,
    ) -> Result<Srq, Errno> {
        let mut init = sys::ibv_srq_init_attr {
            srq_context: ptr::null_mut(),
            attr: sys::ibv_srq_attr {
                max_wr,
                max_sge,
                srq_limit: limit,
            },
        };
        // SAFETY: live PD, valid attributes.
        let ptr = unsafe { sys::ibv_create_srq(pd.ptr, &mut init) };
        if ptr.is_null() {
            Err(last_errno())
        } else {
            Ok(Srq { ptr })
        }
    }

    /// Arms the limit (`IBV_SRQ_LIMIT`).
    pub(in crate::fabric::verbs) fn arm(&self, limit: u32) -> Result<(), Errno> {
        let mut attr = sys::ibv_srq_attr {
            max_wr: 0,
            max_sge: 0,
            srq_limit: limit,
        };
        let mask = sys::ibv_srq_attr_mask::IBV_SRQ_LIMIT.0 as i32;
        // SAFETY: live SRQ, valid attributes.
        rc(unsafe { sys::ibv_modify_srq(self.ptr, &mut attr, mask) })
    }

    /// `ibv_query_srq`: (max_wr, max_sge, srq_limit).
    pub(in crate::fabric::verbs) fn query(&self) -> Result<(u32, u32, u32), Errno> {
        let mut attr = sys::ibv_srq_attr {
            max_wr: 0,
            max_sge: 0,
            srq_limit: 0,
        };
        // SAFETY: live SRQ, valid out pointer.
        rc(unsafe { sys::ibv_query_srq(self.ptr, &mut attr) })?;
        Ok((attr.max_wr, attr.max_sge, attr.srq_limit))
    }

    /// Posts one receive.
    pub(in crate::fabric::verbs) fn post_recv(
        &self,
        wr_id: u64,
        sges: &[(u64, u32, u32)],
    ) -> Result<(), Errno> {
        let mut list = sge_list(sges);
        let mut wr = recv_wr(wr_id, &mut list);
        let mut bad = ptr::null_mut();
        // SAFETY: live SRQ; `wr` and its list live across the call.
        rc(unsafe { sys::ibv_post_srq_recv(self.ptr, &mut wr, &mut bad) })
    }
}
