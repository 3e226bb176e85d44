//! `nvmf-conform`: runs the conformance catalog and writes JUnit, Markdown and JSON reports.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use clap::{Parser, Subcommand};
use console::style;
use harness::api::Profile;
use harness::backend::vfio::PciAddress;
use harness::plugin::Plugin;
use harness::runner::{CaseRecord, ExitCode, RunResult, Verdict};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reference_target::quirks::{Quirk, Quirks};
use reference_target::remote::auth::INSECURE_WARNING;
use reference_target::remote::{Secret, Security};
use suites::catalog::{self, Shard};
use suites::fabric::FabricChoice;
use suites::isolate::Isolation;
use suites::options::{BackendChoice, Connect};
use suites::run::{self, Options, PluginTarget};
use suites::seed::case_seed;

mod args;
mod inject;
mod output;
mod soak;

use args::{Cli, Command, Refusal, ReportCommand, RunArgs, TargetArgs, DEFAULT_CASE_TIMEOUT};
use output::{detail, print_summary, progress_bar, verdict_styled};

fn main() -> ProcessExit {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => cmd_run(&args),
        Command::Soak(args) => soak::cmd_soak(&args),
        Command::List { filter, shard } => cmd_list(&filter, shard),
        Command::KillMatrix => {
            let m = suites::kill::compute();
            print!("{}", suites::kill::markdown(&m));
            let clean = m.clean_failures.iter().all(Vec::is_empty);
            if clean && m.rows.iter().all(|r| r.killed()) {
                ExitCode::Passed
            } else {
                ExitCode::Failed
            }
        }
        Command::Requirements => {
            print!("{}", suites::framework::requirements::markdown());
            ExitCode::Passed
        }
        Command::Replay {
            case,
            seed,
            pcap,
            target,
            fabric,
            timeout_scale,
            case_timeout,
        } => match target
            .options(seed, scaled(case_timeout, timeout_scale))
            .and_then(|o| Ok((o, fabric.choice()?)))
        {
            Ok((mut opts, fabric)) => {
                if pcap.is_some() && !fabric.is_sim() {
                    return ProcessExit::from(usage(CAPTURE_NEEDS_SIM).code() as u8);
                }
                opts.fabric = fabric;
                opts.wait_scale = timeout_scale;
                if let Err(r) = check_backend(&opts).and_then(|()| check_connect(&mut opts)) {
                    return ProcessExit::from(r.report().code() as u8);
                }
                cmd_replay(&case, &opts, pcap.as_deref())
            }
            Err(r) => r.report(),
        },
        Command::Report(ReportCommand::Merge { out, shards }) => cmd_merge(&out, &shards),
        Command::Inject {
            device,
            allow_destructive,
            action,
            hold,
        } => inject::cmd_inject(&device, &allow_destructive, action, hold),
    };
    ProcessExit::from(code.code() as u8)
}

/// A real backend controller's precondition: the verbs fabric, whose memory regions are
/// this process's memory, so that the controller can reach them by DMA.
fn check_backend(opts: &Options) -> Result<(), Refusal> {
    match opts.backend {
        BackendChoice::Vfio(pci) if opts.fabric.is_sim() => Err(Refusal::Usage(format!(
            "--backend vfio:{pci} needs --fabric verbs: the controller moves data by DMA into \
             memory regions, and the simulated fabric's are not this process's memory"
        ))),
        _ => Ok(()),
    }
}

