//! `nvmf-conform soak`: random workloads against any device under test, every answer and
//! every block checked against a model.
//!
//! A soak runs **episodes** one after another until its time is up: each a fresh target
//! serving one namespace on the device under test, and a sequence of steps drawn from the
//! run's seed and the episode's number ([`ops::episode`]): host connects and disconnects,
//! batches of reads, writes, flushes, write-zeroes and deallocates on random blocks at
//! random queue depths, backend faults (timeouts, PCI errors, media errors), link drops and
//! target restarts, calls on the offload API's own objects. Each
//! status is checked against what the requirements allow in that state and each block read
//! against the values it may hold ([`model`]). On a divergence the soak stops, shrinks the
//! episode to the fewest steps that still diverge, and prints the command that replays
//! them: `nvmf-conform soak --seed S --episode E --only I,J,...`.

pub mod api;
mod exec;
pub mod model;
pub mod ops;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use harness::api::{NvmfCaps, OffloadOps};
use harness::runner::{CaseRecord, RunResult, Verdict};

use crate::framework::media::TempNamespace;
use crate::framework::target::one_subsystem;
use crate::run::{self, Options};
pub use exec::Coverage;
use exec::Episode;
use ops::{Menu, Op};

/// A fault the soak can inject into the backend controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// The backend never answers the next command: the device must answer it 0/06h
    /// Internal Error (DNR clear) and the target re-creates the controller.
    Timeout,
    /// The backend controller fails fatally: its namespace goes offline, every command is
    /// answered 0/82h Namespace Not Ready with DNR.
    PciError,
    /// Reads of the next command's blocks fail: 2/81h Unrecovered Read Error.
    MediaError,
    /// The hosts' port goes down for 1-120 ms (simulated fabric only): connections may
    /// break; the hosts leave, a new one must connect, and every acknowledged write stays.
    LinkDrop,
    /// The target stops in order, giving the device back every object it made on it, and
    /// a new one starts on the same device and media (an in-process target only): the
    /// hosts leave, a new one must connect and serve, and every acknowledged write stays.
    Restart,
}

impl FaultKind {
    /// Every kind, in the order `--faults` lists them.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Timeout,
        FaultKind::PciError,
        FaultKind::MediaError,
        FaultKind::LinkDrop,
        FaultKind::Restart,
    ];

    /// The name `--faults` takes.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Timeout => "timeout",
            FaultKind::PciError => "pci-error",
            FaultKind::MediaError => "media-error",
            FaultKind::LinkDrop => "link-drop",
            FaultKind::Restart => "restart",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<FaultKind, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "`{s}`: unknown fault (known: {}, or `none`)",
                    names.join(", ")
                )
            })
    }
}

/// Parses `--faults`: a comma-separated list of fault names, `all` or `none`.
pub fn parse_faults(s: &str) -> Result<Vec<FaultKind>, String> {
    match s.trim() {
        "all" => Ok(FaultKind::ALL.to_vec()),
        "none" | "" => Ok(Vec::new()),
        list => {
            let mut v = list
                .split(',')
                .map(|f| f.trim().parse::<FaultKind>())
                .collect::<Result<Vec<_>, _>>()?;
            v.sort();
            v.dedup();
            Ok(v)
        }
    }
}

/// What a soak runs.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Stop starting episodes after this much wall time.
    pub duration: Duration,
    /// Or after this many episodes (whichever comes first).
    pub episodes: Option<u64>,
    /// Run only this episode (a replay).
    pub episode: Option<u64>,
    /// With `episode`: only these steps of it (indices into its steps).
    pub only: Option<Vec<usize>>,
    /// Faults to inject.
    pub faults: Vec<FaultKind>,
    /// Steps per episode.
    pub steps: usize,
}

impl Default for SoakOptions {
    fn default() -> SoakOptions {
        SoakOptions {
            duration: Duration::from_secs(60),
            episodes: None,
            episode: None,
            only: None,
            faults: FaultKind::ALL.to_vec(),
            steps: 100,
        }
    }
}

/// A divergence: where, what, and the shortest steps that still show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The episode.
    pub episode: u64,
    /// What diverged (in the shrunk run).
    pub message: String,
    /// The indices of the episode's steps that still diverge.
    pub steps: Vec<usize>,
    /// Those steps, printed.
    pub shown: Vec<String>,
}

/// Where a soak stands, for its progress line.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Wall time so far.
    pub elapsed: Duration,
    /// Episodes finished.
    pub episodes: u64,
    /// What they covered.
    pub coverage: Coverage,
}

