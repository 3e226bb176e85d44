//! The offload conformance areas, one module each.

pub mod admin;
pub mod backend_errors;
pub mod backend_rings;
pub mod caps;
pub mod connect;
pub mod ctrl;
pub mod datapath;
pub mod faults;
pub mod in_capsule_offset;
pub mod mapping;
pub mod qp_teardown;
pub mod recovery;
pub mod security;
pub mod software;
pub mod srq;
pub mod srq_verbs;
pub mod staging_offset;
pub mod target_io;
pub mod unsupported;
