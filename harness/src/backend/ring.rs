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

/// What the rings of one controller's queues share: the context their memory is reached
/// through, their depth and the doorbells that ring them. Makes the queues' [`CqReader`]
/// and [`SqWriter`]s.
#[derive(Clone)]
pub struct Rings {
    ctx: Arc<dyn DeviceContext>,
    depth: u16,
    bells: Arc<dyn Doorbells>,
}

impl std::fmt::Debug for Rings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rings")
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

impl Rings {
    /// Rings of `depth` entries, read and written through `ctx`, rung through `bells`.
    pub fn new(ctx: Arc<dyn DeviceContext>, depth: u16, bells: Arc<dyn Doorbells>) -> Rings {
        Rings { ctx, depth, bells }
    }

    /// A consumer of the CQ ring `ring` starting at `head` with phase 1.
    pub fn cq_reader(&self, ring: Span, head: u16) -> CqReader {
        CqReader {
            rings: self.clone(),
            ring,
            head,
            phase: true,
            rung: std::sync::atomic::AtomicU32::new(u32::from(head)),
        }
    }

    /// A producer for SQ `sq` whose ring is `ring`, starting at `tail`.
    pub fn sq_writer(&self, sq: usize, ring: Span, tail: u16) -> SqWriter {
        SqWriter {
            rings: self.clone(),
            ring,
            sq,
            tail,
        }
    }

    /// The offset in `ring`'s region of entry `i` (of `len` bytes each).
    fn slot(ring: &Span, i: u16, len: usize) -> u64 {
        ring.offset + u64::from(i) * len as u64
    }

    /// The index after `i`, wrapping at the depth.
    fn next(&self, i: u16) -> u16 {
        (i + 1) % self.depth
    }
}

/// The consumer side of a controller's CQ: tracks head and phase.
#[derive(Debug)]
pub struct CqReader {
    rings: Rings,
    ring: Span,
    head: u16,
    phase: bool,
    /// The head last written into the doorbell: [`CqReader::release`] writes only a new one.
    rung: std::sync::atomic::AtomicU32,
}

impl CqReader {
    /// Takes the entry at the head if its phase tag is the current one, advancing the head
    /// (and flipping the expected phase at the wrap). Does not ring: see [`Self::release`].
    ///
    ///
    /// An entry whose tag is current is read a second time before it is taken, as a
    /// driver reads a CQ a real controller writes by DMA (status with the tag first, the
    /// rest after a barrier): an entry is never taken half written.
    pub fn poll(&mut self) -> Result<Option<CqeRepr>, BackendError> {
        let off = Rings::slot(&self.ring, self.head, CQE_LEN);
        let mut b = [0u8; CQE_LEN];
        self.rings.ctx.mr_read(self.ring.mr, off, &mut b)?;
        let fresh = Cqe::new_checked(&b[..]).is_ok_and(|c| c.phase() == self.phase);
        if !fresh {
            return Ok(None);
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        self.rings.ctx.mr_read(self.ring.mr, off, &mut b)?;
        let cqe =
            CqeRepr::parse_bytes(&b).map_err(|_| BackendError::Config("CQE does not parse"))?;
        if cqe.phase != self.phase {
            return Ok(None);
        }
        self.head = self.rings.next(self.head);
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
        self.rings.bells.ring_cq(self.head)?;
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
#[derive(Debug)]
pub struct SqWriter {
    rings: Rings,
    ring: Span,
    sq: usize,
    tail: u16,
}

impl SqWriter {
    /// Writes `sqe` at the tail and advances the tail (without ringing).
    pub fn push(&mut self, sqe: &SqeRepr) -> Result<(), BackendError> {
        let bytes = sqe
            .to_bytes()
            .map_err(|_| BackendError::Config("SQE does not encode"))?;
        self.push_raw(&bytes)
    }

    /// Writes 64 raw bytes at the tail and advances the tail (without ringing).
    pub fn push_raw(&mut self, bytes: &[u8; SQE_LEN]) -> Result<(), BackendError> {
        let off = Rings::slot(&self.ring, self.tail, SQE_LEN);
        self.rings.ctx.mr_write(self.ring.mr, off, bytes)?;
        self.tail = self.rings.next(self.tail);
        Ok(())
    }

    /// Writes the tail into the doorbell and wakes the controller.
    pub fn ring(&self) -> Result<(), BackendError> {
        self.rings.bells.ring_sq(self.sq, self.tail)
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
