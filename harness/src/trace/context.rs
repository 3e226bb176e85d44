//! [`TracedContext`]: a [`DeviceContext`] that records everything crossing it.
//!
//! Calls with their result (the errno only on failure: messages differ between fabrics),
//! posted work requests, completions as they are polled, async and CM events as they are
//! taken. SEND payloads and received messages are decoded as NVMe-oF capsules (SQE, Fabrics
//! command, CQE) and CM private data as NVMe-oF RDMA CM messages.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Names, Recorder};
use crate::fabric::{
    Access, AsyncEvent, CmEvent, CmEventKind, ConnId, ConnParam, CqId, DeviceAttr, DeviceContext,
    FabricError, ListenerId, MrId, MrInfo, PdId, PortAttr, QpAttr, QpId, QpInfo, QpInit, QpState,
    RecvWr, Result, SendOp, SendWr, Sge, SrqAttr, SrqId, SrqInit, WcStatus, WorkCompletion,
};
use crate::wire::{
    CmAcceptRepr, CmRejectRepr, CmRequestRepr, CqeRepr, DataPointer, FabricsRepr, SglRepr,
    SqeCommand, SqeRepr, CQE_LEN, FABRICS_OPCODE, SQE_LEN,
};

/// A device context that records what crosses it into a [`Recorder`]; see the module docs.
pub struct TracedContext {
    inner: Arc<dyn DeviceContext>,
    actor: String,
    rec: Recorder,
    names: Names,
    mrs: Mutex<BTreeMap<MrId, MrInfo>>,
    recvs: Mutex<BTreeMap<u64, Vec<Sge>>>,
}

impl TracedContext {
    /// Wraps `inner`; lines are recorded as `actor`, values named in `names`.
    pub fn new(
        inner: Arc<dyn DeviceContext>,
        actor: &str,
        rec: Recorder,
        names: Names,
    ) -> Arc<TracedContext> {
        Arc::new(TracedContext {
            inner,
            actor: actor.to_string(),
            rec,
            names,
            mrs: Mutex::new(BTreeMap::new()),
            recvs: Mutex::new(BTreeMap::new()),
        })
    }

    fn line(&self, kind: &'static str, text: String) {
        self.rec.push(&self.actor, kind, text);
    }

    fn call<T>(&self, what: String, r: &Result<T>, ok: impl FnOnce(&T) -> String) {
        let out = match r {
            Ok(v) => ok(v),
            Err(e) => errno_name(e),
        };
        self.line("call", format!("{what} -> {out}"));
    }

    /// Records a call as "ok" or its errno and hands its result back.
    fn done<T>(&self, what: String, r: Result<T>) -> Result<T> {
        self.call(what, &r, |_| "ok".into());
        r
    }

    /// Remembers a posted receive's buffers (to decode what lands in them), or records
    /// the errno that refused it; `queue` names the QP or SRQ.
    fn posted_recv(&self, queue: &str, wr: &RecvWr, r: &Result<()>) {
        match r {
            Ok(()) => {
                lock(&self.recvs).insert(wr.wr_id, wr.sg_list.clone());
            }
            Err(e) => self.line(
                "post",
                format!("{queue} RECV wr={} -> {}", wr.wr_id, errno_name(e)),
            ),
        }
    }

    fn n(&self, kind: &'static str, raw: u32) -> String {
        self.names.of(&self.actor, kind, u64::from(raw))
    }

    fn read_payload(&self, sges: &[Sge], len: usize) -> Vec<u8> {
        let mrs = lock(&self.mrs);
        let mut out = Vec::new();
        for s in sges {
            if out.len() >= len {
                break;
            }
            let Some(mr) = mrs
                .values()
                .find(|m| m.lkey == s.lkey && s.addr >= m.addr && s.addr < m.addr + m.len)
            else {
                break;
            };
            let n = (len - out.len()).min(s.length as usize);
            let mut buf = vec![0u8; n];
            if self
                .inner
                .mr_read(mr.id, s.addr - mr.addr, &mut buf)
                .is_err()
            {
                break;
            }
            out.extend_from_slice(&buf);
        }
        out
    }

