//! `summary.md`: the certification view of a run, for people.
//!
//! In order: the run's metadata (target, profile, fabric, seed, shard, version) and
//! totals with the overall finding; the device's capabilities; a table by requirement
//! (each requirement, its finding — "conforms" when every case passed — and each of its
//! cases with its verdict and reason); a table per area, as the catalog groups cases;
//! then, for every failure and error, a section with the whole message (a snapshot diff
//! in a `diff` block) and mermaid sequence diagrams of the observed trace and, when the
//! case has a reviewed snapshot, of the expected one ([`super::mermaid`]).

use std::fmt::Write;

use super::findings::{by_requirement, Finding, ForRequirement, RequirementFindings};
use super::mermaid;
use crate::runner::{CaseRecord, RunResult, Subject, Verdict};

/// The run as Markdown.
pub fn to_markdown(run: &RunResult) -> String {
    let m = &run.meta;
    let mut s = String::new();
    let _ = writeln!(s, "# nvmf-conform conformance report\n");
    let _ = writeln!(s, "| target | profile | fabric | seed | shard | version |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} | {} |\n",
        cell(&m.target),
        cell(or_dash(&m.profile)),
        cell(&m.fabric),
        m.seed,
        cell(m.shard.as_deref().unwrap_or("-")),
        cell(&m.version)
    );
    let _ = writeln!(
        s,
        "**{}: {} passed, {} failed, {}, {} skipped.**\n",
        super::plural(run.cases.len(), "case", "cases"),
        run.count("pass"),
        run.count("fail"),
        super::plural(run.count("error"), "error", "errors"),
        run.count("skip")
    );
    let (device, control_plane): (Vec<_>, Vec<_>) = by_requirement(run)
        .into_iter()
        .partition(|r| run.meta.subject_of(Some(r.id)) != Subject::ControlPlane);
    let _ = writeln!(s, "{}\n", finding(&device, &control_plane));

    capabilities(&mut s, run);
    requirement_table(&mut s, Subject::Device, &device);
    requirement_table(&mut s, Subject::ControlPlane, &control_plane);
    area_tables(&mut s, run);
    failure_details(&mut s, run);
    s
}

