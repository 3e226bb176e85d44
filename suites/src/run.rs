//! Runs catalog entries: each on a fresh fabric, a fresh runtime (a paused clock on the
//! simulated fabric, wall time on verbs: [`crate::fabric`]), its own seed, and a time
//! bound, so one hung or crashing case becomes a verdict, never a stuck run.
//!
//! With [`Options::snapshots`] set, an offload case that passed its assertions also has its
//! trace compared with the oracle's ([`crate::oracle`]: the reviewed snapshot of the
//! built-in profile with the device's caps, or the reference target run with them): a
//! difference makes it a failure whose message ends with the diff; a missing snapshot
//! file, or a case the reference does not pass, leaves the verdict alone and says so in the
//! record's note. A failing case's record carries the oracle's trace as `expected`.

use std::time::{Duration, Instant};

use futures::FutureExt;
use harness::capture::Capture;
use harness::fabric::contract::{self, Env, Outcome};
use harness::runner::{CaseRecord, RunMeta, RunResult, Verdict};
use reference_target::quirks::Quirks;

use std::sync::Arc;

use reference_target::remote::{RemoteDevice, RemoteError, RemoteTarget};

use crate::catalog::{Body, Entry};
use crate::fabric::CaseFabric;
use crate::framework::{self, Dut, Need};
use crate::isolate::{self, Isolation};
use crate::options::BackendChoice;
pub use crate::options::{Options, PluginTarget};
use crate::oracle;
use crate::seed::case_seed;
use crate::snapshot::{self, Comparison};

/// Runs `entries` in order and returns the run's result.
pub fn run(entries: &[Entry], opts: &Options, mut progress: impl FnMut(&CaseRecord)) -> RunResult {
    let cases = match opts.isolation {
        Isolation::None => in_process(entries, opts, &mut progress, None),
        mode => {
            let run_case = |e: &Entry| run_one(e, case_seed(opts.seed, &e.id), opts);
            isolate::records(entries, mode, opts.watchdog, &mut progress, &run_case)
        }
    };
    result(entries, opts, cases)
}

/// Runs `entries` in this process (whatever `opts.isolation` says: a child's memory is
/// not ours to read), recording every case's fabric traffic: the run's result and its
/// frames, each case's after the previous one's (cases start at virtual time 0 on their
/// own fabric; [`CASE_GAP`] separates them).
pub fn run_captured(
    entries: &[Entry],
    opts: &Options,
    mut progress: impl FnMut(&CaseRecord),
) -> (RunResult, Vec<(Duration, Vec<u8>)>) {
    let mut frames = Vec::new();
    let cases = in_process(entries, opts, &mut progress, Some(&mut frames));
    (result(entries, opts, cases), frames)
}

/// The records of `entries` run one after the other in this process; their frames are
/// appended to `frames` when given.
fn in_process(
    entries: &[Entry],
    opts: &Options,
    progress: &mut dyn FnMut(&CaseRecord),
    mut frames: Option<&mut Vec<(Duration, Vec<u8>)>>,
) -> Vec<CaseRecord> {
    let mut cases = Vec::with_capacity(entries.len());
    let mut start = Duration::ZERO;
    for e in entries {
        let capture = frames.as_ref().map(|_| Capture::new());
        let rec = run_one_captured(e, case_seed(opts.seed, &e.id), opts, capture.as_ref());
        if let (Some(out), Some(c)) = (frames.as_deref_mut(), capture) {
            let mut last = start;
            for f in c.frames() {
                last = start + f.at;
                out.push((last, f.data));
            }
            start = last + CASE_GAP;
        }
        progress(&rec);
        cases.push(rec);
    }
    cases
}

/// The run's result: `cases` with the metadata of `opts`.
fn result(entries: &[Entry], opts: &Options, cases: Vec<CaseRecord>) -> RunResult {
    // The device's caps, unless no case tested a device (only the fabric contract ran).
    let tested_a_device = entries.iter().any(|e| matches!(e.body, Body::Offload(_)));
    let caps = match (tested_a_device, &opts.plugin) {
        (false, _) => Vec::new(),
        (true, None) => harness::report::caps_fields(&opts.profile.caps),
        (true, Some(p)) => plugin_caps(p)
            .map(|c| harness::report::caps_fields(&c))
            .unwrap_or_default(),
    };
    RunResult {
        meta: meta(opts, caps),
        cases,
    }
}

