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
use crate::fabric::{
    Access, AsyncEvent, CmEvent, ConnId, ConnParam, CqId, DeviceAttr, DeviceContext, FabricError,
    ListenerId, MrId, MrInfo, PdId, PortAttr, QpAttr, QpId, QpInfo, QpInit, QpState, RecvWr,
    SendOp, SendWr, SrqAttr, SrqId, SrqInit, WorkCompletion,
};
use crate::backend::{PciFunction, PciHost, PciQueue, PciSpan, PciState, PciStatus};

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

// ============================================================== export: verbs ====

/// A [`DeviceContext`] behind `struct nvmf_verbs_ops` (see the module docs).
pub struct ExportedVerbs {
    ctx: Arc<dyn DeviceContext>,
    rt: Option<Handle>,
    last: LastError,
}

impl ExportedVerbs {
    /// Exports `ctx`; every call enters `rt` when given (a plugin's own runtime).
    pub fn new(ctx: Arc<dyn DeviceContext>, rt: Option<Handle>) -> Box<ExportedVerbs> {
        Box::new(ExportedVerbs {
            ctx,
            rt,
            last: LastError::default(),
        })
    }

    /// The vtable.
    pub fn ops() -> &'static NvmfVerbsOps {
        &VERBS_OPS
    }

    /// The context pointer for the vtable's calls: valid while `self` lives (boxed).
    pub fn ctx_ptr(&self) -> *mut c_void {
        let p: *const ExportedVerbs = self;
        p as *mut c_void
    }
}

fn with_verbs(
    ctx: *mut c_void,
    f: impl FnOnce(&dyn DeviceContext) -> Result<(), FabricError>,
) -> c_int {
    // SAFETY: ctx is the pointer ExportedVerbs::ctx_ptr handed out; the ABI requires it to
    // be used only while the export lives.
    let Some(e) = (unsafe { (ctx as *const ExportedVerbs).as_ref() }) else {
        return neg(Errno::EINVAL);
    };
    let _g = e.rt.as_ref().map(|h| h.enter());
    match catch_unwind(AssertUnwindSafe(|| f(e.ctx.as_ref()))) {
        Ok(Ok(())) => 0,
        Ok(Err(err)) => {
            e.last.set(&fabric_reason(&err));
            neg(err.errno())
        }
        Err(_) => {
            e.last.set("panic in the device context");
            neg(Errno::EIO)
        }
    }
}

fn arg<T>(r: Result<T, Errno>, what: &'static str) -> Result<T, FabricError> {
    r.map_err(|e| fabric_error(e, what))
}

fn recv_wr_from_c(wr: &NvmfRecvWr) -> Result<RecvWr, FabricError> {
    let sges = arg(slice(wr.sg_list, wr.num_sge as usize), "recv_wr.sg_list")?;
    Ok(RecvWr {
        wr_id: wr.wr_id,
        sg_list: sges.iter().map(sge_from_c).collect(),
    })
}

fn send_wr_from_c(wr: &NvmfSendWr) -> Result<SendWr, FabricError> {
    let sges = arg(slice(wr.sg_list, wr.num_sge as usize), "send_wr.sg_list")?;
    let op = match wr.opcode {
        NVMF_SEND => SendOp::Send,
        NVMF_SEND_WITH_INV => SendOp::SendWithInv { rkey: wr.rkey },
        NVMF_RDMA_WRITE => SendOp::RdmaWrite {
            remote_addr: wr.remote_addr,
            rkey: wr.rkey,
        },
        NVMF_RDMA_READ => SendOp::RdmaRead {
            remote_addr: wr.remote_addr,
            rkey: wr.rkey,
        },
        _ => return Err(FabricError::Invalid("send_wr.opcode unknown")),
    };
    Ok(SendWr {
        wr_id: wr.wr_id,
        op,
        sg_list: sges.iter().map(sge_from_c).collect(),
        signaled: wr.signaled != 0,
    })
}

fn conn_param_from_c(p: &NvmfConnParam) -> Result<ConnParam, FabricError> {
    let pd = arg(
        slice(p.private_data, p.private_data_len as usize),
        "conn_param.private_data",
    )?;
    Ok(ConnParam {
        private_data: pd.to_vec(),
        responder_resources: p.responder_resources,
        initiator_depth: p.initiator_depth,
        rnr_retry_count: p.rnr_retry_count,
    })
}

