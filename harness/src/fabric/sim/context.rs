//! A context opened on a simulated device: the verbs calls, checked as libibverbs checks them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

use super::net::{Cq, Mr, Net, Pd, PendingSend, Qp, Srq};
use super::transport::flush_recv_wc;
use super::Inner;
use crate::fabric::{
    Access, AsyncEvent, CmEvent, ConnId, ConnParam, CqId, DeviceAttr, DeviceContext, FabricError,
    ListenerId, MrId, MrInfo, PdId, PortAttr, QpAttr, QpId, QpInfo, QpInit, QpState, RecvWr,
    Result, SendWr, SrqAttr, SrqId, SrqInit, WcStatus, WorkCompletion,
};

/// One opened simulated device; see [`DeviceContext`].
pub struct SimContext {
    pub(super) inner: Arc<Inner>,
    pub(super) ctx: usize,
}

impl SimContext {
    fn with<R>(&self, f: impl FnOnce(&mut Net, usize) -> R) -> R {
        self.inner.shared.with(|net| f(net, self.ctx))
    }

    /// Waits until `take` finds an event of this context (async or CM) and returns it.
    async fn next_ctx_event<T>(&self, take: impl Fn(&mut Net, usize) -> Option<T>) -> T {
        loop {
            let notify = self.with(|n, c| n.ctxs[c].notify.clone());
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = self.with(&take) {
                return e;
            }
            notified.await;
        }
    }
}

impl Drop for SimContext {
    fn drop(&mut self) {
        let ctx = self.ctx;
        self.inner.shared.with(|net| net.close_context(ctx));
    }
}

fn not_found(what: &'static str) -> FabricError {
    FabricError::NotFound(what)
}

impl Net {
    /// Releases everything a context created, as closing a device file does.
    pub(crate) fn close_context(&mut self, ctx: usize) {
        let conns: Vec<ConnId> = self.ctxs[ctx].conns.keys().copied().collect();
        for c in conns {
            let _ = self.cm_destroy(ctx, c);
        }
        let dev = self.ctxs[ctx].device;
        let c = &mut self.ctxs[ctx];
        c.closed = true;
        c.listeners.clear();
        for q in c.qps.values() {
            self.devices[dev].qpns.remove(&q.qpn);
        }
        for m in c.mrs.values() {
            self.devices[dev].rkeys.remove(&m.rkey);
        }
        c.qps.clear();
        c.mrs.clear();
        c.srqs.clear();
        c.cqs.clear();
        c.pds.clear();
        self.devices[dev].contexts.retain(|x| *x != ctx);
    }

    fn qp_mut(&mut self, ctx: usize, qp: QpId) -> Result<&mut Qp> {
        self.ctxs[ctx].qps.get_mut(&qp).ok_or(not_found("qp"))
    }

    fn modify_qp(&mut self, ctx: usize, qp: QpId, attr: &QpAttr) -> Result<()> {
        let ports = self.devices[self.ctxs[ctx].device].attr.phys_port_cnt;
        let q = self.qp_mut(ctx, qp)?;
        if attr.retry_cnt > 7 || attr.rnr_retry > 7 {
            return Err(FabricError::Invalid(
                "modify_qp: retry_cnt and rnr_retry are 0..=7",
            ));
        }
        if let Some(p) = attr.port {
            if p == 0 || p > ports {
                return Err(FabricError::Invalid("modify_qp: port out of range"));
            }
        }
        match (q.state, attr.state) {
            (_, QpState::Reset) => {
                q.state = QpState::Reset;
                q.sq.clear();
                q.rq.clear();
                q.dest = None;
                q.head_in_flight = false;
                q.comm_est_sent = false;
                q.access = Access::empty();
            }
            (_, QpState::Err) => self.qp_to_err(ctx, qp),
            (QpState::Reset, QpState::Init) => {
                let (Some(_), Some(access)) = (attr.port, attr.access) else {
                    return Err(FabricError::Invalid(
                        "modify_qp RESET->INIT needs port and access",
                    ));
                };
                q.access = access;
                q.state = QpState::Init;
            }
            (QpState::Init, QpState::Init) => {
                if let Some(a) = attr.access {
                    q.access = a;
                }
            }
            (QpState::Init, QpState::Rtr) => {
                let Some(dest) = attr.dest else {
                    return Err(FabricError::Invalid("modify_qp INIT->RTR needs dest"));
                };
                if let Some(a) = attr.access {
                    q.access = a;
                }
                q.dest = Some(dest);
                q.state = QpState::Rtr;
            }
            (QpState::Rtr, QpState::Rts) => {
                q.retry_cnt = attr.retry_cnt;
                q.rnr_retry = attr.rnr_retry;
                q.state = QpState::Rts;
                self.kick(ctx, qp);
            }
            (QpState::Rts, QpState::Rts) => {}
            _ => return Err(FabricError::Invalid("modify_qp: illegal state transition")),
        }
        Ok(())
    }

