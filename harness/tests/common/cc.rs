//! Compiling C against `include/nvmf_offload.h` with the system's compiler (`$CC`, else
//! `cc`), for the tests that check the header and load plugins written in C. Shared with
//! other crates' tests through `#[path]`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The flags that make a C file a plugin (a shared library).
pub const SHARED: [&str; 2] = ["-shared", "-fPIC"];

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The directory `name` under this test target's temporary directory, created if need be.
pub fn tmp_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `cc FLAGS… -I include -o OUT SRC LIBS…` and asserts that it succeeds, with the
/// compiler's messages as the panic's.
pub fn compile(flags: &[&str], src: &Path, out: &Path, libs: &[&str]) {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&cc)
        .args(flags)
        .arg("-I")
        .arg(repo_root().join("include"))
        .arg("-o")
        .arg(out)
        .arg(src)
        .args(libs)
        .output()
        .unwrap_or_else(|e| panic!("running {cc}: {e} (a C compiler is needed for this test)"));
    assert!(
        output.status.success(),
        "{cc} failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}
