//! Why a case failed ([`Failure`]), the `check!` / `check_eq!` / `fail!` macros that fail
//! it, and the helpers both catalogs share ([`Context::ctx`], [`expect_errno`]).

use std::fmt;

use nix::errno::Errno;

use super::blame;
use crate::api::OffloadError;
use crate::fabric::wait::WaitError;
use crate::fabric::FabricError;

/// Why a case failed: what was expected and what happened, and the requirement the
/// failed check checks ([`blame`]; `None` for cases that name no requirement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What was expected and what happened.
    pub message: String,
    /// The requirement in force when the check failed.
    pub requirement: Option<&'static str>,
}

impl Failure {
    /// A failure of the check that is running, blamed on the requirement in force.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            requirement: blame::current(),
        }
    }

    /// The same failure, its message prefixed with `what: ` (what the case was doing).
    pub fn context(mut self, what: impl fmt::Display) -> Failure {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    /// The error's text, blamed on the requirement in force, or on the one the catalog's
    /// rule for errors names ([`blame::of_error`]).
    fn from(e: E) -> Failure {
        let mut f = Failure::new(e.to_string());
        if let Some(r) = blame::of_error(&e) {
            f.requirement = Some(r);
        }
        f
    }
}

/// The result of a case body.
pub type CaseResult = Result<(), Failure>;

/// Fails the case with a formatted message unless the condition holds (counted as a check
/// of the requirement in force when it holds).
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {{
        if !$cond {
            return Err($crate::case::Failure::new(format!($($fmt)+)));
        }
        $crate::case::blame::count();
    }};
}

/// Fails the case unless `got == expected`, naming both.
#[macro_export]
macro_rules! check_eq {
    ($got:expr, $expected:expr, $($fmt:tt)+) => {{
        let got = &$got;
        let expected = &$expected;
        if got != expected {
            return Err($crate::case::Failure::new(format!(
                "{}: expected {:?}, got {:?}",
                format!($($fmt)+),
                expected,
                got
            )));
        }
        $crate::case::blame::count();
    }};
}

/// Fails the case right away with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($fmt:tt)+) => {
        return Err($crate::case::Failure::new(format!($($fmt)+)))
    };
}

/// Adds what was being done to an error, turning it into a [`Failure`].
pub trait Context<T> {
    /// `what` failed with the error.
    fn ctx(self, what: impl fmt::Display) -> Result<T, Failure>;
}

impl<T> Context<T> for Result<T, FabricError> {
    fn ctx(self, what: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(format!("{what}: unexpected error {e}")))
    }
}

impl<T> Context<T> for Result<T, WaitError> {
    fn ctx(self, what: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(format!("{what}: {e}")))
    }
}

/// An error that carries an errno: what [`expect_errno`] compares.
pub trait WithErrno: fmt::Display {
    /// The errno.
    fn errno(&self) -> Errno;
}

impl WithErrno for FabricError {
    fn errno(&self) -> Errno {
        FabricError::errno(self)
    }
}

impl WithErrno for OffloadError {
    fn errno(&self) -> Errno {
        OffloadError::errno(self)
    }
}

/// Fails unless `r` failed with `errno` (counted as a check when it did).
pub fn expect_errno<T, E: WithErrno>(
    r: Result<T, E>,
    errno: Errno,
    what: impl fmt::Display,
) -> CaseResult {
    match r {
        Err(e) if e.errno() == errno => {
            blame::count();
            Ok(())
        }
        Err(e) => Err(Failure::new(format!(
            "{what}: expected {errno:?}, got {:?} ({e})",
            e.errno()
        ))),
        Ok(_) => Err(Failure::new(format!(
            "{what}: expected {errno:?}, got success (the call returned 0)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(n: u32) -> CaseResult {
        check!(n < 3, "n is {n}");
        check_eq!(n % 2, 0, "n's parity");
        if n == 2 {
            fail!("two");
        }
        Ok(())
    }

    #[test]
    fn macros_fail_with_what_was_expected() {
        assert_eq!(checked(0), Ok(()));
        assert_eq!(checked(4).unwrap_err().message, "n is 4");
        assert_eq!(
            checked(1).unwrap_err().message,
            "n's parity: expected 0, got 1"
        );
        assert_eq!(checked(2).unwrap_err().message, "two");
    }

    #[test]
    fn expect_errno_names_both_errnos() {
        let busy: Result<(), FabricError> = Err(FabricError::Busy("busy"));
        assert_eq!(expect_errno(busy.clone(), Errno::EBUSY, "x"), Ok(()));
        let m = expect_errno(busy, Errno::EEXIST, "x").unwrap_err().message;
        assert!(m.starts_with("x: expected EEXIST, got EBUSY ("), "{m}");
        let m = expect_errno(Ok::<(), FabricError>(()), Errno::EEXIST, "y")
            .unwrap_err()
            .message;
        assert_eq!(m, "y: expected EEXIST, got success (the call returned 0)");
    }
}
