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

use std::sync::Arc;

use harness::api::Profile;
use harness::fabric::contract::{self, Env, FabricFactory, Outcome};
use harness::fabric::sim::SimFabric;
use harness::fabric::{DeviceContext, Fabric, Fault};
use harness::runner::Verdict;
use reference_target::engine::Engine;
use reference_target::pci::PciBus;
use reference_target::quirks::Quirks;
use suites::catalog;
use suites::run::{self, Options};

/// Runs the offload catalog on `profile` and fails naming every case that did not pass or
/// skip with a reason.
fn catalog_conforms(profile: &str) {
    let entries = catalog::offload();
    let opts = Options {
        profile: Profile::builtin(profile).expect("a built-in profile"),
        quirks: Quirks::none(),
        snapshots: None,
        ..Options::default()
    };
    let result = run::run(&entries, &opts, |_| {});
    assert_eq!(result.cases.len(), entries.len(), "every case has a record");
    let bad: Vec<String> = result
        .cases
        .iter()
        .filter(|c| match &c.verdict {
            Verdict::Pass => false,
            Verdict::Skip(why) => why.is_empty(),
            _ => true,
        })
        .map(|c| format!("{}: {:?}", c.id, c.verdict))
        .collect();
    assert!(bad.is_empty(), "profile {profile}:\n{}", bad.join("\n"));
    assert!(
        result.count("pass") > 0,
        "profile {profile}: nothing passed"
    );
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
    let uncaught = suites::kill::uncaught_pinned();
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
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let seed = suites::seed::case_seed(0, case.id);
        let out = rt.block_on(async {
            let factory: FabricFactory = Arc::new(ThroughEngine::sim);
            let env = Env::new(ThroughEngine::sim(seed), seed).with_factory(factory);
            let bound = std::time::Duration::from_secs(600);
            tokio::time::timeout(bound, contract::execute(case, env)).await
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
