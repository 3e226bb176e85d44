//! Offload conformance cases: each carries its requirement ID, a one-line description, the
//! capabilities it needs and tags (Test262 style). One list ([`cases`]) feeds the catalog,
//! `docs/requirements.md` and the reports.

pub mod blame;
pub mod counters;
pub mod dut;
pub mod media;
pub mod remote;
pub mod requirements;
pub mod session;
pub mod target;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use harness::api::{NvmfCaps, OffloadOps};
use harness::fabric::DeviceAttr;

pub use dut::Dut;

/// The factor every case's waits are scaled by ([`wait`]), as `f64` bits.
static WAIT_SCALE: AtomicU64 = AtomicU64::new(1.0f64.to_bits());

/// Sets the factor of [`wait`] for the cases this process runs: `--timeout-scale` on a real
/// fabric (real time), 1 on the simulated one (virtual time costs nothing to wait).
pub fn set_wait_scale(factor: f64) {
    WAIT_SCALE.store(factor.to_bits(), Ordering::Relaxed);
}

/// `d` as a case waits for something that should happen (an event, a completion, a
/// connection): scaled by [`set_wait_scale`]'s factor. Never for a duration a case
/// checks (a timeout that must not fire early, a KATO, a deliberate delay).
pub fn wait(d: Duration) -> Duration {
    d.mul_f64(f64::from_bits(WAIT_SCALE.load(Ordering::Relaxed)))
}

/// Why a case failed: what was expected and what happened, and the requirement the
/// failed check checks ([`blame`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What was expected and what happened.
    pub message: String,
    /// The requirement in force when the check failed (`None` outside a case).
    pub requirement: Option<&'static str>,
}

impl Failure {
    /// A failure of the check that is running, blamed on the requirement in force.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            requirement: blame::current(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    /// The error's text. Unless the case named the requirement in force itself, a
    /// response that never came, or one whose fields are wrong, is blamed on the rule it
    /// breaks (`DP-ANSWERED`, `DP-RESPONSE`) whatever the case is about ([`blame`]).
    fn from(e: E) -> Failure {
        use harness::initiator::InitiatorError;
        let mut f = Failure::new(e.to_string());
        if blame::explicit() {
            return f;
        }
        match (&e as &dyn std::any::Any).downcast_ref::<InitiatorError>() {
            // A Connect travels on a QP without offload: it must reach software.
            Some(InitiatorError::TimedOut { what, .. }) if what.contains("Connect") => {
                f.requirement = Some("SW-NOT-ENABLED");
            }
            Some(InitiatorError::TimedOut { what, .. }) if what.contains("response") => {
                f.requirement = Some("DP-ANSWERED");
            }
            // The connection ended with the command unanswered.
            Some(InitiatorError::Completion { what, .. }) if what.contains("response") => {
                f.requirement = Some("DP-ANSWERED");
            }
            Some(InitiatorError::Protocol(m)) if m.starts_with("response to CID") => {
                f.requirement = Some("DP-RESPONSE");
            }
            _ => {}
        }
        f
    }
}

impl Failure {
    /// The same failure, its message prefixed with `what: ` (what the case was doing).
    pub fn context(mut self, what: impl fmt::Display) -> Failure {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

/// The result of a case body.
pub type CaseResult = Result<(), Failure>;

/// Fails the case with a formatted message unless the condition holds (counted as a check
/// of the requirement in force when it holds).
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::offload::Failure::new(format!($($fmt)+)));
        }
        $crate::offload::blame::count();
    };
}

/// Fails the case unless `got == expected`, naming both.
#[macro_export]
macro_rules! check_eq {
    ($got:expr, $expected:expr, $($fmt:tt)+) => {{
        let got = &$got;
        let expected = &$expected;
        if got != expected {
            return Err($crate::offload::Failure::new(format!(
                "{}: expected {:?}, got {:?}",
                format!($($fmt)+),
                expected,
                got
            )));
        }
        $crate::offload::blame::count();
    }};
}

