//! The suite proves it can fail: every quirk of the reference target makes at least one
//! case fail, the clean target passes everything, and docs/kill-matrix.md is current.

use reference_target::quirks::Quirk;
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

/// One bug is one broken rule: with each quirk, the requirements the failures are blamed
/// on are exactly the ones the quirk declares it breaks (some only show under one profile,
/// so each profile's set is a part of the declared set and together they are all of it).
#[test]
fn each_quirk_is_blamed_on_exactly_the_requirements_it_breaks() {
    let m = compute();
    let mut wrong = Vec::new();
    for r in &m.rows {
        let declared: std::collections::BTreeSet<String> =
            r.quirk.breaks().iter().map(|s| s.to_string()).collect();
        let mut seen = std::collections::BTreeSet::new();
        for (profile, blamed) in suites::kill::PROFILES.iter().zip(&r.blamed) {
            let extra: Vec<&String> = blamed.difference(&declared).collect();
            if !extra.is_empty() {
                wrong.push(format!(
                    "{} on {profile}: also blamed on {extra:?}",
                    r.quirk.name()
                ));
            }
            seen.extend(blamed.iter().cloned());
        }
        let missing: Vec<&String> = declared.difference(&seen).collect();
        if !missing.is_empty() {
            wrong.push(format!(
                "{}: declared but never blamed: {missing:?}",
                r.quirk.name()
            ));
        }
    }
    for id in Quirk::ALL.iter().flat_map(|q| q.breaks()) {
        assert!(
            suites::framework::requirements::requirement(id).is_some(),
            "a quirk declares the unknown requirement {id}"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