    fn describe_payload(&self, bytes: &[u8]) -> Option<(&'static str, String)> {
        if bytes.len() == CQE_LEN {
            let c = CqeRepr::parse_bytes(bytes).ok()?;
            return Some((
                "resp",
                format!("cid={} status={} dw0={:#x}", c.cid, c.status, c.dw0()),
            ));
        }
        if bytes.len() < SQE_LEN {
            return None;
        }
        if bytes[0] == FABRICS_OPCODE {
            return Some(("capsule", self.describe_fabrics(&bytes[..SQE_LEN])));
        }
        let text = match SqeRepr::parse_bytes(&bytes[..SQE_LEN]) {
            Ok(s) => self.describe_sqe(&s),
            Err(e) => format!("unparsed opcode={:#04x} ({e})", bytes[0]),
        };
        let extra = if bytes.len() > SQE_LEN {
            format!(" +{} in-capsule bytes", bytes.len() - SQE_LEN)
        } else {
            String::new()
        };
        Some(("capsule", text + &extra))
    }

    fn describe_fabrics(&self, sqe: &[u8]) -> String {
        match FabricsRepr::parse_bytes(sqe) {
            Ok(FabricsRepr::Connect(c)) => format!(
                "connect cid={} qid={} sqsize={} recfmt={} kato={} data={}",
                c.cid,
                c.qid,
                c.sqsize,
                c.recfmt,
                c.kato,
                self.sgl(&c.sgl1)
            ),
            Ok(FabricsRepr::PropertyGet(p)) => {
                format!("property-get cid={} offset={:#x}", p.cid, p.offset)
            }
            Ok(FabricsRepr::PropertySet(p)) => format!(
                "property-set cid={} offset={:#x} value={:#x}",
                p.cid, p.offset, p.value
            ),
            Err(e) => format!(
                "fabrics fctype={:#04x} ({e})",
                sqe.get(4).copied().unwrap_or(0)
            ),
        }
    }

    fn describe_sqe(&self, s: &SqeRepr) -> String {
        let data = match &s.dptr {
            DataPointer::Sgl(g) => self.sgl(g),
            DataPointer::Raw(_) => "prp".to_string(),
        };
        format!(
            "{} cid={} nsid={} data={data}",
            command_text(&s.command),
            s.cid,
            s.nsid
        )
    }

    fn sgl(&self, g: &SglRepr) -> String {
        match g {
            SglRepr::KeyedDataBlock {
                invalidate,
                address,
                length,
                key,
            } => format!(
                "keyed{}({} len={length} key={})",
                if *invalidate { "+inv" } else { "" },
                self.names.addr(*address),
                self.names.key(*key)
            ),
            SglRepr::DataBlock {
                address, length, ..
            } => format!("in-capsule(off={address} len={length})"),
            other => format!("{other:?}"),
        }
    }

    fn describe_wc(&self, wc: &WorkCompletion) {
        let mut text = format!(
            "{} {:?} {} wr={}",
            self.n("qp", wc.qp.0),
            wc.opcode,
            wc.status.name(),
            wc.wr_id
        );
        let is_recv = wc.opcode == crate::fabric::WcOpcode::Recv;
        if is_recv && wc.status == WcStatus::Success {
            text += &format!(" len={} from={}", wc.byte_len, self.names.qpn(wc.src_qp));
            if let Some(k) = wc.invalidated_rkey {
                text += &format!(" invalidated={}", self.names.key(k));
            }
        }
        self.line("wc", text);
        if is_recv && wc.status == WcStatus::Success {
            let sges = lock(&self.recvs).remove(&wc.wr_id);
            if let Some(sges) = sges {
                let bytes = self.read_payload(&sges, wc.byte_len as usize);
                if let Some((kind, t)) = self.describe_payload(&bytes) {
                    self.line(kind, format!("<- {t}"));
                }
            }
        }
    }

    fn describe_cm(&self, ev: &CmEvent) {
        let conn = self.names.add(&self.actor, "conn", u64::from(ev.conn.0));
        let text = match &ev.kind {
            CmEventKind::ConnectRequest { param, .. } => {
                format!("{conn} connect-request {}", cm_request(&param.private_data))
            }
            CmEventKind::Established { private_data } => {
                format!("{conn} established {}", cm_accept(private_data))
            }
            CmEventKind::Rejected {
                status,
                private_data,
            } => format!(
                "{conn} rejected status={status} {}",
                cm_reject(private_data)
            ),
            CmEventKind::Unreachable => format!("{conn} unreachable"),
            CmEventKind::Disconnected => format!("{conn} disconnected"),
        };
        self.line("cm", text);
    }

