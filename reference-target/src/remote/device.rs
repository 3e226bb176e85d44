//! The device itself, served on the control channel (`open-device` … `close-device`): the
//! target host opens its device and builds on it what it serves ([`Served`]: the reference
//! engine or a vendor plugin's device), and the runner uses its device context, its offload
//! API and emulated backend controllers
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
use super::served::{Faces, Served};
use super::server::{lines, Opened};
use crate::control::config::device_ip;
use crate::engine::Engine;
use crate::quirks::Quirks;

/// An open device: what is served on it and the hosts that carry out the runner's calls.
pub struct DeviceSession {
    engine: Option<Arc<Engine>>,
    ctx: DeviceHost,
    offload: OffloadHost,
    backends: BackendHost,
    rec: Recorder,
    ip: Ipv4Addr,
    _device: Opened,
}

impl DeviceSession {
    /// What `served` is on `device`: the reference engine with `profile` (its caps already
    /// checked) and `quirks`, or the plugin's device; why not, when it does not open.
    pub fn open(
        device: Opened,
        served: &Served,
        profile: &Profile,
        quirks: &Quirks,
    ) -> Result<DeviceSession, String> {
        let ip = device_ip(device.ctx.as_ref());
        let bus = PciBus::new();
        let Faces {
            engine,
            ctx,
            provider,
        } = served.open(device.ctx.clone(), &bus, profile, quirks)?;
        let rec = Recorder::new();
        Ok(DeviceSession {
            backends: BackendHost::new(ctx.clone(), bus, Some(rec.clone())),
            ctx: DeviceHost::new(ctx),
            offload: OffloadHost::new(provider),
            engine,
            rec,
            ip,
            _device: device,
        })
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
        if let Some(engine) = &self.engine {
            engine.release_backends();
        }
        self.backends.handle(BackendCall::Release);
    }
}
