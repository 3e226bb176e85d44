//! Namespace mappings: front-facing nsid → (backend controller, backend nsid), and their
//! counters.

use serde::{Deserialize, Serialize};

/// Arguments of `ibv_map_nvmf_nsid`: the controller is the call's other argument.
///
/// `lba_data_size` is `u32` where the RFC had `u16`: every size in use (4160 = 8 × (512 +
/// 8) included) fits either, and `u32` leaves room for large metadata formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NsMapping {
    /// Front-facing nsid, unique within the SRQ (every controller of an SRQ shares one
    /// number space); not 0, not 0xFFFFFFFF, ≤ `max_frontend_nsid` when that is set.
    pub fe_nsid: u32,
    /// Namespace id on the backend controller; not 0, not 0xFFFFFFFF.
    pub nvme_nsid: u32,
    /// Bytes per block as formatted: data + metadata (e.g. 512, 520, 4096, 4104, 4160).
    pub lba_data_size: u32,
}

/// Counters of one mapped namespace (shipped driver's per-namespace counters; latency and
/// queue-depth gauges are left out: they are not deterministic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NsCounters {
    /// Read commands served.
    pub read_cmds: u64,
    /// Blocks read.
    pub read_blocks: u64,
    /// Write commands served (in-capsule ones included).
    pub write_cmds: u64,
    /// Blocks written (in-capsule ones included).
    pub write_blocks: u64,
    /// Write commands whose data came in the capsule.
    pub write_inline_cmds: u64,
    /// Blocks written from in-capsule data.
    pub write_inline_blocks: u64,
    /// Flush commands served.
    pub flush_cmds: u64,
    /// Commands completed with an error status (any origin).
    pub error_cmds: u64,
    /// Commands the backend controller completed with an error (or never completed).
    pub backend_error_cmds: u64,
}
