//! The NVMe queue protocol seen from the producer and consumer side, through memory
//! regions: [`SqWriter`] writes SQEs into an SQ ring and rings its tail doorbell,
//! [`CqReader`] takes CQEs by phase tag from a CQ ring and releases them through the
//! CQ-head doorbell. How a doorbell is rung is the [`Doorbells`] a backend hands out.

use std::sync::Arc;

use crate::api::MemRef;
use crate::fabric::{DeviceContext, MrId, MrInfo};
use crate::wire::{Cqe, CqeRepr, SqeRepr, CQE_LEN, SQE_LEN};

use super::BackendError;

/// A byte range inside a memory region, by offset (what `mr_read`/`mr_write` take).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// The region.
    pub mr: MrId,
    /// Offset of the first byte within the region.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Span {
    /// `len` bytes at `offset` in `mr`.
    pub fn new(mr: &MrInfo, offset: u64, len: u64) -> Span {
        Span {
            mr: mr.id,
            offset,
            len,
        }
    }

    /// The span of an API memory reference; `None` unless it lies inside `mr`.
    pub fn from_mem(mem: &MemRef, mr: &MrInfo) -> Option<Span> {
        mem.within(mr).then(|| Span {
            mr: mr.id,
            offset: mem.offset_in(mr),
            len: mem.len,
        })
    }
}

