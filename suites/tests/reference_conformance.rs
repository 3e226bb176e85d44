//! The reference target conforms: the offload catalog passes (or skips with a reason) on the
//! three built-in profiles, with no trace snapshots, so only behavioural checks count (a CQE
//! field, a status, data, a counter, an event), never a trace that merely differs.
//!
//! Each quirk must also still be caught by the case named for its rule
//! ([`suites::kill::PINNED`]): a mutant that defeats a quirk's violation, or the plumbing
//! that turns quirks on, is caught there.
//!
//! This is the test cargo-mutants runs against each mutant of the target
//! (`docs/mutation.md`): keep it fast.

use harness::api::Profile;
use harness::runner::Verdict;
use reference_target::quirks::Quirks;
use suites::catalog;
use suites::run::{self, Options};

/// Runs the offload catalog on `profile` and fails naming every case that did not pass or
/// skip with a reason.
fn catalog_conforms(profile: &str) {
    let entries: Vec<catalog::Entry> = catalog::all()
        .into_iter()
        .filter(|e| e.requirement.is_some())
        .collect();
    let opts = Options {
        profile: Profile::builtin(profile).expect("a built-in profile"),
        quirks: Quirks::none(),
        snapshots: None,
        ..Options::default()
    };
    let result = run::run(&entries, &opts, |_| {});
    assert_eq!(result.cases.len(), entries.len(), "every case has a record");
    let bad: Vec<String> = result
        .cases
        .iter()
        .filter(|c| match &c.verdict {
            Verdict::Pass => false,
            Verdict::Skip(why) => why.is_empty(),
            _ => true,
        })
        .map(|c| format!("{}: {:?}", c.id, c.verdict))
        .collect();
    assert!(bad.is_empty(), "profile {profile}:\n{}", bad.join("\n"));
    assert!(
        result.count("pass") > 0,
        "profile {profile}: nothing passed"
    );
}

#[test]
fn catalog_conforms_on_full() {
    catalog_conforms("full");
}

#[test]
fn catalog_conforms_on_minimal() {
    catalog_conforms("minimal");
}

#[test]
fn catalog_conforms_on_tight() {
    catalog_conforms("tight");
}

#[test]
fn each_quirk_is_caught_by_its_pinned_case() {
    let uncaught = suites::kill::uncaught_pinned();
    assert!(uncaught.is_empty(), "{}", uncaught.join("\n"));
}
