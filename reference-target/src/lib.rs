//! The nvmf-conform reference NVMe-oF target offload: emulated backend NVMe controllers,
//! the software offload engine (an `OffloadProvider`), and the target's control plane.
//!
//! It is built in the next milestone (issue 3); the crate exists now so the workspace has
//! the shape users will find: `harness`, `reference-target`, `suites`.

pub mod backend;
