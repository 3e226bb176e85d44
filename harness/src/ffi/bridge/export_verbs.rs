use super::*;

/// A [`DeviceContext`] behind `struct nvmf_verbs_ops` (see the module docs).
pub type ExportedVerbs = Exported<Arc<dyn DeviceContext>>;

impl Side for Arc<dyn DeviceContext> {
    const NAME: &'static str = "the device context";
}

impl ExportedVerbs {
    /// Exports `ctx`; every call enters `rt` when given (a plugin's own runtime).
    pub fn new(ctx: Arc<dyn DeviceContext>, rt: Option<Handle>) -> Box<ExportedVerbs> {
        Exported::boxed(ctx, rt)
    }

    /// The vtable.
    pub fn ops() -> &'static NvmfVerbsOps {
        &VERBS_OPS
    }
}

fn with_verbs(
    ctx: *mut c_void,
    f: impl FnOnce(&dyn DeviceContext) -> Result<(), FabricError>,
) -> c_int {
    ExportedVerbs::call(ctx, |c| f(c.as_ref()))
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
    ExportedVerbs::last_error(ctx)
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