/// The metadata of a run with `opts` that tested a device with `caps` (field → value;
/// empty when no device was tested).
pub fn meta(opts: &Options, caps: Vec<(String, String)>) -> RunMeta {
    RunMeta {
        target: opts.target_name(),
        profile: match &opts.plugin {
            Some(p) => format!("plugin config `{}`", p.config),
            None => opts.profile.name.clone(),
        },
        caps,
        fabric: opts.fabric.name().into(),
        seed: opts.seed,
        shard: opts.shard.map(|s| s.to_string()),
        version: env!("CARGO_PKG_VERSION").into(),
        replay: opts.replay.clone(),
        control_plane: crate::framework::requirements::REQUIREMENTS
            .iter()
            .filter(|r| r.about == harness::runner::Subject::ControlPlane)
            .map(|r| r.id.to_string())
            .collect(),
    }
}

/// The caps a plugin's device reports (opened once on a scratch fabric), if it opens.
pub fn plugin_caps(p: &PluginTarget) -> Option<harness::api::NvmfCaps> {
    check_plugin(p).ok()
}

/// Why a plugin's device does not open before a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginCheckError {
    /// The plugin refused its configuration string (`-EINVAL` from open, as
    /// `include/nvmf_offload.h` specifies): the user's to fix, a usage error.
    #[error("the plugin refused its configuration `{config}`: {reason}")]
    BadConfig {
        /// The configuration string.
        config: String,
        /// The plugin's explanation.
        reason: String,
    },
    /// Anything else: the device cannot be tested.
    #[error("the device does not open: {0}")]
    Untestable(String),
}

/// Opens the plugin's device once on a scratch fabric: its caps, or why it cannot be
/// tested (a runner turns that into exit 2 or 125 before running anything).
pub fn check_plugin(p: &PluginTarget) -> Result<harness::api::NvmfCaps, PluginCheckError> {
    let rt = harness::fabric::sim::runtime()
        .map_err(|e| PluginCheckError::Untestable(format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        let dut =
            Dut::plugin(0, &p.plugin, &p.config, Quirks::none(), None).map_err(|e| match &e {
                harness::plugin::PluginError::OpenFailed {
                    errno: nix::errno::Errno::EINVAL,
                    reason,
                    ..
                } => PluginCheckError::BadConfig {
                    config: p.config.clone(),
                    reason: reason.clone().unwrap_or_else(|| e.to_string()),
                },
                _ => PluginCheckError::Untestable(e.to_string()),
            })?;
        Ok(dut.caps.clone())
    })
}

/// Runs one entry with `seed` on a fresh simulated fabric.
pub fn run_one(entry: &Entry, seed: u64, opts: &Options) -> CaseRecord {
    run_one_captured(entry, seed, opts, None)
}

/// Virtual time between the frames of two cases in a run's capture.
pub const CASE_GAP: Duration = Duration::from_secs(1);

/// Scales this process's waits ([`framework::wait`]) for `opts`' fabric: by its
/// `wait_scale` on a real fabric, not at all on the simulated one (virtual time).
pub fn scale_waits(opts: &Options) {
    framework::set_wait_scale(wait_factor(opts));
}

/// The factor `opts`' waits are scaled by: its `wait_scale` on a real fabric, 1 on the
/// simulated one.
pub fn wait_factor(opts: &Options) -> f64 {
    if opts.fabric.is_sim() {
        1.0
    } else {
        opts.wait_scale
    }
}

