//! Async events (`ibv_get_async_event`) from the context's non-blocking descriptor,
//! awaited with `AsyncFd`. Each is acknowledged as soon as it is read (so destroying its
//! object never waits), and named by the handle of the object it concerns; events for
//! objects this context no longer has, and kinds the trait does not model (LID, P_Key,
//! GID changes, path migration), are dropped.

use super::cq::io;
use super::{raw, VerbsContext};
use crate::fabric::AsyncEvent;

impl VerbsContext {
    fn translate_event(&self, r: &raw::RawAsyncEvent) -> Option<AsyncEvent> {
        let s = self.lock();
        let qp = || {
            s.qps
                .iter()
                .find(|(_, q)| q.qp.as_ptr() as usize == r.element)
                .map(|(id, _)| *id)
        };
        let cq = || {
            s.cqs
                .iter()
                .find(|(_, c)| c.cq.as_ptr() as usize == r.element)
                .map(|(id, _)| *id)
        };
        let srq = || {
            s.srqs
                .iter()
                .find(|(_, q)| q.srq.as_ptr() as usize == r.element)
                .map(|(id, _)| *id)
        };
        let port = || u8::try_from(r.port).ok();
        Some(match r.event_type {
            0 => AsyncEvent::CqErr(cq()?),
            1 => AsyncEvent::QpFatal(qp()?),
            2 => AsyncEvent::QpReqErr(qp()?),
            3 => AsyncEvent::QpAccessErr(qp()?),
            4 => AsyncEvent::CommEst(qp()?),
            5 => AsyncEvent::SqDrained(qp()?),
            8 => AsyncEvent::DeviceFatal,
            9 => AsyncEvent::PortActive(port()?),
            10 => AsyncEvent::PortErr(port()?),
            14 => AsyncEvent::SrqErr(srq()?),
            15 => AsyncEvent::SrqLimitReached(srq()?),
            16 => AsyncEvent::QpLastWqeReached(qp()?),
            _ => return None,
        })
    }

    pub(super) fn poll_async_event_impl(&self) -> Option<AsyncEvent> {
        while let Some(r) = self.ctx.get_async_event() {
            if let Some(e) = self.translate_event(&r) {
                return Some(e);
            }
        }
        None
    }

    pub(super) async fn next_async_event_impl(&self) -> AsyncEvent {
        loop {
            if let Some(e) = self.poll_async_event_impl() {
                return e;
            }
            match self.async_fd.readable().await {
                Ok(mut guard) => {
                    if let Some(e) = self.poll_async_event_impl() {
                        return e;
                    }
                    guard.clear_ready();
                }
                Err(e) => {
                    // The descriptor cannot be watched: nothing will ever arrive.
                    tracing::error!("verbs: async event descriptor: {:?}", io(e));
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}
