//! `nvmf-conform`: runs the conformance catalog and writes JUnit, Markdown and JSON reports.

use std::path::{Path, PathBuf};
use std::process::ExitCode as ProcessExit;
use std::time::Duration;

use clap::{Parser, Subcommand};
use harness::runner::{ExitCode, Verdict};
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
        /// Select cases by exact id, area, or id prefix ending at a dot; repeatable.
        #[arg(long)]
        filter: Vec<String>,
        /// Directory for junit.xml, summary.md and results.json.
        #[arg(long, default_value = "reports")]
        report_dir: PathBuf,
        /// Longest one case may take, in seconds (virtual time on sim).
        #[arg(long, default_value_t = 600)]
        case_timeout: u64,
    },
    /// List the catalog (or the cases selected by --filter): id, area, description.
    List {
        /// Select cases as for `run`.
        #[arg(long)]
        filter: Vec<String>,
    },
    /// Run one case again with the seed a run reported for it, printing its trace.
    Replay {
        /// The case id.
        case: String,
        /// The run's base seed (as printed in the report's metadata).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
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
        } => cmd_run(&fabric, seed, &filter, &report_dir, case_timeout),
        Command::List { filter } => cmd_list(&filter),
        Command::Replay { case, seed } => cmd_replay(&case, seed),
    };
    ProcessExit::from(code.code() as u8)
}

fn cmd_run(fabric: &str, seed: u64, filter: &[String], dir: &Path, timeout: u64) -> ExitCode {
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
    let opts = Options {
        seed,
        case_bound: Duration::from_secs(timeout),
    };
    let result = run::run(&entries, &opts, |rec| match &rec.verdict {
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
        if writeln!(out, "{:50} {:20} {}", e.id, e.area, e.description).is_err() {
            break;
        }
    }
    ExitCode::Passed
}

fn cmd_replay(id: &str, seed: u64) -> ExitCode {
    let Some(entry) = catalog::all().into_iter().find(|e| e.id == id) else {
        eprintln!("nvmf-conform: no case `{id}` (see `nvmf-conform list`)");
        return ExitCode::Usage;
    };
    let case_seed = case_seed(seed, id);
    let rec = run::run_one(&entry, case_seed, Duration::from_secs(600));
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
    match rec.verdict {
        Verdict::Pass => ExitCode::Passed,
        Verdict::Skip(_) => ExitCode::Untestable,
        _ => ExitCode::Failed,
    }
}
