//! What an emulated controller is built from ([`ControllerConfig`]): its queues (SQ rings
//! and tail doorbells, the CQ ring and head doorbell), their depth, the regions it may DMA
//! to ([`DmaRegion`]), and, for a memory-doorbell controller, its registers and PRP window
//! ([`MemoryConfig`], see [`crate::backend::memory`]).

use crate::api::{MemRef, NvmeCtrlAttrs};
use crate::backend::memory::PrpWindow;
use crate::backend::{BackendError, Span};
use crate::fabric::{MrId, MrInfo};
use crate::wire::{CQE_LEN, SQE_LEN};

/// An address range the controller may DMA to and from (a mapped staging buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DmaRegion {
    /// The region holding the range.
    pub mr: MrId,
    /// The region's first byte's address (to translate addresses to offsets).
    pub mr_addr: u64,
    /// First mapped address.
    pub addr: u64,
    /// Mapped length in bytes.
    pub len: u64,
}

impl DmaRegion {
    /// A whole memory region.
    pub fn whole(mr: &MrInfo) -> DmaRegion {
        DmaRegion {
            mr: mr.id,
            mr_addr: mr.addr,
            addr: mr.addr,
            len: mr.len,
        }
    }

    /// Part of a region (e.g. a staging buffer); `None` unless `mem` lies inside `mr`.
    pub fn from_mem(mem: &MemRef, mr: &MrInfo) -> Option<DmaRegion> {
        mem.within(mr).then_some(DmaRegion {
            mr: mr.id,
            mr_addr: mr.addr,
            addr: mem.addr,
            len: mem.len,
        })
    }

    /// The region offset of `len` bytes at `addr`, when they are all mapped here.
    pub(crate) fn translate(&self, addr: u64, len: u64) -> Option<u64> {
        let end = addr.checked_add(len)?;
        (addr >= self.addr && end <= self.addr.checked_add(self.len)?).then(|| addr - self.mr_addr)
    }
}

/// One submission queue: ring, tail doorbell, initial tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqConfig {
    /// The ring: `depth` entries of 64 bytes.
    pub ring: Span,
    /// The tail doorbell: 4 bytes, little-endian.
    pub doorbell: Span,
    /// Initial tail (and head), `< depth`.
    pub tail_ini: u16,
}

/// Everything a controller needs: queues, depth, DMA regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Entries per queue (all SQs and the CQ), at least 2.
    pub depth: u16,
    /// The SQs, served round-robin; SQ ids in CQEs are their indices + 1.
    pub sqs: Vec<SqConfig>,
    /// The CQ ring: `depth` entries of 16 bytes.
    pub cq_ring: Span,
    /// The CQ head doorbell: 4 bytes, little-endian.
    pub cq_doorbell: Span,
    /// Initial CQ head (and tail), `< depth`.
    pub cq_head_ini: u16,
    /// Where the controller may DMA data.
    pub dma: Vec<DmaRegion>,
    /// A memory-doorbell controller's registers and PRP window; `None`: doorbells are rung
    /// by calls.
    pub memory: Option<MemoryConfig>,
}

/// What a memory-doorbell controller has besides its queues (see
/// [`crate::backend::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Its register block ([`crate::backend::memory::MemoryBar::regs`]).
    pub regs: Span,
    /// How the device's PRP addresses map to virtual addresses; `None`: they are virtual.
    pub prp: Option<PrpWindow>,
}

