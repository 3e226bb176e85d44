//! The reference target's control plane over the device under test, and a host to talk to
//! it: what the `connect` and `security` areas start from.
//!
//! [`Dut::target`] starts [`Target`] (Connect, admin queue, software I/O path, event
//! reactions) from a configuration's text on the Dut's device (`sim0` of the Dut's
//! fabric, or the verbs device; ports written with `sim0`'s address listen on the
//! device's own) with [`Target::start_on`], over the Dut's own engine, traced device context
//! and provider (`target` and `device` in the case's trace), so the trace shows every call
//! the control plane makes; its backend controllers go on the Dut's emulated PCIe bus.
//!
//! The returned [`TargetRig`] holds a traced host (on `sim1`, or the verbs device) and helpers for the usual host
//! steps (connect and enable a controller, a CM-only queue, a raw Connect, a CM request
//! expected to be rejected) and for looking behind the target (engine counters, backend
//! counters and blocks, software I/O count). Cases using it declare
//! [`super::Need::ControlPlane`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use harness::api::{NsCounters, NvmfCaps, OffloadProvider};
use harness::backend::emulated::{BackendController, Fault, LbaFormat};
use harness::backend::vfio::PciAddress;
use harness::fabric::sim::SIM0_ADDR;
use harness::fabric::DeviceContext;
use harness::initiator::connect::{self, cm_establish, CmOptions, ConnectOptions};
use harness::initiator::{misbehave, Controller, HostConfig, HostQueue, InitiatorError, QueueSpec};
use harness::wire::{
    connect_data_field, fabrics_field, CmRejectStatus, ConnectDataRepr, ConnectResponse, CqeRepr,
    InvalidParam, PropertySize, Status,
};
use reference_target::control::{Config, Target};
use reference_target::remote::{RemoteError, RemoteTarget};

use super::dut::{Dut, RealTarget};
use super::failure::Failure;

/// The first subsystem of the configurations below (port [`PORT_A`]).
pub const SUB_A: &str = "nqn.2026-11.io.nvmf-conform:sub0";
/// The second subsystem of [`two_subsystems`] (port [`PORT_B`]).
pub const SUB_B: &str = "nqn.2026-11.io.nvmf-conform:sub1";
/// The host NQN the allow-lists name (the initiator's default).
pub const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7374";
/// A second allowed host of [`one_subsystem`].
pub const HOSTNQN_2: &str = "nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7332";
/// A host no allow-list names.
pub const STRANGER: &str = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-00000000dead";
/// Port of [`SUB_A`].
pub const PORT_A: u16 = 4420;
/// Port of [`SUB_B`].
pub const PORT_B: u16 = 4421;
/// Bound of every wait of the helpers (virtual time on sim).
pub const BOUND: Duration = Duration::from_secs(10);
/// Blocks of every namespace of the configurations below.
pub const NS_BLOCKS: u64 = 256;

/// IPO of Connect Invalid Parameters naming the SQE's QID.
pub const IPO_QID: InvalidParam = InvalidParam::sqe(fabrics_field::CONNECT_QID.start);
/// IPO naming the SQE's SQSIZE.
pub const IPO_SQSIZE: InvalidParam = InvalidParam::sqe(fabrics_field::CONNECT_SQSIZE.start);
/// IPO naming the Connect data's CNTLID (IATTR 1).
pub const IPO_CNTLID: InvalidParam = InvalidParam::data(connect_data_field::CNTLID.start);
/// IPO naming the Connect data's SUBNQN (IATTR 1).
pub const IPO_SUBNQN: InvalidParam = InvalidParam::data(connect_data_field::SUBNQN.start);

fn format_name(f: LbaFormat) -> String {
    if f.meta == 0 {
        f.data.to_string()
    } else {
        format!("{}+{}", f.data, f.meta)
    }
}

