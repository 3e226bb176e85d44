//! An offload case and its metadata (Test262 style): ID, requirement, one-line
//! description, the capabilities it needs ([`Need`]) and tags.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use harness::api::{NvmfCaps, OffloadOps};
use harness::fabric::DeviceAttr;

use super::dut::Dut;
use super::failure::CaseResult;

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
    /// Two-host mode: the device is in a remote target's process ([`super::remote`]).
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
    /// The requirement it checks (see [`super::requirements`]).
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
