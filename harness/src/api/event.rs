//! The provider's asynchronous events: the offload's own (backend controller errors,
//! unsupported commands, two-phase QP teardown) and the QP/SRQ events of the fabric.
//!
//! Each event prints as a stable short name and `key=value` pairs for traces:
//! `NVME_PCI_ERR ctrl=0`, `NVME_TIMEOUT ctrl=1 sqid=1 cid=7`, `UNSUPPORTED_NVMF_OP qp=3
//! opcode=0x09`, `QP_FATAL qp=2`, `CQ_ERR cq=0`. Handles print as bare numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ctrl::CtrlHandle;
use crate::fabric::{AsyncEvent, QpId, SrqId};

/// An asynchronous event of an offload provider.
///
/// The four fabric events that matter to the offload have their own variants; a provider
/// builds events from fabric ones with [`OffloadEvent::from_fabric`], so
/// [`OffloadEvent::Fabric`] never holds one of those four.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffloadEvent {
    /// IBV_EVENT_QP_FATAL: a QP (offloaded or not) hit an error it could not report in a
    /// completion; it is in error.
    QpFatal {
        /// The QP.
        qp: QpId,
    },
    /// IBV_EVENT_QP_ACCESS_ERR: a peer's RDMA request violated this side's rights.
    QpAccessErr {
        /// The QP.
        qp: QpId,
    },
    /// IBV_EVENT_SRQ_LIMIT_REACHED: posted receives of the (fabric) SRQ fell below its limit.
    SrqLimitReached {
        /// The fabric SRQ.
        srq: SrqId,
    },
    /// IBV_EVENT_QP_LAST_WQE_REACHED: an SRQ-attached QP in error consumed its last receive.
    QpLastWqeReached {
        /// The QP.
        qp: QpId,
    },
    /// IBV_EVENT_NVME_PCI_ERR: a backend controller had a PCIe error; software releases it.
    NvmePciErr {
        /// The controller.
        ctrl: CtrlHandle,
    },
    /// IBV_EVENT_NVME_TIMEOUT: a backend command did not complete within the controller's
    /// timeout; software releases and re-creates the controller.
    NvmeTimeout {
        /// The controller.
        ctrl: CtrlHandle,
        /// The backend SQ of the late command, when the device knows it.
        sqid: Option<u16>,
        /// The late command's backend command identifier, when the device knows it.
        cid: Option<u16>,
    },
    /// IBV_EVENT_UNSUPPORTED_NVMF_OP: a command the device cannot serve arrived on an
    /// offloaded QP of a device without `supports_non_offloaded_ops`; the QP is in error.
    UnsupportedNvmfOp {
        /// The QP.
        qp: QpId,
        /// The command's opcode.
        opcode: u8,
    },
    /// QP_LAST_NVME_CQE_REACHED: an offloaded QP in error has no backend command left in
    /// flight (second phase of teardown, after QP_LAST_WQE_REACHED).
    QpLastNvmeCqeReached {
        /// The QP.
        qp: QpId,
    },
    /// Any other fabric event (CQ, SRQ or port errors, communication established…).
    Fabric(AsyncEvent),
}

impl OffloadEvent {
    /// The event for a fabric event, using the dedicated variants where there are some.
    pub fn from_fabric(ev: AsyncEvent) -> OffloadEvent {
        match ev {
            AsyncEvent::QpFatal(qp) => OffloadEvent::QpFatal { qp },
            AsyncEvent::QpAccessErr(qp) => OffloadEvent::QpAccessErr { qp },
            AsyncEvent::SrqLimitReached(srq) => OffloadEvent::SrqLimitReached { srq },
            AsyncEvent::QpLastWqeReached(qp) => OffloadEvent::QpLastWqeReached { qp },
            other => OffloadEvent::Fabric(other),
        }
    }