unsafe extern "C" fn v_query_device(ctx: *mut c_void, out: *mut NvmfDeviceAttr) -> c_int {
    with_verbs(ctx, |c| {
        arg(put(out, device_attr_to_c(&c.device_attr())), "out")
    })
}
unsafe extern "C" fn v_query_port(ctx: *mut c_void, port: u8, out: *mut NvmfPortAttr) -> c_int {
    with_verbs(ctx, |c| {
        let a = c.port_attr(port)?;
        arg(put(out, port_attr_to_c(&a)), "out")
    })
}
unsafe extern "C" fn v_alloc_pd(ctx: *mut c_void, out: *mut u32) -> c_int {
    with_verbs(ctx, |c| arg(put(out, c.alloc_pd()?.0), "out"))
}
unsafe extern "C" fn v_dealloc_pd(ctx: *mut c_void, pd: u32) -> c_int {
    with_verbs(ctx, |c| c.dealloc_pd(PdId(pd)))
}
unsafe extern "C" fn v_reg_mr(
    ctx: *mut c_void,
    pd: u32,
    len: u64,
    access: u32,
    out: *mut NvmfMrInfo,
) -> c_int {
    with_verbs(ctx, |c| {
        let m = c.reg_mr(PdId(pd), len, Access::from_bits_retain(access))?;
        arg(put(out, mr_to_c(&m)), "out")
    })
}
unsafe extern "C" fn v_dereg_mr(ctx: *mut c_void, mr: u32) -> c_int {
    with_verbs(ctx, |c| c.dereg_mr(MrId(mr)))
}
unsafe extern "C" fn v_mr_write(
    ctx: *mut c_void,
    mr: u32,
    offset: u64,
    data: *const c_void,
    len: usize,
) -> c_int {
    with_verbs(ctx, |c| {
        let d = arg(slice(data as *const u8, len), "data")?;
        c.mr_write(MrId(mr), offset, d)
    })
}
unsafe extern "C" fn v_mr_read(
    ctx: *mut c_void,
    mr: u32,
    offset: u64,
    buf: *mut c_void,
    len: usize,
) -> c_int {
    with_verbs(ctx, |c| {
        let b = arg(slice_mut(buf as *mut u8, len), "buf")?;
        c.mr_read(MrId(mr), offset, b)
    })
}
unsafe extern "C" fn v_create_cq(ctx: *mut c_void, cqe: u32, out: *mut u32) -> c_int {
    with_verbs(ctx, |c| arg(put(out, c.create_cq(cqe)?.0), "out"))
}
unsafe extern "C" fn v_destroy_cq(ctx: *mut c_void, cq: u32) -> c_int {
    with_verbs(ctx, |c| c.destroy_cq(CqId(cq)))
}
unsafe extern "C" fn v_poll_cq(
    ctx: *mut c_void,
    cq: u32,
    wc: *mut NvmfWc,
    max: u32,
    n: *mut u32,
) -> c_int {
    with_verbs(ctx, |c| {
        let out = arg(slice_mut(wc, max as usize), "wc")?;
        let got = c.poll_cq(CqId(cq), max as usize)?;
        for (d, w) in out.iter_mut().zip(got.iter()) {
            *d = wc_to_c(w);
        }
        arg(put(n, got.len().min(max as usize) as u32), "n")
    })
}
unsafe extern "C" fn v_cq_ready(ctx: *mut c_void, cq: u32) -> c_int {
    with_verbs(ctx, |c| {
        use futures::FutureExt;
        match c.wait_cq(CqId(cq)).now_or_never() {
            Some(r) => r,
            None => Err(FabricError::Os {
                call: "cq_ready: empty",
                errno: Errno::EAGAIN,
            }),
        }
    })
}
unsafe extern "C" fn v_create_srq(
    ctx: *mut c_void,
    pd: u32,
    init: *const NvmfSrqInit,
    out: *mut u32,
) -> c_int {
    with_verbs(ctx, |c| {
        let i = srq_init_from_c(arg(get(init), "init")?);
        arg(put(out, c.create_srq(PdId(pd), i)?.0), "out")
    })
}
unsafe extern "C" fn v_arm_srq(ctx: *mut c_void, srq: u32, limit: u32) -> c_int {
    with_verbs(ctx, |c| c.arm_srq(SrqId(srq), limit))
}
unsafe extern "C" fn v_query_srq(ctx: *mut c_void, srq: u32, out: *mut NvmfSrqAttr) -> c_int {
    with_verbs(ctx, |c| {
        let a = c.query_srq(SrqId(srq))?;
        arg(put(out, srq_attr_to_c(&a)), "out")
    })
}
unsafe extern "C" fn v_destroy_srq(ctx: *mut c_void, srq: u32) -> c_int {
    with_verbs(ctx, |c| c.destroy_srq(SrqId(srq)))
}
unsafe extern "C" fn v_post_srq_recv(ctx: *mut c_void, srq: u32, wr: *const NvmfRecvWr) -> c_int {
    with_verbs(ctx, |c| {
        let w = recv_wr_from_c(arg(get(wr), "wr")?)?;
        c.post_srq_recv(SrqId(srq), &w)
    })
}
unsafe extern "C" fn v_create_qp(
    ctx: *mut c_void,
    pd: u32,
    init: *const NvmfQpInit,
    out: *mut NvmfQpInfo,
) -> c_int {
    with_verbs(ctx, |c| {
        let i = qp_init_from_c(arg(get(init), "init")?);
        let q = c.create_qp(PdId(pd), i)?;
        arg(put(out, qp_info_to_c(&q)), "out")
    })
}
unsafe extern "C" fn v_modify_qp(ctx: *mut c_void, qp: u32, attr: *const NvmfQpAttr) -> c_int {
    with_verbs(ctx, |c| {
        let a = qp_attr_from_c(arg(get(attr), "attr")?)
            .ok_or(FabricError::Invalid("modify_qp: unknown state"))?;
        c.modify_qp(QpId(qp), &a)
    })
}
unsafe extern "C" fn v_query_qp(ctx: *mut c_void, qp: u32, out: *mut u32) -> c_int {
    with_verbs(ctx, |c| {
        let s = c.query_qp(QpId(qp))?;
        arg(put(out, qp_state_to_u32(s)), "out")
    })
}
unsafe extern "C" fn v_destroy_qp(ctx: *mut c_void, qp: u32) -> c_int {
    with_verbs(ctx, |c| c.destroy_qp(QpId(qp)))
}
unsafe extern "C" fn v_post_send(ctx: *mut c_void, qp: u32, wr: *const NvmfSendWr) -> c_int {
    with_verbs(ctx, |c| {
        let w = send_wr_from_c(arg(get(wr), "wr")?)?;
        c.post_send(QpId(qp), &w)
    })
}
unsafe extern "C" fn v_post_recv(ctx: *mut c_void, qp: u32, wr: *const NvmfRecvWr) -> c_int {
    with_verbs(ctx, |c| {
        let w = recv_wr_from_c(arg(get(wr), "wr")?)?;
        c.post_recv(QpId(qp), &w)
    })
}
const EMPTY: FabricError = FabricError::Os {
    call: "nothing pending",
    errno: Errno::EAGAIN,
};
unsafe extern "C" fn v_poll_async_event(ctx: *mut c_void, out: *mut NvmfAsyncEvent) -> c_int {
    with_verbs(ctx, |c| match c.poll_async_event() {
        Some(e) => arg(put(out, async_event_to_c(&e)), "out"),
        None => Err(EMPTY),
    })
}
unsafe extern "C" fn v_cm_listen(
    ctx: *mut c_void,
    addr: *const NvmfSockaddr,
    out: *mut u32,
) -> c_int {
    with_verbs(ctx, |c| {
        let a = sockaddr_from_c(arg(get(addr), "addr")?)
            .ok_or(FabricError::Invalid("cm_listen: address family"))?;
        arg(put(out, c.cm_listen(a)?.0), "out")
    })
}
unsafe extern "C" fn v_cm_close_listener(ctx: *mut c_void, l: u32) -> c_int {
    with_verbs(ctx, |c| c.cm_close_listener(ListenerId(l)))
}
unsafe extern "C" fn v_cm_connect(
    ctx: *mut c_void,
    addr: *const NvmfSockaddr,
    qp: u32,
    param: *const NvmfConnParam,
    out: *mut u32,
) -> c_int {
    with_verbs(ctx, |c| {
        let a = sockaddr_from_c(arg(get(addr), "addr")?)
            .ok_or(FabricError::Invalid("cm_connect: address family"))?;
        let p = conn_param_from_c(arg(get(param), "param")?)?;
        arg(put(out, c.cm_connect(a, QpId(qp), &p)?.0), "out")
    })
}
unsafe extern "C" fn v_cm_accept(
    ctx: *mut c_void,
    conn: u32,
    qp: u32,
    param: *const NvmfConnParam,
) -> c_int {
    with_verbs(ctx, |c| {
        let p = conn_param_from_c(arg(get(param), "param")?)?;
        c.cm_accept(ConnId(conn), QpId(qp), &p)
    })
}
unsafe extern "C" fn v_cm_reject(ctx: *mut c_void, conn: u32, pd: *const u8, len: u32) -> c_int {
    with_verbs(ctx, |c| {
        let d = arg(slice(pd, len as usize), "private_data")?;
        c.cm_reject(ConnId(conn), d)
    })
}
unsafe extern "C" fn v_cm_disconnect(ctx: *mut c_void, conn: u32) -> c_int {
    with_verbs(ctx, |c| c.cm_disconnect(ConnId(conn)))
}
unsafe extern "C" fn v_cm_destroy(ctx: *mut c_void, conn: u32) -> c_int {
    with_verbs(ctx, |c| c.cm_destroy(ConnId(conn)))
}
unsafe extern "C" fn v_poll_cm_event(ctx: *mut c_void, out: *mut NvmfCmEvent) -> c_int {
    with_verbs(ctx, |c| match c.poll_cm_event() {
        Some(e) => arg(put(out, cm_event_to_c(&e)), "out"),
        None => Err(EMPTY),
    })
}
unsafe extern "C" fn v_last_error(ctx: *mut c_void) -> *const c_char {
    // SAFETY: as in with_verbs.
    match unsafe { (ctx as *const ExportedVerbs).as_ref() } {
        Some(e) => e.last.ptr(),
        None => std::ptr::null(),
    }
}

