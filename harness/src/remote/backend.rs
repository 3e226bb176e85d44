//! The backend controllers of a device as messages: a case asks for a controller
//! ([`BackendCall::Create`]), then looks at it and gives it faults by its number
//! ([`BackendId`]); a [`BackendHost`] where the device is makes the controllers (rings in
//! the device context, the staging buffer mapped for DMA, on the bus the device finds them
//! on) and serves the looks. Its controllers are emulated, or, on a host that serves a real
//! controller ([`BackendHost::lending`]), queue pairs of that controller, with real faults
//! from that host's fault broker (the `Real*` calls). A [`BackendLink`] carries the calls: the host itself in this
//! process, [`JsonBackendLink`] through JSON text (as the control channel carries them).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::api::{MemRef, NvmeCtrlAttrs, NvmfSrqAttrs};
use crate::backend::emulated::{
    BackendController, Counters, DmaRegion, Fault, LbaFormat, Namespace, PciBus,
};
use crate::backend::vfio::broker::RealFault;
use crate::backend::vfio::{LentController, RingLayout};
use crate::case::{Failure, RealBackendFacts};
use crate::fabric::{Access, DeviceContext, MrInfo, PdId};
use crate::trace::Recorder;

/// A backend controller's number on its host.
pub type BackendId = u64;

/// Most bytes one [`BackendCall::WriteBlocks`] carries, or one read returns.
pub const MEDIA_MAX: usize = 1 << 20;

/// A namespace a new controller holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NsSource {
    /// A fresh RAM namespace of `blocks` blocks.
    Ram {
        /// Its nsid on the controller.
        nsid: u32,
        /// Its LBA format.
        format: LbaFormat,
        /// Its size in blocks.
        blocks: u64,
    },
    /// Namespace `nsid` taken away from controller `from`, data and all (the media
    /// outlives a failed controller).
    From {
        /// The controller it leaves.
        from: BackendId,
        /// Its nsid, on both.
        nsid: u32,
    },
}

/// What a case asks of the backend host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendCall {
    /// A controller with `nsqs` SQs of the SRQ's `nvme_queue_depth`, its rings and
    /// doorbells in `rings` (a region of `pd` the caller registered, so that the caller's
    /// trace names it: [`BackendCall::rings_len`] bytes at least), the SRQ's staging
    /// buffer (in `staging`) mapped for DMA, each SQ's tail doorbell starting at `ini.0`
    /// and the CQ's head at `ini.1`.
    Create {
        /// The protection domain of the rings' region.
        pd: PdId,
        /// The SRQ the controller serves.
        srq: NvmfSrqAttrs,
        /// The region holding the SRQ's staging buffer.
        staging: MrInfo,
        /// The region the rings and doorbells are laid out in, locally writable.
        rings: MrInfo,
        /// How many SQs.
        nsqs: u32,
        /// The doorbells' first values (SQ tail, CQ head).
        ini: (u16, u16),
        /// Its namespaces.
        namespaces: Vec<NsSource>,
    },
    /// The controller behind attributes a `Create` returned, if any.
    Find {
        /// The attributes.
        attrs: NvmeCtrlAttrs,
    },
    /// What a controller counted.
    Counters {
        /// The controller.
        backend: BackendId,
    },
    /// Gives a controller a fault.
    Inject {
        /// The controller.
        backend: BackendId,
        /// The fault.
        fault: Fault,
    },
    /// Lifts every fault of a controller.
    ClearFaults {
        /// The controller.
        backend: BackendId,
    },
    /// Block `slba` of namespace 1, from the media.
    ReadBlock {
        /// The controller.
        backend: BackendId,
        /// The block.
        slba: u64,
    },
    /// Puts `data` on namespace 1 from block `slba` on.
    WriteBlocks {
        /// The controller.
        backend: BackendId,
        /// The first block.
        slba: u64,
        /// Whole blocks.
        data: Vec<u8>,
    },
    /// Blocks of namespace 1.
    Blocks {
        /// The controller.
        backend: BackendId,
    },
    /// What the host's real controller offers (the reply's `None`: the host's controllers
    /// are emulated).
    RealFacts,
    /// Asks the host's fault broker for `fault` on its real controller (a PCI error or an
    /// unplug is refused while a stall is in force).
    RealInject {
        /// The fault.
        fault: RealFault,
    },
    /// The block of the real controller's namespace 1 whose reads fail with a media error.
    RealMediaErrorLba,
    /// Lifts a stall or a slow drive left in force on the real controller.
    RealLiftStall,
    /// Lets go of every controller (off the bus, their memory freed; the real controller's
    /// queue pairs given back, a stall lifted and the controller reset if it failed).
    Release,
}

