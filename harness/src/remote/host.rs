//! The host's end of a remote device context: [`DeviceHost`] carries each call out on the
//! real device context, and each wait, and turns the answer into a [`CtxReply`].

use std::sync::Arc;

use super::call::{CtxCall, CtxReply, CtxWait};
use super::error::ErrorRepr;
use crate::fabric::{DeviceContext, Result};

/// Serves calls on one device context.
pub struct DeviceHost {
    ctx: Arc<dyn DeviceContext>,
}

/// The reply of a call: its value as `ok` says, or its error.
fn reply<T>(r: Result<T>, ok: impl FnOnce(T) -> CtxReply) -> CtxReply {
    super::answer(r, ok, CtxReply::Error)
}

fn done(r: Result<()>) -> CtxReply {
    reply(r, |()| CtxReply::Done)
}

impl DeviceHost {
    /// A host serving `ctx`.
    pub fn new(ctx: Arc<dyn DeviceContext>) -> DeviceHost {
        DeviceHost { ctx }
    }

    /// Carries out `call`.
    pub fn handle(&self, call: CtxCall) -> CtxReply {
        let c = &self.ctx;
        match call {
            CtxCall::DeviceAttr => CtxReply::DeviceAttr(c.device_attr()),
            CtxCall::PortAttr { port } => reply(c.port_attr(port), CtxReply::PortAttr),
            CtxCall::AllocPd => reply(c.alloc_pd(), CtxReply::Pd),
            CtxCall::DeallocPd { pd } => done(c.dealloc_pd(pd)),
            CtxCall::RegMr { pd, len, access } => reply(c.reg_mr(pd, len, access), CtxReply::Mr),
            CtxCall::DeregMr { mr } => done(c.dereg_mr(mr)),
            CtxCall::MrWrite { mr, offset, data } => done(c.mr_write(mr, offset, &data)),
            CtxCall::MrRead { mr, offset, len } => {
                let Ok(len) = usize::try_from(len) else {
                    return CtxReply::Error(ErrorRepr {
                        errno: nix::errno::Errno::EINVAL as i32,
                        reason: "len".into(),
                    });
                };
                let mut buf = vec![0u8; len];
                reply(c.mr_read(mr, offset, &mut buf), |()| CtxReply::Bytes(buf))
            }
            CtxCall::CreateCq { cqe } => reply(c.create_cq(cqe), CtxReply::Cq),
            CtxCall::DestroyCq { cq } => done(c.destroy_cq(cq)),
            CtxCall::PollCq { cq, max } => reply(c.poll_cq(cq, max), CtxReply::Completions),
            CtxCall::CreateSrq { pd, init } => reply(c.create_srq(pd, init), CtxReply::Srq),
            CtxCall::ArmSrq { srq, limit } => done(c.arm_srq(srq, limit)),
            CtxCall::QuerySrq { srq } => reply(c.query_srq(srq), CtxReply::SrqAttr),
            CtxCall::DestroySrq { srq } => done(c.destroy_srq(srq)),
            CtxCall::PostSrqRecv { srq, wr } => done(c.post_srq_recv(srq, &wr)),
            CtxCall::CreateQp { pd, init } => reply(c.create_qp(pd, init), CtxReply::Qp),
            CtxCall::ModifyQp { qp, attr } => done(c.modify_qp(qp, &attr)),
            CtxCall::QueryQp { qp } => reply(c.query_qp(qp), CtxReply::QpState),
            CtxCall::DestroyQp { qp } => done(c.destroy_qp(qp)),
            CtxCall::PostSend { qp, wr } => done(c.post_send(qp, &wr)),
            CtxCall::PostRecv { qp, wr } => done(c.post_recv(qp, &wr)),
            CtxCall::PollAsyncEvent => CtxReply::AsyncEvent(c.poll_async_event()),
            CtxCall::CmListen { addr } => reply(c.cm_listen(addr), CtxReply::Listener),
            CtxCall::CmCloseListener { listener } => done(c.cm_close_listener(listener)),
            CtxCall::CmConnect { addr, qp, param } => {
                reply(c.cm_connect(addr, qp, &param), CtxReply::Conn)
            }
            CtxCall::CmAccept { conn, qp, param } => done(c.cm_accept(conn, qp, &param)),
            CtxCall::CmReject { conn, private_data } => done(c.cm_reject(conn, &private_data)),
            CtxCall::CmDisconnect { conn } => done(c.cm_disconnect(conn)),
            CtxCall::CmDestroy { conn } => done(c.cm_destroy(conn)),
            CtxCall::PollCmEvent => CtxReply::CmEvent(c.poll_cm_event()),
        }
    }

    /// Waits as `wait` says (unbounded: the caller bounds it).
    pub async fn wait(&self, wait: CtxWait) -> CtxReply {
        match wait {
            CtxWait::Cq { cq } => done(self.ctx.wait_cq(cq).await),
            CtxWait::AsyncEvent => CtxReply::AsyncEvent(Some(self.ctx.next_async_event().await)),
            CtxWait::CmEvent => CtxReply::CmEvent(Some(self.ctx.next_cm_event().await)),
        }
    }
}