    fn describe_event(&self, ev: &AsyncEvent) {
        let text = match ev {
            AsyncEvent::CqErr(c) => format!("CQ_ERR {}", self.n("cq", c.0)),
            AsyncEvent::QpFatal(q) => format!("QP_FATAL {}", self.n("qp", q.0)),
            AsyncEvent::QpReqErr(q) => format!("QP_REQ_ERR {}", self.n("qp", q.0)),
            AsyncEvent::QpAccessErr(q) => format!("QP_ACCESS_ERR {}", self.n("qp", q.0)),
            AsyncEvent::CommEst(q) => format!("COMM_EST {}", self.n("qp", q.0)),
            AsyncEvent::SqDrained(q) => format!("SQ_DRAINED {}", self.n("qp", q.0)),
            AsyncEvent::QpLastWqeReached(q) => {
                format!("QP_LAST_WQE_REACHED {}", self.n("qp", q.0))
            }
            AsyncEvent::SrqLimitReached(s) => format!("SRQ_LIMIT_REACHED {}", self.n("srq", s.0)),
            AsyncEvent::SrqErr(s) => format!("SRQ_ERR {}", self.n("srq", s.0)),
            AsyncEvent::PortActive(p) => format!("PORT_ACTIVE port={p}"),
            AsyncEvent::PortErr(p) => format!("PORT_ERR port={p}"),
            AsyncEvent::DeviceFatal => "DEVICE_FATAL".to_string(),
        };
        self.line("event", text);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The errno of a failed call, e.g. `EINVAL`.
/// How traces show an NVM command: `read slba=0 nlb=7`, `flush`, `opcode=0x99`.
pub fn command_text(c: &SqeCommand) -> String {
    match c {
        SqeCommand::Read(rw) => format!("read slba={} nlb={}", rw.slba, rw.nlb),
        SqeCommand::Write(rw) => format!("write slba={} nlb={}", rw.slba, rw.nlb),
        SqeCommand::Flush => "flush".to_string(),
        SqeCommand::WriteZeroes(w) => format!("write-zeroes slba={} nlb={}", w.slba, w.nlb),
        SqeCommand::DatasetManagement(d) => format!("dsm nr={}", d.nr),
        SqeCommand::Other { opcode, .. } => format!("opcode={opcode:#04x}"),
    }
}

pub(crate) fn errno_name(e: &FabricError) -> String {
    format!("{:?}", e.errno())
}

fn cm_request(pd: &[u8]) -> String {
    match CmRequestRepr::parse_bytes(pd) {
        Ok(r) => format!(
            "recfmt={} qid={} hrqsize={} hsqsize={}",
            r.recfmt, r.qid, r.hrqsize, r.hsqsize
        ),
        Err(_) => format!("private={}B", pd.len()),
    }
}

fn cm_accept(pd: &[u8]) -> String {
    if pd.is_empty() {
        return String::new();
    }
    match CmAcceptRepr::parse_bytes(pd) {
        Ok(a) => format!("recfmt={} crqsize={}", a.recfmt, a.crqsize),
        Err(_) => format!("private={}B", pd.len()),
    }
}

fn cm_reject(pd: &[u8]) -> String {
    match CmRejectRepr::parse_bytes(pd) {
        Ok(r) => format!("recfmt={} sts={:?}", r.recfmt, r.status),
        Err(_) => format!("private={}B", pd.len()),
    }
}

fn access(a: Access) -> String {
    if a.is_empty() {
        "NONE".into()
    } else {
        format!("{a:?}")
            .trim_start_matches("Access(")
            .trim_end_matches(')')
            .replace(' ', "")
    }
}

#[async_trait]
impl DeviceContext for TracedContext {
    fn device_attr(&self) -> DeviceAttr {
        self.inner.device_attr()
    }

    fn port_attr(&self, port: u8) -> Result<PortAttr> {
        self.inner.port_attr(port)
    }

    fn alloc_pd(&self) -> Result<PdId> {
        let r = self.inner.alloc_pd();
        self.call("alloc_pd".into(), &r, |p| {
            self.names.add(&self.actor, "pd", u64::from(p.0))
        });
        r
    }

    fn dealloc_pd(&self, pd: PdId) -> Result<()> {
        let r = self.inner.dealloc_pd(pd);
        self.done(format!("dealloc_pd {}", self.n("pd", pd.0)), r)
    }

    fn reg_mr(&self, pd: PdId, len: u64, a: Access) -> Result<MrInfo> {
        let r = self.inner.reg_mr(pd, len, a);
        if let Ok(mr) = &r {
            let name = self.names.add(&self.actor, "mr", u64::from(mr.id.0));
            self.names.add_mr(mr, &name);
            lock(&self.mrs).insert(mr.id, *mr);
        }
        self.call(
            format!("reg_mr {} len={len} {}", self.n("pd", pd.0), access(a)),
            &r,
            |m| self.n("mr", m.id.0),
        );
        r
    }

    fn dereg_mr(&self, mr: MrId) -> Result<()> {
        let r = self.inner.dereg_mr(mr);
        self.call(format!("dereg_mr {}", self.n("mr", mr.0)), &r, |_| {
            "ok".into()
        });
        if r.is_ok() {
            if let Some(m) = lock(&self.mrs).remove(&mr) {
                self.names.remove_mr(&m);
            }
        }
        r
    }

    fn mr_write(&self, mr: MrId, offset: u64, data: &[u8]) -> Result<()> {
        self.inner.mr_write(mr, offset, data)
    }

    fn mr_read(&self, mr: MrId, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.mr_read(mr, offset, buf)
    }

    fn create_cq(&self, cqe: u32) -> Result<CqId> {
        let r = self.inner.create_cq(cqe);
        self.call(format!("create_cq cqe={cqe}"), &r, |c| {
            self.names.add(&self.actor, "cq", u64::from(c.0))
        });
        r
    }

    fn destroy_cq(&self, cq: CqId) -> Result<()> {
        let r = self.inner.destroy_cq(cq);
        self.done(format!("destroy_cq {}", self.n("cq", cq.0)), r)
    }

    fn poll_cq(&self, cq: CqId, max: usize) -> Result<Vec<WorkCompletion>> {
        let r = self.inner.poll_cq(cq, max);
        if let Ok(wcs) = &r {
            for wc in wcs {
                self.describe_wc(wc);
            }
        }
        r
    }

    async fn wait_cq(&self, cq: CqId) -> Result<()> {
        self.inner.wait_cq(cq).await
    }

    fn create_srq(&self, pd: PdId, init: SrqInit) -> Result<SrqId> {
        let r = self.inner.create_srq(pd, init);
        self.call(
            format!(
                "create_srq {} max_wr={} limit={}",
                self.n("pd", pd.0),
                init.max_wr,
                init.srq_limit
            ),
            &r,
            |s| self.names.add(&self.actor, "srq", u64::from(s.0)),
        );
        r
    }

    fn arm_srq(&self, srq: SrqId, limit: u32) -> Result<()> {
        let r = self.inner.arm_srq(srq, limit);
        self.done(format!("arm_srq {} limit={limit}", self.n("srq", srq.0)), r)
    }

    fn query_srq(&self, srq: SrqId) -> Result<SrqAttr> {
        self.inner.query_srq(srq)
    }

    fn destroy_srq(&self, srq: SrqId) -> Result<()> {
        let r = self.inner.destroy_srq(srq);
        self.done(format!("destroy_srq {}", self.n("srq", srq.0)), r)
    }

    fn post_srq_recv(&self, srq: SrqId, wr: &RecvWr) -> Result<()> {
        let r = self.inner.post_srq_recv(srq, wr);
        self.posted_recv(&self.n("srq", srq.0), wr, &r);
        r
    }

    fn create_qp(&self, pd: PdId, init: QpInit) -> Result<QpInfo> {
        let r = self.inner.create_qp(pd, init);
        let srq = init
            .srq
            .map(|s| format!(" srq={}", self.n("srq", s.0)))
            .unwrap_or_default();
        self.call(format!("create_qp {}{srq}", self.n("pd", pd.0)), &r, |q| {
            let name = self.names.add(&self.actor, "qp", u64::from(q.id.0));
            self.names.add_qpn(q.qpn, &name);
            name
        });
        r
    }

    fn modify_qp(&self, qp: QpId, attr: &QpAttr) -> Result<()> {
        let r = self.inner.modify_qp(qp, attr);
        self.done(
            format!("modify_qp {} {:?}", self.n("qp", qp.0), attr.state),
            r,
        )
    }

    fn query_qp(&self, qp: QpId) -> Result<QpState> {
        self.inner.query_qp(qp)
    }

    fn destroy_qp(&self, qp: QpId) -> Result<()> {
        let r = self.inner.destroy_qp(qp);
        self.done(format!("destroy_qp {}", self.n("qp", qp.0)), r)
    }

    fn post_send(&self, qp: QpId, wr: &SendWr) -> Result<()> {
        let r = self.inner.post_send(qp, wr);
        let q = self.n("qp", qp.0);
        let op = match wr.op {
            SendOp::Send => "SEND".to_string(),
            SendOp::SendWithInv { rkey } => format!("SEND_INV({})", self.names.key(rkey)),
            SendOp::RdmaWrite { remote_addr, rkey } => format!(
                "RDMA_WRITE({} {})",
                self.names.addr(remote_addr),
                self.names.key(rkey)
            ),
            SendOp::RdmaRead { remote_addr, rkey } => format!(
                "RDMA_READ({} {})",
                self.names.addr(remote_addr),
                self.names.key(rkey)
            ),
        };
        let result = match &r {
            Ok(()) => String::new(),
            Err(e) => format!(" -> {}", errno_name(e)),
        };
        self.line(
            "post",
            format!("{q} {op} wr={} len={}{result}", wr.wr_id, wr.len()),
        );
        if r.is_ok() && matches!(wr.op, SendOp::Send | SendOp::SendWithInv { .. }) {
            let bytes = self.read_payload(&wr.sg_list, wr.len() as usize);
            if let Some((kind, t)) = self.describe_payload(&bytes) {
                self.line(kind, format!("-> {t}"));
            }
        }
        r
    }

    fn post_recv(&self, qp: QpId, wr: &RecvWr) -> Result<()> {
        let r = self.inner.post_recv(qp, wr);
        self.posted_recv(&self.n("qp", qp.0), wr, &r);
        r
    }

    fn poll_async_event(&self) -> Option<AsyncEvent> {
        self.inner
            .poll_async_event()
            .inspect(|e| self.describe_event(e))
    }

    async fn next_async_event(&self) -> AsyncEvent {
        let e = self.inner.next_async_event().await;
        self.describe_event(&e);
        e
    }

    fn cm_listen(&self, addr: SocketAddr) -> Result<ListenerId> {
        let r = self.inner.cm_listen(addr);
        self.done(format!("cm_listen port={}", addr.port()), r)
    }

    fn cm_close_listener(&self, listener: ListenerId) -> Result<()> {
        self.inner.cm_close_listener(listener)
    }

    fn cm_connect(&self, addr: SocketAddr, qp: QpId, param: &ConnParam) -> Result<ConnId> {
        let r = self.inner.cm_connect(addr, qp, param);
        self.call(
            format!(
                "cm_connect {} port={} {}",
                self.n("qp", qp.0),
                addr.port(),
                cm_request(&param.private_data)
            ),
            &r,
            |c| self.names.add(&self.actor, "conn", u64::from(c.0)),
        );
        r
    }

    fn cm_accept(&self, conn: ConnId, qp: QpId, param: &ConnParam) -> Result<()> {
        let r = self.inner.cm_accept(conn, qp, param);
        let c = self.names.add(&self.actor, "conn", u64::from(conn.0));
        self.done(
            format!(
                "cm_accept {c} {} {}",
                self.n("qp", qp.0),
                cm_accept(&param.private_data)
            ),
            r,
        )
    }

    fn cm_reject(&self, conn: ConnId, private_data: &[u8]) -> Result<()> {
        let r = self.inner.cm_reject(conn, private_data);
        let c = self.names.add(&self.actor, "conn", u64::from(conn.0));
        self.done(format!("cm_reject {c} {}", cm_reject(private_data)), r)
    }

    fn cm_disconnect(&self, conn: ConnId) -> Result<()> {
        let r = self.inner.cm_disconnect(conn);
        self.done(format!("cm_disconnect {}", self.n("conn", conn.0)), r)
    }

    fn cm_destroy(&self, conn: ConnId) -> Result<()> {
        self.inner.cm_destroy(conn)
    }

    fn poll_cm_event(&self) -> Option<CmEvent> {
        self.inner.poll_cm_event().inspect(|e| self.describe_cm(e))
    }

    async fn next_cm_event(&self) -> CmEvent {
        let e = self.inner.next_cm_event().await;
        self.describe_cm(&e);
        e
    }
}