impl BackendCall {
    /// `Err` unless a controller can have `nsqs` SQs (1 to 64).
    pub fn check_nsqs(nsqs: u32) -> Result<(), Failure> {
        if nsqs == 0 || nsqs > 64 {
            return Err(Failure::new(format!("nsqs: {nsqs}, not 1 to 64")));
        }
        Ok(())
    }

    /// Bytes a [`BackendCall::Create`]'s `rings` region needs for `nsqs` SQs of `depth`
    /// entries, their doorbells and the CQ, with every alignment's padding.
    pub fn rings_len(depth: u32, nsqs: u32) -> u64 {
        let (sq_len, cq_len) = (u64::from(depth) * 64, u64::from(depth) * 16);
        (sq_len + 128) * u64::from(nsqs) + cq_len + 256
    }
}

/// The host's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendReply {
    /// A controller made: the attributes naming it to the device, and its number.
    Created {
        /// Its attributes.
        attrs: NvmeCtrlAttrs,
        /// Its number.
        backend: BackendId,
    },
    /// The controller found, if any.
    Found(Option<BackendId>),
    /// A controller's counters.
    Counters(Counters),
    /// Media contents.
    Bytes(Vec<u8>),
    /// Blocks of namespace 1 (`None`: it has none).
    Blocks(Option<u64>),
    /// What the host's real controller offers, if it serves one.
    RealFacts(Option<RealBackendFacts>),
    /// A block number.
    Lba(u64),
    /// Done.
    Done,
    /// The call failed: why, as a case reports it.
    Failed(String),
}

/// Carries a call to a [`BackendHost`] and brings its reply back.
pub trait BackendLink: Send + Sync {
    /// Carries `call`.
    fn call(&self, call: &BackendCall) -> BackendReply;
}

/// Makes and serves the backend controllers of one device context on one bus: emulated
/// ones, or queue pairs of a real controller.
pub struct BackendHost {
    ctx: Arc<dyn DeviceContext>,
    bus: Arc<PciBus>,
    /// Where the controllers record their doorbells, SQEs and CQEs.
    rec: Option<Recorder>,
    /// The real controller every controller is a queue pair of, when the host serves one.
    real: Option<Arc<LentController>>,
    made: Mutex<Made>,
}

/// The controllers made, by number.
#[derive(Default)]
struct Made {
    next: BackendId,
    by_id: BTreeMap<BackendId, Arc<BackendController>>,
    /// Numbers of the real controller's queue pairs.
    lent: Vec<BackendId>,
}

/// `r` as a reply: `ok` of its value, or [`BackendReply::Failed`] with its message.
fn reply<T>(r: Result<T, Failure>, ok: impl FnOnce(T) -> BackendReply) -> BackendReply {
    match r {
        Ok(v) => ok(v),
        Err(f) => BackendReply::Failed(f.message),
    }
}

impl BackendHost {
    /// A host making controllers for `ctx`'s device on `bus`, traced into `rec` when given.
    pub fn new(ctx: Arc<dyn DeviceContext>, bus: Arc<PciBus>, rec: Option<Recorder>) -> Self {
        BackendHost {
            ctx,
            bus,
            rec,
            real: None,
            made: Mutex::new(Made::default()),
        }
    }

    /// This host with every controller a queue pair of `real` (nothing traced: the real
    /// controller's rings are not the emulated controllers').
    pub fn lending(mut self, real: Arc<LentController>) -> Self {
        self.real = Some(real);
        self.rec = None;
        self
    }

    /// Whether its controllers are queue pairs of a real controller.
    pub fn lends_real(&self) -> bool {
        self.real.is_some()
    }

