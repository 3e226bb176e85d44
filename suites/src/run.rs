//! Runs catalog entries: each on a fresh fabric, a fresh paused-clock runtime, its own seed,
//! and a time bound, so one hung or crashing case becomes a verdict, never a stuck run.
//!
//! With [`Options::snapshots`] set, an offload case that passed its assertions also has its
//! trace compared with its reviewed snapshot ([`crate::snapshot`]): a difference makes it a
//! failure whose message ends with the diff; a device whose caps are not the `full`
//! profile's, or a missing snapshot file, leaves the verdict alone and says so in the
//! record's note.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use harness::api::Profile;
use harness::fabric::contract::{self, Env, FabricFactory, Outcome};
use harness::fabric::sim::SimFabric;
use harness::fabric::Fabric;
use harness::runner::{CaseRecord, RunMeta, RunResult, Verdict};
use reference_target::quirks::Quirks;

use crate::catalog::{Body, Entry};
use crate::offload::{self, Dut};
use crate::seed::case_seed;
use crate::snapshot::{self, Comparison};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The run's seed.
    pub seed: u64,
    /// Longest a case may take (virtual time on `sim`).
    pub case_bound: Duration,
    /// The reference target's capability profile.
    pub profile: Profile,
    /// Deliberate violations the reference target commits.
    pub quirks: Quirks,
    /// Where the trace snapshots are ([`snapshot::default_dir`] for the command); `None`
    /// compares no trace (the default here, so that library users such as the kill matrix
    /// judge by assertions alone).
    pub snapshots: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            case_bound: Duration::from_secs(600),
            profile: Profile::builtin("full").expect("the full profile ships with the code"),
            quirks: Quirks::none(),
            snapshots: None,
        }
    }
}

impl Options {
    /// How the device under test is named in reports: `reference:PROFILE[+quirk…]`.
    pub fn target_name(&self) -> String {
        let mut s = format!("reference:{}", self.profile.name);
        for q in self.quirks.iter() {
            s.push('+');
            s.push_str(q.name());
        }
        s
    }
}

/// Runs `entries` in order and returns the run's result.
pub fn run(entries: &[Entry], opts: &Options, mut progress: impl FnMut(&CaseRecord)) -> RunResult {
    let mut cases = Vec::with_capacity(entries.len());
    for e in entries {
        let rec = run_one(e, case_seed(opts.seed, &e.id), opts);
        progress(&rec);
        cases.push(rec);
    }
    RunResult {
        meta: RunMeta {
            target: opts.target_name(),
            fabric: "sim".into(),
            seed: opts.seed,
            shard: None,
            version: env!("CARGO_PKG_VERSION").into(),
        },
        cases,
    }
}

/// Runs one entry with `seed` on a fresh simulated fabric.
pub fn run_one(entry: &Entry, seed: u64, opts: &Options) -> CaseRecord {
    let bound = opts.case_bound;
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    let (verdict, trace, note) = match rt {
        Err(e) => (
            Verdict::Error(format!("cannot start a runtime: {e}")),
            Vec::new(),
            None,
        ),
        Ok(rt) => rt.block_on(async {
            match &entry.body {
                Body::Offload(case) => {
                    let dut = Dut::reference(seed, &opts.profile, opts.quirks.clone());
                    let rec = dut.rec.clone();
                    let caps = dut.caps.clone();
                    if let Some(why) = case.unmet(&dut.caps, dut.backends.is_some()) {
                        return (Verdict::Skip(why), Vec::new(), None);
                    }
                    let body = std::panic::AssertUnwindSafe((case.body)(dut)).catch_unwind();
                    let verdict = match tokio::time::timeout(bound, body).await {
                        Ok(Ok(Ok(()))) => Verdict::Pass,
                        Ok(Ok(Err(offload::Failure(m)))) => Verdict::Fail(m),
                        Ok(Err(p)) => {
                            Verdict::Error(format!("the case panicked: {}", panic_text(&*p)))
                        }
                        Err(_) => Verdict::Error(format!(
                            "no verdict within {} s of virtual time: the device hung",
                            bound.as_secs()
                        )),
                    };
                    let trace: Vec<String> = rec.lines().iter().map(ToString::to_string).collect();
                    match (&verdict, &opts.snapshots) {
                        (Verdict::Pass, Some(dir)) => {
                            let (verdict, note) =
                                against_snapshot(&entry.id, &trace, &caps, dir, opts);
                            (verdict, trace, note)
                        }
                        _ => (verdict, trace, None),
                    }
                }
                Body::Fabric(case) => {
                    let fabric: Arc<dyn Fabric> = SimFabric::new(seed);
                    let factory: FabricFactory = Arc::new(|s| SimFabric::new(s) as Arc<dyn Fabric>);
                    let env = Env::new(fabric, seed).with_factory(factory);
                    let trace = env.trace.clone();
                    let verdict =
                        match tokio::time::timeout(bound, contract::execute(case, env)).await {
                            Ok(Outcome::Passed) => Verdict::Pass,
                            Ok(Outcome::Failed(m)) => Verdict::Fail(m),
                            Ok(Outcome::Skipped(m)) => Verdict::Skip(m),
                            Err(_) => Verdict::Error(format!(
                                "no verdict within {} s of virtual time: the case hung",
                                bound.as_secs()
                            )),
                        };
                    (verdict, trace.snapshot(), None)
                }
            }
        }),
    };
    CaseRecord {
        id: entry.id.clone(),
        area: entry.area.clone(),
        description: entry.description.to_string(),
        verdict,
        wall: started.elapsed(),
        trace,
        note,
    }
}

/// The verdict and note of a case that passed its assertions, once its trace is compared
/// with its snapshot in `dir` (see the module docs).
fn against_snapshot(
    id: &str,
    trace: &[String],
    caps: &harness::api::NvmfCaps,
    dir: &std::path::Path,
    opts: &Options,
) -> (Verdict, Option<String>) {
    if !snapshot::applies(caps) {
        return (
            Verdict::Pass,
            Some(format!(
                "trace not compared with its snapshot: the device's caps are not the `{}` \
                 profile's, so its API calls legitimately differ",
                snapshot::PROFILE
            )),
        );
    }
    match snapshot::compare(dir, id, trace, &opts.target_name()) {
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

/// The text of a panic payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".into())
}
