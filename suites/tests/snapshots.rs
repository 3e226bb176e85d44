//! Every offload case's trace is a reviewed insta snapshot, `suites/snapshots/<case id>.snap`:
//! what a complete, conforming device (the reference target with the `full` profile) does.
//!
//! Generate or update them with `INSTA_UPDATE=always cargo test -p suites --test snapshots`
//! (or `cargo insta review`), then review the changed files like code. Under CI (`CI`
//! set) a new or changed snapshot fails, as insta does.
//!
//! The same files are what `nvmf-conform run` compares passing cases with; the last tests
//! check that path: a trace that differs is a failure carrying the diff, in JUnit too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::api::Profile;
use harness::runner::Verdict;
use suites::catalog::{self, Entry};
use suites::run::{self, Options};
use suites::seed::case_seed;
use suites::snapshot;

fn opts(profile: &str, seed: u64, snapshots: Option<PathBuf>) -> Options {
    Options {
        seed,
        profile: Profile::builtin(profile).unwrap(),
        snapshots,
        ..Options::default()
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "nvmf-conform-snapshots-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_offload_trace_matches_its_snapshot() {
    let mut problems = Vec::new();
    for profile in snapshot::PROFILES {
        problems.extend(profile_matches_its_snapshots(profile));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The reference target's trace of every offload case with `profile` equals its reviewed
/// snapshot (`suites/snapshots/` for `full`, `suites/snapshots/<profile>/` for the others):
/// the oracle of devices with these caps is itself reviewed. The problems found.
fn profile_matches_its_snapshots(profile: &str) -> Vec<String> {
    let full = opts(profile, 0, None);
    let mut settings = insta::Settings::clone_current();
    let rel = if profile == snapshot::PROFILE {
        "../snapshots".to_string()
    } else {
        format!("../snapshots/{profile}")
    };
    settings.set_snapshot_path(rel);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let mut problems = Vec::new();
    let mut expected = BTreeSet::new();
    for e in catalog::offload() {
        let rec = run::run_one(&e, case_seed(full.seed, &e.id), &full);
        match &rec.verdict {
            Verdict::Pass => {}
            // What the profile's device lacks skips: no trace, no snapshot.
            Verdict::Skip(_) => continue,
            v => {
                problems.push(format!(
                    "{}: does not pass on the {profile} profile: {v:?}",
                    e.id
                ));
                continue;
            }
        }
        let text = snapshot::canonical(&rec.trace);
        for raw in ["key?", "qpn?", "addr?"] {
            if text.contains(raw) {
                problems.push(format!("{}: trace holds an unnamed value `{raw}`", e.id));
            }
        }
        expected.insert(format!("{}.snap", e.id));
        settings.set_description(format!(
            "{} ({}): {}",
            e.id,
            e.requirement.unwrap_or("-"),
            e.description
        ));
        let asserted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            settings.bind(|| insta::assert_snapshot!(e.id.as_str(), text));
        }));
        if asserted.is_err() {
            problems.push(format!(
                "{} ({profile}): new or changed trace (insta's report above)",
                e.id
            ));
        }
    }
    // A snapshot no case produces any more (a case renamed or removed) is stale.
    let dir = snapshot::dir_for(&snapshot::default_dir(), profile);
    for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.ends_with(".snap") && !expected.contains(&name) {
            problems.push(format!(
                "{}: stale snapshot, no passing offload case has this id: delete it",
                dir.join(&name).display()
            ));
        }
    }
    problems
}

#[test]
fn traces_are_deterministic_and_do_not_depend_on_the_seed() {
    let entries = catalog::offload();
    let a = run::run(&entries, &opts(snapshot::PROFILE, 0, None), |_| {});
    let b = run::run(&entries, &opts(snapshot::PROFILE, 0, None), |_| {});
    for (x, y) in a.cases.iter().zip(&b.cases) {
        assert_eq!(x.trace, y.trace, "{}: same seed, other trace", x.id);
    }
    // Another seed moves timings (jitter), not behaviour: the canonical traces agree, so
    // every passing case also matches its snapshot through the runner's own comparison.
    let dir = Some(snapshot::default_dir());
    let c = run::run(&entries, &opts(snapshot::PROFILE, 0x5eed, dir), |_| {});
    let bad: Vec<String> = c
        .cases
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail(_) | Verdict::Error(_)))
        .map(|r| format!("{}: {:?}", r.id, r.verdict))
        .collect();
    assert!(bad.is_empty(), "seed 0x5eed:\n{}", bad.join("\n\n"));
}

