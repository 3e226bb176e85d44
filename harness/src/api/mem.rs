//! A byte range inside a registered memory region (`struct ibv_mr_sg`).

use serde::{Deserialize, Serialize};

use crate::fabric::{MrId, MrInfo};

/// `len` bytes at virtual address `addr` inside the memory region `mr` of the provider's
/// device context (`ibv_mr_sg`, with the address form of its `addr`/`offset` union).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemRef {
    /// The region.
    pub mr: MrId,
    /// Virtual address of the first byte, as in an SGE.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
}

impl MemRef {
    /// `len` bytes at `offset` within a registered region.
    pub fn of(mr: &MrInfo, offset: u64, len: u64) -> MemRef {
        MemRef {
            mr: mr.id,
            addr: mr.addr.wrapping_add(offset),
            len,
        }
    }

    /// One past the last byte; `None` when the range wraps the address space.
    pub fn end(&self) -> Option<u64> {
        self.addr.checked_add(self.len)
    }

    /// Offset of the first byte within `mr` (meaningful when [`MemRef::within`] holds).
    pub fn offset_in(&self, mr: &MrInfo) -> u64 {
        self.addr.wrapping_sub(mr.addr)
    }

    /// Whether the range names `mr` and lies entirely inside it.
    pub fn within(&self, mr: &MrInfo) -> bool {
        let (Some(end), Some(mr_end)) = (self.end(), mr.addr.checked_add(mr.len)) else {
            return false;
        };
        self.mr == mr.id && self.addr >= mr.addr && end <= mr_end
    }

    /// Whether two ranges share at least one byte (empty ranges share none). Ranges are
    /// compared by address: regions of one context never alias.
    pub fn overlaps(&self, other: &MemRef) -> bool {
        let a_end = self.end().unwrap_or(u64::MAX);
        let b_end = other.end().unwrap_or(u64::MAX);
        self.len > 0 && other.len > 0 && self.addr < b_end && other.addr < a_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::Access;

    fn mr() -> MrInfo {
        MrInfo {
            id: MrId(3),
            addr: 0x10_000,
            len: 0x1000,
            lkey: 1,
            rkey: 2,
            access: Access::LOCAL_WRITE,
        }
    }

    #[test]
    fn within_checks_id_and_bounds() {
        let m = mr();
        assert!(MemRef::of(&m, 0, 0x1000).within(&m));
        assert!(MemRef::of(&m, 0xffc, 4).within(&m));
        assert!(!MemRef::of(&m, 0xffd, 4).within(&m));
        assert!(!MemRef {
            addr: 0xffff,
            ..MemRef::of(&m, 0, 4)
        }
        .within(&m));
        assert!(!MemRef {
            mr: MrId(4),
            ..MemRef::of(&m, 0, 4)
        }
        .within(&m));
        assert!(!MemRef {
            addr: u64::MAX,
            ..MemRef::of(&m, 0, 4)
        }
        .within(&m));
        assert_eq!(MemRef::of(&m, 0x40, 4).offset_in(&m), 0x40);
    }

    #[test]
    fn overlap_is_half_open_and_ignores_empty() {
        let m = mr();
        let a = MemRef::of(&m, 0, 64);
        assert!(a.overlaps(&MemRef::of(&m, 63, 1)));
        assert!(!a.overlaps(&MemRef::of(&m, 64, 1)));
        assert!(!a.overlaps(&MemRef::of(&m, 0, 0)));
        let wrap = MemRef {
            addr: u64::MAX - 1,
            len: 8,
            mr: m.id,
        };
        assert!(wrap.overlaps(&MemRef {
            addr: u64::MAX - 1,
            len: 1,
            mr: m.id
        }));
    }
}
