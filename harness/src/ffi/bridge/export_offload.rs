use super::*;

/// An [`OffloadProvider`] behind `struct nvmf_offload_ops`.
pub type ExportedOffload = Exported<Arc<dyn OffloadProvider>>;

impl Side for Arc<dyn OffloadProvider> {
    const NAME: &'static str = "the offload provider";
}

impl ExportedOffload {
    /// Exports `p`; every call enters `rt` when given.
    pub fn new(p: Arc<dyn OffloadProvider>, rt: Option<Handle>) -> Box<ExportedOffload> {
        Exported::boxed(p, rt)
    }

    /// The vtable.
    pub fn ops() -> &'static NvmfOffloadOps {
        &OFFLOAD_OPS
    }
}

fn with_offload(
    ctx: *mut c_void,
    f: impl FnOnce(&dyn OffloadProvider) -> Result<(), OffloadError>,
) -> c_int {
    ExportedOffload::call(ctx, |p| f(p.as_ref()))
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
    ExportedOffload::last_error(ctx)
}
unsafe extern "C" fn o_backend_access(ctx: *mut c_void, out: *mut NvmfBackendAccess) -> c_int {
    with_offload(ctx, |p| {
        oarg(put(out, backend_access_to_c(&p.backend_access())), "out")
    })
}
unsafe extern "C" fn o_inject_pci_error(ctx: *mut c_void, ctrl: u32) -> c_int {
    with_offload(ctx, |p| p.inject_pci_error(CtrlHandle(ctrl)))
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
    backend_access: Some(o_backend_access),
    inject_pci_error: Some(o_inject_pci_error),
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
