//! `nvmf-conform`: runs the conformance catalog and writes JUnit, Markdown and JSON reports.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use clap::{Parser, Subcommand};
use console::style;
use harness::api::Profile;
use harness::plugin::Plugin;
use harness::runner::{CaseRecord, ExitCode, RunResult, Verdict};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reference_target::quirks::{Quirk, Quirks};
use suites::catalog::{self, Shard};
use suites::fabric::FabricChoice;
use suites::isolate::Isolation;
use suites::run::{self, Options, PluginTarget};
use suites::seed::case_seed;

/// Conformance and fault-injection suite for the NVMe-oF target offload verbs API.
///
/// `nvmf-conform run` with no arguments runs the whole catalog against the embedded
/// reference target on the simulated fabric and writes reports/junit.xml, summary.md and
/// results.json.
///
/// Exit codes (for CI and `git bisect run`): 0 every case that ran passed, 1 a case failed
/// or errored, 2 usage error, 125 nothing could be tested (every case skipped, or the
/// target could not be loaded): `git bisect run` skips such a commit.
#[derive(Parser, Debug)]
#[command(name = "nvmf-conform", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the catalog (or the cases selected by --filter) and write reports.
    Run(RunArgs),
    /// List the catalog (or the cases selected by --filter): id, requirement, description, tags.
    List {
        /// Select cases as for `run`.
        #[arg(long)]
        filter: Vec<String>,
        /// Only this shard's cases (`i/n`), as for `run`.
        #[arg(long)]
        shard: Option<Shard>,
    },
    /// Print the requirement table (the content of docs/requirements.md).
    Requirements,
    /// Run the offload catalog against the reference target once per quirk and print the
    /// kill matrix (the content of docs/kill-matrix.md); exit 1 if a quirk goes uncaught.
    KillMatrix,
    /// Run one case again with the seed a run reported for it, printing its trace.
    Replay {
        /// The case id.
        case: String,
        /// The run's base seed (as printed in the report's metadata).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write the case's fabric traffic to FILE as a pcap of RoCEv2 frames.
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        fabric: FabricArgs,
        /// Multiply the case's time bound, and on a real fabric the bounds of its waits for
        /// events, completions and connections, by this factor (slow devices, emulated
        /// machines).
        #[arg(long, default_value_t = 1.0, value_parser = positive_factor)]
        timeout_scale: f64,
        /// Longest the case may take, in seconds (virtual time on sim), before
        /// --timeout-scale.
        #[arg(long, default_value_t = DEFAULT_CASE_TIMEOUT, value_parser = case_timeout)]
        case_timeout: u64,
    },
    /// Work with reports already written.
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Subcommand, Debug)]
enum ReportCommand {
    /// Merge the results of the shards of one run (each a report directory holding the
    /// results.json of `run --shard i/n`) into one junit.xml, summary.md and results.json.
    Merge {
        /// Directory to write the merged reports into.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// The shards' report directories.
        #[arg(required = true, value_name = "SHARD_DIR")]
        shards: Vec<PathBuf>,
    },
}

#[cfg(feature = "verbs")]
const FABRIC_HELP: &str = "Fabric to run on: `sim` (embedded, deterministic: virtual time, \
fault injection, captures) or `verbs` (a real RDMA device, hardware or soft-RoCE, named by \
--device; real time, so give emulated machines a --timeout-scale).";
#[cfg(not(feature = "verbs"))]
const FABRIC_HELP: &str = "Fabric to run on: `sim` (embedded, deterministic). `verbs` is not \
built in this build (build with `--features verbs`).";

#[derive(clap::Args, Debug)]
struct FabricArgs {
    #[arg(long, default_value = "sim", help = FABRIC_HELP)]
    fabric: String,
    /// The RDMA device of --fabric verbs (default: the first one, e.g. rxe0). The target
    /// and the hosts both open it; the target listens on its IPv4 address.
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
}

