//! The soak's steps on the offload API's own objects: backend controllers of an SRQ and
//! namespace mappings, created, removed, mapped and unmapped at random on a fresh device,
//! each call's result compared with a model of the rules (the namespace map shared by the
//! SRQ's controllers, the limits, the argument checks). `suites/tests/model.rs` drives the
//! same model through proptest.

use std::collections::BTreeMap;
use std::fmt;

use harness::api::{CtrlHandle, NsMapping, NvmfCaps};
use nix::errno::Errno;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::framework::Dut;

/// One call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `create_nvme_ctrl` on the SRQ, with a fresh emulated backend.
    CreateCtrl,
    /// `remove_nvme_ctrl` of the controller in this slot.
    RemoveCtrl(usize),
    /// `map_nsid` on the controller in `slot`.
    Map {
        /// The controller's slot.
        slot: usize,
        /// Front-end NSID.
        fe: u32,
        /// LBA data size.
        lba: u32,
    },
    /// `unmap_nsid` on the controller in `slot`.
    Unmap {
        /// The controller's slot.
        slot: usize,
        /// Front-end NSID.
        fe: u32,
    },
}

impl Call {
    /// The call's name, as coverage counts it.
    pub fn kind(&self) -> &'static str {
        match self {
            Call::CreateCtrl => "api:create-ctrl",
            Call::RemoveCtrl(_) => "api:remove-ctrl",
            Call::Map { .. } => "api:map",
            Call::Unmap { .. } => "api:unmap",
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Call::CreateCtrl => write!(f, "create ctrl"),
            Call::RemoveCtrl(s) => write!(f, "remove ctrl {s}"),
            Call::Map { slot, fe, lba } => write!(f, "map fe {fe} on ctrl {slot} ({lba} B)"),
            Call::Unmap { slot, fe } => write!(f, "unmap fe {fe} on ctrl {slot}"),
        }
    }
}

/// Calls of one step, drawn from `rng`.
pub fn calls(rng: &mut ChaCha8Rng, n: usize) -> Vec<Call> {
    // Mostly a few NSIDs, so that calls meet one another's mappings; sometimes one out of
    // range (0, beyond max_frontend_nsid).
    let fe = |rng: &mut ChaCha8Rng| {
        if rng.random_bool(0.8) {
            rng.random_range(1..=6)
        } else {
            rng.random_range(0..20)
        }
    };
    (0..n)
        .map(|_| match rng.random_range(0..9u32) {
            0 | 1 => Call::CreateCtrl,
            2 => Call::RemoveCtrl(rng.random_range(0..4)),
            3..=6 => Call::Map {
                slot: rng.random_range(0..4),
                fe: fe(rng),
                lba: [512, 4096, 1000, 520, 8192][rng.random_range(0..5)],
            },
            _ => Call::Unmap {
                slot: rng.random_range(0..4),
                fe: fe(rng),
            },
        })
        .collect()
}

/// What the model knows: controllers by slot (live or removed), and the SRQ's map.
#[derive(Debug, Default)]
pub struct Rules {
    /// slot → (handle, alive)
    ctrls: Vec<(CtrlHandle, bool)>,
    /// fe_nsid → slot
    map: BTreeMap<u32, usize>,
}

impl Rules {
    /// Whether a call names a slot no controller was created in (such calls are not made).
    pub fn empty_slot(&self, call: &Call) -> bool {
        match *call {
            Call::CreateCtrl => false,
            Call::RemoveCtrl(s) | Call::Map { slot: s, .. } | Call::Unmap { slot: s, .. } => {
                s >= self.ctrls.len()
            }
        }
    }

    /// The controller in `slot`.
    pub fn handle(&self, slot: usize) -> CtrlHandle {
        self.ctrls[slot].0
    }

    /// A controller was created.
    pub fn created(&mut self, h: CtrlHandle) {
        self.ctrls.push((h, true));
    }

