//! The kill matrix: the catalog run against the reference target with each quirk on its
//! own proves the suite can fail — every quirk must make at least one case fail, and the
//! clean target must pass everything. `nvmf-conform kill-matrix` writes
//! `docs/kill-matrix.md`; a test checks the committed file is current.

use std::fmt::Write;

use harness::api::Profile;
use harness::runner::{RunResult, Verdict};
use reference_target::quirks::{Quirk, Quirks};

use crate::catalog;
use crate::run::{self, Options};

/// Profiles every quirk is tried with (some rules only show on one of them, e.g. the
/// unsupported-op event needs a device without non-offloaded ops).
pub const PROFILES: [&str; 2] = ["full", "minimal"];

/// For each quirk, a profile and the case named for the rule it breaks: that case must
/// catch it (the matrix proper is measured over the whole catalog; this pins one case per
/// rule, cheap enough to run against every mutant of the target, `docs/mutation.md`).
pub const PINNED: [(Quirk, &str, &str); 13] = [
    (
        Quirk::OffloadAtQpCreation,
        "full",
        "software.offload-not-enabled",
    ),
    (
        Quirk::EexistPerCtrl,
        "full",
        "mapping.eexist.other-ctrl-same-srq",
    ),
    (Quirk::UnmapMissingOk, "full", "mapping.enoent.never-mapped"),
    (Quirk::LbaSizeUnchecked, "full", "mapping.lba-size.1024"),
    (
        Quirk::UnsupportedOpSilent,
        "minimal",
        "unsupported.unknown-opcode",
    ),
    (Quirk::NoPciErrEvent, "full", "pci-error.idle"),
    (Quirk::NoTimeoutEvent, "full", "timeout.event-and-answer"),
    (
        Quirk::LoseInflightOnPciErr,
        "full",
        "pci-error.in-flight-answered",
    ),
    (
        Quirk::EarlyWriteAck,
        "full",
        "timeout.write-not-acknowledged-early",
    ),
    (Quirk::CqPhaseStuck, "full", "datapath.queue-wrap"),
    (Quirk::AllowAnyHost, "full", "security.host-not-allowed"),
    (Quirk::SglLengthUnchecked, "full", "software.sgl-too-short"),
    (
        Quirk::HangOneCommand,
        "full",
        "datapath.write-read.lba-4096",
    ),
];

/// Runs each quirk's [`PINNED`] case with that quirk: the quirks no pinned case caught, with
/// the verdict it gave (empty when every quirk is caught).
pub fn uncaught_pinned() -> Vec<String> {
    let entries = catalog::offload();
    let unpinned = Quirk::ALL
        .into_iter()
        .filter(|q| !PINNED.iter().any(|(p, _, _)| p == q))
        .map(|q| format!("{q}: no pinned case"));
    PINNED
        .iter()
        .filter_map(|&(quirk, profile, case)| {
            let Some(entry) = entries.iter().find(|e| e.id == case) else {
                return Some(format!("{quirk}: no case {case}"));
            };
            let opts = Options {
                profile: Profile::builtin(profile).expect("built-in profile"),
                quirks: Quirks::one(quirk),
                ..Options::default()
            };
            let result = run::run(std::slice::from_ref(entry), &opts, |_| {});
            match &result.cases[0].verdict {
                Verdict::Fail(_) | Verdict::Error(_) => None,
                v => Some(format!("{quirk} on {profile}: {case} gave {v:?}")),
            }
        })
        .chain(unpinned)
        .collect()
}

/// One row: a quirk and the cases that caught it, per profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The quirk.
    pub quirk: Quirk,
    /// For each of [`PROFILES`], the ids of the cases that failed or errored.
    pub caught_by: Vec<Vec<String>>,
    /// For each of [`PROFILES`], the requirements the failures were blamed on.
    pub blamed: Vec<std::collections::BTreeSet<String>>,
}

