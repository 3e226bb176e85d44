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
use harness::backend::vfio::{FaultLine, LentController, PciAddress};
use harness::case::RealBackendFacts;
use harness::remote::{
    BackendCall, BackendHost, BackendReply, CtxReply, CtxWait, DeviceHost, OffloadHost,
    OffloadReply,
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
    backends: Arc<BackendHost>,
    rec: Recorder,
    ip: Ipv4Addr,
    _device: Opened,
}

impl DeviceSession {
    /// What `served` is on `device`: the reference engine with `profile` (its caps already
    /// checked) and `quirks`, or the plugin's device; why not, when it does not open.
    /// Its backend controllers are queue pairs of `real` when the target host lends one.
    pub fn open(
        device: Opened,
        served: &Served,
        (profile, quirks): (&Profile, &Quirks),
        real: Option<&LendsReal>,
    ) -> Result<DeviceSession, String> {
        let ip = device_ip(device.ctx.as_ref());
        let bus = PciBus::new();
        let Faces {
            engine,
            ctx,
            provider,
        } = served.open(device.ctx.clone(), &bus, profile, quirks)?;
        let rec = Recorder::new();
        let mut backends = BackendHost::new(ctx.clone(), bus, Some(rec.clone()));
        if let Some(real) = real {
            backends = backends.lending(Arc::new(real.open()?));
        }
        Ok(DeviceSession {
            backends: Arc::new(backends),
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
            // a real fault waits for the broker's answer: off the runtime's thread
            Request::Backend { call } if self.backends.lends_real() && is_real(&call) => {
                let backends = self.backends.clone();
                Reply::Backend {
                    answer: tokio::task::spawn_blocking(move || backends.handle(call))
                        .await
                        .unwrap_or_else(|e| BackendReply::Failed(format!("backend call: {e}"))),
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

/// Whether `call` may wait for the fault broker (or lift a stall through it).
fn is_real(call: &BackendCall) -> bool {
    matches!(
        call,
        BackendCall::RealInject { .. }
            | BackendCall::RealMediaErrorLba
            | BackendCall::RealLiftStall
            | BackendCall::Release
    )
}

/// The real controller a target host lends (`--backend vfio:PCI`): its address, what its
/// namespace offers, and the host's fault broker (one line for every opening of it).
pub struct LendsReal {
    /// Its PCI address.
    pub address: PciAddress,
    /// Its namespace 1's format and size, and whether the broker answers.
    pub facts: RealBackendFacts,
    /// The host's fault broker.
    pub faults: Arc<FaultLine>,
}

impl LendsReal {
    /// Opens the controller at `address` once to learn its facts (and to refuse, before
    /// any runner comes, one that cannot be lent), with `faults` for its faults.
    pub fn new(address: PciAddress, faults: Arc<FaultLine>) -> Result<LendsReal, String> {
        let lent = LentController::open_with(address, faults.clone()).map_err(|f| f.message)?;
        let facts = lent.facts().map_err(|f| f.message)?;
        Ok(LendsReal {
            address,
            facts,
            faults,
        })
    }

    /// Opens the controller for a runner's device (reset and brought up again).
    pub fn open(&self) -> Result<LentController, String> {
        LentController::open_with(self.address, self.faults.clone())
            .map_err(|f| format!("the real controller: {}", f.message))
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
