//! The replay line a run prints (on stdout, in summary.md, in JUnit and after `report
//! merge`) reproduces the failure it names: run as printed, it gives the same verdict and
//! the same message. Checked for every quirk, under another profile and through a plugin.

use std::path::{Path, PathBuf};

use reference_target::quirks::Quirk;

mod common;

use common::{conform, run_filter};

fn tmp(name: &str) -> PathBuf {
    common::tmp("replay", name)
}

/// The replay lines of summary.md, in order (one per failed or errored case).
fn replay_lines(summary: &str) -> Vec<String> {
    summary
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.lines().next())
        .filter(|l| l.starts_with("nvmf-conform replay "))
        .map(str::to_string)
        .collect()
}

/// Runs `args` into a fresh report directory; for every failed or errored case, runs its
/// replay line from summary.md and checks the verdict and message are the same. Also
/// checks the line printed on stdout and the one in junit.xml. Returns how many failures
/// were replayed.
fn every_failure_replays(name: &str, args: &[&str]) -> usize {
    let dir = tmp(name);
    let mut all: Vec<String> = vec!["run".into(), "--report-dir".into()];
    all.push(dir.display().to_string());
    all.extend(args.iter().map(|s| s.to_string()));
    let out = conform(&all);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let failed: Vec<&serde_json::Value> = results["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail" || c["verdict"] == "error")
        .collect();
    let lines = replay_lines(&summary);
    assert_eq!(
        lines.len(),
        failed.len(),
        "{name}: one replay line per failure"
    );
    for (case, line) in failed.iter().zip(&lines) {
        let id = case["id"].as_str().unwrap();
        assert!(
            line.starts_with(&format!("nvmf-conform replay {id} ")),
            "{name}: {line}"
        );
        assert!(
            junit.contains(&format!("replay: {line}")),
            "{name}: junit lacks {line}"
        );
        let words = shell_words::split(line).unwrap();
        let replayed = conform(&words[1..]);
        let text = String::from_utf8_lossy(&replayed.stdout);
        let verdict = case["verdict"].as_str().unwrap().to_uppercase();
        let message = case["message"].as_str().unwrap();
        assert_eq!(
            replayed.status.code(),
            Some(1),
            "{name}: `{line}` did not fail: {text}{}",
            String::from_utf8_lossy(&replayed.stderr)
        );
        assert!(
            text.contains(&format!("{verdict}: {message}")),
            "{name}: `{line}` gave another verdict or message than the run's \
             ({verdict}: {message}):\n{text}"
        );
    }
    if let Some(first) = lines.first() {
        assert!(
            stdout.contains(&format!("replay the first failure: {first}\n")),
            "{name}: {stdout}"
        );
    }
    failed.len()
}

#[test]
fn every_quirks_failures_replay_exactly() {
    // Each quirk under the two profiles of the kill matrix: some show only under one.
    for q in Quirk::ALL {
        let n: usize = ["full", "minimal"]
            .iter()
            .map(|p| {
                let name = format!("{}-{p}", q.name());
                every_failure_replays(&name, &["--quirk", q.name(), "--profile", p])
            })
            .sum();
        assert!(
            n > 0,
            "{}: nothing failed, so nothing was replayed",
            q.name()
        );
    }
}

#[test]
fn failures_replay_under_another_profile_and_with_two_quirks() {
    let n = every_failure_replays(
        "minimal",
        &[
            "--profile",
            "minimal",
            "--quirk",
            "lba-size-unchecked",
            "--quirk",
            "allow-any-host",
            "--case-timeout",
            "300",
        ],
    );
    assert!(n > 2);
}

#[test]
fn failures_replay_through_a_plugin() {
    let plugin = nvmf_reference_plugin::library_path()
        .expect("libnvmf_reference_plugin.so is built for the tests");
    let target = format!("plugin:{}", plugin.display());
    let n = every_failure_replays(
        "plugin",
        &[
            "--target",
            &target,
            "--quirk",
            "eexist-per-ctrl",
            "--filter",
            "mapping",
        ],
    );
    assert!(n > 0);
}

#[test]
fn a_merge_prints_the_whole_replay_line() {
    let shards: Vec<_> = (1..=2).map(|i| tmp(&format!("shard{i}"))).collect();
    for (i, d) in shards.iter().enumerate() {
        let shard = format!("{}/2", i + 1);
        run_filter(
            "mapping",
            &["--quirk", "unmap-missing-ok", "--shard", &shard],
            d,
        );
    }
    let out_dir = tmp("merged");
    let mut args: Vec<String> = vec![
        "report".into(),
        "merge".into(),
        "--out".into(),
        out_dir.display().to_string(),
    ];
    args.extend(shards.iter().map(|d| d.display().to_string()));
    let out = conform(&args);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("--target reference:full --quirk unmap-missing-ok\n"),
        "{stdout}"
    );
    let summary = std::fs::read_to_string(Path::new(&out_dir).join("summary.md")).unwrap();
    assert!(replay_lines(&summary)
        .iter()
        .all(|l| l.ends_with("--seed 0 --target reference:full --quirk unmap-missing-ok")));
}
