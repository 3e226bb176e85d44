//! `summary.md`: the run for people — metadata, totals, a table per area, then the full
//! text of every failure whose message has more than one line (a trace that differs from
//! its snapshot: the unified diff), in a `diff` block.

use std::fmt::Write;

use crate::runner::{RunResult, Verdict};

/// The run as Markdown.
pub fn to_markdown(run: &RunResult) -> String {
    let m = &run.meta;
    let mut s = String::new();
    let _ = writeln!(s, "# nvmf-conform run\n");
    let _ = writeln!(s, "| target | fabric | seed | shard | version |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} | {} |\n",
        m.target,
        m.fabric,
        m.seed,
        m.shard.as_deref().unwrap_or("-"),
        m.version
    );
    let _ = writeln!(
        s,
        "**{} cases: {} passed, {} failed, {} errors, {} skipped.**\n",
        run.cases.len(),
        run.count("pass"),
        run.count("fail"),
        run.count("error"),
        run.count("skip")
    );
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
                Verdict::Fail(x) | Verdict::Error(x) | Verdict::Skip(x) => match x.split_once('\n')
                {
                    Some((first, _)) => format!("{} ([below](#{}))", cell(first), anchor(&c.id)),
                    None => cell(x),
                },
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
    let long: Vec<_> = run
        .cases
        .iter()
        .filter_map(|c| match &c.verdict {
            Verdict::Fail(x) | Verdict::Error(x) => x.split_once('\n').map(|m| (c, m)),
            _ => None,
        })
        .collect();
    if !long.is_empty() {
        let _ = writeln!(s, "## Failure details\n");
        for (c, (first, rest)) in long {
            let _ = writeln!(s, "### {}\n", c.id);
            let _ = writeln!(s, "{}\n", first.trim());
            let fence = if rest.contains("```") { "~~~~" } else { "```" };
            let lang = if rest.lines().any(|l| l.starts_with("@@ ")) {
                "diff"
            } else {
                "text"
            };
            let _ = writeln!(s, "{fence}{lang}\n{}\n{fence}\n", rest.trim_end());
        }
    }
    s
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
    use std::time::Duration;

    use super::*;
    use crate::runner::{CaseRecord, RunMeta};

    #[test]
    fn a_diff_gets_its_own_block_and_a_note_its_cell() {
        let rec = |id: &str, verdict, note: Option<&str>| CaseRecord {
            id: id.into(),
            area: "mapping".into(),
            description: "d".into(),
            verdict,
            wall: Duration::ZERO,
            trace: vec![],
            note: note.map(str::to_string),
        };
        let run = RunResult {
            meta: RunMeta {
                target: "reference:full".into(),
                fabric: "sim".into(),
                seed: 0,
                shard: None,
                version: "0".into(),
            },
            cases: vec![
                rec(
                    "mapping.x",
                    Verdict::Fail(
                        "trace differs\n--- expected\n+++ actual\n@@ -1 +1 @@\n-a\n+b".into(),
                    ),
                    None,
                ),
                rec("mapping.y", Verdict::Pass, Some("trace not compared")),
            ],
        };
        let md = to_markdown(&run);
        assert!(
            md.contains("| trace differs ([below](#mappingx)) |"),
            "{md}"
        );
        assert!(md.contains("### mapping.x\n\ntrace differs\n\n```diff\n--- expected\n+++ actual\n@@ -1 +1 @@\n-a\n+b\n```"), "{md}");
        assert!(md.contains("| note: trace not compared |"), "{md}");
    }
}
