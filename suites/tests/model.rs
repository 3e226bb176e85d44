//! Model-based property test: random sequences of backend-controller and namespace-mapping
//! calls against the reference device, each result compared with a small model of the
//! rules (namespace map shared by the SRQ's controllers, limits, argument checks). A
//! failing sequence shrinks to a minimal one; proptest prints it and stores its seed in
//! `proptest-regressions/` so it replays.

use std::collections::BTreeMap;

use harness::api::{CtrlHandle, NsMapping, Profile};
use nix::errno::Errno;
use proptest::prelude::*;
use reference_target::quirks::Quirks;
use suites::framework::Dut;

/// One call.
#[derive(Debug, Clone)]
enum Op {
    CreateCtrl,
    RemoveCtrl(usize),
    Map { slot: usize, fe: u32, lba: u32 },
    Unmap { slot: usize, fe: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::CreateCtrl),
        1 => (0usize..4).prop_map(Op::RemoveCtrl),
        4 => (0usize..4, 0u32..20, prop::sample::select(vec![512u32, 4096, 1000]))
            .prop_map(|(slot, fe, lba)| Op::Map { slot, fe, lba }),
        2 => (0usize..4, 0u32..20).prop_map(|(slot, fe)| Op::Unmap { slot, fe }),
    ]
}

/// What the model knows: controllers by slot (live or removed), and the SRQ's map.
#[derive(Default)]
struct Model {
    /// slot → (handle, alive)
    ctrls: Vec<(CtrlHandle, bool)>,
    /// fe_nsid → slot
    map: BTreeMap<u32, usize>,
}

/// The expected outcome of `op` (None = success), updating the model on success.
fn expect(m: &mut Model, caps: &harness::api::NvmfCaps, srq_max_ns: u32, op: &Op) -> Option<Errno> {
    match *op {
        Op::CreateCtrl => {
            let live = m.ctrls.iter().filter(|c| c.1).count() as u32;
            if live >= caps.max_srq_backend_ctrls {
                Some(Errno::ENOSPC)
            } else if live >= caps.max_backend_ctrls_total {
                Some(Errno::ENOMEM)
            } else {
                None
            }
        }
        Op::RemoveCtrl(slot) => match m.ctrls.get(slot) {
            None => unreachable!("callers skip empty slots"),
            Some((_, false)) => Some(Errno::EINVAL),
            Some(_) if m.map.values().any(|s| *s == slot) => Some(Errno::EBUSY),
            Some(_) => {
                m.ctrls[slot].1 = false;
                None
            }
        },
        Op::Map { slot, fe, lba } => {
            let alive = m.ctrls.get(slot).is_some_and(|c| c.1);
            let bad_nsid = fe == 0 || (caps.max_frontend_nsid != 0 && fe > caps.max_frontend_nsid);
            if !alive || bad_nsid {
                Some(Errno::EINVAL)
            } else if !caps.supports_lba_data_size(lba) {
                Some(Errno::EOPNOTSUPP)
            } else if m.map.contains_key(&fe) {
                Some(Errno::EEXIST)
            } else if m.map.len() as u32 >= srq_max_ns {
                Some(Errno::ENOSPC)
            } else if m.map.len() as u32 >= caps.max_namespaces {
                Some(Errno::ENOMEM)
            } else {
                m.map.insert(fe, slot);
                None
            }
        }
        Op::Unmap { slot, fe } => {
            let alive = m.ctrls.get(slot).is_some_and(|c| c.1);
            let bad_nsid = fe == 0 || (caps.max_frontend_nsid != 0 && fe > caps.max_frontend_nsid);
            if !alive || bad_nsid {
                Some(Errno::EINVAL)
            } else if m.map.get(&fe) != Some(&slot) {
                Some(Errno::ENOENT)
            } else {
                m.map.remove(&fe);
                None
            }
        }
    }
}

/// Runs `ops` on a fresh `tight` reference device with `quirks`; returns the first
/// divergence from the model.
fn check_sequence(ops: &[Op], quirks: Quirks) -> Result<(), String> {
    let rt = harness::fabric::sim::runtime().expect("runtime");
    rt.block_on(async {
        let dut = Dut::reference(1, &Profile::builtin("tight").unwrap(), quirks);
        let (pd, staging, attrs, srq) = dut.srq().map_err(|e| e.message)?;
        let caps = dut.caps.clone();
        let mut model = Model::default();
        for (i, op) in ops.iter().enumerate() {
            let slot_empty = |s: usize| s >= model.ctrls.len();
            let got: Option<Errno> = match *op {
                Op::CreateCtrl => {
                    let want = expect(&mut model, &caps, attrs.max_namespaces, op);
                    let a = dut
                        .backends()
                        .and_then(|b| b.create(pd, &attrs, &staging, 1, &[(1, dut.ns_format())]))
                        .map_err(|e| e.message)?;
                    let got = match dut.provider.create_nvme_ctrl(srq.handle, &a) {
                        Ok(h) => {
                            model.ctrls.push((h, true));
                            None
                        }
                        Err(e) => Some(e.errno()),
                    };
                    if got != want {
                        return Err(format!("step {i} {op:?}: expected {want:?}, got {got:?}"));
                    }
                    continue;
                }
                Op::RemoveCtrl(s) | Op::Map { slot: s, .. } | Op::Unmap { slot: s, .. }
                    if slot_empty(s) =>
                {
                    continue
                }
                Op::RemoveCtrl(s) => dut
                    .provider
                    .remove_nvme_ctrl(srq.handle, model.ctrls[s].0)
                    .err()
                    .map(|e| e.errno()),
                Op::Map { slot, fe, lba } => dut
                    .provider
                    .map_nsid(
                        model.ctrls[slot].0,
                        &NsMapping {
                            fe_nsid: fe,
                            nvme_nsid: 1,
                            lba_data_size: lba,
                        },
                    )
                    .err()
                    .map(|e| e.errno()),
                Op::Unmap { slot, fe } => dut
                    .provider
                    .unmap_nsid(model.ctrls[slot].0, fe)
                    .err()
                    .map(|e| e.errno()),
            };
            let want = expect(&mut model, &caps, attrs.max_namespaces, op);
            if got != want {
                return Err(format!("step {i} {op:?}: expected {want:?}, got {got:?}"));
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn device_follows_the_mapping_model(ops in prop::collection::vec(op(), 1..40)) {
        if let Err(e) = check_sequence(&ops, Quirks::none()) {
            prop_assert!(false, "{}", e);
        }
    }
}

#[test]
fn the_model_catches_a_broken_rule() {
    // EEXIST checked per controller (a quirk): mapping one fe_nsid on two controllers of
    // the SRQ diverges from the model at the second map.
    let ops = [
        Op::CreateCtrl,
        Op::CreateCtrl,
        Op::Map {
            slot: 0,
            fe: 3,
            lba: 4096,
        },
        Op::Map {
            slot: 1,
            fe: 3,
            lba: 4096,
        },
    ];
    assert_eq!(check_sequence(&ops, Quirks::none()), Ok(()));
    let e = check_sequence(
        &ops,
        Quirks::one(reference_target::quirks::Quirk::EexistPerCtrl),
    )
    .unwrap_err();
    assert!(e.starts_with("step 3") && e.contains("EEXIST"), "{e}");
}
