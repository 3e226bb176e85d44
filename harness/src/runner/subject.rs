//! What a finding is about ([`Subject`]): the device under test, the reference target's
//! own control plane running over it, or the fabric.
//!
//! A vendor certifying a device needs to know which findings are about the device. The
//! offload catalog checks the device's offload API, data path and reaction to backend
//! faults, but also the reference target's control plane (Connect handling, admin,
//! discovery, keep-alive, the software I/O path): software that runs over the device and
//! that the vendor does not ship. Each requirement says which of the two it binds, and
//! every report keeps them apart.

use serde::{Deserialize, Serialize};

/// What a requirement (and so a case's findings) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    /// The device under test: the offload API, its data path, its reaction to backend
    /// faults.
    Device,
    /// The reference target's own control plane, which runs over the device.
    ControlPlane,
    /// The RDMA fabric (the fabric contract's cases).
    Fabric,
}

impl Subject {
    /// The name reports use: `device`, `control-plane`, `fabric`.
    pub fn name(self) -> &'static str {
        match self {
            Subject::Device => "device",
            Subject::ControlPlane => "control-plane",
            Subject::Fabric => "fabric",
        }
    }

    /// What it is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Subject::Device => "the device under test",
            Subject::ControlPlane => "the reference target's control plane (not the device)",
            Subject::Fabric => "the RDMA fabric",
        }
    }
}
