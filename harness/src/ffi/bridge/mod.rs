//! Every `unsafe` of `harness`: both directions of the C ABI of `include/nvmf_offload.h`.
//!
//! - **Export** a Rust object as a C vtable + context pointer: [`ExportedVerbs`] (any
//!   [`DeviceContext`]), [`ExportedOffload`] (any [`OffloadProvider`]), [`ExportedPci`]
//!   (any [`PciHost`]). The host exports its lower device and its PCI side; a plugin
//!   written in Rust exports its device context and provider.
//! - **Import** a C vtable + context pointer as a Rust object: [`ImportedVerbs`],
//!   [`ImportedOffload`], [`ImportedPci`]. Async waits become polls, with a sleep of
//!   [`POLL_INTERVAL`] of the current runtime's time between them.
//! - [`PluginLib`] / [`PluginDev`]: a loaded plugin library and an opened device.
//!
//! One file per vtable and direction (`export_verbs.rs`, `import_pci.rs`, ...); what they
//! share is here: [`Exported`], the one wrapper every export's C entry points go through
//! (context pointer check, runtime entry, panic containment, errno and last-error text),
//! the `call!` macro every import's calls go through, and the pointer helpers.
//!
//! Errors cross as negative errnos plus `last_error` reason texts; imported errors carry
//! the reason interned (reasons are short fixed texts, so the set stays small), so an
//! error coming back through the ABI compares equal to the one raised in-process.
//!
//! Threading: the ABI is single-threaded (the host never calls one plugin from two threads
//! at once); calls may nest (plugin → host → plugin) on one thread.

#![allow(unsafe_code)]

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use nix::errno::Errno;
use tokio::runtime::Handle;

use super::abi::*;
use super::convert::*;
use crate::api::{
    CtrlHandle, NsCounters, NsMapping, NvmeCtrlAttrs, NvmfCaps, NvmfSrq, NvmfSrqAttrs,
    OffloadError, OffloadEvent, OffloadProvider, QpNvmfFlags, SrqCounters, SrqHandle,
};
use crate::backend::{
    BackendAccess, PciDoorbells, PciFunction, PciHost, PciQueue, PciSpan, PciState, PciStatus,
};
use crate::fabric::{
    Access, AsyncEvent, CmEvent, ConnId, ConnParam, CqId, DeviceAttr, DeviceContext, FabricError,
    ListenerId, MrId, MrInfo, PdId, PortAttr, QpAttr, QpId, QpInfo, QpInit, QpState, RecvWr,
    SendOp, SendWr, SrqAttr, SrqId, SrqInit, WorkCompletion,
};