/// [`run_one`], recording the fabric's traffic into `capture` when given.
pub fn run_one_captured(
    entry: &Entry,
    seed: u64,
    opts: &Options,
    capture: Option<&Capture>,
) -> CaseRecord {
    let bound = opts.case_bound;
    let started = Instant::now();
    scale_waits(opts);
    let rt = opts.fabric.runtime();
    let time = if opts.fabric.is_sim() {
        "of virtual time"
    } else {
        "(wall time)"
    };
    let outcome = match rt {
        Err(e) => CaseOutcome::error(format!("cannot start a runtime: {e}")),
        Ok(rt) => rt.block_on(async {
            let place = match opts.fabric.for_case(seed) {
                Ok(p) => p,
                Err(e) => return CaseOutcome::error(e),
            };
            match &entry.body {
                Body::Offload(case) => {
                    offload_verdict(&entry.id, case, place, opts, capture, bound, time).await
                }
                Body::Fabric(case) => {
                    place.capture_into(capture);
                    let factory = match opts.fabric.factory() {
                        Ok(f) => f,
                        Err(e) => return CaseOutcome::error(e),
                    };
                    let env = Env::new(place.fabric, seed).with_factory(factory);
                    let trace = env.trace.clone();
                    let verdict =
                        match tokio::time::timeout(bound, contract::execute(case, env)).await {
                            Ok(Outcome::Passed) => Verdict::Pass,
                            Ok(Outcome::Failed(m)) => Verdict::Fail(m),
                            Ok(Outcome::Skipped(m)) => Verdict::Skip(m),
                            Err(_) => Verdict::Error(format!(
                                "no verdict within {} s {time}: the case hung",
                                bound.as_secs()
                            )),
                        };
                    CaseOutcome {
                        verdict,
                        trace: trace.snapshot(),
                        ..CaseOutcome::default()
                    }
                }
            }
        }),
    };
    let CaseOutcome {
        mut verdict,
        trace,
        mut note,
        failed_at,
        mut blamed,
        checks,
        caps,
        mut expected,
        oracle_pending,
    } = outcome;
    if let (true, Some(caps)) = (oracle_pending, &caps) {
        // The reference target with the device's caps, the same case and seed.
        let reference = run_one(entry, seed, &oracle::reference_options(opts, caps));
        match oracle::expected_of(reference) {
            Ok(reference) if matches!(verdict, Verdict::Pass) => {
                verdict = oracle::judge(
                    &reference,
                    &trace,
                    &opts.target_name(),
                    timing(opts, entry.race(), false), // never pending in two-host mode
                );
                if !matches!(verdict, Verdict::Pass) {
                    blamed = entry.requirement.map(str::to_string);
                    expected = Some(reference);
                }
            }
            Ok(reference) => expected = Some(reference),
            Err(why) if matches!(verdict, Verdict::Pass) => {
                note = Some(format!("trace not compared: {why}"));
            }
            Err(_) => {}
        }
    }
    let (expected, expected_from) = match expected {
        Some(e) => (Some(e.lines), Some(e.from)),
        None => (None, None),
    };
    CaseRecord {
        id: entry.id.clone(),
        area: entry.area.clone(),
        description: entry.description.to_string(),
        requirement: entry.requirement.map(str::to_string),
        verdict,
        wall: started.elapsed(),
        trace,
        note,
        expected,
        expected_from,
        failed_at,
        blamed,
        checks,
    }
}

/// What running one case gave, before it becomes a [`CaseRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct CaseOutcome {
    /// The verdict.
    pub verdict: Verdict,
    /// The trace lines.
    pub trace: Vec<String>,
    /// A note for the reader (e.g. why the trace was not compared).
    pub note: Option<String>,
    /// For a failed case: the number of trace lines recorded when its failing check ran.
    pub failed_at: Option<usize>,
    /// For a failed or errored case: the requirement of the check that failed.
    pub blamed: Option<String>,
    /// The checks that ran, per requirement.
    pub checks: Vec<(String, u32)>,
    /// The caps of the device the case ran on (offload cases that opened one).
    pub caps: Option<harness::api::NvmfCaps>,
    /// What a conforming device does, for a failed case (or one whose trace differs).
    pub expected: Option<oracle::Expected>,
    /// The oracle is the reference target run with `caps`, still to be run (it needs a
    /// runtime of its own).
    pub oracle_pending: bool,
}

impl Default for CaseOutcome {
    /// No verdict yet: an error, never a pass, if nothing fills it in.
    fn default() -> CaseOutcome {
        CaseOutcome {
            verdict: Verdict::Error("no verdict".into()),
            trace: Vec::new(),
            note: None,
            failed_at: None,
            blamed: None,
            checks: Vec::new(),
            caps: None,
            expected: None,
            oracle_pending: false,
        }
    }
}

impl CaseOutcome {
    /// A case that could not run to a verdict, with no trace.
    fn error(why: String) -> CaseOutcome {
        CaseOutcome {
            verdict: Verdict::Error(why),
            ..CaseOutcome::default()
        }
    }
}

