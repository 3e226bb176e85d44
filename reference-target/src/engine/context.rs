//! The engine's device context: what software uses, as on a real offloading NIC.
//!
//! PDs, MRs and the connection manager pass straight through to the real context. CQs are
//! the engine's own; every QP gets a private real CQ that a task drains, routing software's
//! completions into software's CQs and the engine's to the data path. Receives of an
//! NVMe-oF SRQ are software's to post but the engine's to fill.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use harness::api::OffloadProvider;
use harness::fabric::{
    Access, AsyncEvent, CmEvent, ConnId, ConnParam, CqId, DeviceAttr, DeviceContext, FabricError,
    ListenerId, MrId, MrInfo, PdId, PortAttr, QpAttr, QpCap, QpId, QpInfo, QpInit, QpState, RecvWr,
    Result, SendWr, SrqAttr, SrqId, SrqInit, WcOpcode, WcStatus, WorkCompletion,
};

use super::{Core, CtxCq, CtxQp, CtxSrq, Wr};
use crate::quirks::Quirk;

/// The device context of an [`super::Engine`]; see the module docs.
pub struct EngineContext {
    pub(crate) core: Arc<Core>,
}

impl Core {
    /// Posts software's work request `user` (`recv`: a receive) on the real QP behind `qp`
    /// through `post`, given that QP and the request's internal `wr_id`.
    fn post_software(
        &self,
        qp: QpId,
        user: u64,
        signaled: bool,
        recv: bool,
        post: impl FnOnce(QpId, u64) -> Result<()>,
    ) -> Result<()> {
        let mut nic = self.nic();
        let real = nic.qps.get(&qp).ok_or(FabricError::NotFound("qp"))?.real;
        let owner = Wr::Software {
            vqp: qp,
            user,
            signaled,
            recv,
        };
        nic.post_tagged(owner, |wr_id| post(real, wr_id))
    }

    fn vqp_real(&self, qp: QpId) -> Result<QpId> {
        self.nic()
            .qps
            .get(&qp)
            .map(|q| q.real)
            .ok_or(FabricError::NotFound("qp"))
    }

    /// Routes completions of a QP's private real CQ.
    pub(crate) fn on_real_wcs(self: &Arc<Self>, wcs: Vec<WorkCompletion>) {
        for wc in wcs {
            let owner = self.nic().wrs.remove(&wc.wr_id);
            match owner {
                Some(Wr::Software {
                    vqp,
                    user,
                    signaled,
                    recv,
                }) => {
                    if wc.status == WcStatus::Success && !signaled {
                        continue;
                    }
                    self.to_software(vqp, user, recv, &wc);
                }
                Some(Wr::SoftwareSrq { user }) => {
                    let vqp = self.nic().real_qp.get(&wc.qp).copied();
                    if let Some(vqp) = vqp {
                        self.to_software(vqp, user, true, &wc);
                    }
                }
                Some(Wr::Capsule { srq, slot }) => self.on_capsule_wc(srq, slot, &wc),
                Some(Wr::Cmd { cmd, step }) => self.on_cmd_wc(cmd, step, &wc),
                None => {}
            }
        }
    }

    /// Hands a completion to software, in its handles.
    fn to_software(&self, vqp: QpId, user: u64, recv: bool, wc: &WorkCompletion) {
        let mut nic = self.nic();
        let Some(ctx_qp) = nic.qps.get(&vqp) else {
            return;
        };
        let cq = if recv || wc.opcode == WcOpcode::Recv {
            ctx_qp.recv_cq
        } else {
            ctx_qp.send_cq
        };
        let out = WorkCompletion {
            wr_id: user,
            qp: vqp,
            ..wc.clone()
        };
        let ev = nic.push_wc(cq, out);
        drop(nic);
        if let Some(ev) = ev {
            self.ctx_events.push(ev);
        }
    }
}

impl EngineContext {
    fn core(&self) -> &Arc<Core> {
        &self.core
    }
}

/// Drains a QP's private real CQ for as long as the QP and the engine live.
async fn drain(real: Arc<dyn DeviceContext>, cq: CqId, core: Weak<Core>) {
    loop {
        if real.wait_cq(cq).await.is_err() {
            return;
        }
        let Ok(wcs) = real.poll_cq(cq, 256) else {
            return;
        };
        let Some(core) = core.upgrade() else { return };
        core.on_real_wcs(wcs);
    }
}

