//! The nvmf-conform reference NVMe-oF target offload: what every vendor device is
//! compared with.
//!
//! - [`engine`]: the software offload engine, an `OffloadProvider` and the device context
//!   software uses with it.
//! - [`control`]: the control plane (Connect, admin, discovery, software I/O, config).
//! - [`remote`]: two-host mode's control channel.
//! - [`quirks`]: deliberate violations, one rule each, to prove the suite can fail.
//! - [`testing`]: rigs that start the target, or the engine alone, on the simulated
//!   fabric with a host beside it (the project's tests, fuzz targets and plugin test).
//!
//! The backend NVMe controllers the engine drives are behind `harness::backend`.

pub mod control;
pub mod engine;
pub mod interop;
pub mod quirks;
pub mod remote;
pub mod testing;