    /// The real controller, or a failure naming what needed it.
    fn real(&self, what: &str) -> Result<&Arc<LentController>, Failure> {
        (self.real.as_ref()).ok_or_else(|| {
            Failure::new(format!(
                "{what}: the backend host serves emulated controllers"
            ))
        })
    }

    /// The real controller a media call reaches, on a host that lends one: every number
    /// names it there (its queue pairs share one namespace, which outlives them).
    fn lent(&self) -> Option<&Arc<LentController>> {
        self.real.as_ref()
    }

    fn next_id(&self) -> BackendId {
        let mut made = self.made();
        let id = made.next;
        made.next += 1;
        id
    }

    fn made(&self) -> std::sync::MutexGuard<'_, Made> {
        self.made.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: BackendId) -> Result<Arc<BackendController>, Failure> {
        (self.made().by_id.get(&id).cloned())
            .ok_or_else(|| Failure::new(format!("backend {id}: no such controller")))
    }

    /// Carries out `call`.
    pub fn handle(&self, call: BackendCall) -> BackendReply {
        let media = matches!(
            call,
            BackendCall::ReadBlock { .. }
                | BackendCall::WriteBlocks { .. }
                | BackendCall::Blocks { .. }
        );
        if let (true, Some(real)) = (media, self.lent()) {
            return real_media(real, call);
        }
        match call {
            BackendCall::Create {
                pd,
                srq,
                staging,
                rings,
                nsqs,
                ini,
                namespaces,
            } => {
                let made = match &self.real {
                    Some(real) => self.lend(real, &srq, (&staging, rings), nsqs, ini, &namespaces),
                    None => self.create(pd, &srq, (&staging, rings), nsqs, ini, namespaces),
                };
                reply(made, |(attrs, backend)| BackendReply::Created {
                    attrs,
                    backend,
                })
            }
            BackendCall::Find { .. } if self.real.is_some() => {
                // every queue pair is the same controller: its first number names it
                BackendReply::Found(self.made().lent.first().copied())
            }
            BackendCall::Find { attrs } => {
                let c = self.bus.find(attrs.sqdb.mr, attrs.sqdb.addr);
                let made = self.made();
                BackendReply::Found(c.and_then(|c| {
                    (made.by_id.iter())
                        .find(|(_, m)| Arc::ptr_eq(m, &c))
                        .map(|(id, _)| *id)
                }))
            }
            BackendCall::Counters { backend } => {
                reply(self.get(backend), |c| BackendReply::Counters(c.counters()))
            }
            BackendCall::Inject { backend, fault } => reply(
                self.get(backend).and_then(|c| {
                    (c.inject(fault)).map_err(|e| Failure::from(e).context("fault injection"))
                }),
                |()| BackendReply::Done,
            ),
            BackendCall::ClearFaults { backend } => reply(self.get(backend), |c| {
                c.clear_faults();
                BackendReply::Done
            }),
            BackendCall::ReadBlock { backend, slba } => reply(
                self.get(backend).and_then(|c| {
                    (c.with_namespace(1, |ns| ns.read_blocks(slba, 1)))
                        .ok_or_else(|| Failure::new("the backend has no namespace 1"))?
                        .map_err(|e| Failure::from(e).context("reading the backend's media"))
                }),
                BackendReply::Bytes,
            ),
            BackendCall::WriteBlocks {
                backend,
                slba,
                data,
            } => reply(
                self.get(backend).and_then(|c| {
                    if data.len() > MEDIA_MAX {
                        return Err(Failure::new(format!(
                            "data: {} bytes, more than {MEDIA_MAX} in one call",
                            data.len()
                        )));
                    }
                    (c.with_namespace(1, |ns| ns.write_blocks(slba, &data)))
                        .ok_or_else(|| Failure::new("the backend has no namespace 1"))?
                        .map_err(|e| Failure::from(e).context("writing the backend's media"))
                }),
                |()| BackendReply::Done,
            ),
            BackendCall::Blocks { backend } => reply(self.get(backend), |c| {
                BackendReply::Blocks(c.with_namespace(1, |n| n.blocks()))
            }),
            BackendCall::RealFacts => match &self.real {
                None => BackendReply::RealFacts(None),
                Some(r) => reply(r.facts(), |f| BackendReply::RealFacts(Some(f))),
            },
            BackendCall::RealInject { fault } => reply(
                self.real("real fault")
                    .and_then(|r| r.inject_blocking(fault)),
                |()| BackendReply::Done,
            ),
            BackendCall::RealMediaErrorLba => reply(
                self.real("real media error")
                    .and_then(|r| r.media_error_lba_blocking()),
                BackendReply::Lba,
            ),
            BackendCall::RealLiftStall => {
                if let Some(r) = &self.real {
                    r.lift_stall();
                }
                BackendReply::Done
            }
            BackendCall::Release => {
                // A stall first: QEMU's controller deletes a queue, or resets, only once
                // every request it holds has finished, so a stalled one would hang it.
                if let Some(r) = &self.real {
                    r.lift_stall();
                }
                drop(self.bus.release());
                let mut made = self.made();
                made.by_id.clear();
                made.lent.clear();
                drop(made);
                if let Some(r) = &self.real {
                    r.release();
                }
                BackendReply::Done
            }
        }
    }

    /// A queue pair of the real controller ([`BackendCall::Create`] on a host that lends
    /// one): rings in `rings` laid out as [`RingLayout`] says, `staging` mapped for DMA, the
    /// port on the bus. The real controller has what it has: one SQ per controller,
    /// doorbells starting at 0, its own namespace; anything else is refused.
    fn lend(
        &self,
        real: &Arc<LentController>,
        srq: &NvmfSrqAttrs,
        (staging, rings): (&MrInfo, MrInfo),
        nsqs: u32,
        ini: (u16, u16),
        namespaces: &[NsSource],
    ) -> Result<(NvmeCtrlAttrs, BackendId), Failure> {
        if nsqs != 1 || ini != (0, 0) {
            return Err(Failure::new(format!(
                "the real controller's queue pairs have one SQ each, doorbells from 0 \
                 (asked: {nsqs} SQs, doorbells from {ini:?})"
            )));
        }
        for n in namespaces {
            match n {
                NsSource::Ram { nsid, format, .. } => real.check_namespace(*nsid, *format)?,
                // the real controller keeps its namespace: a new queue pair reaches it
                NsSource::From { nsid, .. } => {
                    let format = real.facts()?.format;
                    real.check_namespace(*nsid, format)?
                }
            }
        }
        let depth = srq.nvme_queue_depth as u16;
        let layout = RingLayout::new(depth);
        if rings.len < layout.len {
            return Err(Failure::new(format!(
                "rings: a region of {} bytes, fewer than the {} a real controller's queue \
                 pair needs",
                rings.len, layout.len
            )));
        }
        if !rings.access.contains(Access::LOCAL_WRITE) {
            return Err(Failure::new("rings: the region is not locally writable"));
        }
        let port = real.lend(self.ctx.clone(), rings, staging, depth)?;
        let attrs = layout.ctrl_attrs(&rings, 0);
        self.bus.attach_port(attrs.sqdb.mr, attrs.sqdb.addr, port);
        let id = self.next_id();
        self.made().lent.push(id);
        Ok((attrs, id))
    }

    /// A new controller ([`BackendCall::Create`]).
    fn create(
        &self,
        pd: PdId,
        srq: &NvmfSrqAttrs,
        (staging, m): (&MrInfo, MrInfo),
        nsqs: u32,
        (sq_ini, cq_ini): (u16, u16),
        namespaces: Vec<NsSource>,
    ) -> Result<(NvmeCtrlAttrs, BackendId), Failure> {
        BackendCall::check_nsqs(nsqs)?;
        // The namespaces first: one taken from another controller leaves it only once the
        // new controller can be made.
        let mut nss = Vec::new();
        for n in &namespaces {
            if let NsSource::Ram {
                nsid,
                format,
                blocks,
            } = n
            {
                nss.push(
                    Namespace::ram(*nsid, *format, *blocks)
                        .map_err(|e| Failure::from(e).context("namespace"))?,
                );
            }
        }
        let depth = u64::from(srq.nvme_queue_depth);
        let sq_len = depth * 64;
        let cq_len = depth * 16;
        let len = BackendCall::rings_len(srq.nvme_queue_depth, nsqs);
        if m.len < len {
            return Err(Failure::new(format!(
                "rings: a region of {} bytes, fewer than the {len} the rings need",
                m.len
            )));
        }
        if !m.access.contains(Access::LOCAL_WRITE) {
            return Err(Failure::new("rings: the region is not locally writable"));
        }
        let mut off: u64 = 0;
        let mut take = |n: u64, align: u64| {
            off = off.div_ceil(align) * align;
            let r = MemRef::of(&m, off, n);
            off += n;
            r
        };
        let sq_buf = take(sq_len, 64);
        let cq_buf = take(cq_len, 16);
        let sqdb = take(4, 4);
        let cqdb = take(4, 4);
        let extra_sqs = (1..nsqs)
            .map(|_| crate::api::BackendSq {
                buf: take(sq_len, 64),
                db: take(4, 4),
                db_ini: sq_ini,
            })
            .collect();
        let mut attrs = NvmeCtrlAttrs {
            sq_buf,
            cq_buf,
            sqdb,
            cqdb,
            sqdb_ini: sq_ini,
            cqdb_ini: cq_ini,
            cmd_timeout_us: 0,
            extra_sqs,
        };
        let dma = DmaRegion::from_mem(&srq.staging_buf, staging)
            .ok_or_else(|| Failure::new("staging buffer outside its region"))?;
        let ctrl = Arc::new(
            self.bus
                .spawn(
                    self.ctx.clone(),
                    pd,
                    &mut attrs,
                    srq.nvme_queue_depth as u16,
                    &[m, *staging],
                    vec![dma],
                )
                .map_err(|e| Failure::from(e).context("backend spawn"))?,
        );
        if let Some(rec) = &self.rec {
            ctrl.trace_into(rec.clone());
        }
        for n in namespaces {
            let ns = match n {
                NsSource::Ram { .. } => nss.remove(0),
                NsSource::From { from, nsid } => (self.get(from)?.remove_namespace(nsid))
                    .map_err(|e| Failure::from(e).context("taking the namespace back"))?,
            };
            ctrl.add_namespace(ns)
                .map_err(|e| Failure::from(e).context("namespace"))?;
        }
        self.bus
            .attach(attrs.sqdb.mr, attrs.sqdb.addr, ctrl.clone());
        let mut made = self.made();
        let id = made.next;
        made.next += 1;
        made.by_id.insert(id, ctrl);
        Ok((attrs, id))
    }
}

