//! Which NVMe I/O commands are offloaded: the SRQ's [`OffloadOps`] and the device's
//! [`OffloadType`] capability bits, and the rule tying the two together.
//!
//! # The rule (project decision; the sources do not spell it out)
//!
//! Each [`OffloadType`] bit a device sets in `offload_type_rc` names a set of operations
//! it can offload ([`OffloadType::ops`]). An SRQ may ask for any **non-empty subset of the
//! union** of those sets ([`OffloadType::allows`]). So a device advertising
//! `READ_WRITE_FLUSH` accepts `READ`, `WRITE`, `FLUSH`, `READ | WRITE`, `WRITE | FLUSH`,
//! … and `READ | WRITE | FLUSH`; a device advertising only `READ` refuses anything with
//! `WRITE`. Anything else is EINVAL at SRQ creation (mlx5: "invalid offload type").
//! Commands of a kind not asked for go to software through the SRQ's receive queue.
//!
//! `offload_type_rc` is the one checked: NVMe-oF over RDMA uses RC queue pairs.

use bitflags::bitflags;
use serde::{Deserialize, Serialize};

bitflags! {
    /// NVMe I/O commands an SRQ asks the device to serve itself (`ibv_nvmf_offload_ops`).
    ///
    /// The first three bits are the RFC's; `WRITE_ZEROES` and `DATASET_MGMT` follow the
    /// review's request and take the next free bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    pub struct OffloadOps: u32 {
        /// Write (NVMe opcode 0x01). IBV_NVMF_OPS_WRITE.
        const WRITE = 1 << 0;
        /// Read (NVMe opcode 0x02). IBV_NVMF_OPS_READ.
        const READ = 1 << 1;
        /// Flush (NVMe opcode 0x00). IBV_NVMF_OPS_FLUSH.
        const FLUSH = 1 << 2;
        /// Write Zeroes (NVMe opcode 0x08); project extension.
        const WRITE_ZEROES = 1 << 3;
        /// Dataset Management (NVMe opcode 0x09); project extension.
        const DATASET_MGMT = 1 << 4;
        /// Read and write. IBV_NVMF_OPS_READ_WRITE.
        const READ_WRITE = Self::READ.bits() | Self::WRITE.bits();
        /// Read, write and flush. IBV_NVMF_OPS_READ_WRITE_FLUSH.
        const READ_WRITE_FLUSH = Self::READ_WRITE.bits() | Self::FLUSH.bits();
    }
}

/// NVMe I/O command opcodes the offload knows about (NVMe base spec, NVM command set).
pub mod opcode {
    /// Flush.
    pub const FLUSH: u8 = 0x00;
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
    /// Write Zeroes.
    pub const WRITE_ZEROES: u8 = 0x08;
    /// Dataset Management.
    pub const DATASET_MGMT: u8 = 0x09;
}

impl OffloadOps {
    /// The flag of an NVMe I/O opcode, or `None` for an opcode that is never offloaded.
    pub const fn from_opcode(op: u8) -> Option<OffloadOps> {
        match op {
            opcode::FLUSH => Some(OffloadOps::FLUSH),
            opcode::WRITE => Some(OffloadOps::WRITE),
            opcode::READ => Some(OffloadOps::READ),
            opcode::WRITE_ZEROES => Some(OffloadOps::WRITE_ZEROES),
            opcode::DATASET_MGMT => Some(OffloadOps::DATASET_MGMT),
            _ => None,
        }
    }

    /// The opcode of a single flag; `None` for an empty or multi-flag set.
    pub fn to_opcode(self) -> Option<u8> {
        const TABLE: [(OffloadOps, u8); 5] = [
            (OffloadOps::FLUSH, opcode::FLUSH),
            (OffloadOps::WRITE, opcode::WRITE),
            (OffloadOps::READ, opcode::READ),
            (OffloadOps::WRITE_ZEROES, opcode::WRITE_ZEROES),
            (OffloadOps::DATASET_MGMT, opcode::DATASET_MGMT),
        ];
        TABLE.iter().find(|(f, _)| *f == self).map(|(_, o)| *o)
    }

    /// Whether a command with this opcode is offloaded by an SRQ asking for `self`.
    pub fn covers_opcode(self, op: u8) -> bool {
        OffloadOps::from_opcode(op).is_some_and(|f| self.contains(f))
    }
}

bitflags! {
    /// Offload capability bits of a device (`ibv_nvmf_offload_type`, in
    /// `offload_type_dc` / `offload_type_rc`); 0 = no NVMe-oF offload.
    ///
    /// The first four bits are the RFC's. `WRITE_ZEROES` and `DATASET_MGMT` are project
    /// extensions (the RFC says the enum grows as devices offload more).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    pub struct OffloadType: u32 {
        /// Writes can be offloaded. IBV_NVMF_WRITE_OFFLOAD.
        const WRITE = 1 << 0;
        /// Reads can be offloaded. IBV_NVMF_READ_OFFLOAD.
        const READ = 1 << 1;
        /// Reads and writes can be offloaded. IBV_NVMF_READ_WRITE_OFFLOAD.
        const READ_WRITE = 1 << 2;
        /// Reads, writes and flushes can be offloaded. IBV_NVMF_READ_WRITE_FLUSH_OFFLOAD.
        const READ_WRITE_FLUSH = 1 << 3;
        /// Write Zeroes can be offloaded; project extension.
        const WRITE_ZEROES = 1 << 4;
        /// Dataset Management can be offloaded; project extension.
        const DATASET_MGMT = 1 << 5;
    }
}

