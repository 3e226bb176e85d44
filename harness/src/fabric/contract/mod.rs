//! Fabric contract cases: what every [`Fabric`] / [`DeviceContext`] must do, written
//! against the two traits only, so the same cases run on `sim` and on real verbs (rxe).
//!
//! A [`ContractCase`] is a named async function over an [`Env`]. It returns
//! `Err(CaseFailure)` with what was expected and what happened; it never panics for a
//! mismatch. A case whose [`Need`]s the fabric cannot meet is skipped with a reason
//! ([`ContractCase::unmet_need`]). Every wait is bounded ([`BOUND`], [`LONG_BOUND`]); on
//! `sim` the bound is virtual time.
//!
//! Cases record what they observe (completions, async and CM events, object numbers) in the
//! [`Env`]'s [`Trace`], so a runner can compare two runs with the same seed.
//!
//! Where real devices legitimately differ (opcode of an error completion, `byte_len` of a
//! send completion, private data padded to the CM message size, SRQ and queue depths
//! rounded up), the cases do not assert it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use nix::errno::Errno;

use super::wait::{self, WaitError};
use super::{
    Access, AsyncEvent, CmEvent, CmEventKind, ConnId, ConnParam, CqId, DeviceContext, Fabric,
    FabricError, Fault, Gid, ListenerId, MrInfo, PdId, PortAttr, QpAttr, QpCap, QpDest, QpId,
    QpInfo, QpInit, QpState, RecvWr, SendOp, SendWr, Sge, WcOpcode, WcStatus, WorkCompletion,
};

/// Fails the case with a formatted message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::fabric::contract::CaseFailure::new(format!($($fmt)+)));
        }
    };
}

/// Fails the case unless `got == expected`, naming both.
macro_rules! ensure_eq {
    ($got:expr, $expected:expr, $($fmt:tt)+) => {{
        let got = &$got;
        let expected = &$expected;
        if got != expected {
            return Err($crate::fabric::contract::CaseFailure::new(format!(
                "{}: expected {:?}, got {:?}",
                format!($($fmt)+),
                expected,
                got
            )));
        }
    }};
}

/// Fails the case right away with a formatted message.
macro_rules! fail {
    ($($fmt:tt)+) => {
        return Err($crate::fabric::contract::CaseFailure::new(format!($($fmt)+)))
    };
}

mod cm;
mod cq;
mod device;
mod events;
mod faults;
mod memory;
mod qp_state;
mod rdma;
mod send_recv;
mod srq;

/// Default bound of a wait for something that should happen promptly.
pub const BOUND: Duration = Duration::from_secs(5);
/// Bound of a wait for something that takes retries (transport or RNR retry exhaustion).
pub const LONG_BOUND: Duration = Duration::from_secs(60);
/// How long a case waits to conclude that nothing (more) happens.
pub const QUIET: Duration = Duration::from_millis(200);

/// Address that belongs to no device (TEST-NET-1, RFC 5737).
pub const FOREIGN_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

// ---------------------------------------------------------------------------------------
// Cases, needs, outcomes
// ---------------------------------------------------------------------------------------

/// A fault kind a case injects, probed before the case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// [`Fault::Link`].
    Link,
    /// [`Fault::QpError`].
    QpError,
    /// [`Fault::Delay`].
    Delay,
    /// [`Fault::DropConnection`].
    DropConnection,
}

impl FaultKind {
    /// A harmless fault of this kind (aimed at no device, or zero delay), used to ask the
    /// fabric whether it supports the kind at all: EOPNOTSUPP means it does not.
    pub fn probe(self) -> Fault {
        match self {
            FaultKind::Link => Fault::Link {
                addr: FOREIGN_ADDR,
                up: true,
            },
            FaultKind::QpError => Fault::QpError {
                addr: FOREIGN_ADDR,
                qpn: 0x00ff_fffe,
            },
            FaultKind::Delay => Fault::Delay(Duration::ZERO),
            FaultKind::DropConnection => Fault::DropConnection {
                addr: FOREIGN_ADDR,
                qpn: 0x00ff_fffe,
            },
        }
    }
}

