use super::*;

/// A `struct nvmf_verbs_ops` + context as a [`DeviceContext`] (see the module docs).
pub type ImportedVerbs = Imported<NvmfVerbsOps>;

impl ImportedVerbs {
    fn check(&self, rc: c_int, what: &'static str) -> Result<(), FabricError> {
        match errno_of_rc(rc) {
            None => Ok(()),
            Some(errno) => Err(fabric_error(errno, &self.reason(self.ops.last_error, what))),
        }
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
        checked!(self, query_port, port, &mut a)?;
        Ok(port_attr_from_c(&a))
    }

    fn alloc_pd(&self) -> crate::fabric::Result<PdId> {
        let mut v = 0;
        checked!(self, alloc_pd, &mut v)?;
        Ok(PdId(v))
    }

    fn dealloc_pd(&self, pd: PdId) -> crate::fabric::Result<()> {
        checked!(self, dealloc_pd, pd.0)
    }

    fn reg_mr(&self, pd: PdId, len: u64, access: Access) -> crate::fabric::Result<MrInfo> {
        let mut m = NvmfMrInfo::default();
        checked!(self, reg_mr, pd.0, len, access.bits(), &mut m)?;
        Ok(mr_from_c(&m))
    }

    fn dereg_mr(&self, mr: MrId) -> crate::fabric::Result<()> {
        checked!(self, dereg_mr, mr.0)
    }

    fn mr_write(&self, mr: MrId, offset: u64, data: &[u8]) -> crate::fabric::Result<()> {
        checked!(
            self,
            mr_write,
            mr.0,
            offset,
            data.as_ptr().cast(),
            data.len()
        )
    }

    fn mr_read(&self, mr: MrId, offset: u64, buf: &mut [u8]) -> crate::fabric::Result<()> {
        checked!(
            self,
            mr_read,
            mr.0,
            offset,
            buf.as_mut_ptr().cast(),
            buf.len()
        )
    }

    fn create_cq(&self, cqe: u32) -> crate::fabric::Result<CqId> {
        let mut v = 0;
        checked!(self, create_cq, cqe, &mut v)?;
        Ok(CqId(v))
    }

    fn destroy_cq(&self, cq: CqId) -> crate::fabric::Result<()> {
        checked!(self, destroy_cq, cq.0)
    }

    fn poll_cq(&self, cq: CqId, max: usize) -> crate::fabric::Result<Vec<WorkCompletion>> {
        let max = max.min(MAX_POLL);
        let mut buf = vec![NvmfWc::default(); max];
        let mut n = 0u32;
        checked!(self, poll_cq, cq.0, buf.as_mut_ptr(), max as u32, &mut n)?;
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
        checked!(self, create_srq, pd.0, &i, &mut v)?;
        Ok(SrqId(v))
    }

    fn arm_srq(&self, srq: SrqId, limit: u32) -> crate::fabric::Result<()> {
        checked!(self, arm_srq, srq.0, limit)
    }

    fn query_srq(&self, srq: SrqId) -> crate::fabric::Result<SrqAttr> {
        let mut a = NvmfSrqAttr::default();
        checked!(self, query_srq, srq.0, &mut a)?;
        Ok(srq_attr_from_c(&a))
    }

    fn destroy_srq(&self, srq: SrqId) -> crate::fabric::Result<()> {
        checked!(self, destroy_srq, srq.0)
    }

    fn post_srq_recv(&self, srq: SrqId, wr: &RecvWr) -> crate::fabric::Result<()> {
        with_recv_wr(wr, |c| checked!(self, post_srq_recv, srq.0, c))
    }

    fn create_qp(&self, pd: PdId, init: QpInit) -> crate::fabric::Result<QpInfo> {
        let i = qp_init_to_c(&init);
        let mut q = NvmfQpInfo::default();
        checked!(self, create_qp, pd.0, &i, &mut q)?;
        Ok(qp_info_from_c(&q))
    }

    fn modify_qp(&self, qp: QpId, attr: &QpAttr) -> crate::fabric::Result<()> {
        let a = qp_attr_to_c(attr);
        checked!(self, modify_qp, qp.0, &a)
    }

    fn query_qp(&self, qp: QpId) -> crate::fabric::Result<QpState> {
        let mut s = 0u32;
        checked!(self, query_qp, qp.0, &mut s)?;
        qp_state_from_u32(s).ok_or(FabricError::Invalid("query_qp: undefined state"))
    }

    fn destroy_qp(&self, qp: QpId) -> crate::fabric::Result<()> {
        checked!(self, destroy_qp, qp.0)
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
        checked!(self, post_send, qp.0, &c)
    }

    fn post_recv(&self, qp: QpId, wr: &RecvWr) -> crate::fabric::Result<()> {
        with_recv_wr(wr, |c| checked!(self, post_recv, qp.0, c))
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
        checked!(self, cm_listen, &a, &mut v)?;
        Ok(ListenerId(v))
    }

    fn cm_close_listener(&self, listener: ListenerId) -> crate::fabric::Result<()> {
        checked!(self, cm_close_listener, listener.0)
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
        checked!(self, cm_connect, &a, qp.0, &p, &mut v)?;
        Ok(ConnId(v))
    }

    fn cm_accept(&self, conn: ConnId, qp: QpId, param: &ConnParam) -> crate::fabric::Result<()> {
        let p = conn_param_to_c(param);
        checked!(self, cm_accept, conn.0, qp.0, &p)
    }

    fn cm_reject(&self, conn: ConnId, private_data: &[u8]) -> crate::fabric::Result<()> {
        checked!(
            self,
            cm_reject,
            conn.0,
            private_data.as_ptr(),
            private_data.len() as u32
        )
    }

    fn cm_disconnect(&self, conn: ConnId) -> crate::fabric::Result<()> {
        checked!(self, cm_disconnect, conn.0)
    }

    fn cm_destroy(&self, conn: ConnId) -> crate::fabric::Result<()> {
        checked!(self, cm_destroy, conn.0)
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
