//! Process isolation: work runs in a forked child that streams its results back through a
//! pipe, so that a crash (a signal) or a hang (no result within the bound, in real time)
//! of the device under test becomes a [`ChildEnd`] the runner reports, never the end of
//! the run.
//!
//! `fork` and `_exit` themselves are in `crate::ffi::process`, with the crate's other
//! unsafe code.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe, ForkResult, Pid};

use crate::ffi::process;

/// How the child ended, when it did not end well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildEnd {
    /// Every item was delivered and the child exited 0.
    Finished,
    /// The child was killed by a signal (a crash: SIGSEGV, SIGABRT, ...).
    Signal(String),
    /// The child exited with a non-zero status.
    Exit(i32),
    /// No item arrived within the bound: the child was killed.
    Hung(Duration),
    /// The child could not be started or read.
    Os(String),
}

impl std::fmt::Display for ChildEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildEnd::Finished => write!(f, "finished"),
            ChildEnd::Signal(s) => write!(f, "the process died with signal {s}"),
            ChildEnd::Exit(c) => write!(f, "the process exited with status {c}"),
            ChildEnd::Hung(d) => write!(
                f,
                "no result within {:.1} s of real time: the process was killed",
                d.as_secs_f64()
            ),
            ChildEnd::Os(e) => write!(f, "cannot isolate: {e}"),
        }
    }
}

/// What a child sends: one line per item (the caller serialises; lines must not contain
/// `\n`).
pub struct Sender {
    out: File,
}

impl Sender {
    /// Sends one item now (flushed, so the parent has it even if the child dies next).
    pub fn send(&mut self, line: &str) {
        // A parent that went away leaves nobody to tell: the child just ends.
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.write_all(b"\n");
        let _ = self.out.flush();
    }
}

/// Runs `work` in a forked child. Each item the child sends reaches `on_item` as it
/// arrives; the child is killed when `bound` (real time) passes without an item or the
/// end. Returns how the child ended.
///
/// The child must not rely on threads of the parent (it has only the calling one): call
/// this before starting a multi-threaded runtime, and build runtimes inside `work`.
pub fn run_in_child(
    bound: Duration,
    work: impl FnOnce(&mut Sender),
    mut on_item: impl FnMut(String),
) -> ChildEnd {
    let (read, write) = match pipe() {
        Ok(p) => p,
        Err(e) => return ChildEnd::Os(format!("pipe: {e}")),
    };
    match process::fork() {
        Err(e) => ChildEnd::Os(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            drop(read);
            let mut tx = Sender {
                out: File::from(write),
            };
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut tx)));
            drop(tx);
            process::exit_now(if ok.is_ok() { 0 } else { 101 })
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write);
            let end = read_items(read, bound, &mut on_item);
            reap(child, end)
        }
    }
}

/// Reads lines until EOF or until `bound` passes without one.
fn read_items(
    read: OwnedFd,
    bound: Duration,
    on_item: &mut impl FnMut(String),
) -> Option<Duration> {
    let file = File::from(read);
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut last = Instant::now();
    loop {
        // Whole lines already buffered need no wait.
        if reader.buffer().contains(&b'\n') {
            line.clear();
            if reader.read_line(&mut line).is_ok() {
                on_item(line.trim_end_matches('\n').to_string());
                last = Instant::now();
                continue;
            }
        }
        let left = bound.saturating_sub(last.elapsed());
        if left.is_zero() {
            return Some(bound);
        }
        let ms = left.as_millis().min(u128::from(u16::MAX)) as u16;
        let ready = {
            let mut fds = [PollFd::new(reader.get_ref().as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) => n > 0,
                Err(nix::errno::Errno::EINTR) => false,
                Err(_) => return None,
            }
        };
        if !ready {
            continue;
        }
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line.ends_with('\n') => {
                on_item(line.trim_end_matches('\n').to_string());
                last = Instant::now();
            }
            // A partial line at EOF: the child died mid-write; the item is lost.
            Ok(_) => return None,
        }
    }
}

/// Waits for the child (killing it first when it hung) and says how it ended.
fn reap(child: Pid, hung: Option<Duration>) -> ChildEnd {
    if hung.is_some() {
        let _ = kill(child, Signal::SIGKILL);
    }
    let status = loop {
        match waitpid(child, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    if let Some(d) = hung {
        return ChildEnd::Hung(d);
    }
    match status {
        Ok(WaitStatus::Exited(_, 0)) => ChildEnd::Finished,
        Ok(WaitStatus::Exited(_, c)) => ChildEnd::Exit(c),
        Ok(WaitStatus::Signaled(_, s, _)) => ChildEnd::Signal(s.as_str().to_string()),
        Ok(other) => ChildEnd::Os(format!("unexpected wait status {other:?}")),
        Err(e) => ChildEnd::Os(format!("waitpid: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(bound: Duration, work: impl FnOnce(&mut Sender)) -> (Vec<String>, ChildEnd) {
        let mut items = Vec::new();
        let end = run_in_child(bound, work, |s| items.push(s));
        (items, end)
    }

    #[test]
    fn items_arrive_in_order_and_the_child_finishes() {
        let (items, end) = collect(Duration::from_secs(10), |tx| {
            for i in 0..100 {
                tx.send(&format!("item {i}"));
            }
        });
        assert_eq!(end, ChildEnd::Finished);
        assert_eq!(items.len(), 100);
        assert_eq!(items[99], "item 99");
    }

    #[test]
    fn a_crash_is_a_signal_and_earlier_items_are_kept() {
        let (items, end) = collect(Duration::from_secs(10), |tx| {
            tx.send("before");
            std::process::abort();
        });
        assert_eq!(items, vec!["before".to_string()]);
        assert_eq!(end, ChildEnd::Signal("SIGABRT".into()));
    }

    #[test]
    fn a_hang_is_killed_at_the_bound() {
        let t = Instant::now();
        let (items, end) = collect(Duration::from_millis(300), |tx| {
            tx.send("first");
            std::thread::sleep(Duration::from_secs(3600));
        });
        assert_eq!(items.len(), 1);
        assert_eq!(end, ChildEnd::Hung(Duration::from_millis(300)));
        assert!(t.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_panic_is_an_exit_status() {
        let (_, end) = collect(Duration::from_secs(10), |_| panic!("boom"));
        assert_eq!(end, ChildEnd::Exit(101));
    }
}