/// Two-host mode's preconditions: a real fabric (the simulated one does not leave this
/// process) and a control channel that answers (else nothing can be tested: 125). A remote
/// target that serves a plugin's device gives `opts` that device's caps.
pub(crate) fn check_connect(opts: &mut Options) -> Result<(), Refusal> {
    let Some(connect) = &opts.connect else {
        return Ok(());
    };
    let addr = connect.addr;
    if opts.fabric.is_sim() {
        return Err(Refusal::Usage(format!(
            "--connect {addr} needs --fabric verbs: the simulated fabric does not leave this \
             process, so hosts here cannot reach a target on another host"
        )));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Refusal::Untestable(format!("cannot start a runtime: {e}")))?;
    let target = rt
        .block_on(run::connect_remote(connect, run::wait_factor(opts)))
        .map_err(|e| Refusal::Untestable(format!("--connect {addr}: {e}")))?;
    let info = target.info();
    match &info.fingerprint {
        Some(fp) => eprintln!(
            "nvmf-conform: control channel {addr}: TLS 1.3, the target ({} {} on {}) proved \
             the lab secret; its certificate SHA-256 {fp}",
            info.version, info.fabric, info.device
        ),
        None => eprintln!(
            "nvmf-conform: control channel {addr}: plain TCP (--insecure), target {} {} on {}",
            info.version, info.fabric, info.device
        ),
    }
    opts.backend
        .agrees_with(info.real.as_ref())
        .map_err(Refusal::Usage)?;
    if let Some(said) = run::adopt_remote(opts, info) {
        eprintln!("nvmf-conform: {said}");
    }
    Ok(())
}

/// Why `--pcap` and `--fabric verbs` do not go together.
const CAPTURE_NEEDS_SIM: &str = "--pcap records the simulated fabric's frames; on a real \
device capture the netdev instead (tcpdump -i <netdev> udp port 4791; rxe's traffic is \
plain RoCEv2)";

fn usage(msg: &str) -> ExitCode {
    eprintln!("nvmf-conform: {msg}");
    ExitCode::Usage
}

fn scaled(secs: u64, scale: f64) -> Duration {
    Duration::from_secs_f64((secs as f64 * scale).min(1e9))
}

