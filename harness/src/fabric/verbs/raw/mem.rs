//! Protection domains and memory regions ([`Pd`], [`Mr`]).

#![allow(unsafe_code)]

use super::*;

handle!(
    /// A protection domain.
    Pd,
    ibv_pd,
    ibv_dealloc_pd
);

impl Pd {
    pub(in crate::fabric::verbs) fn alloc(ctx: &Context) -> Result<Pd, Errno> {
        // SAFETY: live context.
        let ptr = unsafe { sys::ibv_alloc_pd(ctx.ptr) };
        if ptr.is_null() {
            Err(last_errno())
        } else {
            Ok(Pd { ptr })
        }
    }
}

/// A memory region over a buffer this wrapper allocated (page aligned, zeroed) and frees
/// after deregistration.
pub(in crate::fabric::verbs) struct Mr {
    pub(super) ptr: *mut sys::ibv_mr,
    buf: *mut u8,
    layout: std::alloc::Layout,
}

// SAFETY: the buffer is only touched through `read`/`write` (copies) and by the device.
unsafe impl Send for Mr {}
// SAFETY: as above.
unsafe impl Sync for Mr {}

impl Mr {
    /// Allocates `len` zeroed bytes and registers them with `access` (`IBV_ACCESS_*` bits).
    pub(in crate::fabric::verbs) fn register(
        pd: &Pd,
        len: usize,
        access: u32,
    ) -> Result<Mr, Errno> {
        let layout =
            std::alloc::Layout::from_size_align(len.max(1), 4096).map_err(|_| Errno::EINVAL)?;
        // SAFETY: the layout has a non-zero size.
        let buf = unsafe { std::alloc::alloc_zeroed(layout) };
        if buf.is_null() {
            return Err(Errno::ENOMEM);
        }
        // SAFETY: live PD; `buf` is `len` valid bytes, kept until after ibv_dereg_mr.
        let ptr =
            unsafe { sys::ibv_reg_mr(pd.ptr, buf.cast(), len, i32::try_from(access).unwrap_or(0)) };
        if ptr.is_null() {
            let e = last_errno();
            // SAFETY: allocated above with this layout, never registered.
            unsafe { std::alloc::dealloc(buf, layout) };
            return Err(e);
        }
        Ok(Mr { ptr, buf, layout })
    }

    pub(in crate::fabric::verbs) fn addr(&self) -> u64 {
        self.buf as u64
    }

    pub(in crate::fabric::verbs) fn lkey(&self) -> u32 {
        // SAFETY: live MR, plain field.
        unsafe { (*self.ptr).lkey }
    }

    pub(in crate::fabric::verbs) fn rkey(&self) -> u32 {
        // SAFETY: live MR, plain field.
        unsafe { (*self.ptr).rkey }
    }

    /// Copies `data` to `offset`; the caller checked the bounds.
    pub(in crate::fabric::verbs) fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.layout.size());
        // SAFETY: in bounds (asserted); the device may access the buffer concurrently,
        // which is the caller's protocol to avoid, as with any registered memory.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.buf.add(offset), data.len()) };
    }

    /// Copies from `offset` into `out`; the caller checked the bounds.
    pub(in crate::fabric::verbs) fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= self.layout.size());
        // SAFETY: in bounds (asserted); see `write`.
        unsafe { ptr::copy_nonoverlapping(self.buf.add(offset), out.as_mut_ptr(), out.len()) };
    }

    /// `ibv_dereg_mr`, then frees the buffer; on failure both stay.
    pub(in crate::fabric::verbs) fn destroy(&mut self) -> Result<(), Errno> {
        if self.ptr.is_null() {
            return Ok(());
        }
        // SAFETY: live MR, deregistered once.
        rc(unsafe { sys::ibv_dereg_mr(self.ptr) })?;
        self.ptr = ptr::null_mut();
        // SAFETY: the buffer was allocated with this layout and is no longer registered.
        unsafe { std::alloc::dealloc(self.buf, self.layout) };
        self.buf = ptr::null_mut();
        Ok(())
    }
}

impl Drop for Mr {
    fn drop(&mut self) {
        // If deregistration fails the buffer is leaked on purpose: the device may still
        // write to it.
        let _ = self.destroy();
    }
}
