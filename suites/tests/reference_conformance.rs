//! The reference target conforms: the offload catalog passes (or skips with a reason) on the
//! three built-in profiles, with no trace snapshots, so only behavioural checks count (a CQE
//! field, a status, data, a counter, an event), never a trace that merely differs.
//!
//! The device context software uses is the engine's (it wraps the real device): the fabric
//! contract must hold through it as on the fabric itself.
//!
//! Each quirk must also still be caught by the case named for its rule
//! ([`suites::kill::PINNED`]): a mutant that defeats a quirk's violation, or the plumbing
//! that turns quirks on, is caught there.
//!
//! This is the test cargo-mutants runs against each mutant of the target
//! (`docs/mutation.md`): keep it fast.

use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;

use harness::api::Profile;
use harness::backend::emulated::PciBus;
use harness::fabric::contract::{self, Env, FabricFactory, Outcome};
use harness::fabric::sim::SimFabric;
use harness::fabric::{DeviceContext, Fabric, Fault};
use harness::runner::Verdict;
use reference_target::engine::Engine;
use reference_target::quirks::Quirks;
use suites::catalog;
use suites::run::{self, Options};

/// Real time a case may run without a verdict before the test fails: the catalog's cases
/// take milliseconds each (their waits are on the virtual clock), so a case still running
/// after this spins without yielding, which no virtual bound can cut short. A hung device
/// is a failure, as under `nvmf-conform run --isolate case`'s watchdog.
const SPIN_BOUND: Duration = Duration::from_secs(10);

/// Runs `f` on a thread of its own and returns what it returns; panics naming `what` when it
/// gives nothing within [`SPIN_BOUND`] (the thread is left behind: the test process ends
/// with it) or panics itself.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(SPIN_BOUND) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!(
            "{what}: nothing within {} s of real time: the target spins",
            SPIN_BOUND.as_secs()
        ),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// Runs the offload catalog on `profile` and fails at the first case that did not pass or
/// skip with a reason (the cases after it are not run: a broken target is known broken at
/// once, and a mutant that makes every case spin costs one case's time, not the catalog's).
/// Each case runs on a thread of its own, so that one that spins is reported after
/// [`SPIN_BOUND`] (its thread is left behind; the test process ends with it).
fn catalog_conforms(profile: &str) {
    let opts = Options {
        profile: Profile::builtin(profile).expect("a built-in profile"),
        quirks: Quirks::none(),
        snapshots: None,
        ..Options::default()
    };
    let mut passed = 0;
    for e in catalog::offload() {
        let id = e.id.clone();
        let case_opts = opts.clone();
        let rec = bounded(&format!("profile {profile}: {id}"), move || {
            let seed = suites::seed::case_seed(case_opts.seed, &e.id);
            run::run_one(&e, seed, &case_opts)
        });
        match &rec.verdict {
            Verdict::Pass => passed += 1,
            Verdict::Skip(why) if !why.is_empty() => {}
            v => panic!(
                "profile {profile}: {id}: {v:?} (the first case that does not conform; the \
                 ones after it were not run: `nvmf-conform run --profile {profile}` runs them all)"
            ),
        }
    }
    assert!(passed > 0, "profile {profile}: nothing passed");
}

#[test]
fn catalog_conforms_on_full() {
    catalog_conforms("full");
}

#[test]
fn catalog_conforms_on_minimal() {
    catalog_conforms("minimal");
}

#[test]
fn catalog_conforms_on_tight() {
    catalog_conforms("tight");
}

#[test]
fn each_quirk_is_caught_by_its_pinned_case() {
    let uncaught = bounded("the quirks' pinned cases", suites::kill::uncaught_pinned);
    assert!(uncaught.is_empty(), "{}", uncaught.join("\n"));
}

/// A simulated fabric whose devices open through a reference engine (`full` profile): what
/// a case gets from `open` is the engine's device context.
struct ThroughEngine(Arc<dyn Fabric>);

impl ThroughEngine {
    fn sim(seed: u64) -> Arc<dyn Fabric> {
        Arc::new(ThroughEngine(SimFabric::new(seed)))
    }
}

impl Fabric for ThroughEngine {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn devices(&self) -> harness::fabric::Result<Vec<String>> {
        self.0.devices()
    }

    fn open(&self, device: &str) -> harness::fabric::Result<Arc<dyn DeviceContext>> {
        let real = self.0.open(device)?;
        let p = Profile::builtin("full").expect("a built-in profile");
        let engine = Engine::with_limits(real, p.caps, p.device, Quirks::none(), PciBus::new());
        Ok(engine.context())
    }

    fn inject(&self, fault: Fault) -> harness::fabric::Result<()> {
        self.0.inject(fault)
    }
}

#[test]
fn fabric_contract_holds_through_the_engine_context() {
    let mut bad = Vec::new();
    let mut passed = 0;
    for case in contract::cases() {
        let out = bounded(&case.id, move || {
            let rt = harness::fabric::sim::runtime().expect("a runtime");
            let seed = suites::seed::case_seed(0, &case.id);
            rt.block_on(async {
                let factory: FabricFactory = Arc::new(ThroughEngine::sim);
                let env = Env::new(ThroughEngine::sim(seed), seed).with_factory(factory);
                let bound = Duration::from_secs(600);
                tokio::time::timeout(bound, contract::execute(case, env)).await
            })
        });
        match out {
            Ok(Outcome::Passed) => passed += 1,
            Ok(Outcome::Skipped(why)) => bad.push(format!("{}: skipped: {why}", case.id)),
            Ok(Outcome::Failed(m)) => bad.push(format!("{}: {m}", case.id)),
            Err(_) => bad.push(format!("{}: no verdict in 600 s of virtual time", case.id)),
        }
    }
    assert!(
        bad.is_empty(),
        "{} of the contract's cases:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert_eq!(passed, contract::cases().len());
}
