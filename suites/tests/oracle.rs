//! The oracle of every device (`suites::oracle`): under each built-in profile a device's
//! traces are compared with that profile's reviewed snapshots, so a quirk that changes
//! what the device does is caught under every profile where it shows; a failure's
//! "Expected" trace is never the observed one and says where it came from; a device whose
//! caps are no built-in profile's is compared with the reference target run with its caps.

use harness::api::Profile;
use harness::runner::{RunResult, Verdict};
use reference_target::quirks::{Quirk, Quirks};
use suites::catalog::{self, Body, Entry};
use suites::run::{self, Options};
use suites::snapshot;

fn offload_entries() -> Vec<Entry> {
    catalog::all()
        .into_iter()
        .filter(|e| matches!(e.body, Body::Offload(_)))
        .collect()
}

fn run_with(entries: &[Entry], profile: Profile, quirks: Quirks) -> RunResult {
    let opts = Options {
        profile,
        quirks,
        snapshots: Some(snapshot::default_dir()),
        ..Options::default()
    };
    run::run(entries, &opts, |_| {})
}

/// Problems with the failures of `run`: an expected trace equal to the observed one, or
/// one that does not say it came from `from`.
fn expected_problems(run: &RunResult, label: &str, from: &str) -> Vec<String> {
    let mut out = Vec::new();
    for c in &run.cases {
        if !matches!(c.verdict, Verdict::Fail(_) | Verdict::Error(_)) {
            continue;
        }
        let Some(expected) = &c.expected else {
            continue;
        };
        if snapshot::canonical(expected) == snapshot::canonical(&c.trace) {
            out.push(format!(
                "{label}: {}: the expected trace is the observed one",
                c.id
            ));
        }
        if !c.expected_from.as_deref().is_some_and(|f| f.contains(from)) {
            out.push(format!(
                "{label}: {}: expected trace from {:?}, not {from}",
                c.id, c.expected_from
            ));
        }
    }
    out
}

#[test]
fn every_quirk_is_caught_under_every_profile_where_it_shows() {
    let entries = offload_entries();
    let mut problems = Vec::new();
    for profile in snapshot::PROFILES {
        let p = || Profile::builtin(profile).unwrap();
        let clean = run_with(&entries, p(), Quirks::none());
        let failing: Vec<&str> = clean
            .cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Fail(_) | Verdict::Error(_)))
            .map(|c| c.id.as_str())
            .collect();
        assert!(failing.is_empty(), "clean {profile}: {failing:?}");
        let results: Vec<(Quirk, RunResult)> = std::thread::scope(|s| {
            let halves = Quirk::ALL.chunks(Quirk::ALL.len().div_ceil(2));
            let handles: Vec<_> = halves
                .map(|qs| {
                    let entries = &entries;
                    s.spawn(move || {
                        qs.iter()
                            .map(|q| (*q, run_with(entries, p(), Quirks::one(*q))))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for (q, r) in results {
            // The quirk shows when some case's trace or verdict is not the clean one's.
            let shows = r.cases.iter().zip(&clean.cases).any(|(a, b)| {
                a.verdict.name() != b.verdict.name()
                    || snapshot::canonical(&a.trace) != snapshot::canonical(&b.trace)
            });
            let caught = r
                .cases
                .iter()
                .any(|c| matches!(c.verdict, Verdict::Fail(_) | Verdict::Error(_)));
            if shows && !caught {
                problems.push(format!(
                    "{} changes what the device does under {profile} but no case fails",
                    q.name()
                ));
            }
            let label = format!("{} under {profile}", q.name());
            problems.extend(expected_problems(
                &r,
                &label,
                &format!("profile `{profile}`"),
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_device_with_caps_of_no_profile_is_compared_with_the_reference_run_with_them() {
    // `minimal` with a smaller max_io_sz: no reviewed snapshot has these caps.
    let mut profile = Profile::builtin("minimal").unwrap();
    profile.caps.max_io_sz /= 2;
    assert!(snapshot::reviewed_profile(&profile.caps).is_none());
    let entries: Vec<Entry> = offload_entries()
        .into_iter()
        .filter(|e| e.area == "mapping" || e.area == "pci-error")
        .collect();
    let clean = run_with(&entries, profile.clone(), Quirks::none());
    for c in &clean.cases {
        assert!(
            matches!(c.verdict, Verdict::Pass | Verdict::Skip(_)),
            "{}: {:?}",
            c.id,
            c.verdict
        );
        assert!(
            c.note.is_none() || matches!(c.verdict, Verdict::Skip(_)),
            "{}: not compared: {:?}",
            c.id,
            c.note
        );
    }
    // A quirk that only changes the trace (a PCI error raises no event): caught by the
    // comparison with the reference run, whose trace is drawn as the expected one.
    let r = run_with(&entries, profile, Quirks::one(Quirk::LbaSizeUnchecked));
    let failed: Vec<&str> = r
        .cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail(_)))
        .map(|c| c.id.as_str())
        .collect();
    assert!(!failed.is_empty(), "lba-size-unchecked went uncaught");
    let problems = expected_problems(&r, "custom caps", "the reference target run");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        r.cases.iter().any(|c| c.expected.is_some()),
        "no failure has an expected trace"
    );
}
