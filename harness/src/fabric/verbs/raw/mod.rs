//! Every `unsafe` of the verbs fabric: owning wrappers over libibverbs and librdmacm
//! objects (`rdma-sys`), each destroyed by `Drop` if not destroyed explicitly, and the few
//! calls that move data in and out of C structures.
//!
//! The rest of `fabric::verbs` only sees safe types. Each wrapper owns one C object and
//! keeps it alive until `destroy` (which may fail, e.g. EBUSY, leaving the object alive)
//! or `Drop` (which ignores errors: nothing more can be done then). Callers keep the
//! creation order's reverse when dropping (the context holds everything in one state and
//! clears it in that order, see `super::context`).
//!
//! libibverbs and librdmacm are thread-safe for these calls, so the wrappers are `Send`
//! and `Sync`; calls that mutate an object's C state take `&mut self` where the library
//! requires serialisation (none of the ones used here does beyond what the library locks).

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::ptr;

use nix::errno::Errno;
use rdma_sys as sys;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The errno of the last failed library call.
fn last_errno() -> Errno {
    Errno::last()
}

/// A return value of a call that returns 0 or an errno (as `ibv_post_send`, `ibv_modify_qp`).
fn rc(ret: i32) -> Result<(), Errno> {
    match ret {
        0 => Ok(()),
        r if r > 0 => Err(Errno::from_raw(r)),
        // -1 with errno set (librdmacm's convention).
        -1 => Err(last_errno()),
        // A negated errno.
        r => Err(Errno::from_raw(-r)),
    }
}

/// Watches a library-owned descriptor for readability with tokio (in the current runtime):
/// a duplicate of it, set non-blocking, is owned by the `AsyncFd`, so the registration
/// never outlives the descriptor it names, whatever the library does with its own.
pub(super) fn watch(fd: RawFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    let owned = dup_nonblocking(fd)?;
    // SAFETY: the `AsyncFd` owns `owned`, which stays open and names the same open file
    // description until the `AsyncFd` is dropped.
    let afd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }?;
    Ok(afd)
}

