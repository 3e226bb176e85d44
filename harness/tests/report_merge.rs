//! Reading `results.json` back and merging shards: `harness::report::{read_results, merge}`.

use std::path::PathBuf;
use std::time::Duration;

use harness::report::{self, merge, merge_dirs, MergeError, ReportError};
use harness::runner::{CaseRecord, RunMeta, RunResult, Verdict};

fn rec(id: &str, verdict: Verdict) -> CaseRecord {
    let area = id.rsplit_once('.').unwrap().0;
    CaseRecord {
        requirement: (!id.starts_with("fabric")).then(|| id.to_uppercase()),
        wall: Duration::from_millis(3),
        trace: vec![format!("host     call    {id} -> ok")],
        ..CaseRecord::new(id, area, &format!("what {id} checks"), verdict)
    }
}

/// A run in "catalog order": areas interleaved as a catalog lists them, ids not sorted.
fn whole() -> RunResult {
    let ids = [
        "mapping.z",
        "mapping.b",
        "mapping.m",
        "srq.q",
        "srq.a",
        "srq.k",
        "srq.c",
        "ctrl.y",
        "ctrl.d",
        "datapath.w",
        "datapath.e",
        "datapath.r",
        "fabric.cq.t",
        "fabric.cq.b",
        "fabric.qp.x",
        "fabric.qp.a",
        "fabric.qp.j",
    ];
    let cases = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let v = match i % 4 {
                0 => Verdict::Pass,
                1 => Verdict::Fail(format!("{id} broke\n--- expected\n+++ actual")),
                2 => Verdict::Skip("needs FLUSH".into()),
                _ => Verdict::Error("hung".into()),
            };
            let mut c = rec(id, v);
            if i % 4 == 1 {
                c.expected = Some(vec!["host     call    x -> ok".into()]);
            }
            c
        })
        .collect();
    RunResult {
        meta: RunMeta {
            target: "reference:full".into(),
            profile: "full".into(),
            caps: vec![
                ("offload_type_rc".into(), "READ | WRITE".into()),
                ("max_io_sz".into(), "131072".into()),
            ],
            fabric: "sim".into(),
            seed: 42,
            version: "0.1.0".into(),
            replay: vec!["--seed".into(), "42".into(), "--quirk".into(), "x".into()],
            ..RunMeta::default()
        },
        cases,
    }
}

/// Shard `i/n` of a run, chosen as `--shard` does: by a hash of the id.
fn shard(run: &RunResult, i: u32, n: u32) -> RunResult {
    let holds = |id: &str| {
        let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        h % u64::from(n) == u64::from(i - 1)
    };
    let mut s = run.clone();
    s.meta.shard = Some(format!("{i}/{n}"));
    s.cases.retain(|c| holds(&c.id));
    s
}

fn shards(n: u32) -> Vec<RunResult> {
    let w = whole();
    (1..=n).map(|i| shard(&w, i, n)).collect()
}

/// The error of merging three shards after `change` to the metadata of the `i`th (from 0).
fn merge_error(i: usize, change: impl FnOnce(&mut RunMeta)) -> MergeError {
    let mut s = shards(3);
    change(&mut s[i].meta);
    merge(s).unwrap_err()
}

