//! An offload case: the shared case model ([`harness::case`]) over the device under test
//! ([`Dut`]). Each case names the requirement it checks; its tags derive from its
//! metadata ([`tags`]).

pub use harness::case::{CaseMeta, DutFacts, Need};

use std::future::Future;

use super::dut::Dut;
use super::failure::CaseResult;

/// One offload conformance case.
pub type Case = harness::case::Case<Dut>;

/// The body of an offload case.
pub type Body = harness::case::Body<Dut>;

/// A case of `area` that needs backend controllers.
pub fn backends_case<F, Fut>(
    area: &'static str,
    id: &str,
    requirement: &'static str,
    description: &str,
    body: F,
) -> Case
where
    F: Fn(Dut) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CaseResult> + Send + 'static,
{
    Case::new(area, id, requirement, description, &[Need::Backends], body)
}

/// `total` split in batches of `per` (at least 1): each batch's count made before it, and
/// its size.
pub fn batches(total: u32, per: u32) -> impl Iterator<Item = (u32, u32)> {
    let per = per.max(1);
    (0..total)
        .step_by(per as usize)
        .map(move |made| (made, per.min(total - made)))
}

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
