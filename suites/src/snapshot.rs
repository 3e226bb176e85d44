//! Trace snapshots: each offload case's trace, as a conforming device (the reference target
//! with each built-in profile) produces it, is committed as a reviewed insta snapshot,
//! `suites/snapshots/<case id>.snap` for `full` and `suites/snapshots/<profile>/` for the
//! others ([`dir_for`]). `cargo test -p suites --test snapshots` keeps the files current (and
//! `cargo insta review` works on them); the runner compares every passing offload case's
//! trace with the file of the profile whose caps the device has ([`reviewed_profile`]).
//!
//! **When a trace is compared.** Only after the case passed its assertions, and only with
//! the snapshots of the device's own caps: a device with other caps legitimately makes
//! other calls (other sizes, other SRQ attributes). A device whose caps are no built-in
//! profile's is compared with the reference target run with its caps instead
//! ([`crate::oracle`]). A case with no snapshot file is not compared (noted, not a
//! failure); under `cargo test` with `CI` set, insta fails on it.
//!
//! **What is compared.** The [`canonical`] form of the trace, which is also what the files
//! hold: every line with trailing blanks removed, less four kinds of line whose
//! presence and place are timing, not behaviour — they vary with the seed on `sim` (its
//! jitter) and from run to run on hardware:
//!
//! - a SEND's successful completion: it only says the peer's RC transport acknowledged
//!   the SEND, and whether that ACK is polled before or after the peer's answer is a race;
//! - the passive side's bare `cm connN established`: it comes with the RTU, which may
//!   arrive after the first capsule (real RDMA CM then raises communication-established),
//!   and a device whose CM events are polled (a plugin) sees it later still; likewise the
//!   target's `cm connN disconnected`, whose place among the host's requests is a race;
//! - (not left out, but moved) the backend controller's lines — doorbells, fetched SQEs,
//!   posted CQEs — come after all the others, in their own order: their order among
//!   themselves is behaviour, but where they fall among the host's and the target's lines
//!   while several commands are in flight is timing (a device whose doorbells reach the
//!   backend on a clock tick, such as a plugin, interleaves them differently);
//! - a flushed work request (`WR_FLUSH_ERR`): once a QP is in error, which of its requests
//!   had completed and which are flushed, and how many of them the host polls before it
//!   stops, is a race too (the error itself shows in the other lines: the failing
//!   completion, the async event, the case's checks).
//!
//! And a run of consecutive CM or async events of one actor, each about a different
//! object (two connections torn down at once, say), is sorted: nothing orders events of
//! independent objects that happen at the same time. Everything else keeps its line and its
//! place.
//!
//! **When the device keeps its own time** ([`Timing::Independent`]: a real fabric,
//! `--fabric verbs`, or a plugin, whose doorbells reach the backend on its own 1 ms ticks)
//! commands are truly in flight together: how many the host has sent before the device
//! rings the backend's doorbell, and so the doorbell values and the backend command
//! identifiers it picks, are timing (measured on soft-RoCE: a full queue of flushes reaches
//! the backend as one doorbell of 27 entries, where the in-process engine on `sim` delivers
//! them one by one). There the backend's lines are compared
//! as a sorted list of the commands it fetched and the completions it posted, without
//! doorbells and backend CIDs ([`relax_backend`]), on both sides; every host, target and
//! device line is compared as on `sim`. A case whose trace depends on timing there in a
//! way no relaxing can hide (which of a destroyed QP's commands reached the backend; the
//! order two connections expiring together are torn down in) declares it with its reason
//! (`Case::racy`); then only its host and device lines are compared ([`Timing::Racy`]), and
//! its report says so.
//!
//! **In two-host mode** the target host names its objects itself and answers in real time:
//! object names are renumbered in order of first appearance, and each side's lines are
//! compared in their own order, the backend's relaxed ([`Timing::RemoteDevice`],
//! [`remote_device_view`]); a control-plane case, whose target and device run and are
//! traced on the target host, on its host's lines, then the target host's in their own
//! order ([`Timing::Remote`], [`remote_control_view`]).
//!
//! **Where the files are.** At run time, not embedded: by default the `suites/snapshots`
//! directory of the source tree the binary was built from ([`default_dir`]), so snapshots
//! accepted with `cargo insta review` apply without a rebuild; `nvmf-conform run
//! --snapshots DIR` points elsewhere (an installed binary away from its source tree).

