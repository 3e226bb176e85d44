//! [`BackendController`]: an emulated NVMe controller driven through fabric memory.
//!
//! The queues live in memory regions of one [`DeviceContext`], as the offload API gives
//! them: SQ rings of 64-byte entries, one CQ ring of 16-byte entries, an SQ-tail doorbell
//! per SQ and a CQ-head doorbell (4-byte little-endian values inside regions). The
//! producer (the offload engine, acting for the NIC) writes SQEs with `mr_write` and rings
//! ([`BackendController::ring_sq_doorbell`], or [`SqWriter`]); the controller, a tokio
//! task, reads the doorbell value back from its region, fetches SQEs round-robin over its
//! SQs (one command per SQ per turn), executes them, and posts CQEs with the phase tag
//! into the CQ ring, never past an entry the consumer has not released through the
//! CQ-head doorbell ([`CqReader`]).
//!
//! Queue conventions (NVMe): a queue of depth `d` holds at most `d - 1` entries (full when
//! `tail + 1 == head` mod `d`); the phase tag of the first pass is 1 and flips at every
//! wrap; the SQ doorbell's and CQ doorbell's initial values are the first tail and head.
//! The CQ ring must be zeroed before the controller starts (a fresh `reg_mr` is). With a
//! nonzero initial CQ head `h`, the controller stamps slots `0..h` with phase 1 at start
//! (as if posted and consumed earlier in the same pass), so that after the first wrap the
//! consumer does not take those zeroed slots for new phase-0 entries.
//!
//! Data pointers: a backend SQE carries PRP1 (PSDT 00b, DPTR bytes 24..31), the address
//! of **one contiguous buffer** of `NLB × lba_data_size` bytes (PRP2 and PRP lists are not
//! used). That buffer must lie inside one of the controller's DMA regions (the staging
//! buffers software mapped for it); otherwise the command completes with Data Transfer
//! Error and counts as a DMA fault.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::fabric::{DeviceContext, MrId};
use crate::trace::{command_text, Recorder};
use crate::wire::{CqeRepr, SqeRepr, Status, CQE_LEN, SQE_LEN};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::AbortHandle;

use super::command::{self, Dma, DmaFault, Unmapped};
use super::config::{ControllerConfig, DmaRegion};
use super::faults::{Fault, FaultState};
use super::namespace::Namespace;
use crate::backend::memory::{self, MemRegisters, PrpWindow};
use crate::backend::ring::{read_u32, write_u32};
use crate::backend::round_robin;
use crate::backend::{BackendError, CqReader, CtrlState, Doorbells, Rings, SqWriter};

/// Per-controller counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Commands fetched from the SQs.
    pub commands: u64,
    /// Completions posted to the CQ.
    pub completions: u64,
    /// Completions posted with a status other than success.
    pub errors: u64,
    /// Commands whose buffer was not (or was treated as not) DMA-mapped.
    pub dma_faults: u64,
    /// Commands an injected timeout made complete never.
    pub dropped: u64,
    /// Doorbell writes with a value not below the depth (ignored).
    pub bad_doorbells: u64,
    /// Doorbell calls refused because the controller's doorbells are memory
    /// ([`crate::backend::memory`]): a device in memory mode never makes one.
    #[serde(default)]
    pub doorbell_calls: u64,
}

#[derive(Debug)]
struct Pending {
    sq: usize,
    cid: u16,
    status: Status,
}

#[derive(Debug)]
struct State {
    faults: FaultState,
    counters: Counters,
    sq_heads: Vec<u16>,
    rr: usize,
    cq_tail: u16,
    phase: bool,
    /// Memory doorbells: the values last seen in each SQ tail doorbell and the CQ head
    /// doorbell (a change is a write the controller noticed).
    seen_tails: Vec<u32>,
    seen_head: u32,
}

struct Inner {
    ctx: Arc<dyn DeviceContext>,
    cfg: ControllerConfig,
    nss: Mutex<BTreeMap<u32, Namespace>>,
    st: Mutex<State>,
    sq_bell: Arc<Notify>,
    cq_bell: Arc<Notify>,
    posted: Notify,
    state: watch::Sender<CtrlState>,
    /// Where the controller's doorbells, fetched SQEs and posted CQEs are recorded, as
    /// `backend` lines of a case's trace.
    trace: Mutex<Option<Recorder>>,
}