    fn post_send(&mut self, ctx: usize, qp: QpId, wr: &SendWr) -> Result<()> {
        self.seq += 1;
        let seq = self.seq;
        let q = self.qp_mut(ctx, qp)?;
        if wr.sg_list.len() > q.cap.max_send_sge as usize {
            return Err(FabricError::Invalid(
                "post_send: more SGEs than max_send_sge",
            ));
        }
        let pending = PendingSend {
            seq,
            wr: wr.clone(),
            rnr_left: q.rnr_retry,
            retry_left: q.retry_cnt,
            read_data: None,
        };
        match q.state {
            QpState::Rts => {
                if q.sq.len() >= q.cap.max_send_wr as usize {
                    return Err(FabricError::NoMemory("post_send: send queue full"));
                }
                q.sq.push_back(pending);
                self.kick(ctx, qp);
                Ok(())
            }
            QpState::Err => {
                let (cq, qpn) = (q.send_cq, q.qpn);
                let wc = super::transport::send_wc(wr, WcStatus::WrFlushErr, qp, qpn, 0);
                self.push_wc(ctx, cq, wc);
                Ok(())
            }
            _ => Err(FabricError::Invalid("post_send: qp is not in RTS")),
        }
    }

    fn post_recv(&mut self, ctx: usize, qp: QpId, wr: &RecvWr) -> Result<()> {
        let q = self.qp_mut(ctx, qp)?;
        if q.srq.is_some() {
            return Err(FabricError::Invalid("post_recv: qp receives from an SRQ"));
        }
        if wr.sg_list.len() > q.cap.max_recv_sge as usize {
            return Err(FabricError::Invalid(
                "post_recv: more SGEs than max_recv_sge",
            ));
        }
        match q.state {
            QpState::Reset => Err(FabricError::Invalid("post_recv: qp is in RESET")),
            QpState::Err => {
                let (cq, qpn) = (q.recv_cq, q.qpn);
                self.push_wc(ctx, cq, flush_recv_wc(wr.wr_id, qp, qpn));
                Ok(())
            }
            _ => {
                if q.rq.len() >= q.cap.max_recv_wr as usize {
                    return Err(FabricError::NoMemory("post_recv: receive queue full"));
                }
                q.rq.push_back(wr.clone());
                Ok(())
            }
        }
    }
}

#[async_trait]
impl DeviceContext for SimContext {
    fn device_attr(&self) -> DeviceAttr {
        self.with(|n, c| n.devices[n.ctxs[c].device].attr.clone())
    }

    fn port_attr(&self, port: u8) -> Result<PortAttr> {
        self.with(|n, c| {
            let d = &n.devices[n.ctxs[c].device];
            if port == 0 || port > d.attr.phys_port_cnt {
                return Err(FabricError::Invalid("port_attr: port out of range"));
            }
            Ok(PortAttr {
                port,
                state: d.port_state,
                active_mtu: 4096,
                addr: d.addr,
                gids: vec![
                    crate::fabric::Gid([
                        0xfe,
                        0x80,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        d.addr.octets()[3],
                    ]),
                    d.gid(),
                ],
            })
        })
    }

