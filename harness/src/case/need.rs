//! What a case needs to run ([`Need`]), and what needs are judged against ([`Facts`]).
//! A case whose needs are not met is skipped with the reason [`Need::unmet`] gives, and
//! that reason reaches the reports: it never passes silently.
//!
//! The needs of the fabric contract are about the fabric (fault injection, two devices,
//! determinism, known deviations of real devices); those of the offload catalog are
//! mostly about the device under test ([`DutFacts`]: its caps, backends, control plane).

use std::time::Duration;

use nix::errno::Errno;

use crate::api::{NvmfCaps, OffloadOps};
use crate::fabric::{DeviceAttr, Fabric, Fault};

/// Address that belongs to no device (TEST-NET-1, RFC 5737).
pub const FOREIGN_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(192, 0, 2, 1);

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

/// Something a case needs beyond one working RDMA device; absent → the case is skipped
/// with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    // --- the fabric ---
    /// The fabric can inject this kind of fault ([`Fabric::inject`] is not EOPNOTSUPP).
    FaultInjection(FaultKind),
    /// At least two devices (a fault on one must not hit the other).
    TwoDevices,
    /// The fabric is deterministic for a seed and the runner can build fresh ones; only
    /// `sim`.
    Deterministic,
    /// Faults injected on the fabric itself (delays, drops) while a device under test
    /// runs: only the simulated fabric can; a real device cannot be told to slow its wire
    /// down.
    FabricFaults,
    /// SEND with invalidate may name the rkey of a plain registered MR. `sim` allows it;
    /// real devices (rxe among them) only invalidate memory windows and fast-registration
    /// MRs, which the [`Fabric`] trait does not model, and fail the receive instead, so the
    /// case skips on every fabric but `sim` (a documented deviation, not a sim bug).
    InvalidatePlainMr,
    /// A CM request can carry fewer private data bytes than the CM's field holds: only on
    /// the simulated fabric (RDMA CM over IB CM / RoCE delivers the whole 56-byte field,
    /// zero-padded, whatever length the host gave).
    ShortCmPrivateData,
    /// The fabric's devices are not soft-RoCE (`rxe*`): the case checks a behaviour of RC
    /// hardware and `sim` that rxe lacks, named by the reason. Each use documents a
    /// deviation of rxe (measured with Linux 6.1 and 6.12, rdma-core 44) from the sim,
    /// which the sim keeps because hardware behaves that way.
    NotSoftRoce(&'static str),
    /// The host's NIC raises a QP access error when a remote access with a bad key reaches
    /// it. Soft-RoCE (`rxe*`) does not (measured on Linux 6.1 and 6.12; the fabric contract
    /// records the same deviation), so the refusal these cases look for cannot be seen.
    ResponderAccessErrors,

    // --- the device under test ---
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
    /// The reference target's control plane can run over the device: it builds its
    /// subsystems with emulated backend controllers, so it needs them too.
    ControlPlane,
    /// The device's `max_srq` (a verbs device attribute) is at most this, so a case can
    /// create that many SRQs within its budget.
    SrqCountWithin(u32),
    /// The project's emulated backend controllers, for what the reason says only they
    /// can do (counters of what the controller fetched, faults armed on a given command,
    /// extra SQs, per-command delays): unmet when the run's backend is a real controller.
    EmulatedBackend(&'static str),
    /// Backend faults can be injected: always into emulated controllers; into a real one
    /// only through the host's fault broker.
    BackendFaults,
    /// The device can make its own path to a backend controller fail as a PCI error would
    /// (ABI 2 `inject_pci_error`; an optional hook).
    PciErrorHook,
}

/// What the run's real backend controller offers (`nvmf-conform run --backend vfio:PCI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RealBackendFacts {
    /// The LBA format of its namespace 1, the only one cases get.
    pub format: crate::backend::emulated::LbaFormat,
    /// Blocks of that namespace.
    pub blocks: u64,
    /// Whether the host's fault broker answers (real faults can be injected).
    pub broker: bool,
}

/// What the device under test offers, for the needs about it.
#[derive(Debug, Clone, Copy)]
pub struct DutFacts<'a> {
    /// The device's caps.
    pub caps: &'a NvmfCaps,
    /// Its verbs device attributes.
    pub device: &'a DeviceAttr,
    /// Whether the harness can make backend controllers for it.
    pub has_backends: bool,
    /// Two-host mode: the device is in a remote target's process, reached through the
    /// control channel.
    pub remote: bool,
    /// The backend controllers are queue pairs of this real controller (else emulated).
    pub real_backend: Option<RealBackendFacts>,
    /// Whether the device injects its own backend PCI errors (ABI 2 `inject_pci_error`).
    pub pci_error_hook: bool,
}

