//! The verbs half of the plugin ABI carries everything a fabric user does: every case of
//! the fabric contract (`harness::fabric::contract`) runs on the simulated fabric with each
//! opened device context exported as `struct nvmf_verbs_ops` and imported back
//! (`harness::ffi::bridge::loopback_verbs`), and ends as it does without the ABI.

use std::sync::Arc;

use harness::fabric::contract::{self, Env, FabricFactory, Outcome};
use harness::fabric::sim::SimFabric;
use harness::fabric::{DeviceContext, Fabric, Fault, Result};
use harness::ffi::bridge::loopback_verbs;

/// The simulated fabric, every device opened through the C vtable.
struct Loopback(Arc<SimFabric>);

impl Fabric for Loopback {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    fn devices(&self) -> Result<Vec<String>> {
        self.0.devices()
    }

    fn open(&self, device: &str) -> Result<Arc<dyn DeviceContext>> {
        Ok(Arc::new(loopback_verbs(self.0.open(device)?)))
    }

    fn inject(&self, fault: Fault) -> Result<()> {
        self.0.inject(fault)
    }
}

fn outcome(id: &str, seed: u64, through_abi: bool) -> Outcome {
    let case = contract::case(id).expect("listed");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let factory: FabricFactory = if through_abi {
        Arc::new(|seed| Arc::new(Loopback(SimFabric::new(seed))) as Arc<dyn Fabric>)
    } else {
        Arc::new(|seed| SimFabric::new(seed) as Arc<dyn Fabric>)
    };
    rt.block_on(async move {
        let env = Env::new(factory(seed), seed).with_factory(factory.clone());
        contract::execute(case, env).await
    })
}

#[test]
fn every_contract_case_ends_the_same_through_the_abi() {
    let mut differ = Vec::new();
    let mut passed = 0;
    for case in contract::cases() {
        let direct = outcome(&case.id, 0x5eed, false);
        let abi = outcome(&case.id, 0x5eed, true);
        let same = matches!(
            (&direct, &abi),
            (Outcome::Passed, Outcome::Passed) | (Outcome::Skipped(_), Outcome::Skipped(_))
        );
        if !same {
            differ.push(format!(
                "{}: direct {direct:?}, through the ABI {abi:?}",
                case.id
            ));
        }
        if matches!(abi, Outcome::Passed) {
            passed += 1;
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(passed >= 90, "only {passed} cases passed through the ABI");
}
