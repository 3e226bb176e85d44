//! The device under test as a case sees it: the offload provider, the device context that
//! goes with it (both traced), its caps, and helpers to build valid objects so that each
//! case changes exactly one thing.

use std::sync::Arc;

use harness::api::{
    CtrlHandle, MemRef, NvmfCaps, NvmfSrq, NvmfSrqAttrs, OffloadError, OffloadProvider, Profile,
};
use harness::backend::emulated::{LbaFormat, PciBus};
use harness::capture::Capture;
use harness::fabric::{Access, DeviceContext, Fabric, MrInfo, PdId, SrqInit};
use harness::plugin::{DeviceUnderTest, Plugin, PluginError};
use harness::trace::{Names, Recorder, TracedContext, TracedProvider};
use reference_target::engine::Engine;
use reference_target::quirks::Quirks;

pub use super::backends::{Backends, RealBackend, NS_BLOCKS};
use super::failure::Failure;
pub use super::real::RealTarget;
use super::remote::{Elsewhere, Remote};
use crate::fabric::{CaseFabric, FabricChoice};
use harness::case::RealBackendFacts;
use harness::remote::BackendLink;
use reference_target::remote::RemoteDevice;

/// How a Dut reaches the emulated backend controllers of its device.
enum BackendSeam {
    /// Made in this process on the bus the device finds them on; every call through JSON
    /// text when `json` (as the control channel carries them).
    Bus { bus: Arc<PciBus>, json: bool },
    /// Made where the device is, on another host, through this link.
    Linked(Arc<dyn BackendLink>),
}

/// What a case gets; see the module docs.
pub struct Dut {
    /// The fabric (kept alive for the case).
    pub fabric: Arc<dyn Fabric>,
    /// The device context software uses with the provider (traced as `target`).
    pub ctx: Arc<dyn DeviceContext>,
    /// The provider under test (traced as `device`).
    pub provider: Arc<dyn OffloadProvider>,
    /// Its caps, read once.
    pub caps: NvmfCaps,
    /// The case's trace.
    pub rec: Recorder,
    /// Names shared by every traced object.
    pub names: Names,
    /// Backend controller factory, when the harness can make them.
    pub backends: Option<Arc<Backends>>,
    /// The reference engine, when the DUT is the reference target (fault injection).
    pub engine: Option<Arc<Engine>>,
    /// The provider without its trace wrapper, for looking behind the device (counters)
    /// without changing the case's trace.
    pub raw_provider: Arc<dyn OffloadProvider>,
    /// Quirks of the reference control plane a case may start over this device (on the
    /// reference target, the engine's own quirks are these too).
    pub quirks: Quirks,
    /// Whether the Dut's objects, and the hosts its helpers make, are traced (always, but
    /// for benchmarks: see [`Dut::untraced`]).
    pub traced: bool,
    /// The device hosts open on [`Dut::fabric`] (`sim1`; on verbs the target's own).
    pub host_device: String,
    /// The address the target listens on: its device's IPv4 address.
    pub target_ip: std::net::Ipv4Addr,
    /// Two-host mode: the target is in another process, behind this control channel
    /// ([`super::remote`]).
    pub remote: Option<Remote>,
    /// The real controller the reference target of a control-plane case opens itself
    /// (`nvmf-conform run --backend vfio:PCI`, area `recovery`).
    pub real_target: Option<Arc<RealTarget>>,
}

impl Dut {
    /// The reference target with `profile` and `quirks` on a fresh simulated fabric.
    /// Must be called inside a tokio runtime.
    pub fn reference(seed: u64, profile: &Profile, quirks: Quirks) -> Dut {
        Dut::reference_captured(seed, profile, quirks, None)
    }

    /// [`Dut::reference`], with the fabric's traffic recorded into `capture` when given.
    pub fn reference_captured(
        seed: u64,
        profile: &Profile,
        quirks: Quirks,
        capture: Option<&Capture>,
    ) -> Dut {
        Dut::build(seed, profile, quirks, capture, true)
    }

