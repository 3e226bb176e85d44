//! SRQs with NVMe-oF attributes: one per NVMe-oF subsystem facing the fabric.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::mem::MemRef;
use super::ops::OffloadOps;
use crate::fabric::{SrqId, SrqInit};

/// A provider's NVMe-oF SRQ (displayed `srq0`, `srq1`…), distinct from the fabric SRQ
/// ([`SrqId`]) that QPs attach to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SrqHandle(pub u32);

impl fmt::Display for SrqHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "srq{}", self.0)
    }
}

/// The staging buffer: memory the device owns from SRQ creation on and moves data through.
/// Software must not touch it and must make it reachable by every backend controller.
pub type StagingBuf = MemRef;

/// Creation attributes of an NVMe-oF SRQ (`ibv_srq_init_attr_ex` with `ibv_nvmf_attrs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NvmfSrqAttrs {
    /// Sizing of the receive queue the SRQ still has (non-offloaded commands, and every
    /// command of QPs without offload); checked by the fabric.
    pub rq: SrqInit,
    /// Commands the device serves itself.
    pub offload_ops: OffloadOps,
    /// Most namespaces mapped on this SRQ (≤ `max_srq_namespaces`).
    pub max_namespaces: u32,
    /// Backend memory page size as log2 of 4 KiB units (0 = 4 KiB), as NVMe CC.MPS.
    pub nvme_log_page_sz: u8,
    /// I/O command capsule size, 16-byte units (4 = SQE only).
    pub ioccsz: u32,
    /// In-capsule data offset, 16-byte units.
    pub icdoff: u16,
    /// Largest I/O transfer of one command, bytes.
    pub max_io_sz: u32,
    /// Depth of the backend SQs/CQs of this SRQ's controllers, entries (a real value:
    /// 65536 is 65536).
    pub nvme_queue_depth: u32,
    /// The staging buffer.
    pub staging_buf: StagingBuf,
}

impl NvmfSrqAttrs {
    /// Bytes of in-capsule data a capsule may carry after `icdoff` (0 when none).
    pub fn in_capsule_data_len(&self) -> u64 {
        let after_sqe = u64::from(self.ioccsz.saturating_sub(4)) * 16;
        after_sqe.saturating_sub(u64::from(self.icdoff) * 16)
    }

    /// Backend memory page size in bytes (4 KiB << `nvme_log_page_sz`), `None` if absurd.
    pub fn nvme_page_size(&self) -> Option<u64> {
        (self.nvme_log_page_sz < 52).then(|| 4096u64 << self.nvme_log_page_sz)
    }
}

/// A created NVMe-oF SRQ: the provider's handle and the fabric SRQ QPs attach to
/// (`QpInit { srq: Some(srq), .. }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NvmfSrq {
    /// For the offload API calls.
    pub handle: SrqHandle,
    /// For creating QPs and posting receives of non-offloaded commands.
    pub srq: SrqId,
}

/// Counters of one NVMe-oF SRQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SrqCounters {
    /// Offloaded-kind commands whose nsid is not mapped on this SRQ.
    pub unknown_ns_cmds: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::MrId;

    fn attrs(ioccsz: u32, icdoff: u16) -> NvmfSrqAttrs {
        NvmfSrqAttrs {
            rq: SrqInit::new(64),
            offload_ops: OffloadOps::READ_WRITE,
            max_namespaces: 4,
            nvme_log_page_sz: 0,
            ioccsz,
            icdoff,
            max_io_sz: 4096,
            nvme_queue_depth: 64,
            staging_buf: MemRef {
                mr: MrId(0),
                addr: 0,
                len: 1 << 20,
            },
        }
    }

    #[test]
    fn display_and_sizes() {
        assert_eq!(SrqHandle(0).to_string(), "srq0");
        assert_eq!(attrs(4, 0).in_capsule_data_len(), 0);
        assert_eq!(attrs(260, 0).in_capsule_data_len(), 4096);
        assert_eq!(attrs(260, 1).in_capsule_data_len(), 4080);
        assert_eq!(attrs(5, 2).in_capsule_data_len(), 0);
        assert_eq!(attrs(4, 0).nvme_page_size(), Some(4096));
        let big = NvmfSrqAttrs {
            nvme_log_page_sz: 200,
            ..attrs(4, 0)
        };
        assert_eq!(big.nvme_page_size(), None);
    }
}