/// A second descriptor for the same open file, set non-blocking (the flag is the open
/// file's: the library's own descriptor becomes non-blocking too).
fn dup_nonblocking(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: `fd` is a descriptor owned by a live libibverbs/librdmacm object of the
    // caller, which keeps it open for the duration of this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned = borrowed.try_clone_to_owned()?;
    let flags = nix::fcntl::fcntl(&owned, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&owned, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    Ok(owned)
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

/// Names of the RDMA devices (`ibv_get_device_list`), or why there are none usable:
/// `Err` carries the errno when the list itself could not be read (ENOSYS: the kernel
/// has no RDMA support).
pub(super) fn device_names() -> Result<Vec<String>, Errno> {
    let mut n: i32 = 0;
    // SAFETY: `n` is a valid out pointer; the list returned is freed below.
    let list = unsafe { sys::ibv_get_device_list(&mut n) };
    if list.is_null() {
        return Err(last_errno());
    }
    let mut names = Vec::new();
    for i in 0..usize::try_from(n).unwrap_or(0) {
        // SAFETY: `list` holds `n` valid device pointers (libibverbs' contract).
        let dev = unsafe { *list.add(i) };
        if dev.is_null() {
            break;
        }
        // SAFETY: `dev` is a live device of the list; the name is a NUL-terminated string
        // owned by it, copied before the list is freed.
        let name = unsafe { CStr::from_ptr(sys::ibv_get_device_name(dev)) };
        names.push(name.to_string_lossy().into_owned());
    }
    // SAFETY: `list` came from ibv_get_device_list and is freed once.
    unsafe { sys::ibv_free_device_list(list) };
    Ok(names)
}

/// An opened device (`ibv_context`).
pub(super) struct Context {
    ptr: *mut sys::ibv_context,
}

// SAFETY: libibverbs contexts may be used from any thread.
unsafe impl Send for Context {}
// SAFETY: as above; the calls used here do their own locking.
unsafe impl Sync for Context {}

/// What `ibv_query_port` tells, reduced to what the fabric uses.
pub(super) struct RawPort {
    pub active: bool,
    pub active_mtu: u32,
    pub mtu_enum: u32,
    pub gid_tbl_len: i32,
}

impl Context {
    /// Opens the device named `name`: ENODEV when it is not in the list.
    pub(super) fn open(name: &str) -> Result<Context, Errno> {
        let mut n: i32 = 0;
        // SAFETY: as in `device_names`.
        let list = unsafe { sys::ibv_get_device_list(&mut n) };
        if list.is_null() {
            return Err(last_errno());
        }
        let mut found = ptr::null_mut();
        for i in 0..usize::try_from(n).unwrap_or(0) {
            // SAFETY: `list` holds `n` valid device pointers.
            let dev = unsafe { *list.add(i) };
            // SAFETY: `dev` is live while the list is; its name is NUL-terminated.
            let dname = unsafe { CStr::from_ptr(sys::ibv_get_device_name(dev)) };
            if dname.to_bytes() == name.as_bytes() {
                found = dev;
                break;
            }
        }
        let result = if found.is_null() {
            Err(Errno::ENODEV)
        } else {
            // SAFETY: `found` is a live device of the list; a context stays valid after
            // the list is freed (libibverbs keeps the device referenced).
            let ctx = unsafe { sys::ibv_open_device(found) };
            if ctx.is_null() {
                Err(last_errno())
            } else {
                Ok(Context { ptr: ctx })
            }
        };
        // SAFETY: freed once, after the device was opened (or not found).
        unsafe { sys::ibv_free_device_list(list) };
        result
    }

    /// `ibv_query_device`.
    pub(super) fn query_device(&self) -> Result<sys::ibv_device_attr, Errno> {
        // SAFETY: ibv_device_attr is plain old data; all-zero is a valid value.
        let mut attr: sys::ibv_device_attr = unsafe { std::mem::zeroed() };
        // SAFETY: `self.ptr` is a live context and `attr` a valid out pointer.
        rc(unsafe { sys::ibv_query_device(self.ptr, &mut attr) })?;
        Ok(attr)
    }

    /// `ibv_query_port`.
    pub(super) fn query_port(&self, port: u8) -> Result<RawPort, Errno> {
        // SAFETY: plain old data.
        let mut attr: sys::ibv_port_attr = unsafe { std::mem::zeroed() };
        // SAFETY: live context, valid out pointer of the size the call is told.
        rc(unsafe { sys::___ibv_query_port(self.ptr, port, &mut attr) })?;
        let mtu_enum = attr.active_mtu;
        Ok(RawPort {
            active: attr.state == sys::ibv_port_state::IBV_PORT_ACTIVE,
            active_mtu: match mtu_enum {
                1 => 256,
                2 => 512,
                3 => 1024,
                4 => 2048,
                5 => 4096,
                _ => 0,
            },
            mtu_enum,
            gid_tbl_len: attr.gid_tbl_len,
        })
    }

    /// `ibv_query_gid`.
    pub(super) fn query_gid(&self, port: u8, index: i32) -> Result<[u8; 16], Errno> {
        let mut gid = sys::ibv_gid { raw: [0; 16] };
        // SAFETY: live context, valid out pointer.
        rc(unsafe { sys::ibv_query_gid(self.ptr, port, index, &mut gid) })?;
        // SAFETY: every bit pattern of the union is a valid byte array.
        Ok(unsafe { gid.raw })
    }

    /// The context's async event descriptor (owned by the context).
    pub(super) fn async_fd(&self) -> RawFd {
        // SAFETY: live context; reading a plain field.
        unsafe { (*self.ptr).async_fd }
    }

    /// Takes one async event without blocking (the descriptor is non-blocking) and
    /// acknowledges it: its type and the object it names (a pointer value, or the port).
    pub(super) fn get_async_event(&self) -> Option<RawAsyncEvent> {
        let mut ev = AsyncEventRepr {
            element: AsyncElement {
                ptr: ptr::null_mut(),
            },
            event_type: 0,
        };
        // SAFETY: `AsyncEventRepr` has the layout of `struct ibv_async_event` (a union of
        // pointers and an int, then an enum read here as u32 so that unknown values are
        // not undefined behaviour); the context is live.
        let r =
            unsafe { sys::ibv_get_async_event(self.ptr, (&mut ev as *mut AsyncEventRepr).cast()) };
        if r != 0 {
            return None;
        }
        // SAFETY: the pointer member covers the whole union; port events store an int in
        // its low bytes, read through the `port` member.
        let (element, port) = unsafe { (ev.element.ptr as usize, ev.element.port) };
        // SAFETY: the event was returned by ibv_get_async_event and is acknowledged once.
        unsafe { sys::ibv_ack_async_event((&mut ev as *mut AsyncEventRepr).cast()) };
        Some(RawAsyncEvent {
            event_type: ev.event_type,
            element,
            port,
        })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context is live and closed once; its objects were destroyed before
        // (the owner drops them first).
        unsafe { sys::ibv_close_device(self.ptr) };
    }
}

#[repr(C)]
union AsyncElement {
    ptr: *mut std::ffi::c_void,
    port: i32,
}

#[repr(C)]
struct AsyncEventRepr {
    element: AsyncElement,
    event_type: u32,
}

/// An async event as read: `ibv_event_type` value, element pointer value, port number.
pub(super) struct RawAsyncEvent {
    pub event_type: u32,
    pub element: usize,
    pub port: i32,
}

// ---------------------------------------------------------------------------------------
// Protection domains and memory regions
// ---------------------------------------------------------------------------------------

/// A protection domain.
pub(super) struct Pd {
    ptr: *mut sys::ibv_pd,
}

// SAFETY: verbs objects may be used from any thread.
unsafe impl Send for Pd {}
// SAFETY: as above.
unsafe impl Sync for Pd {}

impl Pd {
    pub(super) fn alloc(ctx: &Context) -> Result<Pd, Errno> {
        // SAFETY: live context.
        let ptr = unsafe { sys::ibv_alloc_pd(ctx.ptr) };
        if ptr.is_null() {
            Err(last_errno())
        } else {
            Ok(Pd { ptr })
        }
    }

    /// `ibv_dealloc_pd`; on failure (EBUSY) the PD stays alive.
    pub(super) fn destroy(&mut self) -> Result<(), Errno> {
        if self.ptr.is_null() {
            return Ok(());
        }
        // SAFETY: live PD; on success it is never used again (pointer cleared).
        rc(unsafe { sys::ibv_dealloc_pd(self.ptr) })?;
        self.ptr = ptr::null_mut();
        Ok(())
    }
}

impl Drop for Pd {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}

/// A memory region over a buffer this wrapper allocated (page aligned, zeroed) and frees
/// after deregistration.
pub(super) struct Mr {
    ptr: *mut sys::ibv_mr,
    buf: *mut u8,
    layout: std::alloc::Layout,
}

// SAFETY: the buffer is only touched through `read`/`write` (copies) and by the device.
unsafe impl Send for Mr {}
// SAFETY: as above.
unsafe impl Sync for Mr {}

impl Mr {
    /// Allocates `len` zeroed bytes and registers them with `access` (`IBV_ACCESS_*` bits).
    pub(super) fn register(pd: &Pd, len: usize, access: u32) -> Result<Mr, Errno> {
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

    pub(super) fn addr(&self) -> u64 {
        self.buf as u64
    }

    pub(super) fn lkey(&self) -> u32 {
        // SAFETY: live MR, plain field.
        unsafe { (*self.ptr).lkey }
    }

    pub(super) fn rkey(&self) -> u32 {
        // SAFETY: live MR, plain field.
        unsafe { (*self.ptr).rkey }
    }

    /// Copies `data` to `offset`; the caller checked the bounds.
    pub(super) fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.layout.size());
        // SAFETY: in bounds (asserted); the device may access the buffer concurrently,
        // which is the caller's protocol to avoid, as with any registered memory.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.buf.add(offset), data.len()) };
    }

    /// Copies from `offset` into `out`; the caller checked the bounds.
    pub(super) fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= self.layout.size());
        // SAFETY: in bounds (asserted); see `write`.
        unsafe { ptr::copy_nonoverlapping(self.buf.add(offset), out.as_mut_ptr(), out.len()) };
    }

    /// `ibv_dereg_mr`, then frees the buffer; on failure both stay.
    pub(super) fn destroy(&mut self) -> Result<(), Errno> {
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

// ---------------------------------------------------------------------------------------
// Completion queues
// ---------------------------------------------------------------------------------------

/// A CQ with its own completion channel.
pub(super) struct Cq {
    ptr: *mut sys::ibv_cq,
    channel: *mut sys::ibv_comp_channel,
}

// SAFETY: verbs objects may be used from any thread.
unsafe impl Send for Cq {}
// SAFETY: as above.
unsafe impl Sync for Cq {}

/// One work completion as `ibv_poll_cq` gave it.
pub(super) struct RawWc {
    pub wr_id: u64,
    pub status: u32,
    pub opcode: u32,
    pub byte_len: u32,
    pub qp_num: u32,
    pub src_qp: u32,
    pub invalidated_rkey: Option<u32>,
}

impl Cq {
    pub(super) fn create(ctx: &Context, cqe: i32) -> Result<Cq, Errno> {
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
    pub(super) fn channel_fd(&self) -> RawFd {
        // SAFETY: live channel, plain field.
        unsafe { (*self.channel).fd }
    }

    /// Arms the CQ for the next completion event.
    pub(super) fn req_notify(&self) -> Result<(), Errno> {
        // SAFETY: live CQ.
        rc(unsafe { sys::ibv_req_notify_cq(self.ptr, 0) })
    }

    /// Reads and acknowledges the pending completion events (descriptor non-blocking);
    /// how many there were.
    pub(super) fn drain_events(&self) -> u32 {
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
    pub(super) fn poll(&self, max: usize) -> Result<Vec<RawWc>, Errno> {
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
    pub(super) fn destroy(&mut self) -> Result<(), Errno> {
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

    pub(super) fn as_ptr(&self) -> *mut sys::ibv_cq {
        self.ptr
    }
}

impl Drop for Cq {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}

// ---------------------------------------------------------------------------------------
// Shared receive queues
// ---------------------------------------------------------------------------------------

/// A shared receive queue.
pub(super) struct Srq {
    ptr: *mut sys::ibv_srq,
}

// SAFETY: verbs objects may be used from any thread.
unsafe impl Send for Srq {}
// SAFETY: as above.
unsafe impl Sync for Srq {}

impl Srq {
    pub(super) fn create(pd: &Pd, max_wr: u32, max_sge: u32, limit: u32) -> Result<Srq, Errno> {
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
    pub(super) fn arm(&self, limit: u32) -> Result<(), Errno> {
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
    pub(super) fn query(&self) -> Result<(u32, u32, u32), Errno> {
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
    pub(super) fn post_recv(&self, wr_id: u64, sges: &[(u64, u32, u32)]) -> Result<(), Errno> {
        let mut list = sge_list(sges);
        let mut wr = recv_wr(wr_id, &mut list);
        let mut bad = ptr::null_mut();
        // SAFETY: live SRQ; `wr` and its list live across the call.
        rc(unsafe { sys::ibv_post_srq_recv(self.ptr, &mut wr, &mut bad) })
    }

    pub(super) fn destroy(&mut self) -> Result<(), Errno> {
        if self.ptr.is_null() {
            return Ok(());
        }
        // SAFETY: live SRQ, destroyed once.
        rc(unsafe { sys::ibv_destroy_srq(self.ptr) })?;
        self.ptr = ptr::null_mut();
        Ok(())
    }

    pub(super) fn as_ptr(&self) -> *mut sys::ibv_srq {
        self.ptr
    }
}

impl Drop for Srq {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}

fn sge_list(sges: &[(u64, u32, u32)]) -> Vec<sys::ibv_sge> {
    sges.iter()
        .map(|&(addr, length, lkey)| sys::ibv_sge { addr, length, lkey })
        .collect()
}

fn recv_wr(wr_id: u64, list: &mut [sys::ibv_sge]) -> sys::ibv_recv_wr {
    sys::ibv_recv_wr {
        wr_id,
        next: ptr::null_mut(),
        sg_list: if list.is_empty() {
            ptr::null_mut()
        } else {
            list.as_mut_ptr()
        },
        num_sge: i32::try_from(list.len()).unwrap_or(i32::MAX),
    }
}

// ---------------------------------------------------------------------------------------
// Queue pairs
// ---------------------------------------------------------------------------------------

/// An RC queue pair.
pub(super) struct Qp {
    ptr: *mut sys::ibv_qp,
}

// SAFETY: verbs objects may be used from any thread.
unsafe impl Send for Qp {}
// SAFETY: as above.
unsafe impl Sync for Qp {}

/// Sizes of a new QP.
pub(super) struct QpCaps {
    pub max_send_wr: u32,
    pub max_recv_wr: u32,
    pub max_send_sge: u32,
    pub max_recv_sge: u32,
}

/// What one `ibv_modify_qp` sets; `None` fields are left out of the mask.
#[derive(Default, Clone, Copy)]
pub(super) struct Modify {
    pub state: u32,
    pub port: Option<u8>,
    pub access: Option<u32>,
    /// (dgid, dest qpn, sgid index, path mtu enum, max_dest_rd_atomic)
    pub rtr: Option<([u8; 16], u32, u8, u32, u8)>,
    /// (retry_cnt, rnr_retry, max_rd_atomic)
    pub rts: Option<(u8, u8, u8)>,
}

/// One send request, flattened.
pub(super) struct RawSend<'a> {
    pub wr_id: u64,
    /// IBV_WR_* opcode.
    pub opcode: u32,
    pub sges: &'a [(u64, u32, u32)],
    pub signaled: bool,
    pub remote: Option<(u64, u32)>,
    pub invalidate_rkey: Option<u32>,
}

impl Qp {
    pub(super) fn create(
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

    pub(super) fn qp_num(&self) -> u32 {
        // SAFETY: live QP, plain field.
        unsafe { (*self.ptr).qp_num }
    }

    /// `ibv_modify_qp` with the fields `m` names.
    pub(super) fn modify(&self, m: &Modify) -> Result<(), Errno> {
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
    pub(super) fn modify_by_cm(
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
    pub(super) fn query_state(&self) -> Result<u32, Errno> {
        // SAFETY: plain old data.
        let mut a: sys::ibv_qp_attr = unsafe { std::mem::zeroed() };
        // SAFETY: plain old data.
        let mut init: sys::ibv_qp_init_attr = unsafe { std::mem::zeroed() };
        let mask = sys::ibv_qp_attr_mask::IBV_QP_STATE.0 as i32;
        // SAFETY: live QP, valid out pointers.
        rc(unsafe { sys::ibv_query_qp(self.ptr, &mut a, mask, &mut init) })?;
        Ok(a.qp_state)
    }

    /// The peer QP number set at RTR (`IBV_QP_DEST_QPN`).
    pub(super) fn query_dest_qpn(&self) -> Result<u32, Errno> {
        // SAFETY: plain old data.
        let mut a: sys::ibv_qp_attr = unsafe { std::mem::zeroed() };
        // SAFETY: plain old data.
        let mut init: sys::ibv_qp_init_attr = unsafe { std::mem::zeroed() };
        let mask = sys::ibv_qp_attr_mask::IBV_QP_DEST_QPN.0 as i32;
        // SAFETY: live QP, valid out pointers.
        rc(unsafe { sys::ibv_query_qp(self.ptr, &mut a, mask, &mut init) })?;
        Ok(a.dest_qp_num)
    }

    /// Posts one send request.
    pub(super) fn post_send(&self, s: &RawSend<'_>) -> Result<(), Errno> {
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

    /// Posts one receive to the QP's own queue.
    pub(super) fn post_recv(&self, wr_id: u64, sges: &[(u64, u32, u32)]) -> Result<(), Errno> {
        let mut list = sge_list(sges);
        let mut wr = recv_wr(wr_id, &mut list);
        let mut bad = ptr::null_mut();
        // SAFETY: live QP; `wr` and its list live across the call.
        rc(unsafe { sys::ibv_post_recv(self.ptr, &mut wr, &mut bad) })
    }

    pub(super) fn destroy(&mut self) -> Result<(), Errno> {
        if self.ptr.is_null() {
            return Ok(());
        }
        // SAFETY: live QP, destroyed once (its async events are acknowledged as read).
        rc(unsafe { sys::ibv_destroy_qp(self.ptr) })?;
        self.ptr = ptr::null_mut();
        Ok(())
    }

    pub(super) fn as_ptr(&self) -> *mut sys::ibv_qp {
        self.ptr
    }
}

impl Drop for Qp {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}

// ---------------------------------------------------------------------------------------
// Connection manager
// ---------------------------------------------------------------------------------------

/// An `rdma_event_channel`.
pub(super) struct EventChannel {
    ptr: *mut sys::rdma_event_channel,
}

// SAFETY: librdmacm channels may be used from any thread.
unsafe impl Send for EventChannel {}
// SAFETY: as above.
unsafe impl Sync for EventChannel {}

/// A CM event, copied out of librdmacm's structure and acknowledged.
pub(super) struct RawCmEvent {
    /// `rdma_cm_event_type` value.
    pub event: u32,
    pub status: i32,
    /// The tag ([`CmId::set_tag`]) of the identifier it is for; for a connect request,
    /// the new identifier's (inherited from its listener, so not to be used).
    pub tag: usize,
    /// For a connect request: the new identifier, owned from now on.
    pub new_id: Option<CmId>,
    /// For a connect request: the listener's tag.
    pub listen_tag: usize,
    pub private_data: Vec<u8>,
    pub responder_resources: u8,
    pub initiator_depth: u8,
    pub rnr_retry_count: u8,
}

impl EventChannel {
    pub(super) fn create() -> Result<EventChannel, Errno> {
        // SAFETY: no arguments.
        let ptr = unsafe { sys::rdma_create_event_channel() };
        if ptr.is_null() {
            Err(last_errno())
        } else {
            Ok(EventChannel { ptr })
        }
    }

    pub(super) fn fd(&self) -> RawFd {
        // SAFETY: live channel, plain field.
        unsafe { (*self.ptr).fd }
    }

    /// Takes one event without blocking (the descriptor is non-blocking).
    pub(super) fn get_event(&self) -> Option<RawCmEvent> {
        let mut ev: *mut sys::rdma_cm_event = ptr::null_mut();
        // SAFETY: live channel, valid out pointer.
        if unsafe { sys::rdma_get_cm_event(self.ptr, &mut ev) } != 0 || ev.is_null() {
            return None;
        }
        // SAFETY: `ev` is a live event until acknowledged below; everything is copied.
        let out = unsafe {
            let e = &*ev;
            let conn = e.param.conn;
            let private_data = if conn.private_data.is_null() || conn.private_data_len == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(
                    conn.private_data.cast::<u8>(),
                    usize::from(conn.private_data_len),
                )
                .to_vec()
            };
            let is_request = e.event == sys::rdma_cm_event_type::RDMA_CM_EVENT_CONNECT_REQUEST;
            RawCmEvent {
                event: e.event,
                status: e.status,
                tag: if e.id.is_null() {
                    0
                } else {
                    (*e.id).context as usize
                },
                new_id: is_request.then(|| CmId { ptr: e.id }),
                listen_tag: if e.listen_id.is_null() {
                    0
                } else {
                    (*e.listen_id).context as usize
                },
                private_data,
                responder_resources: conn.responder_resources,
                initiator_depth: conn.initiator_depth,
                rnr_retry_count: conn.rnr_retry_count,
            }
        };
        // SAFETY: acknowledged once, after the copy.
        unsafe { sys::rdma_ack_cm_event(ev) };
        Some(out)
    }
}

impl Drop for EventChannel {
    fn drop(&mut self) {
        // SAFETY: live channel; every identifier on it was destroyed first (the owner's
        // drop order).
        unsafe { sys::rdma_destroy_event_channel(self.ptr) };
    }
}

/// An `rdma_cm_id` (RDMA_PS_TCP).
pub(super) struct CmId {
    ptr: *mut sys::rdma_cm_id,
}

// SAFETY: librdmacm identifiers may be used from any thread.
unsafe impl Send for CmId {}
// SAFETY: as above.
unsafe impl Sync for CmId {}

/// Connection parameters for `rdma_connect` / `rdma_accept`.
pub(super) struct RawConnParam<'a> {
    pub private_data: &'a [u8],
    pub responder_resources: u8,
    pub initiator_depth: u8,
    pub rnr_retry_count: u8,
    pub qp_num: u32,
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

impl CmId {
    pub(super) fn create(channel: &EventChannel) -> Result<CmId, Errno> {
        let mut id = ptr::null_mut();
        // SAFETY: live channel, valid out pointer.
        rc(unsafe {
            sys::rdma_create_id(
                channel.ptr,
                &mut id,
                ptr::null_mut(),
                sys::rdma_port_space::RDMA_PS_TCP,
            )
        })?;
        Ok(CmId { ptr: id })
    }

    /// Tags the identifier: its events carry `tag` from now on. Events are matched to
    /// connections by tag, never by pointer, which librdmacm may reuse for a new
    /// identifier once an old one is destroyed.
    pub(super) fn set_tag(&self, tag: usize) {
        // SAFETY: live id; `context` is a field for the user that librdmacm only copies
        // (into events, and into identifiers a listener creates).
        unsafe { (*self.ptr).context = tag as *mut libc::c_void };
    }

    pub(super) fn bind(&self, addr: SocketAddrV4) -> Result<(), Errno> {
        let mut sin = sockaddr_in(addr);
        // SAFETY: live id; `sin` is a valid sockaddr_in for the call.
        rc(unsafe { sys::rdma_bind_addr(self.ptr, (&mut sin as *mut libc::sockaddr_in).cast()) })
    }

    pub(super) fn listen(&self, backlog: i32) -> Result<(), Errno> {
        // SAFETY: live, bound id.
        rc(unsafe { sys::rdma_listen(self.ptr, backlog) })
    }

    pub(super) fn resolve_addr(
        &self,
        src: Option<SocketAddrV4>,
        dst: SocketAddrV4,
        timeout_ms: i32,
    ) -> Result<(), Errno> {
        let mut s = src.map(sockaddr_in);
        let mut d = sockaddr_in(dst);
        let sp = s
            .as_mut()
            .map_or(ptr::null_mut(), |s| (s as *mut libc::sockaddr_in).cast());
        // SAFETY: live id; the addresses live across the call.
        rc(unsafe {
            sys::rdma_resolve_addr(
                self.ptr,
                sp,
                (&mut d as *mut libc::sockaddr_in).cast(),
                timeout_ms,
            )
        })
    }

    pub(super) fn resolve_route(&self, timeout_ms: i32) -> Result<(), Errno> {
        // SAFETY: live id with a resolved address.
        rc(unsafe { sys::rdma_resolve_route(self.ptr, timeout_ms) })
    }

    fn conn_param(p: &RawConnParam<'_>) -> sys::rdma_conn_param {
        sys::rdma_conn_param {
            private_data: if p.private_data.is_empty() {
                ptr::null()
            } else {
                p.private_data.as_ptr().cast()
            },
            private_data_len: u8::try_from(p.private_data.len()).unwrap_or(u8::MAX),
            responder_resources: p.responder_resources,
            initiator_depth: p.initiator_depth,
            flow_control: 1,
            retry_count: 7,
            rnr_retry_count: p.rnr_retry_count,
            srq: 0,
            qp_num: p.qp_num,
        }
    }

    pub(super) fn connect(&self, p: &RawConnParam<'_>) -> Result<(), Errno> {
        let mut param = Self::conn_param(p);
        // SAFETY: live id with a resolved route; the private data outlives the call.
        rc(unsafe { sys::rdma_connect(self.ptr, &mut param) })
    }

    pub(super) fn establish(&self) -> Result<(), Errno> {
        // SAFETY: live id that received a connect response.
        rc(unsafe { sys::rdma_establish(self.ptr) })
    }

    pub(super) fn accept(&self, p: &RawConnParam<'_>) -> Result<(), Errno> {
        let mut param = Self::conn_param(p);
        // SAFETY: live id from a connect request; the private data outlives the call.
        rc(unsafe { sys::rdma_accept(self.ptr, &mut param) })
    }

    pub(super) fn reject(&self, private_data: &[u8]) -> Result<(), Errno> {
        let p = if private_data.is_empty() {
            ptr::null()
        } else {
            private_data.as_ptr().cast()
        };
        let len = u8::try_from(private_data.len()).unwrap_or(u8::MAX);
        // SAFETY: live id from a connect request; the data outlives the call.
        rc(unsafe { sys::rdma_reject(self.ptr, p, len) })
    }

    pub(super) fn disconnect(&self) -> Result<(), Errno> {
        // SAFETY: live id.
        rc(unsafe { sys::rdma_disconnect(self.ptr) })
    }

    /// The peer's address (IPv4), as the route holds it.
    pub(super) fn peer_addr(&self) -> Option<SocketAddr> {
        // SAFETY: live id; the route's destination address is a sockaddr of the family
        // it names, read as sockaddr_in only for AF_INET.
        unsafe {
            let sa = sys::rdma_get_peer_addr(&*self.ptr);
            if i32::from(sa.sa_family) != libc::AF_INET {
                return None;
            }
            let sin = &*(sa as *const libc::sockaddr).cast::<libc::sockaddr_in>();
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
    }
}

impl Drop for CmId {
    fn drop(&mut self) {
        // SAFETY: live id, destroyed once; its events were acknowledged as read.
        unsafe { sys::rdma_destroy_id(self.ptr) };
    }
}
