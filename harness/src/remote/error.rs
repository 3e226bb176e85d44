//! Errors as they cross a process boundary (two-host mode's control channel): an errno and
//! its reason text, [`ErrorRepr`], turned back into the same [`OffloadError`] or
//! [`FabricError`] on the other side, so that a trace line (`EINVAL: srq`) reads the same in
//! either process.
//!
//! Both error types hold `&'static str` reasons (fixed texts naming a field or a rule). A
//! reason that arrives from elsewhere is interned: each distinct text is kept once for the
//! life of the process, up to [`INTERNED_MAX`] texts; beyond that, new texts read
//! [`TOO_MANY_REASONS`] (a peer cannot make this process grow without bound).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::api::OffloadError;
use crate::fabric::FabricError;

/// Most distinct reason texts a process keeps.
pub const INTERNED_MAX: usize = 4096;
/// The reason of an error whose text could not be kept.
pub const TOO_MANY_REASONS: &str = "(reason not kept: too many distinct texts)";
/// Longest reason text kept, bytes (a longer one is cut).
pub const REASON_MAX: usize = 256;

/// An error as it travels: its errno (as a number) and its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRepr {
    /// The errno.
    pub errno: i32,
    /// The reason: the field or rule (an address for EADDRINUSE / EADDRNOTAVAIL, the call
    /// for an OS error).
    pub reason: String,
}

/// `text` with a `'static` life: the same pointer for the same text (see the module docs).
pub fn intern(text: &str) -> &'static str {
    static KEPT: Mutex<Option<Interner>> = Mutex::new(None);
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    kept.get_or_insert_with(|| Interner::new(INTERNED_MAX))
        .get(text)
}

/// Texts kept once each, up to a count.
struct Interner {
    kept: HashSet<&'static str>,
    max: usize,
}

impl Interner {
    fn new(max: usize) -> Interner {
        Interner {
            kept: HashSet::new(),
            max,
        }
    }

    fn get(&mut self, text: &str) -> &'static str {
        let mut text = text;
        if text.len() > REASON_MAX {
            let mut cut = REASON_MAX;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text = &text[..cut];
        }
        if let Some(k) = self.kept.get(text) {
            return k;
        }
        if self.kept.len() >= self.max {
            return TOO_MANY_REASONS;
        }
        let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
        self.kept.insert(leaked);
        leaked
    }
}

impl From<&OffloadError> for ErrorRepr {
    fn from(e: &OffloadError) -> ErrorRepr {
        ErrorRepr {
            errno: e.errno() as i32,
            reason: e.reason().to_string(),
        }
    }
}

impl From<&ErrorRepr> for OffloadError {
    fn from(r: &ErrorRepr) -> OffloadError {
        OffloadError::from_errno(Errno::from_raw(r.errno), intern(&r.reason))
    }
}

impl From<&FabricError> for ErrorRepr {
    fn from(e: &FabricError) -> ErrorRepr {
        let reason = match (e.fixed_reason(), e) {
            (Some(r), _) => r.to_string(),
            (None, FabricError::NoDevice(name)) => name.clone(),
            (None, FabricError::AddrInUse(a) | FabricError::AddrNotAvail(a)) => a.to_string(),
            (None, other) => other.to_string(),
        };
        ErrorRepr {
            errno: e.errno() as i32,
            reason,
        }
    }
}

impl From<&ErrorRepr> for FabricError {
    fn from(r: &ErrorRepr) -> FabricError {
        let errno = Errno::from_raw(r.errno);
        let addr = r.reason.parse::<SocketAddr>();
        match (errno, addr) {
            (Errno::EINVAL, _) => FabricError::Invalid(intern(&r.reason)),
            (Errno::ENOMEM, _) => FabricError::NoMemory(intern(&r.reason)),
            (Errno::EBUSY, _) => FabricError::Busy(intern(&r.reason)),
            (Errno::ENOENT, _) => FabricError::NotFound(intern(&r.reason)),
            (Errno::ENODEV, _) => FabricError::NoDevice(r.reason.clone()),
            (Errno::EADDRINUSE, Ok(a)) => FabricError::AddrInUse(a),
            (Errno::EADDRNOTAVAIL, Ok(a)) => FabricError::AddrNotAvail(a),
            (Errno::EOPNOTSUPP, _) => FabricError::NotSupported(intern(&r.reason)),
            (Errno::ENOTCONN, _) => FabricError::NotConnected(intern(&r.reason)),
            (errno, _) => FabricError::Os {
                call: intern(&r.reason),
                errno,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: Serialize + for<'de> Deserialize<'de>>(v: &T) -> T {
        serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
    }

    #[test]
    fn offload_errors_come_back_the_same() {
        let all = [
            OffloadError::Invalid("srq"),
            OffloadError::Exists("fe_nsid"),
            OffloadError::NotFound("fe_nsid"),
            OffloadError::NotSupported("inject_pci_error"),
            OffloadError::Busy("ctrl has namespaces"),
            OffloadError::NoMemory("max_namespaces"),
            OffloadError::NoSpace("max_srq_backend_ctrls"),
            OffloadError::NoDevice("gone"),
            OffloadError::TimedOut("device"),
            OffloadError::Io("firmware"),
            OffloadError::NotPermitted("caller"),
            OffloadError::AccessDenied("mr"),
            OffloadError::from_errno(Errno::EAGAIN, "queue empty"),
        ];
        for e in all {
            let back = OffloadError::from(&json(&ErrorRepr::from(&e)));
            assert_eq!(back, e);
            assert_eq!(back.to_string(), e.to_string());
        }
    }

    #[test]
    fn fabric_errors_come_back_the_same() {
        let all = FabricError::one_of_each();
        for e in all {
            let back = FabricError::from(&json(&ErrorRepr::from(&e)));
            assert_eq!(back, e);
            assert_eq!(back.to_string(), e.to_string());
        }
    }

    #[test]
    fn interning_keeps_one_copy_and_is_bounded() {
        let a = intern("a reason seen twice");
        let b = intern(&String::from("a reason seen twice"));
        assert!(std::ptr::eq(a, b));
        let long = "é".repeat(REASON_MAX);
        let cut = intern(&long);
        assert!(cut.len() <= REASON_MAX && long.starts_with(cut));
        // a peer sending new texts forever: the table stops growing
        let mut table = Interner::new(3);
        let kept = table.get("one");
        for i in 0..10 {
            table.get(&format!("reason {i}"));
        }
        assert_eq!(table.kept.len(), 3);
        assert_eq!(table.get("another"), TOO_MANY_REASONS);
        assert!(std::ptr::eq(table.get("one"), kept), "kept texts stay");
    }
}
