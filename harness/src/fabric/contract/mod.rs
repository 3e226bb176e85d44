//! Fabric contract cases: what every [`Fabric`] / [`DeviceContext`] must do, written
//! against the two traits only, so the same cases run on `sim` and on real verbs (rxe).
//!
//! A [`ContractCase`] is a [`Case`] of the shared case model ([`crate::case`]) over an
//! [`Env`]: a named async function that returns `Err(`[`Failure`]`)` with what was
//! expected and what happened; it never panics for a mismatch. A case whose [`Need`]s the
//! fabric cannot meet is skipped with a reason ([`Env::facts`]). Every wait is bounded
//! ([`BOUND`], [`LONG_BOUND`]); on `sim` the bound is virtual time.
//!
//! Cases record what they observe (completions, async and CM events, object numbers) in the
//! [`Env`]'s [`Trace`], so a runner can compare two runs with the same seed.
//!
//! Where real devices legitimately differ (opcode of an error completion, `byte_len` of a
//! send completion, private data padded to the CM message size, SRQ and queue depths
//! rounded up), the cases do not assert it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::FutureExt;

use super::wait;
use super::{
    Access, AsyncEvent, CmEvent, CmEventKind, ConnId, ConnParam, CqId, DeviceContext, Fabric, Gid,
    ListenerId, MrInfo, PdId, PortAttr, QpAttr, QpCap, QpDest, QpId, QpInfo, QpInit, QpState,
    RecvWr, SendOp, SendWr, Sge, SrqId, SrqInit, WcOpcode, WcStatus, WorkCompletion,
};
use crate::case::{panic_text, Case, Facts};
use crate::{check, check_eq};

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

pub use crate::case::{expect_errno, CaseResult, Context, Failure, FaultKind, Need, FOREIGN_ADDR};

/// A contract case: a [`Case`] over an [`Env`].
pub type ContractCase = Case<Env>;

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

/// Builds a case from an async fn `fn(Env) -> impl Future<Output = CaseResult> + Send`.
macro_rules! contract_case {
    ($id:literal, $area:literal, $needs:expr, $desc:literal, $f:path) => {
        $crate::case::Case::<$crate::fabric::contract::Env> {
            meta: $crate::case::CaseMeta {
                id: $id.to_string(),
                area: $area,
                requirement: None,
                description: $desc.to_string(),
                needs: $needs.to_vec(),
                race: None,
            },
            body: std::sync::Arc::new(|env| Box::pin($f(env))),
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
    if let Some(reason) = case.unmet(&env.facts()) {
        return Outcome::Skipped(reason);
    }
    match AssertUnwindSafe((case.body)(env)).catch_unwind().await {
        Ok(Ok(())) => Outcome::Passed,
        Ok(Err(f)) => Outcome::Failed(f.message),
        Err(p) => Outcome::Failed(format!("case panicked: {}", panic_text(&*p))),
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

    /// What the case's needs are judged against: the fabric, and whether fresh ones can
    /// be built.
    pub fn facts(&self) -> Facts<'_> {
        Facts {
            fabric: &*self.fabric,
            can_make_fresh: self.fresh.is_some(),
            dut: None,
        }
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
    pub fn devices(&self) -> Result<Vec<String>, Failure> {
        let d = self.fabric.devices().ctx("devices()")?;
        check!(!d.is_empty(), "devices(): the fabric lists no device");
        Ok(d)
    }

    /// Opens device `index` (modulo the number of devices, so with one device both sides
    /// of a pair share it, loopback) as `role`, reading port 1.
    pub fn open(&self, role: &'static str, index: usize) -> Result<Dev, Failure> {
        let devices = self.devices()?;
        let name = devices[index % devices.len()].clone();
        let ctx = self.fabric.open(&name).ctx(format!("open({name})"))?;
        Dev::new(role, name, ctx, self.trace.clone())
    }

    /// A connected RC pair on devices 0 (`a`) and 1 (`b`) by manual `modify_qp`.
    pub fn pair(&self, opts: PairOpts) -> Result<Pair, Failure> {
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
    ) -> Result<CmPair, Failure> {
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
        check_eq!(got_listener, listener, "ConnectRequest.listener");
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
