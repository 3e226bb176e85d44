//! An offload case: the shared case model ([`harness::case`]) over the device under test
//! ([`Dut`]). Each case names the requirement it checks; its tags derive from its
//! metadata ([`tags`]).

pub use harness::case::{CaseMeta, DutFacts, Need, NOT_REMOTE};

use super::dut::Dut;

/// One offload conformance case.
pub type Case = harness::case::Case<Dut>;

/// The body of an offload case.
pub type Body = harness::case::Body<Dut>;

/// A case's tags, derived from its metadata so they cannot drift: the area's group (`api`,
/// `io`, `faults`, `connect`, `security`), `limits` for bound checks, and one tag per kind
/// of need (`needs-backends`, `needs-non-offloaded-ops`, …).
pub fn tags(case: &CaseMeta) -> Vec<&'static str> {
    let mut t = vec![match case.area {
        "caps" | "srq" | "ctrl" | "mapping" => "api",
        "datapath" | "software" | "unsupported" | "target-io" => "io",
        "pci-error" | "timeout" | "recovery" => "faults",
        "connect" | "admin" => "connect",
        _ => "security",
    }];
    let bound = ["limit", ".at-", "above-", "below-", "max-io-sz"];
    if bound.iter().any(|b| case.id.contains(b)) {
        t.push("limits");
    }
    for n in &case.needs {
        let tag = n.tag();
        if !t.contains(&tag) {
            t.push(tag);
        }
    }
    t
}