#[async_trait]
impl DeviceContext for EngineContext {
    fn device_attr(&self) -> DeviceAttr {
        DeviceAttr {
            max_srq: self.core.max_srq(),
            ..self.core.real.device_attr()
        }
    }

    fn port_attr(&self, port: u8) -> Result<PortAttr> {
        self.core.real.port_attr(port)
    }

    fn alloc_pd(&self) -> Result<PdId> {
        self.core.real.alloc_pd()
    }

    fn dealloc_pd(&self, pd: PdId) -> Result<()> {
        self.core.real.dealloc_pd(pd)
    }

    fn reg_mr(&self, pd: PdId, len: u64, access: Access) -> Result<MrInfo> {
        let mr = self.core.real.reg_mr(pd, len, access)?;
        self.core.nic().mrs.insert(mr.id, mr);
        Ok(mr)
    }

    fn dereg_mr(&self, mr: MrId) -> Result<()> {
        self.core.real.dereg_mr(mr)?;
        self.core.nic().mrs.remove(&mr);
        Ok(())
    }

    fn mr_write(&self, mr: MrId, offset: u64, data: &[u8]) -> Result<()> {
        self.core.real.mr_write(mr, offset, data)
    }

    fn mr_read(&self, mr: MrId, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.core.real.mr_read(mr, offset, buf)
    }

    fn create_cq(&self, cqe: u32) -> Result<CqId> {
        if cqe == 0 || cqe > self.core.real.device_attr().max_cqe {
            return Err(FabricError::Invalid("create_cq: cqe is 0 or above max_cqe"));
        }
        let mut nic = self.core.nic();
        let id = CqId(nic.alloc_id());
        nic.cqs.insert(
            id,
            CtxCq {
                cqe,
                entries: VecDeque::new(),
                overrun: false,
                notify: Default::default(),
            },
        );
        Ok(id)
    }

    fn destroy_cq(&self, cq: CqId) -> Result<()> {
        let mut nic = self.core.nic();
        if !nic.cqs.contains_key(&cq) {
            return Err(FabricError::NotFound("cq"));
        }
        if nic.qps.values().any(|q| q.send_cq == cq || q.recv_cq == cq) {
            return Err(FabricError::Busy("destroy_cq: a QP still uses it"));
        }
        nic.cqs.remove(&cq);
        Ok(())
    }

    fn poll_cq(&self, cq: CqId, max: usize) -> Result<Vec<WorkCompletion>> {
        let mut nic = self.core.nic();
        let ctx_cq = nic.cqs.get_mut(&cq).ok_or(FabricError::NotFound("cq"))?;
        let count = max.min(ctx_cq.entries.len());
        Ok(ctx_cq.entries.drain(..count).collect())
    }

