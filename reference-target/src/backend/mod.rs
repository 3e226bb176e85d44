//! Emulated backend NVMe controllers: what the offload engine rings.
//!
//! - [`namespace`]: namespaces in RAM or in a file, with their LBA formats.
//! - [`command`]: executes one NVMe I/O command against the namespaces.
//! - [`controller`]: [`BackendController`], the NVMe queue protocol through fabric memory
//!   regions (SQ/CQ rings, doorbells, phase tags, round-robin over SQs), and the
//!   consumer-side [`CqReader`] and producer-side [`SqWriter`].
//! - [`faults`]: injected faults (PCI error, timeouts, DMA faults, media errors, slow
//!   completions).

pub mod command;
pub mod controller;
pub mod faults;
pub mod namespace;

pub use command::{backend_sqe, execute, Dma, DmaFault};
pub use controller::{
    BackendController, ControllerConfig, Counters, CqReader, CtrlState, DmaRegion, Doorbells, Span,
    SqConfig, SqWriter,
};
pub use faults::{CmdMatch, Fault};
pub use namespace::{LbaFormat, Namespace};

use harness::fabric::FabricError;

/// An error setting up or driving a backend controller.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A fabric call (memory region access) failed.
    #[error("fabric: {0}")]
    Fabric(#[from] FabricError),
    /// A file-backed namespace's I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An LBA format the emulated backend does not support.
    #[error("unsupported LBA format {0}")]
    UnsupportedFormat(LbaFormat),
    /// An invalid configuration; the text names the rule.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A namespace with this nsid already exists on the controller.
    #[error("namespace {0} already exists")]
    NamespaceExists(u32),
    /// No namespace with this nsid on the controller.
    #[error("namespace {0} not found")]
    NamespaceNotFound(u32),
}
