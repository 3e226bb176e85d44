//! A real controller as the engine's [`BackendPort`]: one I/O queue pair whose rings live
//! in a memory region of the engine's device context (mapped for the controller's DMA at
//! IOVA = the region's virtual address), doorbells written into BAR0, completions reaped
//! by phase tag by the engine's own [`CqReader`], and an MSI-X vector that wakes the
//! engine's reaper.
//!
//! A watcher thread turns what the controller and the kernel report into the port's
//! [`CtrlState`] ([`judge`]): CSTS.CFS, all-ones reads (the device gone), VFIO's error
//! eventfd (AER) and request eventfd (hot-unplug) all make it `PciError`, for good.
//!
//! The engine hands the port one contiguous staging range per command; the port describes
//! it as the controller wants ([`PrpPool`]): PRP1, PRP2, and a PRP list in a page of its
//! own for each command slot.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::controller::VfioController;
use super::queue::DmaMemory;
use super::regs::{self, Registers};
use super::sys::{Bar0, DmaBuffer, Notifier, PAGE};
use super::VfioError;
use crate::api::{MemRef, NvmeCtrlAttrs};
use crate::backend::{
    prp, BackendError, BackendPort, CqReader, CtrlState, Doorbells, Rings, Span, SqWriter,
};
use crate::fabric::{DeviceContext, MrInfo};
use crate::wire::{cq_head_doorbell, sq_tail_doorbell, CQE_LEN, SQE_LEN};

/// The MSI-X vector the port's CQ raises.
const VECTOR: u16 = 0;
/// How often the watcher reads CSTS and wakes the reaper even without an interrupt (a lost
/// interrupt then costs at most this long, never a command).
const WATCH_TICK: Duration = Duration::from_millis(20);
/// The wake-up period when the CQ has no interrupt.
const POLL_TICK: Duration = Duration::from_millis(1);

/// Where the rings of a port's queue pair live in its memory region: SQ ring first, CQ
/// ring on the next page boundary, then a page whose first 8 bytes name the doorbells
/// (the engine's `create_nvme_ctrl` takes doorbell addresses; the real ones are in BAR0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    /// Entries of each ring.
    pub depth: u16,
    /// Offset of the SQ ring (0).
    pub sq: u64,
    /// Offset of the CQ ring (page aligned).
    pub cq: u64,
    /// Offset of the SQ tail doorbell's name; the CQ head doorbell's is 4 bytes after.
    pub doorbells: u64,
    /// Bytes of the region: whole pages, so that it maps for DMA as it is.
    pub len: u64,
}

impl RingLayout {
    /// The layout of a queue pair of `depth` entries.
    pub fn new(depth: u16) -> RingLayout {
        let page = PAGE as u64;
        let sq_len = u64::from(depth) * SQE_LEN as u64;
        let cq_len = u64::from(depth) * CQE_LEN as u64;
        let cq = sq_len.div_ceil(page) * page;
        let doorbells = cq + cq_len.div_ceil(page) * page;
        RingLayout {
            depth,
            sq: 0,
            cq,
            doorbells,
            len: doorbells + page,
        }
    }

    /// The SQ ring's bytes.
    pub fn sq_len(&self) -> u64 {
        u64::from(self.depth) * SQE_LEN as u64
    }

    /// The CQ ring's bytes.
    pub fn cq_len(&self) -> u64 {
        u64::from(self.depth) * CQE_LEN as u64
    }

    /// The attributes `create_nvme_ctrl` takes for a queue pair laid out so in `rings`:
    /// one SQ, doorbells from 0, commands timing out after `cmd_timeout_us` (0: never).
    pub fn ctrl_attrs(&self, rings: &MrInfo, cmd_timeout_us: u32) -> NvmeCtrlAttrs {
        NvmeCtrlAttrs {
            sq_buf: MemRef::of(rings, self.sq, self.sq_len()),
            cq_buf: MemRef::of(rings, self.cq, self.cq_len()),
            sqdb: MemRef::of(rings, self.doorbells, 4),
            cqdb: MemRef::of(rings, self.doorbells + 4, 4),
            sqdb_ini: 0,
            cqdb_ini: 0,
            cmd_timeout_us,
            extra_sqs: vec![],
        }
    }
}

