//! Rigs that start the reference target on the simulated fabric, for the project's tests,
//! its fuzz targets and the plugin's end-to-end test: one place, so every test starts a
//! target, a host and an offloaded queue the same way.
//!
//! - [`target`]: the whole target from a config text ([`target::TargetRig`]), a host
//!   device beside it, and the host's side of a controller;
//! - [`engine`]: the offload engine alone (or any device and provider, such as a plugin's),
//!   built the way the harness's `Dut` builds it: an NVMe-oF SRQ with its staging buffer,
//!   one emulated backend controller, and a host queue connected through software and
//!   then offloaded ([`engine::EngineRig`] and the pieces it is made of);
//! - [`data`]: data patterns, a seeded generator and a write-read-compare check;
//! - [`tables`]: the check that a table test's rows are all documented.
//!
//! Every wait is bounded ([`target::BOUND`], [`engine::BOUND`]); on the simulated fabric
//! the bounds are virtual time.

pub mod data;
pub mod engine;
pub mod tables;
pub mod target;
