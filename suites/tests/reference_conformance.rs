//! The reference target conforms: every offload case passes (or skips with a reason) for
//! every shipped profile, and quirks that break an API rule make a case fail.

use harness::api::Profile;
use harness::runner::Verdict;
use reference_target::quirks::{Quirk, Quirks};
use suites::catalog::{self, Entry};
use suites::run::{self, Options};

fn offload_entries() -> Vec<Entry> {
    catalog::all()
        .into_iter()
        .filter(|e| e.requirement.is_some())
        .collect()
}

fn opts(profile: &str, quirks: Quirks) -> Options {
    Options {
        profile: Profile::builtin(profile).unwrap(),
        quirks,
        ..Options::default()
    }
}

#[test]
fn every_profile_conforms() {
    for profile in ["full", "minimal", "tight"] {
        let result = run::run(&offload_entries(), &opts(profile, Quirks::none()), |_| {});
        let bad: Vec<String> = result
            .cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Fail(_) | Verdict::Error(_)))
            .map(|c| format!("{}: {:?}", c.id, c.verdict))
            .collect();
        assert!(bad.is_empty(), "profile {profile}:\n{}", bad.join("\n"));
        let passed = result.count("pass");
        if profile == "full" {
            // The complete device runs nearly everything; only what needs a lesser device
            // (an op it cannot offload, no non-offloaded ops) skips.
            assert!(
                passed * 20 >= result.cases.len() * 19,
                "profile full: only {passed} of {} passed",
                result.cases.len()
            );
        }
        assert!(passed > 0, "profile {profile}: nothing passed");
        for c in &result.cases {
            if let Verdict::Skip(why) = &c.verdict {
                assert!(!why.is_empty(), "{} skipped without a reason", c.id);
            }
        }
    }
}

#[test]
fn device_quirks_are_caught() {
    // quirk, profile, a case that must catch it (the kill matrix proper is generated
    // over the whole catalog; this pins the case named for each rule).
    let table = [
        (
            Quirk::OffloadAtQpCreation,
            "full",
            "software.offload-not-enabled",
        ),
        (
            Quirk::EexistPerCtrl,
            "full",
            "mapping.eexist.other-ctrl-same-srq",
        ),
        (Quirk::UnmapMissingOk, "full", "mapping.enoent.never-mapped"),
        (Quirk::LbaSizeUnchecked, "full", "mapping.lba-size.1024"),
        (
            Quirk::UnsupportedOpSilent,
            "minimal",
            "unsupported.unknown-opcode",
        ),
        (Quirk::NoPciErrEvent, "full", "pci-error.idle"),
        (Quirk::NoTimeoutEvent, "full", "timeout.event-and-answer"),
        (
            Quirk::LoseInflightOnPciErr,
            "full",
            "pci-error.in-flight-answered",
        ),
        (
            Quirk::EarlyWriteAck,
            "full",
            "timeout.write-not-acknowledged-early",
        ),
        (Quirk::CqPhaseStuck, "full", "datapath.queue-wrap"),
        (Quirk::SglLengthUnchecked, "full", "software.sgl-too-short"),
        (
            Quirk::HangOneCommand,
            "full",
            "datapath.write-read.lba-4096",
        ),
        (Quirk::AllowAnyHost, "full", "security.host-not-allowed"),
    ];
    for (quirk, profile, case) in table {
        let entries: Vec<Entry> = offload_entries()
            .into_iter()
            .filter(|e| e.id == case)
            .collect();
        assert_eq!(entries.len(), 1, "case {case} exists");
        let result = run::run(&entries, &opts(profile, Quirks::one(quirk)), |_| {});
        assert!(
            matches!(
                result.cases[0].verdict,
                Verdict::Fail(_) | Verdict::Error(_)
            ),
            "quirk {quirk} not caught by {case}: {:?}",
            result.cases[0].verdict
        );
    }
}
