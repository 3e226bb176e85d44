//! Dataset Management range descriptors: the data buffer of a Dataset Management command
//! is NR + 1 descriptors of 16 bytes each (NVM Command Set Specification 1.0, "Dataset
//! Management command", Figure "Dataset Management – Range Definition"; Linux
//! `struct nvme_dsm_range`).
//!
//! | bytes | field |
//! |-------|-------|
//! | 3:0 | context attributes |
//! | 7:4 | length in logical blocks |
//! | 15:8 | starting LBA |
//!
//! No field is reserved: every value parses.

use super::field::{check_len, Field};
use super::view::{accessors, view};
use super::Result;

/// Length of one range descriptor.
pub const DSM_RANGE_LEN: usize = 16;

/// Field offsets of a range descriptor.
pub mod field {
    use super::Field;
    /// Context attributes.
    pub const CATTR: Field = 0..4;
    /// Length in logical blocks.
    pub const NLB: Field = 4..8;
    /// Starting LBA.
    pub const SLBA: Field = 8..16;
}

view!(
    /// A view over one range descriptor.
    DsmRange,
    DSM_RANGE_LEN,
    "DSM range"
);

accessors!(DsmRange {
    /// Context attributes.
    cattr, set_cattr: u32 @ field::CATTR;
    /// Length in logical blocks.
    nlb, set_nlb: u32 @ field::NLB;
    /// Starting LBA.
    slba, set_slba: u64 @ field::SLBA;
});

/// One parsed range descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DsmRangeRepr {
    /// Context attributes.
    pub cattr: u32,
    /// Length in logical blocks (0 is a range of no blocks).
    pub nlb: u32,
    /// Starting LBA.
    pub slba: u64,
}

impl DsmRangeRepr {
    /// A range of `nlb` blocks from `slba`, context attributes 0.
    pub fn new(slba: u64, nlb: u32) -> DsmRangeRepr {
        DsmRangeRepr {
            cattr: 0,
            nlb,
            slba,
        }
    }

    /// Parses one descriptor from the start of `b`.
    pub fn parse_bytes(b: &[u8]) -> Result<DsmRangeRepr> {
        let v = DsmRange::new_checked(b)?;
        Ok(DsmRangeRepr {
            cattr: v.cattr(),
            nlb: v.nlb(),
            slba: v.slba(),
        })
    }

    /// Writes the descriptor into the start of `b`.
    pub fn emit(&self, b: &mut [u8]) -> Result<()> {
        let mut v = DsmRange::new_checked(b)?;
        v.set_cattr(self.cattr);
        v.set_nlb(self.nlb);
        v.set_slba(self.slba);
        Ok(())
    }

    /// Parses `count` consecutive descriptors from `b` (checking they are all there first).
    pub fn parse_list(b: &[u8], count: usize) -> Result<Vec<DsmRangeRepr>> {
        check_len(
            "DSM range list",
            count.saturating_mul(DSM_RANGE_LEN),
            b.len(),
        )?;
        b.chunks_exact(DSM_RANGE_LEN)
            .take(count)
            .map(DsmRangeRepr::parse_bytes)
            .collect()
    }

    /// The data buffer of a Dataset Management command carrying `ranges`.
    pub fn emit_list(ranges: &[DsmRangeRepr]) -> Vec<u8> {
        let mut out = vec![0u8; ranges.len() * DSM_RANGE_LEN];
        for (r, chunk) in ranges.iter().zip(out.chunks_exact_mut(DSM_RANGE_LEN)) {
            r.emit(chunk).expect("a chunk holds one descriptor");
        }
        out
    }
}

impl core::fmt::Display for DsmRangeRepr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "slba={} nlb={} cattr={:#x}",
            self.slba, self.nlb, self.cattr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_matches_the_specification() {
        let r = DsmRangeRepr {
            cattr: 0x0102_0304,
            nlb: 0x1122_3344,
            slba: 0x5566_7788_99aa_bbcc,
        };
        let b = DsmRangeRepr::emit_list(&[r]);
        assert_eq!(
            b,
            [
                0x04, 0x03, 0x02, 0x01, 0x44, 0x33, 0x22, 0x11, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77,
                0x66, 0x55
            ]
        );
        assert_eq!(
            r.to_string(),
            "slba=6153737369425722316 nlb=287454020 cattr=0x1020304"
        );
    }

    #[test]
    fn short_buffers_are_errors() {
        assert!(DsmRangeRepr::parse_bytes(&[0u8; 15]).is_err());
        assert!(DsmRangeRepr::parse_list(&[0u8; 31], 2).is_err());
        assert!(DsmRangeRepr::new(0, 1).emit(&mut [0u8; 15]).is_err());
        assert_eq!(DsmRangeRepr::parse_list(&[0u8; 40], 2).unwrap().len(), 2);
    }

    proptest! {
        #[test]
        fn round_trip(ranges in proptest::collection::vec(
            (any::<u32>(), any::<u32>(), any::<u64>()), 0..8)) {
            let ranges: Vec<DsmRangeRepr> = ranges
                .into_iter()
                .map(|(cattr, nlb, slba)| DsmRangeRepr { cattr, nlb, slba })
                .collect();
            let b = DsmRangeRepr::emit_list(&ranges);
            prop_assert_eq!(b.len(), ranges.len() * DSM_RANGE_LEN);
            prop_assert_eq!(DsmRangeRepr::parse_list(&b, ranges.len()).unwrap(), ranges);
        }
    }
}