fn cmd_run(a: &RunArgs) -> ExitCode {
    let mut opts = match a
        .target
        .options(a.seed, scaled(a.case_timeout, a.timeout_scale))
    {
        Ok(o) => o,
        Err(r) => return r.report(),
    };
    opts.fabric = match a.fabric.choice() {
        Ok(f) => f,
        Err(r) => return r.report(),
    };
    opts.replay = replay_args(&a.target, &opts, a.case_timeout, a.timeout_scale);
    if a.pcap.is_some() && !opts.fabric.is_sim() {
        return usage(CAPTURE_NEEDS_SIM);
    }
    if let Err(r) = check_backend(&opts).and_then(|()| check_connect(&mut opts)) {
        return r.report();
    }
    // A plugin may crash; on verbs a case's RDMA resources (its listening ports too) are
    // only sure to be freed when its process ends: both run each case in a child.
    opts.isolation = a
        .isolate
        .unwrap_or(if opts.plugin.is_some() || !opts.fabric.is_sim() {
            Isolation::Case
        } else {
            Isolation::None
        });
    opts.watchdog = scaled(a.watchdog, a.timeout_scale);
    opts.wait_scale = a.timeout_scale;
    opts.shard = a.shard;
    let mut entries = catalog::select(&a.filter);
    if entries.is_empty() {
        return usage(&format!(
            "--filter {}: selects no case (see `nvmf-conform list`)",
            a.filter.join(" --filter ")
        ));
    }
    if let Some(shard) = a.shard {
        entries = shard.select(entries);
        if entries.is_empty() {
            // Not an error: with many shards and a narrow filter a shard may get nothing.
            eprintln!("nvmf-conform: shard {shard} holds none of the selected cases");
        }
    }
    if a.pcap.is_some() && opts.isolation != Isolation::None {
        return usage("--pcap records cases run in this process: add --isolate none");
    }
    // Nothing is lost to a typo: the capture file must be writable before the run starts.
    let pcap_file = match &a.pcap {
        None => None,
        Some(f) => match std::fs::File::create(f) {
            Ok(out) => Some((f, out)),
            Err(e) => return usage(&format!("--pcap {}: {e}", f.display())),
        },
    };
    // Nothing is lost to a typo either: the reports must be writable before the run.
    if let Err(e) = harness::report::check_writable(&a.report_dir) {
        return usage(&format!("--report-dir {}: {e}", a.report_dir.display()));
    }
    // A plugin whose device does not open cannot be tested at all: say so once (125).
    if let Some(p) = &opts.plugin {
        match run::check_plugin(p) {
            Ok(_) => {}
            Err(e @ run::PluginCheckError::BadConfig { .. }) => {
                return usage(&format!("--plugin-config: {e}"))
            }
            Err(e) => {
                eprintln!("nvmf-conform: --target plugin: {e}");
                return ExitCode::Untestable;
            }
        }
    }
    let bar = progress_bar(entries.len() as u64);
    let progress = |rec: &CaseRecord| {
        bar.inc(1);
        bar.set_message(rec.id.clone());
        if !matches!(rec.verdict, Verdict::Pass) {
            let line = format!(
                "{} {}: {}",
                verdict_styled(&rec.verdict, true),
                rec.id,
                detail(&rec.verdict).lines().next().unwrap_or("")
            );
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
    };
    let result = match pcap_file {
        None => run::run(&entries, &opts, progress),
        Some((file, out)) => {
            let (result, frames) = run::run_captured(&entries, &opts, progress);
            if let Err(e) = write_pcap_to(file, out, &frames) {
                bar.finish_and_clear();
                // The reports still get written: the run itself is not lost.
                eprintln!("nvmf-conform: {e}");
            }
            result
        }
    };
    bar.finish_and_clear();
    if let Err(e) = harness::report::write_all(&result, &a.report_dir) {
        return usage(&e.to_string());
    }
    print_summary(&result, &a.report_dir);
    result.exit_code()
}

/// The options of `nvmf-conform replay CASE` that reproduce a case of the run `opts`
/// describes: the seed, then every option that changes behaviour, in a fixed order, paths
/// made absolute so the line works from any directory. Defaults are left out.
fn replay_args(
    target: &TargetArgs,
    opts: &Options,
    case_timeout: u64,
    timeout_scale: f64,
) -> Vec<String> {
    let absolute = |p: &str| {
        std::fs::canonicalize(p)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| p.to_string())
    };
    let mut a = vec!["--seed".to_string(), opts.seed.to_string()];
    let mut push = |k: &str, v: String| {
        a.push(k.to_string());
        a.push(v);
    };
    match &opts.plugin {
        Some(p) => {
            push(
                "--target",
                format!(
                    "plugin:{}",
                    absolute(&p.plugin.path().display().to_string())
                ),
            );
            if let Some(profile) = &target.profile {
                push("--profile", profile_arg(profile, &absolute));
            }
            push("--plugin-config", p.config.clone());
        }
        None => {
            let named = match target.target.split_once(':') {
                Some((_, p)) => p.to_string(),
                None => target.profile.clone().unwrap_or_else(|| "full".into()),
            };
            push(
                "--target",
                format!("reference:{}", profile_arg(&named, &absolute)),
            );
        }
    }
    for q in opts.quirks.iter() {
        push("--quirk", q.name().to_string());
    }
    let mut insecure = false;
    if let Some(c) = &opts.connect {
        push("--connect", c.addr.to_string());
        match &c.security {
            Security::Secret(s) => {
                push(
                    "--control-secret",
                    absolute(&s.path().display().to_string()),
                );
            }
            Security::Insecure => insecure = true,
        }
    }
    if let BackendChoice::Vfio(pci) = opts.backend {
        push("--backend", format!("vfio:{pci}"));
        push("--allow-destructive", pci.to_string());
    }
    if let FabricChoice::Verbs { device } = &opts.fabric {
        push("--fabric", "verbs".into());
        push("--device", device.clone());
    }
    if timeout_scale != 1.0 {
        push("--timeout-scale", timeout_scale.to_string());
    }
    if case_timeout != DEFAULT_CASE_TIMEOUT {
        push("--case-timeout", case_timeout.to_string());
    }
    if let Some(dir) = &target.snapshots {
        push("--snapshots", absolute(&dir.display().to_string()));
    }
    if insecure {
        a.push("--insecure".into());
    }
    a
}