/// Something a case needs from the device under test; absent → the case is skipped with
/// the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// These ops are offloadable (the caps' offload types allow them).
    Ops(OffloadOps),
    /// At least one of these ops is offloadable (the case uses whichever are).
    AnyOps(OffloadOps),
    /// Offloaded QPs also carry non-offloaded ops (`supports_non_offloaded_ops`).
    NonOffloadedOps,
    /// Offloaded QPs do not carry non-offloaded ops.
    NoNonOffloadedOps,
    /// `max_frontend_nsid` is set (not 0 = any).
    FrontendNsidLimit,
    /// The staging buffer has an upper bound (`max_staging_buf_size` ≠ 0).
    StagingMax,
    /// Command timeouts have bounds (`max_cmd_timeout_us` ≠ 0).
    TimeoutBounds,
    /// Backend controllers may have extra SQs (`max_extra_sqs` > 0).
    ExtraSqs,
    /// The device supports this LBA data size (data + metadata bytes).
    LbaSize(u32),
    /// Capsules can carry one block of the smallest supported LBA data size in-capsule.
    InCapsuleBlock,
    /// An in-capsule data offset (`max_icdoff` ≥ 1), with room after it for one block of the
    /// smallest LBA data size and 16 bytes more.
    InCapsuleOffset,
    /// Capsules that carry a Connect's 1024 bytes of data after the SQE (`max_ioccsz` ≥ 68).
    InCapsuleConnectData,
    /// At least one op the device cannot offload (to check that asking for it fails).
    SomeOpNotOffloadable,
    /// Backend NVMe controllers the harness can create (emulated ones, on the reference
    /// target; a plugin must provide them).
    Backends,
    /// The reference target's control plane can run over the device (`Dut::target`): it
    /// builds its subsystems with emulated backend controllers, so it needs them too.
    ControlPlane,
    /// The device's `max_srq` (a verbs device attribute) is at most this, so a case can
    /// create that many SRQs within its budget.
    SrqCountWithin(u32),
    /// Faults injected on the fabric itself (delays, drops): only the simulated fabric
    /// can; a real device cannot be told to slow its wire down.
    FabricFaults,
    /// The host's plain memory regions can be invalidated by the target's SEND with
    /// invalidate: only on the simulated fabric (real devices invalidate memory windows
    /// and fast-registration MRs, which the fabric trait does not model).
    HostInvalidate,
    /// A CM request can carry fewer private data bytes than the CM's field holds: only on
    /// the simulated fabric (RDMA CM over IB CM / RoCE delivers the whole 56-byte field,
    /// zero-padded, whatever length the host gave).
    ShortCmPrivateData,
    /// The host's NIC raises a QP access error when a remote access with a bad key reaches
    /// it. Soft-RoCE (`rxe*`) does not (measured on Linux 6.1 and 6.12; the fabric contract
    /// records the same deviation), so the refusal these cases look for cannot be seen.
    ResponderAccessErrors,
}

/// What the needs of a case are judged against.
#[derive(Debug, Clone, Copy)]
pub struct DutFacts<'a> {
    /// The device's caps.
    pub caps: &'a NvmfCaps,
    /// Its verbs device attributes.
    pub device: &'a DeviceAttr,
    /// Whether the harness can make backend controllers for it.
    pub has_backends: bool,
    /// The fabric's kind (`sim`, `verbs`).
    pub fabric: &'a str,
    /// Two-host mode: the device is in a remote target's process ([`remote`]).
    pub remote: bool,
}

/// Why a case that does not go through the control plane cannot run in two-host mode.
pub const NOT_REMOTE: &str = "two-host mode (--connect) runs only the control-plane cases \
     (areas connect, recovery and security): this case calls the device's offload API, \
     which is in the remote target's process";

