//! The offload conformance areas, one module each.

pub mod admin;
pub mod admin_features;
pub mod admin_ns_ids;
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
pub mod staging_exhaustion;
pub mod staging_offset;
pub mod target_io;
pub mod unsupported;

use crate::framework::{Case, Need};

/// Every offload case, in catalog order.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(caps::cases());
    v.extend(srq::cases());
    v.extend(ctrl::cases());
    v.extend(mapping::cases());
    v.extend(datapath::cases());
    v.extend(in_capsule_offset::cases());
    v.extend(staging_offset::cases());
    v.extend(qp_teardown::cases());
    v.extend(backend_rings::cases());
    v.extend(software::cases());
    v.extend(srq_verbs::cases());
    v.extend(unsupported::cases());
    v.extend(faults::cases());
    v.extend(backend_errors::cases());
    v.extend(connect::cases());
    v.extend(admin::cases());
    v.extend(admin_features::cases());
    v.extend(admin_ns_ids::cases());
    v.extend(target_io::cases());
    v.extend(recovery::cases());
    v.extend(security::cases());
    for case in &mut v {
        if let Some(why) = emulated_only(case) {
            case.meta.needs.push(Need::EmulatedBackend(why));
        }
    }
    v
}

/// The areas whose cases are written for either kind of backend controller (each case
/// that needs what only the emulated ones have says so itself).
pub const REAL_BACKEND_AREAS: [&str; 5] = [
    "datapath",
    "pci-error",
    "timeout",
    "recovery",
    "backend-error",
];

/// Why a case of another area that reaches backend controllers runs on emulated ones only.
fn emulated_only(case: &Case) -> Option<&'static str> {
    let reaches = case
        .needs
        .iter()
        .any(|n| matches!(n, Need::Backends | Need::ControlPlane));
    if !reaches || REAL_BACKEND_AREAS.contains(&case.area) {
        return None;
    }
    Some(
        "is written for the project's emulated controllers (a real controller runs areas \
         datapath, pci-error, timeout, recovery and backend-error)",
    )
}
