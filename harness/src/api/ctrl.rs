//! Backend NVMe controllers (`ibv_nvme_ctrl`): one SQ/CQ pair of a local NVMe device that
//! the NIC rings directly. The buffers and doorbells are fabric memory regions of the
//! provider's context (the reference target emulates the backend through them).

use std::fmt;
use std::time::Duration;

use bitflags::bitflags;
use serde::{Deserialize, Serialize};

use super::mem::MemRef;

/// A provider's backend controller (displayed `ctrl0`, `ctrl1`…); it belongs to one SRQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CtrlHandle(pub u32);

impl fmt::Display for CtrlHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ctrl{}", self.0)
    }
}

/// An additional submission queue of a controller, completing into the controller's CQ;
/// the device round-robins commands over all SQs (seed review).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BackendSq {
    /// SQ ring: 64-byte entries, at least the SRQ's `nvme_queue_depth` of them.
    pub buf: MemRef,
    /// SQ tail doorbell, 4 bytes.
    pub db: MemRef,
    /// Initial tail value (< queue depth).
    pub db_ini: u16,
}

/// Creation attributes of a backend controller (`struct nvme_ctrl_attrs`).
///
/// Queue depth is not given here: it is the SRQ's `nvme_queue_depth` (as the kernel
/// target does). `cmd_timeout_us` is in µs like the capabilities (the RFC's field was
/// `cmd_timeout_ms: u16`); 0 = device default.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NvmeCtrlAttrs {
    /// SQ ring: 64-byte entries.
    pub sq_buf: MemRef,
    /// CQ ring: 16-byte entries.
    pub cq_buf: MemRef,
    /// SQ tail doorbell, 4 bytes.
    pub sqdb: MemRef,
    /// CQ head doorbell, 4 bytes.
    pub cqdb: MemRef,
    /// Initial SQ tail (< queue depth).
    pub sqdb_ini: u16,
    /// Initial CQ head (< queue depth).
    pub cqdb_ini: u16,
    /// Backend command timeout, µs; 0 = device default.
    pub cmd_timeout_us: u32,
    /// SQs beyond the first, for round-robin (empty = one SQ).
    pub extra_sqs: Vec<BackendSq>,
}

bitflags! {
    /// Which optional fields of [`NvmeCtrlAttrs`] are in use (the C ABI's `comp_mask`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    pub struct CtrlAttrMask: u32 {
        /// `cmd_timeout_us` is not the default.
        const CMD_TIMEOUT = 1 << 0;
        /// `extra_sqs` is not empty.
        const EXTRA_SQS = 1 << 1;
    }
}

impl NvmeCtrlAttrs {
    /// The `comp_mask` these attributes would carry.
    pub fn comp_mask(&self) -> CtrlAttrMask {
        let mut m = CtrlAttrMask::empty();
        m.set(CtrlAttrMask::CMD_TIMEOUT, self.cmd_timeout_us != 0);
        m.set(CtrlAttrMask::EXTRA_SQS, !self.extra_sqs.is_empty());
        m
    }

    /// The command timeout; `None` = device default.
    pub fn cmd_timeout(&self) -> Option<Duration> {
        (self.cmd_timeout_us != 0).then(|| Duration::from_micros(self.cmd_timeout_us.into()))
    }

    /// Every SQ as (ring, doorbell, initial tail), the first one first.
    pub fn sqs(&self) -> impl Iterator<Item = BackendSq> + '_ {
        std::iter::once(BackendSq {
            buf: self.sq_buf,
            db: self.sqdb,
            db_ini: self.sqdb_ini,
        })
        .chain(self.extra_sqs.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::MrId;

    fn r(addr: u64, len: u64) -> MemRef {
        MemRef {
            mr: MrId(1),
            addr,
            len,
        }
    }

    #[test]
    fn comp_mask_and_sqs() {
        let mut a = NvmeCtrlAttrs {
            sq_buf: r(0, 4096),
            cq_buf: r(4096, 1024),
            sqdb: r(8192, 4),
            cqdb: r(8196, 4),
            sqdb_ini: 0,
            cqdb_ini: 0,
            cmd_timeout_us: 0,
            extra_sqs: vec![],
        };
        assert_eq!(a.comp_mask(), CtrlAttrMask::empty());
        assert_eq!(a.cmd_timeout(), None);
        assert_eq!(a.sqs().count(), 1);
        a.cmd_timeout_us = 30_000_000;
        a.extra_sqs.push(BackendSq {
            buf: r(16384, 4096),
            db: r(8200, 4),
            db_ini: 3,
        });
        assert_eq!(a.comp_mask(), CtrlAttrMask::all());
        assert_eq!(a.cmd_timeout(), Some(Duration::from_secs(30)));
        let sqs: Vec<_> = a.sqs().collect();
        assert_eq!(sqs.len(), 2);
        assert_eq!(sqs[1].db_ini, 3);
        assert_eq!(CtrlHandle(1).to_string(), "ctrl1");
    }
}