/// A media call ([`BackendCall::ReadBlock`], [`BackendCall::WriteBlocks`],
/// [`BackendCall::Blocks`]) on a queue pair of `real`: through the harness's own queue pair
/// of the real controller.
fn real_media(real: &LentController, call: BackendCall) -> BackendReply {
    match call {
        BackendCall::ReadBlock { slba, .. } => reply(real.read_block(slba), BackendReply::Bytes),
        BackendCall::WriteBlocks { data, .. } if data.len() > MEDIA_MAX => {
            BackendReply::Failed(format!(
                "data: {} bytes, more than {MEDIA_MAX} in one call",
                data.len()
            ))
        }
        BackendCall::WriteBlocks { slba, data, .. } => {
            reply(real.write_blocks(slba, &data), |()| BackendReply::Done)
        }
        BackendCall::Blocks { .. } => BackendReply::Blocks(real.facts().ok().map(|f| f.blocks)),
        other => BackendReply::Failed(format!("{other:?}: not a media call")),
    }
}

impl BackendLink for BackendHost {
    fn call(&self, call: &BackendCall) -> BackendReply {
        self.handle(call.clone())
    }
}

/// A [`BackendLink`] to a host in this process through JSON text both ways.
pub struct JsonBackendLink(pub BackendHost);

impl BackendLink for JsonBackendLink {
    fn call(&self, call: &BackendCall) -> BackendReply {
        let reply = match super::local::carried(call) {
            Ok(call) => super::local::carried(&self.0.handle(call)),
            Err(e) => Err(e),
        };
        reply.unwrap_or_else(|e| BackendReply::Failed(e.reason))
    }
}
