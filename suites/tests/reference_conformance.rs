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
        assert!(
            passed * 10 >= result.cases.len() * 9,
            "profile {profile}: only {passed} passed"
        );
        for c in &result.cases {
            if let Verdict::Skip(why) = &c.verdict {
                assert!(!why.is_empty(), "{} skipped without a reason", c.id);
            }
        }
    }
}

#[test]
fn api_quirks_are_caught() {
    for (quirk, case) in [
        (Quirk::EexistPerCtrl, "mapping.eexist.other-ctrl-same-srq"),
        (Quirk::UnmapMissingOk, "mapping.enoent.never-mapped"),
        (Quirk::LbaSizeUnchecked, "mapping.lba-size.1024"),
    ] {
        let result = run::run(
            &offload_entries(),
            &opts("full", Quirks::one(quirk)),
            |_| {},
        );
        let rec = result
            .cases
            .iter()
            .find(|c| c.id == case)
            .expect("case exists");
        assert!(
            matches!(rec.verdict, Verdict::Fail(_)),
            "quirk {quirk} not caught by {case}: {:?}",
            rec.verdict
        );
    }
}
