//! Merging the results of a run's shards (`nvmf-conform run --shard i/n`) into the result
//! of the whole run.
//!
//! **What must hold.** Every input is a shard (`meta.shard` is `i/n`) of the same run: the
//! same `target`, `profile`, `fabric`, `seed`, `version` and replay options, the same `n`; each `i` in
//! `1..=n` exactly once; no case id in two shards. Caps must be equal among the shards that
//! have them (a shard that ran only fabric contract cases has none).
//!
//! **Order of the merged cases.** Catalog order cannot be recovered from the shards alone
//! (`--shard` picks cases by a hash of their id), so the merge orders them by area, areas
//! in order of first appearance when the shards are read in shard order (1, 2, … n), and
//! by id within an area. It depends only on the inputs, never on the order they are given
//! in. A caller that knows the catalog (the `nvmf-conform report merge` command) then calls
//! [`RunResult::order_by`] with the catalog's ids, which restores exactly the order of the
//! unsharded run.
//!
//! **The merged metadata** is the shards' with `shard` = `merged 1..n of n`.

use std::path::{Path, PathBuf};

use super::{read_results, ReportError};
use crate::runner::{RunMeta, RunResult};

/// Why runs cannot be merged. Each names the input (its file, or `run K` for the K-th
/// run given to [`merge`]) and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Nothing was given.
    #[error("nothing to merge: no shard results given")]
    Empty,
    /// An input is not a shard (`meta.shard` absent) or its shard is not `i/n`.
    #[error(
        "{input}: field `meta.shard` is {found}, not `i/n` with 1 <= i <= n: not a shard of a run"
    )]
    NotAShard {
        /// The input.
        input: String,
        /// What the field holds (`absent` or the quoted value).
        found: String,
    },
    /// Two inputs differ in a metadata field.
    #[error("{input}: field `meta.{field}` is `{value}`, but {first} has `{expected}`: not shards of one run")]
    Mismatch {
        /// The input that differs.
        input: String,
        /// The field, e.g. `seed`, `caps.max_io_sz` or `shard` (its `n`).
        field: String,
        /// Its value there.
        value: String,
        /// The first input, whose value the others must have.
        first: String,
        /// The value there.
        expected: String,
    },
    /// Two inputs are the same shard.
    #[error("{input}: shard {shard} is given twice (also {other})")]
    DuplicateShard {
        /// The second input with that shard.
        input: String,
        /// The first.
        other: String,
        /// `i/n`.
        shard: String,
    },
    /// Some shard numbers of `1..=n` are not among the inputs.
    #[error("shard{} {} of {total} missing: a merged run must have every shard", if missing.len() > 1 { "s" } else { "" }, missing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    MissingShards {
        /// The missing shard numbers, ascending.
        missing: Vec<u32>,
        /// `n`.
        total: u32,
    },
    /// A case id is in two inputs.
    #[error("{input}: case `{id}` is also in {other}: shards must not overlap")]
    DuplicateCase {
        /// The later input (in shard order).
        input: String,
        /// The earlier one.
        other: String,
        /// The case id.
        id: String,
    },
}

/// Merges the shards of one run (see the module docs); inputs are named `run 1`, `run 2`…
/// in errors, in the order given.
pub fn merge(runs: Vec<RunResult>) -> Result<RunResult, MergeError> {
    merge_labelled(
        runs.into_iter()
            .enumerate()
            .map(|(i, r)| (format!("run {}", i + 1), r))
            .collect(),
    )
}

/// Reads `DIR/results.json` of every directory and merges them; errors name the files.
/// What `nvmf-conform report merge --out DIR SHARD_DIR...` does before writing the reports.
pub fn merge_dirs<P: AsRef<Path>>(dirs: &[P]) -> Result<RunResult, ReportError> {
    let mut runs = Vec::with_capacity(dirs.len());
    for d in dirs {
        let file: PathBuf = d.as_ref().join("results.json");
        let run = read_results(&file)?;
        runs.push((file.display().to_string(), run));
    }
    Ok(merge_labelled(runs)?)
}