    fn alloc_pd(&self) -> Result<PdId> {
        self.with(|n, c| {
            let max = n.devices[n.ctxs[c].device].attr.max_pd;
            let cx = &mut n.ctxs[c];
            if cx.pds.len() >= max as usize {
                return Err(FabricError::NoMemory("alloc_pd: max_pd reached"));
            }
            let id = PdId(cx.alloc_id());
            cx.pds.insert(id, Pd);
            Ok(id)
        })
    }

    fn dealloc_pd(&self, pd: PdId) -> Result<()> {
        self.with(|n, c| {
            let cx = &mut n.ctxs[c];
            if !cx.pds.contains_key(&pd) {
                return Err(not_found("pd"));
            }
            if cx.mrs.values().any(|m| m.pd == pd)
                || cx.qps.values().any(|q| q.pd == pd)
                || cx.srqs.values().any(|s| s.pd == pd)
            {
                return Err(FabricError::Busy(
                    "dealloc_pd: MRs, QPs or SRQs still use it",
                ));
            }
            cx.pds.remove(&pd);
            Ok(())
        })
    }

    fn reg_mr(&self, pd: PdId, len: u64, access: Access) -> Result<MrInfo> {
        self.with(|n, c| {
            let dev = n.ctxs[c].device;
            let attr = n.devices[dev].attr.clone();
            if !n.ctxs[c].pds.contains_key(&pd) {
                return Err(not_found("pd"));
            }
            if len == 0 || len > attr.max_mr_size {
                return Err(FabricError::Invalid(
                    "reg_mr: len is 0 or above max_mr_size",
                ));
            }
            if access.intersects(Access::REMOTE_WRITE | Access::REMOTE_ATOMIC)
                && !access.contains(Access::LOCAL_WRITE)
            {
                return Err(FabricError::Invalid(
                    "reg_mr: REMOTE_WRITE needs LOCAL_WRITE",
                ));
            }
            if n.ctxs[c].mrs.len() >= attr.max_mr as usize {
                return Err(FabricError::NoMemory("reg_mr: max_mr reached"));
            }
            let addr = n.next_mr_addr;
            n.next_mr_addr += len.div_ceil(4096) * 4096 + 4096;
            let lkey = n.new_key(dev);
            n.devices[dev]
                .rkeys
                .insert(lkey, (usize::MAX, MrId(u32::MAX)));
            let rkey = n.new_key(dev);
            n.devices[dev].rkeys.remove(&lkey);
            let id = MrId(n.ctxs[c].alloc_id());
            n.devices[dev].rkeys.insert(rkey, (c, id));
            n.ctxs[c].mrs.insert(
                id,
                Mr {
                    pd,
                    addr,
                    lkey,
                    rkey,
                    access,
                    data: vec![0; len as usize],
                    remote_valid: true,
                },
            );
            Ok(MrInfo {
                id,
                addr,
                len,
                lkey,
                rkey,
                access,
            })
        })
    }

    fn dereg_mr(&self, mr: MrId) -> Result<()> {
        self.with(|n, c| {
            let m = n.ctxs[c].mrs.remove(&mr).ok_or(not_found("mr"))?;
            let dev = n.ctxs[c].device;
            n.devices[dev].rkeys.remove(&m.rkey);
            Ok(())
        })
    }

    fn mr_write(&self, mr: MrId, offset: u64, data: &[u8]) -> Result<()> {
        self.with(|n, c| {
            let m = n.ctxs[c].mrs.get_mut(&mr).ok_or(not_found("mr"))?;
            let end = offset
                .checked_add(data.len() as u64)
                .filter(|e| *e <= m.data.len() as u64);
            let Some(end) = end else {
                return Err(FabricError::Invalid("mr_write: outside the region"));
            };
            m.data[offset as usize..end as usize].copy_from_slice(data);
            Ok(())
        })
    }