    /// The stable short name used in traces (libibverbs' event name without `IBV_EVENT_`).
    pub fn name(&self) -> &'static str {
        match self {
            OffloadEvent::QpFatal { .. } => "QP_FATAL",
            OffloadEvent::QpAccessErr { .. } => "QP_ACCESS_ERR",
            OffloadEvent::SrqLimitReached { .. } => "SRQ_LIMIT_REACHED",
            OffloadEvent::QpLastWqeReached { .. } => "QP_LAST_WQE_REACHED",
            OffloadEvent::NvmePciErr { .. } => "NVME_PCI_ERR",
            OffloadEvent::NvmeTimeout { .. } => "NVME_TIMEOUT",
            OffloadEvent::UnsupportedNvmfOp { .. } => "UNSUPPORTED_NVMF_OP",
            OffloadEvent::QpLastNvmeCqeReached { .. } => "QP_LAST_NVME_CQE_REACHED",
            OffloadEvent::Fabric(ev) => fabric_name(ev),
        }
    }

    /// The QP the event concerns, if any.
    pub fn qp(&self) -> Option<QpId> {
        match self {
            OffloadEvent::QpFatal { qp }
            | OffloadEvent::QpAccessErr { qp }
            | OffloadEvent::QpLastWqeReached { qp }
            | OffloadEvent::UnsupportedNvmfOp { qp, .. }
            | OffloadEvent::QpLastNvmeCqeReached { qp } => Some(*qp),
            OffloadEvent::Fabric(
                AsyncEvent::QpReqErr(qp) | AsyncEvent::CommEst(qp) | AsyncEvent::SqDrained(qp),
            ) => Some(*qp),
            _ => None,
        }
    }

    /// The backend controller the event concerns, if any.
    pub fn ctrl(&self) -> Option<CtrlHandle> {
        match self {
            OffloadEvent::NvmePciErr { ctrl } | OffloadEvent::NvmeTimeout { ctrl, .. } => {
                Some(*ctrl)
            }
            _ => None,
        }
    }
}

fn fabric_name(ev: &AsyncEvent) -> &'static str {
    match ev {
        AsyncEvent::CqErr(_) => "CQ_ERR",
        AsyncEvent::QpFatal(_) => "QP_FATAL",
        AsyncEvent::QpReqErr(_) => "QP_REQ_ERR",
        AsyncEvent::QpAccessErr(_) => "QP_ACCESS_ERR",
        AsyncEvent::CommEst(_) => "COMM_EST",
        AsyncEvent::SqDrained(_) => "SQ_DRAINED",
        AsyncEvent::QpLastWqeReached(_) => "QP_LAST_WQE_REACHED",
        AsyncEvent::SrqLimitReached(_) => "SRQ_LIMIT_REACHED",
        AsyncEvent::SrqErr(_) => "SRQ_ERR",
        AsyncEvent::PortActive(_) => "PORT_ACTIVE",
        AsyncEvent::PortErr(_) => "PORT_ERR",
        AsyncEvent::DeviceFatal => "DEVICE_FATAL",
    }
}

