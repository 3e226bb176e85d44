//! Why a case failed ([`Failure`]), and the `check!` / `check_eq!` macros that fail it.

use std::fmt;

use super::blame;

/// Why a case failed: what was expected and what happened, and the requirement the
/// failed check checks ([`blame`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What was expected and what happened.
    pub message: String,
    /// The requirement in force when the check failed (`None` outside a case).
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
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    /// The error's text. Unless the case named the requirement in force itself, a
    /// response that never came, or one whose fields are wrong, is blamed on the rule it
    /// breaks (`DP-ANSWERED`, `DP-RESPONSE`) whatever the case is about ([`blame`]).
    fn from(e: E) -> Failure {
        use harness::initiator::InitiatorError;
        let mut f = Failure::new(e.to_string());
        if blame::explicit() {
            return f;
        }
        match (&e as &dyn std::any::Any).downcast_ref::<InitiatorError>() {
            // A Connect travels on a QP without offload: it must reach software.
            Some(InitiatorError::TimedOut { what, .. }) if what.contains("Connect") => {
                f.requirement = Some("SW-NOT-ENABLED");
            }
            Some(InitiatorError::TimedOut { what, .. }) if what.contains("response") => {
                f.requirement = Some("DP-ANSWERED");
            }
            // The connection ended with the command unanswered.
            Some(InitiatorError::Completion { what, .. }) if what.contains("response") => {
                f.requirement = Some("DP-ANSWERED");
            }
            Some(InitiatorError::Protocol(m)) if m.starts_with("response to CID") => {
                f.requirement = Some("DP-RESPONSE");
            }
            _ => {}
        }
        f
    }
}

impl Failure {
    /// The same failure, its message prefixed with `what: ` (what the case was doing).
    pub fn context(mut self, what: impl fmt::Display) -> Failure {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

/// The result of a case body.
pub type CaseResult = Result<(), Failure>;

/// Fails the case with a formatted message unless the condition holds (counted as a check
/// of the requirement in force when it holds).
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::framework::Failure::new(format!($($fmt)+)));
        }
        $crate::framework::blame::count();
    };
}

/// Fails the case unless `got == expected`, naming both.
#[macro_export]
macro_rules! check_eq {
    ($got:expr, $expected:expr, $($fmt:tt)+) => {{
        let got = &$got;
        let expected = &$expected;
        if got != expected {
            return Err($crate::framework::Failure::new(format!(
                "{}: expected {:?}, got {:?}",
                format!($($fmt)+),
                expected,
                got
            )));
        }
        $crate::framework::blame::count();
    }};
}
