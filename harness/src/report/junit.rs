//! JUnit XML: a `<testsuite>` per area, a `<testcase>` per case (classname = area,
//! name = case id), failures and errors with their message, skips with their reason, and
//! the run metadata in each suite's `<system-out>` (junit-report has no `<properties>`):
//! `key=value` lines for target, profile, fabric, seed, shard, version, and `caps=` with
//! the device's capabilities on one line (`field=value; …`, `-` when no device was tested).
//!
//! A failure's `type` is `conformance`, or `control-plane` when the check that failed
//! binds the reference target's control plane rather than the device ([`Subject`]); the
//! case's `<system-out>` starts with `about: ...` saying which. A failure's `message`
//! attribute is the first line of its message; a message of several
//! lines (a trace that differs from its snapshot ends with the unified diff) is also the
//! element's text. A case's note (e.g. why its trace was not compared with a snapshot) and,
//! unless it passed, its trace go to the case's `<system-out>`.

use junit_report::{Duration as JDuration, ReportBuilder, TestCase, TestResult, TestSuiteBuilder};

use super::ReportError;
use crate::runner::{RunResult, Subject, Verdict};

/// The run as JUnit XML text.
pub fn to_xml(run: &RunResult) -> Result<String, ReportError> {
    let caps = if run.meta.caps.is_empty() {
        "-".to_string()
    } else {
        run.meta
            .caps
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let profile = if run.meta.profile.is_empty() {
        "-"
    } else {
        &run.meta.profile
    };
    let meta = format!(
        "target={}\nprofile={profile}\nfabric={}\nseed={}\nshard={}\nversion={}\ncaps={caps}\n",
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
            // What the failure is about: the requirement of the check that failed.
            let about = run
                .meta
                .subject_of(c.blamed.as_deref().or(c.requirement.as_deref()));
            let kind = match about {
                Subject::ControlPlane => "control-plane",
                Subject::Device | Subject::Fabric => "conformance",
            };
            let mut tc = match &c.verdict {
                Verdict::Pass => TestCase::success(&c.id, t),
                Verdict::Fail(m) => with_body(
                    TestCase::failure(&c.id, t, kind, headline(m)),
                    &failure_body(run, c, m),
                ),
                Verdict::Error(m) => with_body(
                    TestCase::error(&c.id, t, "error", headline(m)),
                    &failure_body(run, c, m),
                ),
                Verdict::Skip(m) => TestCase::skipped_with_cause(&c.id, "skipped", m),
            };
            tc.set_classname(area);
            let mut out = Vec::new();
            if matches!(c.verdict, Verdict::Fail(_) | Verdict::Error(_)) {
                out.push(format!("about: {}", about.describe()));
                out.push(format!("replay: {}", run.meta.replay_line(&c.id)));
            }
            if let Some(note) = &c.note {
                out.push(format!("note: {note}"));
            }
            if !c.trace.is_empty() && !matches!(c.verdict, Verdict::Pass) {
                out.push(c.trace.join("\n"));
            }
            if !out.is_empty() {
                tc.set_system_out(&out.join("\n"));
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
    let xml = String::from_utf8(out).map_err(|e| ReportError::Junit(e.to_string()))?;
    with_millisecond_times(&xml)
}

/// The XML with every `time` attribute of `<testsuites>`, `<testsuite>` and `<testcase>`
/// written with exactly three decimals, as the schema requires. junit-report writes a
/// duration as `f64` seconds, so a suite's whole-millisecond sum such as 1.118 s comes out
/// as `1.1179999999999999`; a case longer than a second can too.
fn with_millisecond_times(xml: &str) -> Result<String, ReportError> {
    use quick_xml::events::Event;
    use quick_xml::{Reader, Writer};

    let err = |e: &dyn std::fmt::Display| ReportError::Junit(e.to_string());
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new(Vec::new());
    loop {
        let event = reader.read_event().map_err(|e| err(&e))?;
        let event = match event {
            Event::Eof => break,
            Event::Start(e) if is_timed(&e) => Event::Start(rounded(&e).map_err(|e| err(&e))?),
            Event::Empty(e) if is_timed(&e) => Event::Empty(rounded(&e).map_err(|e| err(&e))?),
            other => other,
        };
        writer.write_event(event).map_err(|e| err(&e))?;
    }
    String::from_utf8(writer.into_inner()).map_err(|e| err(&e))
}

/// Whether an element carries a `time` attribute.
fn is_timed(e: &quick_xml::events::BytesStart<'_>) -> bool {
    matches!(
        e.name().as_ref(),
        b"testsuites" | b"testsuite" | b"testcase"
    )
}

/// The element with its `time` attribute written with three decimals, the others as they
/// were.
fn rounded(
    e: &quick_xml::events::BytesStart<'_>,
) -> Result<quick_xml::events::BytesStart<'static>, String> {
    let mut out = e.to_owned();
    out.clear_attributes();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        if a.key.as_ref() == b"time" {
            let text = std::str::from_utf8(&a.value).map_err(|e| e.to_string())?;
            let secs: f64 = text
                .parse()
                .map_err(|_| format!("time attribute {text:?} is not a number"))?;
            out.push_attribute(("time", format!("{secs:.3}").as_str()));
        } else {
            out.push_attribute(a);
        }
    }
    Ok(out)
}

/// The first line of a message: the `message` attribute (attribute values cannot keep
/// line breaks).
fn headline(m: &str) -> &str {
    m.lines().next().unwrap_or("")
}

/// Trace lines shown before the point where a case failed, in a failure's text.
const TRACE_BEFORE: usize = 12;
/// Trace lines shown after it (what the target did while the case ended).
const TRACE_AFTER: usize = 4;

/// The text of a failure or error, which CI tools show as written: the whole message (the
/// failed check with expected and observed values, a snapshot diff), the requirement, the
/// command that replays the case, and the trace lines around the point it failed.
fn failure_body(run: &RunResult, c: &crate::runner::CaseRecord, m: &str) -> String {
    let mut body = m.trim_end().to_string();
    if let Some(r) = c.blamed_requirement() {
        body.push_str(&format!("\n\nrequirement: {r}"));
    }
    body.push_str(&format!("\nreplay: {}", run.meta.replay_line(&c.id)));
    if !c.trace.is_empty() {
        let at = c.failed_at.unwrap_or(c.trace.len()).min(c.trace.len());
        let from = at.saturating_sub(TRACE_BEFORE);
        let to = (at + TRACE_AFTER).min(c.trace.len());
        body.push_str(&format!(
            "\n\ntrace lines {}..{} of {} (the check failed after line {at}):",
            from + 1,
            to,
            c.trace.len()
        ));
        for (i, line) in c.trace[from..to].iter().enumerate() {
            let mark = if from + i < at { ' ' } else { '>' };
            body.push_str(&format!("\n{mark}{:5} {line}", from + i + 1));
        }
    }
    body
}

/// Sets the text of a failure or error.
fn with_body(mut tc: TestCase, body: &str) -> TestCase {
    // The text is written as CDATA, which cannot hold its own terminator.
    let body = body.replace("]]>", "]] >");
    if let TestResult::Failure { cause, .. } | TestResult::Error { cause, .. } = &mut tc.result {
        *cause = Some(body);
    }
    tc
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::assert_contains;
    use crate::runner::{CaseRecord, RunMeta};

    fn sample() -> RunResult {
        let rec = |id: &str, area: &str, verdict| CaseRecord {
            wall: Duration::from_nanos(1_234_567),
            trace: vec!["host wc SEND ok".into()],
            ..CaseRecord::new(id, area, "d", verdict)
        };
        RunResult {
            meta: RunMeta {
                seed: 7,
                shard: Some("1/2".into()),
                ..crate::report::sample_meta("0.1.0")
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
    fn a_failure_says_whether_it_is_about_the_device_or_the_control_plane() {
        let mut run = sample();
        run.cases[1].requirement = Some("CONN-X".into());
        run.cases[3].requirement = Some("MAP-Y".into());
        run.meta.control_plane = vec!["CONN-X".into()];
        let xml = to_xml(&run).unwrap();
        assert_contains(&xml, r#"type="control-plane""#);
        assert_contains(
            &xml,
            "about: the reference target's control plane (not the device)",
        );
        assert_contains(&xml, "about: the device under test");
        // A device failure keeps its type.
        run.meta.control_plane.clear();
        let xml = to_xml(&run).unwrap();
        assert!(xml.contains(r#"type="conformance""#) && !xml.contains("control-plane"));
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
        assert_contains(&xml, "profile=full\n");
        assert_contains(
            &xml,
            "caps=offload_type_rc=READ | WRITE; max_io_sz=131072\n",
        );
        // a failing case carries its trace (in system-out and around the failure in the
        // failure's text); a passing one does not
        assert_eq!(xml.matches("host wc SEND ok").count(), 5);
    }

    #[test]
    fn a_failure_text_has_the_check_the_replay_line_and_the_trace_around_it() {
        let mut run = sample();
        run.meta.replay = vec!["--seed".into(), "7".into(), "--quirk".into(), "q".into()];
        run.cases[1].trace = (1..=30).map(|i| format!("line {i}")).collect();
        run.cases[1].failed_at = Some(20);
        run.cases[1].requirement = Some("MAP-EEXIST".into());
        let xml = to_xml(&run).unwrap();
        let body = xml
            .split("<failure")
            .nth(1)
            .and_then(|f| f.split("<![CDATA[").nth(1))
            .and_then(|f| f.split("]]>").next())
            .unwrap();
        assert!(body.starts_with("expected EEXIST, got 0\n"), "{body}");
        assert_contains(body, "requirement: MAP-EEXIST");
        assert_contains(body, "replay: nvmf-conform replay a.two --seed 7 --quirk q");
        assert_contains(body, "trace lines 9..24 of 30");
        assert_contains(body, "    20 line 20\n>   21 line 21");
        assert!(
            !body.contains("line 8\n") && !body.contains("line 25"),
            "{body}"
        );
        assert!(xml.contains("replay: nvmf-conform replay a.two --seed 7 --quirk q"));
    }

    #[test]
    fn a_multi_line_message_is_the_failure_text_and_notes_reach_system_out() {
        let mut run = sample();
        run.cases[0].note = Some("trace not compared: no snapshot".into());
        run.cases[1].verdict =
            Verdict::Fail("trace differs\n--- expected\n+++ actual\n-a ]]> b\n+c".into());
        let xml = to_xml(&run).unwrap();
        assert_contains(&xml, r#"message="trace differs""#);
        assert_contains(
            &xml,
            "<![CDATA[trace differs\n--- expected\n+++ actual\n-a ]] > b\n+c\n",
        );
        assert_contains(&xml, "note: trace not compared: no snapshot");
    }

    /// Every `time` attribute of the XML, in order.
    fn times(xml: &str) -> Vec<&str> {
        xml.split(" time=\"")
            .skip(1)
            .map(|part| &part[..part.find('"').unwrap()])
            .collect()
    }

    #[test]
    fn times_have_at_most_three_decimals() {
        let xml = to_xml(&sample()).unwrap();
        let times = times(&xml);
        assert_eq!(times.len(), 2 + 4, "{xml}");
        for value in times {
            let decimals = value.split('.').nth(1).map_or(0, str::len);
            assert!(decimals <= 3, "time {value} has more than 3 decimals");
        }
    }

    /// A suite's time is the sum of its cases' whole milliseconds, which junit-report
    /// writes as f64 seconds: 1.000 s + 0.118 s came out as `1.1179999999999999`, which
    /// the schema rejects (seen in CI).
    #[test]
    fn suite_time_over_a_second_keeps_three_decimals() {
        let mut run = sample();
        run.cases.truncate(2);
        run.cases[0].wall = Duration::from_millis(1000);
        run.cases[1].wall = Duration::from_micros(118_400);
        let xml = to_xml(&run).unwrap();
        assert_eq!(times(&xml), ["1.118", "1.000", "0.118"], "{xml}");
    }

    /// Rewriting the times keeps everything else: names, escaped attributes and CDATA
    /// bodies that happen to hold `time="` text.
    #[test]
    fn rewriting_times_keeps_the_rest() {
        let mut run = sample();
        run.cases[1].verdict = Verdict::Fail("time=\"1.23456\" <&> \"q\"\nline two".into());
        let xml = to_xml(&run).unwrap();
        assert_contains(&xml, "time=\"1.23456\" <&> \"q\"\nline two");
        assert_contains(
            &xml,
            "message=\"time=&quot;1.23456&quot; &lt;&amp;&gt; &quot;q&quot;\"",
        );
        assert_contains(&xml, "hung &lt;&amp;&gt;");
    }
}