/// The trace text of a fetched SQE: command, CID and nsid (data pointers are addresses
/// the run chose, so they are left out).
fn sqe_text(sq: usize, raw: &[u8; SQE_LEN]) -> String {
    let Ok(s) = SqeRepr::parse_bytes(raw) else {
        return format!("sq{sq} <- unparsable opcode={:#04x}", raw[0]);
    };
    format!(
        "sq{sq} <- {} cid={} nsid={}",
        command_text(&s.command),
        s.cid,
        s.nsid
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The controller's DMA engine over its mapped regions.
struct MrDma<'a> {
    ctx: &'a dyn DeviceContext,
    regions: &'a [DmaRegion],
    /// Bus to virtual addresses, when the device's PRPs are not virtual addresses.
    window: Option<PrpWindow>,
    addr: u64,
    faulted: bool,
}

impl MrDma<'_> {
    fn locate(&mut self, offset: u64, len: usize) -> Result<(MrId, u64), DmaFault> {
        let len = len as u64;
        let va = self
            .addr
            .checked_add(offset)
            .and_then(|a| match self.window {
                Some(w) => w.to_va(a, len),
                None => Some(a),
            });
        let found = va.and_then(|a| {
            self.regions
                .iter()
                .find_map(|r| r.translate(a, len).map(|o| (r.mr, o)))
        });
        found.ok_or_else(|| {
            self.faulted = true;
            DmaFault
        })
    }
}

impl Dma for MrDma<'_> {
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
        let (mr, off) = self.locate(offset, buf.len())?;
        self.ctx.mr_read(mr, off, buf).map_err(|_| {
            self.faulted = true;
            DmaFault
        })
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DmaFault> {
        let (mr, off) = self.locate(offset, data.len())?;
        self.ctx.mr_write(mr, off, data).map_err(|_| {
            self.faulted = true;
            DmaFault
        })
    }
}

impl Doorbells for Inner {
    fn ring_sq(&self, sq: usize, tail: u16) -> Result<(), BackendError> {
        self.record("doorbell", || format!("sq{sq} tail={tail}"));
        let s = self
            .cfg
            .sqs
            .get(sq)
            .ok_or(BackendError::Config("no such SQ"))?;
        write_u32(self.ctx.as_ref(), &s.doorbell, tail.into())?;
        self.sq_bell.notify_one();
        Ok(())
    }

    fn ring_cq(&self, head: u16) -> Result<(), BackendError> {
        self.record("doorbell", || format!("cq head={head}"));
        write_u32(self.ctx.as_ref(), &self.cfg.cq_doorbell, head.into())?;
        self.cq_bell.notify_one();
        Ok(())
    }
}

impl Inner {
    /// Records a `backend` trace line when a recorder is attached.
    fn record(&self, kind: &'static str, text: impl FnOnce() -> String) {
        if let Some(r) = lock(&self.trace).as_ref() {
            r.push("backend", kind, text());
        }
    }

    fn running(&self) -> bool {
        *self.state.borrow() == CtrlState::Running
    }

    fn fail(&self, why: &str) {
        if self.running() {
            tracing::warn!(why, "backend controller: fatal PCI error");
            if let Some(m) = &self.cfg.memory {
                memory::fail_registers(&MemRegisters {
                    ctx: self.ctx.as_ref(),
                    regs: m.regs,
                });
            }
            self.state.send_replace(CtrlState::PciError);
        }
        self.sq_bell.notify_one();
        self.cq_bell.notify_one();
        self.posted.notify_one();
    }

    /// Takes the next SQE, round-robin: `(sq index, raw entry)`.
    fn fetch(&self) -> Result<Option<(usize, [u8; SQE_LEN])>, BackendError> {
        let mut st = lock(&self.st);
        let n = self.cfg.sqs.len();
        for i in round_robin::order(st.rr, n) {
            let sq = &self.cfg.sqs[i];
            let tail = read_u32(self.ctx.as_ref(), &sq.doorbell)?;
            let bad = tail >= u32::from(self.cfg.depth);
            if self.cfg.memory.is_some() {
                // A write is noticed once, when the value it left is first seen.
                if st.seen_tails[i] != tail {
                    st.seen_tails[i] = tail;
                    self.record("doorbell", || format!("sq{i} tail={tail}"));
                    st.counters.bad_doorbells += u64::from(bad);
                }
            } else if bad {
                st.counters.bad_doorbells += 1;
            }
            if bad {
                continue;
            }
            let head = st.sq_heads[i];
            if u32::from(head) == tail {
                continue;
            }
            let mut raw = [0u8; SQE_LEN];
            let off = sq.ring.offset + u64::from(head) * SQE_LEN as u64;
            self.ctx.mr_read(sq.ring.mr, off, &mut raw)?;
            st.sq_heads[i] = (head + 1) % self.cfg.depth;
            st.rr = round_robin::after(i, n);
            return Ok(Some((i, raw)));
        }
        Ok(None)
    }

