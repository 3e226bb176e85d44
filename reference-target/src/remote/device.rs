//! The device itself, served on the control channel (`open-device` … `close-device`): the
//! target host opens its device and builds the reference engine on it, and the runner
//! uses the engine's device context, its offload API and emulated backend controllers
//! through the messages of [`harness::remote`], so every case of the catalog runs with the
//! device on this host.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use harness::api::Profile;
use harness::backend::emulated::PciBus;
use harness::remote::{
    BackendCall, BackendHost, CtxReply, CtxWait, DeviceHost, OffloadHost, OffloadReply,
};
use harness::trace::Recorder;

use super::proto::{Reply, Request, MAX_DEVICE_WAIT};
use super::server::{lines, Opened};
use crate::control::config::device_ip;
use crate::engine::Engine;
use crate::quirks::Quirks;

/// An open device: the engine on it and the hosts that carry out the runner's calls.
pub struct DeviceSession {
    engine: Arc<Engine>,
    ctx: DeviceHost,
    offload: OffloadHost,
    backends: BackendHost,
    rec: Recorder,
    ip: Ipv4Addr,
    _device: Opened,
}

impl DeviceSession {
    /// The reference engine with `profile` (its caps already checked) and `quirks` on
    /// `device`.
    pub fn open(device: Opened, profile: Profile, quirks: Quirks) -> DeviceSession {
        let ip = device_ip(device.ctx.as_ref());
        let bus = PciBus::new();
        let engine = Engine::with_limits(
            device.ctx.clone(),
            profile.caps,
            profile.device,
            quirks,
            bus.clone(),
        );
        let (ctx, provider) = (engine.context(), engine.provider());
        // as in one process: controllers laid out for a device that writes its doorbells in
        // memory, their BAR regions registered on the device's own context
        bus.use_access(ctx.clone(), provider.backend_access());
        let rec = Recorder::new();
        DeviceSession {
            backends: BackendHost::new(ctx.clone(), bus, Some(rec.clone())),
            ctx: DeviceHost::new(ctx),
            offload: OffloadHost::new(provider),
            engine,
            rec,
            ip,
            _device: device,
        }
    }

    /// The device's IPv4 address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Answers a device request (`ctx`, `ctx-wait`, `offload`, `offload-event`, `backend`).
    pub async fn handle(&self, req: Request) -> Reply {
        match req {
            Request::Ctx { call } => Reply::Ctx {
                answer: Some(self.ctx.handle(call)),
            },
            Request::CtxWait { wait, bound_ms } => Reply::Ctx {
                answer: self.wait(wait, bound_ms).await,
            },
            Request::Offload { call } => Reply::Offload {
                answer: self.offload.handle(call),
            },
            Request::OffloadEvent { bound_ms } => {
                let bound = Duration::from_millis(bound_ms).min(MAX_DEVICE_WAIT);
                let reply = tokio::time::timeout(bound, self.offload.next_event()).await;
                Reply::Offload {
                    answer: reply.unwrap_or(OffloadReply::Event(None)),
                }
            }
            Request::Backend { call } => Reply::Backend {
                answer: self.backends.handle(call),
            },
            _ => Reply::Error {
                message: "not a device request".into(),
            },
        }
    }

    async fn wait(&self, wait: CtxWait, bound_ms: u64) -> Option<CtxReply> {
        let bound = Duration::from_millis(bound_ms).min(MAX_DEVICE_WAIT);
        tokio::time::timeout(bound, self.ctx.wait(wait)).await.ok()
    }

    /// Releases the device (its backend controllers first: they reach host memory through
    /// it); the backend controllers' trace.
    pub fn close(self) -> Vec<String> {
        let trace = lines(&self.rec);
        drop(self);
        trace
    }
}

impl Drop for DeviceSession {
    fn drop(&mut self) {
        self.engine.release_backends();
        self.backends.handle(BackendCall::Release);
    }
}
