//! The `nvmf-conform` command as scripts and CI use it: exit codes, reports, determinism.

use std::path::{Path, PathBuf};

mod common;

use common::{assert_exit, conform, run_filter};

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli", name)
}

#[test]
fn run_writes_all_three_reports_and_exits_0() {
    let dir = tmp("run");
    let out = run_filter("fabric.qp", &[], &dir);
    assert_exit(&out, 0);
    for f in ["junit.xml", "summary.md", "results.json"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let n = junit.matches("<testcase ").count();
    assert!(n > 5, "only {n} cases in junit.xml");
    assert!(
        !junit.contains("classname=\"fabric.mr\""),
        "the filter was ignored"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{n} cases: {n} passed")),
        "{stdout}"
    );
}

#[test]
fn same_seed_gives_byte_identical_results() {
    let (a, b) = (tmp("det-a"), tmp("det-b"));
    for d in [&a, &b] {
        let out = conform(&[
            "run",
            "--seed",
            "99",
            "--filter",
            "fabric.rdma",
            "--report-dir",
            d.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
    }
    let read = |d: &Path| std::fs::read(d.join("results.json")).unwrap();
    assert_eq!(read(&a), read(&b));
}

#[test]
fn a_real_backend_is_refused_without_consent_or_on_the_sim() {
    let dir = tmp("vfio");
    const DEVICE: &str = "vfio:0000:01:00.0";
    let refusals: [(&str, &[&str], &[&str]); 6] = [
        (
            "no consent: refused before anything opens the device",
            &["--backend", DEVICE],
            &["--allow-destructive 0000:01:00.0"],
        ),
        (
            "consent for another device is no consent",
            &["--backend", DEVICE, "--allow-destructive", "0000:02:00.0"],
            &["to consent"],
        ),
        (
            "a bad address names its field",
            &["--backend", "vfio:0000:01:20.0"],
            &["--backend vfio:0000:01:20.0", "device"],
        ),
        (
            "an unknown kind",
            &["--backend", "spdk"],
            &["expected emulated or vfio:PCI"],
        ),
        (
            "the simulated fabric's memory is not the process's: DMA cannot reach it",
            &["--backend", DEVICE, "--allow-destructive", "0000:01:00.0"],
            &["needs --fabric verbs"],
        ),
        (
            "not for a plugin in this process (a remote target that lends it is fine)",
            &[
                "--backend",
                DEVICE,
                "--allow-destructive",
                "0000:01:00.0",
                "--target",
                "plugin:/nowhere/libvendor.so",
            ],
            &["or those of a remote target that lends it (--connect), not a plugin's"],
        ),
    ];
    for (why, extra, says) in refusals {
        let err = assert_exit(&run_filter("datapath", extra, &dir), 2);
        for s in says {
            assert!(err.contains(s), "{why}: {err}");
        }
    }
    assert!(
        !dir.join("junit.xml").exists(),
        "a refused run wrote reports"
    );
}

#[test]
fn usage_errors_exit_2_with_a_reason() {
    let out = run_filter("no-such-case", &[], tmp("none"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("selects no case"));

    // Without the verbs feature: not built (2). With it, on a machine without RDMA (this
    // one): nothing can be tested (125), saying why.
    let out = conform(&["run", "--fabric", "verbs", "--filter", "caps"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "verbs") {
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(
            err.contains("no RDMA device") || err.contains("no such RDMA device"),
            "{err}"
        );
    } else {
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("not built"), "{err}");
    }

    let out = conform(&["run", "--fabric", "sim", "--device", "rxe0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--device rxe0 needs --fabric verbs"));

    let out = conform(&["run", "--fabric", "ib"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown fabric"));

    let out = conform(&["run", "--seed", "not-a-number"]);
    assert_eq!(out.status.code(), Some(2));

    let out = conform(&["replay", "no.such.case"]);
    assert_eq!(out.status.code(), Some(2));

    // A bound of 0 s would make every case "hang": refused before anything runs.
    for cmd in ["run", "replay"] {
        let mut args = vec![cmd];
        if cmd == "replay" {
            args.push("caps.consistent");
        }
        args.extend(["--case-timeout", "0"]);
        let out = conform(&args);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--case-timeout"),
            "{cmd}"
        );
    }

    // `list` refuses a filter that selects nothing, as `run` does.
    let out = conform(&["list", "--filter", "no-such-case"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("selects no case"));

    // A profile file that is not there is named as such.
    let out = conform(&["run", "--profile", "/no/such/profile.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/profile.toml: no such file"), "{err}");
}

#[test]
fn messages_are_for_people() {
    // -h starts with what the tool is for.
    let out = conform(&["-h"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("Conformance and fault-injection suite for the NVMe-oF target offload"),
        "{text}"
    );
    // One case is "1 case"; a failure message carries no Rust debug text.
    let dir = tmp("people");
    let out = run_filter(
        "mapping.eexist.other-ctrl-same-srq",
        &["--quirk", "eexist-per-ctrl"],
        &dir,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 case: 0 passed, 1 failed, 0 errors, 0 skipped"),
        "{stdout}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("**1 case: 0 passed, 1 failed, 0 errors, 0 skipped.**"));
    let results = std::fs::read_to_string(dir.join("results.json")).unwrap();
    assert!(
        results.contains("expected EEXIST, got success (the call returned 0)"),
        "{results}"
    );
    assert!(!results.contains("(())"), "{results}");
    // A passing replay says so in words.
    let out = conform(&["replay", "caps.consistent"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.trim_end().ends_with("PASS: every check held"),
        "{stdout}"
    );
    // A skip reason says what the device lacks and why the case needs it.
    let out = run_filter("unsupported.op-not-offloaded", &[], &dir);
    assert_eq!(out.status.code(), Some(125));
    let results = std::fs::read_to_string(dir.join("results.json")).unwrap();
    assert!(
        results.contains("never refuses one as unsupported"),
        "{results}"
    );
}

#[test]
fn connect_needs_a_real_fabric_and_a_channel_that_answers() {
    // the simulated fabric does not leave this process
    for cmd in [
        &["run", "--filter", "connect"][..],
        &["replay", "connect.admin-twice"],
    ] {
        let mut args = cmd.to_vec();
        args.extend(["--connect", "127.0.0.1:9", "--insecure"]);
        let out = conform(&args);
        let err = assert_exit(&out, 2);
        assert!(
            err.contains("--connect 127.0.0.1:9 needs --fabric verbs"),
            "{err}"
        );
        // every start of an insecure runner says so
        assert!(err.contains("WARNING: control channel INSECURE"), "{err}");
    }
    // neither a lab secret nor --insecure; a secret file that does not load, named
    let secret = tmp("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
    let open = secret.display().to_string();
    let refusals: [(&[&str], &str); 4] = [
        (&[], "needs --control-secret FILE"),
        (
            &["--control-secret", "/nowhere/lab.secret"],
            "/nowhere/lab.secret",
        ),
        (&["--control-secret", &open], "chmod 600"),
        (
            &["--control-secret", &open, "--insecure"],
            "cannot be used with",
        ),
    ];
    for (extra, says) in refusals {
        let mut args = vec!["run", "--fabric", "verbs", "--connect", "127.0.0.1:9"];
        args.extend(extra);
        let err = assert_exit(&conform(&args), 2);
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    let err = assert_exit(&conform(&["run", "--insecure"]), 2);
    assert!(err.contains("--connect"), "{err}");
    // a plugin is served on the other host, not named here
    let out = conform(&[
        "run",
        "--target",
        "plugin:/nowhere.so",
        "--connect",
        "127.0.0.1:9",
        "--insecure",
    ]);
    let err = assert_exit(&out, 2);
    assert!(
        err.contains("--connect drives the device the remote target serves")
            && err.contains("--target plugin:PATH"),
        "{err}"
    );
    // not an address
    let out = conform(&["run", "--connect", "somewhere"]);
    assert_eq!(out.status.code(), Some(2));
    // on verbs: no RDMA device here (125) or not built (2), before any channel is tried
    let out = conform(&[
        "run",
        "--fabric",
        "verbs",
        "--connect",
        "127.0.0.1:9",
        "--insecure",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    let want = if cfg!(feature = "verbs") { 125 } else { 2 };
    assert_eq!(out.status.code(), Some(want), "{err}");
}

#[test]
fn unwritable_report_dir_is_a_usage_error() {
    let file = tmp("file");
    std::fs::write(&file, b"not a directory").unwrap();
    // This case skips, and a run prints every skip on stderr as it happens.
    let out = run_filter("unsupported.op-not-offloaded", &[], file.join("reports"));
    let err = assert_exit(&out, 2);
    assert!(err.contains("cannot write"), "{err}");
    // Refused before the first case: no progress line, no summary of a run.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("cases:"));
    assert!(!err.contains("SKIP"), "{err}");
}

#[test]
fn list_and_replay() {
    let out = conform(&["list", "--filter", "fabric.device"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(first.starts_with("fabric.device."));
    let out = conform(&["replay", &first, "--seed", "3"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("PASS"));
}

#[test]
fn help_explains_exit_codes() {
    let out = conform(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("125") && text.contains("run") && text.contains("replay"));
}

#[test]
fn bisect_exit_codes() {
    // `git bisect run` reads: 0 good, 1 bad, 125 skip this commit; 2 is our usage error.
    let dir = tmp("bisect");
    let d = dir.to_str().unwrap();
    let case = "mapping.eexist.other-ctrl-same-srq";
    let good = run_filter(case, &[], d);
    assert_exit(&good, 0);
    let bad = run_filter(case, &["--quirk", "eexist-per-ctrl"], d);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("replay the first failure"));
    // Every selected case skipped (the device lacks what they need): nothing was tested.
    let skipped = run_filter(
        "tag:needs-non-offloaded-ops",
        &["--target", "reference:minimal"],
        d,
    );
    assert_eq!(skipped.status.code(), Some(125));
    // A plugin that is not there cannot be tested either.
    let missing = conform(&[
        "run",
        "--target",
        "plugin:/no/such/libvendor.so",
        "--report-dir",
        d,
    ]);
    assert_eq!(missing.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
    let usage = conform(&["run", "--target", "reference:full", "--profile", "tight"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn shards_split_a_run_and_merge_back() {
    let filter = "fabric.qp";
    let whole = tmp("shard-whole");
    let out = run_filter(filter, &[], &whole);
    assert_eq!(out.status.code(), Some(0));
    let mut dirs = Vec::new();
    for i in 1..=3 {
        let d = tmp(&format!("shard-{i}"));
        let shard = format!("{i}/3");
        let out = run_filter(filter, &["--shard", &shard], &d);
        assert_exit(&out, 0);
        dirs.push(d);
    }
    let merged = tmp("shard-merged");
    let mut args = vec!["report", "merge", "--out", merged.to_str().unwrap()];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    let out = conform(&args);
    assert_exit(&out, 0);
    let ids = |d: &Path| {
        let j: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("results.json")).unwrap()).unwrap();
        let mut v: Vec<String> = j["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&merged), ids(&whole));
    assert!(merged.join("junit.xml").is_file() && merged.join("summary.md").is_file());
    // A shard given twice is refused, naming the problem.
    let mut twice = vec!["report", "merge", "--out", merged.to_str().unwrap()];
    twice.extend([dirs[0].to_str().unwrap(), dirs[0].to_str().unwrap()]);
    let out = conform(&twice);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn isolated_run_reports_like_an_in_process_one() {
    let (a, b) = (tmp("iso-a"), tmp("iso-b"));
    let filter = "mapping.eexist";
    let out = run_filter(filter, &[], &a);
    assert_eq!(out.status.code(), Some(0));
    let out = run_filter(filter, &["--isolate", "case"], &b);
    assert_exit(&out, 0);
    let read = |d: &Path| std::fs::read(d.join("results.json")).unwrap();
    assert_eq!(
        read(&a),
        read(&b),
        "isolation changes nothing in the results"
    );
}

/// The reference plugin, built for the tests (a dev-dependency).
fn reference_plugin() -> String {
    nvmf_reference_plugin::library_path()
        .expect("libnvmf_reference_plugin.so is built for the tests")
        .display()
        .to_string()
}

/// Runs `nvmf-conform run ARGS --target plugin:<reference plugin>` into a fresh report
/// directory named `name`; returns the exit code, results.json and junit.xml.
fn run_plugin(name: &str, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let dir = tmp(name);
    let target = format!("plugin:{}", reference_plugin());
    let mut all = vec![
        "run",
        "--target",
        &target,
        "--report-dir",
        dir.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = conform(&all);
    let results = std::fs::read(dir.join("results.json"))
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&results).unwrap(),
        junit,
    )
}

#[test]
fn a_crashing_plugin_is_contained_and_reported() {
    // Mapping cases call map_nsid, where this plugin aborts; caps cases do not.
    let (code, r, junit) = run_plugin(
        "crash",
        &[
            "--plugin-config",
            "profile=full;crash=map_nsid",
            "--filter",
            "caps.consistent",
            "--filter",
            "mapping.eexist.same-ctrl",
            "--filter",
            "mapping.lba-size.512",
        ],
    );
    assert_eq!(code, Some(1));
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3, "the report is complete");
    assert_eq!(cases[0]["verdict"], "pass");
    for c in &cases[1..] {
        assert_eq!(c["verdict"], "error", "{c}");
        assert!(c["message"].as_str().unwrap().contains("SIGABRT"), "{c}");
    }
    assert!(junit.contains("<error") && junit.contains("SIGABRT"));
}

#[test]
fn the_hang_quirk_through_the_plugin_is_an_error_not_a_stuck_run() {
    let (code, r, _) = run_plugin(
        "hang",
        &[
            "--quirk",
            "hang-one-command",
            "--case-timeout",
            "20",
            "--filter",
            "datapath.write-read.lba-4096",
        ],
    );
    assert_eq!(code, Some(1));
    let c = &r["cases"][0];
    assert!(c["verdict"] == "error" || c["verdict"] == "fail", "{c}");
}

#[test]
fn a_plugin_config_the_plugin_refuses_is_a_usage_error() {
    // The plugin answers -EINVAL to a config it does not understand: the user's to fix (2),
    // not an untestable device (125).
    let target = format!("plugin:{}", reference_plugin());
    let out = conform(&[
        "run",
        "--target",
        &target,
        "--plugin-config",
        "no-such-key=1",
        "--report-dir",
        tmp("noopen").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--plugin-config") && err.contains("no-such-key"),
        "{err}"
    );
}

/// `inject` refuses before it touches anything: a bad address, an unknown action, a hold
/// out of range, no consent naming the device (exit 2), a device this machine does not have
/// (exit 125); each says why.
#[test]
fn inject_refusals_name_what_is_wrong() {
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["inject", "--device", "01:00", "--action", "reset"],
            2,
            "--device 01:00",
        ),
        (
            &["inject", "--device", "0000:01:00.0", "--action", "flr"],
            2,
            "bus-master-off",
        ),
        (
            &[
                "inject",
                "--device",
                "0000:01:00.0",
                "--action",
                "reset",
                "--hold",
                "700",
            ],
            2,
            "outside 0 to 600",
        ),
        (
            &["inject", "--device", "0000:01:00.0", "--action", "reset"],
            2,
            "--allow-destructive 0000:01:00.0",
        ),
        (
            &[
                "inject",
                "--device",
                "ffff:ff:1f.7",
                "--allow-destructive",
                "ffff:ff:1f.7",
                "--action",
                "bus-master-off",
            ],
            125,
            "no PCI device ffff:ff:1f.7",
        ),
    ];
    for (args, code, says) in cases {
        let out = conform(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: no report for a refusal");
    }
}

#[test]
fn soak_exits_0_clean_1_on_a_divergence_and_replays_it_by_the_printed_command() {
    let dir = tmp("soak");
    let d = dir.to_str().unwrap();
    let clean = conform(&["soak", "--episodes", "2", "--report-dir", d]);
    let err = assert_exit(&clean, 0);
    assert!(err.contains("2 episodes"), "{err}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("soak.seed-0"), "{junit}");
    assert!(dir.join("summary.md").is_file() && dir.join("results.json").is_file());

    let bad = conform(&[
        "soak",
        "--episodes",
        "10",
        "--quirk",
        "allow-any-host",
        "--report-dir",
        d,
    ]);
    let err = assert_exit(&bad, 1);
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    let replay = err
        .lines()
        .find_map(|l| l.strip_prefix("replay: nvmf-conform "))
        .unwrap_or_else(|| panic!("no replay line: {err}"));
    let words: Vec<&str> = replay.split(' ').collect();
    let mut args = words.clone();
    args.extend(["--report-dir", d]);
    let again = conform(&args);
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{again_err}");
    let divergence = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("DIVERGENCE"))
            .map(str::to_string)
    };
    assert_eq!(divergence(&again_err), divergence(&err));
}

#[test]
fn soak_refuses_bad_options_with_exit_2() {
    for (args, says) in [
        (&["soak", "--faults", "link-flap"][..], "link-flap"),
        (&["soak", "--only", "1,2"][..], "--episode"),
        (&["soak", "--duration", "0"][..], "whole seconds"),
        (&["soak", "--steps", "0"][..], "steps"),
        (&["soak", "--target", "reference:nope"][..], "nope"),
    ] {
        let out = conform(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