    /// [`Dut::reference`] without traces (the recorder stays empty): what the benchmarks
    /// measure, so that the figures are the engine's and the fabric's, not the tracer's.
    pub fn untraced(seed: u64, profile: &Profile, quirks: Quirks) -> Dut {
        Dut::build(seed, profile, quirks, None, false)
    }

    fn build(
        seed: u64,
        profile: &Profile,
        quirks: Quirks,
        capture: Option<&Capture>,
        traced: bool,
    ) -> Dut {
        let place = FabricChoice::Sim
            .for_case(seed)
            .expect("the simulated fabric always builds");
        Dut::reference_on(place, profile, quirks, capture, traced).expect("sim0 exists")
    }

    /// The reference target with `profile` and `quirks` on `place` (see
    /// [`crate::fabric`]), traced when `traced`; `capture` records a simulated fabric's
    /// traffic. Fails when the target's device does not open. Must be called inside a
    /// tokio runtime (one with I/O enabled on verbs).
    pub fn reference_on(
        place: CaseFabric,
        profile: &Profile,
        quirks: Quirks,
        capture: Option<&Capture>,
        traced: bool,
    ) -> Result<Dut, Failure> {
        Dut::reference_with(place, profile, quirks, capture, traced, false)
    }

    /// [`Dut::reference_on`], traced, with the engine's device context and provider
    /// reached only by messages ([`harness::remote::LocalLink`]: every call and reply
    /// written as JSON and parsed back, as two-host mode carries them): what
    /// `Options::message_link` runs.
    pub fn reference_linked(
        place: CaseFabric,
        profile: &Profile,
        quirks: Quirks,
        capture: Option<&Capture>,
    ) -> Result<Dut, Failure> {
        Dut::reference_with(place, profile, quirks, capture, true, true)
    }

    fn reference_with(
        place: CaseFabric,
        profile: &Profile,
        quirks: Quirks,
        capture: Option<&Capture>,
        traced: bool,
        linked: bool,
    ) -> Result<Dut, Failure> {
        let real = place
            .open_target(capture)
            .map_err(|e| Failure::new(format!("{}: {e}", place.target_device)))?;
        let bus = PciBus::new();
        let engine = Engine::with_limits(
            real,
            profile.caps.clone(),
            profile.device,
            quirks.clone(),
            bus.clone(),
        );
        let device = if linked {
            harness::remote::LocalLink::device(engine.context(), engine.provider())
                .map_err(|e| Failure::new(format!("the device through messages: {e}")))?
        } else {
            (engine.context(), engine.provider())
        };
        let seam = BackendSeam::Bus { bus, json: linked };
        Ok(Dut::over(place, seam, device, Some(engine), quirks, traced))
    }

    /// A vendor plugin's device on a fresh simulated fabric: the plugin gets `sim0` as its
    /// lower device and the Dut's PCI bus, with `config` (see `docs/vendor-guide.md`);
    /// `quirks` are the control plane's, for cases that start it. Must be called inside a
    /// tokio runtime.
    pub fn plugin(
        seed: u64,
        plugin: &Plugin,
        config: &str,
        quirks: Quirks,
        capture: Option<&Capture>,
    ) -> Result<Dut, PluginError> {
        let place = FabricChoice::Sim
            .for_case(seed)
            .expect("the simulated fabric always builds");
        Dut::plugin_on(place, plugin, config, quirks, capture)
    }

    /// [`Dut::plugin`] with the plugin's lower device on `place`'s target device.
    pub fn plugin_on(
        place: CaseFabric,
        plugin: &Plugin,
        config: &str,
        quirks: Quirks,
        capture: Option<&Capture>,
    ) -> Result<Dut, PluginError> {
        let real = place
            .open_target(capture)
            .map_err(|e| PluginError::OpenFailed {
                path: plugin.path().to_path_buf(),
                errno: e.errno(),
                reason: Some(format!("lower device {}: {e}", place.target_device)),
            })?;
        let bus = PciBus::new();
        let device = plugin.open(real, bus.clone(), config)?;
        let seam = BackendSeam::Bus { bus, json: false };
        Ok(Dut::over(place, seam, device, None, quirks, true))
    }

