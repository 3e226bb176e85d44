//! The offload conformance areas, one module each.

pub mod backend_errors;
pub mod caps;
pub mod connect;
pub mod ctrl;
pub mod datapath;
pub mod faults;
pub mod mapping;
pub mod recovery;
pub mod security;
pub mod software;
pub mod srq;
pub mod unsupported;