/// Time between two polls of an imported object's async wait.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Polls `f` until it gives a value, every [`POLL_INTERVAL`] of the current runtime's time.
async fn poll_until<T>(mut f: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Most completions one imported `poll_cq` asks for.
const MAX_POLL: usize = 4096;

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `&'static str` for a reason text that crossed the ABI.
fn intern(s: &str) -> &'static str {
    static TABLE: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut t = relock(&TABLE);
    if let Some(x) = t.get(s) {
        return x;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    t.insert(leaked);
    leaked
}

/// The errno of a negative return code (`None` for 0 and positive codes; EIO for
/// `INT_MIN`, which has no negation).
fn errno_of_rc(rc: c_int) -> Option<Errno> {
    (rc < 0).then(|| Errno::from_raw(rc.checked_neg().unwrap_or(Errno::EIO as c_int)))
}

fn neg(e: Errno) -> c_int {
    -(e as c_int)
}

/// The reason text of a fabric error, as it crosses the ABI.
fn fabric_reason(e: &FabricError) -> String {
    match e {
        FabricError::Invalid(r)
        | FabricError::NoMemory(r)
        | FabricError::Busy(r)
        | FabricError::NotFound(r)
        | FabricError::NotSupported(r)
        | FabricError::NotConnected(r) => (*r).to_string(),
        FabricError::NoDevice(s) => s.clone(),
        FabricError::AddrInUse(a) | FabricError::AddrNotAvail(a) => a.to_string(),
        FabricError::Os { call, .. } => (*call).to_string(),
    }
}

/// The fabric error for an errno and reason that crossed the ABI.
fn fabric_error(errno: Errno, reason: &str) -> FabricError {
    let r = intern(reason);
    match errno {
        Errno::EINVAL => FabricError::Invalid(r),
        Errno::ENOMEM => FabricError::NoMemory(r),
        Errno::EBUSY => FabricError::Busy(r),
        Errno::ENOENT => FabricError::NotFound(r),
        Errno::ENODEV => FabricError::NoDevice(r.to_string()),
        Errno::EOPNOTSUPP => FabricError::NotSupported(r),
        Errno::ENOTCONN => FabricError::NotConnected(r),
        Errno::EADDRINUSE | Errno::EADDRNOTAVAIL => match r.parse::<SocketAddr>() {
            Ok(a) if errno == Errno::EADDRINUSE => FabricError::AddrInUse(a),
            Ok(a) => FabricError::AddrNotAvail(a),
            Err(_) => FabricError::Os { call: r, errno },
        },
        errno => FabricError::Os { call: r, errno },
    }
}

/// The last error text of an exported object.
#[derive(Default)]
struct LastError(Mutex<CString>);

impl LastError {
    fn set(&self, s: &str) {
        let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
        *relock(&self.0) = c;
    }

    fn ptr(&self) -> *const c_char {
        // The CString lives in the mutex until the next failing call replaces it.
        relock(&self.0).as_ptr()
    }
}

/// A pointer the C caller handed us, treated as valid as the ABI requires.
fn put<T>(p: *mut T, v: T) -> Result<(), Errno> {
    if p.is_null() {
        return Err(Errno::EINVAL);
    }
    // SAFETY: non-null out-pointer from the C caller, which the ABI requires to point to a
    // writable, aligned T.
    unsafe { p.write(v) };
    Ok(())
}

fn get<'a, T>(p: *const T) -> Result<&'a T, Errno> {
    // SAFETY: in-pointer from the C caller, which the ABI requires to be null or to point
    // to a valid T for the duration of the call.
    unsafe { p.as_ref() }.ok_or(Errno::EINVAL)
}

fn slice<'a, T>(p: *const T, n: usize) -> Result<&'a [T], Errno> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the ABI requires `p` to point to `n` valid elements for the call's duration.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

fn slice_mut<'a, T>(p: *mut T, n: usize) -> Result<&'a mut [T], Errno> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the ABI requires `p` to point to `n` writable elements for the call's
    // duration, not aliased by anything we hold.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

fn c_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null pointer to a NUL-terminated string, as the ABI requires of
    // last_error / config / open_error; copied out at once.
    let s = unsafe { CStr::from_ptr(p) };
    Some(s.to_string_lossy().into_owned())
}

/// A raw context pointer the ABI lets us use from the thread that calls us.
#[derive(Debug, Clone, Copy)]
struct RawCtx(*mut c_void);

// SAFETY: the ABI is single-threaded: the host serialises every call to one plugin (and
// the plugin's calls to the host); the pointer is only dereferenced by the other side.
unsafe impl Send for RawCtx {}
// SAFETY: as above; shared references never touch the pointee from Rust.
unsafe impl Sync for RawCtx {}

/// A Rust object behind a C vtable: the context pointer the vtable's functions get points
/// to one of these. `S` is what is exported ([`ExportedVerbs`], [`ExportedOffload`],
/// [`ExportedPci`]).
pub struct Exported<S> {
    side: S,
    rt: Option<Handle>,
    last: LastError,
}

/// What can be exported: the three sides of the ABI.
pub trait Side {
    /// "the device context", ...
    const NAME: &'static str;
}

/// An error an exported call returns: a negative errno and, where the vtable has
/// `last_error`, a reason text.
trait CallError {
    fn errno(&self) -> Errno;
    fn reason(&self) -> Option<String>;
}

impl CallError for FabricError {
    fn errno(&self) -> Errno {
        FabricError::errno(self)
    }
    fn reason(&self) -> Option<String> {
        Some(fabric_reason(self))
    }
}

impl CallError for OffloadError {
    fn errno(&self) -> Errno {
        OffloadError::errno(self)
    }
    fn reason(&self) -> Option<String> {
        Some(OffloadError::reason(self).to_string())
    }
}

impl CallError for Errno {
    fn errno(&self) -> Errno {
        *self
    }
    fn reason(&self) -> Option<String> {
        None
    }
}

impl<S: Side> Exported<S> {
    fn boxed(side: S, rt: Option<Handle>) -> Box<Exported<S>> {
        Box::new(Exported {
            side,
            rt,
            last: LastError::default(),
        })
    }