    /// The Dut over a device's context and provider (traced when `traced`), its emulated
    /// backends reached as `seam` says.
    fn over(
        place: CaseFabric,
        seam: BackendSeam,
        (raw_ctx, raw_provider): DeviceUnderTest,
        engine: Option<Arc<Engine>>,
        quirks: Quirks,
        traced: bool,
    ) -> Dut {
        if let BackendSeam::Bus { bus, .. } = &seam {
            // A device that writes its doorbells in memory gets controllers laid out for
            // it; their BAR regions are registered on its own context (the backend's,
            // untraced).
            bus.use_access(raw_ctx.clone(), raw_provider.backend_access());
        }
        let rec = Recorder::new();
        let names = Names::new();
        let (ctx, provider): (Arc<dyn DeviceContext>, Arc<dyn OffloadProvider>) = if traced {
            (
                TracedContext::new(raw_ctx, "target", rec.clone(), names.clone()),
                TracedProvider::new(
                    raw_provider.clone(),
                    "device",
                    "target",
                    rec.clone(),
                    names.clone(),
                ),
            )
        } else {
            (raw_ctx, raw_provider.clone())
        };
        let target_ip = reference_target::control::config::device_ip(ctx.as_ref());
        Dut {
            fabric: place.fabric,
            host_device: place.host_device,
            target_ip,
            caps: provider.caps(),
            backends: Some(Arc::new(match seam {
                BackendSeam::Bus { bus, json } => {
                    Backends::emulated(ctx.clone(), bus, traced.then(|| rec.clone()), json)
                }
                BackendSeam::Linked(link) => Backends::linked(ctx.clone(), link),
            })),
            ctx,
            provider,
            rec,
            names,
            engine,
            raw_provider,
            quirks,
            traced,
            remote: None,
            real_target: None,
        }
    }

    /// Whether the device injects its own backend PCI errors (ABI 2 `inject_pci_error`):
    /// asked, untraced, with a handle that names no controller, which such a device
    /// refuses with EINVAL and any other with EOPNOTSUPP.
    pub fn pci_error_hook(&self) -> bool {
        let none = harness::api::CtrlHandle(u32::MAX);
        matches!(
            self.raw_provider.inject_pci_error(none),
            Err(harness::api::OffloadError::Invalid(_))
        )
    }

    /// `ctx` as `actor` in the Dut's trace (as it is when the Dut is untraced).
    pub fn traced_as(&self, ctx: Arc<dyn DeviceContext>, actor: &str) -> Arc<dyn DeviceContext> {
        if self.traced {
            TracedContext::new(ctx, actor, self.rec.clone(), self.names.clone())
        } else {
            ctx
        }
    }

    /// A protection domain.
    pub fn pd(&self) -> Result<PdId, Failure> {
        Ok(self.ctx.alloc_pd()?)
    }

    /// A staging length the caps accept and that holds two largest I/Os.
    pub fn staging_len(&self) -> u64 {
        Dut::staging_len_for(&self.caps)
    }

    /// [`Dut::staging_len`] for a device with `caps`.
    pub fn staging_len_for(caps: &NvmfCaps) -> u64 {
        reference_target::control::config::default_staging_len(caps)
    }

    /// A registered staging buffer of `len` bytes.
    pub fn staging(&self, pd: PdId, len: u64) -> Result<MrInfo, Failure> {
        Ok(self.ctx.reg_mr(pd, len, Access::LOCAL_WRITE)?)
    }

