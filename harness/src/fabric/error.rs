//! Errors of fabric calls, each one a POSIX errno as libibverbs and librdmacm return them.

use nix::errno::Errno;

/// A failed fabric call: the errno a real verbs provider would return, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FabricError {
    /// EINVAL: an argument or the object's state does not allow the call; names the field.
    #[error("EINVAL: {0}")]
    Invalid(&'static str),
    /// ENOMEM: a device limit (queue depth, object count) was reached.
    #[error("ENOMEM: {0}")]
    NoMemory(&'static str),
    /// EBUSY: the object is still in use by another one.
    #[error("EBUSY: {0}")]
    Busy(&'static str),
    /// ENOENT: the handle does not name a live object of this context.
    #[error("ENOENT: {0}")]
    NotFound(&'static str),
    /// ENODEV: no such RDMA device, or none at all.
    #[error("ENODEV: {0}")]
    NoDevice(String),
    /// EADDRINUSE: something already listens on that address.
    #[error("EADDRINUSE: {0}")]
    AddrInUse(std::net::SocketAddr),
    /// EADDRNOTAVAIL: no device port owns that address.
    #[error("EADDRNOTAVAIL: {0}")]
    AddrNotAvail(std::net::SocketAddr),
    /// EOPNOTSUPP: this fabric cannot do that (for example fault injection on real verbs).
    #[error("EOPNOTSUPP: {0}")]
    NotSupported(&'static str),
    /// ENOMSG / EAGAIN: the connection or queue is gone or empty.
    #[error("ENOTCONN: {0}")]
    NotConnected(&'static str),
    /// Any other errno from the operating system, with the call that returned it.
    #[error("{call} failed: {errno}")]
    Os {
        /// The library call that failed.
        call: &'static str,
        /// Its errno.
        errno: Errno,
    },
}

impl FabricError {
    /// The errno this error stands for.
    pub fn errno(&self) -> Errno {
        match self {
            FabricError::Invalid(_) => Errno::EINVAL,
            FabricError::NoMemory(_) => Errno::ENOMEM,
            FabricError::Busy(_) => Errno::EBUSY,
            FabricError::NotFound(_) => Errno::ENOENT,
            FabricError::NoDevice(_) => Errno::ENODEV,
            FabricError::AddrInUse(_) => Errno::EADDRINUSE,
            FabricError::AddrNotAvail(_) => Errno::EADDRNOTAVAIL,
            FabricError::NotSupported(_) => Errno::EOPNOTSUPP,
            FabricError::NotConnected(_) => Errno::ENOTCONN,
            FabricError::Os { errno, .. } => *errno,
        }
    }
}

impl FabricError {
    /// The reason, when it is a fixed text (the field, rule or call it names); `None` for
    /// the variants that carry runtime data (a device name, an address).
    pub fn fixed_reason(&self) -> Option<&'static str> {
        match self {
            FabricError::Invalid(r)
            | FabricError::NoMemory(r)
            | FabricError::Busy(r)
            | FabricError::NotFound(r)
            | FabricError::NotSupported(r)
            | FabricError::NotConnected(r) => Some(r),
            FabricError::Os { call, .. } => Some(call),
            FabricError::NoDevice(_) | FabricError::AddrInUse(_) | FabricError::AddrNotAvail(_) => {
                None
            }
        }
    }
}

#[cfg(test)]
impl FabricError {
    /// One error of each variant, for tests that must hold for all of them.
    pub(crate) fn one_of_each() -> Vec<FabricError> {
        let addr = "127.0.0.1:4420".parse().expect("an address");
        vec![
            FabricError::Invalid("max_wr"),
            FabricError::NoMemory("max_srq"),
            FabricError::Busy("qp attached"),
            FabricError::NotFound("pd"),
            FabricError::NoDevice("mlx5_0".into()),
            FabricError::AddrInUse(addr),
            FabricError::AddrNotAvail(addr),
            FabricError::NotSupported("inject"),
            FabricError::NotConnected("gone"),
            FabricError::Os {
                call: "ibv_open_device",
                errno: Errno::ENOSYS,
            },
        ]
    }
}

/// Result of a fabric call.
pub type Result<T, E = FabricError> = std::result::Result<T, E>;