/// A profile as a replay line names it: a built-in's name, or a file's absolute path.
fn profile_arg(named: &str, absolute: &dyn Fn(&str) -> String) -> String {
    if Profile::builtin(named).is_ok() {
        named.to_string()
    } else {
        absolute(named)
    }
}

/// A live progress line on a terminal (stderr); hidden when stderr is not one.
fn cmd_list(filter: &[String], shard: Option<Shard>) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut entries = catalog::select(filter);
    if entries.is_empty() {
        return usage(&format!(
            "--filter {}: selects no case (filters: an exact id, an area, an id prefix \
             ending at a dot, req:ID or tag:NAME)",
            filter.join(" --filter ")
        ));
    }
    if let Some(s) = shard {
        entries = s.select(entries);
    }
    for e in entries {
        // A closed pipe (`| head`) ends the listing quietly.
        let req = e.requirement.unwrap_or("-");
        let line = format!(
            "{:45} {:24} {} [{}]",
            e.id,
            req,
            e.description,
            e.tags.join(",")
        );
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    ExitCode::Passed
}

/// Writes `frames` to `file` as a pcap; the error names the file.
fn write_pcap(file: &Path, frames: &[(Duration, Vec<u8>)]) -> Result<(), String> {
    let out = std::fs::File::create(file).map_err(|e| format!("--pcap {}: {e}", file.display()))?;
    write_pcap_to(file, out, frames)
}

/// Writes `frames` into `out`, the opened `file`; the error names the file.
fn write_pcap_to(
    file: &Path,
    out: std::fs::File,
    frames: &[(Duration, Vec<u8>)],
) -> Result<(), String> {
    harness::capture::pcap::write(std::io::BufWriter::new(out), frames)
        .map(|_| ())
        .map_err(|e| format!("--pcap {}: {e}", file.display()))
}

fn cmd_replay(id: &str, opts: &Options, pcap: Option<&Path>) -> ExitCode {
    let seed = opts.seed;
    let Some(entry) = catalog::all().into_iter().find(|e| e.id == id) else {
        return usage(&format!("no case `{id}` (see `nvmf-conform list`)"));
    };
    let case_seed = case_seed(seed, id);
    let capture = pcap.map(|_| harness::capture::Capture::new());
    let rec = run::run_one_captured(&entry, case_seed, opts, capture.as_ref());
    if let (Some(file), Some(c)) = (pcap, &capture) {
        let frames: Vec<(Duration, Vec<u8>)> =
            c.frames().into_iter().map(|f| (f.at, f.data)).collect();
        if let Err(e) = write_pcap(file, &frames) {
            return usage(&e);
        }
    }
    println!(
        "# {} (run seed {seed}, case seed {case_seed:#018x})",
        rec.id
    );
    for line in &rec.trace {
        println!("{line}");
    }
    let detail = match &rec.verdict {
        Verdict::Pass => "every check held",
        v => detail(v),
    };
    println!(
        "{}: {detail}",
        verdict_styled(&rec.verdict, false).trim_end()
    );
    if let Some(note) = &rec.note {
        println!("note: {note}");
    }
    match rec.verdict {
        Verdict::Pass => ExitCode::Passed,
        Verdict::Skip(_) => ExitCode::Untestable,
        _ => ExitCode::Failed,
    }
}

fn cmd_merge(out: &Path, shards: &[PathBuf]) -> ExitCode {
    let mut merged = match harness::report::merge_dirs(shards) {
        Ok(m) => m,
        Err(e) => return usage(&format!("report merge: {e}")),
    };
    // Shards are partitions by id hash: put the cases back in catalog order.
    let order: Vec<String> = catalog::all().into_iter().map(|e| e.id).collect();
    merged.order_by(&order);
    if let Err(e) = harness::report::write_all(&merged, out) {
        return usage(&e.to_string());
    }
    print_summary(&merged, out);
    merged.exit_code()
}