/// The doorbells of I/O queue pair `qid`, in a controller's registers.
#[derive(Debug)]
pub struct BarDoorbells<R: Registers> {
    regs: R,
    qid: u16,
    dstrd: u8,
}

impl<R: Registers> BarDoorbells<R> {
    /// The doorbells of queue pair `qid` of a controller with doorbell stride `dstrd`.
    pub fn new(regs: R, qid: u16, dstrd: u8) -> BarDoorbells<R> {
        BarDoorbells { regs, qid, dstrd }
    }
}

impl<R: Registers> Doorbells for BarDoorbells<R> {
    fn ring_sq(&self, sq: usize, tail: u16) -> Result<(), BackendError> {
        if sq != 0 {
            return Err(BackendError::Config("a VFIO port has one SQ"));
        }
        self.regs
            .write32(sq_tail_doorbell(self.qid, self.dstrd), u32::from(tail));
        Ok(())
    }

    fn ring_cq(&self, head: u16) -> Result<(), BackendError> {
        self.regs
            .write32(cq_head_doorbell(self.qid, self.dstrd), u32::from(head));
        Ok(())
    }
}

/// One PRP list page per command slot (CID), in DMA memory.
#[derive(Debug)]
pub struct PrpPool<M: DmaMemory> {
    mem: M,
    slots: u16,
}

impl<M: DmaMemory> PrpPool<M> {
    /// A pool over `mem`, which holds `slots` pages.
    pub fn new(mem: M, slots: u16) -> PrpPool<M> {
        PrpPool { mem, slots }
    }

    /// PRP1 and PRP2 for `len` bytes at bus address `addr`, for the command in slot `cid`
    /// (whose list page this writes when the transfer spans more than two pages). A
    /// transfer that would need a second list page (over 2 MiB) is refused.
    pub fn prps(&self, cid: u16, addr: u64, len: u64) -> Result<(u64, u64), BackendError> {
        if len == 0 {
            return Ok((addr, 0));
        }
        if cid >= self.slots {
            return Err(BackendError::Config("CID beyond the port's PRP list pages"));
        }
        let page = PAGE as u64;
        let bad = |_| BackendError::Config("the transfer cannot be described by PRPs");
        if prp::list_pages_needed(addr, len, page).map_err(bad)? > 1 {
            return Err(BackendError::Config(
                "the transfer needs more than one PRP list page",
            ));
        }
        let list = self.mem.iova() + u64::from(cid) * page;
        let plan = prp::plan(addr, len, page, list).map_err(bad)?;
        if let Some(entries) = plan.lists.first() {
            let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
            self.mem.write(usize::from(cid) * PAGE, &bytes);
        }
        Ok((plan.prp1, plan.prp2))
    }
}

/// What the watcher saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// CSTS as read (all ones: the device is gone).
    pub csts: u32,
    /// VFIO's error eventfd fired (AER on the device or the port above it).
    pub error: bool,
    /// VFIO's request eventfd fired (the device is being unplugged).
    pub request: bool,
}

/// The state a controller is in after what was seen, and why when it is not running.
pub fn judge(seen: Seen) -> (CtrlState, Option<&'static str>) {
    let why = if seen.request {
        Some("the kernel asks for the device back (hot-unplug)")
    } else if seen.error {
        Some("PCI error reported (VFIO error eventfd)")
    } else {
        super::regs::csts_fault(seen.csts)
    };
    match why {
        Some(w) => (CtrlState::PciError, Some(w)),
        None => (CtrlState::Running, None),
    }
}

/// What the port and its watcher share.
#[derive(Default)]
struct Watched {
    /// 0 running, 1 PCI error.
    state: AtomicU8,
    why: Mutex<Option<&'static str>>,
    activity: Notify,
    stop: AtomicBool,
}

/// A real controller's I/O queue pair as the engine's backend port.
pub struct VfioPort {
    ctx: Arc<dyn DeviceContext>,
    rings: MrInfo,
    layout: RingLayout,
    qid: u16,
    bells: Arc<BarDoorbells<Bar0>>,
    pool: PrpPool<DmaBuffer>,
    watched: Arc<Watched>,
    watcher: Mutex<Option<JoinHandle<()>>>,
    interrupts: bool,
}

