//! The offload conformance areas, one module each.

pub mod caps;
pub mod ctrl;
pub mod mapping;
pub mod srq;