fn ids(run: &RunResult) -> Vec<&str> {
    run.cases.iter().map(|c| c.id.as_str()).collect()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nvmf-conform-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn results_json_reads_back_as_written() {
    let dir = scratch("roundtrip");
    let run = whole();
    report::write_all(&run, &dir).unwrap();
    let back = report::read_results(&dir.join("results.json")).unwrap();
    let mut want = run.clone();
    for c in &mut want.cases {
        c.wall = Duration::ZERO; // not in results.json
    }
    assert_eq!(back, want);
    // written again, byte for byte the same file
    assert_eq!(
        report::to_json(&back),
        std::fs::read_to_string(dir.join("results.json")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn three_shards_merge_into_the_unsharded_runs_cases() {
    let whole = whole();
    let parts = shards(3);
    assert!(parts.iter().all(|p| !p.cases.is_empty()));
    // given in any order, the merge is the same
    let mut reversed = parts.clone();
    reversed.reverse();
    let merged = merge(parts).unwrap();
    assert_eq!(merge(reversed).unwrap(), merged);
    assert_eq!(merged.meta.shard.as_deref(), Some("merged 1..3 of 3"));
    assert_eq!(
        RunMeta {
            shard: None,
            ..merged.meta.clone()
        },
        whole.meta
    );
    // without the catalog: grouped by area, by id within an area
    for area in merged.areas() {
        let in_area: Vec<&str> = merged
            .cases
            .iter()
            .filter(|c| c.area == area)
            .map(|c| c.id.as_str())
            .collect();
        assert!(in_area.is_sorted(), "{in_area:?}");
    }
    let mut sorted_merged = ids(&merged);
    let mut sorted_whole = ids(&whole);
    sorted_merged.sort_unstable();
    sorted_whole.sort_unstable();
    assert_eq!(sorted_merged, sorted_whole);
    // with the catalog's order: exactly the unsharded run's cases
    let mut merged = merged;
    let catalog: Vec<String> = whole.cases.iter().map(|c| c.id.clone()).collect();
    merged.order_by(&catalog);
    assert_eq!(merged.cases, whole.cases);
    // and its reports are those of the unsharded run, metadata aside
    let md = report::summary::to_markdown(&merged);
    let md_whole = report::summary::to_markdown(&whole);
    assert_eq!(
        md.split_once("**17 cases").unwrap().1,
        md_whole.split_once("**17 cases").unwrap().1
    );
}

#[test]
fn merge_dirs_reads_each_shards_results() {
    let root = scratch("merge-dirs");
    let dirs: Vec<PathBuf> = shards(2)
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = root.join(format!("shard{}", i + 1));
            report::write_all(s, &d).unwrap();
            d
        })
        .collect();
    let merged = merge_dirs(&dirs).unwrap();
    assert_eq!(merged.cases.len(), whole().cases.len());
    // a bad file is named, with line and column
    std::fs::write(dirs[1].join("results.json"), "{\"meta\": {}}\n").unwrap();
    let e = merge_dirs(&dirs).unwrap_err();
    assert!(matches!(e, ReportError::Json { line: 1, .. }), "{e}");
    assert!(e.to_string().contains("shard2/results.json:1:"), "{e}");
    assert!(e.to_string().contains("missing field `target`"), "{e}");
    // a mismatch is named by file
    let mut other = shard(&whole(), 2, 2);
    other.meta.seed = 7;
    report::write_all(&other, &dirs[1]).unwrap();
    let e = merge_dirs(&dirs).unwrap_err().to_string();
    assert!(
        e.contains("shard2/results.json: field `meta.seed` is `7`, but "),
        "{e}"
    );
    assert!(e.contains("shard1/results.json has `42`"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn each_merge_error_names_the_input_and_field() {
    assert_eq!(merge(vec![]).unwrap_err(), MergeError::Empty);

    let e = merge_error(1, |m| m.shard = None);
    assert_eq!(
        e.to_string(),
        "run 2: field `meta.shard` is absent, not `i/n` with 1 <= i <= n: not a shard of a run"
    );

    assert!(
        matches!(merge_error(0, |m| m.shard = Some("4/3".into())), MergeError::NotAShard { input, found } if input == "run 1" && found == "`4/3`")
    );

    type Change = fn(&mut RunMeta);
    let fields: [(&str, Change); 6] = [
        ("target", |m| m.target = "reference:tight".into()),
        ("profile", |m| m.profile = "tight".into()),
        ("fabric", |m| m.fabric = "verbs".into()),
        ("seed", |m| m.seed = 1),
        ("version", |m| m.version = "0.2.0".into()),
        ("caps.max_io_sz", |m| m.caps[1].1 = "8192".into()),
    ];
    for (field, change) in fields {
        match merge_error(2, change) {
            MergeError::Mismatch {
                input,
                field: f,
                first,
                ..
            } => {
                assert_eq!(
                    (input.as_str(), f.as_str(), first.as_str()),
                    ("run 3", field, "run 1")
                );
            }
            e => panic!("{field}: {e}"),
        }
    }

    // a shard with no caps (only fabric cases ran) merges with those that have them
    let mut s = shards(3);
    s[1].meta.caps.clear();
    s[1].cases.retain(|c| c.area.starts_with("fabric"));
    let merged = merge(s).unwrap();
    assert_eq!(merged.meta.caps, whole().meta.caps);

    let e = merge_error(1, |m| m.shard = Some("2/4".into()));
    assert_eq!(
        e.to_string(),
        "run 2: field `meta.shard` is `2/4`, but run 1 has `1/3`: not shards of one run"
    );

    let e = merge_error(2, |m| m.shard = Some("1/3".into()));
    assert_eq!(
        e,
        MergeError::DuplicateShard {
            input: "run 3".into(),
            other: "run 1".into(),
            shard: "1/3".into()
        }
    );

    let s: Vec<RunResult> = shards(5)
        .into_iter()
        .filter(|r| !matches!(r.meta.shard.as_deref(), Some("2/5" | "4/5")))
        .collect();
    let e = merge(s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "shards 2, 4 of 5 missing: a merged run must have every shard"
    );

    let mut s = shards(3);
    let stolen = s[0].cases[0].clone();
    s[2].cases.push(stolen.clone());
    let e = merge(s).unwrap_err();
    assert_eq!(
        e,
        MergeError::DuplicateCase {
            input: "run 3".into(),
            other: "run 1".into(),
            id: stolen.id
        }
    );
}
