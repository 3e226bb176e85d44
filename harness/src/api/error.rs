//! Errors of offload API calls: one variant per errno, each naming the field or rule.
//!
//! Every [`OffloadError`] stands for exactly one POSIX errno ([`OffloadError::errno`]) and
//! [`OffloadError::from_errno`] is its inverse, so an errno coming back through the C ABI
//! of a vendor plugin and an error raised by the reference engine compare the same way.
//!
//! On Linux `ENOTSUP` and `EOPNOTSUPP` are one value (95); the RFC's man page writes
//! `ENOTSUP` and the shipped driver `EOPNOTSUPP`. Both are [`OffloadError::NotSupported`].

use nix::errno::Errno;

use crate::fabric::FabricError;

/// A failed offload API call: the errno a device would return, with the reason.
///
/// The reason is a short fixed text naming the field or the rule (`"ioccsz below
/// min_ioccsz"`); conformance checks compare [`OffloadError::errno`], traces print both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// EINVAL: an argument is outside the capabilities, malformed, or names no live object.
    #[error("EINVAL: {0}")]
    Invalid(&'static str),
    /// EEXIST: the front-facing nsid is already mapped in the SRQ.
    #[error("EEXIST: {0}")]
    Exists(&'static str),
    /// ENOENT: the front-facing nsid is not mapped (on that controller).
    #[error("ENOENT: {0}")]
    NotFound(&'static str),
    /// EOPNOTSUPP (= ENOTSUP on Linux): the device cannot do this at all.
    #[error("EOPNOTSUPP: {0}")]
    NotSupported(&'static str),
    /// EBUSY: the object is still in use (controllers, namespaces or QPs hang on it).
    #[error("EBUSY: {0}")]
    Busy(&'static str),
    /// ENOMEM: a device-wide resource count is exhausted.
    #[error("ENOMEM: {0}")]
    NoMemory(&'static str),
    /// ENOSPC: a per-SRQ count limit is reached.
    #[error("ENOSPC: {0}")]
    NoSpace(&'static str),
    /// ENODEV: the device is gone or was never there.
    #[error("ENODEV: {0}")]
    NoDevice(&'static str),
    /// ETIMEDOUT: the device did not answer in time.
    #[error("ETIMEDOUT: {0}")]
    TimedOut(&'static str),
    /// EIO: the device failed the operation (firmware or PCIe error).
    #[error("EIO: {0}")]
    Io(&'static str),
    /// EPERM: the caller may not do this.
    #[error("EPERM: {0}")]
    NotPermitted(&'static str),
    /// EACCES: access rights of a memory region or object forbid it.
    #[error("EACCES: {0}")]
    AccessDenied(&'static str),
    /// Any other errno. Never holds an errno that has its own variant:
    /// build errors from a raw errno with [`OffloadError::from_errno`].
    #[error("{errno:?}: {reason}")]
    Other {
        /// The errno.
        errno: Errno,
        /// What failed.
        reason: &'static str,
    },
}

impl OffloadError {
    /// The errno this error stands for.
    pub fn errno(&self) -> Errno {
        match self {
            OffloadError::Invalid(_) => Errno::EINVAL,
            OffloadError::Exists(_) => Errno::EEXIST,
            OffloadError::NotFound(_) => Errno::ENOENT,
            OffloadError::NotSupported(_) => Errno::EOPNOTSUPP,
            OffloadError::Busy(_) => Errno::EBUSY,
            OffloadError::NoMemory(_) => Errno::ENOMEM,
            OffloadError::NoSpace(_) => Errno::ENOSPC,
            OffloadError::NoDevice(_) => Errno::ENODEV,
            OffloadError::TimedOut(_) => Errno::ETIMEDOUT,
            OffloadError::Io(_) => Errno::EIO,
            OffloadError::NotPermitted(_) => Errno::EPERM,
            OffloadError::AccessDenied(_) => Errno::EACCES,
            OffloadError::Other { errno, .. } => *errno,
        }
    }

    /// The error for a raw errno (e.g. returned by a plugin), with a reason text;
    /// `from_errno(e, r).errno() == e` for every `e`.
    pub fn from_errno(errno: Errno, reason: &'static str) -> OffloadError {
        match errno {
            Errno::EINVAL => OffloadError::Invalid(reason),
            Errno::EEXIST => OffloadError::Exists(reason),
            Errno::ENOENT => OffloadError::NotFound(reason),
            Errno::EOPNOTSUPP => OffloadError::NotSupported(reason),
            Errno::EBUSY => OffloadError::Busy(reason),
            Errno::ENOMEM => OffloadError::NoMemory(reason),
            Errno::ENOSPC => OffloadError::NoSpace(reason),
            Errno::ENODEV => OffloadError::NoDevice(reason),
            Errno::ETIMEDOUT => OffloadError::TimedOut(reason),
            Errno::EIO => OffloadError::Io(reason),
            Errno::EPERM => OffloadError::NotPermitted(reason),
            Errno::EACCES => OffloadError::AccessDenied(reason),
            errno => OffloadError::Other { errno, reason },
        }
    }

    /// The reason text (field or rule) this error carries.
    pub fn reason(&self) -> &'static str {
        match self {
            OffloadError::Invalid(r)
            | OffloadError::Exists(r)
            | OffloadError::NotFound(r)
            | OffloadError::NotSupported(r)
            | OffloadError::Busy(r)
            | OffloadError::NoMemory(r)
            | OffloadError::NoSpace(r)
            | OffloadError::NoDevice(r)
            | OffloadError::TimedOut(r)
            | OffloadError::Io(r)
            | OffloadError::NotPermitted(r)
            | OffloadError::AccessDenied(r) => r,
            OffloadError::Other { reason, .. } => reason,
        }
    }
}

impl From<FabricError> for OffloadError {
    /// Keeps the fabric's errno and, where it is a fixed text, its reason. Reasons that
    /// carry runtime data (a device name, an address) become a fixed description.
    fn from(e: FabricError) -> OffloadError {
        let errno = e.errno();
        let reason = e.fixed_reason().unwrap_or(match e {
            FabricError::AddrInUse(_) => "fabric: address in use",
            FabricError::AddrNotAvail(_) => "fabric: address not available",
            _ => "fabric: no such device",
        });
        OffloadError::from_errno(errno, reason)
    }
}

/// Result of an offload API call.
pub type Result<T, E = OffloadError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enotsup_is_eopnotsupp_on_linux() {
        assert_eq!(Errno::ENOTSUP, Errno::EOPNOTSUPP);
        assert_eq!(
            OffloadError::from_errno(Errno::ENOTSUP, "x"),
            OffloadError::NotSupported("x")
        );
    }

    #[test]
    fn other_round_trips_and_displays_the_errno_name() {
        let e = OffloadError::from_errno(Errno::EAGAIN, "queue empty");
        assert_eq!(
            e,
            OffloadError::Other {
                errno: Errno::EAGAIN,
                reason: "queue empty"
            }
        );
        assert_eq!(e.errno(), Errno::EAGAIN);
        assert_eq!(e.to_string(), "EAGAIN: queue empty");
        assert_eq!(e.reason(), "queue empty");
    }

    #[test]
    fn display_names_errno_and_reason() {
        assert_eq!(
            OffloadError::Invalid("ioccsz below min_ioccsz").to_string(),
            "EINVAL: ioccsz below min_ioccsz"
        );
        assert_eq!(
            OffloadError::NotSupported("lba_data_size").to_string(),
            "EOPNOTSUPP: lba_data_size"
        );
    }

    #[test]
    fn fabric_errors_keep_their_errno() {
        let cases = FabricError::one_of_each();
        for f in cases {
            let errno = f.errno();
            let o = OffloadError::from(f.clone());
            assert_eq!(o.errno(), errno, "{f}");
        }
        assert_eq!(
            OffloadError::from(FabricError::Busy("qp attached")),
            OffloadError::Busy("qp attached")
        );
        assert_eq!(
            OffloadError::from(FabricError::Os {
                call: "ibv_create_srq_ex",
                errno: Errno::EIO
            }),
            OffloadError::Io("ibv_create_srq_ex")
        );
    }
}