/// Something a case needs from the fabric beyond one working device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    /// The fabric can inject this kind of fault ([`Fabric::inject`] is not EOPNOTSUPP).
    FaultInjection(FaultKind),
    /// At least two devices (a fault on one must not hit the other).
    TwoDevices,
    /// The fabric is deterministic for a seed and the runner can build fresh ones
    /// ([`Env::fresh`]); only `sim`.
    Deterministic,
    /// SEND with invalidate may name the rkey of a plain registered MR. `sim` allows it;
    /// real devices (rxe among them) only invalidate memory windows and fast-registration
    /// MRs, which the [`Fabric`] trait does not model, and fail the receive instead, so the
    /// case skips on every fabric but `sim` (a documented deviation, not a sim bug).
    InvalidatePlainMr,
    /// The device is not soft-RoCE (`rxe*`): the case checks a behaviour of RC hardware and
    /// `sim` that rxe lacks, named by the reason. Each use documents a deviation of rxe
    /// (measured with Linux 6.1 and 6.12, rdma-core 44) from the sim, which the sim keeps
    /// because hardware behaves that way; on other verbs devices the case runs.
    NotSoftRoce(&'static str),
}

/// Why a case failed: what was expected and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFailure {
    /// One-paragraph explanation.
    pub message: String,
}

impl CaseFailure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> CaseFailure {
        CaseFailure {
            message: message.into(),
        }
    }
}

impl fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CaseFailure {}

impl From<FabricError> for CaseFailure {
    fn from(e: FabricError) -> Self {
        CaseFailure::new(format!("unexpected fabric error: {e}"))
    }
}

impl From<WaitError> for CaseFailure {
    fn from(e: WaitError) -> Self {
        CaseFailure::new(format!("unexpected wait error: {e}"))
    }
}

/// Adds what was being done to an error, turning it into a [`CaseFailure`].
pub trait Context<T> {
    /// `what` failed with the error.
    fn ctx(self, what: impl fmt::Display) -> Result<T, CaseFailure>;
}

impl<T> Context<T> for Result<T, FabricError> {
    fn ctx(self, what: impl fmt::Display) -> Result<T, CaseFailure> {
        self.map_err(|e| CaseFailure::new(format!("{what}: unexpected error {e}")))
    }
}

impl<T> Context<T> for Result<T, WaitError> {
    fn ctx(self, what: impl fmt::Display) -> Result<T, CaseFailure> {
        self.map_err(|e| CaseFailure::new(format!("{what}: {e}")))
    }
}

/// Result of a case body.
pub type CaseResult = Result<(), CaseFailure>;

/// One contract case.
pub struct ContractCase {
    /// Unique id, `area.subject.expectation`, lowercase with `-` inside words.
    pub id: &'static str,
    /// The area (the id's first segment), e.g. `qp` or `cm`.
    pub area: &'static str,
    /// One line: what the case checks.
    pub description: &'static str,
    /// What the fabric must offer for the case to run.
    pub needs: &'static [Need],
    /// The case body.
    pub run: fn(Env) -> BoxFuture<'static, CaseResult>,
}

impl fmt::Debug for ContractCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContractCase")
            .field("id", &self.id)
            .field("area", &self.area)
            .field("needs", &self.needs)
            .finish()
    }
}

impl ContractCase {
    /// Why the case cannot run on this fabric (a skip reason), or `None` when it can.
    /// A fabric without any device skips every case.
    pub fn unmet_need(&self, fabric: &dyn Fabric) -> Option<String> {
        unmet_need(self.needs, fabric, false)
    }

    /// As [`ContractCase::unmet_need`], knowing whether the runner can build fresh fabrics.
    pub fn unmet_need_in(&self, env: &Env) -> Option<String> {
        unmet_need(self.needs, &*env.fabric, env.fresh.is_some())
    }
}

fn unmet_need(needs: &[Need], fabric: &dyn Fabric, can_make_fresh: bool) -> Option<String> {
    let devices = match fabric.devices() {
        Ok(d) => d,
        Err(e) => return Some(format!("cannot list RDMA devices: {e}")),
    };
    if devices.is_empty() {
        return Some("no RDMA device".into());
    }
    for need in needs {
        match need {
            Need::TwoDevices if devices.len() < 2 => {
                return Some(format!(
                    "needs two RDMA devices, the {} fabric has {}",
                    fabric.kind(),
                    devices.len()
                ))
            }
            Need::TwoDevices => {}
            Need::FaultInjection(kind) => {
                if let Err(e) = fabric.inject(kind.probe()) {
                    if e.errno() == Errno::EOPNOTSUPP {
                        return Some(format!(
                            "the {} fabric cannot inject {kind:?} faults ({e})",
                            fabric.kind()
                        ));
                    }
                }
            }
            Need::InvalidatePlainMr => {
                if fabric.kind() != "sim" {
                    return Some(format!(
                        "the {} fabric cannot invalidate a plain MR's rkey with SEND with \
                         invalidate (real devices only invalidate memory windows and \
                         fast-registration MRs, which the fabric trait does not model)",
                        fabric.kind()
                    ));
                }
            }
            Need::NotSoftRoce(reason) => {
                if fabric.kind() != "sim" && devices.iter().any(|d| d.starts_with("rxe")) {
                    return Some(format!(
                        "soft-RoCE ({}) differs from RC hardware here: {reason}",
                        devices.join(", ")
                    ));
                }
            }
            Need::Deterministic => {
                if fabric.kind() != "sim" {
                    return Some(format!("the {} fabric is not deterministic", fabric.kind()));
                }
                if !can_make_fresh {
                    return Some("the runner cannot build fresh fabrics for a seed".into());
                }
            }
        }
    }
    None
}

