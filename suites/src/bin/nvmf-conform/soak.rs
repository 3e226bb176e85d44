//! `nvmf-conform soak`: random workloads with a model oracle, against any device under test.

use std::time::{Duration, Instant};

use suites::soak::{self, FaultKind, SoakOptions};

use super::args::SoakArgs;
use super::*;

pub(crate) fn cmd_soak(a: &SoakArgs) -> ExitCode {
    let mut opts = match a
        .target
        .options(a.seed, scaled(DEFAULT_CASE_TIMEOUT, a.timeout_scale))
    {
        Ok(o) => o,
        Err(r) => return r.report(),
    };
    opts.fabric = match a.fabric.choice() {
        Ok(f) => f,
        Err(r) => return r.report(),
    };
    opts.wait_scale = a.timeout_scale;
    if let Err(r) = check_backend(&opts).and_then(|()| check_connect(&mut opts)) {
        return r.report();
    }
    if opts.backend.is_real() {
        return usage(
            "--backend vfio: soak injects faults through the emulated controllers only (use \
             `run --backend vfio:PCI` for a real controller)",
        );
    }
    if let Err(e) = harness::report::check_writable(&a.report_dir) {
        return usage(&format!("--report-dir {}: {e}", a.report_dir.display()));
    }
    let faults = a.faults.0.clone();
    let s = SoakOptions {
        duration: Duration::from_secs(a.duration),
        episodes: a.episodes,
        episode: a.episode,
        only: a.only.clone(),
        faults: faults.clone(),
        steps: a.steps as usize,
    };
    let device = device_args(a, &opts, &faults);
    let mut last = Instant::now();
    let r = soak::soak(&opts, &s, |p| {
        if last.elapsed() >= Duration::from_secs(1) {
            last = Instant::now();
            eprintln!("{}", p.line());
        }
    });
    eprintln!("{}", r.progress.line());
    let run = soak::to_run(&opts, &r, &device);
    if let Err(e) = harness::report::write_all(&run, &a.report_dir) {
        eprintln!(
            "nvmf-conform: writing reports to {}: {e}",
            a.report_dir.display()
        );
        return ExitCode::Failed;
    }
    match (&r.divergence, &r.untestable) {
        (Some(d), _) => {
            eprintln!(
                "DIVERGENCE in episode {} (shrunk to {} step(s)): {}",
                d.episode,
                d.steps.len(),
                d.message
            );
            for l in &d.shown {
                eprintln!("  {l}");
            }
            eprintln!("replay: {}", soak::replay_command(a.seed, d, &device));
            ExitCode::Failed
        }
        (None, Some(why)) => {
            eprintln!("nvmf-conform: nothing could be tested: {why}");
            ExitCode::Untestable
        }
        (None, None) => ExitCode::Passed,
    }
}

/// The arguments after `--seed S --episode E --only ...` that replay this soak's device,
/// fabric, faults and episode length, quoted for a shell.
fn device_args(a: &SoakArgs, opts: &Options, faults: &[FaultKind]) -> String {
    let mut v = replay_args(&a.target, opts, DEFAULT_CASE_TIMEOUT, a.timeout_scale);
    v.drain(..2); // --seed S
    if let Some(i) = v.iter().position(|x| x == "--snapshots") {
        v.drain(i..i + 2);
    }
    let names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
    v.push("--faults".into());
    v.push(if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    });
    if a.steps != 100 {
        v.push("--steps".into());
        v.push(a.steps.to_string());
    }
    v.iter()
        .map(|x| {
            if x.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:,=".contains(c))
            {
                x.clone()
            } else {
                format!("'{}'", x.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