#[test]
fn every_caps_have_an_oracle_and_a_missing_snapshot_is_said() {
    let entries: Vec<Entry> = catalog::offload()
        .into_iter()
        .filter(|e| e.id == "mapping.eexist.same-ctrl")
        .collect();
    assert_eq!(entries.len(), 1);
    // A built-in profile's caps: compared with that profile's reviewed snapshot.
    let minimal = run::run(
        &entries,
        &opts("minimal", 0, Some(snapshot::default_dir())),
        |_| {},
    );
    let rec = &minimal.cases[0];
    assert_eq!(rec.verdict, Verdict::Pass);
    assert_eq!(rec.note, None, "compared with snapshots/minimal/");
    // Caps of no built-in profile: compared with the reference target run with them.
    let mut custom = opts("full", 0, Some(snapshot::default_dir()));
    custom.profile.caps.max_io_sz /= 2;
    assert!(snapshot::reviewed_profile(&custom.profile.caps).is_none());
    let rec = &run::run(&entries, &custom, |_| {}).cases[0];
    assert_eq!(rec.verdict, Verdict::Pass);
    assert_eq!(rec.note, None, "compared with the reference run");
    let empty = tmp("empty");
    let none = run::run(&entries, &opts("full", 0, Some(empty.clone())), |_| {});
    let rec = &none.cases[0];
    assert_eq!(rec.verdict, Verdict::Pass);
    assert!(
        rec.note
            .as_deref()
            .is_some_and(|n| n.contains("no snapshot")),
        "{:?}",
        rec.note
    );
    let _ = std::fs::remove_dir_all(empty);
}

/// Copies the case's snapshot into a scratch directory with one line changed.
fn tampered(id: &str, dir: &Path) {
    let text = std::fs::read_to_string(snapshot::path(&snapshot::default_dir(), id))
        .expect("the case has a snapshot");
    let changed = text.replacen(
        "fe_nsid=1 nvme_nsid=1 lba_data_size=4096 -> EEXIST",
        "fe_nsid=1 nvme_nsid=1 lba_data_size=4096 -> EBUSY",
        1,
    );
    assert_ne!(text, changed, "the line to change is in the snapshot");
    std::fs::write(snapshot::path(dir, id), changed).unwrap();
}

#[test]
fn a_trace_that_differs_fails_with_its_diff_in_every_report() {
    let id = "mapping.eexist.same-ctrl";
    let snaps = tmp("tampered");
    tampered(id, &snaps);
    let reports = tmp("reports");
    let out = Command::new(env!("CARGO_BIN_EXE_nvmf-conform"))
        .args(["run", "--filter", id, "--snapshots"])
        .arg(&snaps)
        .arg("--report-dir")
        .arg(&reports)
        .output()
        .expect("nvmf-conform runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff_lines = [
        "-device   call    map_nsid ctrl1 fe_nsid=1 nvme_nsid=1 lba_data_size=4096 -> EBUSY",
        "+device   call    map_nsid ctrl1 fe_nsid=1 nvme_nsid=1 lba_data_size=4096 -> EEXIST",
    ];
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(
        junit.contains(
            "<failure type=\"conformance\" message=\"the trace differs from its reviewed snapshot"
        ),
        "{junit}"
    );
    let summary = std::fs::read_to_string(reports.join("summary.md")).unwrap();
    assert!(summary.contains("```diff\n--- expected "), "{summary}");
    let json = std::fs::read_to_string(reports.join("results.json")).unwrap();
    assert!(json.contains("\"verdict\": \"fail\""), "{json}");
    for l in diff_lines {
        assert!(junit.contains(l), "junit.xml lacks {l}:\n{junit}");
        assert!(summary.contains(l), "summary.md lacks {l}:\n{summary}");
    }
    // The untouched snapshots pass the same case.
    let out = Command::new(env!("CARGO_BIN_EXE_nvmf-conform"))
        .args(["run", "--filter", id, "--report-dir"])
        .arg(&reports)
        .output()
        .expect("nvmf-conform runs");
    assert_eq!(out.status.code(), Some(0));
    let _ = std::fs::remove_dir_all(snaps);
    let _ = std::fs::remove_dir_all(reports);
}

#[test]
fn a_snapshot_directory_that_does_not_exist_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_nvmf-conform"))
        .args([
            "run",
            "--filter",
            "caps",
            "--snapshots",
            "/no/such/snapshots",
        ])
        .output()
        .expect("nvmf-conform runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--snapshots /no/such/snapshots"));
}
