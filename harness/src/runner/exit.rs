//! Process exit codes of `nvmf-conform`, chosen for CI and `git bisect run`.

/// How a run ends, as a process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ExitCode {
    /// Every case that ran passed (skips allowed).
    Passed = 0,
    /// At least one case failed or errored.
    Failed = 1,
    /// The command line or a configuration file was wrong.
    Usage = 2,
    /// Nothing could be tested (no device, no plugin): `git bisect run` skips the commit.
    Untestable = 125,
}

impl ExitCode {
    /// The numeric process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}