/// The device under test `opts` names, opened on `place`: the reference target, a plugin,
/// or the reference target on another host (`--connect`); why not, when it does not open.
/// In two-host mode, `device` says whether the case uses the remote target's device itself
/// (every case but the control-plane ones, which start a target there).
pub async fn open_dut(
    place: CaseFabric,
    opts: &Options,
    capture: Option<&Capture>,
    device: bool,
) -> Result<Dut, String> {
    let remote = match &opts.connect {
        None => None,
        Some(c) => match connect_remote(c, wait_factor(opts)).await {
            Ok(t) => Some(framework::remote::Remote {
                target: Arc::new(t),
                profile: opts.profile.clone(),
                quirks: opts.quirks.clone(),
                device: None,
            }),
            Err(e) => return Err(e.to_string()),
        },
    };
    match (&opts.plugin, remote) {
        (None, Some(r)) => (Dut::remote(place, r, device).await)
            .map_err(|e| format!("the device did not open: {e}")),
        (None, None) if opts.message_link => {
            Dut::reference_linked(place, &opts.profile, opts.quirks.clone(), capture)
                .map_err(|e| format!("the device did not open: {e}"))
        }
        (None, None) => Dut::reference_on(place, &opts.profile, opts.quirks.clone(), capture, true)
            .map_err(|e| format!("the device did not open: {e}")),
        (Some(p), _) => Dut::plugin_on(place, &p.plugin, &p.config, opts.quirks.clone(), capture)
            .map_err(|e| format!("the plugin could not open a device: {e}")),
    }
}

/// Runs one offload case on `place` as `opts` say (the target in this process, a plugin,
/// or behind `opts.connect`), within `bound` (`time` says what kind, for the message):
/// its verdict, trace and note, the trace compared with its snapshot when it passed.
/// Callers build `place`; tests use this to share one simulated fabric with a control
/// channel's target.
pub async fn offload_verdict(
    id: &str,
    case: &framework::Case,
    place: CaseFabric,
    opts: &Options,
    capture: Option<&Capture>,
    bound: Duration,
    time: &str,
) -> CaseOutcome {
    let control = case.needs.iter().any(|n| matches!(n, Need::ControlPlane));
    let mut dut = match open_dut(place, opts, capture, !control).await {
        Ok(d) => d,
        Err(why) => return CaseOutcome::error(why),
    };
    let remote = dut.remote.clone();
    let rec = dut.rec.clone();
    let caps = dut.caps.clone();
    let device = dut.ctx.device_attr();
    if let BackendChoice::Vfio(pci) = opts.backend {
        // Backend controllers are queue pairs of the real controller; a control-plane
        // case's reference target opens it itself, so the suites let go of it.
        let backends = case.needs.iter().any(|n| matches!(n, Need::Backends));
        if backends || control {
            let used = match &remote {
                None => framework::dut::RealBackend::open(pci).and_then(|r| {
                    if backends {
                        dut.use_real_backend(Arc::new(r))
                    } else {
                        r.into_target().map(|t| dut.use_real_target(t))
                    }
                }),
                Some(r) => lent_real(&mut dut, r, pci),
            };
            if let Err(e) = used {
                let why = format!("the real backend controller: {}", e.message);
                return CaseOutcome::error(why);
            }
        }
    }
    let facts = harness::case::Facts {
        fabric: &*dut.fabric,
        can_make_fresh: false,
        dut: Some(framework::DutFacts {
            caps: &dut.caps,
            device: &device,
            has_backends: dut.backends.is_some(),
            remote: remote.is_some(),
            real_backend: dut.real_backend_facts(),
            pci_error_hook: dut.pci_error_hook(),
        }),
    };
    if let Some(why) = case.unmet(&facts) {
        return CaseOutcome {
            verdict: Verdict::Skip(why),
            ..CaseOutcome::error(String::new())
        };
    }
    framework::blame::begin(
        case.requirement.unwrap_or("-"),
        Some(framework::failure::error_rule),
    );
    let body = std::panic::AssertUnwindSafe((case.body)(dut)).catch_unwind();
    let outcome = tokio::time::timeout(bound, body).await;
    let failed_at = Some(rec.lines().len());
    // A hang or a panic is blamed on the requirement in force when it happened.
    let mut blamed = framework::blame::current();
    let checks = framework::blame::finish();
    let (verdict, failed_at) = match outcome {
        Ok(Ok(Ok(()))) => (Verdict::Pass, None),
        Ok(Ok(Err(f))) => {
            blamed = f.requirement;
            (Verdict::Fail(f.message), failed_at)
        }
        Ok(Err(p)) => (
            Verdict::Error(format!(
                "the case panicked: {}",
                harness::case::panic_text(&*p)
            )),
            failed_at,
        ),
        Err(_) => (
            Verdict::Error(format!(
                "no verdict within {} s {time}: the device hung",
                bound.as_secs()
            )),
            failed_at,
        ),
    };
    let mut trace: Vec<String> = rec.lines().iter().map(ToString::to_string).collect();
    let verdict = match &remote {
        None => verdict,
        Some(r) => match &r.device {
            Some(d) => close_remote(d, verdict, &mut trace),
            None => stop_remote(&r.target, verdict, &mut trace).await,
        },
    };
    // What a conforming device with these caps does (crate::oracle): the reviewed snapshot
    // of the built-in profile with these caps, or the reference target run with them,
    // which needs a runtime of its own (run_one_captured runs it once this one is done).
    let source = oracle::Source::for_caps(&caps);
    let fails = matches!(verdict, Verdict::Fail(_) | Verdict::Error(_));
    let (verdict, note, expected, oracle_pending) = match (&opts.snapshots, source) {
        (None, _) => (verdict, None, None, false),
        (Some(_), _) if matches!(verdict, Verdict::Skip(_)) => (verdict, None, None, false),
        (Some(_), _) if opts.backend.is_real() => {
            let note = "trace not compared: the backend is a real controller, and the \
                        snapshots record the emulated controllers' side of the trace"
                .to_string();
            (verdict, Some(note), None, false)
        }
        (Some(dir), oracle::Source::Reviewed(p)) => {
            let (v, note) = if fails {
                (verdict, None)
            } else {
                let remote_device = remote.as_ref().is_some_and(|r| r.device.is_some());
                against_snapshot(id, &trace, p, dir, opts, (case.race, remote_device))
            };
            if !fails && !matches!(v, Verdict::Pass) {
                // A trace unlike the reviewed one: the case's own requirement.
                blamed = case.requirement;
            }
            let expected = if matches!(v, Verdict::Pass) {
                None
            } else {
                oracle::reviewed(dir, p, id)
            };
            (v, note, expected, false)
        }
        (Some(_), oracle::Source::ReferenceRun) if remote.is_some() => {
            let note = "trace not compared: the device's caps are no built-in profile's, and \
                        in two-host mode the reference target is not run beside the device"
                .to_string();
            (verdict, (!fails).then_some(note), None, false)
        }
        (Some(_), oracle::Source::ReferenceRun) => (verdict, None, None, true),
    };
    CaseOutcome {
        caps: Some(caps),
        expected,
        oracle_pending,
        blamed: match verdict {
            Verdict::Fail(_) | Verdict::Error(_) => blamed.map(str::to_string),
            _ => None,
        },
        checks: checks
            .into_iter()
            .map(|(r, n)| (r.to_string(), n))
            .collect(),
        verdict,
        trace,
        note,
        failed_at,
    }
}