    /// Valid SRQ attributes within the caps, over the whole of `staging`.
    pub fn srq_attrs(&self, staging: &MrInfo) -> NvmfSrqAttrs {
        let c = &self.caps;
        NvmfSrqAttrs {
            rq: SrqInit::new(64),
            offload_ops: c.allowed_offload_ops(),
            max_namespaces: c.max_srq_namespaces,
            nvme_log_page_sz: 0,
            ioccsz: c.min_ioccsz.max(4),
            icdoff: 0,
            max_io_sz: c.max_io_sz,
            nvme_queue_depth: 32.clamp(c.min_nvme_queue_depth, c.max_nvme_queue_depth),
            staging_buf: MemRef::of(staging, 0, staging.len),
        }
    }

    /// A valid NVMe-oF SRQ with its PD, staging buffer and attributes.
    pub fn srq(&self) -> Result<(PdId, MrInfo, NvmfSrqAttrs, NvmfSrq), Failure> {
        let (pd, staging, attrs) = self.srq_inputs()?;
        let srq = self.provider.create_srq(pd, &attrs)?;
        Ok((pd, staging, attrs, srq))
    }

    /// What [`Dut::srq`] creates its SRQ with: a PD, a staging buffer, valid attributes.
    pub fn srq_inputs(&self) -> Result<(PdId, MrInfo, NvmfSrqAttrs), Failure> {
        let pd = self.pd()?;
        let staging = self.staging(pd, self.staging_len())?;
        let attrs = self.srq_attrs(&staging);
        Ok((pd, staging, attrs))
    }

    /// The backend factory, or a failure naming the missing need.
    pub fn backends(&self) -> Result<&Arc<Backends>, Failure> {
        self.backends
            .as_ref()
            .ok_or_else(|| Failure::new("no backend factory (case should need Backends)"))
    }

    /// A valid backend controller on `srq` with one namespace (nsid 1, 4096-byte blocks
    /// or the first supported size).
    pub fn ctrl(
        &self,
        pd: PdId,
        staging: &MrInfo,
        attrs: &NvmfSrqAttrs,
        srq: &NvmfSrq,
    ) -> Result<CtrlHandle, Failure> {
        let a = self
            .backends()?
            .create(pd, attrs, staging, 1, &[(1, self.ns_format())])?;
        Ok(self.provider.create_nvme_ctrl(srq.handle, &a)?)
    }

    /// The LBA format of harness-made namespaces: 4096 when supported, else the first one
    /// No offload event arrives within 200 ms (scaled by [`super::wait::wait`]): `what` (say, a
    /// backend's error status) must raise none. Checked under `requirement`.
    pub async fn no_event(&self, requirement: &'static str, what: &str) -> Result<(), Failure> {
        let _rule = super::blame::under(requirement);
        let quiet = super::wait::wait(std::time::Duration::from_millis(200));
        match tokio::time::timeout(quiet, self.provider.next_event()).await {
            Err(_) => Ok(()),
            Ok(ev) => Err(Failure::new(format!("{what} raised the event {ev}"))),
        }
    }

    /// the device supports that the backend can emulate; on a real controller, the format
    /// of its namespace 1.
    pub fn ns_format(&self) -> LbaFormat {
        if let Some(real) = self.real_backend_facts() {
            return real.format;
        }
        LbaFormat::SUPPORTED
            .into_iter()
            .find(|f| f.lba_data_size() == 4096 && self.caps.supports_lba_data_size(4096))
            .or_else(|| {
                LbaFormat::SUPPORTED
                    .into_iter()
                    .find(|f| self.caps.supports_lba_data_size(f.lba_data_size()))
            })
            .unwrap_or(LbaFormat::L4096)
    }
}

impl Dut {
    /// Makes every backend controller a queue pair of `real` from now on (`nvmf-conform
    /// run --backend vfio:PCI`).
    pub fn use_real_backend(&mut self, real: Arc<RealBackend>) -> Result<(), Failure> {
        let backends = self
            .backends()
            .map_err(|_| Failure::new("this device under test has no backend seam"))?;
        self.backends = Some(Arc::new(backends.with_real(real)?));
        Ok(())
    }

