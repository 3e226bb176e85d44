use super::*;

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

    fn backend_access(&self) -> BackendAccess {
        self.query_backend_access().unwrap_or_default()
    }

    fn inject_pci_error(&self, ctrl: CtrlHandle) -> crate::api::Result<()> {
        self.check(
            call!(self.ops, self.ctx.0, inject_pci_error, ctrl.0),
            "inject_pci_error",
        )
    }
}

impl ImportedOffload {
    /// The plugin's `backend_access` (ABI 2; calls and virtual PRPs for a plugin without
    /// it); the error names the call or the field that is wrong.
    pub fn query_backend_access(&self) -> Result<BackendAccess, (Errno, String)> {
        let mut c = NvmfBackendAccess::default();
        match call!(self.ops, self.ctx.0, backend_access, &mut c) {
            0 => backend_access_from_c(&c).map_err(|f| (Errno::EPROTO, format!("{f} is invalid"))),
            rc if rc == neg(Errno::EOPNOTSUPP) => Ok(BackendAccess::default()),
            rc => Err((
                errno_of_rc(rc).unwrap_or(Errno::EIO),
                "backend_access failed".into(),
            )),
        }
    }
}
