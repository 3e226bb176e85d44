//! [`RemoteContext`]: a `DeviceContext` whose every call is a message over a [`Link`] to a
//! [`super::DeviceHost`], answered with the same values and the same errors the device
//! gave there.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;

use super::call::{CtxCall, CtxReply, CtxWait};
use super::Link;
use crate::fabric::{
    Access, AsyncEvent, CmEvent, ConnId, ConnParam, CqId, DeviceAttr, DeviceContext, FabricError,
    ListenerId, MrId, MrInfo, PdId, PortAttr, QpAttr, QpId, QpInfo, QpInit, QpState, RecvWr,
    Result, SendWr, SrqAttr, SrqId, SrqInit, WorkCompletion,
};

/// A device context in another process (or behind any [`Link`]).
pub struct RemoteContext {
    link: Arc<dyn Link>,
    attr: DeviceAttr,
}

/// The error of a reply that is not the one the call asks for.
fn unexpected(reply: CtxReply) -> FabricError {
    match reply {
        CtxReply::Error(e) => FabricError::from(&e),
        other => FabricError::NoDevice(format!("the remote device answered {other:?}")),
    }
}

impl RemoteContext {
    /// The event `wait` brings, as `pick` finds it in the reply; none (a broken link) means
    /// none will come: the caller's bound ends the wait.
    async fn next<T>(&self, wait: CtxWait, pick: impl FnOnce(CtxReply) -> Option<T>) -> T {
        match pick(self.link.wait(&wait).await) {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    /// The context behind `link`; its device attributes are read once, now.
    pub fn new(link: Arc<dyn Link>) -> Result<RemoteContext> {
        match link.call(&CtxCall::DeviceAttr) {
            CtxReply::DeviceAttr(attr) => Ok(RemoteContext { link, attr }),
            other => Err(unexpected(other)),
        }
    }
}

#[async_trait]
impl DeviceContext for RemoteContext {
    fn device_attr(&self) -> DeviceAttr {
        self.attr.clone()
    }
    fn port_attr(&self, port: u8) -> Result<PortAttr> {
        ask!(self, CtxCall::PortAttr { port }, CtxReply::PortAttr(a) => a)
    }
    fn alloc_pd(&self) -> Result<PdId> {
        ask!(self, CtxCall::AllocPd, CtxReply::Pd(p) => p)
    }
    fn dealloc_pd(&self, pd: PdId) -> Result<()> {
        ask!(self, CtxCall::DeallocPd { pd }, CtxReply::Done => ())
    }
    fn reg_mr(&self, pd: PdId, len: u64, access: Access) -> Result<MrInfo> {
        ask!(self, CtxCall::RegMr { pd, len, access }, CtxReply::Mr(m) => m)
    }
    fn dereg_mr(&self, mr: MrId) -> Result<()> {
        ask!(self, CtxCall::DeregMr { mr }, CtxReply::Done => ())
    }
    fn mr_write(&self, mr: MrId, offset: u64, data: &[u8]) -> Result<()> {
        let call = CtxCall::MrWrite {
            mr,
            offset,
            data: data.to_vec(),
        };
        ask!(self, call, CtxReply::Done => ())
    }
    fn mr_read(&self, mr: MrId, offset: u64, buf: &mut [u8]) -> Result<()> {
        let call = CtxCall::MrRead {
            mr,
            offset,
            len: buf.len() as u64,
        };
        match self.link.call(&call) {
            CtxReply::Bytes(b) if b.len() == buf.len() => {
                buf.copy_from_slice(&b);
                Ok(())
            }
            CtxReply::Bytes(b) => Err(FabricError::NoDevice(format!(
                "the remote device read {} bytes for {}",
                b.len(),
                buf.len()
            ))),
            other => Err(unexpected(other)),
        }
    }
    fn create_cq(&self, cqe: u32) -> Result<CqId> {
        ask!(self, CtxCall::CreateCq { cqe }, CtxReply::Cq(c) => c)
    }
    fn destroy_cq(&self, cq: CqId) -> Result<()> {
        ask!(self, CtxCall::DestroyCq { cq }, CtxReply::Done => ())
    }
    fn poll_cq(&self, cq: CqId, max: usize) -> Result<Vec<WorkCompletion>> {
        ask!(self, CtxCall::PollCq { cq, max }, CtxReply::Completions(w) => w)
    }
    async fn wait_cq(&self, cq: CqId) -> Result<()> {
        match self.link.wait(&CtxWait::Cq { cq }).await {
            CtxReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
    fn create_srq(&self, pd: PdId, init: SrqInit) -> Result<SrqId> {
        ask!(self, CtxCall::CreateSrq { pd, init }, CtxReply::Srq(s) => s)
    }
    fn arm_srq(&self, srq: SrqId, limit: u32) -> Result<()> {
        ask!(self, CtxCall::ArmSrq { srq, limit }, CtxReply::Done => ())
    }
    fn query_srq(&self, srq: SrqId) -> Result<SrqAttr> {
        ask!(self, CtxCall::QuerySrq { srq }, CtxReply::SrqAttr(a) => a)
    }
    fn destroy_srq(&self, srq: SrqId) -> Result<()> {
        ask!(self, CtxCall::DestroySrq { srq }, CtxReply::Done => ())
    }
    fn post_srq_recv(&self, srq: SrqId, wr: &RecvWr) -> Result<()> {
        let call = CtxCall::PostSrqRecv {
            srq,
            wr: wr.clone(),
        };
        ask!(self, call, CtxReply::Done => ())
    }
    fn create_qp(&self, pd: PdId, init: QpInit) -> Result<QpInfo> {
        ask!(self, CtxCall::CreateQp { pd, init }, CtxReply::Qp(q) => q)
    }
    fn modify_qp(&self, qp: QpId, attr: &QpAttr) -> Result<()> {
        ask!(self, CtxCall::ModifyQp { qp, attr: *attr }, CtxReply::Done => ())
    }
    fn query_qp(&self, qp: QpId) -> Result<QpState> {
        ask!(self, CtxCall::QueryQp { qp }, CtxReply::QpState(s) => s)
    }
    fn destroy_qp(&self, qp: QpId) -> Result<()> {
        ask!(self, CtxCall::DestroyQp { qp }, CtxReply::Done => ())
    }
    fn post_send(&self, qp: QpId, wr: &SendWr) -> Result<()> {
        ask!(self, CtxCall::PostSend { qp, wr: wr.clone() }, CtxReply::Done => ())
    }
    fn post_recv(&self, qp: QpId, wr: &RecvWr) -> Result<()> {
        ask!(self, CtxCall::PostRecv { qp, wr: wr.clone() }, CtxReply::Done => ())
    }
    fn poll_async_event(&self) -> Option<AsyncEvent> {
        match self.link.call(&CtxCall::PollAsyncEvent) {
            CtxReply::AsyncEvent(e) => e,
            _ => None,
        }
    }
    async fn next_async_event(&self) -> AsyncEvent {
        self.next(CtxWait::AsyncEvent, |r| match r {
            CtxReply::AsyncEvent(e) => e,
            _ => None,
        })
        .await
    }
    fn cm_listen(&self, addr: SocketAddr) -> Result<ListenerId> {
        ask!(self, CtxCall::CmListen { addr }, CtxReply::Listener(l) => l)
    }
    fn cm_close_listener(&self, listener: ListenerId) -> Result<()> {
        ask!(self, CtxCall::CmCloseListener { listener }, CtxReply::Done => ())
    }
    fn cm_connect(&self, addr: SocketAddr, qp: QpId, param: &ConnParam) -> Result<ConnId> {
        let call = CtxCall::CmConnect {
            addr,
            qp,
            param: param.clone(),
        };
        ask!(self, call, CtxReply::Conn(c) => c)
    }
    fn cm_accept(&self, conn: ConnId, qp: QpId, param: &ConnParam) -> Result<()> {
        let call = CtxCall::CmAccept {
            conn,
            qp,
            param: param.clone(),
        };
        ask!(self, call, CtxReply::Done => ())
    }
    fn cm_reject(&self, conn: ConnId, private_data: &[u8]) -> Result<()> {
        let call = CtxCall::CmReject {
            conn,
            private_data: private_data.to_vec(),
        };
        ask!(self, call, CtxReply::Done => ())
    }
    fn cm_disconnect(&self, conn: ConnId) -> Result<()> {
        ask!(self, CtxCall::CmDisconnect { conn }, CtxReply::Done => ())
    }
    fn cm_destroy(&self, conn: ConnId) -> Result<()> {
        ask!(self, CtxCall::CmDestroy { conn }, CtxReply::Done => ())
    }
    fn poll_cm_event(&self) -> Option<CmEvent> {
        match self.link.call(&CtxCall::PollCmEvent) {
            CtxReply::CmEvent(e) => e,
            _ => None,
        }
    }
    async fn next_cm_event(&self) -> CmEvent {
        self.next(CtxWait::CmEvent, |r| match r {
            CtxReply::CmEvent(e) => e,
            _ => None,
        })
        .await
    }
}