/// Merges the shards of one run, each given with the name errors use for it (its file).
pub fn merge_labelled(runs: Vec<(String, RunResult)>) -> Result<RunResult, MergeError> {
    let Some((first_label, first)) = runs.first() else {
        return Err(MergeError::Empty);
    };
    let (_, total) = shard_of(first_label, &first.meta)?;
    let mut slots: Vec<Option<(String, RunResult)>> = vec![None; total as usize];
    let mut caps: Option<(String, Vec<(String, String)>)> = None;
    for (label, run) in &runs {
        let (i, n) = shard_of(label, &run.meta)?;
        let same = |field: &str, value: String, expected: String| {
            if value == expected {
                Ok(())
            } else {
                Err(MergeError::Mismatch {
                    input: label.clone(),
                    field: field.into(),
                    value,
                    first: first_label.clone(),
                    expected,
                })
            }
        };
        let (m, f) = (&run.meta, &first.meta);
        same("target", m.target.clone(), f.target.clone())?;
        same("profile", m.profile.clone(), f.profile.clone())?;
        same("fabric", m.fabric.clone(), f.fabric.clone())?;
        same("seed", m.seed.to_string(), f.seed.to_string())?;
        same("version", m.version.clone(), f.version.clone())?;
        same(
            "replay",
            shell_words::join(&m.replay),
            shell_words::join(&f.replay),
        )?;
        if n != total {
            return Err(MergeError::Mismatch {
                input: label.clone(),
                field: "shard".into(),
                value: format!("{i}/{n}"),
                first: first_label.clone(),
                expected: first.meta.shard.clone().unwrap_or_default(),
            });
        }
        if !run.meta.caps.is_empty() {
            match &caps {
                None => caps = Some((label.clone(), run.meta.caps.clone())),
                Some((other, c)) => compare_caps(label, &run.meta.caps, other, c)?,
            }
        }
        let slot = &mut slots[i as usize - 1];
        if let Some((other, _)) = slot {
            return Err(MergeError::DuplicateShard {
                input: label.clone(),
                other: other.clone(),
                shard: format!("{i}/{n}"),
            });
        }
        *slot = Some((label.clone(), run.clone()));
    }
    let missing: Vec<u32> = (1..=total)
        .filter(|i| slots[*i as usize - 1].is_none())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingShards { missing, total });
    }
    let mut cases = Vec::new();
    let mut seen: std::collections::BTreeMap<String, String> = Default::default();
    for (label, run) in slots.into_iter().flatten() {
        for c in run.cases {
            if let Some(other) = seen.insert(c.id.clone(), label.clone()) {
                return Err(MergeError::DuplicateCase {
                    input: label,
                    other,
                    id: c.id,
                });
            }
            cases.push(c);
        }
    }
    let mut areas: Vec<String> = Vec::new();
    for c in &cases {
        if !areas.contains(&c.area) {
            areas.push(c.area.clone());
        }
    }
    cases.sort_by(|a, b| {
        let rank = |c: &crate::runner::CaseRecord| areas.iter().position(|x| *x == c.area);
        rank(a).cmp(&rank(b)).then_with(|| a.id.cmp(&b.id))
    });
    Ok(RunResult {
        meta: RunMeta {
            shard: Some(format!("merged 1..{total} of {total}")),
            caps: caps.map(|(_, c)| c).unwrap_or_default(),
            ..first.meta.clone()
        },
        cases,
    })
}

/// `(i, n)` of an input's `i/n` shard.
fn shard_of(label: &str, meta: &RunMeta) -> Result<(u32, u32), MergeError> {
    let bad = |found: String| MergeError::NotAShard {
        input: label.to_string(),
        found,
    };
    let Some(s) = &meta.shard else {
        return Err(bad("absent".into()));
    };
    let parsed = s
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((i, n)) if 1 <= i && i <= n => Ok((i, n)),
        _ => Err(bad(format!("`{s}`"))),
    }
}

/// The first field where two inputs' caps differ, as an error.
fn compare_caps(
    label: &str,
    caps: &[(String, String)],
    other: &str,
    expected: &[(String, String)],
) -> Result<(), MergeError> {
    let get = |c: &[(String, String)], k: &str| {
        c.iter()
            .find(|(f, _)| f == k)
            .map_or_else(|| "(absent)".to_string(), |(_, v)| v.clone())
    };
    let keys = expected.iter().chain(caps).map(|(k, _)| k.as_str());
    for k in keys {
        let (value, want) = (get(caps, k), get(expected, k));
        if value != want {
            return Err(MergeError::Mismatch {
                input: label.to_string(),
                field: format!("caps.{k}"),
                value,
                first: other.to_string(),
                expected: want,
            });
        }
    }
    Ok(())
}