/// Two-host mode: the real controller at `pci` the target host lends, for `dut`: queue
/// pairs of it for a case that uses the device itself, or, for a control-plane case, the
/// controller its target opens, faults asked through the channel.
fn lent_real(
    dut: &mut Dut,
    r: &framework::remote::Remote,
    pci: harness::backend::vfio::PciAddress,
) -> Result<(), harness::case::Failure> {
    use framework::dut::{RealBackend, RealTarget};
    match &r.device {
        Some(d) => {
            let link: Arc<dyn harness::remote::BackendLink> = d.clone();
            dut.use_real_backend(Arc::new(RealBackend::remote(link)?))
        }
        None => {
            let facts = (r.target.info().real.as_ref())
                .map(|l| l.facts)
                .ok_or_else(|| {
                    harness::case::Failure::new("the target host lends no real controller")
                })?;
            dut.use_real_target(RealTarget::remote(pci, facts, r.target.clone()));
            Ok(())
        }
    }
}

/// Which clock a case's trace ran on, for comparisons; `race` is the case's declared race
/// (`Case::racy`).
fn timing(opts: &Options, race: Option<&str>, remote_device: bool) -> snapshot::Timing {
    if opts.connect.is_some() {
        match (remote_device, race) {
            (false, None) => snapshot::Timing::Remote,
            (false, Some(_)) => snapshot::Timing::RemoteHost,
            (true, None) => snapshot::Timing::RemoteDevice,
            (true, Some(_)) => snapshot::Timing::RemoteRacy,
        }
    } else if opts.fabric.is_sim() && opts.plugin.is_none() {
        snapshot::Timing::Lockstep
    } else if race.is_some() {
        snapshot::Timing::Racy
    } else {
        snapshot::Timing::Independent
    }
}