static VERBS_OPS: NvmfVerbsOps = NvmfVerbsOps {
    query_device: Some(v_query_device),
    query_port: Some(v_query_port),
    alloc_pd: Some(v_alloc_pd),
    dealloc_pd: Some(v_dealloc_pd),
    reg_mr: Some(v_reg_mr),
    dereg_mr: Some(v_dereg_mr),
    mr_write: Some(v_mr_write),
    mr_read: Some(v_mr_read),
    create_cq: Some(v_create_cq),
    destroy_cq: Some(v_destroy_cq),
    poll_cq: Some(v_poll_cq),
    cq_ready: Some(v_cq_ready),
    create_srq: Some(v_create_srq),
    arm_srq: Some(v_arm_srq),
    query_srq: Some(v_query_srq),
    destroy_srq: Some(v_destroy_srq),
    post_srq_recv: Some(v_post_srq_recv),
    create_qp: Some(v_create_qp),
    modify_qp: Some(v_modify_qp),
    query_qp: Some(v_query_qp),
    destroy_qp: Some(v_destroy_qp),
    post_send: Some(v_post_send),
    post_recv: Some(v_post_recv),
    poll_async_event: Some(v_poll_async_event),
    cm_listen: Some(v_cm_listen),
    cm_close_listener: Some(v_cm_close_listener),
    cm_connect: Some(v_cm_connect),
    cm_accept: Some(v_cm_accept),
    cm_reject: Some(v_cm_reject),
    cm_disconnect: Some(v_cm_disconnect),
    cm_destroy: Some(v_cm_destroy),
    poll_cm_event: Some(v_poll_cm_event),
    last_error: Some(v_last_error),
};

// ============================================================== import: verbs ====

/// A `struct nvmf_verbs_ops` + context as a [`DeviceContext`] (see the module docs).
pub struct ImportedVerbs {
    ops: NvmfVerbsOps,
    ctx: RawCtx,
    keep: Option<Arc<dyn Any + Send + Sync>>,
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

impl ImportedVerbs {
    /// Wraps a C verbs device.
    ///
    /// # Safety
    /// `ops` must come from a valid `struct nvmf_verbs_ops` and `ctx` be its context, both
    /// usable for as long as the returned object (and `keep` keeps whatever owns them).
    pub unsafe fn from_raw(
        ops: NvmfVerbsOps,
        ctx: *mut c_void,
        keep: Option<Arc<dyn Any + Send + Sync>>,
    ) -> ImportedVerbs {
        ImportedVerbs {
            ops,
            ctx: RawCtx(ctx),
            keep,
        }
    }

    fn reason(&self, what: &'static str) -> String {
        let _ = &self.keep;
        match self.ops.last_error {
            // SAFETY: as in call!.
            Some(f) => c_str(unsafe { f(self.ctx.0) })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| what.to_string()),
            None => what.to_string(),
        }
    }

    fn check(&self, rc: c_int, what: &'static str) -> Result<(), FabricError> {
        if rc >= 0 {
            return Ok(());
        }
        let errno = errno_of_rc(rc).unwrap_or(Errno::EIO);
        Err(fabric_error(errno, &self.reason(what)))
    }
}

impl std::fmt::Debug for ImportedVerbs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedVerbs").finish_non_exhaustive()
    }
}

#[async_trait]
impl DeviceContext for ImportedVerbs {
    fn device_attr(&self) -> DeviceAttr {
        let mut a = device_attr_to_c(&DeviceAttr {
            name: String::new(),
            phys_port_cnt: 0,
            max_qp: 0,
            max_qp_wr: 0,
            max_sge: 0,
            max_cq: 0,
            max_cqe: 0,
            max_mr: 0,
            max_mr_size: 0,
            max_pd: 0,
            max_srq: 0,
            max_srq_wr: 0,
            max_qp_rd_atom: 0,
        });
        let _ = call!(self.ops, self.ctx.0, query_device, &mut a);
        device_attr_from_c(&a)
    }

    fn port_attr(&self, port: u8) -> crate::fabric::Result<PortAttr> {
        let mut a = NvmfPortAttr::default();
        self.check(
            call!(self.ops, self.ctx.0, query_port, port, &mut a),
            "query_port",
        )?;
        Ok(port_attr_from_c(&a))
    }

    fn alloc_pd(&self) -> crate::fabric::Result<PdId> {
        let mut v = 0;
        self.check(call!(self.ops, self.ctx.0, alloc_pd, &mut v), "alloc_pd")?;
        Ok(PdId(v))
    }

    fn dealloc_pd(&self, pd: PdId) -> crate::fabric::Result<()> {
        self.check(call!(self.ops, self.ctx.0, dealloc_pd, pd.0), "dealloc_pd")
    }

    fn reg_mr(&self, pd: PdId, len: u64, access: Access) -> crate::fabric::Result<MrInfo> {
        let mut m = NvmfMrInfo::default();
        let rc = call!(
            self.ops,
            self.ctx.0,
            reg_mr,
            pd.0,
            len,
            access.bits(),
            &mut m
        );
        self.check(rc, "reg_mr")?;
        Ok(mr_from_c(&m))
    }

    fn dereg_mr(&self, mr: MrId) -> crate::fabric::Result<()> {
        self.check(call!(self.ops, self.ctx.0, dereg_mr, mr.0), "dereg_mr")
    }

    fn mr_write(&self, mr: MrId, offset: u64, data: &[u8]) -> crate::fabric::Result<()> {
        let rc = call!(
            self.ops,
            self.ctx.0,
            mr_write,
            mr.0,
            offset,
            data.as_ptr() as *const c_void,
            data.len()
        );
        self.check(rc, "mr_write")
    }

    fn mr_read(&self, mr: MrId, offset: u64, buf: &mut [u8]) -> crate::fabric::Result<()> {
        let rc = call!(
            self.ops,
            self.ctx.0,
            mr_read,
            mr.0,
            offset,
            buf.as_mut_ptr() as *mut c_void,
            buf.len()
        );
        self.check(rc, "mr_read")
    }

    fn create_cq(&self, cqe: u32) -> crate::fabric::Result<CqId> {
        let mut v = 0;
        self.check(
            call!(self.ops, self.ctx.0, create_cq, cqe, &mut v),
            "create_cq",
        )?;
        Ok(CqId(v))
    }

    fn destroy_cq(&self, cq: CqId) -> crate::fabric::Result<()> {
        self.check(call!(self.ops, self.ctx.0, destroy_cq, cq.0), "destroy_cq")
    }

    fn poll_cq(&self, cq: CqId, max: usize) -> crate::fabric::Result<Vec<WorkCompletion>> {
        let max = max.min(MAX_POLL);
        let mut buf = vec![NvmfWc::default(); max];
        let mut n = 0u32;
        let rc = call!(
            self.ops,
            self.ctx.0,
            poll_cq,
            cq.0,
            buf.as_mut_ptr(),
            max as u32,
            &mut n
        );
        self.check(rc, "poll_cq")?;
        buf[..(n as usize).min(max)]
            .iter()
            .map(|w| wc_from_c(w).ok_or(FabricError::Invalid("poll_cq: undefined status")))
            .collect()
    }

    async fn wait_cq(&self, cq: CqId) -> crate::fabric::Result<()> {
        poll_until(|| {
            let rc = call!(self.ops, self.ctx.0, cq_ready, cq.0);
            (rc != neg(Errno::EAGAIN)).then(|| self.check(rc, "cq_ready"))
        })
        .await
    }