pub(crate) fn read_u32(ctx: &dyn DeviceContext, s: &Span) -> Result<u32, BackendError> {
    let mut b = [0u8; 4];
    ctx.mr_read(s.mr, s.offset, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

pub(crate) fn write_u32(ctx: &dyn DeviceContext, s: &Span, v: u32) -> Result<(), BackendError> {
    ctx.mr_write(s.mr, s.offset, &v.to_le_bytes())?;
    Ok(())
}

/// How a queue producer or consumer rings a controller's doorbells: in-process, the
/// controller's own (write the value, wake its task); through a plugin, the host's PCI side
/// ([`super::host::HostBus`]).
pub trait Doorbells: Send + Sync {
    /// Writes `tail` into SQ `sq`'s tail doorbell and wakes the controller.
    fn ring_sq(&self, sq: usize, tail: u16) -> Result<(), BackendError>;
    /// Writes `head` into the CQ-head doorbell and wakes the controller.
    fn ring_cq(&self, head: u16) -> Result<(), BackendError>;
}

/// The consumer side of a controller's CQ: tracks head and phase.
pub struct CqReader {
    ctx: Arc<dyn DeviceContext>,
    ring: Span,
    depth: u16,
    head: u16,
    phase: bool,
    bells: Arc<dyn Doorbells>,
    /// The head last written into the doorbell: [`CqReader::release`] writes only a new one.
    rung: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for CqReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqReader")
            .field("head", &self.head)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl CqReader {
    /// A consumer of the CQ ring `ring` (`depth` entries, read through `ctx`) starting at
    /// `head` with phase 1, releasing entries through `bells`.
    pub fn new(
        ctx: Arc<dyn DeviceContext>,
        ring: Span,
        depth: u16,
        head: u16,
        bells: Arc<dyn Doorbells>,
    ) -> CqReader {
        CqReader {
            ctx,
            ring,
            depth,
            head,
            phase: true,
            bells,
            rung: std::sync::atomic::AtomicU32::new(u32::from(head)),
        }
    }

    /// Takes the entry at the head if its phase tag is the current one, advancing the head
    /// (and flipping the expected phase at the wrap). Does not ring: see [`Self::release`].
    ///
    ///
    /// An entry whose tag is current is read a second time before it is taken, as a
    /// driver reads a CQ a real controller writes by DMA (status with the tag first, the
    /// rest after a barrier): an entry is never taken half written.
    pub fn poll(&mut self) -> Result<Option<CqeRepr>, BackendError> {
        let off = self.ring.offset + u64::from(self.head) * CQE_LEN as u64;
        let mut b = [0u8; CQE_LEN];
        self.ctx.mr_read(self.ring.mr, off, &mut b)?;
        let fresh = Cqe::new_checked(&b[..]).is_ok_and(|c| c.phase() == self.phase);
        if !fresh {
            return Ok(None);
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        self.ctx.mr_read(self.ring.mr, off, &mut b)?;
        let cqe =
            CqeRepr::parse_bytes(&b).map_err(|_| BackendError::Config("CQE does not parse"))?;
        if cqe.phase != self.phase {
            return Ok(None);
        }
        self.head = (self.head + 1) % self.depth;
        if self.head == 0 {
            self.phase = !self.phase;
        }
        Ok(Some(cqe))
    }

    /// Takes every new entry (without ringing).
    pub fn drain(&mut self) -> Result<Vec<CqeRepr>, BackendError> {
        let mut out = Vec::new();
        while let Some(c) = self.poll()? {
            out.push(c);
        }
        Ok(out)
    }

    /// Writes the current head into the CQ-head doorbell and wakes the controller, unless
    /// the doorbell already holds it (a doorbell write that releases nothing is a wasted
    /// MMIO write on a real device).
    pub fn release(&self) -> Result<(), BackendError> {
        use std::sync::atomic::Ordering;
        if self.rung.load(Ordering::Relaxed) == u32::from(self.head) {
            return Ok(());
        }
        self.bells.ring_cq(self.head)?;
        self.rung.store(u32::from(self.head), Ordering::Relaxed);
        Ok(())
    }

    /// The next entry to read.
    pub fn head(&self) -> u16 {
        self.head
    }

    /// The phase tag that marks a new entry.
    pub fn phase(&self) -> bool {
        self.phase
    }
}

/// The producer side of one SQ: writes SQEs at the tail and rings. It does not know the
/// controller's head: callers keep at most `depth - 1` commands outstanding (the CQEs'
/// `sq_head` tells how far the controller has fetched).
pub struct SqWriter {
    ctx: Arc<dyn DeviceContext>,
    ring: Span,
    depth: u16,
    sq: usize,
    tail: u16,
    bells: Arc<dyn Doorbells>,
}

impl std::fmt::Debug for SqWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqWriter")
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl SqWriter {
    /// A producer for SQ `sq` whose ring is `ring` (`depth` entries, written through
    /// `ctx`), starting at `tail`, ringing through `bells`.
    pub fn new(
        ctx: Arc<dyn DeviceContext>,
        ring: Span,
        depth: u16,
        sq: usize,
        tail: u16,
        bells: Arc<dyn Doorbells>,
    ) -> SqWriter {
        SqWriter {
            ctx,
            ring,
            depth,
            sq,
            tail,
            bells,
        }
    }

    /// Writes `sqe` at the tail and advances the tail (without ringing).
    pub fn push(&mut self, sqe: &SqeRepr) -> Result<(), BackendError> {
        let bytes = sqe
            .to_bytes()
            .map_err(|_| BackendError::Config("SQE does not encode"))?;
        self.push_raw(&bytes)
    }

    /// Writes 64 raw bytes at the tail and advances the tail (without ringing).
    pub fn push_raw(&mut self, bytes: &[u8; SQE_LEN]) -> Result<(), BackendError> {
        let off = self.ring.offset + u64::from(self.tail) * SQE_LEN as u64;
        self.ctx.mr_write(self.ring.mr, off, bytes)?;
        self.tail = (self.tail + 1) % self.depth;
        Ok(())
    }

    /// Writes the tail into the doorbell and wakes the controller.
    pub fn ring(&self) -> Result<(), BackendError> {
        self.bells.ring_sq(self.sq, self.tail)
    }

    /// [`Self::push`] then [`Self::ring`].
    pub fn submit(&mut self, sqe: &SqeRepr) -> Result<(), BackendError> {
        self.push(sqe)?;
        self.ring()
    }

    /// The next slot to write.
    pub fn tail(&self) -> u16 {
        self.tail
    }
}