impl FabricArgs {
    /// The fabric these arguments name, checked: a usage error (unknown, not built, a
    /// device without verbs) or an untestable machine (no RDMA device, or not that one).
    fn choice(&self) -> Result<FabricChoice, Refusal> {
        let choice = match (self.fabric.as_str(), &self.device) {
            ("sim", None) => return Ok(FabricChoice::Sim),
            ("sim", Some(d)) => {
                return Err(Refusal::Usage(format!(
                    "--device {d} needs --fabric verbs (the simulated fabric has its own devices)"
                )))
            }
            ("verbs", _) if !cfg!(feature = "verbs") => {
                return Err(Refusal::Usage(
                    "--fabric verbs: the verbs fabric is not built in this build (build with \
                     `--features verbs`, or use --fabric sim)"
                        .into(),
                ))
            }
            ("verbs", Some(d)) => FabricChoice::Verbs { device: d.clone() },
            ("verbs", None) => FabricChoice::Verbs {
                device: suites::fabric::first_verbs_device().map_err(Refusal::Untestable)?,
            },
            (other, _) => {
                return Err(Refusal::Usage(format!(
                    "--fabric {other}: unknown fabric (sim, verbs)"
                )))
            }
        };
        choice.check().map_err(Refusal::Untestable)?;
        Ok(choice)
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    fabric: FabricArgs,
    /// Base seed; each case derives its own seed from it and its id.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Select cases by exact id, area, id prefix ending at a dot, `req:ID` or `tag:NAME`;
    /// repeatable (a case runs if it matches any).
    #[arg(long)]
    filter: Vec<String>,
    /// Run only shard i of n (`i/n`, 1-based). A case's shard depends on its id alone, so
    /// n machines running 1/n .. n/n split the run; `report merge` joins their reports.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Directory for junit.xml, summary.md and results.json.
    #[arg(long, default_value = "reports")]
    report_dir: PathBuf,
    /// Longest one case may take, in seconds (virtual time on sim), before --timeout-scale.
    #[arg(long, default_value_t = DEFAULT_CASE_TIMEOUT, value_parser = case_timeout)]
    case_timeout: u64,
    /// Multiply every time bound (the case bound, the watchdog and, on a real fabric, the
    /// bounds of the cases' waits for events, completions and connections) by this
    /// factor, for slow devices or emulated machines. Durations a case checks (a command
    /// timeout, a KATO) are never scaled.
    #[arg(long, default_value_t = 1.0, value_parser = positive_factor)]
    timeout_scale: f64,
    /// Run cases in forked children: `case` (one child per case), `suite` (one per area)
    /// or `none`. A crashing or hanging child becomes an error verdict naming the signal
    /// or the bound, and the run goes on. Default: `case` for a plugin target and on
    /// `--fabric verbs` (the kernel frees a case's RDMA resources, listening ports
    /// included, when its child exits), `none` for the reference target on `sim` (whose
    /// hangs the virtual clock already bounds).
    #[arg(long, value_enum)]
    isolate: Option<Isolation>,
    /// With --isolate: real seconds a child may go without finishing a case before it is
    /// killed (before --timeout-scale).
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    watchdog: u64,
    /// Write the run's fabric traffic to FILE as a pcap of RoCEv2 frames (Wireshark's
    /// nvme-rdma dissector decodes it); cases follow one another, 1 s of virtual time apart.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
}

/// `--case-timeout`'s default, in seconds.
const DEFAULT_CASE_TIMEOUT: u64 = 600;

/// Parses a case time bound: whole seconds, at least 1 (a bound of 0 would make every
/// case an error before it starts).
fn case_timeout(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if (1..=86_400).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}`: expected whole seconds from 1 to 86400 (a case needs time to run)"
        )),
    }
}

/// Parses a positive, finite scale factor.
fn positive_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= 1000.0 => Ok(f),
        _ => Err(format!("`{s}`: expected a number above 0 and at most 1000")),
    }
}

/// How the device under test is chosen and set up, and what its traces are compared with.
#[derive(clap::Args, Debug)]
struct TargetArgs {
    /// Device under test: `reference` (the embedded reference target), `reference:PROFILE`
    /// (the same with a capability profile), or `plugin:PATH` (a vendor library
    /// implementing include/nvmf_offload.h).
    #[arg(long, default_value = "reference")]
    target: String,
    /// Capability profile of the reference target: full, minimal, tight, or a TOML file.
    /// Same as --target reference:PROFILE.
    #[arg(long)]
    profile: Option<String>,
    /// Make the reference target break one rule (repeatable); see
    /// `nvmf-reference-target --list-quirks`. With a plugin target, the control plane's
    /// quirks apply to the control plane and all are passed to the reference plugin.
    #[arg(long = "quirk")]
    quirks: Vec<String>,
    /// Configuration string a plugin target is opened with. Default, for the reference
    /// plugin: `profile=PROFILE;quirks=Q1,Q2` from --profile and --quirk.
    #[arg(long, value_name = "STRING")]
    plugin_config: Option<String>,
    /// Two-host mode: the reference target runs on another host under
    /// `nvmf-reference-target --control ADDR:PORT`; this process runs the hosts on
    /// --fabric verbs and reaches the target over RDMA, and its controls (start, faults,
    /// counters, trace) over TCP. Only control-plane cases (areas connect, recovery, security) run;
    /// the others skip, saying so. See docs/two-host.md.
    #[arg(long, value_name = "ADDR:PORT")]
    connect: Option<std::net::SocketAddr>,
    /// Directory of the reviewed trace snapshots (`<case id>.snap`) that passing offload
    /// cases are compared with when the device has the full profile's caps. Default: the
    /// suites/snapshots directory of the source tree this binary was built from.
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
}

/// Why a run cannot start: a usage error (exit 2) or a target that cannot be tested (125).
enum Refusal {
    Usage(String),
    Untestable(String),
}

impl Refusal {
    fn report(self) -> ExitCode {
        match self {
            Refusal::Usage(m) => usage(&m),
            Refusal::Untestable(m) => {
                eprintln!("nvmf-conform: {m}");
                ExitCode::Untestable
            }
        }
    }
}

impl TargetArgs {
    /// The run options these arguments ask for.
    fn options(&self, seed: u64, case_bound: Duration) -> Result<Options, Refusal> {
        let profile_name = match self.target.split_once(':') {
            None if self.target == "reference" => self.profile.clone().unwrap_or("full".into()),
            Some(("reference", p)) => match &self.profile {
                Some(q) if q != p => {
                    return Err(Refusal::Usage(format!(
                        "--target {} and --profile {q} name different profiles",
                        self.target
                    )))
                }
                _ => p.to_string(),
            },
            Some(("plugin", _)) if self.connect.is_some() => {
                return Err(Refusal::Usage(
                    "--connect drives a remote reference target; a --target plugin runs in                      this process"
                        .into(),
                ))
            }
            Some(("plugin", path)) => {
                let plugin = Plugin::load(path)
                    .map_err(|e| Refusal::Untestable(format!("--target plugin:{path}: {e}")))?;
                let profile = self.profile.clone().unwrap_or("full".into());
                let config = self.plugin_config.clone().unwrap_or_else(|| {
                    let mut c = format!("profile={profile}");
                    if !self.quirks.is_empty() {
                        c.push_str(&format!(";quirks={}", self.quirks.join(",")));
                    }
                    c
                });
                return self
                    .reference_options(seed, case_bound, &profile)
                    .map(|o| Options {
                        plugin: Some(PluginTarget { plugin, config }),
                        ..o
                    });
            }
            _ => {
                return Err(Refusal::Usage(format!(
                    "--target {}: expected reference, reference:PROFILE or plugin:PATH",
                    self.target
                )))
            }
        };
        self.reference_options(seed, case_bound, &profile_name)
    }

    /// The options for the reference target with `profile_name` (and the quirks and
    /// snapshots asked for).
    fn reference_options(
        &self,
        seed: u64,
        case_bound: Duration,
        profile_name: &str,
    ) -> Result<Options, Refusal> {
        let looks_like_a_file = profile_name.contains('/') || profile_name.ends_with(".toml");
        let profile = match Profile::builtin(profile_name) {
            Ok(p) => p,
            Err(_) if Path::new(profile_name).exists() => Profile::load(Path::new(profile_name))
                .map_err(|e| Refusal::Usage(format!("--profile: {e}")))?,
            Err(_) if looks_like_a_file => {
                return Err(Refusal::Usage(format!(
                    "--profile {profile_name}: no such file (a profile is a built-in name, \
                     full, minimal or tight, or a TOML file)"
                )))
            }
            Err(e) => return Err(Refusal::Usage(format!("--profile: {e}"))),
        };
        let mut quirks = Quirks::none();
        for q in &self.quirks {
            quirks.insert(
                q.parse::<Quirk>()
                    .map_err(|e| Refusal::Usage(format!("--quirk: {e}")))?,
            );
        }
        // A typo must not silently compare nothing: a directory given must exist.
        if let Some(dir) = self.snapshots.as_ref().filter(|d| !d.is_dir()) {
            return Err(Refusal::Usage(format!(
                "--snapshots {}: not a directory",
                dir.display()
            )));
        }
        Ok(Options {
            seed,
            case_bound,
            profile,
            quirks,
            connect: self.connect,
            snapshots: Some(
                self.snapshots
                    .clone()
                    .unwrap_or_else(suites::snapshot::default_dir),
            ),
            ..Options::default()
        })
    }
}

fn main() -> ProcessExit {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => cmd_run(&args),
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
            print!("{}", suites::offload::requirements::markdown());
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
                if let Err(r) = check_connect(&opts) {
                    return ProcessExit::from(r.report().code() as u8);
                }
                cmd_replay(&case, &opts, pcap.as_deref())
            }
            Err(r) => r.report(),
        },
        Command::Report(ReportCommand::Merge { out, shards }) => cmd_merge(&out, &shards),
    };
    ProcessExit::from(code.code() as u8)
}

/// Two-host mode's preconditions: a real fabric (the simulated one does not leave this
/// process) and a control channel that answers (else nothing can be tested: 125).
fn check_connect(opts: &Options) -> Result<(), Refusal> {
    let Some(addr) = opts.connect else {
        return Ok(());
    };
    if opts.fabric.is_sim() {
        return Err(Refusal::Usage(format!(
            "--connect {addr} needs --fabric verbs: the simulated fabric does not leave this              process, so hosts here cannot reach a target on another host"
        )));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Refusal::Untestable(format!("cannot start a runtime: {e}")))?;
    rt.block_on(reference_target::remote::RemoteTarget::connect(
        addr,
        run::REMOTE_BOUND,
    ))
    .map(drop)
    .map_err(|e| Refusal::Untestable(format!("--connect {addr}: {e}")))
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
    if let Err(r) = check_connect(&opts) {
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
    if let Some(addr) = opts.connect {
        push("--connect", addr.to_string());
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
fn progress_bar(len: u64) -> ProgressBar {
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
fn verdict_styled(v: &Verdict, stderr: bool) -> String {
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

fn print_summary(result: &RunResult, dir: &Path) {
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

fn detail(v: &Verdict) -> &str {
    match v {
        Verdict::Pass => "",
        Verdict::Fail(m) | Verdict::Error(m) | Verdict::Skip(m) => m,
    }
}

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