    async fn wait_cq(&self, cq: CqId) -> Result<()> {
        loop {
            let notify = {
                let nic = self.core.nic();
                let ctx_cq = nic.cqs.get(&cq).ok_or(FabricError::NotFound("cq"))?;
                if !ctx_cq.entries.is_empty() {
                    return Ok(());
                }
                ctx_cq.notify.clone()
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let nic = self.core.nic();
                let ctx_cq = nic.cqs.get(&cq).ok_or(FabricError::NotFound("cq"))?;
                if !ctx_cq.entries.is_empty() {
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    fn create_srq(&self, pd: PdId, init: SrqInit) -> Result<SrqId> {
        self.core.check_srq_room(&self.core.nic())?;
        let real = self.core.real.create_srq(pd, init)?;
        let mut nic = self.core.nic();
        let id = SrqId(nic.alloc_id());
        nic.srqs.insert(id, CtxSrq::Plain { real });
        Ok(id)
    }

    fn arm_srq(&self, srq: SrqId, limit: u32) -> Result<()> {
        let (nic, mut path) = self.core.both();
        match nic.srqs.get(&srq).copied() {
            Some(CtxSrq::Plain { real }) => {
                drop(path);
                drop(nic);
                self.core.real.arm_srq(real, limit)
            }
            Some(CtxSrq::Nvmf { handle }) => {
                let srq_state = path
                    .nvmf
                    .get_mut(&handle)
                    .ok_or(FabricError::NotFound("srq"))?;
                if limit > srq_state.attrs.rq.max_wr {
                    return Err(FabricError::Invalid("arm_srq: limit above max_wr"));
                }
                srq_state.sw_limit = limit;
                Ok(())
            }
            None => Err(FabricError::NotFound("srq")),
        }
    }

    fn query_srq(&self, srq: SrqId) -> Result<SrqAttr> {
        let (nic, path) = self.core.both();
        match nic.srqs.get(&srq).copied() {
            Some(CtxSrq::Plain { real }) => {
                drop(path);
                drop(nic);
                self.core.real.query_srq(real)
            }
            Some(CtxSrq::Nvmf { handle }) => {
                let srq_state = path.nvmf.get(&handle).ok_or(FabricError::NotFound("srq"))?;
                Ok(SrqAttr {
                    max_wr: srq_state.attrs.rq.max_wr,
                    posted: srq_state.sw_recvs.len() as u32,
                    srq_limit: srq_state.sw_limit,
                })
            }
            None => Err(FabricError::NotFound("srq")),
        }
    }

    fn destroy_srq(&self, srq: SrqId) -> Result<()> {
        let mut nic = self.core.nic();
        match nic.srqs.get(&srq).copied() {
            Some(CtxSrq::Plain { real }) => {
                if nic.qps.values().any(|q| q.srq == Some(srq)) {
                    return Err(FabricError::Busy("destroy_srq: a QP still uses it"));
                }
                self.core.real.destroy_srq(real)?;
                nic.srqs.remove(&srq);
                Ok(())
            }
            Some(CtxSrq::Nvmf { handle }) => {
                drop(nic);
                let engine = super::Engine {
                    core: self.core.clone(),
                };
                engine.destroy_srq(handle).map_err(|e| match e.errno() {
                    nix::errno::Errno::EBUSY => FabricError::Busy("destroy_srq: in use"),
                    _ => FabricError::Invalid("destroy_srq: NVMe-oF SRQ refused"),
                })
            }
            None => Err(FabricError::NotFound("srq")),
        }
    }

    fn post_srq_recv(&self, srq: SrqId, wr: &RecvWr) -> Result<()> {
        let (mut nic, mut path) = self.core.both();
        match nic.srqs.get(&srq).copied() {
            Some(CtxSrq::Plain { real }) => {
                nic.post_tagged(Wr::SoftwareSrq { user: wr.wr_id }, |wr_id| {
                    let sg_list = wr.sg_list.clone();
                    self.core
                        .real
                        .post_srq_recv(real, &RecvWr { wr_id, sg_list })
                })
            }
            Some(CtxSrq::Nvmf { handle }) => {
                let srq_state = path
                    .nvmf
                    .get_mut(&handle)
                    .ok_or(FabricError::NotFound("srq"))?;
                if wr.sg_list.len() > srq_state.attrs.rq.max_sge as usize {
                    return Err(FabricError::Invalid(
                        "post_srq_recv: more SGEs than max_sge",
                    ));
                }
                if srq_state.sw_recvs.len() >= srq_state.attrs.rq.max_wr as usize {
                    return Err(FabricError::NoMemory("post_srq_recv: SRQ full"));
                }
                srq_state.sw_recvs.push_back(wr.clone());
                drop(path);
                drop(nic);
                self.core.drain_backlog(handle);
                Ok(())
            }
            None => Err(FabricError::NotFound("srq")),
        }
    }

    fn create_qp(&self, pd: PdId, init: QpInit) -> Result<QpInfo> {
        let core = self.core();
        let attr = core.real.device_attr();
        let (real_srq, nvmf) = {
            let (nic, path) = core.both();
            if !nic.cqs.contains_key(&init.send_cq) || !nic.cqs.contains_key(&init.recv_cq) {
                return Err(FabricError::Invalid(
                    "create_qp: unknown send_cq or recv_cq",
                ));
            }
            match init.srq.map(|s| nic.srqs.get(&s)) {
                None => (None, None),
                Some(None) => return Err(FabricError::Invalid("create_qp: unknown srq")),
                Some(Some(CtxSrq::Plain { real })) => (Some(*real), None),
                Some(Some(CtxSrq::Nvmf { handle })) => {
                    let srq_state = &path.nvmf[handle];
                    (
                        Some(srq_state.real),
                        Some((*handle, srq_state.attrs.rq.max_wr)),
                    )
                }
            }
        };
        // The engine posts its own RDMA and SEND requests on offloaded QPs: room for them.
        let extra = nvmf.map_or(0, |(_, depth)| 3 * depth);
        let cap = QpCap {
            max_send_wr: init
                .cap
                .max_send_wr
                .saturating_add(extra)
                .min(attr.max_qp_wr.max(init.cap.max_send_wr)),
            ..init.cap
        };
        if init.cap.max_send_wr == 0 || init.cap.max_send_wr > attr.max_qp_wr {
            return Err(FabricError::Invalid("create_qp: cap above device limits"));
        }
        // The private CQ also takes the engine's own completions and every capsule the SRQ
        // delivers for this QP; the simulated pump may complete many at one instant, so it
        // is as large as the device allows (entries cost nothing until used).
        let cqe = attr.max_cqe;
        let real_cq = core.real.create_cq(cqe)?;
        let info = match core.real.create_qp(
            pd,
            QpInit {
                send_cq: real_cq,
                recv_cq: real_cq,
                srq: real_srq,
                cap,
            },
        ) {
            Ok(i) => i,
            Err(e) => {
                let _ = core.real.destroy_cq(real_cq);
                return Err(e);
            }
        };
        let task = tokio::spawn(drain(core.real.clone(), real_cq, Arc::downgrade(core)));
        let mut nic = core.nic();
        let id = QpId(nic.alloc_id());
        nic.qps.insert(
            id,
            CtxQp {
                real: info.id,
                qpn: info.qpn,
                real_cq,
                send_cq: init.send_cq,
                recv_cq: init.recv_cq,
                srq: init.srq,
                nvmf: nvmf.map(|(h, _)| h),
                offload: nvmf.is_some() && core.quirks.has(Quirk::OffloadAtQpCreation),
                received: 0,
                queue: None,
                task: task.abort_handle(),
            },
        );
        nic.real_qp.insert(info.id, id);
        Ok(QpInfo { id, qpn: info.qpn })
    }

    fn modify_qp(&self, qp: QpId, attr: &QpAttr) -> Result<()> {
        let real = self.core.vqp_real(qp)?;
        self.core.real.modify_qp(real, attr)
    }

    fn query_qp(&self, qp: QpId) -> Result<QpState> {
        let real = self.core.vqp_real(qp)?;
        self.core.real.query_qp(real)
    }

    fn destroy_qp(&self, qp: QpId) -> Result<()> {
        let (q, cmds) = {
            let (mut nic, mut path) = self.core.both();
            let (nic, path) = (&mut *nic, &mut *path);
            let ctx_qp = nic.qps.remove(&qp).ok_or(FabricError::NotFound("qp"))?;
            nic.real_qp.remove(&ctx_qp.real);
            // The QP's commands can no longer be answered, and the work requests the engine
            // posted for them (fetching data, responding) will never complete: a destroyed
            // QP discards them.
            let mut cmds = Vec::new();
            for (id, c) in path.cmds.iter_mut() {
                if c.vqp == qp {
                    c.orphan_discarding();
                    cmds.push(*id);
                }
            }
            nic.wrs.retain(|_, w| match w {
                Wr::Software { vqp, .. } => *vqp != qp,
                Wr::Cmd { cmd, .. } => !cmds.contains(cmd),
                _ => true,
            });
            (ctx_qp, cmds)
        };
        q.task.abort();
        let result = self.core.real.destroy_qp(q.real);
        let _ = self.core.real.destroy_cq(q.real_cq);
        // Those not in a backend give back their staging and response slots now; the others
        // when their backend completes them.
        for id in cmds {
            self.core.try_retire(id);
        }
        result
    }

    fn post_send(&self, qp: QpId, wr: &SendWr) -> Result<()> {
        self.core
            .post_software(qp, wr.wr_id, wr.signaled, false, |real, wr_id| {
                let wr = SendWr {
                    wr_id,
                    signaled: true,
                    ..wr.clone()
                };
                self.core.real.post_send(real, &wr)
            })
    }

    fn post_recv(&self, qp: QpId, wr: &RecvWr) -> Result<()> {
        self.core
            .post_software(qp, wr.wr_id, true, true, |real, wr_id| {
                let sg_list = wr.sg_list.clone();
                self.core.real.post_recv(real, &RecvWr { wr_id, sg_list })
            })
    }

    fn poll_async_event(&self) -> Option<AsyncEvent> {
        self.core.ctx_events.pop()
    }

    async fn next_async_event(&self) -> AsyncEvent {
        self.core.ctx_events.next().await
    }

    fn cm_listen(&self, addr: SocketAddr) -> Result<ListenerId> {
        self.core.real.cm_listen(addr)
    }

    fn cm_close_listener(&self, listener: ListenerId) -> Result<()> {
        self.core.real.cm_close_listener(listener)
    }

    fn cm_connect(&self, addr: SocketAddr, qp: QpId, param: &ConnParam) -> Result<ConnId> {
        let real = self.core.vqp_real(qp)?;
        self.core.real.cm_connect(addr, real, param)
    }

    fn cm_accept(&self, conn: ConnId, qp: QpId, param: &ConnParam) -> Result<()> {
        let real = self.core.vqp_real(qp)?;
        self.core.real.cm_accept(conn, real, param)
    }

    fn cm_reject(&self, conn: ConnId, private_data: &[u8]) -> Result<()> {
        self.core.real.cm_reject(conn, private_data)
    }

    fn cm_disconnect(&self, conn: ConnId) -> Result<()> {
        self.core.real.cm_disconnect(conn)
    }

    fn cm_destroy(&self, conn: ConnId) -> Result<()> {
        self.core.real.cm_destroy(conn)
    }

    fn poll_cm_event(&self) -> Option<CmEvent> {
        self.core.real.poll_cm_event()
    }

    async fn next_cm_event(&self) -> CmEvent {
        self.core.real.next_cm_event().await
    }
}

impl Core {
    /// Delivers backlogged capsules of an NVMe-oF SRQ to software's receives.
    pub(crate) fn drain_backlog(&self, srq: harness::api::SrqHandle) {
        // Backlogged capsules go to software while it has receives posted.
        let deliverable = |s: &mut super::OffloadSrq| {
            if s.sw_recvs.is_empty() {
                None
            } else {
                s.backlog.pop_front()
            }
        };
        while let Some(item) = self.pop_from_srq(srq, deliverable) {
            self.deliver_to_software(srq, item.vqp, &item.bytes, item.src_qp);
        }
    }

    /// Gives a capsule the engine does not serve to software, as an SRQ receive; keeps it
    /// until software posts a receive when none is posted.
    pub(crate) fn deliver_to_software(
        &self,
        srq: harness::api::SrqHandle,
        vqp: QpId,
        bytes: &[u8],
        src_qp: u32,
    ) {
        let (mut nic, mut path) = self.both();
        let (qpn, recv_cq) = match nic.qps.get(&vqp) {
            Some(q) => (q.qpn, q.recv_cq),
            None => return,
        };
        let Some(srq_state) = path.nvmf.get_mut(&srq) else {
            return;
        };
        let Some(wr) = srq_state.sw_recvs.pop_front() else {
            srq_state.backlog.push_back(super::Backlog {
                vqp,
                bytes: bytes.to_vec(),
                src_qp,
            });
            return;
        };
        let limit_hit =
            srq_state.sw_limit > 0 && (srq_state.sw_recvs.len() as u32) < srq_state.sw_limit;
        if limit_hit {
            srq_state.sw_limit = 0;
        }
        let vsrq = srq_state.vsrq;
        // Scatter into software's buffers.
        let mut rest = bytes;
        let mut status = WcStatus::Success;
        for sge in &wr.sg_list {
            if rest.is_empty() {
                break;
            }
            let take = rest.len().min(sge.length as usize);
            match nic.region(sge.lkey, sge.addr, take as u64) {
                Some((mr, off)) => {
                    if self.real.mr_write(mr.id, off, &rest[..take]).is_err() {
                        status = WcStatus::LocProtErr;
                        break;
                    }
                    rest = &rest[take..];
                }
                None => {
                    status = WcStatus::LocProtErr;
                    break;
                }
            }
        }
        if status == WcStatus::Success && !rest.is_empty() {
            status = WcStatus::LocLenErr;
        }
        let wc = WorkCompletion {
            wr_id: wr.wr_id,
            status,
            opcode: WcOpcode::Recv,
            byte_len: bytes.len() as u32,
            qp: vqp,
            qp_num: qpn,
            src_qp,
            invalidated_rkey: None,
        };
        let ev = nic.push_wc(recv_cq, wc);
        let real = nic.qps.get(&vqp).map(|q| q.real);
        drop(path);
        drop(nic);
        if status != WcStatus::Success {
            if let Some(real) = real {
                let _ = self.real.modify_qp(real, &QpAttr::state(QpState::Err));
            }
        }
        if let Some(ev) = ev {
            self.ctx_events.push(ev);
        }
        if limit_hit {
            self.ctx_events.push(AsyncEvent::SrqLimitReached(vsrq));
        }
    }
}
