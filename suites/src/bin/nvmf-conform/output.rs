//! What the command prints: the progress bar, styled verdicts and the run's summary.

use super::*;

pub(crate) fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(s) = ProgressStyle::with_template("{pos:>4}/{len} [{elapsed}] {bar:30} {wide_msg}") {
        bar.set_style(s);
    }
    bar
}

/// A verdict's name, coloured when the stream is a terminal (and NO_COLOR is unset).
pub(crate) fn verdict_styled(v: &Verdict, stderr: bool) -> String {
    let name = v.name().to_uppercase();
    let s = style(format!("{name:5}"));
    let s = if stderr {
        s.for_stderr()
    } else {
        s.for_stdout()
    };
    match v {
        Verdict::Pass => s.green(),
        Verdict::Fail(_) | Verdict::Error(_) => s.red().bold(),
        Verdict::Skip(_) => s.yellow(),
    }
    .to_string()
}

pub(crate) fn print_summary(result: &RunResult, dir: &Path) {
    let count = |v: &str| result.count(v);
    let seed = result.meta.seed;
    let paint =
        |n: usize,
         what: &str,
         colour: fn(console::StyledObject<String>) -> console::StyledObject<String>| {
            let text = format!("{n} {what}");
            if n == 0 {
                text
            } else {
                colour(style(text).for_stdout()).to_string()
            }
        };
    let shard = result
        .meta
        .shard
        .as_ref()
        .map(|s| format!(", shard {s}"))
        .unwrap_or_default();
    println!(
        "{}: {}, {}, {}, {} (seed {seed}{shard}); reports in {}",
        harness::report::plural(result.cases.len(), "case", "cases"),
        paint(count("pass"), "passed", |s| s.green()),
        paint(count("fail"), "failed", |s| s.red().bold()),
        paint(
            count("error"),
            if count("error") == 1 {
                "error"
            } else {
                "errors"
            },
            |s| s.red().bold()
        ),
        paint(count("skip"), "skipped", |s| s.yellow()),
        dir.display()
    );
    let noted = result.cases.iter().filter(|c| c.note.is_some()).count();
    if noted > 0 {
        println!(
            "{} a note (e.g. a trace not compared with its snapshot): see {}",
            harness::report::plural(noted, "case carries", "cases carry"),
            dir.join("summary.md").display()
        );
    }
    let failed: Vec<&CaseRecord> = result
        .cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail(_) | Verdict::Error(_)))
        .collect();
    if let Some(first) = failed.first() {
        println!(
            "replay the first failure: {}",
            result.meta.replay_line(&first.id)
        );
    }
}

pub(crate) fn detail(v: &Verdict) -> &str {
    match v {
        Verdict::Pass => "",
        Verdict::Fail(m) | Verdict::Error(m) | Verdict::Skip(m) => m,
    }
}