    fn create_srq(&self, pd: PdId, init: SrqInit) -> crate::fabric::Result<SrqId> {
        let i = srq_init_to_c(&init);
        let mut v = 0;
        let rc = call!(self.ops, self.ctx.0, create_srq, pd.0, &i, &mut v);
        self.check(rc, "create_srq")?;
        Ok(SrqId(v))
    }

    fn arm_srq(&self, srq: SrqId, limit: u32) -> crate::fabric::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, arm_srq, srq.0, limit),
            "arm_srq",
        )
    }

    fn query_srq(&self, srq: SrqId) -> crate::fabric::Result<SrqAttr> {
        let mut a = NvmfSrqAttr::default();
        self.check(
            call!(self.ops, self.ctx.0, query_srq, srq.0, &mut a),
            "query_srq",
        )?;
        Ok(srq_attr_from_c(&a))
    }

    fn destroy_srq(&self, srq: SrqId) -> crate::fabric::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, destroy_srq, srq.0),
            "destroy_srq",
        )
    }

    fn post_srq_recv(&self, srq: SrqId, wr: &RecvWr) -> crate::fabric::Result<()> {
        let sges: Vec<NvmfSge> = wr.sg_list.iter().map(sge_to_c).collect();
        let c = NvmfRecvWr {
            wr_id: wr.wr_id,
            num_sge: sges.len() as u32,
            reserved: 0,
            sg_list: sges.as_ptr(),
        };
        self.check(
            call!(self.ops, self.ctx.0, post_srq_recv, srq.0, &c),
            "post_srq_recv",
        )
    }

    fn create_qp(&self, pd: PdId, init: QpInit) -> crate::fabric::Result<QpInfo> {
        let i = qp_init_to_c(&init);
        let mut q = NvmfQpInfo::default();
        let rc = call!(self.ops, self.ctx.0, create_qp, pd.0, &i, &mut q);
        self.check(rc, "create_qp")?;
        Ok(qp_info_from_c(&q))
    }

    fn modify_qp(&self, qp: QpId, attr: &QpAttr) -> crate::fabric::Result<()> {
        let a = qp_attr_to_c(attr);
        self.check(
            call!(self.ops, self.ctx.0, modify_qp, qp.0, &a),
            "modify_qp",
        )
    }

    fn query_qp(&self, qp: QpId) -> crate::fabric::Result<QpState> {
        let mut s = 0u32;
        self.check(
            call!(self.ops, self.ctx.0, query_qp, qp.0, &mut s),
            "query_qp",
        )?;
        qp_state_from_u32(s).ok_or(FabricError::Invalid("query_qp: undefined state"))
    }

    fn destroy_qp(&self, qp: QpId) -> crate::fabric::Result<()> {
        self.check(call!(self.ops, self.ctx.0, destroy_qp, qp.0), "destroy_qp")
    }

    fn post_send(&self, qp: QpId, wr: &SendWr) -> crate::fabric::Result<()> {
        let sges: Vec<NvmfSge> = wr.sg_list.iter().map(sge_to_c).collect();
        let (opcode, remote_addr, rkey) = match wr.op {
            SendOp::Send => (NVMF_SEND, 0, 0),
            SendOp::SendWithInv { rkey } => (NVMF_SEND_WITH_INV, 0, rkey),
            SendOp::RdmaWrite { remote_addr, rkey } => (NVMF_RDMA_WRITE, remote_addr, rkey),
            SendOp::RdmaRead { remote_addr, rkey } => (NVMF_RDMA_READ, remote_addr, rkey),
        };
        let c = NvmfSendWr {
            wr_id: wr.wr_id,
            opcode,
            signaled: u32::from(wr.signaled),
            remote_addr,
            rkey,
            num_sge: sges.len() as u32,
            sg_list: sges.as_ptr(),
        };
        self.check(
            call!(self.ops, self.ctx.0, post_send, qp.0, &c),
            "post_send",
        )
    }

    fn post_recv(&self, qp: QpId, wr: &RecvWr) -> crate::fabric::Result<()> {
        let sges: Vec<NvmfSge> = wr.sg_list.iter().map(sge_to_c).collect();
        let c = NvmfRecvWr {
            wr_id: wr.wr_id,
            num_sge: sges.len() as u32,
            reserved: 0,
            sg_list: sges.as_ptr(),
        };
        self.check(
            call!(self.ops, self.ctx.0, post_recv, qp.0, &c),
            "post_recv",
        )
    }

    fn poll_async_event(&self) -> Option<AsyncEvent> {
        let mut e = NvmfAsyncEvent::default();
        let rc = call!(self.ops, self.ctx.0, poll_async_event, &mut e);
        (rc == 0).then(|| async_event_from_c(&e)).flatten()
    }

    async fn next_async_event(&self) -> AsyncEvent {
        poll_until(|| self.poll_async_event()).await
    }

    fn cm_listen(&self, addr: SocketAddr) -> crate::fabric::Result<ListenerId> {
        let a = sockaddr_to_c(&addr);
        let mut v = 0;
        self.check(
            call!(self.ops, self.ctx.0, cm_listen, &a, &mut v),
            "cm_listen",
        )?;
        Ok(ListenerId(v))
    }

    fn cm_close_listener(&self, listener: ListenerId) -> crate::fabric::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, cm_close_listener, listener.0),
            "cm_close_listener",
        )
    }

    fn cm_connect(
        &self,
        addr: SocketAddr,
        qp: QpId,
        param: &ConnParam,
    ) -> crate::fabric::Result<ConnId> {
        let a = sockaddr_to_c(&addr);
        let p = conn_param_to_c(param);
        let mut v = 0;
        let rc = call!(self.ops, self.ctx.0, cm_connect, &a, qp.0, &p, &mut v);
        self.check(rc, "cm_connect")?;
        Ok(ConnId(v))
    }

    fn cm_accept(&self, conn: ConnId, qp: QpId, param: &ConnParam) -> crate::fabric::Result<()> {
        let p = conn_param_to_c(param);
        self.check(
            call!(self.ops, self.ctx.0, cm_accept, conn.0, qp.0, &p),
            "cm_accept",
        )
    }

    fn cm_reject(&self, conn: ConnId, private_data: &[u8]) -> crate::fabric::Result<()> {
        let rc = call!(
            self.ops,
            self.ctx.0,
            cm_reject,
            conn.0,
            private_data.as_ptr(),
            private_data.len() as u32
        );
        self.check(rc, "cm_reject")
    }

    fn cm_disconnect(&self, conn: ConnId) -> crate::fabric::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, cm_disconnect, conn.0),
            "cm_disconnect",
        )
    }

    fn cm_destroy(&self, conn: ConnId) -> crate::fabric::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, cm_destroy, conn.0),
            "cm_destroy",
        )
    }

    fn poll_cm_event(&self) -> Option<CmEvent> {
        let mut e = cm_event_to_c(&CmEvent {
            conn: ConnId(0),
            kind: crate::fabric::CmEventKind::Unreachable,
        });
        let rc = call!(self.ops, self.ctx.0, poll_cm_event, &mut e);
        (rc == 0).then(|| cm_event_from_c(&e)).flatten()
    }

    async fn next_cm_event(&self) -> CmEvent {
        poll_until(|| self.poll_cm_event()).await
    }
}

fn conn_param_to_c(p: &ConnParam) -> NvmfConnParam {
    NvmfConnParam {
        private_data: p.private_data.as_ptr(),
        private_data_len: p.private_data.len() as u32,
        responder_resources: p.responder_resources,
        initiator_depth: p.initiator_depth,
        rnr_retry_count: p.rnr_retry_count,
        reserved: 0,
    }
}

