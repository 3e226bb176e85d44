//! The offload case framework: the shared case model ([`harness::case`]) over the device
//! under test ([`Case`], [`Need`], [`Failure`], the catalog's rule for errors), the
//! device under test a case drives ([`Dut`]: the offload device, its target, its backends,
//! sessions of an NVMe-oF host), and what cases share (requirement blame, counters,
//! backend media, waits). The cases themselves are in `crate::areas`, whose
//! `cases()` is the one list that feeds the catalog, `docs/requirements.md` and the reports.

pub mod backends;
pub mod case;
pub mod counters;
pub mod dut;
pub mod failure;
pub mod media;
pub mod real;
pub mod remote;
pub mod requirements;
pub mod session;
pub mod target;
pub mod wait;

pub use case::{Body, Case, DutFacts, Need};
pub use dut::Dut;
pub use failure::{CaseResult, Failure};
pub use harness::case::blame;
pub use wait::{set_wait_scale, wait};
