//! Determinism: on the simulated fabric, the same seed gives byte-identical traces and
//! reports, run after run (wall-clock fields aside: JUnit `time` and `timestamp`).

use harness::report::{junit, summary, to_json};
use harness::runner::RunResult;
use suites::catalog::{self, Entry};
use suites::run::{self, Options};

/// A sample: the first two cases of every area (offload and fabric).
fn sample() -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for e in catalog::all() {
        if out.iter().filter(|o| o.area == e.area).count() < 2 {
            out.push(e);
        }
    }
    out
}

/// JUnit text without its wall-clock attributes.
fn junit_without_clock(run: &RunResult) -> String {
    let xml = junit::to_xml(run).expect("junit");
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml.as_str();
    let next = |s: &str| {
        [" time=\"", " timestamp=\""]
            .iter()
            .filter_map(|a| s.find(a))
            .min()
    };
    while let Some(i) = next(rest) {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let open = after.find('"').expect("attribute value") + 1;
        let close = after[open..].find('"').expect("closing quote");
        rest = &after[open + close + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn ten_runs_with_one_seed_are_byte_identical() {
    let entries = sample();
    assert!(entries.len() > 20, "sample of {} cases", entries.len());
    let opts = Options {
        seed: 20261124,
        snapshots: Some(suites::snapshot::default_dir()),
        ..Options::default()
    };
    let render = |r: &RunResult| {
        let traces: Vec<String> = r.cases.iter().map(|c| c.trace.join("\n")).collect();
        (
            traces,
            to_json(r),
            junit_without_clock(r),
            summary::to_markdown(r),
        )
    };
    let first = render(&run::run(&entries, &opts, |_| {}));
    assert!(
        first.0.iter().any(|t| t.lines().count() > 10),
        "traces recorded"
    );
    for i in 2..=10 {
        let again = render(&run::run(&entries, &opts, |_| {}));
        assert!(again.0 == first.0, "run {i}: a trace differs");
        assert!(again.1 == first.1, "run {i}: results.json differs");
        assert!(
            again.2 == first.2,
            "run {i}: junit.xml differs beyond wall-clock fields"
        );
        assert!(again.3 == first.3, "run {i}: summary.md differs");
    }
    // Another seed changes something (so the comparison above can fail).
    let other = render(&run::run(
        &entries,
        &Options {
            seed: 7,
            ..opts.clone()
        },
        |_| {},
    ));
    assert!(other.1 != first.1, "the seed changes results.json");
}
