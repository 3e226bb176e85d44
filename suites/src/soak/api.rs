//! The soak's steps on the offload API's own objects: NVMe-oF SRQs, their backend
//! controllers and namespace mappings, created, destroyed, removed, mapped and unmapped at
//! random on a fresh device, each call's result compared with a model of the rules (one
//! namespace map per SRQ shared by its controllers, controllers belonging to one SRQ, the
//! per-SRQ and device limits, the argument checks: `harness::api::check`).
//! `suites/tests/model.rs` drives the same model through proptest.

use std::collections::BTreeMap;
use std::fmt;

use harness::api::{CtrlHandle, NsMapping, NvmfCaps, NvmfSrq, NvmfSrqAttrs, SrqHandle};
use harness::fabric::{MrInfo, PdId};
use nix::errno::Errno;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::framework::Dut;

/// One call. SRQ slot 0 is the SRQ every step starts with; controllers have slots of their
/// own, in the order they were created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `create_srq` with valid attributes (its own staging buffer).
    CreateSrq,
    /// `destroy_srq` of the SRQ in this slot.
    DestroySrq(usize),
    /// `create_nvme_ctrl` on the SRQ in this slot, with a fresh emulated backend.
    CreateCtrl(usize),
    /// `remove_nvme_ctrl` of the controller in `slot`, named with its own SRQ or, when
    /// `other_srq` and another live SRQ exists, with that one (EINVAL).
    RemoveCtrl {
        /// The controller's slot.
        slot: usize,
        /// Name it with another SRQ.
        other_srq: bool,
    },
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
            Call::CreateSrq => "api:create-srq",
            Call::DestroySrq(_) => "api:destroy-srq",
            Call::CreateCtrl(_) => "api:create-ctrl",
            Call::RemoveCtrl { .. } => "api:remove-ctrl",
            Call::Map { .. } => "api:map",
            Call::Unmap { .. } => "api:unmap",
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Call::CreateSrq => write!(f, "create srq"),
            Call::DestroySrq(s) => write!(f, "destroy srq {s}"),
            Call::CreateCtrl(s) => write!(f, "create ctrl on srq {s}"),
            Call::RemoveCtrl { slot, other_srq } => write!(
                f,
                "remove ctrl {slot}{}",
                if other_srq { " via another srq" } else { "" }
            ),
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
        .map(|_| match rng.random_range(0..16u32) {
            0 => Call::CreateSrq,
            1 => Call::DestroySrq(rng.random_range(0..3)),
            // Mostly on the first SRQ, so that its controllers meet one another's mappings.
            2..=4 => Call::CreateCtrl(if rng.random_bool(0.7) {
                0
            } else {
                rng.random_range(1..3)
            }),
            5 => Call::RemoveCtrl {
                slot: rng.random_range(0..4),
                other_srq: rng.random_bool(0.25),
            },
            6..=12 => Call::Map {
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

/// What the model knows: SRQs and controllers by slot (live or gone), and each SRQ's
/// namespace map.
#[derive(Debug)]
pub struct Rules {
    /// SRQ slot → alive.
    srqs: Vec<bool>,
    /// Controller slot → (handle, SRQ slot, alive).
    ctrls: Vec<(CtrlHandle, usize, bool)>,
    /// (SRQ slot, fe_nsid) → controller slot.
    map: BTreeMap<(usize, u32), usize>,
    /// The device's `max_srq`.
    max_srq: u32,
}

impl Rules {
    /// The model of a device holding `max_srq` SRQs at most, one of them (slot 0) live.
    pub fn new(max_srq: u32) -> Rules {
        Rules {
            srqs: vec![true],
            ctrls: Vec::new(),
            map: BTreeMap::new(),
            max_srq,
        }
    }

    /// Whether a call names a slot nothing was created in (such calls are not made).
    pub fn empty_slot(&self, call: &Call) -> bool {
        match *call {
            Call::CreateSrq => false,
            Call::DestroySrq(s) | Call::CreateCtrl(s) => s >= self.srqs.len(),
            Call::RemoveCtrl { slot: s, .. }
            | Call::Map { slot: s, .. }
            | Call::Unmap { slot: s, .. } => s >= self.ctrls.len(),
        }
    }

    /// The controller in `slot` and its SRQ's slot.
    pub fn ctrl(&self, slot: usize) -> (CtrlHandle, usize) {
        (self.ctrls[slot].0, self.ctrls[slot].1)
    }

    /// The SRQ slot a `remove_nvme_ctrl` of the controller in `slot` names: another live
    /// SRQ when `other_srq` and there is one, else the controller's own.
    pub fn remove_via(&self, slot: usize, other_srq: bool) -> usize {
        let own = self.ctrls[slot].1;
        (0..self.srqs.len())
            .find(|&s| other_srq && s != own && self.srqs[s])
            .unwrap_or(own)
    }

    /// An SRQ was created.
    pub fn srq_created(&mut self) {
        self.srqs.push(true);
    }

    /// A controller was created on the SRQ in `srq`.
    pub fn created(&mut self, h: CtrlHandle, srq: usize) {
        self.ctrls.push((h, srq, true));
    }

    fn live_ctrls(&self, srq: Option<usize>) -> u32 {
        let on = |c: &&(CtrlHandle, usize, bool)| c.2 && srq.is_none_or(|s| c.1 == s);
        self.ctrls.iter().filter(on).count() as u32
    }

    /// The expected outcome of `call` (None = success), updating the model on success
    /// (except for a created SRQ or controller: [`Rules::srq_created`], [`Rules::created`]).
    /// `srq_max_ns`: each SRQ's `max_namespaces`.
    pub fn expect(&mut self, caps: &NvmfCaps, srq_max_ns: u32, call: &Call) -> Option<Errno> {
        let bad_nsid =
            |fe: u32| fe == 0 || (caps.max_frontend_nsid != 0 && fe > caps.max_frontend_nsid);
        let live_srqs = self.srqs.iter().filter(|a| **a).count() as u32;
        match *call {
            Call::CreateSrq => (live_srqs >= self.max_srq).then_some(Errno::ENOMEM),
            Call::DestroySrq(s) => {
                if !self.srqs[s] {
                    Some(Errno::EINVAL)
                } else if self.live_ctrls(Some(s)) > 0 {
                    Some(Errno::EBUSY)
                } else {
                    self.srqs[s] = false;
                    None
                }
            }
            Call::CreateCtrl(s) => {
                if !self.srqs[s] {
                    Some(Errno::EINVAL)
                } else if self.live_ctrls(Some(s)) >= caps.max_srq_backend_ctrls {
                    Some(Errno::ENOSPC)
                } else if self.live_ctrls(None) >= caps.max_backend_ctrls_total {
                    Some(Errno::ENOMEM)
                } else {
                    None
                }
            }
            Call::RemoveCtrl { slot, other_srq } => {
                let via = self.remove_via(slot, other_srq);
                let (_, own, alive) = self.ctrls[slot];
                if !self.srqs[via] || !alive || via != own {
                    Some(Errno::EINVAL)
                } else if self.map.values().any(|c| *c == slot) {
                    Some(Errno::EBUSY)
                } else {
                    self.ctrls[slot].2 = false;
                    None
                }
            }
            Call::Map { slot, fe, lba } => {
                let (_, srq, alive) = self.ctrls[slot];
                let on_srq = self.map.keys().filter(|(s, _)| *s == srq).count() as u32;
                if !alive || bad_nsid(fe) {
                    Some(Errno::EINVAL)
                } else if !caps.supports_lba_data_size(lba) {
                    Some(Errno::EOPNOTSUPP)
                } else if self.map.contains_key(&(srq, fe)) {
                    Some(Errno::EEXIST)
                } else if on_srq >= srq_max_ns {
                    Some(Errno::ENOSPC)
                } else if self.map.len() as u32 >= caps.max_namespaces {
                    Some(Errno::ENOMEM)
                } else {
                    self.map.insert((srq, fe), slot);
                    None
                }
            }
            Call::Unmap { slot, fe } => {
                let (_, srq, alive) = self.ctrls[slot];
                if !alive || bad_nsid(fe) {
                    Some(Errno::EINVAL)
                } else if self.map.get(&(srq, fe)) != Some(&slot) {
                    Some(Errno::ENOENT)
                } else {
                    self.map.remove(&(srq, fe));
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

/// One SRQ made by a step: what creating a controller on it needs.
struct Srq {
    pd: PdId,
    staging: MrInfo,
    attrs: NvmfSrqAttrs,
    srq: NvmfSrq,
}

/// Runs `calls` on `dut`'s device (a fresh SRQ in slot 0); each result is checked against
/// the rules, and reported (call, outcome) to `seen`. `Err` names the first divergence.
pub fn run(
    dut: &Dut,
    calls: &[Call],
    mut seen: impl FnMut(&Call, Option<Errno>),
) -> Result<(), String> {
    let (pd, staging, attrs, srq) = dut.srq().map_err(|e| e.message)?;
    let max_ns = attrs.max_namespaces;
    let mut srqs = vec![Srq {
        pd,
        staging,
        attrs,
        srq,
    }];
    let caps = dut.caps.clone();
    let mut rules = Rules::new(dut.ctx.device_attr().max_srq);
    let handle = |srqs: &[Srq], s: usize| -> SrqHandle { srqs[s].srq.handle };
    for (i, call) in calls.iter().enumerate() {
        if rules.empty_slot(call) {
            continue;
        }
        let want = rules.expect(&caps, max_ns, call);
        let got = match *call {
            Call::CreateSrq => {
                let (pd, staging, attrs) = dut.srq_inputs().map_err(|e| e.message)?;
                match dut.provider.create_srq(pd, &attrs) {
                    Ok(srq) => {
                        if want.is_none() {
                            rules.srq_created();
                            srqs.push(Srq {
                                pd,
                                staging,
                                attrs,
                                srq,
                            });
                        }
                        None
                    }
                    Err(e) => Some(e.errno()),
                }
            }
            Call::DestroySrq(s) => dut
                .provider
                .destroy_srq(handle(&srqs, s))
                .err()
                .map(|e| e.errno()),
            Call::CreateCtrl(s) => {
                let sq = &srqs[s];
                let a = dut
                    .backends()
                    .and_then(|b| {
                        b.create(sq.pd, &sq.attrs, &sq.staging, 1, &[(1, dut.ns_format())])
                    })
                    .map_err(|e| e.message)?;
                match dut.provider.create_nvme_ctrl(sq.srq.handle, &a) {
                    Ok(h) => {
                        if want.is_none() {
                            rules.created(h, s);
                        }
                        None
                    }
                    Err(e) => Some(e.errno()),
                }
            }
            Call::RemoveCtrl { slot, other_srq } => {
                let via = rules.remove_via(slot, other_srq);
                dut.provider
                    .remove_nvme_ctrl(handle(&srqs, via), rules.ctrl(slot).0)
                    .err()
                    .map(|e| e.errno())
            }
            Call::Map { slot, fe, lba } => dut
                .provider
                .map_nsid(
                    rules.ctrl(slot).0,
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
                .unmap_nsid(rules.ctrl(slot).0, fe)
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