/// What needs are judged against.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    /// The fabric the case runs on.
    pub fabric: &'a dyn Fabric,
    /// Whether the runner can build fresh fabrics for a seed.
    pub can_make_fresh: bool,
    /// The device under test, for cases that drive one.
    pub dut: Option<DutFacts<'a>>,
}

impl Facts<'_> {
    /// Why a case with these needs cannot run, or `None` when it can. A fabric case (no
    /// device under test) on a fabric without any device is skipped.
    pub fn unmet(&self, needs: &[Need]) -> Option<String> {
        if self.dut.is_none() {
            match self.fabric.devices() {
                Err(e) => return Some(format!("cannot list RDMA devices: {e}")),
                Ok(d) if d.is_empty() => return Some("no RDMA device".into()),
                Ok(_) => {}
            }
        }
        needs.iter().find_map(|n| n.unmet(self))
    }
}

impl Need {
    /// The tag the catalog gives cases with this need (`tag:needs-…` filters).
    pub fn tag(self) -> &'static str {
        match self {
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
            Need::Backends
            | Need::ControlPlane
            | Need::EmulatedBackend(_)
            | Need::BackendFaults => "needs-backends",
            Need::PciErrorHook => "needs-pci-error-hook",
            Need::FabricFaults
            | Need::InvalidatePlainMr
            | Need::ShortCmPrivateData
            | Need::Deterministic => "needs-sim",
            Need::FaultInjection(_) => "needs-fault-injection",
            Need::TwoDevices => "needs-two-devices",
            Need::ResponderAccessErrors | Need::NotSoftRoce(_) => "needs-hardware-rnic",
        }
    }

    /// Why `facts` do not meet this need, if they do not.
    pub fn unmet(self, facts: &Facts<'_>) -> Option<String> {
        let kind = facts.fabric.kind();
        match self {
            Need::FaultInjection(fault) => match facts.fabric.inject(fault.probe()) {
                Err(e) if e.errno() == Errno::EOPNOTSUPP => Some(format!(
                    "the {kind} fabric cannot inject {fault:?} faults ({e})"
                )),
                _ => None,
            },
            Need::TwoDevices => match facts.fabric.devices() {
                Ok(d) if d.len() >= 2 => None,
                Ok(d) => Some(format!(
                    "needs two RDMA devices, the {kind} fabric has {}",
                    d.len()
                )),
                Err(e) => Some(format!("cannot list RDMA devices: {e}")),
            },
            Need::Deterministic if kind != "sim" => {
                Some(format!("the {kind} fabric is not deterministic"))
            }
            Need::Deterministic if !facts.can_make_fresh => {
                Some("the runner cannot build fresh fabrics for a seed".into())
            }
            Need::Deterministic => None,
            Need::FabricFaults => (kind != "sim").then(|| {
                format!(
                    "needs faults injected on the wire, which only the simulated fabric can do \
                     (fabric {kind})"
                )
            }),
            Need::InvalidatePlainMr => (kind != "sim").then(|| {
                format!(
                    "the {kind} fabric cannot invalidate a plain MR's rkey with SEND with \
                     invalidate (real devices only invalidate memory windows and \
                     fast-registration MRs, which the fabric trait does not model)"
                )
            }),
            Need::ShortCmPrivateData => (kind != "sim").then(|| {
                format!(
                    "the {kind} fabric's connection manager delivers the CM's whole private \
                     data field, zero-padded, so a short one cannot reach the target"
                )
            }),
            Need::NotSoftRoce(reason) => {
                let devices = facts.fabric.devices().unwrap_or_default();
                (kind != "sim" && devices.iter().any(|d| d.starts_with("rxe"))).then(|| {
                    format!(
                        "soft-RoCE ({}) differs from RC hardware here: {reason}",
                        devices.join(", ")
                    )
                })
            }
            _ => match facts.dut {
                Some(dut) => self.unmet_by(dut),
                None => Some(format!(
                    "needs a device under test ({self:?}), and this case opens none"
                )),
            },
        }
    }

    /// Why the device under test does not meet this need, if it does not.
    fn unmet_by(self, dut: DutFacts<'_>) -> Option<String> {
        let DutFacts {
            caps,
            device,
            has_backends,
            remote,
            real_backend,
            pci_error_hook,
        } = dut;
        if let Some(real) = real_backend {
            if let Some(why) = self.unmet_by_real(real) {
                return Some(why);
            }
        }
        let ok = match self {
            Need::ResponderAccessErrors => !device.name.starts_with("rxe"),
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
            Need::InCapsuleBlock => in_capsule_room(caps, 64),
            Need::InCapsuleConnectData => caps.max_ioccsz >= 68,
            Need::InCapsuleOffset => caps.max_icdoff >= 1 && in_capsule_room(caps, 64 + 32),
            Need::Backends => has_backends,
            Need::ControlPlane => has_backends || remote,
            Need::PciErrorHook => pci_error_hook,
            // Needs about the fabric are judged in `unmet`.
            _ => true,
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
            Need::PciErrorHook => "the device cannot inject a PCI error on its own path to a \
                 backend controller (nvmf_offload_ops.inject_pci_error absent or EOPNOTSUPP: an \
                 optional hook of ABI 2)"
                .into(),
            Need::ResponderAccessErrors => format!(
                "{} is soft-RoCE, which raises no QP access error at the responder of a remote \
                 access with a bad key (Linux 6.1 and 6.12), so the host cannot see the refusal \
                 this case checks for",
                device.name
            ),
            other => format!("{other:?} is not met"),
        })
    }
}