impl OffloadType {
    /// The operations this set of capability bits lets an SRQ ask for (union of every bit's
    /// operations; unknown bits add nothing).
    pub fn ops(self) -> OffloadOps {
        let mut ops = OffloadOps::empty();
        for (bit, bit_ops) in [
            (OffloadType::WRITE, OffloadOps::WRITE),
            (OffloadType::READ, OffloadOps::READ),
            (OffloadType::READ_WRITE, OffloadOps::READ_WRITE),
            (OffloadType::READ_WRITE_FLUSH, OffloadOps::READ_WRITE_FLUSH),
            (OffloadType::WRITE_ZEROES, OffloadOps::WRITE_ZEROES),
            (OffloadType::DATASET_MGMT, OffloadOps::DATASET_MGMT),
        ] {
            if self.contains(bit) {
                ops |= bit_ops;
            }
        }
        ops
    }

    /// The module's rule: `ops` is non-empty, has no unknown bit, and is a subset of
    /// [`OffloadType::ops`].
    pub fn allows(self, ops: OffloadOps) -> bool {
        !ops.is_empty() && OffloadOps::from_bits(ops.bits()).is_some() && self.ops().contains(ops)
    }

    /// Bits set that no known capability names.
    pub fn unknown_bits(self) -> u32 {
        self.bits() & !OffloadType::all().bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_bit_values() {
        assert_eq!(OffloadOps::WRITE.bits(), 1);
        assert_eq!(OffloadOps::READ.bits(), 2);
        assert_eq!(OffloadOps::FLUSH.bits(), 4);
        assert_eq!(OffloadOps::READ_WRITE.bits(), 3);
        assert_eq!(OffloadOps::READ_WRITE_FLUSH.bits(), 7);
        assert_eq!(OffloadType::WRITE.bits(), 1);
        assert_eq!(OffloadType::READ.bits(), 2);
        assert_eq!(OffloadType::READ_WRITE.bits(), 4);
        assert_eq!(OffloadType::READ_WRITE_FLUSH.bits(), 8);
    }

    #[test]
    fn opcode_mapping_round_trips() {
        for (op, flag) in [
            (0x00, OffloadOps::FLUSH),
            (0x01, OffloadOps::WRITE),
            (0x02, OffloadOps::READ),
            (0x08, OffloadOps::WRITE_ZEROES),
            (0x09, OffloadOps::DATASET_MGMT),
        ] {
            assert_eq!(OffloadOps::from_opcode(op), Some(flag));
            assert_eq!(flag.to_opcode(), Some(op));
        }
        for op in [0x04u8, 0x05, 0x0c, 0x0d, 0x7f, 0xff] {
            assert_eq!(OffloadOps::from_opcode(op), None);
        }
        assert_eq!(OffloadOps::READ_WRITE.to_opcode(), None);
        assert_eq!(OffloadOps::empty().to_opcode(), None);
        assert!(OffloadOps::READ_WRITE.covers_opcode(0x02));
        assert!(!OffloadOps::READ_WRITE.covers_opcode(0x00));
        assert!(!OffloadOps::all().covers_opcode(0x7f));
    }

    #[test]
    fn read_write_flush_allows_every_subset_of_read_write_flush() {
        let t = OffloadType::READ_WRITE_FLUSH;
        for bits in 1..8u32 {
            assert!(t.allows(OffloadOps::from_bits(bits).unwrap()), "{bits}");
        }
        assert!(!t.allows(OffloadOps::WRITE_ZEROES));
        assert!(!t.allows(OffloadOps::empty()));
    }

    #[test]
    fn single_bits_allow_only_their_op() {
        assert!(OffloadType::READ.allows(OffloadOps::READ));
        assert!(!OffloadType::READ.allows(OffloadOps::READ_WRITE));
        assert!(!OffloadType::WRITE.allows(OffloadOps::FLUSH));
        assert!((OffloadType::READ | OffloadType::WRITE).allows(OffloadOps::READ_WRITE));
        assert!(!OffloadType::empty().allows(OffloadOps::READ));
        assert!((OffloadType::READ_WRITE | OffloadType::DATASET_MGMT)
            .allows(OffloadOps::READ | OffloadOps::DATASET_MGMT));
    }

    #[test]
    fn unknown_bits_are_reported_and_never_allowed() {
        let t = OffloadType::from_bits_retain(OffloadType::READ_WRITE_FLUSH.bits() | 1 << 20);
        assert_eq!(t.unknown_bits(), 1 << 20);
        assert_eq!(t.ops(), OffloadOps::READ_WRITE_FLUSH);
        assert!(!t.allows(OffloadOps::from_bits_retain(1 << 20)));
        assert!(!t.allows(OffloadOps::from_bits_retain(
            OffloadOps::READ.bits() | 1 << 9
        )));
    }
}