/// `ctx` through its own C vtable: exported as `struct nvmf_verbs_ops` and imported back,
/// in this process. For testing the bridge (the fabric contract through the ABI), and
/// for measuring what the ABI costs.
pub fn loopback_verbs(ctx: Arc<dyn DeviceContext>) -> ImportedVerbs {
    let e: Arc<ExportedVerbs> = Arc::from(ExportedVerbs::new(ctx, None));
    let ptr = e.ctx_ptr();
    let keep: Arc<dyn Any + Send + Sync> = e;
    // SAFETY: our own vtable and export, kept alive by `keep` as long as the import lives.
    unsafe { ImportedVerbs::from_raw(*ExportedVerbs::ops(), ptr, Some(keep)) }
}

// ============================================================ export: offload ====

/// An [`OffloadProvider`] behind `struct nvmf_offload_ops`.
pub struct ExportedOffload {
    p: Arc<dyn OffloadProvider>,
    rt: Option<Handle>,
    last: LastError,
}

impl ExportedOffload {
    /// Exports `p`; every call enters `rt` when given.
    pub fn new(p: Arc<dyn OffloadProvider>, rt: Option<Handle>) -> Box<ExportedOffload> {
        Box::new(ExportedOffload {
            p,
            rt,
            last: LastError::default(),
        })
    }

    /// The vtable.
    pub fn ops() -> &'static NvmfOffloadOps {
        &OFFLOAD_OPS
    }

    /// The context pointer for the vtable's calls: valid while `self` lives (boxed).
    pub fn ctx_ptr(&self) -> *mut c_void {
        let p: *const ExportedOffload = self;
        p as *mut c_void
    }
}

fn with_offload(
    ctx: *mut c_void,
    f: impl FnOnce(&dyn OffloadProvider) -> Result<(), OffloadError>,
) -> c_int {
    // SAFETY: ctx is the pointer ExportedOffload::ctx_ptr handed out, used while it lives.
    let Some(e) = (unsafe { (ctx as *const ExportedOffload).as_ref() }) else {
        return neg(Errno::EINVAL);
    };
    let _g = e.rt.as_ref().map(|h| h.enter());
    match catch_unwind(AssertUnwindSafe(|| f(e.p.as_ref()))) {
        Ok(Ok(())) => 0,
        Ok(Err(err)) => {
            e.last.set(err.reason());
            neg(err.errno())
        }
        Err(_) => {
            e.last.set("panic in the offload provider");
            neg(Errno::EIO)
        }
    }
}

fn oarg<T>(r: Result<T, Errno>, what: &'static str) -> Result<T, OffloadError> {
    r.map_err(|e| OffloadError::from_errno(e, what))
}

unsafe extern "C" fn o_query_caps(ctx: *mut c_void, out: *mut NvmfCapsC) -> c_int {
    with_offload(ctx, |p| oarg(put(out, caps_to_c(&p.caps())), "out"))
}
unsafe extern "C" fn o_create_srq(
    ctx: *mut c_void,
    pd: u32,
    attrs: *const NvmfSrqAttrsC,
    out: *mut NvmfSrqC,
) -> c_int {
    with_offload(ctx, |p| {
        let a = srq_attrs_from_c(oarg(get(attrs), "attrs")?);
        let s = p.create_srq(PdId(pd), &a)?;
        oarg(put(out, srq_to_c(&s)), "out")
    })
}
unsafe extern "C" fn o_destroy_srq(ctx: *mut c_void, srq: u32) -> c_int {
    with_offload(ctx, |p| p.destroy_srq(SrqHandle(srq)))
}
unsafe extern "C" fn o_create_nvme_ctrl(
    ctx: *mut c_void,
    srq: u32,
    attrs: *const NvmfNvmeCtrlAttrsC,
    out: *mut u32,
) -> c_int {
    with_offload(ctx, |p| {
        let c = oarg(get(attrs), "attrs")?;
        let extra = oarg(slice(c.extra_sqs, c.num_extra_sqs as usize), "extra_sqs")?;
        let a = NvmeCtrlAttrs {
            sq_buf: mem_from_c(&c.sq_buf),
            cq_buf: mem_from_c(&c.cq_buf),
            sqdb: mem_from_c(&c.sqdb),
            cqdb: mem_from_c(&c.cqdb),
            sqdb_ini: c.sqdb_ini,
            cqdb_ini: c.cqdb_ini,
            cmd_timeout_us: c.cmd_timeout_us,
            extra_sqs: extra
                .iter()
                .map(|s| crate::api::BackendSq {
                    buf: mem_from_c(&s.buf),
                    db: mem_from_c(&s.db),
                    db_ini: s.db_ini,
                })
                .collect(),
        };
        let h = p.create_nvme_ctrl(SrqHandle(srq), &a)?;
        oarg(put(out, h.0), "out")
    })
}
unsafe extern "C" fn o_remove_nvme_ctrl(ctx: *mut c_void, srq: u32, ctrl: u32) -> c_int {
    with_offload(ctx, |p| {
        p.remove_nvme_ctrl(SrqHandle(srq), CtrlHandle(ctrl))
    })
}
unsafe extern "C" fn o_map_nsid(ctx: *mut c_void, ctrl: u32, m: *const NvmfNsMappingC) -> c_int {
    with_offload(ctx, |p| {
        let m = mapping_from_c(oarg(get(m), "mapping")?);
        p.map_nsid(CtrlHandle(ctrl), &m)
    })
}
unsafe extern "C" fn o_unmap_nsid(ctx: *mut c_void, ctrl: u32, fe_nsid: u32) -> c_int {
    with_offload(ctx, |p| p.unmap_nsid(CtrlHandle(ctrl), fe_nsid))
}
unsafe extern "C" fn o_qp_set_nvmf(ctx: *mut c_void, qp: u32, flags: u32) -> c_int {
    with_offload(ctx, |p| {
        p.qp_set_nvmf(QpId(qp), QpNvmfFlags::from_bits_retain(flags))
    })
}
unsafe extern "C" fn o_ns_counters(
    ctx: *mut c_void,
    ctrl: u32,
    fe_nsid: u32,
    out: *mut NvmfNsCountersC,
) -> c_int {
    with_offload(ctx, |p| {
        let k = p.ns_counters(CtrlHandle(ctrl), fe_nsid)?;
        oarg(put(out, ns_counters_to_c(&k)), "out")
    })
}
unsafe extern "C" fn o_srq_counters(
    ctx: *mut c_void,
    srq: u32,
    out: *mut NvmfSrqCountersC,
) -> c_int {
    with_offload(ctx, |p| {
        let k = p.srq_counters(SrqHandle(srq))?;
        oarg(put(out, srq_counters_to_c(&k)), "out")
    })
}
unsafe extern "C" fn o_poll_event(ctx: *mut c_void, out: *mut NvmfOffloadEventC) -> c_int {
    with_offload(ctx, |p| match p.poll_event() {
        Some(e) => oarg(put(out, offload_event_to_c(&e)), "out"),
        None => Err(OffloadError::from_errno(Errno::EAGAIN, "no event")),
    })
}
unsafe extern "C" fn o_last_error(ctx: *mut c_void) -> *const c_char {
    // SAFETY: as in with_offload.
    match unsafe { (ctx as *const ExportedOffload).as_ref() } {
        Some(e) => e.last.ptr(),
        None => std::ptr::null(),
    }
}