/// The run's overall finding: over the device's requirements first (what a vendor
/// certifies), then, apart, over the reference target's control plane.
fn finding(
    device: &[RequirementFindings<'_>],
    control_plane: &[RequirementFindings<'_>],
) -> String {
    if device.is_empty() && control_plane.is_empty() {
        return "No requirement of the offload API was checked (fabric contract cases only)."
            .into();
    }
    let mut t = if device.is_empty() {
        "No requirement on the device was checked.".to_string()
    } else {
        sentence("The device", device)
    };
    if !control_plane.is_empty() {
        let _ = write!(
            t,
            " {}",
            sentence(
                "The reference target's control plane (software over the device, not the \
                 device)",
                control_plane
            )
        );
    }
    t
}

/// One sentence on `who` over these requirements.
fn sentence(who: &str, reqs: &[RequirementFindings<'_>]) -> String {
    let count = |f: Finding| reqs.iter().filter(|r| r.finding() == f).count();
    let (bad, undetermined) = (count(Finding::DoesNotConform), count(Finding::Undetermined));
    let untested = count(Finding::NotTested);
    let tested = reqs.len() - untested;
    let mut t = if bad > 0 {
        format!(
            "**{who} does not conform**: {bad} of {} requirements have failing checks",
            reqs.len()
        )
    } else if undetermined > 0 {
        format!(
            "**{who}: undetermined**: no requirement failed, but {undetermined} of {} have \
             cases that errored",
            reqs.len()
        )
    } else {
        format!("**{who} conforms** to the {tested} requirements tested")
    };
    if untested > 0 {
        let _ = write!(t, "; {untested} not tested (every case skipped)");
    }
    t.push('.');
    t
}

fn capabilities(s: &mut String, run: &RunResult) {
    let _ = writeln!(s, "## Device capabilities\n");
    if run.meta.caps.is_empty() {
        let _ = writeln!(
            s,
            "No device was tested in this run (fabric contract cases only).\n"
        );
        return;
    }
    let profile = or_dash(&run.meta.profile);
    let _ = writeln!(s, "As the device reported them (profile `{profile}`).\n");
    let _ = writeln!(s, "| capability | value |");
    let _ = writeln!(s, "|---|---|");
    for (k, v) in &run.meta.caps {
        let _ = writeln!(s, "| `{}` | {} |", cell(k), cell(v));
    }
    let _ = writeln!(s);
}

fn requirement_table(s: &mut String, subject: Subject, reqs: &[RequirementFindings<'_>]) {
    if reqs.is_empty() {
        return;
    }
    if subject == Subject::ControlPlane {
        let _ = writeln!(
            s,
            "## Requirements on the reference target's control plane\n"
        );
        let _ = writeln!(
            s,
            "These rules bind the reference target's own software, which runs over the \
             device: Connect handling, admin commands, discovery, keep-alive, its software \
             I/O path and its reaction to offload events. They are not requirements on the \
             device; a failure here is about the target, unless the failing check is one \
             of the device's requirements above.\n"
        );
    } else {
        let _ = writeln!(s, "## Requirements on the device\n");
        let _ = writeln!(
            s,
            "Each requirement of the offload API on the device (see \
             `docs/requirements.md`) with what its cases found, and how many of its checks \
             ran and held. A case may check several requirements; a failure counts against \
             the requirement of the check that failed only. Fabric contract cases check \
             the fabric, not a requirement: they are in the area tables only.\n"
        );
    }
    let _ = writeln!(
        s,
        "| requirement | finding | checks held | case | verdict |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for r in reqs {
        let (finding, checks) = (r.text(), r.checks().to_string());
        for (i, (c, v)) in r.cases.iter().enumerate() {
            let (id, f, n) = if i == 0 {
                (
                    format!("`{}`", cell(r.id)),
                    finding.as_str(),
                    checks.as_str(),
                )
            } else {
                (String::new(), "", "")
            };
            let _ = writeln!(
                s,
                "| {id} | {f} | {n} | `{}` | {} |",
                c.id,
                requirement_verdict_cell(c, *v)
            );
        }
    }
    let _ = writeln!(s);
}

/// A case's verdict for one requirement, with the failure's first line where it has one.
fn requirement_verdict_cell(c: &CaseRecord, v: ForRequirement<'_>) -> String {
    match v {
        ForRequirement::Pass(_) if !matches!(c.verdict, Verdict::Pass) => format!(
            "pass (then failed on `{}`)",
            cell(c.blamed_requirement().unwrap_or("-"))
        ),
        ForRequirement::NotReached(other) => {
            format!("not reached (failed on `{}` first)", cell(other))
        }
        _ => verdict_cell(c),
    }
}

/// `pass`, or `fail: first line of the message` (with a link to its section), etc.
fn verdict_cell(c: &CaseRecord) -> String {
    match &c.verdict {
        Verdict::Pass => "pass".into(),
        Verdict::Skip(why) => format!("skip: {}", cell(why)),
        Verdict::Fail(m) | Verdict::Error(m) => format!(
            "{}: {} ([below](#{}))",
            c.verdict.name(),
            cell(headline(m)),
            anchor(&c.id)
        ),
    }
}

fn area_tables(s: &mut String, run: &RunResult) {
    for area in run.areas() {
        let _ = writeln!(s, "## {area}\n");
        let _ = writeln!(s, "| case | verdict | description | detail |");
        let _ = writeln!(s, "|---|---|---|---|");
        for c in run.cases.iter().filter(|c| c.area == area) {
            let detail = match &c.verdict {
                Verdict::Pass => c
                    .note
                    .as_deref()
                    .map(|n| format!("note: {}", cell(n)))
                    .unwrap_or_default(),
                Verdict::Skip(x) => cell(x),
                Verdict::Fail(x) | Verdict::Error(x) => {
                    format!("{} ([below](#{}))", cell(headline(x)), anchor(&c.id))
                }
            };
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} |",
                c.id,
                c.verdict.name(),
                cell(&c.description),
                detail
            );
        }
        let _ = writeln!(s);
    }
}

fn failure_details(s: &mut String, run: &RunResult) {
    let failed: Vec<(&CaseRecord, &str)> = run
        .cases
        .iter()
        .filter_map(|c| match &c.verdict {
            Verdict::Fail(x) | Verdict::Error(x) => Some((c, x.as_str())),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Failure details\n");
    for (c, message) in failed {
        let _ = writeln!(s, "### {}\n", c.id);
        let (first, rest) = message.split_once('\n').unwrap_or((message, ""));
        let _ = writeln!(s, "{}\n", first.trim());
        if !rest.trim().is_empty() {
            let fence = if rest.contains("```") { "~~~~" } else { "```" };
            let lang = if rest.lines().any(|l| l.starts_with("@@ ")) {
                "diff"
            } else {
                "text"
            };
            let _ = writeln!(s, "{fence}{lang}\n{}\n{fence}\n", rest.trim_end());
        }
        let req = c
            .blamed_requirement()
            .map(|r| format!("requirement `{r}`, "))
            .unwrap_or_default();
        let _ = writeln!(s, "{}{}: {}\n", req, c.verdict.name(), cell(&c.description));
        let _ = writeln!(
            s,
            "Replay it exactly:\n\n```sh\n{}\n```\n",
            run.meta.replay_line(&c.id)
        );
        if let Some(note) = &c.note {
            let _ = writeln!(s, "Note: {}\n", cell(note));
        }
        if c.trace.is_empty() {
            let _ = writeln!(s, "No trace was recorded.\n");
        } else {
            let _ = writeln!(
                s,
                "**Observed** ({} trace lines):\n\n```mermaid\n{}```\n",
                c.trace.len(),
                mermaid::sequence_diagram(&c.trace, mermaid::MAX_MESSAGES)
            );
        }
        if let Some(expected) = &c.expected {
            let from = c
                .expected_from
                .as_deref()
                .unwrap_or("the trace of a conforming device");
            let _ = writeln!(
                s,
                "**Expected**, what a conforming device with the same caps does: {}; {} \
                 lines:\n\n```mermaid\n{}```\n",
                cell(from),
                expected.len(),
                mermaid::sequence_diagram(expected, mermaid::MAX_MESSAGES)
            );
        }
    }
}

/// The first line of a message.
fn headline(m: &str) -> &str {
    m.lines().next().unwrap_or("")
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// The anchor GitHub gives the `### id` heading of a case: lower case, dots dropped.
fn anchor(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Makes text safe inside one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::assert_contains;

    fn rec(id: &str, req: Option<&str>, verdict: Verdict) -> CaseRecord {
        CaseRecord {
            requirement: req.map(str::to_string),
            ..CaseRecord::new(id, id.split('.').next().unwrap(), "d", verdict)
        }
    }

    fn run(cases: Vec<CaseRecord>) -> RunResult {
        RunResult {
            meta: crate::report::sample_meta("0"),
            cases,
        }
    }

    #[test]
    fn control_plane_requirements_are_found_and_tabled_apart_from_the_device() {
        let mut r = run(vec![
            rec("mapping.ok", Some("MAP-OK"), Verdict::Pass),
            rec(
                "connect.x",
                Some("CONN-X"),
                Verdict::Fail("expected 1/82h".into()),
            ),
            rec("admin.y", Some("ADM-Y"), Verdict::Pass),
        ]);
        r.meta.control_plane = vec!["CONN-X".into(), "ADM-Y".into()];
        let md = to_markdown(&r);
        assert_contains(
            &md,
            "**The device conforms** to the 1 requirements tested. **The reference \
                 target's control plane (software over the device, not the device) does not \
                 conform**: 1 of 2 requirements have failing checks.",
        );
        let at = |h: &str| md.find(h).unwrap_or_else(|| panic!("{h} missing: {md}"));
        let device = &md[at("## Requirements on the device")
            ..at("## Requirements on the reference target's control plane")];
        let cp =
            &md[at("## Requirements on the reference target's control plane")..at("## mapping\n")];
        assert!(
            device.contains("| `MAP-OK` |") && !device.contains("CONN-X"),
            "{device}"
        );
        assert_contains(cp, "| `CONN-X` | **does not conform** |");
        assert!(cp.contains("| `ADM-Y` |") && !cp.contains("MAP-OK"), "{cp}");
        // Without the list (an older results.json), every requirement is the device's.
        r.meta.control_plane.clear();
        let md = to_markdown(&r);
        assert_contains(&md, "**The device does not conform**: 1 of 3");
        assert!(!md.contains("control plane"), "{md}");
    }

    #[test]
    fn a_diff_gets_its_own_block_and_a_note_its_cell() {
        let mut y = rec("mapping.y", Some("MAP-B"), Verdict::Pass);
        y.note = Some("trace not compared".into());
        let run = run(vec![
            rec(
                "mapping.x",
                Some("MAP-A"),
                Verdict::Fail(
                    "trace differs\n--- expected\n+++ actual\n@@ -1 +1 @@\n-a\n+b".into(),
                ),
            ),
            y,
        ]);
        let md = to_markdown(&run);
        assert!(
            md.contains("| trace differs ([below](#mappingx)) |"),
            "{md}"
        );
        assert_contains(&md, "### mapping.x\n\ntrace differs\n\n```diff\n--- expected\n+++ actual\n@@ -1 +1 @@\n-a\n+b\n```");
        assert_contains(&md, "| note: trace not compared |");
    }

    #[test]
    fn caps_and_requirements_are_tabled_with_their_findings() {
        let run = run(vec![
            rec("mapping.a", Some("MAP-OK"), Verdict::Pass),
            rec("mapping.b", Some("MAP-OK"), Verdict::Pass),
            rec("mapping.c", Some("MAP-BAD"), Verdict::Pass),
            rec(
                "mapping.d",
                Some("MAP-BAD"),
                Verdict::Fail("expected EEXIST, got 0".into()),
            ),
            rec("srq.e", Some("SRQ-PART"), Verdict::Pass),
            rec(
                "srq.f",
                Some("SRQ-PART"),
                Verdict::Skip("needs FLUSH | offload".into()),
            ),
            rec("srq.g", Some("SRQ-NONE"), Verdict::Skip("needs X".into())),
            rec("fabric.qp.h", None, Verdict::Pass),
        ]);
        let md = to_markdown(&run);
        assert_contains(&md, "| target | profile | fabric | seed | shard | version |\n|---|---|---|---|---|---|\n| reference:full | full | sim | 0 | - | 0 |");
        assert_contains(&md, "## Device capabilities\n\nAs the device reported them (profile `full`).\n\n| capability | value |\n|---|---|\n| `offload_type_rc` | READ \\| WRITE |\n| `max_io_sz` | 131072 |\n");
        assert_contains(
            &md,
            "| `MAP-OK` | conforms | 0 | `mapping.a` | pass |\n|  |  |  | `mapping.b` | pass |\n",
        );
        assert!(md.contains("| `MAP-BAD` | **does not conform** | 0 | `mapping.c` | pass |\n|  |  |  | `mapping.d` | fail: expected EEXIST, got 0 ([below](#mappingd)) |\n"), "{md}");
        assert_contains(&md, "| `SRQ-PART` | conforms (1 of 2 cases skipped) | 0 | `srq.e` | pass |\n|  |  |  | `srq.f` | skip: needs FLUSH \\| offload |");
        assert_contains(&md, "| `SRQ-NONE` | not tested (every case skipped) |");
        let reqs = &md[md.find("## Requirements").unwrap()..md.find("## mapping\n").unwrap()];
        assert!(
            !reqs.contains("fabric.qp.h"),
            "fabric cases have no requirement row: {md}"
        );
        assert_contains(&md, "**The device does not conform**: 1 of 4 requirements have failing checks; 1 not tested (every case skipped).");
        // the tables come in order: caps, requirements, areas, failures
        let at = |t: &str| md.find(t).unwrap();
        assert!(at("## Device capabilities") < at("## Requirements"));
        assert!(at("## Requirements") < at("## mapping\n"));
        assert!(at("## fabric\n") < at("## Failure details"));
    }

    #[test]
    fn a_failure_counts_against_the_requirement_of_the_check_that_failed() {
        // mapping.enoent checks MAP-ENOENT (3 checks held), then fails a check of
        // MAP-SHARED: one broken rule, reported once.
        let mut enoent = rec(
            "mapping.enoent",
            Some("MAP-ENOENT"),
            Verdict::Fail("expected EEXIST, got 0".into()),
        );
        enoent.checks = vec![("MAP-ENOENT".into(), 3)];
        enoent.blamed = Some("MAP-SHARED".into());
        let mut shared = rec("mapping.shared", Some("MAP-SHARED"), Verdict::Pass);
        shared.checks = vec![("MAP-SHARED".into(), 2)];
        let mut early = rec(
            "mapping.early",
            Some("MAP-LATE"),
            Verdict::Fail("setup".into()),
        );
        early.blamed = Some("MAP-SHARED".into());
        let md = to_markdown(&run(vec![enoent, shared, early]));
        assert_contains(&md, "| `MAP-ENOENT` | conforms | 3 | `mapping.enoent` | pass (then failed on `MAP-SHARED`) |");
        assert_contains(&md, "| `MAP-SHARED` | **does not conform** | 2 | `mapping.enoent` | fail: expected EEXIST, got 0 ([below](#mappingenoent)) |\n|  |  |  | `mapping.shared` | pass |\n|  |  |  | `mapping.early` | fail: setup ([below](#mappingearly)) |");
        assert_contains(&md, "| `MAP-LATE` | **undetermined** (its cases failed on other requirements first) | 0 | `mapping.early` | not reached (failed on `MAP-SHARED` first) |");
        assert_contains(&md, "1 of 3 requirements have failing checks");
        assert_contains(&md, "requirement `MAP-SHARED`, fail: d");
    }

    #[test]
    fn a_failure_has_diagrams_of_the_observed_and_expected_traces() {
        let mut c = rec(
            "mapping.eexist.same-ctrl",
            Some("MAP-EEXIST"),
            Verdict::Fail("mapping twice: expected EEXIST, got ok".into()),
        );
        c.trace = vec![
            "device   call    map_nsid ctrl1 fe_nsid=1 -> ok".into(),
            "device   call    map_nsid ctrl1 fe_nsid=1 -> ok".into(),
        ];
        c.expected = Some(vec![
            "device   call    map_nsid ctrl1 fe_nsid=1 -> ok".into(),
            "device   call    map_nsid ctrl1 fe_nsid=1 -> EEXIST".into(),
        ]);
        let mut e = rec(
            "srq.hang",
            Some("SRQ-X"),
            Verdict::Error("the device hung; #1".into()),
        );
        e.trace = vec!["host     call    alloc_pd -> pd1".into()];
        let md = to_markdown(&run(vec![c, e]));
        let section =
            &md[md.find("### mapping.eexist.same-ctrl").unwrap()..md.find("### srq.hang").unwrap()];
        assert_contains(
            section,
            "mapping twice: expected EEXIST, got ok\n\nrequirement `MAP-EEXIST`, fail: d\n",
        );
        assert_eq!(
            section.matches("```mermaid\nsequenceDiagram\n").count(),
            2,
            "{section}"
        );
        let observed = section.find("**Observed** (2 trace lines)").unwrap();
        let expected = section.find("**Expected**").unwrap();
        assert!(observed < expected);
        assert!(section[observed..expected]
            .contains("target->>device: map_nsid ctrl1 fe_nsid=1 -#62; ok\n"));
        assert!(section[expected..]
            .contains("target->>device: map_nsid ctrl1 fe_nsid=1 -#62; EEXIST\n"));
        let hang = &md[md.find("### srq.hang").unwrap()..];
        assert_contains(hang, "the device hung; #1\n");
        assert_eq!(
            hang.matches("```mermaid").count(),
            1,
            "no snapshot, one diagram: {hang}"
        );
        assert_contains(hang, "Note over host: alloc_pd -#62; pd1");
        assert!(md.contains("**Undetermined**") || md.contains("does not conform"));
    }

    #[test]
    fn a_fabric_only_run_says_no_device_was_tested() {
        let mut r = run(vec![rec("fabric.cq.a", None, Verdict::Pass)]);
        r.meta.caps.clear();
        let md = to_markdown(&r);
        assert_contains(&md, "No device was tested in this run");
        assert_contains(&md, "No requirement of the offload API was checked");
        assert!(!md.contains("## Requirements"), "{md}");
    }
}