/// All cases, in a stable order.
pub fn cases() -> &'static [ContractCase] {
    static CASES: OnceLock<Vec<ContractCase>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut v = Vec::new();
        v.extend(device::cases());
        v.extend(memory::cases());
        v.extend(cq::cases());
        v.extend(qp_state::cases());
        v.extend(send_recv::cases());
        v.extend(rdma::cases());
        v.extend(srq::cases());
        v.extend(events::cases());
        v.extend(cm::cases());
        v.extend(faults::cases());
        v
    })
}

/// The case with this id.
pub fn case(id: &str) -> Option<&'static ContractCase> {
    cases().iter().find(|c| c.id == id)
}

/// Whether an id is well formed: at least two `.`-separated segments of `[a-z0-9-]`,
/// none empty and none starting or ending with `-`.
pub fn id_is_well_formed(id: &str) -> bool {
    let segs: Vec<&str> = id.split('.').collect();
    segs.len() >= 2
        && segs.iter().all(|s| {
            !s.is_empty()
                && !s.starts_with('-')
                && !s.ends_with('-')
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Builds a case from an async fn `fn(Env) -> impl Future<Output = CaseResult> + Send`.
macro_rules! contract_case {
    ($id:literal, $area:literal, $needs:expr, $desc:literal, $f:path) => {
        $crate::fabric::contract::ContractCase {
            id: $id,
            area: $area,
            description: $desc,
            needs: $needs,
            run: |env| Box::pin($f(env)),
        }
    };
}
use contract_case;

/// How a case run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every expectation held.
    Passed,
    /// An expectation failed (or the case panicked).
    Failed(String),
    /// The fabric cannot meet a need of the case.
    Skipped(String),
}

/// Runs one case in `env` (checking its needs first); panics become failures.
pub async fn execute(case: &ContractCase, env: Env) -> Outcome {
    if let Some(reason) = case.unmet_need_in(&env) {
        return Outcome::Skipped(reason);
    }
    match AssertUnwindSafe((case.run)(env)).catch_unwind().await {
        Ok(Ok(())) => Outcome::Passed,
        Ok(Err(f)) => Outcome::Failed(f.message),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            Outcome::Failed(format!("case panicked: {msg}"))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Environment and trace
// ---------------------------------------------------------------------------------------

/// Builds a fresh fabric for a seed (for `sim`: `SimFabric::new(seed)`).
pub type FabricFactory = Arc<dyn Fn(u64) -> Arc<dyn Fabric> + Send + Sync>;

/// What a case observed, in order: completions, events, object numbers.
#[derive(Debug, Clone, Default)]
pub struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    /// Appends one observation.
    pub fn push(&self, line: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.into());
    }

    /// Everything observed so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What a case runs against.
#[derive(Clone)]
pub struct Env {
    /// The fabric under test.
    pub fabric: Arc<dyn Fabric>,
    /// The seed the fabric was built with (cases derive data patterns from it).
    pub seed: u64,
    /// Builds another fabric for a seed, when the runner can (needed by
    /// [`Need::Deterministic`]).
    pub fresh: Option<FabricFactory>,
    /// What the case observed.
    pub trace: Trace,
    port_base: u16,
}

static NEXT_PORT_BLOCK: AtomicU16 = AtomicU16::new(0);

impl Env {
    /// An environment over `fabric`, built with `seed`.
    pub fn new(fabric: Arc<dyn Fabric>, seed: u64) -> Env {
        // sim: every case has its own network, so a fixed port keeps runs identical;
        // real fabrics: cases may run concurrently on one host, so give each its own block.
        let port_base = if fabric.kind() == "sim" {
            4420
        } else {
            let block = NEXT_PORT_BLOCK.fetch_add(1, Ordering::Relaxed) % 2000;
            20000 + block * 16 + (seed % 7) as u16
        };
        Env {
            fabric,
            seed,
            fresh: None,
            trace: Trace::default(),
            port_base,
        }
    }

    /// The same, able to build fresh fabrics.
    pub fn with_factory(mut self, factory: FabricFactory) -> Env {
        self.fresh = Some(factory);
        self
    }

    /// Records an observation.
    pub fn record(&self, line: impl Into<String>) {
        self.trace.push(line)
    }

    /// A TCP-like port number for CM case use number `slot` (0..16).
    pub fn cm_port(&self, slot: u16) -> u16 {
        self.port_base + slot
    }

    /// The listening address `slot` on `dev`'s port 1.
    pub fn listen_addr(&self, dev: &Dev, slot: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(dev.port.addr), self.cm_port(slot))
    }

    /// The device names (at least one, or a failure).
    pub fn devices(&self) -> Result<Vec<String>, CaseFailure> {
        let d = self.fabric.devices().ctx("devices()")?;
        ensure!(!d.is_empty(), "devices(): the fabric lists no device");
        Ok(d)
    }

    /// Opens device `index` (modulo the number of devices, so with one device both sides
    /// of a pair share it, loopback) as `role`, reading port 1.
    pub fn open(&self, role: &'static str, index: usize) -> Result<Dev, CaseFailure> {
        let devices = self.devices()?;
        let name = devices[index % devices.len()].clone();
        let ctx = self.fabric.open(&name).ctx(format!("open({name})"))?;
        Dev::new(role, name, ctx, self.trace.clone())
    }

    /// A connected RC pair on devices 0 (`a`) and 1 (`b`) by manual `modify_qp`.
    pub fn pair(&self, opts: PairOpts) -> Result<Pair, CaseFailure> {
        let a = self.open("a", 0)?;
        let b = self.open("b", 1)?;
        Pair::on(&a, &b, opts)
    }

    /// A pair whose QPs are connected through the CM: `b` listens on slot `slot`, `a`
    /// connects with `req`, `b` accepts with `acc`; returns once both sides saw
    /// `Established`.
    pub async fn cm_pair(
        &self,
        slot: u16,
        req: &ConnParam,
        acc: &ConnParam,
    ) -> Result<CmPair, CaseFailure> {
        let a = Side::create(&self.open("a", 0)?, QpCap::default())?;
        let b = Side::create(&self.open("b", 1)?, QpCap::default())?;
        let addr = self.listen_addr(&b.dev, slot);
        let listener = b
            .dev
            .ctx
            .cm_listen(addr)
            .ctx(format!("cm_listen({addr})"))?;
        let conn_a = a
            .dev
            .ctx
            .cm_connect(addr, a.qp.id, req)
            .ctx(format!("cm_connect({addr})"))?;
        let (conn_b, got_listener, peer, request) = b.connect_request("passive side").await?;
        ensure_eq!(got_listener, listener, "ConnectRequest.listener");
        b.dev.ctx.cm_accept(conn_b, b.qp.id, acc).ctx("cm_accept")?;
        let established_a = a.established(conn_a, "active side after accept").await?;
        let established_b = b.established(conn_b, "passive side after accept").await?;
        Ok(CmPair {
            a,
            b,
            addr,
            listener,
            conn_a,
            conn_b,
            peer,
            request,
            established_a,
            established_b,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Devices, sides, pairs
// ---------------------------------------------------------------------------------------

/// An opened device with its port 1, playing a role (`a`, `b`) in a case.
#[derive(Clone)]
pub struct Dev {
    /// The role in traces and messages.
    pub role: &'static str,
    /// Device name.
    pub name: String,
    /// The context.
    pub ctx: Arc<dyn DeviceContext>,
    /// Port 1 attributes when opened.
    pub port: PortAttr,
    /// Port 1's GID at index 1 (IPv4-mapped, RoCEv2).
    pub gid: Gid,
    trace: Trace,
}

impl Dev {
    fn new(
        role: &'static str,
        name: String,
        ctx: Arc<dyn DeviceContext>,
        trace: Trace,
    ) -> Result<Dev, CaseFailure> {
        let port = ctx.port_attr(1).ctx(format!("{name}: port_attr(1)"))?;
        ensure!(
            port.gids.len() >= 2,
            "{name}: port 1 has {} GIDs, a RoCEv2 port needs index 1",
            port.gids.len()
        );
        let gid = port.gids[1];
        Ok(Dev {
            role,
            name,
            ctx,
            port,
            gid,
            trace,
        })
    }

    /// Records an observation under this role.
    pub fn record(&self, line: impl fmt::Display) {
        self.trace.push(format!("{} {line}", self.role));
    }

    /// Allocates a PD.
    pub fn pd(&self) -> Result<PdId, CaseFailure> {
        self.ctx.alloc_pd().ctx(format!("{}: alloc_pd", self.role))
    }

    /// Registers `len` bytes with `access` on `pd`.
    pub fn mr(&self, pd: PdId, len: u64, access: Access) -> Result<MrInfo, CaseFailure> {
        let mr = self
            .ctx
            .reg_mr(pd, len, access)
            .ctx(format!("{}: reg_mr({len}, {access:?})", self.role))?;
        self.record(format_args!(
            "mr {} len {} lkey {:#x} rkey {:#x}",
            mr.id, mr.len, mr.lkey, mr.rkey
        ));
        Ok(mr)
    }

    /// Creates a CQ.
    pub fn cq(&self, cqe: u32) -> Result<CqId, CaseFailure> {
        self.ctx
            .create_cq(cqe)
            .ctx(format!("{}: create_cq({cqe})", self.role))
    }

    /// Creates an RC QP.
    pub fn qp(&self, pd: PdId, init: QpInit) -> Result<QpInfo, CaseFailure> {
        let qp = self
            .ctx
            .create_qp(pd, init)
            .ctx(format!("{}: create_qp", self.role))?;
        self.record(format_args!("qp {} qpn {:#x}", qp.id, qp.qpn));
        Ok(qp)
    }

    /// Writes `data` at `offset` of `mr`.
    pub fn write(&self, mr: &MrInfo, offset: u64, data: &[u8]) -> Result<(), CaseFailure> {
        self.ctx
            .mr_write(mr.id, offset, data)
            .ctx(format!("{}: mr_write({}, {offset})", self.role, mr.id))
    }

    /// Reads `len` bytes at `offset` of `mr`.
    pub fn read(&self, mr: &MrInfo, offset: u64, len: usize) -> Result<Vec<u8>, CaseFailure> {
        let mut buf = vec![0u8; len];
        self.ctx.mr_read(mr.id, offset, &mut buf).ctx(format!(
            "{}: mr_read({}, {offset}, {len})",
            self.role, mr.id
        ))?;
        Ok(buf)
    }

    /// Waits (bounded) for the next completion on `cq`.
    pub async fn wc(&self, cq: CqId, what: &str) -> Result<WorkCompletion, CaseFailure> {
        self.wc_within(cq, BOUND, what).await
    }

    /// Waits up to `bound` for the next completion on `cq`.
    pub async fn wc_within(
        &self,
        cq: CqId,
        bound: Duration,
        what: &str,
    ) -> Result<WorkCompletion, CaseFailure> {
        let wc = wait::completion(&*self.ctx, cq, bound).await.ctx(format!(
            "{}: {what}: waiting for a completion on {cq}",
            self.role
        ))?;
        self.record(format_args!("wc {wc:?}"));
        Ok(wc)
    }

    /// Waits (bounded) for `n` completions on `cq`.
    pub async fn wcs(
        &self,
        cq: CqId,
        n: usize,
        what: &str,
    ) -> Result<Vec<WorkCompletion>, CaseFailure> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let wc = wait::completion(&*self.ctx, cq, BOUND).await.ctx(format!(
                "{}: {what}: waiting for completion {} of {n} on {cq} (got {out:?})",
                self.role,
                i + 1
            ))?;
            self.record(format_args!("wc {wc:?}"));
            out.push(wc);
        }
        Ok(out)
    }

    /// Waits [`QUIET`] and checks no completion arrived on `cq`.
    pub async fn no_wc(&self, cq: CqId, what: &str) -> CaseResult {
        tokio::time::sleep(QUIET).await;
        let got = self
            .ctx
            .poll_cq(cq, 16)
            .ctx(format!("{}: poll_cq({cq})", self.role))?;
        ensure!(
            got.is_empty(),
            "{}: {what}: expected no completion on {cq}, got {got:?}",
            self.role
        );
        Ok(())
    }

    /// Waits (bounded) for an async event matching `pred`, skipping (and recording) others.
    pub async fn event(
        &self,
        what: &str,
        pred: impl Fn(&AsyncEvent) -> bool,
    ) -> Result<AsyncEvent, CaseFailure> {
        let deadline = tokio::time::Instant::now() + BOUND;
        let mut others = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match wait::async_event(&*self.ctx, left).await {
                Ok(e) => {
                    self.record(format_args!("event {e:?}"));
                    if pred(&e) {
                        return Ok(e);
                    }
                    others.push(e);
                }
                Err(_) => fail!(
                    "{}: expected async event {what} within {BOUND:?}, got only {others:?}",
                    self.role
                ),
            }
        }
    }

    /// Waits [`QUIET`], then drains pending async events; fails if one matches `pred`.
    pub async fn no_event(&self, what: &str, pred: impl Fn(&AsyncEvent) -> bool) -> CaseResult {
        tokio::time::sleep(QUIET).await;
        while let Some(e) = self.ctx.poll_async_event() {
            self.record(format_args!("event {e:?}"));
            ensure!(
                !pred(&e),
                "{}: expected no {what} event, got {e:?}",
                self.role
            );
        }
        Ok(())
    }

    /// Waits (bounded) for the next CM event.
    pub async fn cm_event(&self, what: &str) -> Result<CmEvent, CaseFailure> {
        self.cm_event_within(BOUND, what).await
    }

    /// Waits up to `bound` for the next CM event.
    pub async fn cm_event_within(
        &self,
        bound: Duration,
        what: &str,
    ) -> Result<CmEvent, CaseFailure> {
        let e = wait::cm_event(&*self.ctx, bound)
            .await
            .ctx(format!("{}: {what}: waiting for a CM event", self.role))?;
        self.record(format_args!("cm {e:?}"));
        Ok(e)
    }

    /// Waits [`QUIET`] and checks no CM event is pending.
    pub async fn no_cm_event(&self, what: &str) -> CaseResult {
        tokio::time::sleep(QUIET).await;
        if let Some(e) = self.ctx.poll_cm_event() {
            self.record(format_args!("cm {e:?}"));
            fail!("{}: {what}: expected no CM event, got {e:?}", self.role);
        }
        Ok(())
    }

    /// The QP's state.
    pub fn state(&self, qp: QpId) -> Result<QpState, CaseFailure> {
        self.ctx
            .query_qp(qp)
            .ctx(format!("{}: query_qp({qp})", self.role))
    }

    /// Polls (bounded) until `qp` is in `state`.
    pub async fn reaches_state(&self, qp: QpId, state: QpState, what: &str) -> CaseResult {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let s = self.state(qp)?;
            if s == state {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                fail!(
                    "{}: {what}: expected {qp} to reach {state:?} within {BOUND:?}, it is {s:?}",
                    self.role
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One side of a pair: a device, a PD, one CQ for both queues, and a QP.
#[derive(Clone)]
pub struct Side {
    /// The device.
    pub dev: Dev,
    /// Protection domain of everything on this side.
    pub pd: PdId,
    /// Send and receive CQ of the QP.
    pub cq: CqId,
    /// The QP (in RESET after [`Side::create`]).
    pub qp: QpInfo,
}

impl Side {
    /// A PD, a 256-entry CQ and an RC QP in RESET with `cap` on `dev`.
    pub fn create(dev: &Dev, cap: QpCap) -> Result<Side, CaseFailure> {
        let pd = dev.pd()?;
        let cq = dev.cq(256)?;
        let qp = dev.qp(
            pd,
            QpInit {
                send_cq: cq,
                recv_cq: cq,
                srq: None,
                cap,
            },
        )?;
        Ok(Side {
            dev: dev.clone(),
            pd,
            cq,
            qp,
        })
    }

    /// Where a peer's RTR points to reach this QP.
    pub fn dest(&self) -> QpDest {
        QpDest {
            gid: self.dev.gid,
            qpn: self.qp.qpn,
        }
    }

    /// Registers a region on this side's PD.
    pub fn mr(&self, len: u64, access: Access) -> Result<MrInfo, CaseFailure> {
        self.dev.mr(self.pd, len, access)
    }

    /// Posts a receive.
    pub fn post_recv(&self, wr_id: u64, sg_list: Vec<Sge>) -> CaseResult {
        self.dev
            .ctx
            .post_recv(self.qp.id, &RecvWr { wr_id, sg_list })
            .ctx(format!("{}: post_recv(wr_id {wr_id})", self.dev.role))
    }

    /// Posts a send request.
    pub fn post_send(&self, wr: SendWr) -> CaseResult {
        let id = wr.wr_id;
        self.dev.ctx.post_send(self.qp.id, &wr).ctx(format!(
            "{}: post_send(wr_id {id}, {:?})",
            self.dev.role, wr.op
        ))
    }

    /// Posts a signaled SEND of the list.
    pub fn send(&self, wr_id: u64, sg_list: Vec<Sge>) -> CaseResult {
        self.post_send(SendWr::new(wr_id, SendOp::Send, sg_list))
    }

    /// Waits for the next completion of this side.
    pub async fn wc(&self, what: &str) -> Result<WorkCompletion, CaseFailure> {
        self.dev.wc(self.cq, what).await
    }

    /// Waits for `n` completions of this side.
    pub async fn wcs(&self, n: usize, what: &str) -> Result<Vec<WorkCompletion>, CaseFailure> {
        self.dev.wcs(self.cq, n, what).await
    }

    /// Checks no completion arrives on this side within [`QUIET`].
    pub async fn no_wc(&self, what: &str) -> CaseResult {
        self.dev.no_wc(self.cq, what).await
    }

    /// The QP's state.
    pub fn state(&self) -> Result<QpState, CaseFailure> {
        self.dev.state(self.qp.id)
    }

    /// Moves the QP.
    pub fn modify(&self, attr: QpAttr) -> CaseResult {
        self.dev
            .ctx
            .modify_qp(self.qp.id, &attr)
            .ctx(format!("{}: modify_qp({:?})", self.dev.role, attr.state))
    }

    /// Polls until the QP is in `state`.
    pub async fn reaches_state(&self, state: QpState, what: &str) -> CaseResult {
        self.dev.reaches_state(self.qp.id, state, what).await
    }

    /// Waits for a ConnectRequest: (new conn, listener, peer address, peer params).
    pub async fn connect_request(
        &self,
        what: &str,
    ) -> Result<(ConnId, ListenerId, SocketAddr, ConnParam), CaseFailure> {
        let e = self.dev.cm_event(what).await?;
        match e.kind {
            CmEventKind::ConnectRequest {
                listener,
                peer,
                param,
            } => Ok((e.conn, listener, peer, param)),
            other => fail!(
                "{}: {what}: expected ConnectRequest, got {other:?} on {}",
                self.dev.role,
                e.conn
            ),
        }
    }

    /// Waits for `Established` on `conn` and returns its private data.
    pub async fn established(&self, conn: ConnId, what: &str) -> Result<Vec<u8>, CaseFailure> {
        let e = self.dev.cm_event(what).await?;
        match e.kind {
            CmEventKind::Established { private_data } if e.conn == conn => Ok(private_data),
            other => fail!(
                "{}: {what}: expected Established on {conn}, got {other:?} on {}",
                self.dev.role,
                e.conn
            ),
        }
    }
}

/// Options of [`Env::pair`].
#[derive(Debug, Clone, Copy)]
pub struct PairOpts {
    /// QP access flags of `a` (what `b` may do to `a`).
    pub access_a: Access,
    /// QP access flags of `b`.
    pub access_b: Access,
    /// Transport retry count of both QPs.
    pub retry_cnt: u8,
    /// RNR retry count of both QPs.
    pub rnr_retry: u8,
    /// Queue sizes of both QPs.
    pub cap: QpCap,
}

impl Default for PairOpts {
    fn default() -> Self {
        PairOpts {
            access_a: all_remote(),
            access_b: all_remote(),
            retry_cnt: 7,
            rnr_retry: 7,
            cap: QpCap::default(),
        }
    }
}

impl PairOpts {
    /// With these retry counts.
    pub fn retries(self, retry_cnt: u8, rnr_retry: u8) -> PairOpts {
        PairOpts {
            retry_cnt,
            rnr_retry,
            ..self
        }
    }
}

/// LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ.
pub fn all_remote() -> Access {
    Access::LOCAL_WRITE | Access::REMOTE_WRITE | Access::REMOTE_READ
}

/// Two connected RC QPs.
#[derive(Clone)]
pub struct Pair {
    /// Requester side in most cases.
    pub a: Side,
    /// Responder side in most cases.
    pub b: Side,
}

impl Pair {
    /// Creates a side on each device and connects them by `modify_qp`.
    pub fn on(a: &Dev, b: &Dev, opts: PairOpts) -> Result<Pair, CaseFailure> {
        let a = Side::create(a, opts.cap)?;
        let b = Side::create(b, opts.cap)?;
        connect_qps(&a.dev, a.qp, &b.dev, b.qp, opts)?;
        Ok(Pair { a, b })
    }
}

/// Moves `qa` on `a` and `qb` on `b` through INIT, RTR (towards each other) and RTS.
pub fn connect_qps(a: &Dev, qa: QpInfo, b: &Dev, qb: QpInfo, opts: PairOpts) -> CaseResult {
    let steps = [
        (a, qa, QpAttr::init(1, opts.access_a)),
        (b, qb, QpAttr::init(1, opts.access_b)),
        (
            a,
            qa,
            QpAttr::rtr(QpDest {
                gid: b.gid,
                qpn: qb.qpn,
            }),
        ),
        (
            b,
            qb,
            QpAttr::rtr(QpDest {
                gid: a.gid,
                qpn: qa.qpn,
            }),
        ),
        (a, qa, QpAttr::rts(opts.retry_cnt, opts.rnr_retry)),
        (b, qb, QpAttr::rts(opts.retry_cnt, opts.rnr_retry)),
    ];
    for (dev, qp, attr) in steps {
        dev.ctx.modify_qp(qp.id, &attr).ctx(format!(
            "{}: modify_qp({}, {:?})",
            dev.role, qp.id, attr.state
        ))?;
    }
    Ok(())
}

/// Two QPs connected through the CM.
pub struct CmPair {
    /// Active side.
    pub a: Side,
    /// Passive side.
    pub b: Side,
    /// Where `b` listens.
    pub addr: SocketAddr,
    /// `b`'s listener.
    pub listener: ListenerId,
    /// Active identifier.
    pub conn_a: ConnId,
    /// Passive identifier (from the ConnectRequest).
    pub conn_b: ConnId,
    /// The active side's address as the ConnectRequest gave it.
    pub peer: SocketAddr,
    /// The request's parameters as `b` saw them.
    pub request: ConnParam,
    /// Private data of `a`'s Established (the accept's).
    pub established_a: Vec<u8>,
    /// Private data of `b`'s Established.
    pub established_b: Vec<u8>,
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/// Checks that `r` failed with `errno`.
pub fn expect_errno<T>(
    r: Result<T, FabricError>,
    errno: Errno,
    what: impl fmt::Display,
) -> CaseResult {
    match r {
        Err(e) if e.errno() == errno => Ok(()),
        Err(e) => fail!("{what}: expected {errno}, got {} ({e})", e.errno()),
        Ok(_) => fail!("{what}: expected {errno}, got success"),
    }
}

/// Checks a completion's wr_id and status, and its opcode when given (only meaningful for
/// successful completions: real devices leave the opcode of error completions undefined).
pub fn check_wc(
    wc: &WorkCompletion,
    wr_id: u64,
    status: WcStatus,
    opcode: Option<WcOpcode>,
    what: &str,
) -> CaseResult {
    ensure!(
        wc.wr_id == wr_id && wc.status == status,
        "{what}: expected wr_id {wr_id} with {}, got wr_id {} with {} ({wc:?})",
        status.name(),
        wc.wr_id,
        wc.status.name()
    );
    if let Some(op) = opcode {
        ensure_eq!(wc.opcode, op, "{what}: opcode of wr_id {wr_id}");
    }
    Ok(())
}

/// A deterministic byte pattern of `len` bytes from `seed` and `salt`.
pub fn pattern(seed: u64, salt: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Compares two byte strings, naming the first differing offset.
pub fn check_bytes(got: &[u8], expected: &[u8], what: &str) -> CaseResult {
    ensure!(
        got.len() == expected.len(),
        "{what}: expected {} bytes, got {}",
        expected.len(),
        got.len()
    );
    if let Some(i) = got.iter().zip(expected).position(|(g, e)| g != e) {
        fail!(
            "{what}: bytes differ first at offset {i}: expected {:#04x}, got {:#04x}",
            expected[i],
            got[i]
        );
    }
    Ok(())
}

/// Checks CM private data: `got` starts with `sent` and anything after it (real CMs pad to
/// the message's private-data size) is zero, up to `max` bytes.
pub fn check_private_data(got: &[u8], sent: &[u8], max: usize, what: &str) -> CaseResult {
    ensure!(
        got.len() >= sent.len() && got.len() <= max,
        "{what}: expected the {} bytes sent (possibly zero-padded up to {max}), got {} bytes {got:02x?}",
        sent.len(),
        got.len()
    );
    check_bytes(&got[..sent.len()], sent, what)?;
    ensure!(
        got[sent.len()..].iter().all(|b| *b == 0),
        "{what}: padding after the {} bytes sent is not zero: {:02x?}",
        sent.len(),
        &got[sent.len()..]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in cases() {
            assert!(id_is_well_formed(c.id), "{}", c.id);
            assert!(c.id.starts_with(&format!("{}.", c.area)), "{}", c.id);
            assert!(seen.insert(c.id), "duplicate {}", c.id);
        }
    }

    #[test]
    fn well_formed_ids() {
        assert!(id_is_well_formed("qp.state.reset-to-rts"));
        assert!(!id_is_well_formed("qp"));
        assert!(!id_is_well_formed("qp..x"));
        assert!(!id_is_well_formed("qp.State"));
        assert!(!id_is_well_formed("qp.-x"));
    }

    #[test]
    fn private_data_check() {
        assert!(check_private_data(&[1, 2, 0, 0], &[1, 2], 56, "x").is_ok());
        assert!(check_private_data(&[1, 2, 0, 1], &[1, 2], 56, "x").is_err());
        assert!(check_private_data(&[1], &[1, 2], 56, "x").is_err());
    }
}