mod remote;
pub use remote::{host_view, remote_control_view, remote_device_view};
use remote::{remote_control_views, renumbered};

use std::fmt::Write;
use std::path::{Path, PathBuf};

use harness::api::{NvmfCaps, Profile};

/// The profile whose traces the snapshot directory itself holds.
pub const PROFILE: &str = "full";

/// The built-in profiles with reviewed snapshots: `full` in the directory itself, each
/// other in a subdirectory named after it ([`dir_for`]).
pub const PROFILES: [&str; 3] = ["full", "minimal", "tight"];

/// Where the reviewed snapshots of `profile` are under the snapshot directory `base`.
pub fn dir_for(base: &Path, profile: &str) -> PathBuf {
    if profile == PROFILE {
        base.to_path_buf()
    } else {
        base.join(profile)
    }
}

/// The built-in profile whose caps are exactly `caps`, if one is: its reviewed snapshots
/// are what a conforming device with these caps does.
pub fn reviewed_profile(caps: &NvmfCaps) -> Option<&'static str> {
    PROFILES
        .into_iter()
        .find(|p| Profile::builtin(p).is_ok_and(|x| x.caps == *caps))
}

/// Most diff lines a failure message carries; the rest is summarised.
pub const MAX_DIFF_LINES: usize = 400;

/// `suites/snapshots` in the source tree this crate was built from.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots")
}

/// The snapshot file of a case: `DIR/<case id>.snap`.
pub fn path(dir: &Path, case_id: &str) -> PathBuf {
    dir.join(format!("{case_id}.snap"))
}