/// The verdict and note of a case that passed its assertions, once its trace is compared
/// with the reviewed snapshot of `profile` under `dir` (see the module docs).
fn against_snapshot(
    id: &str,
    trace: &[String],
    profile: &str,
    dir: &std::path::Path,
    opts: &Options,
    (race, remote_device): (Option<&'static str>, bool),
) -> (Verdict, Option<String>) {
    let dir = snapshot::dir_for(dir, profile);
    let timing = timing(opts, race, remote_device);
    match snapshot::compare(&dir, id, trace, &opts.target_name(), timing) {
        Ok(Comparison::Matches) if timing == snapshot::Timing::RemoteHost => (
            Verdict::Pass,
            Some(format!(
                "trace compared on its host's lines only: the target runs on the other host, \
                 and {}",
                race.unwrap_or("the rest is timing")
            )),
        ),
        Ok(Comparison::Matches)
            if matches!(
                timing,
                snapshot::Timing::Racy | snapshot::Timing::RemoteRacy
            ) =>
        {
            (
                Verdict::Pass,
                Some(format!(
                    "trace compared on its host and device lines only: the device keeps its \
                     own time, and {}",
                    race.unwrap_or("the rest is timing")
                )),
            )
        }
        Ok(Comparison::Matches) => (Verdict::Pass, None),
        Ok(Comparison::Differs(message)) => (Verdict::Fail(message), None),
        Ok(Comparison::Missing(file)) => (
            Verdict::Pass,
            Some(format!(
                "trace not compared: no snapshot {} (generate it: see README, Trace snapshots)",
                snapshot::shown(&file)
            )),
        ),
        Err(e) => (Verdict::Error(e.to_string()), None),
    }
}

/// Bound of connecting to a remote target's control channel and of its `hello`.
pub const REMOTE_BOUND: Duration = Duration::from_secs(10);

/// Opens the control channel `c` names, its bounds (the hello's, every reply's) scaled by
/// `factor`.
pub async fn connect_remote(
    c: &crate::options::Connect,
    factor: f64,
) -> Result<RemoteTarget, reference_target::remote::RemoteError> {
    let t =
        RemoteTarget::connect(c.addr, &c.security, REMOTE_BOUND.mul_f64(factor.max(1.0))).await?;
    Ok(t.scaled(factor))
}

/// Makes `opts` test what the remote target said it serves (`info`, from its `hello`): a
/// vendor plugin's device brings its own caps, which replace `opts`' profile (named
/// `plugin:FILE`, as reports show it); the reference engine runs `opts`' profile. Returns
/// what changed, for the user.
pub fn adopt_remote(
    opts: &mut Options,
    info: &reference_target::remote::RemoteInfo,
) -> Option<String> {
    let caps = info.caps.clone()?;
    let was = std::mem::replace(
        &mut opts.profile,
        harness::api::Profile {
            name: info.target.clone(),
            description: format!("the device the remote target serves ({})", info.target),
            caps,
            device: Default::default(),
        },
    );
    Some(format!(
        "the remote target serves {}: its caps are the device's own (not profile {})",
        info.target, was.name
    ))
}

/// Marks where a two-host case's trace goes on with the remote target's own lines.
pub const REMOTE_TRACE_MARK: &str =
    "# the remote target's own trace (compared as docs/two-host.md says)";

/// Releases the remote device a two-host case used (the Dut's drop has, unless the case
/// hung) and appends its backends' trace after [`REMOTE_TRACE_MARK`]; a device that is not
/// released makes a passing case an error.
fn close_remote(d: &RemoteDevice, verdict: Verdict, trace: &mut Vec<String>) -> Verdict {
    match d.close() {
        Ok(lines) => {
            trace.push(REMOTE_TRACE_MARK.into());
            trace.extend(lines);
            verdict
        }
        Err(e) => match verdict {
            Verdict::Pass => Verdict::Error(format!("releasing the remote device: {e}")),
            v => v,
        },
    }
}

/// Stops the target a two-host case started, if it started one, and appends its trace
/// after [`REMOTE_TRACE_MARK`]. A target that does not stop cleanly makes a passing case an
/// error: the next case would find it still running.
async fn stop_remote(r: &RemoteTarget, verdict: Verdict, trace: &mut Vec<String>) -> Verdict {
    // the trace as the case left it: what the target does as it stops (its connections
    // torn down) is not the case's, as in one process
    let so_far = r.trace().await;
    match r.stop().await {
        Ok((lines, _events)) => {
            trace.push(REMOTE_TRACE_MARK.into());
            trace.extend(so_far.unwrap_or(lines));
            verdict
        }
        Err(RemoteError::Refused { .. }) => verdict, // the case started no target
        Err(e) => match verdict {
            Verdict::Pass => Verdict::Error(format!("stopping the remote target: {e}")),
            v => v,
        },
    }
}
