//! The offload catalog's rule for errors ([`error_rule`]): two requirements a failure is
//! blamed on whatever the case is about, unless the case named the requirement in force
//! itself ([`harness::case::blame`]).

pub use harness::case::{CaseResult, Failure};
use harness::initiator::InitiatorError;

/// Fails unless a completion has a success status.
pub fn ok_status(what: &str, s: harness::wire::Status) -> Result<(), Failure> {
    if s.is_success() {
        Ok(())
    } else {
        Err(Failure::new(format!("{what}: expected success, got {s}")))
    }
}

/// The requirement an error from the host breaks whatever the case is about: a response
/// that never came breaks `DP-ANSWERED` (every command is answered), one whose fields are
/// wrong `DP-RESPONSE`, and a Connect that was never answered `SW-NOT-ENABLED` (a Connect
/// travels on a QP without offload: it must reach software).
pub fn error_rule(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    match e.downcast_ref::<InitiatorError>()? {
        InitiatorError::TimedOut { what, .. } if what.contains("Connect") => Some("SW-NOT-ENABLED"),
        InitiatorError::TimedOut { what, .. } if what.contains("response") => Some("DP-ANSWERED"),
        // The connection ended with the command unanswered.
        InitiatorError::Completion { what, .. } if what.contains("response") => Some("DP-ANSWERED"),
        InitiatorError::Protocol(m) if m.starts_with("response to CID") => Some("DP-RESPONSE"),
        _ => None,
    }
}