impl Need {
    /// Why a real backend controller with `real` does not meet this need, if it does not.
    fn unmet_by_real(self, real: RealBackendFacts) -> Option<String> {
        match self {
            Need::EmulatedBackend(what) => Some(format!(
                "{what}: only the project's emulated controllers can, and the run's backend is \
                 a real controller"
            )),
            Need::BackendFaults if !real.broker => Some(format!(
                "no fault broker ({} unset): the real controller's faults are injected by the \
                 host's QEMU monitor (docs/softroce.md)",
                crate::backend::vfio::broker::ENV
            )),
            Need::LbaSize(s) if s != real.format.lba_data_size() => Some(format!(
                "the real controller's namespace 1 is formatted {} ({} bytes per block), not {s}",
                real.format,
                real.format.lba_data_size()
            )),
            _ => None,
        }
    }
}

/// Whether a capsule holds `before` bytes and then one block of the smallest LBA data size.
fn in_capsule_room(caps: &NvmfCaps, before: u64) -> bool {
    caps.lba_data_sizes
        .iter()
        .min()
        .is_some_and(|b| u64::from(caps.max_ioccsz) * 16 >= before + u64::from(*b))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::emulated::LbaFormat;

    fn real(broker: bool) -> RealBackendFacts {
        RealBackendFacts {
            format: LbaFormat::L512,
            blocks: 262_144,
            broker,
        }
    }

    #[test]
    fn a_real_controller_meets_what_it_has_and_names_what_it_lacks() {
        // What only the emulated controllers have is skipped, with the case's reason.
        let why = Need::EmulatedBackend("counts fetched commands")
            .unmet_by_real(real(true))
            .unwrap();
        assert!(why.starts_with("counts fetched commands: only"), "{why}");
        assert!(why.contains("real controller"), "{why}");
        // Faults need the broker.
        assert_eq!(Need::BackendFaults.unmet_by_real(real(true)), None);
        let why = Need::BackendFaults.unmet_by_real(real(false)).unwrap();
        assert!(why.contains("NVMF_FAULT_BROKER"), "{why}");
        // Only the controller's own format.
        assert_eq!(Need::LbaSize(512).unmet_by_real(real(true)), None);
        let why = Need::LbaSize(4096).unmet_by_real(real(true)).unwrap();
        assert!(why.contains("512 bytes per block"), "{why}");
        // Everything else is judged as for any device.
        assert_eq!(Need::Backends.unmet_by_real(real(false)), None);
        assert_eq!(Need::ControlPlane.unmet_by_real(real(false)), None);
        // The tags stay those of backend needs (the catalog's tag filters keep working).
        assert_eq!(Need::EmulatedBackend("x").tag(), "needs-backends");
        assert_eq!(Need::BackendFaults.tag(), "needs-backends");
    }
}
