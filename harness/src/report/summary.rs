//! `summary.md`: the run for people — metadata, totals, a table per area, failures first.

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
                Verdict::Pass => String::new(),
                Verdict::Fail(x) | Verdict::Error(x) | Verdict::Skip(x) => cell(x),
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
    s
}

/// Makes text safe inside one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
