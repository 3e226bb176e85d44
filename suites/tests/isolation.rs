//! Crash and hang containment: with `--isolate case` or `suite`, a case whose device
//! crashes the process or hangs it in real time becomes an error verdict naming the signal
//! or the bound, the cases after it still run, and the report is complete.
//!
//! One test function on purpose: forking while other test threads run could copy a lock
//! one of them holds into the child.

use std::time::Duration;

use harness::runner::Verdict;
use reference_target::quirks::{Quirk, Quirks};
use suites::catalog::{self, Body, Entry};
use suites::framework::Case;
use suites::isolate::Isolation;
use suites::run::{self, Options};

fn entry(id: &str, body: fn() -> ()) -> Entry {
    let case = Case::new(
        "datapath",
        id,
        "TEST",
        "test case",
        &[],
        move |_d| async move {
            body();
            Ok(())
        },
    );
    Entry {
        id: case.id.clone(),
        area: "datapath".into(),
        description: "test case".into(),
        requirement: Some("TEST"),
        tags: vec![],
        body: Body::Offload(case),
    }
}

fn crash() {
    std::process::abort();
}

fn hang() {
    // A hang the virtual clock cannot bound: the thread itself is stuck.
    std::thread::sleep(Duration::from_secs(3600));
}

fn fine() {}

#[test]
fn crashes_and_hangs_are_contained() {
    let opts = |isolation| Options {
        isolation,
        watchdog: Duration::from_millis(1500),
        ..Options::default()
    };
    let entries = vec![
        entry("datapath.t-fine-1", fine),
        entry("datapath.t-crash", crash),
        entry("datapath.t-hang", hang),
        entry("datapath.t-fine-2", fine),
    ];

    // A child per case: each bad case costs itself only.
    let r = run::run(&entries, &opts(Isolation::Case), |_| {});
    let v: Vec<&Verdict> = r.cases.iter().map(|c| &c.verdict).collect();
    assert_eq!(r.cases.len(), 4);
    assert_eq!(v[0], &Verdict::Pass);
    assert!(
        matches!(v[1], Verdict::Error(m) if m.contains("signal SIGABRT")),
        "{:?}",
        v[1]
    );
    assert!(
        matches!(v[2], Verdict::Error(m) if m.contains("real time") && m.contains("killed")),
        "{:?}",
        v[2]
    );
    assert_eq!(v[3], &Verdict::Pass);

    // A child per suite: the crash costs the rest of the suite, named as such.
    let r = run::run(&entries, &opts(Isolation::Suite), |_| {});
    let v: Vec<&Verdict> = r.cases.iter().map(|c| &c.verdict).collect();
    assert_eq!(r.cases.len(), 4, "the report is complete");
    assert_eq!(v[0], &Verdict::Pass);
    assert!(matches!(v[1], Verdict::Error(m) if m.contains("SIGABRT")));
    for later in &v[2..] {
        assert!(
            matches!(later, Verdict::Error(m) if m.contains("not run") && m.contains("datapath.t-crash")),
            "{later:?}"
        );
    }

    // The hang quirk, isolated: the device never answers one read; the case is an error
    // within its (virtual-time) bound and the other cases pass.
    let reads = catalog::select(&["datapath".to_string()]);
    let hung = Options {
        quirks: Quirks::one(Quirk::HangOneCommand),
        case_bound: Duration::from_secs(30),
        ..opts(Isolation::Case)
    };
    let r = run::run(&reads[..12.min(reads.len())], &hung, |_| {});
    assert!(
        r.cases
            .iter()
            .any(|c| matches!(&c.verdict, Verdict::Error(m) | Verdict::Fail(m) if !m.is_empty())),
        "the hang quirk went unnoticed"
    );
    assert!(r.cases.iter().any(|c| c.verdict == Verdict::Pass));
}