impl Progress {
    /// The progress line: steps per second and what has been covered.
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let answered: u64 = self.coverage.answers.values().sum();
        let faults: Vec<String> = self
            .coverage
            .faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "soak {:.0} s: {} episodes, {} steps ({:.0}/s), {} commands ({:.0}/s), {} command×outcome pairs covered, faults: {}",
            self.elapsed.as_secs_f64(),
            self.episodes,
            self.coverage.steps,
            self.coverage.steps as f64 / secs,
            answered,
            answered as f64 / secs,
            self.coverage.answers.len(),
            if faults.is_empty() { "none".into() } else { faults.join(", ") }
        )
    }
}

/// What a soak found.
#[derive(Debug, Clone)]
pub struct SoakResult {
    /// Where it ended.
    pub progress: Progress,
    /// The divergence it stopped at, if any.
    pub divergence: Option<Divergence>,
    /// Why nothing could be tested, if so (the device did not open, the target did not
    /// start).
    pub untestable: Option<String>,
    /// The menu the episodes drew from.
    pub menu: Menu,
    /// The device's caps (a plugin's as it reports them), for the report.
    pub caps: NvmfCaps,
}

/// The commands a device serves: what it offloads, and every NVM command the soak sends
/// when it hands the others to software.
pub fn served_ops(caps: &NvmfCaps) -> OffloadOps {
    if caps.supports_non_offloaded_ops {
        OffloadOps::all()
    } else {
        caps.allowed_offload_ops()
    }
}

/// Runs a soak with `opts` (the device under test, fabric, seed) and `soak`; `progress` is
/// called after every episode.
pub fn soak(opts: &Options, soak: &SoakOptions, mut progress: impl FnMut(&Progress)) -> SoakResult {
    let caps = match &opts.plugin {
        Some(p) => match run::check_plugin(p) {
            Ok(c) => c,
            Err(e) => {
                return SoakResult {
                    progress: Progress::default(),
                    divergence: None,
                    untestable: Some(format!("{e:?}")),
                    menu: Menu {
                        ops: OffloadOps::empty(),
                        software: false,
                        unserved: OffloadOps::empty(),
                        faults: Vec::new(),
                        steps: 0,
                    },
                    caps: NvmfCaps::default(),
                }
            }
        },
        None => opts.profile.caps.clone(),
    };
    let menu = Menu {
        ops: served_ops(&caps),
        software: caps.supports_non_offloaded_ops,
        unserved: if caps.supports_non_offloaded_ops {
            OffloadOps::empty()
        } else {
            (OffloadOps::READ | OffloadOps::FLUSH | OffloadOps::WRITE_ZEROES)
                - caps.allowed_offload_ops()
        },
        faults: injectable(&soak.faults, opts),
        steps: soak.steps.max(1),
    };
    run::scale_waits(opts);
    let started = Instant::now();
    let mut p = Progress::default();
    let episodes: Box<dyn Iterator<Item = u64>> = match soak.episode {
        Some(e) => Box::new(std::iter::once(e)),
        None => Box::new(0..soak.episodes.unwrap_or(u64::MAX)),
    };
    let mut result = SoakResult {
        progress: Progress::default(),
        divergence: None,
        untestable: None,
        menu: menu.clone(),
        caps: caps.clone(),
    };
    for e in episodes {
        if soak.episode.is_none() && started.elapsed() >= soak.duration {
            break;
        }
        let all = ops::episode(opts.seed, e, &menu);
        let steps: Vec<usize> = match &soak.only {
            Some(only) => only.iter().copied().filter(|i| *i < all.len()).collect(),
            None => (0..all.len()).collect(),
        };
        match run_steps(opts, &all, &steps) {
            Ok(cov) => p.coverage.add(&cov),
            Err(Stop::Untestable(why)) => {
                result.untestable = Some(why);
                break;
            }
            Err(Stop::Diverged(message, cov)) => {
                p.coverage.add(&cov);
                let again = || match run_steps(opts, &all, &steps) {
                    Err(Stop::Diverged(m, _)) => Some(m),
                    _ => None,
                };
                let (steps, message) = match confirm(message, again) {
                    Ok(again) => shrink(opts, &all, steps.clone(), again),
                    Err(once) => (steps, once),
                };
                result.divergence = Some(Divergence {
                    episode: e,
                    message,
                    shown: steps.iter().map(|i| format!("{i}: {}", all[*i])).collect(),
                    steps,
                });
                p.episodes += 1;
                break;
            }
        }
        p.episodes += 1;
        p.elapsed = started.elapsed();
        progress(&p);
    }
    p.elapsed = started.elapsed();
    result.progress = p;
    result
}

