use super::*;

/// A `struct nvmf_offload_ops` + context as an [`OffloadProvider`].
pub type ImportedOffload = Imported<NvmfOffloadOps>;

impl ImportedOffload {
    fn check(&self, rc: c_int, what: &'static str) -> Result<(), OffloadError> {
        match errno_of_rc(rc) {
            None => Ok(()),
            Some(errno) => Err(OffloadError::from_errno(
                errno,
                intern(&self.reason(self.ops.last_error, what)),
            )),
        }
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
        checked!(self, create_srq, pd.0, &a, &mut s)?;
        Ok(srq_from_c(&s))
    }

    fn destroy_srq(&self, srq: SrqHandle) -> crate::api::Result<()> {
        checked!(self, destroy_srq, srq.0)
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
        checked!(self, create_nvme_ctrl, srq.0, &c, &mut h)?;
        Ok(CtrlHandle(h))
    }

    fn remove_nvme_ctrl(&self, srq: SrqHandle, ctrl: CtrlHandle) -> crate::api::Result<()> {
        checked!(self, remove_nvme_ctrl, srq.0, ctrl.0)
    }

    fn map_nsid(&self, ctrl: CtrlHandle, m: &NsMapping) -> crate::api::Result<()> {
        let c = mapping_to_c(m);
        checked!(self, map_nsid, ctrl.0, &c)
    }

    fn unmap_nsid(&self, ctrl: CtrlHandle, fe_nsid: u32) -> crate::api::Result<()> {
        checked!(self, unmap_nsid, ctrl.0, fe_nsid)
    }

    fn qp_set_nvmf(&self, qp: QpId, flags: QpNvmfFlags) -> crate::api::Result<()> {
        checked!(self, qp_set_nvmf, qp.0, flags.bits())
    }

    fn ns_counters(&self, ctrl: CtrlHandle, fe_nsid: u32) -> crate::api::Result<NsCounters> {
        let mut k = NvmfNsCountersC::default();
        checked!(self, ns_counters, ctrl.0, fe_nsid, &mut k)?;
        Ok(ns_counters_from_c(&k))
    }

    fn srq_counters(&self, srq: SrqHandle) -> crate::api::Result<SrqCounters> {
        let mut k = NvmfSrqCountersC::default();
        checked!(self, srq_counters, srq.0, &mut k)?;
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
        checked!(self, inject_pci_error, ctrl.0)
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