    fn mr_read(&self, mr: MrId, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.with(|n, c| {
            let m = n.ctxs[c].mrs.get(&mr).ok_or(not_found("mr"))?;
            let end = offset
                .checked_add(buf.len() as u64)
                .filter(|e| *e <= m.data.len() as u64);
            let Some(end) = end else {
                return Err(FabricError::Invalid("mr_read: outside the region"));
            };
            buf.copy_from_slice(&m.data[offset as usize..end as usize]);
            Ok(())
        })
    }

    fn create_cq(&self, cqe: u32) -> Result<CqId> {
        self.with(|n, c| {
            let attr = &n.devices[n.ctxs[c].device].attr;
            if cqe == 0 || cqe > attr.max_cqe {
                return Err(FabricError::Invalid("create_cq: cqe is 0 or above max_cqe"));
            }
            if n.ctxs[c].cqs.len() >= attr.max_cq as usize {
                return Err(FabricError::NoMemory("create_cq: max_cq reached"));
            }
            let cx = &mut n.ctxs[c];
            let id = CqId(cx.alloc_id());
            cx.cqs.insert(
                id,
                Cq {
                    cqe,
                    ..Cq::default()
                },
            );
            Ok(id)
        })
    }

    fn destroy_cq(&self, cq: CqId) -> Result<()> {
        self.with(|n, c| {
            let cx = &mut n.ctxs[c];
            if !cx.cqs.contains_key(&cq) {
                return Err(not_found("cq"));
            }
            if cx.qps.values().any(|q| q.send_cq == cq || q.recv_cq == cq) {
                return Err(FabricError::Busy("destroy_cq: a QP still uses it"));
            }
            cx.cqs.remove(&cq);
            Ok(())
        })
    }

    fn poll_cq(&self, cq: CqId, max: usize) -> Result<Vec<WorkCompletion>> {
        self.with(|n, c| {
            let q = n.ctxs[c].cqs.get_mut(&cq).ok_or(not_found("cq"))?;
            let k = max.min(q.entries.len());
            Ok(q.entries.drain(..k).collect())
        })
    }

    async fn wait_cq(&self, cq: CqId) -> Result<()> {
        loop {
            let notify = self.with(|n, c| {
                let q = n.ctxs[c].cqs.get(&cq).ok_or(not_found("cq"))?;
                Ok::<_, FabricError>((!q.entries.is_empty(), q.notify.clone()))
            })?;
            if notify.0 {
                return Ok(());
            }
            let notified = notify.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ready = self.with(|n, c| n.ctxs[c].cqs.get(&cq).map(|q| !q.entries.is_empty()));
            match ready {
                None => return Err(not_found("cq")),
                Some(true) => return Ok(()),
                Some(false) => notified.await,
            }
        }
    }

    fn create_srq(&self, pd: PdId, init: SrqInit) -> Result<SrqId> {
        self.with(|n, c| {
            let attr = n.devices[n.ctxs[c].device].attr.clone();
            if !n.ctxs[c].pds.contains_key(&pd) {
                return Err(not_found("pd"));
            }
            if init.max_wr == 0 || init.max_wr > attr.max_srq_wr {
                return Err(FabricError::Invalid(
                    "create_srq: max_wr is 0 or above max_srq_wr",
                ));
            }
            if init.max_sge == 0 || init.max_sge > attr.max_sge {
                return Err(FabricError::Invalid(
                    "create_srq: max_sge is 0 or above max_sge",
                ));
            }
            if init.srq_limit > init.max_wr {
                return Err(FabricError::Invalid("create_srq: srq_limit above max_wr"));
            }
            if n.ctxs[c].srqs.len() >= attr.max_srq as usize {
                return Err(FabricError::NoMemory("create_srq: max_srq reached"));
            }
            let cx = &mut n.ctxs[c];
            let id = SrqId(cx.alloc_id());
            cx.srqs.insert(
                id,
                Srq {
                    pd,
                    max_wr: init.max_wr,
                    max_sge: init.max_sge,
                    limit: init.srq_limit,
                    queue: VecDeque::new(),
                },
            );
            Ok(id)
        })
    }