impl fmt::Display for OffloadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self {
            OffloadEvent::QpFatal { qp }
            | OffloadEvent::QpAccessErr { qp }
            | OffloadEvent::QpLastWqeReached { qp }
            | OffloadEvent::QpLastNvmeCqeReached { qp } => write!(f, " qp={}", qp.0),
            OffloadEvent::SrqLimitReached { srq } => write!(f, " srq={}", srq.0),
            OffloadEvent::NvmePciErr { ctrl } => write!(f, " ctrl={}", ctrl.0),
            OffloadEvent::NvmeTimeout { ctrl, sqid, cid } => {
                write!(f, " ctrl={}", ctrl.0)?;
                if let Some(sqid) = sqid {
                    write!(f, " sqid={sqid}")?;
                }
                if let Some(cid) = cid {
                    write!(f, " cid={cid}")?;
                }
                Ok(())
            }
            OffloadEvent::UnsupportedNvmfOp { qp, opcode } => {
                write!(f, " qp={} opcode={opcode:#04x}", qp.0)
            }
            OffloadEvent::Fabric(ev) => match ev {
                AsyncEvent::CqErr(cq) => write!(f, " cq={}", cq.0),
                AsyncEvent::QpFatal(qp)
                | AsyncEvent::QpReqErr(qp)
                | AsyncEvent::QpAccessErr(qp)
                | AsyncEvent::CommEst(qp)
                | AsyncEvent::SqDrained(qp)
                | AsyncEvent::QpLastWqeReached(qp) => write!(f, " qp={}", qp.0),
                AsyncEvent::SrqLimitReached(srq) | AsyncEvent::SrqErr(srq) => {
                    write!(f, " srq={}", srq.0)
                }
                AsyncEvent::PortActive(port) | AsyncEvent::PortErr(port) => {
                    write!(f, " port={port}")
                }
                AsyncEvent::DeviceFatal => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::CqId;

    #[test]
    fn trace_lines() {
        let cases = [
            (
                OffloadEvent::NvmePciErr {
                    ctrl: CtrlHandle(0),
                },
                "NVME_PCI_ERR ctrl=0",
            ),
            (
                OffloadEvent::NvmeTimeout {
                    ctrl: CtrlHandle(1),
                    sqid: Some(1),
                    cid: Some(7),
                },
                "NVME_TIMEOUT ctrl=1 sqid=1 cid=7",
            ),
            (
                OffloadEvent::NvmeTimeout {
                    ctrl: CtrlHandle(2),
                    sqid: None,
                    cid: None,
                },
                "NVME_TIMEOUT ctrl=2",
            ),
            (
                OffloadEvent::UnsupportedNvmfOp {
                    qp: QpId(3),
                    opcode: 9,
                },
                "UNSUPPORTED_NVMF_OP qp=3 opcode=0x09",
            ),
            (
                OffloadEvent::QpLastNvmeCqeReached { qp: QpId(4) },
                "QP_LAST_NVME_CQE_REACHED qp=4",
            ),
            (OffloadEvent::QpFatal { qp: QpId(2) }, "QP_FATAL qp=2"),
            (
                OffloadEvent::QpAccessErr { qp: QpId(2) },
                "QP_ACCESS_ERR qp=2",
            ),
            (
                OffloadEvent::SrqLimitReached { srq: SrqId(5) },
                "SRQ_LIMIT_REACHED srq=5",
            ),
            (
                OffloadEvent::QpLastWqeReached { qp: QpId(6) },
                "QP_LAST_WQE_REACHED qp=6",
            ),
            (
                OffloadEvent::Fabric(AsyncEvent::CqErr(CqId(0))),
                "CQ_ERR cq=0",
            ),
            (
                OffloadEvent::Fabric(AsyncEvent::SrqErr(SrqId(1))),
                "SRQ_ERR srq=1",
            ),
            (
                OffloadEvent::Fabric(AsyncEvent::PortErr(1)),
                "PORT_ERR port=1",
            ),
            (
                OffloadEvent::Fabric(AsyncEvent::DeviceFatal),
                "DEVICE_FATAL",
            ),
            (
                OffloadEvent::Fabric(AsyncEvent::CommEst(QpId(8))),
                "COMM_EST qp=8",
            ),
        ];
        for (ev, line) in cases {
            assert_eq!(ev.to_string(), line);
            assert!(line.starts_with(ev.name()));
        }
    }

    #[test]
    fn from_fabric_uses_dedicated_variants() {
        for (fabric, offload) in [
            (
                AsyncEvent::QpFatal(QpId(1)),
                OffloadEvent::QpFatal { qp: QpId(1) },
            ),
            (
                AsyncEvent::QpAccessErr(QpId(1)),
                OffloadEvent::QpAccessErr { qp: QpId(1) },
            ),
            (
                AsyncEvent::SrqLimitReached(SrqId(2)),
                OffloadEvent::SrqLimitReached { srq: SrqId(2) },
            ),
            (
                AsyncEvent::QpLastWqeReached(QpId(3)),
                OffloadEvent::QpLastWqeReached { qp: QpId(3) },
            ),
            (
                AsyncEvent::PortActive(1),
                OffloadEvent::Fabric(AsyncEvent::PortActive(1)),
            ),
        ] {
            assert_eq!(OffloadEvent::from_fabric(fabric), offload);
        }
    }

    #[test]
    fn accessors() {
        let ev = OffloadEvent::UnsupportedNvmfOp {
            qp: QpId(3),
            opcode: 0x7f,
        };
        assert_eq!(ev.qp(), Some(QpId(3)));
        assert_eq!(ev.ctrl(), None);
        let ev = OffloadEvent::NvmeTimeout {
            ctrl: CtrlHandle(4),
            sqid: None,
            cid: None,
        };
        assert_eq!(ev.ctrl(), Some(CtrlHandle(4)));
        assert_eq!(ev.qp(), None);
        assert_eq!(
            OffloadEvent::Fabric(AsyncEvent::SqDrained(QpId(9))).qp(),
            Some(QpId(9))
        );
    }
}