    /// Leaves `real` to the reference target a control-plane case starts: the case writes
    /// it into its configuration ([`Dut::real_target`]).
    pub fn use_real_target(&mut self, real: RealTarget) {
        self.real_target = Some(Arc::new(real));
    }

    /// The real controller's facts, when the backends are its queue pairs or the case's
    /// reference target opens it.
    pub fn real_backend_facts(&self) -> Option<RealBackendFacts> {
        if let Some(t) = &self.real_target {
            return Some(t.facts());
        }
        self.backends
            .as_ref()
            .and_then(|b| b.real())
            .and_then(|r| r.facts().ok())
    }
}

impl Drop for Dut {
    /// Lets go of the backend controllers, which reach host memory through the device and
    /// so hold it: a real device's resources are freed once the case is over.
    fn drop(&mut self) {
        // A stall on a real controller first: QEMU's controller deletes a queue only once
        // every request it holds has finished, and the engine's release deletes them.
        if let Some(t) = &self.real_target {
            t.lift_stall();
        }
        if let Some(r) = self.backends.as_ref().and_then(|b| b.real()) {
            r.lift_stall();
        }
        if let Some(e) = &self.engine {
            e.release_backends();
        }
        if let Some(b) = &self.backends {
            b.release();
        }
        // a device served by a remote target: released there (its backends' trace kept)
        if let Some(d) = self.remote.as_ref().and_then(|r| r.device.as_ref()) {
            let _ = d.close();
        }
    }
}

pub use harness::case::expect_errno;

/// Fails unless `r` succeeded.
pub fn expect_ok<T>(r: Result<T, OffloadError>, what: &str) -> Result<T, Failure> {
    if r.is_ok() {
        super::blame::count();
    }
    r.map_err(|e| {
        Failure::new(format!(
            "{what}: expected success, got {:?} ({e})",
            e.errno()
        ))
    })
}

impl Dut {
    /// The Dut of two-host mode: hosts on `place`'s host device, the target behind
    /// `remote`. With `device`, the remote target's device itself is opened and used
    /// through the channel (context, offload API, backends: traced here as in one process);
    /// without (a control-plane case, which starts a target there itself), the provider is
    /// [`Elsewhere`].
    pub async fn remote(
        place: CaseFabric,
        mut remote: Remote,
        device: bool,
    ) -> Result<Dut, Failure> {
        if device {
            let d = RemoteDevice::open(remote.target.clone(), &remote.profile, &remote.quirks)
                .await
                .map_err(|e| Failure::new(format!("the remote target's device: {e}")))?;
            let (ctx, provider) = d.faces().map_err(Failure::new)?;
            let quirks = remote.quirks.clone();
            remote.device = Some(d.clone());
            let mut dut = Dut::over(
                place,
                BackendSeam::Linked(d),
                (Arc::new(ctx), Arc::new(provider)),
                None,
                quirks,
                true,
            );
            dut.remote = Some(remote);
            return Ok(dut);
        }
        let host = place
            .fabric
            .open(&place.host_device)
            .map_err(|e| Failure::new(format!("{}: {e}", place.host_device)))?;
        let provider: Arc<dyn OffloadProvider> =
            Arc::new(Elsewhere::new(remote.profile.caps.clone()));
        Ok(Dut {
            fabric: place.fabric,
            ctx: host,
            caps: remote.profile.caps.clone(),
            rec: Recorder::new(),
            names: Names::new(),
            backends: None,
            engine: None,
            raw_provider: provider.clone(),
            provider,
            quirks: remote.quirks.clone(),
            traced: true,
            host_device: place.host_device,
            // the target's own address comes with each start
            target_ip: std::net::Ipv4Addr::UNSPECIFIED,
            remote: Some(remote),
            real_target: None,
        })
    }
}