    fn arm_srq(&self, srq: SrqId, limit: u32) -> Result<()> {
        self.with(|n, c| {
            let s = n.ctxs[c].srqs.get_mut(&srq).ok_or(not_found("srq"))?;
            if limit > s.max_wr {
                return Err(FabricError::Invalid("arm_srq: limit above max_wr"));
            }
            s.limit = limit;
            Ok(())
        })
    }

    fn query_srq(&self, srq: SrqId) -> Result<SrqAttr> {
        self.with(|n, c| {
            let s = n.ctxs[c].srqs.get(&srq).ok_or(not_found("srq"))?;
            Ok(SrqAttr {
                max_wr: s.max_wr,
                posted: s.queue.len() as u32,
                srq_limit: s.limit,
            })
        })
    }

    fn destroy_srq(&self, srq: SrqId) -> Result<()> {
        self.with(|n, c| {
            let cx = &mut n.ctxs[c];
            if !cx.srqs.contains_key(&srq) {
                return Err(not_found("srq"));
            }
            if cx.qps.values().any(|q| q.srq == Some(srq)) {
                return Err(FabricError::Busy("destroy_srq: a QP still uses it"));
            }
            cx.srqs.remove(&srq);
            Ok(())
        })
    }

    fn post_srq_recv(&self, srq: SrqId, wr: &RecvWr) -> Result<()> {
        self.with(|n, c| {
            let s = n.ctxs[c].srqs.get_mut(&srq).ok_or(not_found("srq"))?;
            if wr.sg_list.len() > s.max_sge as usize {
                return Err(FabricError::Invalid(
                    "post_srq_recv: more SGEs than max_sge",
                ));
            }
            if s.queue.len() >= s.max_wr as usize {
                return Err(FabricError::NoMemory("post_srq_recv: SRQ full"));
            }
            s.queue.push_back(wr.clone());
            Ok(())
        })
    }

    fn create_qp(&self, pd: PdId, init: QpInit) -> Result<QpInfo> {
        self.with(|n, c| {
            let dev = n.ctxs[c].device;
            let attr = n.devices[dev].attr.clone();
            let cx = &n.ctxs[c];
            if !cx.pds.contains_key(&pd) {
                return Err(not_found("pd"));
            }
            if !cx.cqs.contains_key(&init.send_cq) || !cx.cqs.contains_key(&init.recv_cq) {
                return Err(FabricError::Invalid(
                    "create_qp: unknown send_cq or recv_cq",
                ));
            }
            if let Some(s) = init.srq {
                if !cx.srqs.contains_key(&s) {
                    return Err(FabricError::Invalid("create_qp: unknown srq"));
                }
            }
            let cap = init.cap;
            if cap.max_send_wr == 0
                || cap.max_send_wr > attr.max_qp_wr
                || cap.max_recv_wr > attr.max_qp_wr
                || cap.max_send_sge > attr.max_sge
                || cap.max_recv_sge > attr.max_sge
            {
                return Err(FabricError::Invalid("create_qp: cap above device limits"));
            }
            if cx.qps.len() >= attr.max_qp as usize {
                return Err(FabricError::NoMemory("create_qp: max_qp reached"));
            }
            let qpn = loop {
                let q = n.next_qpn & 0xff_ffff;
                n.next_qpn = n.next_qpn.wrapping_add(1);
                if q > 1 && !n.devices[dev].qpns.contains_key(&q) {
                    break q;
                }
            };
            let now = n.now();
            let cx = &mut n.ctxs[c];
            let id = QpId(cx.alloc_id());
            cx.qps.insert(
                id,
                Qp {
                    pd,
                    qpn,
                    send_cq: init.send_cq,
                    recv_cq: init.recv_cq,
                    srq: init.srq,
                    cap,
                    state: QpState::Reset,
                    access: Access::empty(),
                    dest: None,
                    retry_cnt: 7,
                    rnr_retry: 7,
                    sq: VecDeque::new(),
                    head_in_flight: false,
                    rq: VecDeque::new(),
                    comm_est_sent: false,
                    last_arrival: now,
                },
            );
            n.devices[dev].qpns.insert(qpn, (c, id));
            Ok(QpInfo { id, qpn })
        })
    }

