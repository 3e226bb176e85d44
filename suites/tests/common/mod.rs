//! What the tests of the `nvmf-conform` command share: running it, fresh report
//! directories, and the check of its exit code.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `nvmf-conform` with `args`.
pub fn conform<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nvmf-conform"))
        .args(args)
        .output()
        .expect("nvmf-conform runs")
}

/// A path under the temporary directory, for the test `name` of the test file `suite`,
/// with nothing there yet.
pub fn tmp(suite: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "nvmf-conform-{suite}-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// `nvmf-conform run --filter FILTER EXTRA… --report-dir DIR`.
pub fn run_filter(filter: &str, extra: &[&str], dir: impl AsRef<Path>) -> Output {
    let mut args = vec![
        OsStr::new("run"),
        OsStr::new("--filter"),
        OsStr::new(filter),
    ];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([OsStr::new("--report-dir"), dir.as_ref().as_os_str()]);
    conform(&args)
}

/// Asserts that `out` exited with `code` (its stderr is the message); returns its stderr.
pub fn assert_exit(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{err}");
    err
}
