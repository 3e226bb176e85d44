//! A device reached only by messages (`harness::remote`, issue 19): all of the fabric
//! contract's cases run on the simulated fabric with every device behind a `LocalLink`
//! (each call and reply written as JSON and parsed back, served by a `DeviceHost`), and
//! each ends exactly as it does on the device itself, with the same observations.

use std::sync::Arc;

use harness::fabric::contract::{self, Env, FabricFactory, Outcome};
use harness::fabric::sim::SimFabric;
use harness::fabric::Fabric;
use harness::remote::RemoteFabric;

const SEED: u64 = 0x7265_6d6f_7465;

/// Runs case `id` on a fresh fabric from `factory`: its outcome and what it observed.
fn run(id: &str, factory: FabricFactory) -> (Outcome, Vec<String>) {
    let case = contract::case(id).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let env = Env::new(factory(SEED), SEED).with_factory(factory.clone());
        let trace = env.trace.clone();
        let outcome = contract::execute(case, env).await;
        (outcome, trace.snapshot())
    })
}

#[test]
fn every_contract_case_ends_the_same_through_messages() {
    let direct: FabricFactory = Arc::new(|seed| SimFabric::new(seed) as Arc<dyn Fabric>);
    let remote: FabricFactory =
        Arc::new(|seed| RemoteFabric::new(SimFabric::new(seed)) as Arc<dyn Fabric>);
    let mut differ = Vec::new();
    let mut passed = 0;
    for case in contract::cases() {
        let id = case.meta.id.as_str();
        let (want, want_trace) = run(id, direct.clone());
        let (got, got_trace) = run(id, remote.clone());
        if format!("{got:?}") != format!("{want:?}") {
            differ.push(format!(
                "{id}: {want:?} on the device, {got:?} through messages"
            ));
        } else if got_trace != want_trace {
            differ.push(format!(
                "{id}: observed\n  {want_trace:?}\non the device, and\n  {got_trace:?}\nthrough messages"
            ));
        }
        passed += usize::from(matches!(got, Outcome::Passed));
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(passed >= 80, "only {passed} cases passed through messages");
}
