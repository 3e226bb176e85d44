//! The target's software side (the control plane and everything not offloaded), over the
//! offload engine.
//!
//! - [`config`]: the TOML configuration (profile, quirks, ports, subsystems, namespaces).
//! - [`target`]: [`Target::start`] builds the engine, subsystems (PD, staging buffer,
//!   NVMe-oF SRQ, backend controller, namespace mappings), listeners and tasks.
//! - `backend`: the controller behind each subsystem (emulated, or real through VFIO) and
//!   the software I/O it serves.
//! - `state`: what the target's tasks share (subsystems, ports, controllers, connections).
//! - `accept`: RDMA CM request checks; an accepted connection gets its task.
//! - `serve`: a connection's task: its work completions, each capsule dispatched.
//! - `connect`: the Fabrics Connect command (admin and I/O queues; offload is enabled on
//!   an I/O QP before its Connect response).
//! - `queue`: one connection's state: RDMA READ/WRITE and responses.
//! - `admin`: properties, Identify, Get Log Page, Asynchronous Event Requests, Keep Alive.
//! - `features`: Set / Get Features, consistent with Identify.
//! - `keepalive`: the Keep Alive Timer (KATO expiry).
//! - `identity`: what the target says of itself (VID, model, limits) and the Identify data
//!   and log pages it serves, built with `harness::wire`'s types.
//! - `discovery`: the discovery controller's log (the discovery NQN on every port).
//! - [`ns_ids`]: a namespace's identifiers (UUID, NGUID, EUI-64), configured or derived.
//! - `io`: the software I/O path for commands the engine does not offload.
//! - [`events`]: reactions to offload events (PCI error, timeout, unsupported op).
//! - `stop`: [`Target::stop`], an orderly stop that gives the device back every object
//!   the target made on it.
//!
//! The decisions where the RFC is silent are in `docs/target.md`.

pub mod accept;
pub mod admin;
mod backend;
pub mod config;
pub mod connect;
pub mod discovery;
pub mod events;
mod features;
pub mod identity;
pub mod io;
mod keepalive;
pub mod ns_ids;
mod queue;
mod serve;
mod state;
mod stop;
pub mod target;

pub use config::{
    BackendConfig, Backing, Config, ConfigError, NamespaceConfig, PortConfig, SubsystemConfig,
};
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