/// The `[[subsystem]]` table of `nqn` allowing [`HOSTNQN`] and [`HOSTNQN_2`], queue depth 64,
/// with namespaces `nsids` of [`NS_BLOCKS`] blocks in `format`.
pub fn subsystem(nqn: &str, nsids: &[u32], format: LbaFormat) -> String {
    let namespaces: Vec<(u32, LbaFormat)> = nsids.iter().map(|&n| (n, format)).collect();
    subsystem_formats(nqn, &namespaces)
}

/// The `[[subsystem]]` table of `nqn` like [`subsystem`], each namespace `(nsid, format)`
/// of [`NS_BLOCKS`] blocks in its own format.
pub fn subsystem_formats(nqn: &str, namespaces: &[(u32, LbaFormat)]) -> String {
    let mut s = format!(
        "[[subsystem]]\nnqn = \"{nqn}\"\nhosts = [\"{HOSTNQN}\", \"{HOSTNQN_2}\"]\nqueue_depth = 64\n"
    );
    for (n, format) in namespaces {
        s.push_str(&format!(
            "\n[[subsystem.namespace]]\nnsid = {n}\nsize = {}\nlba_format = \"{}\"\n",
            NS_BLOCKS * u64::from(format.data),
            format_name(*format)
        ));
    }
    s
}

/// One subsystem [`SUB_A`] on [`PORT_A`], offloaded, with namespaces `(nsid, format)`.
pub fn one_subsystem_formats(namespaces: &[(u32, LbaFormat)]) -> String {
    format!(
        "[[port]]\naddr = \"{SIM0_ADDR}:{PORT_A}\"\nsubsystem = \"{SUB_A}\"\n\n{}",
        subsystem_formats(SUB_A, namespaces)
    )
}

/// One subsystem [`SUB_A`] on port [`PORT_A`], allowing [`HOSTNQN`] and [`HOSTNQN_2`],
/// with namespace 1 in `format`.
pub fn one_subsystem(format: LbaFormat) -> String {
    format!(
        "[[port]]\naddr = \"{}:{PORT_A}\"\nsubsystem = \"{SUB_A}\"\n\n{}",
        SIM0_ADDR,
        subsystem(SUB_A, &[1], format)
    )
}

/// One subsystem [`SUB_A`] on [`PORT_A`] like [`one_subsystem`], served from the real
/// controller at `pci` (`[subsystem.backend] kind = "vfio"`: its namespaces are the
/// controller's).
pub fn one_subsystem_on_vfio(pci: PciAddress) -> String {
    format!(
        "[[port]]\naddr = \"{SIM0_ADDR}:{PORT_A}\"\nsubsystem = \"{SUB_A}\"\n\n\
         [[subsystem]]\nnqn = \"{SUB_A}\"\nhosts = [\"{HOSTNQN}\", \"{HOSTNQN_2}\"]\n\
         queue_depth = 64\n\n[subsystem.backend]\nkind = \"vfio\"\npci = \"{pci}\"\n"
    )
}

/// What a subsystem's maximum data transfer size is unless its `mdts` sets it: 1 MiB.
pub const MDTS_DEFAULT: u64 = 1 << 20;

/// The maximum data transfer size (bytes) the reference target advertises, and serves,
/// for a subsystem with `mdts` configured (`None`: [`MDTS_DEFAULT`]), as `docs/target.md`
/// states it: that size, except that an offloaded subsystem on a device without
/// non-offloaded ops advertises no more than `max_io_sz` (down to a power of two).
pub fn advertised_mdts(caps: &NvmfCaps, offload: bool, mdts: Option<u64>) -> u64 {
    let configured = mdts.unwrap_or(MDTS_DEFAULT);
    if offload && !caps.supports_non_offloaded_ops {
        let mut floor = 4096;
        while floor * 2 <= u64::from(caps.max_io_sz) {
            floor *= 2;
        }
        configured.min(floor)
    } else {
        configured
    }
}