static OFFLOAD_OPS: NvmfOffloadOps = NvmfOffloadOps {
    query_caps: Some(o_query_caps),
    create_srq: Some(o_create_srq),
    destroy_srq: Some(o_destroy_srq),
    create_nvme_ctrl: Some(o_create_nvme_ctrl),
    remove_nvme_ctrl: Some(o_remove_nvme_ctrl),
    map_nsid: Some(o_map_nsid),
    unmap_nsid: Some(o_unmap_nsid),
    qp_set_nvmf: Some(o_qp_set_nvmf),
    ns_counters: Some(o_ns_counters),
    srq_counters: Some(o_srq_counters),
    poll_event: Some(o_poll_event),
    last_error: Some(o_last_error),
};

/// `p` through its own C vtable (`struct nvmf_offload_ops`), in this process: see
/// [`loopback_verbs`].
pub fn loopback_offload(p: Arc<dyn OffloadProvider>) -> ImportedOffload {
    let e: Arc<ExportedOffload> = Arc::from(ExportedOffload::new(p, None));
    let ptr = e.ctx_ptr();
    let keep: Arc<dyn Any + Send + Sync> = e;
    // SAFETY: our own vtable and export, kept alive by `keep` as long as the import lives.
    unsafe { ImportedOffload::from_raw(*ExportedOffload::ops(), ptr, Some(keep)) }
}

// ============================================================ import: offload ====

/// A `struct nvmf_offload_ops` + context as an [`OffloadProvider`].
pub struct ImportedOffload {
    ops: NvmfOffloadOps,
    ctx: RawCtx,
    keep: Option<Arc<dyn Any + Send + Sync>>,
}

impl ImportedOffload {
    /// Wraps C offload operations.
    ///
    /// # Safety
    /// As [`ImportedVerbs::from_raw`].
    pub unsafe fn from_raw(
        ops: NvmfOffloadOps,
        ctx: *mut c_void,
        keep: Option<Arc<dyn Any + Send + Sync>>,
    ) -> ImportedOffload {
        ImportedOffload {
            ops,
            ctx: RawCtx(ctx),
            keep,
        }
    }

    fn check(&self, rc: c_int, what: &'static str) -> Result<(), OffloadError> {
        if rc >= 0 {
            return Ok(());
        }
        let _ = &self.keep;
        let reason = match self.ops.last_error {
            // SAFETY: as in call!.
            Some(f) => c_str(unsafe { f(self.ctx.0) })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| what.to_string()),
            None => what.to_string(),
        };
        Err(OffloadError::from_errno(
            errno_of_rc(rc).unwrap_or(Errno::EIO),
            intern(&reason),
        ))
    }
}

#[async_trait]
impl OffloadProvider for ImportedOffload {
    fn caps(&self) -> NvmfCaps {
        let mut c = caps_to_c(&NvmfCaps::default());
        match call!(self.ops, self.ctx.0, query_caps, &mut c) {
            0 => caps_from_c(&c),
            _ => NvmfCaps::default(),
        }
    }

    fn create_srq(&self, pd: PdId, attrs: &NvmfSrqAttrs) -> crate::api::Result<NvmfSrq> {
        let a = srq_attrs_to_c(attrs);
        let mut s = NvmfSrqC::default();
        let rc = call!(self.ops, self.ctx.0, create_srq, pd.0, &a, &mut s);
        self.check(rc, "create_srq")?;
        Ok(srq_from_c(&s))
    }

    fn destroy_srq(&self, srq: SrqHandle) -> crate::api::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, destroy_srq, srq.0),
            "destroy_srq",
        )
    }

    fn create_nvme_ctrl(
        &self,
        srq: SrqHandle,
        attrs: &NvmeCtrlAttrs,
    ) -> crate::api::Result<CtrlHandle> {
        let extra: Vec<NvmfBackendSq> = attrs
            .extra_sqs
            .iter()
            .map(|s| NvmfBackendSq {
                buf: mem_to_c(&s.buf),
                db: mem_to_c(&s.db),
                db_ini: s.db_ini,
                reserved: [0; 3],
            })
            .collect();
        let c = NvmfNvmeCtrlAttrsC {
            sq_buf: mem_to_c(&attrs.sq_buf),
            cq_buf: mem_to_c(&attrs.cq_buf),
            sqdb: mem_to_c(&attrs.sqdb),
            cqdb: mem_to_c(&attrs.cqdb),
            sqdb_ini: attrs.sqdb_ini,
            cqdb_ini: attrs.cqdb_ini,
            cmd_timeout_us: attrs.cmd_timeout_us,
            comp_mask: attrs.comp_mask().bits(),
            num_extra_sqs: extra.len() as u32,
            extra_sqs: if extra.is_empty() {
                std::ptr::null()
            } else {
                extra.as_ptr()
            },
        };
        let mut h = 0u32;
        let rc = call!(self.ops, self.ctx.0, create_nvme_ctrl, srq.0, &c, &mut h);
        self.check(rc, "create_nvme_ctrl")?;
        Ok(CtrlHandle(h))
    }

    fn remove_nvme_ctrl(&self, srq: SrqHandle, ctrl: CtrlHandle) -> crate::api::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, remove_nvme_ctrl, srq.0, ctrl.0),
            "remove_nvme_ctrl",
        )
    }

    fn map_nsid(&self, ctrl: CtrlHandle, m: &NsMapping) -> crate::api::Result<()> {
        let c = mapping_to_c(m);
        self.check(
            call!(self.ops, self.ctx.0, map_nsid, ctrl.0, &c),
            "map_nsid",
        )
    }

    fn unmap_nsid(&self, ctrl: CtrlHandle, fe_nsid: u32) -> crate::api::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, unmap_nsid, ctrl.0, fe_nsid),
            "unmap_nsid",
        )
    }

    fn qp_set_nvmf(&self, qp: QpId, flags: QpNvmfFlags) -> crate::api::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, qp_set_nvmf, qp.0, flags.bits()),
            "qp_set_nvmf",
        )
    }

    fn ns_counters(&self, ctrl: CtrlHandle, fe_nsid: u32) -> crate::api::Result<NsCounters> {
        let mut k = NvmfNsCountersC::default();
        let rc = call!(self.ops, self.ctx.0, ns_counters, ctrl.0, fe_nsid, &mut k);
        self.check(rc, "ns_counters")?;
        Ok(ns_counters_from_c(&k))
    }

    fn srq_counters(&self, srq: SrqHandle) -> crate::api::Result<SrqCounters> {
        let mut k = NvmfSrqCountersC::default();
        let rc = call!(self.ops, self.ctx.0, srq_counters, srq.0, &mut k);
        self.check(rc, "srq_counters")?;
        Ok(srq_counters_from_c(&k))
    }

    fn poll_event(&self) -> Option<OffloadEvent> {
        let mut e = NvmfOffloadEventC::default();
        let rc = call!(self.ops, self.ctx.0, poll_event, &mut e);
        (rc == 0).then(|| offload_event_from_c(&e)).flatten()
    }

    async fn next_event(&self) -> OffloadEvent {
        poll_until(|| self.poll_event()).await
    }
}

// ================================================================ export: PCI ====

/// A [`PciHost`] behind `struct nvmf_pci_ops`.
pub struct ExportedPci {
    host: Arc<dyn PciHost>,
    rt: Option<Handle>,
    found: Mutex<BTreeMap<u64, PciFunction>>,
}