/// Why an episode stopped early.
enum Stop {
    /// The device diverged from the model (what, and what the episode covered).
    Diverged(String, Coverage),
    /// Nothing could be tested.
    Untestable(String),
}

/// The faults of `asked` this run can inject: a restart needs the target in this process,
/// over the project's controllers; a link drop, the simulated fabric (a real one's link is
/// not the soak's to cut).
fn injectable(asked: &[FaultKind], opts: &Options) -> Vec<FaultKind> {
    (asked.iter().copied())
        .filter(|f| *f != FaultKind::Restart || restartable(opts))
        .filter(|f| *f != FaultKind::LinkDrop || opts.fabric.is_sim())
        .collect()
}

/// Whether the soak can restart the target: it runs in this process, over the project's
/// emulated controllers.
fn restartable(opts: &Options) -> bool {
    opts.connect.is_none() && !opts.backend.is_real()
}

/// Runs `steps` (indices into `all`) on a fresh target.
fn run_steps(opts: &Options, all: &[Op], steps: &[usize]) -> Result<Coverage, Stop> {
    let restarts = steps.iter().any(|&i| {
        matches!(
            all[i],
            Op::Fault {
                kind: FaultKind::Restart,
                ..
            }
        )
    });
    let rt = opts
        .fabric
        .runtime()
        .map_err(|e| Stop::Untestable(format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        let place = opts.fabric.for_case(opts.seed).map_err(Stop::Untestable)?;
        let sim = place.sim.clone();
        // the episode starts a target of its own (remotely: there, not the device itself)
        let dut = run::open_dut(place, opts, None, false)
            .await
            .map_err(Stop::Untestable)?;
        let format = dut.ns_format();
        // The command timeout the timeout fault meets; on a real fabric it is scaled as
        // every wait is, so that a command a loaded machine is slow to serve does not
        // time out.
        let mut config = one_subsystem(format).replace(
            "queue_depth = 64\n",
            &format!(
                "queue_depth = 64\ncmd_timeout_ms = {}\n",
                crate::framework::wait(CMD_TIMEOUT).as_millis()
            ),
        );
        // Restarts keep the media: a file the next target opens again.
        let media = restarts.then(TempNamespace::unique);
        if let Some(m) = &media {
            config = config.replacen(
                "nsid = 1\n",
                &format!("nsid = 1\nbacking = \"file:{}\"\n", m.0.display()),
                1,
            );
        }
        let rig = dut
            .target(&config)
            .await
            .map_err(|f| Stop::Untestable(format!("the target did not start: {}", f.message)))?;
        let mut ep = Episode::new(opts, (rig, config), &dut, sim);
        for &i in steps {
            let bound = crate::framework::wait(Duration::from_secs(60));
            let r = match tokio::time::timeout(bound, ep.step(&all[i])).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "no answer within {} s: the device hung",
                    bound.as_secs()
                )),
            };
            if let Err(m) = r {
                return Err(Stop::Diverged(
                    format!("step {i} `{}`: {m}", all[i]),
                    ep.coverage,
                ));
            }
        }
        if let Err(m) = ep.finish().await {
            return Err(Stop::Diverged(format!("at the end: {m}"), ep.coverage));
        }
        Ok(ep.coverage)
    })
}

/// The target's command timeout (`cmd_timeout_ms`) before scaling.
const CMD_TIMEOUT: Duration = Duration::from_millis(100);

/// What a divergence that a re-run of its episode did not show again says: it was not
/// shrunk (every shrink step would pass).
pub const NOT_AGAIN: &str = "(a re-run of the episode did not diverge: the divergence \
     depends on timing, so it was not shrunk and the replay may pass)";

/// A divergence `first` confirmed by re-running its episode (`again`: the divergence the
/// re-run shows, if any): `Ok` with the re-run's message, to shrink; `Err` with `first`
/// marked [`NOT_AGAIN`] when the re-run passed.
fn confirm(first: String, again: impl FnOnce() -> Option<String>) -> Result<String, String> {
    again().ok_or_else(|| format!("{first} {NOT_AGAIN}"))
}

/// Most runs a shrink may take.
const SHRINK_RUNS: usize = 300;