/// A snapshot path as messages show it: relative to the source tree's root when inside it
/// (`suites/snapshots/<id>.snap`), else as given.
pub fn shown(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    root.and_then(|r| path.strip_prefix(r).ok())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Whether a trace line's presence or place is timing, not behaviour: a SEND's successful
/// completion, any work request flushed (`WR_FLUSH_ERR`), the passive side's bare
/// `cm connN established` (it arrives with the RTU, which may come after the first
/// capsule: real RDMA CM says so with a communication-established event, and a device
/// whose CM events are polled sees it later), or the target's `cm connN disconnected`
/// (when the DREQ or the local teardown reaches the target's event queue, relative to
/// the host's next requests, is timing too).
fn timing_only(line: &str) -> bool {
    let t: Vec<&str> = line.split_whitespace().collect();
    match t.as_slice() {
        [_, "cm", _, "established"] | ["target", "cm", _, "disconnected"] => return true,
        _ => {}
    }
    let mut w = line.split_whitespace();
    let (Some(_actor), Some("wc"), Some(_qp), Some(op), Some(status)) =
        (w.next(), w.next(), w.next(), w.next(), w.next())
    else {
        return false;
    };
    (op == "Send" && status == "SUCCESS") || status == "WR_FLUSH_ERR"
}

/// For a CM or async-event line, (actor, kind, the object it is about): `conn2` in
/// `target cm conn2 disconnected`, `qp3` in `host event QP_ACCESS_ERR qp3`.
fn event_of(line: &str) -> Option<(&str, &str, &str)> {
    let mut w = line.split_whitespace();
    let (actor, kind) = (w.next()?, w.next()?);
    let object = match kind {
        "cm" => w.next()?,
        "event" => w.nth(1)?,
        _ => return None,
    };
    Some((actor, kind, object))
}

/// The canonical text of a trace (see the module docs): what snapshot files hold and what
/// is compared. One line per entry, each ending in a newline.
pub fn canonical<S: AsRef<str>>(trace: &[S]) -> String {
    let kept: Vec<&str> = trace
        .iter()
        .map(|l| l.as_ref().trim_end())
        .filter(|l| !timing_only(l))
        .collect();
    // The backend's lines, in their own order, after everything else (see the module docs).
    let is_backend = |l: &&str| l.starts_with("backend ");
    let lines: Vec<&str> = kept
        .iter()
        .copied()
        .filter(|l| !is_backend(l))
        .chain(kept.iter().copied().filter(is_backend))
        .collect();
    let mut s = String::new();
    let mut i = 0;
    while i < lines.len() {
        // A run of events of one actor and kind, each about another object: sorted.
        let mut run = vec![lines[i]];
        if let Some((actor, kind, first)) = event_of(lines[i]) {
            let mut objects = vec![first];
            for l in &lines[i + 1..] {
                match event_of(l) {
                    Some((a, k, o)) if a == actor && k == kind && !objects.contains(&o) => {
                        objects.push(o);
                        run.push(l);
                    }
                    _ => break,
                }
            }
            run.sort_unstable();
        }
        i += run.len();
        for l in run {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

/// Why a snapshot file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file exists but could not be read.
    #[error("cannot read snapshot {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an insta text snapshot.
    #[error("snapshot {path} is not an insta text snapshot: {why}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// The contents of an insta snapshot file (the text after its `---` metadata header), or
/// `None` when there is no such file.
pub fn read(path: &Path) -> Result<Option<String>, SnapshotError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let format = |why| SnapshotError::Format {
        path: path.display().to_string(),
        why,
    };
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(format("no `---` metadata header"));
    }
    if !lines.by_ref().any(|l| l.trim_end() == "---") {
        return Err(format("the metadata header is not closed by `---`"));
    }
    Ok(Some(lines.collect()))
}

/// A unified diff of `expected` against `actual`, line by line, with three lines of
/// context, under `--- expected_label` / `+++ actual_label` headers; at most
/// [`MAX_DIFF_LINES`] lines.
pub fn diff(expected: &str, actual: &str, expected_label: &str, actual_label: &str) -> String {
    let text = similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(expected_label, actual_label)
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for l in lines.iter().take(MAX_DIFF_LINES) {
        out.push_str(l);
        out.push('\n');
    }
    if lines.len() > MAX_DIFF_LINES {
        let _ = writeln!(
            out,
            "… {} more diff lines (`nvmf-conform replay` prints the whole trace)",
            lines.len() - MAX_DIFF_LINES
        );
    }
    out
}

/// What comparing a trace with its snapshot found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// The trace is the reviewed one.
    Matches,
    /// It differs: a failure message ending with the unified diff.
    Differs(String),
    /// There is no snapshot file at this path.
    Missing(PathBuf),
}

/// How the device's steps are timed against the host's, which decides what of a trace is
/// timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// The in-process engine on the simulated fabric: host, engine and backend step on one
    /// virtual clock; the canonical form is compared as it is.
    Lockstep,
    /// A real fabric, or a plugin on its own ticks: the backend's lines are relaxed
    /// ([`relax_backend`]).
    Independent,
    /// Two-host mode, a control-plane case: the target and its device run on the target
    /// host, which names its objects itself and traces them in its own order: the host's
    /// lines, then the target's and device's, then the relaxed backend's, renumbered
    /// ([`remote_control_view`]).
    Remote,
    /// Two-host mode, a case that drives the remote device through the channel: the
    /// host's, the target's, the device's and the relaxed backend's lines are compared,
    /// renumbered ([`remote_device_view`]).
    RemoteDevice,
    /// As [`Timing::Remote`], for a control-plane case that declares its trace racy
    /// (`Case::racy`): only its host's lines, renumbered ([`host_view`]).
    RemoteHost,
    /// As [`Timing::RemoteDevice`], for a case that declares its trace racy
    /// (`Case::racy`): only its host's and device's lines, renumbered.
    RemoteRacy,
    /// As [`Timing::Independent`], for a case that declares its trace racy there
    /// (`Case::racy`): only the host's and the device's lines are compared
    /// ([`host_and_device`]).
    Racy,
}

