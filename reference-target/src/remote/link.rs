//! The runner's end of a device served on the control channel ([`super::device`]):
//! [`RemoteDevice`] carries the device context's, the offload API's and the backends'
//! messages of [`harness::remote`] as `ctx`, `offload` and `backend` requests, so a
//! [`RemoteContext`], a [`RemoteProvider`] and the case's backends over it are the device
//! on the other host.
//!
//! A wait (a CQ, a CM or async event, an offload event) is asked in slices of at most
//! [`SLICE`], so that the requests of other tasks get through in between; a slice's event
//! that comes after its caller stopped waiting is kept and given to the next poll or wait
//! of its kind, as the device would have kept it.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use harness::api::{OffloadEvent, Profile};
use harness::fabric::{AsyncEvent, CmEvent};
use harness::remote::error::ErrorRepr;
use harness::remote::{
    BackendCall, BackendLink, BackendReply, CtxCall, CtxReply, CtxWait, Link, OffloadCall,
    OffloadLink, OffloadReply, RemoteContext, RemoteProvider,
};

use super::client::{op_name, unexpected, RemoteError, RemoteTarget};
use super::proto::{Reply, Request};
use crate::quirks::Quirks;

/// Longest one wait request waits on the target.
pub const SLICE: Duration = Duration::from_millis(50);

/// Events that came for a waiter that had stopped waiting.
#[derive(Default)]
struct Kept {
    async_events: VecDeque<AsyncEvent>,
    cm_events: VecDeque<CmEvent>,
    offload_events: VecDeque<OffloadEvent>,
}

impl Kept {
    fn keep(&mut self, reply: Reply) {
        match reply {
            Reply::Ctx {
                answer: Some(CtxReply::AsyncEvent(Some(e))),
            } => self.async_events.push_back(e),
            Reply::Ctx {
                answer: Some(CtxReply::CmEvent(Some(e))),
            } => self.cm_events.push_back(e),
            Reply::Offload {
                answer: OffloadReply::Event(Some(e)),
            } => self.offload_events.push_back(e),
            // a CQ's wait takes nothing away
            _ => {}
        }
    }

    /// The first kept async event, as the reply that would have brought it.
    fn async_event(&mut self) -> Option<CtxReply> {
        (self.async_events.pop_front()).map(|e| CtxReply::AsyncEvent(Some(e)))
    }

    /// The first kept CM event, likewise.
    fn cm_event(&mut self) -> Option<CtxReply> {
        (self.cm_events.pop_front()).map(|e| CtxReply::CmEvent(Some(e)))
    }
}

/// The device of a remote target, opened with `open-device`; see the module docs.
pub struct RemoteDevice {
    target: Arc<RemoteTarget>,
    kept: Arc<Mutex<Kept>>,
    ip: Ipv4Addr,
    /// The outcome of `close-device`, once asked.
    closed: Mutex<Option<Result<Vec<String>, String>>>,
}

impl std::fmt::Debug for RemoteDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteDevice")
            .field("target", &self.target.addr())
            .field("ip", &self.ip)
            .finish()
    }
}

impl RemoteDevice {
    /// Opens the remote target's device with the reference engine presenting `profile` and
    /// committing `quirks`.
    pub async fn open(
        target: Arc<RemoteTarget>,
        profile: &Profile,
        quirks: &Quirks,
    ) -> Result<Arc<RemoteDevice>, RemoteError> {
        let req = Request::OpenDevice {
            profile: profile.clone(),
            quirks: quirks.clone(),
        };
        let ip = match target.call(req, target.reply_bound()).await? {
            Reply::DeviceOpened { ip } => ip,
            other => return Err(unexpected("open-device", other)),
        };
        Ok(Arc::new(RemoteDevice {
            target,
            kept: Arc::default(),
            ip,
            closed: Mutex::new(None),
        }))
    }

    /// The device's IPv4 address (where a target on it listens).
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The device as a case uses it: its context and its offload API, each call a
    /// message.
    pub fn faces(self: &Arc<Self>) -> Result<(RemoteContext, RemoteProvider), String> {
        let ctx = RemoteContext::new(self.clone()).map_err(|e| e.to_string())?;
        let provider = RemoteProvider::new(self.clone()).map_err(|e| e.to_string())?;
        Ok((ctx, provider))
    }

