//! `nvmf-conform inject`: a lab's fault on a real SSD (`harness::backend::lab`), held for a
//! while and undone, with a JSON report on stdout.

use std::time::Duration;

use harness::backend::lab::{self, Action, Injector, LabError, LabRoots};
use harness::backend::vfio::PciAddress;
use harness::runner::ExitCode;

/// Longest `--hold` accepted, in seconds.
pub(crate) const MAX_HOLD: f64 = 600.0;

/// Parses `--hold`: seconds, 0 to [`MAX_HOLD`].
pub(crate) fn hold_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.0..=MAX_HOLD).contains(&v) {
        return Err(format!("{v} is outside 0 to {MAX_HOLD} seconds"));
    }
    Ok(v)
}

fn refusal(e: &LabError) -> ExitCode {
    eprintln!("nvmf-conform inject: {e}");
    match e {
        LabError::NotAllowed(_) | LabError::NotVfio { .. } | LabError::InUse { .. } => {
            ExitCode::Usage
        }
        _ => ExitCode::Untestable,
    }
}

/// Runs the action: exit 0 when it was done and undone, 1 when it could not be undone
/// (the report says why), 2 when refused, 125 when this machine cannot do it.
pub(crate) fn cmd_inject(device: &str, allowed: &[String], action: Action, hold: f64) -> ExitCode {
    let parse = |flag: &str, s: &str| {
        s.parse::<PciAddress>().map_err(|e| {
            eprintln!("nvmf-conform inject: {flag} {s}: {e}");
            ExitCode::Usage
        })
    };
    let address = match parse("--device", device) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let mut consents = Vec::new();
    for a in allowed {
        match parse("--allow-destructive", a) {
            Ok(p) => consents.push(p),
            Err(c) => return c,
        }
    }
    let inj = match Injector::new(LabRoots::default(), address, &consents) {
        Ok(i) => i,
        Err(e) => return refusal(&e),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nvmf-conform inject: runtime: {e}");
            return ExitCode::Untestable;
        }
    };
    // The hold ends early on SIGINT or SIGTERM: the fault is undone all the same.
    let held = || {
        rt.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(hold)) => {}
                _ = tokio::signal::ctrl_c() => eprintln!("nvmf-conform inject: interrupted: undoing"),
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {
                    eprintln!("nvmf-conform inject: terminated: undoing");
                }
            }
        })
    };
    match lab::inject(&inj, action, held) {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{e}"))
            );
            if let Some(e) = &report.undo_error {
                eprintln!("nvmf-conform inject: {action} on {address} was NOT undone: {e}");
                ExitCode::Failed
            } else {
                ExitCode::Passed
            }
        }
        Err(e) => refusal(&e),
    }
}