    /// Executes one fetched command; `None` when it is never to complete.
    fn process(&self, sq: usize, raw: &[u8; SQE_LEN]) -> Option<(Pending, Duration)> {
        let cid = u16::from_le_bytes([raw[2], raw[3]]);
        let parsed = SqeRepr::parse_bytes(raw);
        let mut nss = lock(&self.nss);
        let (verdict, seq) = {
            let mut st = lock(&self.st);
            st.counters.commands += 1;
            let seq = st.counters.commands;
            let moves = parsed.as_ref().is_ok_and(|s| command::moves_data(&nss, s));
            let v = match &parsed {
                Ok(s) => st.faults.on_command(seq, s, moves),
                Err(_) => Default::default(),
            };
            (v, seq)
        };
        if verdict.pci_error {
            drop(nss);
            self.fail("injected on command");
            return None;
        }
        let status = match &parsed {
            Err(e) => {
                tracing::debug!(seq, cid, %e, "backend SQE does not parse");
                Status::INVALID_FIELD
            }
            Ok(sqe) => {
                let addr = command::prp1(sqe).unwrap_or(0);
                let mut dma = MrDma {
                    ctx: self.ctx.as_ref(),
                    regions: &self.cfg.dma,
                    addr,
                    window: self.cfg.memory.and_then(|m| m.prp),
                    faulted: false,
                };
                let status = if verdict.dma_fault {
                    command::execute(&mut nss, sqe, &mut Unmapped)
                } else {
                    command::execute(&mut nss, sqe, &mut dma)
                };
                if verdict.dma_fault || dma.faulted {
                    lock(&self.st).counters.dma_faults += 1;
                }
                status
            }
        };
        if verdict.never {
            lock(&self.st).counters.dropped += 1;
            return None;
        }
        Some((Pending { sq, cid, status }, verdict.delay))
    }

    async fn fetch_loop(self: Arc<Self>, tx: mpsc::UnboundedSender<Pending>) {
        loop {
            if !self.running() {
                return;
            }
            let next = match self.fetch() {
                Ok(n) => n,
                Err(e) => {
                    self.fail(&format!("SQ unreachable: {e}"));
                    return;
                }
            };
            let Some((sq, raw)) = next else {
                self.idle(&self.sq_bell).await;
                continue;
            };
            self.record("sqe", || sqe_text(sq, &raw));
            if let Some((p, delay)) = self.process(sq, &raw) {
                if delay.is_zero() {
                    let _ = tx.send(p);
                } else {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(p);
                    });
                }
            }
            tokio::task::yield_now().await;
        }
    }

    /// Waits for a doorbell call's wake-up `bell`; with memory doorbells, for at most one
    /// poll period (nobody calls: the memory is looked at again).
    async fn idle(&self, bell: &Notify) {
        if self.cfg.memory.is_some() {
            tokio::select! {
                _ = bell.notified() => {}
                _ = tokio::time::sleep(memory::POLL) => {}
            }
        } else {
            bell.notified().await;
        }
    }

    fn cq_full(&self) -> Result<bool, BackendError> {
        let head = read_u32(self.ctx.as_ref(), &self.cfg.cq_doorbell)?;
        let d = self.cfg.depth;
        let bad = head >= u32::from(d);
        if self.cfg.memory.is_some() {
            let mut st = lock(&self.st);
            if st.seen_head != head {
                st.seen_head = head;
                self.record("doorbell", || format!("cq head={head}"));
                st.counters.bad_doorbells += u64::from(bad);
            }
        } else if bad {
            lock(&self.st).counters.bad_doorbells += 1;
        }
        if bad {
            return Ok(true);
        }
        let tail = lock(&self.st).cq_tail;
        Ok((tail + 1) % d == head as u16)
    }

    fn post(&self, p: &Pending) -> Result<(), BackendError> {
        let mut st = lock(&self.st);
        let cqe = CqeRepr {
            result: 0,
            sq_head: st.sq_heads[p.sq],
            sq_id: (p.sq + 1) as u16,
            cid: p.cid,
            phase: st.phase,
            status: p.status,
        };
        let bytes = cqe
            .to_bytes()
            .map_err(|_| BackendError::Config("CQE does not encode"))?;
        self.record("cqe", || {
            format!("sq{} -> cid={} status={}", p.sq, p.cid, p.status)
        });
        let off = self.cfg.cq_ring.offset + u64::from(st.cq_tail) * CQE_LEN as u64;
        self.ctx.mr_write(self.cfg.cq_ring.mr, off, &bytes)?;
        st.cq_tail = (st.cq_tail + 1) % self.cfg.depth;
        if st.cq_tail == 0 {
            st.phase = !st.phase;
        }
        st.counters.completions += 1;
        if !p.status.is_success() {
            st.counters.errors += 1;
        }
        Ok(())
    }

    async fn post_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Pending>) {
        while let Some(p) = rx.recv().await {
            loop {
                if !self.running() {
                    return;
                }
                match self.cq_full() {
                    Ok(false) => break,
                    Ok(true) => self.idle(&self.cq_bell).await,
                    Err(e) => {
                        self.fail(&format!("CQ unreachable: {e}"));
                        return;
                    }
                }
            }
            if let Err(e) = self.post(&p) {
                self.fail(&format!("CQ unreachable: {e}"));
                return;
            }
            self.posted.notify_one();
        }
    }
}