    /// Releases the device on the target host (blocking this thread for the reply): the
    /// trace its backend controllers wrote, or why it could not be released. Only the first
    /// call asks; later ones give its outcome again.
    pub fn close(&self) -> Result<Vec<String>, String> {
        let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
        closed
            .get_or_insert_with(|| {
                let req = Request::CloseDevice {};
                match self.target.call_blocking(req, self.target.reply_bound()) {
                    Ok(Reply::DeviceClosed { trace }) => Ok(trace),
                    Ok(other) => Err(unexpected("close-device", other).to_string()),
                    Err(e) => Err(e.to_string()),
                }
            })
            .clone()
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `req`'s reply, blocking this thread.
    fn ask(&self, req: Request) -> Result<Reply, ErrorRepr> {
        let op = op_name(&req);
        (self.target.call_blocking(req, self.target.reply_bound())).map_err(|e| broken(op, e))
    }

    /// `req`'s reply (a wait of at most [`SLICE`]); a reply that comes too late is kept.
    async fn ask_slice(&self, req: Request) -> Result<Reply, ErrorRepr> {
        let op = op_name(&req);
        let kept = self.kept.clone();
        let keep = move |reply| kept.lock().unwrap_or_else(|p| p.into_inner()).keep(reply);
        let bound = self.target.reply_bound() + SLICE;
        (self.target.call_keeping(req, bound, keep).await).map_err(|e| broken(op, e))
    }
}

/// The channel's failure as the device's: ENODEV, naming it.
fn broken(op: &str, e: RemoteError) -> ErrorRepr {
    ErrorRepr {
        errno: nix::errno::Errno::ENODEV as i32,
        reason: format!("{op}: {e}"),
    }
}

fn odd(op: &str, reply: Reply) -> ErrorRepr {
    broken(op, unexpected("device request", reply))
}

fn bound_ms() -> u64 {
    u64::try_from(SLICE.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl Link for RemoteDevice {
    fn call(&self, call: &CtxCall) -> CtxReply {
        let kept = match call {
            CtxCall::PollAsyncEvent => self.kept().async_event(),
            CtxCall::PollCmEvent => self.kept().cm_event(),
            _ => None,
        };
        if let Some(reply) = kept {
            return reply;
        }
        match self.ask(Request::Ctx { call: call.clone() }) {
            Ok(Reply::Ctx { answer: Some(a) }) => a,
            Ok(other) => CtxReply::Error(odd("ctx", other)),
            Err(e) => CtxReply::Error(e),
        }
    }

    async fn wait(&self, wait: &CtxWait) -> CtxReply {
        loop {
            let kept = match wait {
                CtxWait::AsyncEvent => self.kept().async_event(),
                CtxWait::CmEvent => self.kept().cm_event(),
                CtxWait::Cq { .. } => None,
            };
            if let Some(reply) = kept {
                return reply;
            }
            let req = Request::CtxWait {
                wait: wait.clone(),
                bound_ms: bound_ms(),
            };
            match self.ask_slice(req).await {
                Ok(Reply::Ctx { answer: Some(a) }) => return a,
                Ok(Reply::Ctx { answer: None }) => continue,
                Ok(other) => return CtxReply::Error(odd("ctx-wait", other)),
                Err(e) => return CtxReply::Error(e),
            }
        }
    }
}

#[async_trait]
impl OffloadLink for RemoteDevice {
    fn call(&self, call: &OffloadCall) -> OffloadReply {
        if *call == OffloadCall::PollEvent {
            if let Some(e) = self.kept().offload_events.pop_front() {
                return OffloadReply::Event(Some(e));
            }
        }
        match self.ask(Request::Offload { call: call.clone() }) {
            Ok(Reply::Offload { answer }) => answer,
            Ok(other) => OffloadReply::Error(odd("offload", other)),
            Err(e) => OffloadReply::Error(e),
        }
    }

    async fn next_event(&self) -> OffloadReply {
        loop {
            if let Some(e) = self.kept().offload_events.pop_front() {
                return OffloadReply::Event(Some(e));
            }
            let req = Request::OffloadEvent {
                bound_ms: bound_ms(),
            };
            match self.ask_slice(req).await {
                Ok(Reply::Offload {
                    answer: OffloadReply::Event(None),
                }) => continue,
                Ok(Reply::Offload { answer }) => return answer,
                Ok(other) => return OffloadReply::Error(odd("offload-event", other)),
                Err(e) => return OffloadReply::Error(e),
            }
        }
    }
}

impl BackendLink for RemoteDevice {
    fn call(&self, call: &BackendCall) -> BackendReply {
        match self.ask(Request::Backend { call: call.clone() }) {
            Ok(Reply::Backend { answer }) => answer,
            Ok(other) => BackendReply::Failed(odd("backend", other).reason),
            Err(e) => BackendReply::Failed(e.reason),
        }
    }
}