    fn modify_qp(&self, qp: QpId, attr: &QpAttr) -> Result<()> {
        self.with(|n, c| n.modify_qp(c, qp, attr))
    }

    fn query_qp(&self, qp: QpId) -> Result<QpState> {
        self.with(|n, c| {
            n.ctxs[c]
                .qps
                .get(&qp)
                .map(|q| q.state)
                .ok_or(not_found("qp"))
        })
    }

    fn destroy_qp(&self, qp: QpId) -> Result<()> {
        self.with(|n, c| {
            let q = n.ctxs[c].qps.remove(&qp).ok_or(not_found("qp"))?;
            let dev = n.ctxs[c].device;
            n.devices[dev].qpns.remove(&q.qpn);
            for conn in n.ctxs[c].conns.values_mut() {
                if conn.qp == Some(qp) {
                    conn.qp = None;
                }
            }
            Ok(())
        })
    }

    fn post_send(&self, qp: QpId, wr: &SendWr) -> Result<()> {
        self.with(|n, c| n.post_send(c, qp, wr))
    }

    fn post_recv(&self, qp: QpId, wr: &RecvWr) -> Result<()> {
        self.with(|n, c| n.post_recv(c, qp, wr))
    }

    fn poll_async_event(&self) -> Option<AsyncEvent> {
        self.with(|n, c| n.ctxs[c].async_events.pop_front())
    }

    async fn next_async_event(&self) -> AsyncEvent {
        self.next_ctx_event(|n, c| n.ctxs[c].async_events.pop_front())
            .await
    }

    fn cm_listen(&self, addr: SocketAddr) -> Result<ListenerId> {
        self.with(|n, c| n.cm_listen(c, addr))
    }

    fn cm_close_listener(&self, listener: ListenerId) -> Result<()> {
        self.with(|n, c| n.cm_close_listener(c, listener))
    }

    fn cm_connect(&self, addr: SocketAddr, qp: QpId, param: &ConnParam) -> Result<ConnId> {
        self.with(|n, c| n.cm_connect(c, addr, qp, param))
    }

    fn cm_accept(&self, conn: ConnId, qp: QpId, param: &ConnParam) -> Result<()> {
        self.with(|n, c| n.cm_accept(c, conn, qp, param))
    }

    fn cm_reject(&self, conn: ConnId, private_data: &[u8]) -> Result<()> {
        self.with(|n, c| n.cm_reject(c, conn, private_data))
    }

    fn cm_disconnect(&self, conn: ConnId) -> Result<()> {
        self.with(|n, c| n.cm_disconnect(c, conn))
    }

    fn cm_destroy(&self, conn: ConnId) -> Result<()> {
        self.with(|n, c| n.cm_destroy(c, conn))
    }

    fn poll_cm_event(&self) -> Option<CmEvent> {
        self.with(|n, c| n.ctxs[c].cm_events.pop_front())
    }

    async fn next_cm_event(&self) -> CmEvent {
        self.next_ctx_event(|n, c| n.ctxs[c].cm_events.pop_front())
            .await
    }
}
