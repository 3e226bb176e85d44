//! Emulated backend NVMe controllers: what the offload engine rings.
//!
//! - [`namespace`]: namespaces in RAM or in a file, with their LBA formats.
//! - [`command`]: executes one NVMe I/O command against the namespaces.
//! - [`config`]: what a controller is built from (queues, DMA regions, memory doorbells).
//! - [`controller`]: [`BackendController`], an NVMe controller serving its queues through
//!   fabric memory regions (SQ/CQ rings, doorbells, phase tags, round-robin over SQs).
//! - [`faults`]: injected faults (PCI error, timeouts, DMA faults, media errors, slow
//!   completions).
//! - [`bus`]: [`PciBus`], where the engine finds them (and the host side of a plugin's
//!   PCI calls).

pub mod bus;
pub mod command;
pub mod config;
pub mod controller;
pub mod faults;
pub mod namespace;

pub use bus::PciBus;
pub use command::{backend_sqe, execute, Dma, DmaFault};
pub use config::{ControllerConfig, DmaRegion, MemoryConfig, SqConfig};
pub use controller::{BackendController, Counters};
pub use faults::{CmdMatch, Fault};
pub use namespace::{LbaFormat, Namespace};
