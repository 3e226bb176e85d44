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
}

impl RecvQueue for Srq {
    unsafe fn post_raw(&self, wr: &mut sys::ibv_recv_wr, bad: &mut *mut sys::ibv_recv_wr) -> i32 {
        // SAFETY: live SRQ; the caller keeps `wr`'s list alive.
        unsafe { sys::ibv_post_srq_recv(self.ptr, wr, bad) }
    }
}