/// The fewest of `steps` that still diverge (delta debugging: drop chunks, halving their
/// size), with the divergence they show.
fn shrink(
    opts: &Options,
    all: &[Op],
    mut steps: Vec<usize>,
    mut message: String,
) -> (Vec<usize>, String) {
    let mut runs = 0;
    let mut chunk = steps.len().div_ceil(2);
    while chunk >= 1 && runs < SHRINK_RUNS {
        let mut start = 0;
        let mut dropped_any = false;
        while start < steps.len() && runs < SHRINK_RUNS {
            let end = (start + chunk).min(steps.len());
            let candidate: Vec<usize> = steps[..start]
                .iter()
                .chain(&steps[end..])
                .copied()
                .collect();
            runs += 1;
            match run_steps(opts, all, &candidate) {
                Err(Stop::Diverged(m, _)) if !candidate.is_empty() => {
                    steps = candidate;
                    message = m;
                    dropped_any = true;
                }
                _ => start = end,
            }
        }
        if !dropped_any {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    (steps, message)
}

/// The command that replays a divergence exactly, given the run's device arguments.
pub fn replay_command(seed: u64, d: &Divergence, device_args: &str) -> String {
    let only: Vec<String> = d.steps.iter().map(ToString::to_string).collect();
    format!(
        "nvmf-conform soak --seed {seed} --episode {} --only {}{}",
        d.episode,
        only.join(","),
        if device_args.is_empty() {
            String::new()
        } else {
            format!(" {device_args}")
        }
    )
}

/// The soak as a run result, for the JUnit, summary and JSON reports: one record, passed or
/// failed with the shrunk divergence and the command that replays it.
pub fn to_run(opts: &Options, r: &SoakResult, device_args: &str) -> RunResult {
    let caps = harness::report::caps_fields(&r.caps);
    let verdict = match (&r.divergence, &r.untestable) {
        (Some(d), _) => Verdict::Fail(format!(
            "episode {}: {}\nshrunk to {} step(s):\n{}\nreplay: {}",
            d.episode,
            d.message,
            d.steps.len(),
            d.shown.join("\n"),
            replay_command(opts.seed, d, device_args)
        )),
        (None, Some(why)) => Verdict::Skip(why.clone()),
        (None, None) => Verdict::Pass,
    };
    let mut rec = CaseRecord::new(
        &format!("soak.seed-{}", opts.seed),
        "soak",
        "random workloads with faults, every answer and every block checked against the model",
        verdict,
    );
    let covered: Vec<String> = r
        .progress
        .coverage
        .answers
        .iter()
        .map(|((k, o), n)| format!("{k}/{o} {n}"))
        .collect();
    rec.note = Some(format!(
        "{} episodes of {} steps, faults {:?}; covered: {}",
        r.progress.episodes,
        r.menu.steps,
        r.menu.faults.iter().map(|f| f.name()).collect::<Vec<_>>(),
        covered.join(", ")
    ));
    RunResult {
        meta: run::meta(opts, caps),
        cases: vec![rec],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::FabricChoice;

    #[test]
    fn only_the_faults_a_run_can_inject_are_drawn() {
        let sim = Options::default();
        assert_eq!(injectable(&FaultKind::ALL, &sim), FaultKind::ALL.to_vec());
        let verbs = Options {
            fabric: FabricChoice::Verbs {
                device: "rxe0".into(),
            },
            ..Options::default()
        };
        let on_verbs = injectable(&FaultKind::ALL, &verbs);
        assert!(!on_verbs.contains(&FaultKind::LinkDrop), "{on_verbs:?}");
        assert!(on_verbs.contains(&FaultKind::Restart), "{on_verbs:?}");
        assert_eq!(on_verbs.len(), FaultKind::ALL.len() - 1);
        let remote = Options {
            connect: Some(crate::options::Connect {
                addr: "127.0.0.1:4800".parse().unwrap(),
                security: reference_target::remote::Security::Insecure,
            }),
            ..verbs
        };
        let remote = injectable(&FaultKind::ALL, &remote);
        assert!(!remote.contains(&FaultKind::Restart), "{remote:?}");
        assert!(!remote.contains(&FaultKind::LinkDrop), "{remote:?}");
    }

    #[test]
    fn a_divergence_is_shrunk_only_when_a_rerun_shows_it_again() {
        // the re-run's message is the one shrinking starts from
        assert_eq!(
            confirm("first".into(), || Some("again".into())),
            Ok("again".to_string())
        );
        // a re-run that passes: the first message, marked, and no shrink
        let once = confirm("step 3 `read 1+1`: expected X".into(), || None).unwrap_err();
        assert!(once.starts_with("step 3 `read 1+1`: expected X "), "{once}");
        assert!(once.ends_with(NOT_AGAIN), "{once}");
    }
}
