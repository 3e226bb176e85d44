//! The target's software side (the control plane and everything not offloaded), over the
//! offload engine.
//!
//! - [`config`]: the TOML configuration (profile, quirks, ports, subsystems, namespaces).
//! - [`target`]: [`Target::start`] builds the engine, subsystems (PD, staging buffer,
//!   NVMe-oF SRQ, backend controller, namespace mappings), listeners and tasks.
//! - `connect`: RDMA CM request checks and the Fabrics Connect command (admin and I/O
//!   queues; offload is enabled on an I/O QP before its Connect response).
//! - `queue`: one connection: its capsules, RDMA READ/WRITE and responses.
//! - `admin`: properties, Identify, Get Log Page, features, Asynchronous Event Requests,
//!   Keep Alive (and KATO expiry).
//! - `discovery`: the discovery controller (the discovery NQN on every port) and its log.
//! - `io`: the software I/O path for commands the engine does not offload.
//! - [`events`]: reactions to offload events (PCI error, timeout, unsupported op).
//!
//! The decisions where the RFC is silent are in `docs/target.md`.

pub mod admin;
pub mod config;
pub mod connect;
pub mod discovery;
pub mod events;
pub mod io;
mod queue;
pub mod target;

pub use config::{Backing, Config, ConfigError, NamespaceConfig, PortConfig, SubsystemConfig};
pub use target::Target;

/// A target that could not be started: what (the object, naming the config field when
/// there is one) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct TargetError {
    /// The object (e.g. `subsystem `nqn…` staging_buf`).
    pub what: String,
    /// The reason.
    pub message: String,
}

impl TargetError {
    /// An error about `what`.
    pub fn new(what: String, message: String) -> TargetError {
        TargetError { what, message }
    }
}
