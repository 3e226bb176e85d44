//! Enabling the offload on a queue pair (`ibv_qp_set_nvmf`).

use bitflags::bitflags;
use serde::{Deserialize, Serialize};

bitflags! {
    /// Flags of `ibv_qp_set_nvmf`. Set `ENABLE` after the QP's CONNECT was processed
    /// (before its response): from then on the device owns the QP's I/O commands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    pub struct QpNvmfFlags: u32 {
        /// IBV_QP_NVMF_ATTR_FLAG_ENABLE.
        const ENABLE = 1 << 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_is_bit_zero() {
        assert_eq!(QpNvmfFlags::ENABLE.bits(), 1);
        assert_eq!(QpNvmfFlags::all(), QpNvmfFlags::ENABLE);
    }
}
