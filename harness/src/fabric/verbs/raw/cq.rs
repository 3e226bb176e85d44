//! Completion queues and their completion channels ([`Cq`]).

#![allow(unsafe_code)]

use super::*;

/// A CQ with its own completion channel.
pub(in crate::fabric::verbs) struct Cq {
    pub(super) ptr: *mut sys::ibv_cq,
    channel: *mut sys::ibv_comp_channel,
}

// SAFETY: verbs objects may be used from any thread.
unsafe impl Send for Cq {}
// SAFETY: as above.
unsafe impl Sync for Cq {}

/// One work completion as `ibv_poll_cq` gave it.
pub(in crate::fabric::verbs) struct RawWc {
    pub wr_id: u64,
    pub status: u32,
    pub opcode: u32,
    pub byte_len: u32,
    pub qp_num: u32,
    pub src_qp: u32,
    pub invalidated_rkey: Option<u32>,
}

impl Cq {
    pub(in crate::fabric::verbs) fn create(ctx: &Context, cqe: i32) -> Result<Cq, Errno> {
        // SAFETY: live context.
        let channel = unsafe { sys::ibv_create_comp_channel(ctx.ptr) };
        if channel.is_null() {
            return Err(last_errno());
        }
        // SAFETY: live context and channel.
        let ptr = unsafe { sys::ibv_create_cq(ctx.ptr, cqe, ptr::null_mut(), channel, 0) };
        if ptr.is_null() {
            let e = last_errno();
            // SAFETY: created above, unused.
            unsafe { sys::ibv_destroy_comp_channel(channel) };
            return Err(e);
        }
        Ok(Cq { ptr, channel })
    }

    /// The completion channel's descriptor.
    pub(in crate::fabric::verbs) fn channel_fd(&self) -> RawFd {
        // SAFETY: live channel, plain field.
        unsafe { (*self.channel).fd }
    }

    /// Arms the CQ for the next completion event.
    pub(in crate::fabric::verbs) fn req_notify(&self) -> Result<(), Errno> {
        // SAFETY: live CQ.
        rc(unsafe { sys::ibv_req_notify_cq(self.ptr, 0) })
    }

    /// Reads and acknowledges the pending completion events (descriptor non-blocking);
    /// how many there were.
    pub(in crate::fabric::verbs) fn drain_events(&self) -> u32 {
        let mut n = 0;
        loop {
            let mut cq = ptr::null_mut();
            let mut cq_ctx = ptr::null_mut();
            // SAFETY: live channel, valid out pointers.
            let r = unsafe { sys::ibv_get_cq_event(self.channel, &mut cq, &mut cq_ctx) };
            if r != 0 {
                break;
            }
            n += 1;
            // SAFETY: `cq` is the CQ the event was for (ours: one CQ per channel);
            // acknowledged once per event.
            unsafe { sys::ibv_ack_cq_events(cq, 1) };
        }
        n
    }

    /// Polls up to `max` completions.
    pub(in crate::fabric::verbs) fn poll(&self, max: usize) -> Result<Vec<RawWc>, Errno> {
        let mut out = Vec::new();
        while out.len() < max {
            // SAFETY: ibv_wc is plain old data.
            let mut wc: sys::ibv_wc = unsafe { std::mem::zeroed() };
            // SAFETY: live CQ, room for one completion.
            let n = unsafe { sys::ibv_poll_cq(self.ptr, 1, &mut wc) };
            if n < 0 {
                return Err(if n == -1 {
                    last_errno()
                } else {
                    Errno::from_raw(-n)
                });
            }
            if n == 0 {
                break;
            }
            let invalidated_rkey = if wc.wc_flags & sys::ibv_wc_flags::IBV_WC_WITH_INV.0 != 0 {
                // SAFETY: with IBV_WC_WITH_INV the union holds the invalidated rkey.
                Some(unsafe { wc.imm_data_invalidated_rkey_union.invalidated_rkey })
            } else {
                None
            };
            out.push(RawWc {
                wr_id: wc.wr_id,
                status: wc.status,
                opcode: wc.opcode,
                byte_len: wc.byte_len,
                qp_num: wc.qp_num,
                src_qp: wc.src_qp,
                invalidated_rkey,
            });
        }
        Ok(out)
    }

    /// `ibv_destroy_cq` then the channel; on failure (EBUSY) both stay.
    pub(in crate::fabric::verbs) fn destroy(&mut self) -> Result<(), Errno> {
        if self.ptr.is_null() {
            return Ok(());
        }
        self.drain_events();
        // SAFETY: live CQ, every event acknowledged (drained above).
        rc(unsafe { sys::ibv_destroy_cq(self.ptr) })?;
        self.ptr = ptr::null_mut();
        // SAFETY: no CQ uses the channel any more.
        unsafe { sys::ibv_destroy_comp_channel(self.channel) };
        self.channel = ptr::null_mut();
        Ok(())
    }

    pub(in crate::fabric::verbs) fn as_ptr(&self) -> *mut sys::ibv_cq {
        self.ptr
    }
}

impl Drop for Cq {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}
