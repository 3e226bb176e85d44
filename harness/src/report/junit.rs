//! JUnit XML: a `<testsuite>` per area, a `<testcase>` per case (classname = area,
//! name = case id), failures and errors with their message, skips with their reason, and
//! the run metadata in each suite's `<system-out>` (junit-report has no `<properties>`).

use junit_report::{Duration as JDuration, ReportBuilder, TestCase, TestSuiteBuilder};

use super::ReportError;
use crate::runner::{RunResult, Verdict};

/// The run as JUnit XML text.
pub fn to_xml(run: &RunResult) -> Result<String, ReportError> {
    let meta = format!(
        "target={}\nfabric={}\nseed={}\nshard={}\nversion={}\n",
        run.meta.target,
        run.meta.fabric,
        run.meta.seed,
        run.meta.shard.as_deref().unwrap_or("-"),
        run.meta.version
    );
    let mut report = ReportBuilder::new();
    for area in run.areas() {
        let mut suite = TestSuiteBuilder::new(area);
        for c in run.cases.iter().filter(|c| c.area == area) {
            // The schema allows at most three decimals: whole milliseconds.
            let t = JDuration::milliseconds(c.wall.as_millis().min(i64::MAX as u128) as i64);
            let mut tc = match &c.verdict {
                Verdict::Pass => TestCase::success(&c.id, t),
                Verdict::Fail(m) => TestCase::failure(&c.id, t, "conformance", m),
                Verdict::Error(m) => TestCase::error(&c.id, t, "error", m),
                Verdict::Skip(m) => TestCase::skipped_with_cause(&c.id, "skipped", m),
            };
            tc.set_classname(area);
            if !c.trace.is_empty() && !matches!(c.verdict, Verdict::Pass) {
                tc.set_system_out(&c.trace.join("\n"));
            }
            suite.add_testcase(tc);
        }
        suite.set_system_out(&meta);
        report.add_testsuite(suite.build());
    }
    let mut out = Vec::new();
    report
        .build()
        .write_xml(&mut out)
        .map_err(|e| ReportError::Junit(e.to_string()))?;
    String::from_utf8(out).map_err(|e| ReportError::Junit(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runner::{CaseRecord, RunMeta};

    fn sample() -> RunResult {
        let rec = |id: &str, area: &str, verdict| CaseRecord {
            id: id.into(),
            area: area.into(),
            description: "d".into(),
            verdict,
            wall: Duration::from_nanos(1_234_567),
            trace: vec!["host wc SEND ok".into()],
        };
        RunResult {
            meta: RunMeta {
                target: "reference:full".into(),
                fabric: "sim".into(),
                seed: 7,
                shard: Some("1/2".into()),
                version: "0.1.0".into(),
            },
            cases: vec![
                rec("a.one", "a", Verdict::Pass),
                rec("a.two", "a", Verdict::Fail("expected EEXIST, got 0".into())),
                rec("b.one", "b", Verdict::Skip("needs FLUSH offload".into())),
                rec("b.two", "b", Verdict::Error("hung <&>".into())),
            ],
        }
    }

    #[test]
    fn a_suite_per_area_and_every_verdict_rendered() {
        let xml = to_xml(&sample()).unwrap();
        assert_eq!(xml.matches("<testsuite ").count(), 2);
        assert_eq!(xml.matches("<testcase ").count(), 4);
        assert!(xml.contains(r#"name="a.two""#) && xml.contains(r#"classname="a""#));
        assert!(xml.contains("<failure") && xml.contains("expected EEXIST, got 0"));
        assert!(xml.contains("<skipped") && xml.contains("needs FLUSH offload"));
        assert!(xml.contains("<error") && xml.contains("hung &lt;&amp;&gt;"));
        assert!(xml.contains("seed=7") && xml.contains("shard=1/2"));
        // a failing case carries its trace; a passing one does not
        assert_eq!(xml.matches("host wc SEND ok").count(), 3);
    }

    #[test]
    fn times_have_at_most_three_decimals() {
        let xml = to_xml(&sample()).unwrap();
        for part in xml.split("time=\"").skip(1) {
            let value = &part[..part.find('"').unwrap()];
            let decimals = value.split('.').nth(1).map_or(0, str::len);
            assert!(decimals <= 3, "time {value} has more than 3 decimals");
        }
    }
}
