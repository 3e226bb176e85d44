use super::*;

/// A `struct nvmf_verbs_ops` + context as a [`DeviceContext`] (see the module docs).
pub struct ImportedVerbs {
    ops: NvmfVerbsOps,
    ctx: RawCtx,
    keep: Option<Arc<dyn Any + Send + Sync>>,
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
        with_recv_wr(wr, |c| {
            self.check(
                call!(self.ops, self.ctx.0, post_srq_recv, srq.0, c),
                "post_srq_recv",
            )
        })
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
        with_recv_wr(wr, |c| {
            self.check(call!(self.ops, self.ctx.0, post_recv, qp.0, c), "post_recv")
        })
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

/// Runs `f` with the C form of a receive request (its scatter list lives across the call).
fn with_recv_wr<R>(wr: &RecvWr, f: impl FnOnce(&NvmfRecvWr) -> R) -> R {
    let sges: Vec<NvmfSge> = wr.sg_list.iter().map(sge_to_c).collect();
    let c = NvmfRecvWr {
        wr_id: wr.wr_id,
        num_sge: sges.len() as u32,
        reserved: 0,
        sg_list: sges.as_ptr(),
    };
    f(&c)
}