impl std::fmt::Debug for VfioPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioPort")
            .field("qid", &self.qid)
            .field("depth", &self.layout.depth)
            .field("interrupts", &self.interrupts)
            .finish_non_exhaustive()
    }
}

impl VfioPort {
    /// Creates I/O queue pair `qid` of `depth` entries on `ctrl` with its rings in `rings`
    /// (a region of `ctx` laid out as [`RingLayout::new`] says, at least that long), maps
    /// the region for DMA, wires MSI-X and the error and request eventfds, and starts the
    /// watcher. Undo with [`VfioPort::detach`].
    pub fn attach(
        ctrl: &mut VfioController,
        ctx: Arc<dyn DeviceContext>,
        rings: MrInfo,
        depth: u16,
        qid: u16,
    ) -> Result<VfioPort, VfioError> {
        let layout = RingLayout::new(depth);
        if rings.len < layout.len {
            return Err(VfioError::Unsupported(format!(
                "ring region of {} bytes, a queue pair of depth {depth} needs {}",
                rings.len, layout.len
            )));
        }
        let error = ctrl.device().notifier(Notifier::Error)?;
        let request = ctrl.device().notifier(Notifier::Request)?;
        // Off first: after a reset of the controller, only enabling MSI-X anew reprograms it.
        let _ = ctrl.device().msix_off();
        let irq = ctrl.device().notifier(Notifier::Msix(VECTOR)).ok();
        ctrl.map(rings.addr, layout.len)?;
        let pool = match ctrl.device().dma(usize::from(depth)) {
            Ok(p) => p,
            Err(e) => {
                let _ = ctrl.unmap(rings.addr, layout.len);
                return Err(e);
            }
        };
        if let Err(e) = ctrl.create_queues_at(
            qid,
            depth,
            rings.addr + layout.sq,
            rings.addr + layout.cq,
            irq.as_ref().map(|_| VECTOR),
        ) {
            let _ = ctrl.unmap(rings.addr, layout.len);
            return Err(e);
        }
        let bar = ctrl.device().bar0().clone();
        let watched = Arc::new(Watched::default());
        let interrupts = irq.is_some();
        let watcher = {
            let watched = watched.clone();
            let bar = bar.clone();
            std::thread::Builder::new()
                .name(format!("vfio-watch-q{qid}"))
                .spawn(move || watch(&bar, &watched, irq, error, request))
                .map_err(|e| VfioError::Unsupported(format!("watcher thread: {e}")))?
        };
        Ok(VfioPort {
            ctx,
            rings,
            layout,
            qid,
            bells: Arc::new(BarDoorbells::new(bar, qid, ctrl.cap().dstrd)),
            pool: PrpPool::new(pool, depth),
            watched,
            watcher: Mutex::new(Some(watcher)),
            interrupts,
        })
    }

    /// Stops the watcher, deletes the queue pair (when the controller still answers) and
    /// unmaps the rings: after this the region may be deregistered.
    pub fn detach(&self, ctrl: &mut VfioController) -> Result<(), VfioError> {
        self.stop_watcher();
        let deleted = if self.state() == CtrlState::Running {
            ctrl.delete_queues(self.qid)
        } else {
            Ok(())
        };
        let unmapped = ctrl.unmap(self.rings.addr, self.layout.len);
        deleted.and(unmapped)
    }

    /// Why the port is not running, if it is not.
    pub fn why(&self) -> Option<&'static str> {
        *self.watched.why.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the CQ raises an interrupt (else the reaper is woken every millisecond).
    pub fn interrupts(&self) -> bool {
        self.interrupts
    }

    /// The layout of its ring region.
    pub fn layout(&self) -> RingLayout {
        self.layout
    }

