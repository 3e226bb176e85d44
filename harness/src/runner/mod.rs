//! What a run produced and how it ends: verdicts per case, run metadata, exit codes.
//!
//! The exit codes are made for scripts and `git bisect run`: 0 all passed, 1 a case
//! failed, 2 usage error, 125 the target could not be tested at all ("skip this commit").

pub mod child;
mod exit;
mod record;
mod subject;

pub use exit::ExitCode;
pub use record::{CaseRecord, RunMeta, RunResult, Verdict};
pub use subject::Subject;