/// [`one_subsystem_with`] namespace 1 only, of `blocks` blocks, and `mdts = "..."` when
/// `mdts` is given.
pub fn one_subsystem_sized(
    format: LbaFormat,
    offload: bool,
    blocks: u64,
    mdts: Option<&str>,
) -> String {
    let size = |n: u64| format!("size = {}\n", n * u64::from(format.data));
    let mdts = mdts
        .map(|m| format!("mdts = \"{m}\"\n"))
        .unwrap_or_default();
    one_subsystem_with(&[1], format, offload)
        .replacen(&size(NS_BLOCKS), &size(blocks), 1)
        .replacen(
            "queue_depth = 64\n",
            &format!("queue_depth = 64\n{mdts}"),
            1,
        )
}

/// One subsystem [`SUB_A`] on [`PORT_A`] like [`one_subsystem`], with namespaces `nsids`;
/// when `offload` is false its I/O queues are never offloaded (software serves all I/O).
pub fn one_subsystem_with(nsids: &[u32], format: LbaFormat, offload: bool) -> String {
    let sub = subsystem(SUB_A, nsids, format).replacen(
        "queue_depth = 64\n",
        &format!("queue_depth = 64\noffload = {offload}\n"),
        1,
    );
    format!("[[port]]\naddr = \"{SIM0_ADDR}:{PORT_A}\"\nsubsystem = \"{SUB_A}\"\n\n{sub}")
}

/// One subsystem [`SUB_A`] on [`PORT_A`] without offload, whose namespace 1 of `blocks`
/// blocks in `format` is stored in the file `path` (created if absent).
pub fn one_subsystem_on_file(path: &std::path::Path, blocks: u64, format: LbaFormat) -> String {
    format!(
        "[[port]]\naddr = \"{SIM0_ADDR}:{PORT_A}\"\nsubsystem = \"{SUB_A}\"\n\n\
         [[subsystem]]\nnqn = \"{SUB_A}\"\nhosts = [\"{HOSTNQN}\", \"{HOSTNQN_2}\"]\n\
         queue_depth = 64\noffload = false\n\n[[subsystem.namespace]]\nnsid = 1\n\
         backing = \"file:{}\"\nsize = {}\nlba_format = \"{}\"\n",
        path.display(),
        blocks * u64::from(format.data),
        format_name(format)
    )
}

/// Two subsystems on two ports: [`SUB_A`] (namespace 1) on [`PORT_A`], [`SUB_B`]
/// (namespaces 1 and 2) on [`PORT_B`]; both allow [`HOSTNQN`] and [`HOSTNQN_2`].
pub fn two_subsystems(format: LbaFormat) -> String {
    let ip = SIM0_ADDR;
    format!(
        "[[port]]\naddr = \"{ip}:{PORT_A}\"\nsubsystem = \"{SUB_A}\"\n\n\
         [[port]]\naddr = \"{ip}:{PORT_B}\"\nsubsystem = \"{SUB_B}\"\n\n{}\n{}",
        subsystem(SUB_A, &[1], format),
        subsystem(SUB_B, &[1, 2], format)
    )
}

/// The running control plane of a case and its host; see the module docs.
pub struct TargetRig {
    /// First, so that it drops before the target: lifts a stall left on a real controller
    /// the target holds (QEMU's controller would wait for the stalled request forever
    /// when the target deletes its queues).
    _lift: Option<LiftStall>,
    /// Where the target runs.
    side: Side,
    /// The host's device context (`sim1` or the verbs device, traced as `host`).
    pub host: Arc<dyn DeviceContext>,
    /// The address the target listens on.
    pub ip: std::net::Ipv4Addr,
}

/// Lifts a stall left on the real controller when dropped.
struct LiftStall(Arc<RealTarget>);

impl Drop for LiftStall {
    fn drop(&mut self) {
        self.0.lift_stall();
    }
}

/// Where a case's target runs.
enum Side {
    /// In this process, with the device's untraced provider (reading counters leaves the
    /// case's trace alone).
    Local {
        target: Target,
        provider: Arc<dyn OffloadProvider>,
    },
    /// Behind the control channel of two-host mode ([`super::remote`]).
    Remote(Arc<RemoteTarget>),
}

fn remote_failure(e: RemoteError) -> Failure {
    Failure::new(e.to_string())
}

