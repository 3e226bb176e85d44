//! The nvmf-conform catalog and the code that runs it.
//!
//! Today the catalog holds the fabric contract cases (`harness::fabric::contract`); the
//! offload suites join it as they land. [`run`] executes a selection of cases, each on a
//! fresh fabric with its own seed, and returns a [`harness::runner::RunResult`].

pub mod areas;
pub mod catalog;
pub mod kill;
pub mod offload;
pub mod run;
pub mod seed;
pub mod snapshot;
