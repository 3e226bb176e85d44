//! Runs catalog entries: each on a fresh fabric, a fresh paused-clock runtime, its own seed,
//! and a time bound, so one hung or crashing case becomes a verdict, never a stuck run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::fabric::contract::{self, Env, FabricFactory, Outcome};
use harness::fabric::sim::SimFabric;
use harness::fabric::Fabric;
use harness::runner::{CaseRecord, RunMeta, RunResult, Verdict};

use crate::catalog::{Body, Entry};
use crate::seed::case_seed;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The run's seed.
    pub seed: u64,
    /// Longest a case may take (virtual time on `sim`).
    pub case_bound: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            case_bound: Duration::from_secs(600),
        }
    }
}

/// Runs `entries` in order and returns the run's result.
pub fn run(entries: &[Entry], opts: &Options, mut progress: impl FnMut(&CaseRecord)) -> RunResult {
    let mut cases = Vec::with_capacity(entries.len());
    for e in entries {
        let rec = run_one(e, case_seed(opts.seed, &e.id), opts.case_bound);
        progress(&rec);
        cases.push(rec);
    }
    RunResult {
        meta: RunMeta {
            target: "fabric:sim".into(),
            fabric: "sim".into(),
            seed: opts.seed,
            shard: None,
            version: env!("CARGO_PKG_VERSION").into(),
        },
        cases,
    }
}

/// Runs one entry with `seed` on a fresh simulated fabric.
pub fn run_one(entry: &Entry, seed: u64, bound: Duration) -> CaseRecord {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build();
    let (verdict, trace) = match rt {
        Err(e) => (
            Verdict::Error(format!("cannot start a runtime: {e}")),
            Vec::new(),
        ),
        Ok(rt) => rt.block_on(async {
            match entry.body {
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
                    (verdict, trace.snapshot())
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
    }
}