    /// The expected outcome of `call` (None = success), updating the model on success
    /// (except for a created controller: [`Rules::created`]). `srq_max_ns`: the SRQ's
    /// `max_namespaces`.
    pub fn expect(&mut self, caps: &NvmfCaps, srq_max_ns: u32, call: &Call) -> Option<Errno> {
        let bad_nsid =
            |fe: u32| fe == 0 || (caps.max_frontend_nsid != 0 && fe > caps.max_frontend_nsid);
        match *call {
            Call::CreateCtrl => {
                let live = self.ctrls.iter().filter(|c| c.1).count() as u32;
                if live >= caps.max_srq_backend_ctrls {
                    Some(Errno::ENOSPC)
                } else if live >= caps.max_backend_ctrls_total {
                    Some(Errno::ENOMEM)
                } else {
                    None
                }
            }
            Call::RemoveCtrl(slot) => match self.ctrls.get(slot) {
                None | Some((_, false)) => Some(Errno::EINVAL),
                Some(_) if self.map.values().any(|s| *s == slot) => Some(Errno::EBUSY),
                Some(_) => {
                    self.ctrls[slot].1 = false;
                    None
                }
            },
            Call::Map { slot, fe, lba } => {
                let alive = self.ctrls.get(slot).is_some_and(|c| c.1);
                if !alive || bad_nsid(fe) {
                    Some(Errno::EINVAL)
                } else if !caps.supports_lba_data_size(lba) {
                    Some(Errno::EOPNOTSUPP)
                } else if self.map.contains_key(&fe) {
                    Some(Errno::EEXIST)
                } else if self.map.len() as u32 >= srq_max_ns {
                    Some(Errno::ENOSPC)
                } else if self.map.len() as u32 >= caps.max_namespaces {
                    Some(Errno::ENOMEM)
                } else {
                    self.map.insert(fe, slot);
                    None
                }
            }
            Call::Unmap { slot, fe } => {
                let alive = self.ctrls.get(slot).is_some_and(|c| c.1);
                if !alive || bad_nsid(fe) {
                    Some(Errno::EINVAL)
                } else if self.map.get(&fe) != Some(&slot) {
                    Some(Errno::ENOENT)
                } else {
                    self.map.remove(&fe);
                    None
                }
            }
        }
    }
}

/// The errno a result name, for coverage.
pub fn outcome(e: Option<Errno>) -> &'static str {
    match e {
        None => "ok",
        Some(Errno::EINVAL) => "EINVAL",
        Some(Errno::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(Errno::EEXIST) => "EEXIST",
        Some(Errno::ENOSPC) => "ENOSPC",
        Some(Errno::ENOMEM) => "ENOMEM",
        Some(Errno::EBUSY) => "EBUSY",
        Some(Errno::ENOENT) => "ENOENT",
        Some(_) => "other",
    }
}

/// Runs `calls` on `dut`'s device (a fresh SRQ); each result is checked against the
/// rules, and reported (call, outcome) to `seen`. `Err` names the first divergence.
pub fn run(
    dut: &Dut,
    calls: &[Call],
    mut seen: impl FnMut(&Call, Option<Errno>),
) -> Result<(), String> {
    let (pd, staging, attrs, srq) = dut.srq().map_err(|e| e.message)?;
    let caps = dut.caps.clone();
    let mut rules = Rules::default();
    for (i, call) in calls.iter().enumerate() {
        if rules.empty_slot(call) {
            continue;
        }
        let want = rules.expect(&caps, attrs.max_namespaces, call);
        let got = match *call {
            Call::CreateCtrl => {
                let a = dut
                    .backends()
                    .and_then(|b| b.create(pd, &attrs, &staging, 1, &[(1, dut.ns_format())]))
                    .map_err(|e| e.message)?;
                match dut.provider.create_nvme_ctrl(srq.handle, &a) {
                    Ok(h) => {
                        if want.is_none() {
                            rules.created(h);
                        }
                        None
                    }
                    Err(e) => Some(e.errno()),
                }
            }
            Call::RemoveCtrl(s) => dut
                .provider
                .remove_nvme_ctrl(srq.handle, rules.handle(s))
                .err()
                .map(|e| e.errno()),
            Call::Map { slot, fe, lba } => dut
                .provider
                .map_nsid(
                    rules.handle(slot),
                    &NsMapping {
                        fe_nsid: fe,
                        nvme_nsid: 1,
                        lba_data_size: lba,
                    },
                )
                .err()
                .map(|e| e.errno()),
            Call::Unmap { slot, fe } => dut
                .provider
                .unmap_nsid(rules.handle(slot), fe)
                .err()
                .map(|e| e.errno()),
        };
        if got != want {
            return Err(format!(
                "call {i} `{call}`: expected {}, got {}",
                outcome(want),
                outcome(got)
            ));
        }
        seen(call, got);
    }
    Ok(())
}
