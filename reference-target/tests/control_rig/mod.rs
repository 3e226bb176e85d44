//! What the control channel's tests share: a target process on loopback, lab secrets in
//! files of their own, and the checks of a refusal.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use harness::api::Profile;
use reference_target::remote::{RemoteError, RemoteTarget, Secret, Security};

pub const SUB: &str = "nqn.2026-11.io.nvmf-conform:sub0";
pub const BOUND: Duration = Duration::from_secs(20);

/// A one-namespace configuration listening on 127.0.10.1.
pub fn config() -> String {
    format!(
        "[[port]]\naddr = \"127.0.10.1:4420\"\nsubsystem = \"{SUB}\"\n\n\
         [[subsystem]]\nnqn = \"{SUB}\"\nallow_any_host = true\n\n\
         [[subsystem.namespace]]\nnsid = 1\nsize = \"1MiB\"\nlba_format = \"4096\"\n"
    )
}

pub fn full() -> Profile {
    Profile::builtin("full").unwrap()
}

/// A lab secret in a directory of its own, removed when dropped.
pub struct LabSecret {
    dir: PathBuf,
    pub path: PathBuf,
}

impl LabSecret {
    /// A fresh secret (`name` tells secrets of one test apart).
    pub fn new(name: &str) -> LabSecret {
        let dir = std::env::temp_dir().join(format!(
            "nvmf-control-{}-{name}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lab.secret");
        Secret::generate(&path).unwrap();
        LabSecret { dir, path }
    }

    /// The runner's side of it.
    pub fn security(&self) -> Security {
        Security::Secret(Arc::new(Secret::load(&self.path).unwrap()))
    }
}

impl Drop for LabSecret {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The target process; killed when dropped.
pub struct TargetProcess {
    child: Child,
    pub addr: SocketAddr,
    /// What it printed after its address (its certificate's fingerprint, over TLS).
    pub fingerprint: Option<String>,
}

impl TargetProcess {
    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for TargetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nvmf-reference-target --control 127.0.0.1:0 --fabric sim` with the lab secret, or
/// `--insecure` without one.
pub fn spawn_target(secret: Option<&LabSecret>) -> TargetProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nvmf-reference-target"));
    cmd.args([
        "--fabric",
        "sim",
        "--control",
        "127.0.0.1:0",
        "--duration",
        "300",
    ]);
    match secret {
        Some(s) => cmd.arg("--control-secret").arg(&s.path),
        None => cmd.arg("--insecure"),
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nvmf-reference-target starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first
        .split_whitespace()
        .find_map(|w| w.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let fingerprint = secret.map(|_| {
        let mut second = String::new();
        out.read_line(&mut second).unwrap();
        second
            .trim()
            .rsplit_once("SHA-256 ")
            .unwrap_or_else(|| panic!("no fingerprint in {second:?}"))
            .1
            .to_string()
    });
    TargetProcess {
        child,
        addr,
        fingerprint,
    }
}

/// Connects the runner's way, as `security` says.
pub async fn runner(p: &TargetProcess, security: &Security) -> Result<RemoteTarget, RemoteError> {
    RemoteTarget::connect(p.addr, security, BOUND).await
}

/// The runner `t` starts a target and stops it: the channel serves it.
pub async fn start_and_stop(t: &RemoteTarget) -> Result<(), String> {
    t.start(
        &config(),
        &full(),
        &reference_target::quirks::Quirks::none(),
    )
    .await
    .map_err(|e| format!("start: {e}"))?;
    t.stop().await.map(drop).map_err(|e| format!("stop: {e}"))
}

/// `r` is a refusal whose message holds `needle`.
pub fn refused(r: Result<impl std::fmt::Debug, RemoteError>, needle: &str) {
    match r {
        Err(RemoteError::Refused { message, .. }) => {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}")
        }
        other => panic!("expected a refusal naming {needle:?}, got {other:?}"),
    }
}