    /// The context pointer for the vtable's calls: valid while `self` lives (boxed).
    pub fn ctx_ptr(&self) -> *mut c_void {
        let p: *const Exported<S> = self;
        p as *mut c_void
    }

    /// Runs one C entry point's body on the export behind `ctx`: EINVAL for a null
    /// context, the export's runtime entered, a panic contained (EIO), an error returned
    /// as its negative errno with its reason kept for `last_error`.
    fn call<E: CallError>(ctx: *mut c_void, f: impl FnOnce(&S) -> Result<(), E>) -> c_int {
        // SAFETY: ctx is the pointer `ctx_ptr` handed out; the ABI requires it to be used
        // only while the export lives.
        let Some(e) = (unsafe { (ctx as *const Exported<S>).as_ref() }) else {
            return neg(Errno::EINVAL);
        };
        let _g = e.rt.as_ref().map(|h| h.enter());
        match catch_unwind(AssertUnwindSafe(|| f(&e.side))) {
            Ok(Ok(())) => 0,
            Ok(Err(err)) => {
                if let Some(r) = err.reason() {
                    e.last.set(&r);
                }
                neg(err.errno())
            }
            Err(_) => {
                e.last.set(&format!("panic in {}", S::NAME));
                neg(Errno::EIO)
            }
        }
    }

    /// The `last_error` entry point's body: the last failed call's reason text.
    fn last_error(ctx: *mut c_void) -> *const c_char {
        // SAFETY: as in `call`.
        match unsafe { (ctx as *const Exported<S>).as_ref() } {
            Some(e) => e.last.ptr(),
            None => std::ptr::null(),
        }
    }
}

/// A C vtable `O` and its context pointer as a Rust object: `O` is
/// `struct nvmf_verbs_ops` ([`ImportedVerbs`]) or `struct nvmf_offload_ops`
/// ([`ImportedOffload`]).
pub struct Imported<O> {
    ops: O,
    ctx: RawCtx,
    keep: Option<Arc<dyn Any + Send + Sync>>,
}

/// A vtable's `last_error`.
type LastErrorFn = Option<unsafe extern "C" fn(*mut c_void) -> *const c_char>;

impl<O> Imported<O> {
    /// Wraps C operations.
    ///
    /// # Safety
    /// `ops` must come from a valid vtable and `ctx` be its context, both usable for as
    /// long as the returned object (and `keep` keeps whatever owns them).
    pub unsafe fn from_raw(
        ops: O,
        ctx: *mut c_void,
        keep: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Imported<O> {
        Imported {
            ops,
            ctx: RawCtx(ctx),
            keep,
        }
    }

    /// The reason a call failed: the text `last_error` gives, or `what` when the vtable
    /// has none or it says nothing.
    fn reason(&self, last_error: LastErrorFn, what: &'static str) -> String {
        let _ = &self.keep;
        match last_error {
            // SAFETY: as in call!.
            Some(f) => c_str(unsafe { f(self.ctx.0) })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| what.to_string()),
            None => what.to_string(),
        }
    }
}

/// Calls an optional C function pointer; EOPNOTSUPP when the table lacks it.
macro_rules! call {
    ($ops:expr, $ctx:expr, $f:ident $(, $a:expr)*) => {
        match $ops.$f {
            // SAFETY: a function of the vtable the other side handed us, called with its
            // own context pointer and arguments that live for the call, as the ABI says.
            Some(f) => unsafe { f($ctx $(, $a)*) },
            None => neg(Errno::EOPNOTSUPP),
        }
    };
}

/// `call!` on an import's own vtable, its return code checked by the import's `check`
/// (a failure without a reason text is named after the call).
macro_rules! checked {
    ($imp:expr, $f:ident $(, $a:expr)*) => {
        $imp.check(call!($imp.ops, $imp.ctx.0, $f $(, $a)*), stringify!($f))
    };
}

mod export_offload;
mod export_pci;
mod export_verbs;
mod import_offload;
mod import_pci;
mod import_verbs;
mod library;

pub use export_offload::{loopback_offload, ExportedOffload};
pub use export_pci::ExportedPci;
pub use export_verbs::ExportedVerbs;
pub use import_offload::ImportedOffload;
pub use import_pci::ImportedPci;
pub use import_verbs::{loopback_verbs, ImportedVerbs};
pub use library::{LibError, PluginDev, PluginLib};