impl ExportedPci {
    /// Exports `host`; every call enters `rt` when given.
    pub fn new(host: Arc<dyn PciHost>, rt: Option<Handle>) -> Box<ExportedPci> {
        Box::new(ExportedPci {
            host,
            rt,
            found: Mutex::new(BTreeMap::new()),
        })
    }

    /// The vtable.
    pub fn ops() -> &'static NvmfPciOps {
        &PCI_OPS
    }

    /// The context pointer for the vtable's calls: valid while `self` lives (boxed).
    pub fn ctx_ptr(&self) -> *mut c_void {
        let p: *const ExportedPci = self;
        p as *mut c_void
    }
}

fn with_pci(ctx: *mut c_void, f: impl FnOnce(&ExportedPci) -> Result<(), Errno>) -> c_int {
    // SAFETY: ctx is the pointer ExportedPci::ctx_ptr handed out, used while it lives.
    let Some(e) = (unsafe { (ctx as *const ExportedPci).as_ref() }) else {
        return neg(Errno::EINVAL);
    };
    let _g = e.rt.as_ref().map(|h| h.enter());
    match catch_unwind(AssertUnwindSafe(|| f(e))) {
        Ok(Ok(())) => 0,
        Ok(Err(errno)) => neg(errno),
        Err(_) => neg(Errno::EIO),
    }
}

fn span_to_c(s: &PciSpan) -> NvmfPciSpan {
    NvmfPciSpan {
        mr: s.mr.0,
        reserved: 0,
        offset: s.offset,
        len: s.len,
    }
}

fn span_from_c(c: &NvmfPciSpan) -> PciSpan {
    PciSpan {
        mr: MrId(c.mr),
        offset: c.offset,
        len: c.len,
    }
}

fn queue_to_c(q: &PciQueue) -> NvmfPciQueue {
    NvmfPciQueue {
        ring: span_to_c(&q.ring),
        doorbell: span_to_c(&q.doorbell),
        initial: q.initial,
        reserved: [0; 3],
    }
}

fn queue_from_c(c: &NvmfPciQueue) -> PciQueue {
    PciQueue {
        ring: span_from_c(&c.ring),
        doorbell: span_from_c(&c.doorbell),
        initial: c.initial,
    }
}

unsafe extern "C" fn p_find(ctx: *mut c_void, mr: u32, addr: u64, out: *mut NvmfPciCtrl) -> c_int {
    with_pci(ctx, |e| {
        let f = e.host.find(MrId(mr), addr).ok_or(Errno::ENODEV)?;
        let c = NvmfPciCtrl {
            id: f.id,
            depth: u32::from(f.depth),
            num_sqs: f.sqs.len() as u32,
            cq: queue_to_c(&f.cq),
        };
        relock(&e.found).insert(f.id, f);
        put(out, c)
    })
}
unsafe extern "C" fn p_sq_info(
    ctx: *mut c_void,
    id: u64,
    sq: u32,
    out: *mut NvmfPciQueue,
) -> c_int {
    with_pci(ctx, |e| {
        let q = relock(&e.found)
            .get(&id)
            .ok_or(Errno::ENODEV)?
            .sqs
            .get(sq as usize)
            .copied()
            .ok_or(Errno::EINVAL)?;
        put(out, queue_to_c(&q))
    })
}
unsafe extern "C" fn p_ring_sq(ctx: *mut c_void, id: u64, sq: u32, tail: u16) -> c_int {
    with_pci(ctx, |e| e.host.ring_sq(id, sq, tail))
}
unsafe extern "C" fn p_ring_cq(ctx: *mut c_void, id: u64, head: u16) -> c_int {
    with_pci(ctx, |e| e.host.ring_cq(id, head))
}
unsafe extern "C" fn p_status(ctx: *mut c_void, id: u64, out: *mut NvmfPciStatus) -> c_int {
    with_pci(ctx, |e| {
        let s = e.host.status(id)?;
        put(
            out,
            NvmfPciStatus {
                state: match s.state {
                    PciState::Running => NVMF_PCI_RUNNING,
                    PciState::Error => NVMF_PCI_ERROR,
                },
                reserved: 0,
                completions: s.completions,
            },
        )
    })
}

static PCI_OPS: NvmfPciOps = NvmfPciOps {
    find: Some(p_find),
    sq_info: Some(p_sq_info),
    ring_sq: Some(p_ring_sq),
    ring_cq: Some(p_ring_cq),
    status: Some(p_status),
};

// ================================================================ import: PCI ====

/// A `struct nvmf_pci_ops` + context as a [`PciHost`].
pub struct ImportedPci {
    ops: NvmfPciOps,
    ctx: RawCtx,
}

impl ImportedPci {
    /// Wraps the host's PCI side.
    ///
    /// # Safety
    /// As [`ImportedVerbs::from_raw`].
    pub unsafe fn from_raw(ops: NvmfPciOps, ctx: *mut c_void) -> ImportedPci {
        ImportedPci {
            ops,
            ctx: RawCtx(ctx),
        }
    }
}

fn errno_of(rc: c_int) -> Result<(), Errno> {
    if rc >= 0 {
        Ok(())
    } else {
        Err(errno_of_rc(rc).unwrap_or(Errno::EIO))
    }
}

impl PciHost for ImportedPci {
    fn find(&self, doorbell_mr: MrId, doorbell_addr: u64) -> Option<PciFunction> {
        let mut c = NvmfPciCtrl::default();
        let rc = call!(
            self.ops,
            self.ctx.0,
            find,
            doorbell_mr.0,
            doorbell_addr,
            &mut c
        );
        errno_of(rc).ok()?;
        let mut sqs = Vec::new();
        for i in 0..c.num_sqs {
            let mut q = NvmfPciQueue::default();
            errno_of(call!(self.ops, self.ctx.0, sq_info, c.id, i, &mut q)).ok()?;
            sqs.push(queue_from_c(&q));
        }
        Some(PciFunction {
            id: c.id,
            depth: u16::try_from(c.depth).ok()?,
            sqs,
            cq: queue_from_c(&c.cq),
        })
    }

    fn ring_sq(&self, id: u64, sq: u32, tail: u16) -> Result<(), Errno> {
        errno_of(call!(self.ops, self.ctx.0, ring_sq, id, sq, tail))
    }

    fn ring_cq(&self, id: u64, head: u16) -> Result<(), Errno> {
        errno_of(call!(self.ops, self.ctx.0, ring_cq, id, head))
    }

    fn status(&self, id: u64) -> Result<PciStatus, Errno> {
        let mut s = NvmfPciStatus::default();
        errno_of(call!(self.ops, self.ctx.0, status, id, &mut s))?;
        Ok(PciStatus {
            state: if s.state == NVMF_PCI_RUNNING {
                PciState::Running
            } else {
                PciState::Error
            },
            completions: s.completions,
        })
    }
}

// ============================================================= plugin library ====

/// Why a library could not be used as a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibError {
    /// `dlopen` refused it (not a shared object, missing dependency...).
    Load(String),
    /// A required entry point is missing.
    Symbol(&'static str),
}

#[derive(Clone, Copy)]
struct Syms {
    abi: AbiVersionFn,
    open: OpenFn,
    close: CloseFn,
    verbs: VerbsFn,
    get_ops: GetOpsFn,
    progress: ProgressFn,
    open_error: Option<OpenErrorFn>,
}