    fn stop_watcher(&self) {
        self.watched.stop.store(true, Ordering::Relaxed);
        let handle = self
            .watcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn span(&self, offset: u64, len: u64) -> Span {
        Span::new(&self.rings, offset, len)
    }

    /// The rings of the queue pair, rung through BAR0's doorbells.
    fn queues(&self) -> Rings {
        Rings::new(self.ctx.clone(), self.layout.depth, self.bells.clone())
    }
}

impl Drop for VfioPort {
    fn drop(&mut self) {
        self.stop_watcher();
    }
}

/// Reads an eventfd's counter (non-blocking); whether it had fired.
fn drain(fd: &OwnedFd) -> bool {
    let mut b = [0u8; 8];
    matches!(nix::unistd::read(fd, &mut b), Ok(8))
}

/// The watcher: waits on the interrupt and the notifiers, reads CSTS every tick, and
/// moves the port to `PciError` (once) when [`judge`] says so; wakes the reaper on every
/// interrupt, on the state change, every [`WATCH_TICK`] in any case, and every
/// [`POLL_TICK`] when there is no interrupt.
fn watch(
    bar: &dyn Registers,
    watched: &Watched,
    irq: Option<OwnedFd>,
    error: OwnedFd,
    request: OwnedFd,
) {
    use nix::poll::{poll, PollFd, PollFlags};
    let tick = if irq.is_some() { WATCH_TICK } else { POLL_TICK };
    let mut last_csts = std::time::Instant::now();
    let mut seen = Seen::default();
    while !watched.stop.load(Ordering::Relaxed) {
        let mut fds = vec![
            PollFd::new(error.as_fd(), PollFlags::POLLIN),
            PollFd::new(request.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(i) = &irq {
            fds.push(PollFd::new(i.as_fd(), PollFlags::POLLIN));
        }
        let ms = u16::try_from(tick.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, ms);
        seen.error |= drain(&error);
        seen.request |= drain(&request);
        let interrupted = irq.as_ref().is_some_and(drain);
        let periodic = last_csts.elapsed() >= WATCH_TICK;
        if periodic || seen.error || seen.request {
            last_csts = std::time::Instant::now();
            seen.csts = regs::csts(bar).0;
        }
        let (state, why) = judge(seen);
        let changed = state == CtrlState::PciError && watched.state.swap(1, Ordering::AcqRel) == 0;
        if changed {
            *watched.why.lock().unwrap_or_else(|p| p.into_inner()) = why;
        }
        if changed || interrupted || periodic || irq.is_none() {
            watched.activity.notify_one();
        }
    }
}

#[async_trait]
impl BackendPort for VfioPort {
    fn depth(&self) -> u16 {
        self.layout.depth
    }

    fn sq_count(&self) -> usize {
        1
    }

    fn sq_writer(&self, sq: usize) -> Option<SqWriter> {
        let ring = self.span(self.layout.sq, self.layout.sq_len());
        (sq == 0).then(|| self.queues().sq_writer(0, ring, 0))
    }

    fn cq_reader(&self) -> CqReader {
        let ring = self.span(self.layout.cq, self.layout.cq_len());
        self.queues().cq_reader(ring, 0)
    }

    fn state(&self) -> CtrlState {
        match self.watched.state.load(Ordering::Acquire) {
            0 => CtrlState::Running,
            _ => CtrlState::PciError,
        }
    }

    async fn wait_activity(&self) {
        self.watched.activity.notified().await;
    }

    fn prps(&self, cid: u16, addr: u64, len: u64) -> Result<(u64, u64), BackendError> {
        self.pool.prps(cid, addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::tests::Ram;
    use super::super::regs::fake::FakeRegisters;
    use super::*;

    #[test]
    fn layout_keeps_rings_on_pages() {
        let l = RingLayout::new(128);
        assert_eq!((l.sq, l.cq, l.doorbells, l.len), (0, 8192, 12288, 16384));
        assert_eq!((l.sq_len(), l.cq_len()), (8192, 2048));
        let small = RingLayout::new(2);
        assert_eq!((small.cq, small.doorbells, small.len), (4096, 8192, 12288));
        for depth in [2u16, 3, 31, 64, 255, 1024] {
            let l = RingLayout::new(depth);
            assert_eq!(l.cq % 4096, 0);
            assert_eq!(l.len % 4096, 0);
            assert!(l.sq + l.sq_len() <= l.cq);
            assert!(l.cq + l.cq_len() <= l.doorbells);
        }
    }

    #[test]
    fn ctrl_attrs_name_the_layouts_rings_and_doorbells() {
        let l = RingLayout::new(128);
        let rings = MrInfo {
            id: crate::fabric::MrId(7),
            addr: 0x10_0000,
            len: l.len,
            lkey: 1,
            rkey: 2,
            access: crate::fabric::Access::LOCAL_WRITE,
        };
        let a = l.ctrl_attrs(&rings, 2_000_000);
        assert_eq!((a.sq_buf.addr, a.sq_buf.len), (0x10_0000, 8192));
        assert_eq!((a.cq_buf.addr, a.cq_buf.len), (0x10_0000 + 8192, 2048));
        assert_eq!((a.sqdb.addr, a.sqdb.len), (0x10_0000 + 12288, 4));
        assert_eq!((a.cqdb.addr, a.cqdb.len), (0x10_0000 + 12292, 4));
        assert_eq!(
            (a.sqdb_ini, a.cqdb_ini, a.cmd_timeout_us),
            (0, 0, 2_000_000)
        );
        assert!(a.extra_sqs.is_empty());
        assert!([a.sq_buf.mr, a.cq_buf.mr, a.sqdb.mr, a.cqdb.mr] == [rings.id; 4]);
    }

    #[test]
    fn doorbells_land_on_the_queue_pairs_registers() {
        let bells = BarDoorbells::new(FakeRegisters::default(), 1, 0);
        bells.ring_sq(0, 5).unwrap();
        bells.ring_cq(3).unwrap();
        assert!(bells.ring_sq(1, 1).is_err(), "one SQ per port");
        assert_eq!(bells.regs.state().writes, vec![(0x1008, 5), (0x100c, 3)]);
        let wide = BarDoorbells::new(FakeRegisters::default(), 2, 1);
        wide.ring_sq(0, 7).unwrap();
        wide.ring_cq(9).unwrap();
        // Stride 8 bytes: SQ y tail at 0x1000 + 2y * 8, CQ y head 8 bytes later.
        assert_eq!(wide.regs.state().writes, vec![(0x1020, 7), (0x1028, 9)]);
    }

    #[test]
    fn prps_use_the_commands_own_list_page() {
        let mem = Ram::new(0x10_0000, 4 * PAGE);
        let pool = PrpPool::new(mem.clone(), 4);
        // Within one page: PRP1 only.
        assert_eq!(pool.prps(0, 0x20_0200, 512).unwrap(), (0x20_0200, 0));
        // Into the next page: PRP2 is that page.
        assert_eq!(
            pool.prps(0, 0x20_0e00, 1024).unwrap(),
            (0x20_0e00, 0x20_1000)
        );
        // Over three pages: PRP2 is slot 2's list page, holding the later pages.
        let (p1, p2) = pool.prps(2, 0x20_0800, 3 * 4096).unwrap();
        assert_eq!((p1, p2), (0x20_0800, 0x10_0000 + 2 * 4096));
        let mut list = [0u8; 24];
        mem.read(2 * PAGE, &mut list);
        let entries: Vec<u64> = list
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(entries, vec![0x20_1000, 0x20_2000, 0x20_3000]);
        let segs = prp::walk(p1, p2, 3 * 4096, 4096, |addr, n| {
            let mut raw = vec![0u8; n * 8];
            mem.read((addr - 0x10_0000) as usize, &mut raw);
            Some(
                raw.chunks(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            )
        })
        .unwrap();
        assert_eq!(segs.iter().map(|s| s.1).sum::<u64>(), 3 * 4096);
        // No data: no PRPs; a slot beyond the pool and a transfer over 2 MiB are refused.
        assert_eq!(pool.prps(0, 0, 0).unwrap(), (0, 0));
        assert!(pool.prps(4, 0x20_0000, 3 * 4096).is_err());
        assert!(pool.prps(0, 0x20_0000, 4 * 1024 * 1024).is_err());
    }

    /// An eventfd and a second descriptor of it to signal it with.
    fn eventfd() -> (OwnedFd, OwnedFd) {
        let efd = nix::sys::eventfd::EventFd::from_flags(
            nix::sys::eventfd::EfdFlags::EFD_NONBLOCK | nix::sys::eventfd::EfdFlags::EFD_CLOEXEC,
        )
        .unwrap();
        let fd = OwnedFd::from(efd);
        let writer = fd.try_clone().unwrap();
        (fd, writer)
    }

    fn signal(fd: &OwnedFd) {
        nix::unistd::write(fd, &1u64.to_ne_bytes()).unwrap();
    }

    /// Runs the watcher over `regs` (with error, request and interrupt eventfds `poke` may
    /// signal) until `until` holds of what it shares or `bound` passes; returns that.
    fn watch_until(
        regs: FakeRegisters,
        poke: impl FnOnce(&FakeRegisters, &OwnedFd, &OwnedFd, &OwnedFd),
        until: impl Fn(&Watched) -> bool,
        bound: Duration,
    ) -> Arc<Watched> {
        let ((err, err_w), (req, req_w), (irq, irq_w)) = (eventfd(), eventfd(), eventfd());
        let watched = Arc::new(Watched::default());
        let regs = Arc::new(regs);
        let thread = {
            let (watched, regs) = (watched.clone(), regs.clone());
            std::thread::spawn(move || watch(&*regs, &watched, Some(irq), err, req))
        };
        poke(&regs, &err_w, &req_w, &irq_w);
        let start = std::time::Instant::now();
        while !until(&watched) && start.elapsed() < bound {
            std::thread::sleep(Duration::from_millis(1));
        }
        watched.stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
        watched
    }

    fn stopped(w: &Watched) -> bool {
        w.state.load(Ordering::Acquire) == 1
    }

    #[test]
    fn the_watcher_stops_the_port_on_each_report_and_only_then() {
        let ready = || {
            let r = FakeRegisters::new(0, None);
            r.state().values.insert(0x1c, 1); // CSTS.RDY
            r
        };
        // Nothing wrong: it stays running, reading CSTS now and then.
        let w = watch_until(
            ready(),
            |_, _, _, _| {},
            |_| false,
            Duration::from_millis(100),
        );
        assert!(!stopped(&w));
        assert_eq!(*w.why.lock().unwrap(), None);
        type Poke = fn(&FakeRegisters, &OwnedFd, &OwnedFd, &OwnedFd);
        let cases: [(Poke, &str); 4] = [
            (|_, e, _, _| signal(e), "PCI error"),
            (|_, _, q, _| signal(q), "hot-unplug"),
            (|r, _, _, _| r.state().gone = true, "all ones"),
            (
                |r, _, _, _| {
                    let mut s = r.state();
                    s.fatal_on_enable = true;
                    s.values.insert(0x14, 1); // CC.EN
                },
                "CFS",
            ),
        ];
        for (poke, words) in cases {
            let w = watch_until(ready(), poke, stopped, Duration::from_secs(5));
            assert!(stopped(&w), "{words}: the port did not stop");
            let why = w.why.lock().unwrap().unwrap_or("");
            assert!(why.contains(words), "{words}: {why}");
        }
    }

    #[test]
    fn an_interrupt_is_taken_and_wakes_the_reaper() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let irq_writer = std::cell::OnceCell::new();
        let w = watch_until(
            FakeRegisters::new(0, None),
            |_, _, _, irq| {
                signal(irq);
                let _ = irq_writer.set(irq.try_clone().unwrap());
            },
            |_| {
                // Taken: the eventfd's counter is back to zero (no longer readable).
                let fd = irq_writer.get().unwrap();
                let mut fds = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                nix::poll::poll(&mut fds, 0u16) == Ok(0)
            },
            Duration::from_secs(5),
        );
        let mut fds = [nix::poll::PollFd::new(
            irq_writer.get().unwrap().as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        assert_eq!(
            nix::poll::poll(&mut fds, 0u16),
            Ok(0),
            "the interrupt was not taken"
        );
        let woken = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(100), w.activity.notified())
                .await
                .is_ok()
        });
        assert!(woken, "the reaper was not woken");
        assert!(!stopped(&w), "an interrupt is no failure");
    }

    #[test]
    fn judge_names_every_way_a_controller_fails() {
        let ok = Seen {
            csts: 1,
            ..Seen::default()
        };
        assert_eq!(judge(ok), (CtrlState::Running, None));
        for (seen, words) in [
            (Seen { csts: 3, ..ok }, "CFS"),
            (
                Seen {
                    csts: u32::MAX,
                    ..ok
                },
                "all ones",
            ),
            (Seen { error: true, ..ok }, "PCI error"),
            (
                Seen {
                    request: true,
                    ..ok
                },
                "hot-unplug",
            ),
        ] {
            let (state, why) = judge(seen);
            assert_eq!(state, CtrlState::PciError, "{seen:?}");
            assert!(why.unwrap().contains(words), "{seen:?}: {why:?}");
        }
    }
}
