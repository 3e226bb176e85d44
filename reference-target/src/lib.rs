//! The nvmf-conform reference NVMe-oF target offload: what every vendor device is
//! compared with.
//!
//! - [`backend`]: emulated backend NVMe controllers (SQ/CQ rings and doorbells in fabric
//!   memory, RAM or file namespaces, LBA formats with metadata, fault injection).
//! - [`engine`]: the software offload engine, an `OffloadProvider` and the device context
//!   software uses with it.
//! - [`pci`]: the emulated bus on which the engine finds backend controllers.
//! - [`quirks`]: deliberate violations, one rule each, to prove the suite can fail.

pub mod backend;
pub mod control;
pub mod engine;
pub mod interop;
pub mod pci;
pub mod quirks;
pub mod remote;
mod round_robin;
