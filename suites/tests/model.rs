//! Model-based property test: random sequences of NVMe-oF SRQ, backend-controller and
//! namespace-mapping calls against the reference device, each result compared with the
//! soak's model of the rules (`suites::soak::api`: a namespace map per SRQ shared by its
//! controllers, controllers belonging to one SRQ, limits, argument checks). A failing sequence shrinks to a minimal one; proptest prints it and
//! stores its seed in `proptest-regressions/` so it replays.

use harness::api::Profile;
use proptest::prelude::*;
use reference_target::quirks::Quirks;
use suites::framework::Dut;
use suites::soak::api::{self, Call};

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        1 => Just(Call::CreateSrq),
        1 => (0usize..3).prop_map(Call::DestroySrq),
        2 => (0usize..3).prop_map(Call::CreateCtrl),
        1 => (0usize..4, prop::bool::weighted(0.25))
            .prop_map(|(slot, other_srq)| Call::RemoveCtrl { slot, other_srq }),
        4 => (0usize..4, 0u32..20, prop::sample::select(vec![512u32, 4096, 1000]))
            .prop_map(|(slot, fe, lba)| Call::Map { slot, fe, lba }),
        2 => (0usize..4, 0u32..20).prop_map(|(slot, fe)| Call::Unmap { slot, fe }),
    ]
}

/// Runs `calls` on a fresh `tight` reference device with `quirks`; returns the first
/// divergence from the model.
fn check_sequence(calls: &[Call], quirks: Quirks) -> Result<(), String> {
    let rt = harness::fabric::sim::runtime().expect("runtime");
    rt.block_on(async {
        let dut = Dut::reference(1, &Profile::builtin("tight").unwrap(), quirks);
        api::run(&dut, calls, |_, _| {})
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn device_follows_the_mapping_model(calls in prop::collection::vec(call(), 1..40)) {
        if let Err(e) = check_sequence(&calls, Quirks::none()) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// Maps `fe` with 4096-byte blocks on the controller in `slot`.
fn map(slot: usize, fe: u32) -> Call {
    Call::Map {
        slot,
        fe,
        lba: 4096,
    }
}

#[test]
fn the_model_catches_a_broken_rule() {
    // EEXIST checked per controller (a quirk): mapping one fe_nsid on two controllers of
    // the SRQ diverges from the model at the second map.
    let calls = [
        Call::CreateCtrl(0),
        Call::CreateCtrl(0),
        map(0, 3),
        map(1, 3),
    ];
    assert_eq!(check_sequence(&calls, Quirks::none()), Ok(()));
    let e = check_sequence(
        &calls,
        Quirks::one(reference_target::quirks::Quirk::EexistPerCtrl),
    )
    .unwrap_err();
    assert!(e.starts_with("call 3") && e.contains("EEXIST"), "{e}");
}

#[test]
fn srqs_keep_their_own_namespace_maps_and_controllers() {
    use nix::errno::Errno;
    let calls = [
        Call::CreateSrq,
        Call::CreateCtrl(0),
        Call::CreateCtrl(1),
        // the same fe_nsid on two SRQs: independent maps
        map(0, 3),
        map(1, 3),
        Call::DestroySrq(1),
        Call::RemoveCtrl {
            slot: 1,
            other_srq: true,
        },
        Call::Unmap { slot: 1, fe: 3 },
        Call::RemoveCtrl {
            slot: 1,
            other_srq: false,
        },
        Call::DestroySrq(1),
        Call::CreateCtrl(1),
        Call::DestroySrq(1),
    ];
    let want = [
        None,
        None,
        None,
        None,
        None,
        Some(Errno::EBUSY),
        Some(Errno::EINVAL),
        None,
        None,
        None,
        Some(Errno::EINVAL),
        Some(Errno::EINVAL),
    ];
    let rt = harness::fabric::sim::runtime().expect("runtime");
    let mut seen = Vec::new();
    rt.block_on(async {
        let dut = Dut::reference(1, &Profile::builtin("full").unwrap(), Quirks::none());
        api::run(&dut, &calls, |_, e| seen.push(e))
    })
    .expect("the reference device follows the model");
    assert_eq!(seen, want);
}