/// A loaded plugin library. Never unloaded: a Rust plugin holds thread-local destructors
/// of its own runtime, so `dlclose` would be unsafe; a loaded plugin stays for the process.
pub struct PluginLib {
    _lib: ManuallyDrop<libloading::Library>,
    syms: Syms,
}

impl std::fmt::Debug for PluginLib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLib").finish_non_exhaustive()
    }
}

fn sym<T: Copy>(lib: &libloading::Library, name: &'static str) -> Result<T, LibError> {
    let cname = format!("{name}\0");
    // SAFETY: the symbol's type is the one include/nvmf_offload.h declares for `name`;
    // the library is never unloaded, so the copied function pointer stays valid.
    let s: libloading::Symbol<'_, T> =
        unsafe { lib.get(cname.as_bytes()) }.map_err(|_| LibError::Symbol(name))?;
    Ok(*s)
}

impl PluginLib {
    /// Loads a library and resolves the entry points of `include/nvmf_offload.h`.
    pub fn load(path: &Path) -> Result<PluginLib, LibError> {
        // SAFETY: loading a library runs its initialisers; a plugin is trusted code by
        // definition (the user names it on the command line).
        let lib =
            unsafe { libloading::Library::new(path) }.map_err(|e| LibError::Load(e.to_string()))?;
        let syms = Syms {
            abi: sym(&lib, "nvmf_offload_abi_version")?,
            open: sym(&lib, "nvmf_offload_open")?,
            close: sym(&lib, "nvmf_offload_close")?,
            verbs: sym(&lib, "nvmf_offload_verbs")?,
            get_ops: sym(&lib, "nvmf_offload_get_ops")?,
            progress: sym(&lib, "nvmf_offload_progress")?,
            open_error: sym(&lib, "nvmf_offload_open_error").ok(),
        };
        Ok(PluginLib {
            _lib: ManuallyDrop::new(lib),
            syms,
        })
    }

    /// What `nvmf_offload_abi_version()` returns.
    pub fn abi_version(&self) -> u32 {
        // SAFETY: resolved entry point without arguments.
        unsafe { (self.syms.abi)() }
    }

    /// Opens a device over the host's `lower` device and PCI side. On failure: the errno
    /// and the plugin's `nvmf_offload_open_error()` text, if any.
    pub fn open(
        self: &Arc<Self>,
        lower: Box<ExportedVerbs>,
        pci: Box<ExportedPci>,
        config: &str,
    ) -> Result<PluginDev, (Errno, Option<String>)> {
        let config = CString::new(config.replace('\0', " ")).unwrap_or_default();
        let env = NvmfHostEnv {
            abi_version: NVMF_OFFLOAD_ABI_VERSION,
            reserved: 0,
            lower_ops: ExportedVerbs::ops(),
            lower_ctx: lower.ctx_ptr(),
            pci_ops: ExportedPci::ops(),
            pci_ctx: pci.ctx_ptr(),
            config: config.as_ptr(),
        };
        let mut dev: *mut NvmfOffloadDev = std::ptr::null_mut();
        // SAFETY: env and everything it points to live until the device is closed
        // (PluginDev owns them); dev is a valid out-pointer.
        let rc = unsafe { (self.syms.open)(&env, &mut dev) };
        let why = || {
            let f = self.syms.open_error?;
            // SAFETY: resolved optional entry point without arguments.
            let text = unsafe { f() };
            c_str(text).filter(|s| !s.is_empty())
        };
        if rc < 0 {
            return Err((errno_of_rc(rc).unwrap_or(Errno::EIO), why()));
        }
        if dev.is_null() {
            return Err((
                Errno::EPROTO,
                Some("nvmf_offload_open gave no device".into()),
            ));
        }
        let mut d = PluginDev {
            lib: self.clone(),
            dev,
            verbs: None,
            offload: None,
            _lower: lower,
            _pci: pci,
            _config: config,
        };
        let mut vops: *const NvmfVerbsOps = std::ptr::null();
        let mut vctx: *mut c_void = std::ptr::null_mut();
        // SAFETY: an open device and valid out-pointers.
        let rc = unsafe { (self.syms.verbs)(dev, &mut vops, &mut vctx) };
        // SAFETY: a non-null vtable returned by the plugin lives as long as the library.
        match (rc, unsafe { vops.as_ref() }) {
            (0, Some(o)) => d.verbs = Some((*o, RawCtx(vctx))),
            (rc, _) => {
                return Err((
                    errno_of_rc(rc).unwrap_or(Errno::EPROTO),
                    Some("nvmf_offload_verbs gave no verbs device".into()),
                ))
            }
        }
        let mut oops: *const NvmfOffloadOps = std::ptr::null();
        let mut octx: *mut c_void = std::ptr::null_mut();
        // SAFETY: as above.
        let rc = unsafe { (self.syms.get_ops)(dev, &mut oops, &mut octx) };
        // SAFETY: as above.
        match (rc, unsafe { oops.as_ref() }) {
            (0, Some(o)) => d.offload = Some((*o, RawCtx(octx))),
            (rc, _) => {
                return Err((
                    errno_of_rc(rc).unwrap_or(Errno::EPROTO),
                    Some("nvmf_offload_get_ops gave no offload operations".into()),
                ))
            }
        }
        Ok(d)
    }
}

/// An opened plugin device; closed when dropped (after everything using it).
pub struct PluginDev {
    lib: Arc<PluginLib>,
    dev: *mut NvmfOffloadDev,
    verbs: Option<(NvmfVerbsOps, RawCtx)>,
    offload: Option<(NvmfOffloadOps, RawCtx)>,
    _lower: Box<ExportedVerbs>,
    _pci: Box<ExportedPci>,
    _config: CString,
}

// SAFETY: single-threaded ABI (see the module docs); the device pointer is only used
// through the plugin's entry points, never dereferenced here.
unsafe impl Send for PluginDev {}
// SAFETY: as above.
unsafe impl Sync for PluginDev {}

impl PluginDev {
    /// `nvmf_offload_progress(dev, now_ns)`: 0 or a negative errno.
    pub fn progress(&self, now_ns: u64) -> c_int {
        // SAFETY: an open device.
        unsafe { (self.lib.syms.progress)(self.dev, now_ns) }
    }

    /// The plugin's verbs device as a [`DeviceContext`] (keeps the device open).
    pub fn context(self: &Arc<Self>) -> ImportedVerbs {
        let (ops, ctx) = self.verbs.expect("checked at open");
        let keep: Arc<dyn Any + Send + Sync> = self.clone();
        // SAFETY: the plugin's vtable and context, valid until close, which `keep` delays.
        unsafe { ImportedVerbs::from_raw(ops, ctx.0, Some(keep)) }
    }

    /// The plugin's offload operations as an [`OffloadProvider`] (keeps the device open).
    pub fn provider(self: &Arc<Self>) -> ImportedOffload {
        let (ops, ctx) = self.offload.expect("checked at open");
        let keep: Arc<dyn Any + Send + Sync> = self.clone();
        // SAFETY: as above.
        unsafe { ImportedOffload::from_raw(ops, ctx.0, Some(keep)) }
    }
}

impl Drop for PluginDev {
    fn drop(&mut self) {
        // SAFETY: an open device, closed once; the exported lower device and PCI side it
        // uses are dropped only after this (fields drop after Drop::drop).
        unsafe { (self.lib.syms.close)(self.dev) };
    }
}