impl Need {
    /// Why the DUT cannot meet this need, if it cannot.
    pub fn unmet(self, dut: DutFacts<'_>) -> Option<String> {
        let DutFacts {
            caps,
            device,
            has_backends: dut_has_backends,
            fabric,
            remote,
        } = dut;
        let ok = match self {
            Need::ResponderAccessErrors => !device.name.starts_with("rxe"),
            Need::FabricFaults | Need::HostInvalidate | Need::ShortCmPrivateData => fabric == "sim",
            Need::SrqCountWithin(n) => device.max_srq <= n,
            Need::Ops(ops) => caps.offload_ops_allowed(ops),
            Need::AnyOps(ops) => caps.allowed_offload_ops().intersects(ops),
            Need::NonOffloadedOps => caps.supports_non_offloaded_ops,
            Need::NoNonOffloadedOps => !caps.supports_non_offloaded_ops,
            Need::FrontendNsidLimit => caps.max_frontend_nsid != 0,
            Need::StagingMax => caps.max_staging_buf_size != 0,
            Need::TimeoutBounds => caps.max_cmd_timeout_us != 0,
            Need::ExtraSqs => caps.max_extra_sqs > 0,
            Need::SomeOpNotOffloadable => caps.allowed_offload_ops() != OffloadOps::all(),
            Need::LbaSize(s) => caps.supports_lba_data_size(s),
            Need::InCapsuleBlock => caps
                .lba_data_sizes
                .iter()
                .min()
                .is_some_and(|b| u64::from(caps.max_ioccsz) * 16 >= 64 + u64::from(*b)),
            Need::InCapsuleConnectData => caps.max_ioccsz >= 68,
            Need::InCapsuleOffset => {
                caps.max_icdoff >= 1
                    && caps
                        .lba_data_sizes
                        .iter()
                        .min()
                        .is_some_and(|b| u64::from(caps.max_ioccsz) * 16 >= 64 + 32 + u64::from(*b))
            }
            Need::Backends => dut_has_backends,
            Need::ControlPlane => dut_has_backends || remote,
        };
        (!ok).then(|| match self {
            Need::Ops(ops) => format!(
                "the device does not offload {} (its caps' offload types), which this case \
                 sends",
                op_names(ops)
            ),
            Need::AnyOps(ops) => format!(
                "the device offloads none of {} (its caps' offload types), one of which this \
                 case sends",
                op_names(ops)
            ),
            Need::NonOffloadedOps => "the device passes no command to software on offloaded \
                 QPs (supports_non_offloaded_ops is false), and this case checks what software \
                 receives"
                .into(),
            Need::NoNonOffloadedOps => "the device hands every command it does not offload to \
                 software (supports_non_offloaded_ops), so it never refuses one as unsupported, \
                 which this case checks"
                .into(),
            Need::FrontendNsidLimit => "the device sets no limit on frontend nsids \
                 (max_frontend_nsid = 0), which this case checks"
                .into(),
            Need::StagingMax => "the device sets no upper bound on the staging buffer \
                 (max_staging_buf_size = 0), which this case checks"
                .into(),
            Need::TimeoutBounds => "the device sets no bounds on command timeouts \
                 (max_cmd_timeout_us = 0), which this case checks"
                .into(),
            Need::ExtraSqs => "the device allows no extra SQs per backend controller \
                 (max_extra_sqs = 0)"
                .into(),
            Need::SomeOpNotOffloadable => "the device offloads every op, so no op is left to \
                 check that asking for it is refused"
                .into(),
            Need::LbaSize(s) => {
                format!("the device does not support LBA data size {s} (its caps' lba_data_sizes)")
            }
            Need::InCapsuleBlock => "the device's capsules (max_ioccsz) are too small to carry \
                 one block of its smallest LBA data size in-capsule"
                .into(),
            Need::InCapsuleConnectData => "the device's capsules (max_ioccsz) are too small to \
                 carry a Connect's 1024 bytes of data in-capsule"
                .into(),
            Need::InCapsuleOffset => "the device allows no in-capsule data offset (max_icdoff \
                 is 0), or its capsules (max_ioccsz) cannot carry one block of its smallest LBA \
                 data size after one"
                .into(),
            Need::Backends => "the harness cannot create backend controllers for this device \
                 (a plugin provides none)"
                .into(),
            Need::SrqCountWithin(n) => format!(
                "device max_srq {} is above {n}, more SRQs than this case creates",
                device.max_srq
            ),
            Need::ControlPlane => {
                "the reference control plane cannot run over this device (no emulated backends)"
                    .into()
            }
            Need::HostInvalidate => format!(
                "the {fabric} fabric cannot invalidate the host's plain MR with SEND with \
                 invalidate (real devices only invalidate memory windows and fast-registration \
                 MRs, which the fabric trait does not model)"
            ),
            Need::ResponderAccessErrors => format!(
                "{} is soft-RoCE, which raises no QP access error at the responder of a remote \
                 access with a bad key (Linux 6.1 and 6.12), so the host cannot see the refusal \
                 this case checks for",
                device.name
            ),
            Need::ShortCmPrivateData => format!(
                "the {fabric} fabric's connection manager delivers the CM's whole private \
                 data field, zero-padded, so a short one cannot reach the target"
            ),
            Need::FabricFaults => format!(
                "needs faults injected on the wire, which only the simulated fabric can do \
                 (fabric {fabric})"
            ),
        })
    }
}

