//! The oracle: what a conforming device with the device under test's caps does in a case.
//!
//! - When the caps are exactly a built-in profile's (`full`, `minimal`, `tight`), that is
//!   the profile's **reviewed snapshot** ([`crate::snapshot`]): the reference target's trace,
//!   reviewed like code. A test keeps the reference's traces equal to them, so the oracle
//!   itself is reviewed.
//! - Otherwise (a vendor's device, a custom profile) it is the **reference target run with
//!   the device's own caps** as its profile, on the simulated fabric, with the same case
//!   seed, in the same run: a differential conformance check.
//!
//! A passing case's trace is compared with the oracle's (a difference fails it, with the
//! diff); a failing case's report draws the oracle's trace as the "Expected" diagram, and
//! says which oracle it came from. Never a trace of other caps.

use std::path::Path;

use harness::api::{NvmfCaps, Profile};
use harness::runner::{CaseRecord, Verdict};

use crate::options::Options;
use crate::snapshot::{self, Comparison, Timing};

/// Where the expected trace of a case comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The reviewed snapshots of this built-in profile.
    Reviewed(&'static str),
    /// The reference target run with the device's caps.
    ReferenceRun,
}

impl Source {
    /// The oracle for a device with `caps`.
    pub fn for_caps(caps: &NvmfCaps) -> Source {
        snapshot::reviewed_profile(caps).map_or(Source::ReferenceRun, Source::Reviewed)
    }

    /// How reports name it.
    pub fn describe(&self) -> String {
        match self {
            Source::Reviewed(p) => format!(
                "the reviewed snapshot of profile `{p}` (the reference target with the \
                 device's caps)"
            ),
            Source::ReferenceRun => "the reference target run with the device's caps and the \
                                     same case seed, in this run"
                .into(),
        }
    }
}

/// An expected trace and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The lines.
    pub lines: Vec<String>,
    /// Where they came from ([`Source::describe`]).
    pub from: String,
}

/// The reviewed snapshot of `id` for `profile` under `dir`, if it has a readable one.
pub fn reviewed(dir: &Path, profile: &'static str, id: &str) -> Option<Expected> {
    let file = snapshot::path(&snapshot::dir_for(dir, profile), id);
    let text = snapshot::read(&file).ok()??;
    Some(Expected {
        lines: text.lines().map(|l| l.trim_end().to_string()).collect(),
        from: Source::Reviewed(profile).describe(),
    })
}

/// How the oracle's reference run of a case goes: the reference target with `caps` (and
/// the device limits of `opts`'s profile when the device under test is the reference
/// target), no quirks, on the simulated fabric, with `opts`'s seed and case bound.
pub fn reference_options(opts: &Options, caps: &NvmfCaps) -> Options {
    let profile = Profile {
        name: "device-caps".into(),
        description: "the caps the device under test reported".into(),
        caps: caps.clone(),
        device: if opts.plugin.is_none() {
            opts.profile.device
        } else {
            Default::default()
        },
    };
    Options {
        seed: opts.seed,
        case_bound: opts.case_bound,
        profile,
        ..Options::default()
    }
}

/// The oracle's trace from the record of a reference run ([`reference_options`]), or why
/// there is none (the reference did not pass the case).
pub fn expected_of(rec: CaseRecord) -> Result<Expected, String> {
    match rec.verdict {
        Verdict::Pass => Ok(Expected {
            lines: rec.trace,
            from: Source::ReferenceRun.describe(),
        }),
        v => Err(format!(
            "the reference target with the device's caps does not pass this case ({}: {})",
            v.name(),
            match &v {
                Verdict::Fail(m) | Verdict::Error(m) | Verdict::Skip(m) => m.as_str(),
                Verdict::Pass => "",
            }
        )),
    }
}

/// The verdict of a case that passed its assertions once its `trace` is compared with the
/// reference run `expected` (`timing` as for snapshots); a difference fails it with the
/// diff.
pub fn judge(expected: &Expected, trace: &[String], actual: &str, timing: Timing) -> Verdict {
    let what = format!(
        "the trace differs from {} (the case's assertions passed)",
        expected.from
    );
    match snapshot::compare_lines(
        &expected.lines,
        (
            "expected the reference target with the device's caps",
            &what,
        ),
        trace,
        actual,
        timing,
    ) {
        Comparison::Matches => Verdict::Pass,
        Comparison::Differs(m) => Verdict::Fail(m),
        Comparison::Missing(_) => Verdict::Pass,
    }
}