/// The `host` and `device` lines of `text`: what a racy case's trace is compared on when
/// the device keeps its own time.
pub fn host_and_device(text: &str) -> String {
    let mut out = String::new();
    for l in text
        .lines()
        .filter(|l| l.starts_with("host ") || l.starts_with("device "))
    {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The canonical text `text` with the backend's lines reduced to what does not depend on
/// how many commands were in flight together: doorbell lines dropped, `cid=N` removed from
/// fetched SQEs and posted CQEs, and those lines sorted (after all the others, as in the
/// canonical form).
pub fn relax_backend(text: &str) -> String {
    let mut others = String::new();
    let mut backend: Vec<String> = Vec::new();
    for l in text.lines() {
        if !l.starts_with("backend ") {
            others.push_str(l);
            others.push('\n');
        } else if !l.contains(" doorbell ") {
            let kept: Vec<&str> = l.split(' ').filter(|w| !w.starts_with("cid=")).collect();
            backend.push(kept.join(" "));
        }
    }
    backend.sort_unstable();
    for l in backend {
        others.push_str(&l);
        others.push('\n');
    }
    others
}

/// Compares a case's `trace` with `DIR/<case id>.snap`; `actual_label` names the device in
/// the diff's `+++` header; `timing` says which clock the trace ran on.
pub fn compare<S: AsRef<str>>(
    dir: &Path,
    case_id: &str,
    trace: &[S],
    actual_label: &str,
    timing: Timing,
) -> Result<Comparison, SnapshotError> {
    let file = path(dir, case_id);
    let Some(stored) = read(&file)? else {
        return Ok(Comparison::Missing(file));
    };
    let shown = shown(&file);
    let stored: Vec<&str> = stored.lines().collect();
    let what = format!(
        "the trace differs from its reviewed snapshot {shown} (the case's assertions passed; \
         if the change is intended, update the snapshot: see README, Trace snapshots)"
    );
    Ok(compare_lines(
        &stored,
        (&format!("expected {shown}"), &what),
        trace,
        actual_label,
        timing,
    ))
}

/// Compares a case's `trace` with the `expected` lines (a snapshot's, or an oracle run's):
/// `labels` are the diff's `---` header and the first line of the failure message.
pub fn compare_lines<E: AsRef<str>, S: AsRef<str>>(
    expected: &[E],
    (expected_label, what): (&str, &str),
    trace: &[S],
    actual_label: &str,
    timing: Timing,
) -> Comparison {
    // Normalise the stored text as the trace is (an editor may strip trailing blanks),
    // and compare without trailing newlines, as insta does.
    let stored = expected;
    let (expected, actual) = match timing {
        Timing::Lockstep => (canonical(stored), canonical(trace)),
        Timing::Independent => (
            relax_backend(&canonical(stored)),
            relax_backend(&canonical(trace)),
        ),
        Timing::Remote => remote_control_views(&canonical(stored), &canonical(trace)),
        Timing::RemoteHost => (host_view(&canonical(stored)), host_view(&canonical(trace))),
        Timing::RemoteDevice => (
            remote_device_view(&canonical(stored)),
            remote_device_view(&canonical(trace)),
        ),
        Timing::RemoteRacy => (
            renumbered(host_and_device(&canonical(stored)).lines()),
            renumbered(host_and_device(&canonical(trace)).lines()),
        ),
        Timing::Racy => (
            host_and_device(&canonical(stored)),
            host_and_device(&canonical(trace)),
        ),
    };
    if expected.trim_end() == actual.trim_end() {
        return Comparison::Matches;
    }
    let mut msg = format!("{what}\n");
    msg.push_str(&diff(
        &(expected.trim_end().to_string() + "\n"),
        &(actual.trim_end().to_string() + "\n"),
        expected_label,
        &format!("actual {actual_label}"),
    ));
    Comparison::Differs(msg.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_racy_case_is_compared_on_its_host_and_device_lines() {
        let stored = [
            "host     call    alloc_pd -> pd1",
            "target   call    cm_disconnect conn2 -> EINVAL",
            "target   call    cm_disconnect conn4 -> EINVAL",
            "device   call    remove_nvme_ctrl nvmf-srq1 ctrl1 -> ok",
            "backend  sqe     sq0 <- write slba=0 nlb=0 nsid=1",
        ];
        let mut swapped = stored;
        swapped.swap(1, 2);
        let mut more: Vec<&str> = swapped.to_vec();
        more.push("backend  sqe     sq0 <- write slba=0 nlb=0 nsid=1");
        let cmp = |t: &[&str], timing| compare_lines(&stored, ("e", "w"), t, "a", timing);
        assert_eq!(cmp(&more, Timing::Racy), Comparison::Matches);
        assert!(matches!(
            cmp(&more, Timing::Independent),
            Comparison::Differs(_)
        ));
        let mut host = stored.to_vec();
        host[0] = "host     call    alloc_pd -> ENOMEM";
        assert!(matches!(cmp(&host, Timing::Racy), Comparison::Differs(_)));
        let mut device = stored.to_vec();
        device[3] = "device   call    remove_nvme_ctrl nvmf-srq1 ctrl1 -> EBUSY";
        assert!(matches!(cmp(&device, Timing::Racy), Comparison::Differs(_)));
    }

    #[test]
    fn a_remote_device_case_is_compared_on_each_side_in_its_own_order() {
        let stored = [
            "target   call    reg_mr pd1 len=2944 LOCAL_WRITE -> mr2",
            "device   call    create_nvme_ctrl nvmf-srq1 sqs=1 timeout_us=0 -> ctrl1",
            "host     call    reg_mr pd2 len=512 LOCAL_WRITE -> mr5",
            "target   resp    -> cid=0 status=ok dw0=0x1",
            "host     resp    <- cid=0 status=ok dw0=0x1",
            "target   call    dereg_mr mr7 -> ok",
            "host     wc      qp1 Recv SUCCESS wr=1 len=16 from=qp2",
            "backend  doorbell sq0 tail=1",
            "backend  sqe     sq0 <- read slba=0 nlb=0 cid=3 nsid=1",
        ];
        // the other host numbers its objects itself; its lines fall elsewhere among the
        // host's; the backend rang its doorbell once for two commands
        let actual = [
            "target   call    reg_mr pd1 len=2944 LOCAL_WRITE -> mr4",
            "device   call    create_nvme_ctrl nvmf-srq1 sqs=1 timeout_us=0 -> ctrl1",
            "host     call    reg_mr pd2 len=512 LOCAL_WRITE -> mr9",
            "target   resp    -> cid=0 status=ok dw0=0x1",
            "target   call    dereg_mr mr3 -> ok",
            "host     resp    <- cid=0 status=ok dw0=0x1",
            "host     wc      qp1 Recv SUCCESS wr=1 len=16 from=qp7",
            "backend  sqe     sq0 <- read slba=0 nlb=0 cid=9 nsid=1",
        ];
        let cmp = |t: &[&str], timing| compare_lines(&stored, ("e", "w"), t, "a", timing);
        assert_eq!(cmp(&actual, Timing::RemoteDevice), Comparison::Matches);
        assert!(matches!(
            cmp(&actual, Timing::Lockstep),
            Comparison::Differs(_)
        ));
        // a target line, a device line or a backend command that changed is found
        for (i, line) in [
            (0, "target   call    reg_mr pd1 len=2943 LOCAL_WRITE -> mr4"),
            (
                1,
                "device   call    create_nvme_ctrl nvmf-srq1 sqs=2 timeout_us=0 -> ctrl1",
            ),
            (7, "backend  sqe     sq0 <- write slba=0 nlb=0 cid=9 nsid=1"),
            (4, "target   call    dereg_mr mr4 -> ok"),
        ] {
            let mut changed = actual;
            changed[i] = line;
            assert!(
                matches!(cmp(&changed, Timing::RemoteDevice), Comparison::Differs(_)),
                "{line}"
            );
        }
        // a racy case: the host's and device's lines only
        let mut target = actual;
        target[0] = "target   call    reg_mr pd1 len=2943 LOCAL_WRITE -> mr4";
        assert_eq!(cmp(&target, Timing::RemoteRacy), Comparison::Matches);
        let mut device = actual;
        device[1] = "device   call    create_nvme_ctrl nvmf-srq1 sqs=2 timeout_us=0 -> ctrl1";
        assert!(matches!(
            cmp(&device, Timing::RemoteRacy),
            Comparison::Differs(_)
        ));
    }

    #[test]
    fn a_remote_control_plane_case_is_compared_on_the_host_then_the_target_host() {
        let stored = [
            "target   call    reg_mr pd1 len=4096 LOCAL_WRITE -> mr1",
            "host     cm      -> connect qid=0 hsqsize=31",
            "target   cm      <- connect qid=0 hsqsize=31",
            "device   call    create_srq pd1 -> nvmf-srq1",
            "host     capsule -> connect cid=0 qid=0",
            "target   resp    -> cid=0 status=ok dw0=0x1",
            "host     resp    <- cid=0 status=ok dw0=0x1",
            "backend  doorbell sq0 tail=1",
            "backend  sqe     sq0 <- flush cid=3 nsid=1",
        ];
        // the target host's trace comes after the mark, numbered there
        let actual = [
            "host     cm      -> connect qid=0 hsqsize=31",
            "host     capsule -> connect cid=0 qid=0",
            "host     resp    <- cid=0 status=ok dw0=0x1",
            "# the remote target's own trace (compared as docs/two-host.md says)",
            "target   call    reg_mr pd4 len=4096 LOCAL_WRITE -> mr8",
            "target   cm      <- connect qid=0 hsqsize=31",
            "device   call    create_srq pd4 -> nvmf-srq2",
            "target   resp    -> cid=0 status=ok dw0=0x1",
            "backend  sqe     sq0 <- flush cid=7 nsid=1",
        ];
        let cmp = |t: &[&str], timing| compare_lines(&stored, ("e", "w"), t, "a", timing);
        assert_eq!(cmp(&actual, Timing::Remote), Comparison::Matches);
        assert_eq!(cmp(&actual, Timing::RemoteHost), Comparison::Matches);
        // a target, device or backend line that changed, or the target's lines in another
        // order, is found by the whole comparison; the host-only one sees none of it
        for (i, line) in [
            (5, "target   cm      <- connect qid=0 hsqsize=15"),
            (6, "device   call    create_srq pd4 -> nvmf-srq2 extra"),
            (7, "target   resp    -> cid=0 status=ok dw0=0x2"),
            (8, "backend  sqe     sq0 <- write cid=7 nsid=1"),
        ] {
            let mut changed = actual;
            changed[i] = line;
            assert!(
                matches!(cmp(&changed, Timing::Remote), Comparison::Differs(_)),
                "{line}"
            );
            assert_eq!(
                cmp(&changed, Timing::RemoteHost),
                Comparison::Matches,
                "{line}"
            );
        }
        let mut swapped = actual;
        swapped.swap(5, 7);
        assert!(matches!(
            cmp(&swapped, Timing::Remote),
            Comparison::Differs(_)
        ));
        // what the target host does once the case is over (tearing down the connections
        // the case's host let go) is not the case's; a line the case's trace lacks is
        let mut after = actual.to_vec();
        after.insert(8, "target   call    destroy_qp qp3 -> ok");
        assert_eq!(cmp(&after, Timing::Remote), Comparison::Matches);
        let mut short = actual.to_vec();
        short.remove(7);
        assert!(matches!(
            cmp(&short, Timing::Remote),
            Comparison::Differs(_)
        ));
        // a host line that changed is found by both
        let mut host = actual;
        host[2] = "host     resp    <- cid=0 status=ok dw0=0x2";
        assert!(matches!(cmp(&host, Timing::Remote), Comparison::Differs(_)));
        assert!(matches!(
            cmp(&host, Timing::RemoteHost),
            Comparison::Differs(_)
        ));
    }

    #[test]
    fn backend_lines_follow_the_others_in_their_own_order() {
        let trace = [
            "host     capsule -> read slba=0 nlb=0 cid=0 nsid=1 data=keyed(0 len=0 key=0)",
            "backend  doorbell sq0 tail=1",
            "backend  sqe     sq0 <- read slba=0 nlb=0 cid=0 nsid=1",
            "host     resp    <- cid=0 status=ok dw0=0x0",
            "backend  cqe     sq0 -> cid=0 status=ok",
        ];
        let want = "host     capsule -> read slba=0 nlb=0 cid=0 nsid=1 data=keyed(0 len=0 key=0)\n\
                    host     resp    <- cid=0 status=ok dw0=0x0\n\
                    backend  doorbell sq0 tail=1\n\
                    backend  sqe     sq0 <- read slba=0 nlb=0 cid=0 nsid=1\n\
                    backend  cqe     sq0 -> cid=0 status=ok\n";
        assert_eq!(canonical(&trace), want);
    }

    #[test]
    fn the_host_view_renumbers_names_and_drops_the_target() {
        // the same session, traced in one process and in two
        let one = "target   call    alloc_pd -> pd1\n\
                   host     call    alloc_pd -> pd2\n\
                   host     call    create_qp pd2 -> qp1\n\
                   host     call    reg_mr pd2 len=512 LOCAL_WRITE -> mr4\n\
                   target   call    create_qp pd1 srq=srq1 -> qp2\n\
                   host     capsule -> connect cid=0 data=keyed(mr4+0x0 len=512 key=mr4.rkey)\n\
                   host     wc      qp1 Recv SUCCESS wr=1 len=16 from=qp2\n";
        let two = "host     call    alloc_pd -> pd1\n\
                   host     call    create_qp pd1 -> qp1\n\
                   host     call    reg_mr pd1 len=512 LOCAL_WRITE -> mr1\n\
                   host     capsule -> connect cid=0 data=keyed(mr1+0x0 len=512 key=mr1.rkey)\n\
                   host     wc      qp1 Recv SUCCESS wr=1 len=16 from=unknown-qpn1\n";
        assert_eq!(host_view(one), host_view(two));
        assert!(host_view(one).contains("keyed(mr#1+0x0 len=512 key=mr#1.rkey)"));
        // what the host saw still counts: another length, or another object, differs
        assert_ne!(host_view(one), host_view(&two.replace("len=16", "len=32")));
        assert_ne!(
            host_view(one),
            host_view(&two.replace("create_qp pd1", "create_qp pd9"))
        );
    }

    #[test]
    fn with_independent_timing_backend_batching_and_cids_are_not_compared() {
        // One command at a time (sim) and two in flight at once (a real fabric).
        let one_by_one = "host     capsule -> flush cid=0 nsid=1\n\
                          backend  doorbell sq0 tail=1\n\
                          backend  sqe     sq0 <- flush cid=0 nsid=1\n\
                          backend  cqe     sq0 -> cid=0 status=ok\n\
                          backend  doorbell cq head=1\n\
                          backend  doorbell sq0 tail=2\n\
                          backend  sqe     sq0 <- flush cid=0 nsid=1\n\
                          backend  cqe     sq0 -> cid=0 status=ok\n\
                          backend  doorbell cq head=2\n";
        let together = "host     capsule -> flush cid=0 nsid=1\n\
                        backend  doorbell sq0 tail=2\n\
                        backend  sqe     sq0 <- flush cid=0 nsid=1\n\
                        backend  sqe     sq0 <- flush cid=1 nsid=1\n\
                        backend  cqe     sq0 -> cid=1 status=ok\n\
                        backend  cqe     sq0 -> cid=0 status=ok\n\
                        backend  doorbell cq head=2\n";
        assert_ne!(one_by_one, together);
        assert_eq!(relax_backend(one_by_one), relax_backend(together));
        // What the backend did still counts: a third flush, or another status, differs.
        let more = together.replace(
            "backend  doorbell cq head=2",
            "backend  sqe     sq0 <- flush cid=2 nsid=1",
        );
        assert_ne!(relax_backend(one_by_one), relax_backend(&more));
        let failed = together.replace("cid=1 status=ok", "cid=1 status=err");
        assert_ne!(relax_backend(one_by_one), relax_backend(&failed));
        // Host lines keep their CIDs and places.
        assert!(relax_backend(together).starts_with("host     capsule -> flush cid=0 nsid=1\n"));
    }

    #[test]
    fn acks_and_flushes_are_left_out_and_simultaneous_events_sorted() {
        let trace = [
            "host     post    qp1 SEND wr=7 len=64",
            "host     capsule -> flush cid=0 nsid=1 data=keyed(0 len=0 key=0)",
            "host     wc      qp1 Recv SUCCESS wr=8 len=16 from=qp2",
            "host     resp    <- cid=0 status=ok dw0=0x0",
            "host     wc      qp1 Send SUCCESS wr=7",
            "host     wc      qp1 Send WR_FLUSH_ERR wr=9",
            "host     wc      qp1 Recv WR_FLUSH_ERR wr=10",
            "host     wc      qp1 Send RETRY_EXC_ERR wr=11",
            "host     cm      conn1 established recfmt=0 crqsize=32 ",
            "target   cm      conn4 disconnected",
            "target   cm      conn2 disconnected",
            "target   cm      conn4 established",
            "target   cm      conn2 established",
            "target   cm      conn2 disconnected",
            "target   event   QP_FATAL qp5",
            "target   event   QP_FATAL qp3",
        ];
        let want = "host     post    qp1 SEND wr=7 len=64\n\
                    host     capsule -> flush cid=0 nsid=1 data=keyed(0 len=0 key=0)\n\
                    host     wc      qp1 Recv SUCCESS wr=8 len=16 from=qp2\n\
                    host     resp    <- cid=0 status=ok dw0=0x0\n\
                    host     wc      qp1 Send RETRY_EXC_ERR wr=11\n\
                    host     cm      conn1 established recfmt=0 crqsize=32\n\
                    target   event   QP_FATAL qp3\n\
                    target   event   QP_FATAL qp5\n";
        assert_eq!(canonical(&trace), want);
        // Already canonical: unchanged.
        let lines: Vec<&str> = want.lines().collect();
        assert_eq!(canonical(&lines), want);
    }

    #[test]
    fn snapshot_files_are_read_past_their_header_and_compared() {
        let dir = std::env::temp_dir().join(format!("nvmf-conform-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            path(&dir, "a.b"),
            "---\nsource: x.rs\ndescription: d\n---\nhost call one   \nhost call two\n",
        )
        .unwrap();
        assert_eq!(
            compare(
                &dir,
                "a.b",
                &["host call one", "host call two"],
                "t",
                Timing::Lockstep
            )
            .unwrap(),
            Comparison::Matches
        );
        let Comparison::Differs(m) = compare(
            &dir,
            "a.b",
            &["host call one", "host call 2"],
            "dev",
            Timing::Lockstep,
        )
        .unwrap() else {
            panic!("a changed line must differ");
        };
        assert!(m.ends_with("-host call two\n+host call 2"), "{m}");
        assert!(m.contains("+++ actual dev"), "{m}");
        assert!(matches!(
            compare(&dir, "c.d", &["x"], "t", Timing::Lockstep).unwrap(),
            Comparison::Missing(_)
        ));
        std::fs::write(path(&dir, "e.f"), "no header\n").unwrap();
        assert!(compare(&dir, "e.f", &["x"], "t", Timing::Lockstep).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
