//! The suite proves it can fail: every quirk of the reference target makes at least one
//! case fail, the clean target passes everything, and docs/kill-matrix.md is current.

use suites::kill::{compute, markdown};

#[test]
fn every_quirk_is_caught_and_the_committed_matrix_is_current() {
    let m = compute();
    for (profile, failures) in suites::kill::PROFILES.iter().zip(&m.clean_failures) {
        assert!(
            failures.is_empty(),
            "clean target fails on {profile}: {failures:?}"
        );
    }
    let uncaught: Vec<&str> = m
        .rows
        .iter()
        .filter(|r| !r.killed())
        .map(|r| r.quirk.name())
        .collect();
    assert!(uncaught.is_empty(), "quirks no case catches: {uncaught:?}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/kill-matrix.md");
    let committed = std::fs::read_to_string(path).expect("docs/kill-matrix.md exists");
    assert!(
        committed == markdown(&m),
        "docs/kill-matrix.md is out of date: run `cargo conform kill-matrix > docs/kill-matrix.md`"
    );
}
