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

mod kit;
pub use kit::*;

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

#[cfg(test)]
mod tests;