impl ControllerConfig {
    /// The configuration for the offload API's controller attributes: `depth` is the SRQ's
    /// `nvme_queue_depth`, `mr_of` finds the regions the memory references name, `dma` are
    /// the mapped staging buffers.
    pub fn from_attrs(
        attrs: &NvmeCtrlAttrs,
        depth: u16,
        mr_of: impl Fn(MrId) -> Option<MrInfo>,
        dma: Vec<DmaRegion>,
    ) -> Result<ControllerConfig, BackendError> {
        let span = |m: &MemRef| {
            mr_of(m.mr)
                .and_then(|mr| Span::from_mem(m, &mr))
                .ok_or(BackendError::Config("memory reference outside its region"))
        };
        let sqs = attrs
            .sqs()
            .map(|sq| {
                Ok(SqConfig {
                    ring: span(&sq.buf)?,
                    doorbell: span(&sq.db)?,
                    tail_ini: sq.db_ini,
                })
            })
            .collect::<Result<Vec<_>, BackendError>>()?;
        let cfg = ControllerConfig {
            depth,
            sqs,
            cq_ring: span(&attrs.cq_buf)?,
            cq_doorbell: span(&attrs.cqdb)?,
            cq_head_ini: attrs.cqdb_ini,
            dma,
            memory: None,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks sizes and initial values.
    pub fn validate(&self) -> Result<(), BackendError> {
        let cfg = BackendError::Config;
        if self.depth < 2 {
            return Err(cfg("queue depth below 2"));
        }
        if self.sqs.is_empty() {
            return Err(cfg("no submission queue"));
        }
        let sq_errors = [
            "SQ ring smaller than depth × 64 bytes",
            "SQ doorbell shorter than 4 bytes",
            "initial SQ tail not below the depth",
        ];
        for sq in &self.sqs {
            self.check_ring((&sq.ring, SQE_LEN), &sq.doorbell, sq.tail_ini, sq_errors)?;
        }
        let cq_errors = [
            "CQ ring smaller than depth × 16 bytes",
            "CQ doorbell shorter than 4 bytes",
            "initial CQ head not below the depth",
        ];
        let cq_ring = (&self.cq_ring, CQE_LEN);
        self.check_ring(cq_ring, &self.cq_doorbell, self.cq_head_ini, cq_errors)?;
        if self
            .memory
            .is_some_and(|m| m.regs.len < crate::backend::memory::REGS_LEN)
        {
            return Err(cfg("register block shorter than 32 bytes"));
        }
        Ok(())
    }

    /// One ring of `depth` entries of `entry_len` bytes, its doorbell and the index it
    /// starts at; the three errors are those of a ring too small, a doorbell shorter than 4
    /// bytes and an index not below the depth, in the order checked.
    fn check_ring(
        &self,
        (ring, entry_len): (&Span, usize),
        doorbell: &Span,
        ini: u16,
        [too_small, too_short, ini_too_high]: [&'static str; 3],
    ) -> Result<(), BackendError> {
        if ring.len < u64::from(self.depth) * entry_len as u64 {
            return Err(BackendError::Config(too_small));
        }
        if doorbell.len < 4 {
            return Err(BackendError::Config(too_short));
        }
        if ini >= self.depth {
            return Err(BackendError::Config(ini_too_high));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::Access;

    fn mr(id: u32, addr: u64, len: u64) -> MrInfo {
        MrInfo {
            id: MrId(id),
            addr,
            len,
            lkey: 1,
            rkey: 2,
            access: Access::LOCAL_WRITE,
        }
    }

    #[test]
    fn dma_region_translates_inside_only() {
        let m = mr(1, 0x10_000, 0x4000);
        let r = DmaRegion::from_mem(&MemRef::of(&m, 0x1000, 0x1000), &m).unwrap();
        assert_eq!(r.translate(0x11_000, 0x1000), Some(0x1000));
        assert_eq!(r.translate(0x11_800, 0x800), Some(0x1800));
        assert_eq!(r.translate(0x11_801, 0x800), None);
        assert_eq!(r.translate(0x10_fff, 1), None);
        assert_eq!(r.translate(u64::MAX, 2), None);
        assert!(DmaRegion::from_mem(&MemRef::of(&m, 0x3000, 0x2000), &m).is_none());
        assert_eq!(DmaRegion::whole(&m).translate(0x10_000, 0x4000), Some(0));
    }

    #[test]
    fn config_validation() {
        let m = mr(1, 0, 1 << 16);
        let good = ControllerConfig {
            depth: 8,
            sqs: vec![SqConfig {
                ring: Span::new(&m, 0, 8 * 64),
                doorbell: Span::new(&m, 4096, 4),
                tail_ini: 7,
            }],
            cq_ring: Span::new(&m, 1024, 8 * 16),
            cq_doorbell: Span::new(&m, 4100, 4),
            cq_head_ini: 0,
            dma: vec![],
            memory: None,
        };
        good.validate().unwrap();
        let bad = [
            ControllerConfig {
                depth: 1,
                ..good.clone()
            },
            ControllerConfig {
                depth: 16,
                ..good.clone()
            },
            ControllerConfig {
                sqs: vec![],
                ..good.clone()
            },
            ControllerConfig {
                cq_head_ini: 8,
                ..good.clone()
            },
            ControllerConfig {
                cq_doorbell: Span::new(&m, 4100, 2),
                ..good.clone()
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
        let mut b = good.clone();
        b.sqs[0].tail_ini = 8;
        assert!(b.validate().is_err());
    }
}