impl Dut {
    /// Starts the reference control plane with the configuration `config_toml` over the
    /// Dut's device (see the module docs). Subsystems without `staging_buf` get one the
    /// caps accept; the config's profile is ignored (the Dut's caps are used).
    pub async fn target(&self, config_toml: &str) -> Result<TargetRig, Failure> {
        let mut config = Config::parse("<case config>", config_toml)
            .map_err(|e| Failure::from(e).context("case config"))?;
        if let Some(r) = &self.remote {
            let ip = r
                .target
                .start(config_toml, &r.profile, &r.quirks)
                .await
                .map_err(|e| Failure::from(e).context("the remote target did not start"))?;
            let host = self.traced_as(self.fabric.open(&self.host_device)?, "host");
            return Ok(TargetRig {
                _lift: None,
                side: Side::Remote(r.target.clone()),
                host,
                ip,
            });
        }
        config.place(self.target_ip, self.staging_len());
        let bus = self.backends()?.bus()?.clone();
        let (ctx, provider) = (self.ctx.clone(), self.provider.clone());
        let target = match &self.engine {
            Some(engine) => Target::start_on(engine.clone(), bus, ctx, provider, config),
            None => {
                config.quirks = self.quirks.clone();
                Target::start_on_device(bus, ctx, provider, config)
            }
        }
        .map_err(|e| Failure::from(e).context("the control plane did not start"))?;
        let host = self.traced_as(self.fabric.open(&self.host_device)?, "host");
        Ok(TargetRig {
            _lift: self.real_target.clone().map(LiftStall),
            side: Side::Local {
                target,
                provider: self.raw_provider.clone(),
            },
            host,
            ip: self.target_ip,
        })
    }

    /// [`Dut::target`] with [`one_subsystem`] in the Dut's namespace format.
    pub async fn target_one(&self) -> Result<TargetRig, Failure> {
        self.target(&one_subsystem(self.ns_format())).await
    }
}

/// A host configuration for `subnqn` as [`HOSTNQN`], with this module's bounds.
pub fn host_config(subnqn: &str) -> HostConfig {
    let mut c = HostConfig::new(subnqn);
    c.hostnqn = HOSTNQN.into();
    c.command_bound = super::wait::wait(Duration::from_secs(5));
    c.cm_bound = super::wait::wait(Duration::from_secs(5));
    c
}

/// Fails unless `cqe`'s whole status is `want` with DNR (a retry cannot cure any of the
/// errors the cases provoke), More clear and no retry delay.
pub fn expect_status(cqe: &CqeRepr, want: Status, what: &str) -> Result<(), Failure> {
    let want = want.with_dnr();
    if cqe.status != want {
        return Err(Failure::new(format!(
            "{what}: expected {want} with DNR (More 0, CRD 0), got {} (dnr {}, more {}, crd {})",
            cqe.status, cqe.status.dnr, cqe.status.more, cqe.status.crd
        )));
    }
    super::blame::count();
    Ok(())
}

/// Fails unless `cqe` is Connect Invalid Parameters (1/82h, DNR) naming `want`.
pub fn expect_invalid_param(cqe: &CqeRepr, want: InvalidParam, what: &str) -> Result<(), Failure> {
    expect_status(cqe, Status::CONNECT_INVALID_PARAMETERS, what)?;
    match ConnectResponse::decode(cqe.status, cqe.dw0()) {
        Ok(ConnectResponse::InvalidParameters(p)) if p == want => Ok(()),
        other => Err(Failure::new(format!(
            "{what}: expected IPO {} IATTR {}, got {other:?}",
            want.offset, want.in_data as u8
        ))),
    }
}

impl TargetRig {
    /// Stops an in-process target in order ([`Target::stop`]: every object it made on the
    /// device given back) and returns the calls the device refused. A target behind the
    /// control channel cannot be stopped so (its host opens a fresh device per target).
    pub async fn stop(self) -> Result<Vec<String>, Failure> {
        let TargetRig { _lift, side, .. } = self;
        match side {
            Side::Local { target, .. } => Ok(target.stop().await),
            Side::Remote(_) => Err(Failure::new(
                "a remote target cannot be stopped in order from here".to_string(),
            )),
        }
    }

