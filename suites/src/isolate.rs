//! Running cases in forked child processes ([`harness::runner::child`]): one child per
//! case, or one per area (suite). A child that crashes or hangs costs its case an error
//! verdict that names the signal or the bound; with a child per suite, the cases the dead
//! child never reached are errors that say so. The report stays complete either way.

use std::time::{Duration, Instant};

use harness::runner::child::{run_in_child, ChildEnd};
use harness::runner::{CaseRecord, Verdict};

use crate::catalog::Entry;

/// How cases are isolated from the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Isolation {
    /// In the runner's process (the reference target: its hangs are bounded in virtual time).
    #[default]
    None,
    /// A forked child per case.
    Case,
    /// A forked child per area (suite): cheaper, but a crash costs the rest of the suite.
    Suite,
}

/// Runs `entries` in children as `isolation` says (not [`Isolation::None`]), each by
/// `run_case`, calling `progress` on each record as it arrives; `watchdog` is the real
/// time a child may go without delivering a record.
pub(crate) fn records(
    entries: &[Entry],
    isolation: Isolation,
    watchdog: Duration,
    progress: &mut dyn FnMut(&CaseRecord),
    run_case: &dyn Fn(&Entry) -> CaseRecord,
) -> Vec<CaseRecord> {
    let groups: Vec<&[Entry]> = match isolation {
        Isolation::Suite => entries.chunk_by(|a, b| a.area == b.area).collect(),
        _ => entries.chunks(1).collect(),
    };
    let mut out = Vec::with_capacity(entries.len());
    for group in groups {
        out.extend(run_group(group, watchdog, progress, run_case));
    }
    out
}

/// Runs one group of entries in one child.
fn run_group(
    group: &[Entry],
    watchdog: Duration,
    progress: &mut dyn FnMut(&CaseRecord),
    run_case: &dyn Fn(&Entry) -> CaseRecord,
) -> Vec<CaseRecord> {
    let mut got: Vec<CaseRecord> = Vec::with_capacity(group.len());
    let mut started = Instant::now();
    let end = run_in_child(
        watchdog,
        |tx| {
            for e in group {
                let rec = run_case(e);
                match serde_json::to_string(&rec) {
                    Ok(line) => tx.send(&line),
                    Err(e) => tx.send(&format!("{{\"unserialisable\": \"{e}\"}}")),
                }
            }
        },
        |line| {
            let i = got.len();
            let Some(entry) = group.get(i) else { return };
            let mut rec = match serde_json::from_str::<CaseRecord>(&line) {
                Ok(r) if r.id == entry.id => r,
                Ok(r) => error_record(
                    entry,
                    format!("the child reported case `{}` out of order", r.id),
                ),
                Err(e) => error_record(entry, format!("unreadable record from the child: {e}")),
            };
            rec.wall = started.elapsed();
            started = Instant::now();
            progress(&rec);
            got.push(rec);
        },
    );
    if got.len() < group.len() {
        let reason = match &end {
            ChildEnd::Finished => "the child ended without reporting it".to_string(),
            other => other.to_string(),
        };
        let dead_in = group[got.len()].id.clone();
        for (k, e) in group[got.len()..].iter().enumerate() {
            let msg = if k == 0 {
                reason.clone()
            } else {
                format!("not run: the suite's process ended in `{dead_in}`: {reason}")
            };
            let mut rec = error_record(e, msg);
            rec.wall = if k == 0 {
                started.elapsed()
            } else {
                Duration::ZERO
            };
            progress(&rec);
            got.push(rec);
        }
    }
    got
}

/// An error record for `entry`.
fn error_record(entry: &Entry, message: String) -> CaseRecord {
    CaseRecord {
        requirement: entry.requirement.map(str::to_string),
        ..CaseRecord::new(
            &entry.id,
            &entry.area,
            &entry.description,
            Verdict::Error(message),
        )
    }
}
