//! `junit.xml` validates against `fixtures/schemas/junit-10.xsd` (with `xmllint`, when it
//! is installed; `ci/setup.sh` installs it) for runs with every verdict, a snapshot diff,
//! caps and a merged shard label.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::report;
use harness::runner::{CaseRecord, RunMeta, RunResult, Verdict};

#[test]
fn junit_validates_against_the_schema() {
    if Command::new("xmllint").arg("--version").output().is_err() {
        eprintln!("xmllint not installed: schema not checked");
        return;
    }
    let rec = |id: &str, verdict| CaseRecord {
        id: id.into(),
        area: id.split('.').next().unwrap().into(),
        description: "d <&> \"q\"".into(),
        requirement: Some("REQ-1".into()),
        verdict,
        wall: Duration::from_micros(1_234_567),
        trace: vec!["host     capsule -> read cid=0 <&>".into()],
        note: Some("trace not compared".into()),
        expected: Some(vec!["host     call    x -> ok".into()]),
        expected_from: Some("the reviewed snapshot of profile `full`".into()),
        failed_at: Some(1),
        blamed: None,
        checks: vec![],
    };
    let run = RunResult {
        meta: RunMeta {
            target: "reference:full+no-timeout-event".into(),
            profile: "full".into(),
            caps: report::caps_fields(&harness::api::Profile::builtin("full").unwrap().caps),
            fabric: "sim".into(),
            seed: 3,
            shard: Some("merged 1..3 of 3".into()),
            version: "0.1.0".into(),
            ..RunMeta::default()
        },
        cases: vec![
            rec("a.pass", Verdict::Pass),
            rec(
                "a.fail",
                Verdict::Fail("differs\n--- expected\n+++ actual\n-x ]]> y\n+z".into()),
            ),
            rec("b.error", Verdict::Error("hung".into())),
            rec("b.skip", Verdict::Skip("needs FLUSH".into())),
        ],
    };
    let dir = std::env::temp_dir().join(format!("nvmf-conform-junit-{}", std::process::id()));
    report::write_all(&run, &dir).unwrap();
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        xml.contains("profile=full\n") && xml.contains("caps=offload_type_dc=-; "),
        "{xml}"
    );
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/schemas/junit-10.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(dir.join("junit.xml"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "junit.xml does not validate: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}