    /// The target's address for `port`.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip.into(), port)
    }

    /// Connects a controller on `port` as `cfg` says (CM, admin Connect), without enabling.
    pub async fn connect(&self, port: u16, cfg: HostConfig) -> Result<Controller, InitiatorError> {
        Controller::connect(self.host.clone(), self.addr(port), cfg).await
    }

    /// Connects a controller on `port` and enables it (CC.EN, CSTS.RDY).
    pub async fn controller(&self, port: u16, cfg: HostConfig) -> Result<Controller, Failure> {
        let mut c = self
            .connect(port, cfg)
            .await
            .map_err(|e| Failure::from(e).context("admin connect"))?;
        c.enable()
            .await
            .map_err(|e| Failure::from(e).context("enable"))?;
        Ok(c)
    }

    /// A new, unconnected host queue of `spec` in a PD of its own.
    fn host_queue(&self, spec: QueueSpec) -> Result<HostQueue, Failure> {
        let pd = self.host.alloc_pd()?;
        let bound = super::wait::wait(Duration::from_secs(5));
        Ok(HostQueue::create(self.host.clone(), pd, spec, bound)?)
    }

    /// A queue of `spec` connected through the CM only (no Fabrics Connect yet).
    pub async fn cm_queue(&self, port: u16, spec: QueueSpec) -> Result<HostQueue, Failure> {
        let mut q = self.host_queue(spec)?;
        let opts = CmOptions::for_queue(&q);
        cm_establish(&mut q, self.addr(port), &opts, super::wait::wait(BOUND))
            .await
            .map_err(|e| Failure::new(format!("CM connect of qid {}: {e}", spec.qid)))?;
        Ok(q)
    }

    /// Sends a CM connect request with `private_data` for a queue of `spec`; returns the
    /// NVMe-oF reject status, failing when the request is accepted.
    pub async fn cm_reject(
        &self,
        port: u16,
        spec: QueueSpec,
        private_data: Vec<u8>,
    ) -> Result<Option<CmRejectStatus>, Failure> {
        let mut q = self.host_queue(spec)?;
        let r = misbehave::connect_with_private_data(
            &mut q,
            self.addr(port),
            private_data,
            super::wait::wait(BOUND),
        )
        .await;
        match r {
            Err(InitiatorError::Rejected { status, .. }) => Ok(status),
            Ok(_) => Err(Failure::new("the CM request was accepted")),
            Err(e) => Err(Failure::new(format!("expected a CM reject, got {e}"))),
        }
    }

    /// The target when it runs in this process (tests that look further behind it).
    pub fn local(&self) -> Option<&Target> {
        match &self.side {
            Side::Local { target, .. } => Some(target),
            Side::Remote(_) => None,
        }
    }

    /// The engine's counters of namespace `nsid` of `subnqn` (zero when not offloaded).
    pub async fn ns_counters(&self, subnqn: &str, nsid: u32) -> Result<NsCounters, Failure> {
        match &self.side {
            Side::Local { target, provider } => Ok(target
                .ctrl_of(subnqn, nsid)
                .and_then(|c| provider.ns_counters(c, nsid).ok())
                .unwrap_or_default()),
            Side::Remote(r) => r.ns_counters(subnqn, nsid).await.map_err(remote_failure),
        }
    }

    /// The emulated backend controller behind `nsid` of `subnqn` (local target only).
    fn backend(
        target: &Target,
        subnqn: &str,
        nsid: u32,
    ) -> Result<Arc<BackendController>, Failure> {
        target
            .backend_of(subnqn, nsid)
            .ok_or_else(|| Failure::new(format!("no backend for {subnqn} nsid {nsid}")))
    }

    /// Commands the backend controller behind `nsid` of `subnqn` fetched from its queues.
    pub async fn backend_commands(&self, subnqn: &str, nsid: u32) -> Result<u64, Failure> {
        match &self.side {
            Side::Local { target, .. } => Ok(TargetRig::backend(target, subnqn, nsid)?
                .counters()
                .commands),
            Side::Remote(r) => Ok(r
                .backend_counters(subnqn, nsid)
                .await
                .map_err(remote_failure)?
                .commands),
        }
    }

    /// Blocks of namespace `nsid` of `subnqn` as the backend holds them.
    pub async fn backend_blocks(
        &self,
        subnqn: &str,
        nsid: u32,
        slba: u64,
        count: u64,
    ) -> Result<Vec<u8>, Failure> {
        match &self.side {
            Side::Local { target, .. } => TargetRig::backend(target, subnqn, nsid)?
                .with_namespace(nsid, |n| n.read_blocks(slba, count))
                .ok_or_else(|| Failure::new(format!("backend has no namespace {nsid}")))?
                .map_err(|e| Failure::from(e).context("backend read")),
            Side::Remote(r) => r
                .backend_blocks(subnqn, nsid, slba, count)
                .await
                .map_err(remote_failure),
        }
    }

    /// Injects `fault` into the backend controller behind `nsid` of `subnqn`.
    pub async fn inject(&self, subnqn: &str, nsid: u32, fault: Fault) -> Result<(), Failure> {
        match &self.side {
            Side::Local { target, .. } => target
                .inject(subnqn, nsid, fault)
                .map_err(|e| Failure::from(e).context("fault injection")),
            Side::Remote(r) => r.inject(subnqn, nsid, fault).await.map_err(remote_failure),
        }
    }

    /// The live controllers (CNTLIDs) of `subnqn`.
    pub async fn controllers(&self, subnqn: &str) -> Result<Vec<u16>, Failure> {
        match &self.side {
            Side::Local { target, .. } => Ok(target.controllers(subnqn)),
            Side::Remote(r) => r.controllers(subnqn).await.map_err(remote_failure),
        }
    }

    /// I/O commands software served for `subnqn`.
    pub async fn software_io_commands(&self, subnqn: &str) -> Result<u64, Failure> {
        match &self.side {
            Side::Local { target, .. } => Ok(target.software_io_commands(subnqn)),
            Side::Remote(r) => r.software_io_commands(subnqn).await.map_err(remote_failure),
        }
    }

    /// The target's event log so far.
    pub async fn events(&self) -> Result<Vec<String>, Failure> {
        match &self.side {
            Side::Local { target, .. } => Ok(target.events()),
            Side::Remote(r) => r.events().await.map_err(remote_failure),
        }
    }

    /// The first event log line containing `needle` within `bound`.
    pub async fn wait_event(
        &self,
        needle: &str,
        bound: Duration,
    ) -> Result<Option<String>, Failure> {
        match &self.side {
            Side::Local { target, .. } => Ok(target.wait_event(needle, bound).await),
            Side::Remote(r) => r.wait_event(needle, bound).await.map_err(remote_failure),
        }
    }
}

/// The maximum queue entries supported (CAP.MQES, 0's based) the controller reports.
pub async fn mqes(c: &mut Controller) -> Result<u16, Failure> {
    let cap = c
        .property_get(0, PropertySize::Eight)
        .await
        .map_err(|e| Failure::from(e).context("Property Get CAP"))?;
    Ok((cap & 0xffff) as u16)
}

/// Sends Connect with `opts` and `data` (keyed unless `opts.data_in_capsule`) on a
/// CM-connected queue; returns the response's CQE, whatever its status.
pub async fn send_connect(
    q: &mut HostQueue,
    opts: ConnectOptions,
    data: &ConnectDataRepr,
) -> Result<CqeRepr, Failure> {
    connect::send_connect(q, data, &opts)
        .await
        .map_err(|e| match e {
            // the data could not be encoded: nothing was sent
            InitiatorError::Wire(_) => Failure::from(e),
            e => Failure::from(e).context("Connect got no response"),
        })
}