impl Row {
    /// Whether any case caught the quirk.
    pub fn killed(&self) -> bool {
        self.caught_by.iter().any(|c| !c.is_empty())
    }
}

/// The whole matrix, and the clean runs it is measured against.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// One row per quirk, in [`Quirk::ALL`] order.
    pub rows: Vec<Row>,
    /// Cases that failed on the clean target, per profile (must be empty).
    pub clean_failures: Vec<Vec<String>>,
    /// Number of offload cases run per configuration.
    pub cases: usize,
}

fn failed(r: &RunResult) -> Vec<String> {
    r.cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail(_) | Verdict::Error(_)))
        .map(|c| c.id.clone())
        .collect()
}

/// The requirements a run's failures and errors are blamed on.
fn blamed(r: &RunResult) -> std::collections::BTreeSet<String> {
    r.cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail(_) | Verdict::Error(_)))
        .filter_map(|c| c.blamed_requirement().map(str::to_string))
        .collect()
}

/// Runs the offload catalog clean and with each quirk, on each of [`PROFILES`].
pub fn compute() -> Matrix {
    let entries = catalog::offload();
    let run_with = |profile: &str, quirks: Quirks| {
        let opts = Options {
            profile: Profile::builtin(profile).expect("built-in profile"),
            quirks,
            ..Options::default()
        };
        run::run(&entries, &opts, |_| {})
    };
    let clean_failures = PROFILES
        .iter()
        .map(|p| failed(&run_with(p, Quirks::none())))
        .collect();
    let rows = Quirk::ALL
        .into_iter()
        .map(|quirk| {
            let runs: Vec<RunResult> = PROFILES
                .iter()
                .map(|p| run_with(p, Quirks::one(quirk)))
                .collect();
            Row {
                quirk,
                caught_by: runs.iter().map(failed).collect(),
                blamed: runs.iter().map(blamed).collect(),
            }
        })
        .collect();
    Matrix {
        rows,
        clean_failures,
        cases: entries.len(),
    }
}

/// `docs/kill-matrix.md`.
pub fn markdown(m: &Matrix) -> String {
    let mut s = String::from(
        "# Kill matrix\n\n\
         Generated by `nvmf-conform kill-matrix` (a test fails when this file is out of date). \
         The offload catalog is run against the reference target with each quirk — one \
         deliberate violation — on its own, with the `full` and the `minimal` profile. Every \
         quirk must make at least one case fail; the clean target passes everything. Each \
         quirk declares the requirements it breaks, and the failures it causes must be blamed \
         on exactly those (on each profile a part of them, on both together all of them): one \
         bug is reported as the rules it breaks, never as a rule it does not.\n\n",
    );
    let killed = m.rows.iter().filter(|r| r.killed()).count();
    let _ = writeln!(
        s,
        "**{killed} of {} quirks caught** by {} cases per run.\n",
        m.rows.len(),
        m.cases
    );
    let _ = writeln!(
        s,
        "| quirk | rule it breaks | requirements it breaks | caught by (full) | caught by (minimal) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|");
    for r in &m.rows {
        let cell = |ids: &Vec<String>| {
            if ids.is_empty() {
                "—".to_string()
            } else {
                ids.iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join("<br>")
            }
        };
        let breaks: Vec<String> = r.quirk.breaks().iter().map(|b| format!("`{b}`")).collect();
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} |",
            r.quirk.name(),
            r.quirk.description(),
            breaks.join("<br>"),
            cell(&r.caught_by[0]),
            cell(&r.caught_by[1])
        );
    }
    let clean: Vec<String> = m.clean_failures.iter().flatten().cloned().collect();
    let _ = writeln!(
        s,
        "\nClean target: {}.",
        if clean.is_empty() {
            "every case passes or skips with its reason, on both profiles".to_string()
        } else {
            format!("FAILURES {}", clean.join(", "))
        }
    );
    s
}