/// `ops` for people: `read and write`.
fn op_names(ops: OffloadOps) -> String {
    let names: Vec<String> = ops
        .iter_names()
        .filter(|(_, f)| f.bits().count_ones() == 1)
        .map(|(n, _)| n.to_lowercase().replace('_', " "))
        .collect();
    match names.as_slice() {
        [] => "no op".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The body of a case.
pub type Body = Arc<dyn Fn(Dut) -> BoxFuture<'static, CaseResult> + Send + Sync>;

/// One offload conformance case.
#[derive(Clone)]
pub struct Case {
    /// Stable id, `<area>.<what>`, e.g. `mapping.eexist.same-ctrl`.
    pub id: String,
    /// Area: `caps`, `srq`, `ctrl`, `mapping`, …
    pub area: &'static str,
    /// The requirement it checks (see [`requirements`]).
    pub requirement: &'static str,
    /// One line.
    pub description: String,
    /// What the device must offer for the case to run.
    pub needs: Vec<Need>,
    /// The code.
    pub body: Body,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("requirement", &self.requirement)
            .finish_non_exhaustive()
    }
}

impl Case {
    /// A case; `body` is an async fn of the [`Dut`].
    pub fn new<F, Fut>(
        area: &'static str,
        id: impl Into<String>,
        requirement: &'static str,
        description: impl Into<String>,
        needs: &[Need],
        body: F,
    ) -> Case
    where
        F: Fn(Dut) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = CaseResult> + Send + 'static,
    {
        Case {
            id: format!("{area}.{}", id.into()),
            area,
            requirement,
            description: description.into(),
            needs: needs.to_vec(),
            body: Arc::new(move |d| Box::pin(body(d))),
        }
    }

    /// Tags, derived from the metadata so they cannot drift: the area's group (`api`,
    /// `io`, `faults`, `connect`, `security`), `limits` for bound checks, and one tag per
    /// kind of need (`needs-backends`, `needs-non-offloaded-ops`, …).
    pub fn tags(&self) -> Vec<&'static str> {
        let mut t = vec![match self.area {
            "caps" | "srq" | "ctrl" | "mapping" => "api",
            "datapath" | "software" | "unsupported" | "target-io" => "io",
            "pci-error" | "timeout" | "recovery" => "faults",
            "connect" | "admin" => "connect",
            _ => "security",
        }];
        let bound = ["limit", ".at-", "above-", "below-", "max-io-sz"];
        if bound.iter().any(|b| self.id.contains(b)) {
            t.push("limits");
        }
        for n in &self.needs {
            let tag = match n {
                Need::Ops(_) | Need::AnyOps(_) => "needs-ops",
                Need::NonOffloadedOps => "needs-non-offloaded-ops",
                Need::NoNonOffloadedOps => "needs-no-non-offloaded-ops",
                Need::FrontendNsidLimit
                | Need::StagingMax
                | Need::TimeoutBounds
                | Need::SrqCountWithin(_) => "needs-bounds",
                Need::ExtraSqs => "needs-extra-sqs",
                Need::LbaSize(_)
                | Need::InCapsuleBlock
                | Need::InCapsuleOffset
                | Need::InCapsuleConnectData => "needs-format",
                Need::SomeOpNotOffloadable => "needs-partial-offload",
                Need::Backends | Need::ControlPlane => "needs-backends",
                Need::FabricFaults | Need::HostInvalidate | Need::ShortCmPrivateData => "needs-sim",
                Need::ResponderAccessErrors => "needs-hardware-rnic",
            };
            if !t.contains(&tag) {
                t.push(tag);
            }
        }
        t
    }

    /// The first unmet need's reason, if any (in two-host mode, first whether the case
    /// goes through the control plane at all).
    pub fn unmet(&self, dut: DutFacts<'_>) -> Option<String> {
        if dut.remote && !self.needs.contains(&Need::ControlPlane) {
            return Some(NOT_REMOTE.into());
        }
        self.needs.iter().find_map(|n| n.unmet(dut))
    }
}

/// Every offload case, in catalog order.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(crate::areas::caps::cases());
    v.extend(crate::areas::srq::cases());
    v.extend(crate::areas::ctrl::cases());
    v.extend(crate::areas::mapping::cases());
    v.extend(crate::areas::datapath::cases());
    v.extend(crate::areas::in_capsule_offset::cases());
    v.extend(crate::areas::staging_offset::cases());
    v.extend(crate::areas::qp_teardown::cases());
    v.extend(crate::areas::backend_rings::cases());
    v.extend(crate::areas::software::cases());
    v.extend(crate::areas::srq_verbs::cases());
    v.extend(crate::areas::unsupported::cases());
    v.extend(crate::areas::faults::cases());
    v.extend(crate::areas::backend_errors::cases());
    v.extend(crate::areas::connect::cases());
    v.extend(crate::areas::admin::cases());
    v.extend(crate::areas::target_io::cases());
    v.extend(crate::areas::recovery::cases());
    v.extend(crate::areas::security::cases());
    v
}
