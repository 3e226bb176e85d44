//! `nvmf-conform`: runs the conformance catalog and writes JUnit, Markdown and JSON reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use clap::{Parser, Subcommand};
use harness::api::Profile;
use harness::runner::{ExitCode, Verdict};
use reference_target::quirks::{Quirk, Quirks};
use suites::catalog;
use suites::run::{self, Options};
use suites::seed::case_seed;

/// Conformance and fault-injection suite for the NVMe-oF target offload verbs API.
///
/// Exit codes: 0 every case passed, 1 a case failed, 2 usage error,
/// 125 nothing could be tested (for `git bisect run`).
#[derive(Parser, Debug)]
#[command(name = "nvmf-conform", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the catalog (or the cases selected by --filter) and write reports.
    Run {
        /// Fabric to run on: `sim` (embedded, deterministic). `verbs` is not built yet.
        #[arg(long, default_value = "sim")]
        fabric: String,
        /// Base seed; each case derives its own seed from it and its id.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Select cases by exact id, area, id prefix ending at a dot, `req:ID` or `tag:NAME`;
        /// repeatable (a case runs if it matches any).
        #[arg(long)]
        filter: Vec<String>,
        /// Directory for junit.xml, summary.md and results.json.
        #[arg(long, default_value = "reports")]
        report_dir: PathBuf,
        /// Longest one case may take, in seconds (virtual time on sim).
        #[arg(long, default_value_t = 600)]
        case_timeout: u64,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// List the catalog (or the cases selected by --filter): id, requirement, description, tags.
    List {
        /// Select cases as for `run`.
        #[arg(long)]
        filter: Vec<String>,
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
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// How the reference target under test is set up, and what its traces are compared with.
#[derive(clap::Args, Debug)]
struct TargetArgs {
    /// Capability profile of the reference target: full, minimal, tight, or a TOML file.
    #[arg(long, default_value = "full")]
    profile: String,
    /// Make the reference target break one rule (repeatable); see
    /// `nvmf-reference-target --list-quirks`.
    #[arg(long = "quirk")]
    quirks: Vec<String>,
    /// Directory of the reviewed trace snapshots (`<case id>.snap`) that passing offload
    /// cases are compared with when the device has the full profile's caps. Default: the
    /// suites/snapshots directory of the source tree this binary was built from.
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
}

impl TargetArgs {
    /// The run options these arguments ask for, or a usage error.
    fn options(&self, seed: u64, case_timeout: u64) -> Result<Options, String> {
        let profile = match Profile::builtin(&self.profile) {
            Ok(p) => p,
            Err(_) if std::path::Path::new(&self.profile).exists() => {
                Profile::load(std::path::Path::new(&self.profile)).map_err(|e| e.to_string())?
            }
            Err(e) => return Err(format!("--profile: {e}")),
        };
        let mut quirks = Quirks::none();
        for q in &self.quirks {
            quirks.insert(q.parse::<Quirk>().map_err(|e| format!("--quirk: {e}"))?);
        }
        // A typo must not silently compare nothing: a directory given must exist.
        if let Some(dir) = self.snapshots.as_ref().filter(|d| !d.is_dir()) {
            return Err(format!("--snapshots {}: not a directory", dir.display()));
        }
        Ok(Options {
            seed,
            case_bound: Duration::from_secs(case_timeout),
            profile,
            quirks,
            snapshots: Some(
                self.snapshots
                    .clone()
                    .unwrap_or_else(suites::snapshot::default_dir),
            ),
        })
    }
}

fn main() -> ProcessExit {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run {
            fabric,
            seed,
            filter,
            report_dir,
            case_timeout,
            target,
        } => match target.options(seed, case_timeout) {
            Ok(opts) => cmd_run(&fabric, &filter, &report_dir, &opts),
            Err(e) => usage(&e),
        },
        Command::List { filter } => cmd_list(&filter),
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
        Command::Replay { case, seed, target } => match target.options(seed, 600) {
            Ok(opts) => cmd_replay(&case, &opts),
            Err(e) => usage(&e),
        },
    };
    ProcessExit::from(code.code() as u8)
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("nvmf-conform: {msg}");
    ExitCode::Usage
}

fn cmd_run(fabric: &str, filter: &[String], dir: &Path, opts: &Options) -> ExitCode {
    let seed = opts.seed;
    if fabric != "sim" {
        eprintln!(
            "nvmf-conform: --fabric {fabric}: not built; only `sim` is available in this build"
        );
        return ExitCode::Usage;
    }
    let entries = catalog::select(filter);
    if entries.is_empty() {
        eprintln!("nvmf-conform: --filter {filter:?} selects no case (see `nvmf-conform list`)");
        return ExitCode::Usage;
    }
    let result = run::run(&entries, opts, |rec| match &rec.verdict {
        Verdict::Pass => {}
        v => eprintln!("{:5} {}: {}", v.name().to_uppercase(), rec.id, detail(v)),
    });
    if let Err(e) = harness::report::write_all(&result, dir) {
        eprintln!("nvmf-conform: {e}");
        return ExitCode::Usage;
    }
    println!(
        "{} cases: {} passed, {} failed, {} errors, {} skipped (seed {seed}); reports in {}",
        result.cases.len(),
        result.count("pass"),
        result.count("fail"),
        result.count("error"),
        result.count("skip"),
        dir.display()
    );
    let noted = result.cases.iter().filter(|c| c.note.is_some()).count();
    if noted > 0 {
        println!(
            "{noted} cases carry a note (e.g. a trace not compared with its snapshot): see {}",
            dir.join("summary.md").display()
        );
    }
    result.exit_code()
}

fn detail(v: &Verdict) -> &str {
    match v {
        Verdict::Pass => "",
        Verdict::Fail(m) | Verdict::Error(m) | Verdict::Skip(m) => m,
    }
}

fn cmd_list(filter: &[String]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for e in catalog::select(filter) {
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

fn cmd_replay(id: &str, opts: &Options) -> ExitCode {
    let seed = opts.seed;
    let Some(entry) = catalog::all().into_iter().find(|e| e.id == id) else {
        eprintln!("nvmf-conform: no case `{id}` (see `nvmf-conform list`)");
        return ExitCode::Usage;
    };
    let case_seed = case_seed(seed, id);
    let rec = run::run_one(&entry, case_seed, opts);
    println!(
        "# {} (run seed {seed}, case seed {case_seed:#018x})",
        rec.id
    );
    for line in &rec.trace {
        println!("{line}");
    }
    println!(
        "{}: {}",
        rec.verdict.name().to_uppercase(),
        detail(&rec.verdict)
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
