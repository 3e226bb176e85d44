//! The nvmf-conform catalog and the code that runs it.
//!
//! The catalog holds the offload conformance cases (one module per area in [`areas`], on
//! the case framework of [`framework`]) and the fabric contract cases
//! (`harness::fabric::contract`). [`run`] executes
//! a selection of cases, each on a fresh fabric ([`fabric`]: simulated, or real verbs)
//! with its own seed, in the runner's process
//! or in forked children ([`isolate`]), and returns a [`harness::runner::RunResult`].

pub use harness::{check, check_eq, fail};

pub mod areas;
pub mod catalog;
pub mod fabric;
pub mod framework;
pub mod isolate;
pub mod kill;
pub mod options;
pub mod oracle;
pub mod run;
pub mod seed;
pub mod snapshot;
pub mod soak;