/// An emulated backend NVMe controller (see the module docs). Its tasks stop when it is
/// dropped.
pub struct BackendController {
    inner: Arc<Inner>,
    tasks: Vec<AbortHandle>,
    /// A memory-doorbell controller's BAR region, deregistered with the controller.
    bar: Option<(Arc<dyn DeviceContext>, MrId)>,
}

impl std::fmt::Debug for BackendController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendController")
            .field("cfg", &self.inner.cfg)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl BackendController {
    /// Starts a controller on `ctx` (inside a tokio runtime): writes the initial doorbell
    /// values into the doorbell regions and spawns the controller's tasks.
    pub fn spawn(
        ctx: Arc<dyn DeviceContext>,
        cfg: ControllerConfig,
    ) -> Result<BackendController, BackendError> {
        cfg.validate()?;
        for sq in &cfg.sqs {
            write_u32(ctx.as_ref(), &sq.doorbell, sq.tail_ini.into())?;
        }
        write_u32(ctx.as_ref(), &cfg.cq_doorbell, cfg.cq_head_ini.into())?;
        let mut stale = [0u8; CQE_LEN];
        stale[CQE_LEN - 2] = 1; // phase tag: bit 0 of the status field
        for slot in 0..u64::from(cfg.cq_head_ini) {
            let off = cfg.cq_ring.offset + slot * CQE_LEN as u64;
            ctx.mr_write(cfg.cq_ring.mr, off, &stale)?;
        }
        let st = State {
            faults: FaultState::default(),
            counters: Counters::default(),
            sq_heads: cfg.sqs.iter().map(|s| s.tail_ini).collect(),
            rr: 0,
            cq_tail: cfg.cq_head_ini,
            phase: true,
            seen_tails: cfg.sqs.iter().map(|s| u32::from(s.tail_ini)).collect(),
            seen_head: u32::from(cfg.cq_head_ini),
        };
        if let Some(m) = &cfg.memory {
            memory::init_registers(
                &MemRegisters {
                    ctx: ctx.as_ref(),
                    regs: m.regs,
                },
                cfg.depth,
            );
        }
        let inner = Arc::new(Inner {
            ctx,
            cfg,
            nss: Mutex::new(BTreeMap::new()),
            st: Mutex::new(st),
            sq_bell: Arc::new(Notify::new()),
            cq_bell: Arc::new(Notify::new()),
            posted: Notify::new(),
            state: watch::Sender::new(CtrlState::Running),
            trace: Mutex::new(None),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let fetch = tokio::spawn(inner.clone().fetch_loop(tx));
        let post = tokio::spawn(inner.clone().post_loop(rx));
        Ok(BackendController {
            inner,
            tasks: vec![fetch.abort_handle(), post.abort_handle()],
            bar: None,
        })
    }

    /// The controller, owning the memory region `bar` (registered on `ctx`): deregistered
    /// when the controller is dropped.
    pub fn owning_bar(mut self, ctx: Arc<dyn DeviceContext>, bar: MrId) -> BackendController {
        self.bar = Some((ctx, bar));
        self
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ControllerConfig {
        &self.inner.cfg
    }

    /// Entries per queue.
    pub fn depth(&self) -> u16 {
        self.inner.cfg.depth
    }

    /// Adds a namespace; [`BackendError::NamespaceExists`] when its nsid is taken.
    pub fn add_namespace(&self, ns: Namespace) -> Result<(), BackendError> {
        let mut nss = lock(&self.inner.nss);
        if nss.contains_key(&ns.nsid()) {
            return Err(BackendError::NamespaceExists(ns.nsid()));
        }
        nss.insert(ns.nsid(), ns);
        Ok(())
    }

    /// Removes a namespace and hands it back.
    pub fn remove_namespace(&self, nsid: u32) -> Result<Namespace, BackendError> {
        lock(&self.inner.nss)
            .remove(&nsid)
            .ok_or(BackendError::NamespaceNotFound(nsid))
    }

    /// Runs `f` on a namespace (e.g. to read its blocks directly); `None` when unknown.
    pub fn with_namespace<R>(&self, nsid: u32, f: impl FnOnce(&mut Namespace) -> R) -> Option<R> {
        lock(&self.inner.nss).get_mut(&nsid).map(f)
    }

    /// The nsids of its namespaces, ascending.
    pub fn namespace_ids(&self) -> Vec<u32> {
        lock(&self.inner.nss).keys().copied().collect()
    }

    /// Records the controller's doorbells, fetched SQEs and posted CQEs into `rec` from now
    /// on (`backend` lines of a case's trace).
    pub fn trace_into(&self, rec: Recorder) {
        *lock(&self.inner.trace) = Some(rec);
    }

    /// Writes `tail` into SQ `sq`'s doorbell (index into [`ControllerConfig::sqs`]) and
    /// wakes the controller. Ignored by a controller in [`CtrlState::PciError`].
    pub fn ring_sq_doorbell(&self, sq: usize, tail: u16) -> Result<(), BackendError> {
        self.inner.ring_sq(sq, tail)
    }

    /// Writes `head` into the CQ-head doorbell, releasing the entries before it, and wakes
    /// the controller if it waits for room.
    pub fn ring_cq_doorbell(&self, head: u16) -> Result<(), BackendError> {
        self.inner.ring_cq(head)
    }

    /// Waits until a completion is posted after the last call (single consumer: a posting
    /// that happened with nobody waiting is remembered once). Callers bound the wait.
    pub async fn wait_completion(&self) {
        self.inner.posted.notified().await;
    }

    /// A consumer of the CQ, starting at the initial head with phase 1.
    pub fn cq_reader(&self) -> CqReader {
        let c = &self.inner.cfg;
        self.queues().cq_reader(c.cq_ring, c.cq_head_ini)
    }

    /// A producer for SQ `sq`, starting at its initial tail; `None` for an unknown SQ.
    pub fn sq_writer(&self, sq: usize) -> Option<SqWriter> {
        let c = &self.inner.cfg;
        let s = c.sqs.get(sq)?;
        Some(self.queues().sq_writer(sq, s.ring, s.tail_ini))
    }

    /// The rings of the controller's queues, rung through the controller itself.
    fn queues(&self) -> Rings {
        Rings::new(
            self.inner.ctx.clone(),
            self.inner.cfg.depth,
            self.inner.clone(),
        )
    }

    /// Injects a fault (see [`Fault`]); a media error needs the namespace to exist.
    pub fn inject(&self, fault: Fault) -> Result<(), BackendError> {
        if let Fault::MediaError { nsid, lbas } = &fault {
            return self
                .with_namespace(*nsid, |ns| ns.add_media_error(lbas.clone()))
                .ok_or(BackendError::NamespaceNotFound(*nsid));
        }
        let now = {
            let mut st = lock(&self.inner.st);
            let fetched = st.counters.commands;
            st.faults.arm(&fault, fetched)
        };
        if now {
            self.inner.fail("injected");
        }
        Ok(())
    }

    /// Disarms every fault and clears media errors (a PCI error already raised stays).
    pub fn clear_faults(&self) {
        lock(&self.inner.st).faults.clear();
        for ns in lock(&self.inner.nss).values_mut() {
            ns.clear_media_errors();
        }
    }

    /// The current state.
    pub fn state(&self) -> CtrlState {
        *self.inner.state.borrow()
    }

    /// A receiver that sees every state change (the engine awaits `PciError` on it).
    pub fn watch_state(&self) -> watch::Receiver<CtrlState> {
        self.inner.state.subscribe()
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        lock(&self.inner.st).counters
    }

    /// Whether its doorbells are memory the device writes ([`crate::backend::memory`]).
    pub fn memory_doorbells(&self) -> bool {
        self.inner.cfg.memory.is_some()
    }

    /// Counts a doorbell call refused because the doorbells are memory
    /// ([`Counters::doorbell_calls`]).
    pub fn refuse_call(&self) {
        lock(&self.inner.st).counters.doorbell_calls += 1;
    }
}

impl Drop for BackendController {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some((ctx, mr)) = self.bar.take() {
            let _ = ctx.dereg_mr(mr);
        }
    }
}
