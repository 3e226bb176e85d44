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

/// Declares a verbs handle `$name` over `*mut $raw`: `Send`/`Sync` (verbs objects may be
/// used from any thread), `destroy` (`$destroy` once; on failure, e.g. EBUSY, the handle
/// stays alive), `as_ptr`, and a `Drop` that destroys.
macro_rules! handle {
    ($(#[$m:meta])* $name:ident, $raw:ident, $destroy:ident) => {
        $(#[$m])*
        pub(in crate::fabric::verbs) struct $name {
            pub(super) ptr: *mut sys::$raw,
        }

        // SAFETY: verbs objects may be used from any thread.
        unsafe impl Send for $name {}
        // SAFETY: as above.
        unsafe impl Sync for $name {}

        impl $name {
            #[doc = concat!("`", stringify!($destroy), "`; on failure the handle stays alive.")]
            pub(in crate::fabric::verbs) fn destroy(&mut self) -> Result<(), Errno> {
                if self.ptr.is_null() {
                    return Ok(());
                }
                // SAFETY: a live handle; on success it is never used again (pointer cleared).
                rc(unsafe { sys::$destroy(self.ptr) })?;
                self.ptr = ptr::null_mut();
                Ok(())
            }

            #[allow(dead_code)]
            pub(in crate::fabric::verbs) fn as_ptr(&self) -> *mut sys::$raw {
                self.ptr
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                let _ = self.destroy();
            }
        }
    };
}

mod cm;
mod cq;
mod mem;
mod qp;
mod srq;

pub(in crate::fabric::verbs) use cm::*;
pub(in crate::fabric::verbs) use cq::*;
pub(in crate::fabric::verbs) use mem::*;
pub(in crate::fabric::verbs) use qp::*;
pub(in crate::fabric::verbs) use srq::*;

/// The errno of the last failed library call.
pub(super) fn last_errno() -> Errno {
    Errno::last()
}

/// A return value of a call that returns 0 or an errno (as `ibv_post_send`, `ibv_modify_qp`).
pub(super) fn rc(ret: i32) -> Result<(), Errno> {
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
pub(super) fn dup_nonblocking(fd: RawFd) -> std::io::Result<OwnedFd> {
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
    with_device_list(|devs| {
        devs.iter()
            .take_while(|dev| !dev.is_null())
            .map(|&dev| String::from_utf8_lossy(&device_name(dev)).into_owned())
            .collect()
    })
}

/// Runs `f` on the devices of `ibv_get_device_list`; the list is freed after it.
fn with_device_list<R>(f: impl FnOnce(&[*mut sys::ibv_device]) -> R) -> Result<R, Errno> {
    let mut n: i32 = 0;
    // SAFETY: `n` is a valid out pointer; the list returned is freed below.
    let list = unsafe { sys::ibv_get_device_list(&mut n) };
    if list.is_null() {
        return Err(last_errno());
    }
    // SAFETY: `list` holds `n` valid device pointers (libibverbs' contract), live until
    // the list is freed below.
    let devs = unsafe { std::slice::from_raw_parts(list, usize::try_from(n).unwrap_or(0)) };
    let r = f(devs);
    // SAFETY: `list` came from ibv_get_device_list and is freed once, after `f`.
    unsafe { sys::ibv_free_device_list(list) };
    Ok(r)
}

/// The name of `dev`, a live device of the list.
fn device_name(dev: *mut sys::ibv_device) -> Vec<u8> {
    // SAFETY: `dev` is a live device of the list; the name is a NUL-terminated string
    // owned by it, copied before the list is freed.
    unsafe { CStr::from_ptr(sys::ibv_get_device_name(dev)) }
        .to_bytes()
        .to_vec()
}

/// An opened device (`ibv_context`).
pub(super) struct Context {
    pub(super) ptr: *mut sys::ibv_context,
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
        with_device_list(|devs| {
            let found = devs
                .iter()
                .copied()
                .find(|&dev| device_name(dev) == name.as_bytes())
                .ok_or(Errno::ENODEV)?;
            // SAFETY: `found` is a live device of the list; a context stays valid after
            // the list is freed (libibverbs keeps the device referenced).
            let ctx = unsafe { sys::ibv_open_device(found) };
            if ctx.is_null() {
                Err(last_errno())
            } else {
                Ok(Context { ptr: ctx })
            }
        })?
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
    pub(super) ptr: *mut std::ffi::c_void,
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

pub(super) fn sge_list(sges: &[(u64, u32, u32)]) -> Vec<sys::ibv_sge> {
    sges.iter()
        .map(|&(addr, length, lkey)| sys::ibv_sge { addr, length, lkey })
        .collect()
}

pub(super) fn recv_wr(wr_id: u64, list: &mut [sys::ibv_sge]) -> sys::ibv_recv_wr {
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

/// A queue that takes receive requests: a QP's own receive queue or an SRQ.
pub(in crate::fabric::verbs) trait RecvQueue {
    /// `ibv_post_recv` or `ibv_post_srq_recv` on the live queue.
    ///
    /// # Safety
    /// `wr`'s scatter list must stay valid across the call.
    unsafe fn post_raw(&self, wr: &mut sys::ibv_recv_wr, bad: &mut *mut sys::ibv_recv_wr) -> i32;

    /// Posts one receive.
    fn post_recv(&self, wr_id: u64, sges: &[(u64, u32, u32)]) -> Result<(), Errno> {
        let mut list = sge_list(sges);
        let mut wr = recv_wr(wr_id, &mut list);
        let mut bad = ptr::null_mut();
        // SAFETY: `wr` and its list live across the call.
        rc(unsafe { self.post_raw(&mut wr, &mut bad) })
    }
}
