//! Errors of the NVMe-oF RDMA host.

use std::time::Duration;

use crate::fabric::wait::WaitError;
use crate::fabric::{FabricError, WcStatus};
use crate::wire::{CmRejectStatus, CqeRepr, Status, WireError};

/// Anything that can stop a host operation; every variant says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitiatorError {
    /// The target (or the CM) rejected the RDMA CM connect request.
    #[error("connect rejected: CM status {cm_status}, NVMe-oF reject status {status:?}")]
    Rejected {
        /// The CM reject status (28 = consumer defined, i.e. the target's application).
        cm_status: u32,
        /// The NVMe-oF reject status parsed from the private data, when it parses.
        status: Option<CmRejectStatus>,
        /// The raw reject private data.
        private_data: Vec<u8>,
    },
    /// The target could not be reached (no route, no answer).
    #[error("target unreachable")]
    Unreachable,
    /// The connection closed while the host still needed it.
    #[error("connection closed while waiting for {0}")]
    Disconnected(&'static str),
    /// A command completed with a non-success NVMe status.
    #[error("{what} failed with NVMe status {status:?}")]
    Nvme {
        /// The command.
        what: &'static str,
        /// Its status.
        status: Status,
        /// The whole completion (DW0 carries IPO/IATTR for Connect Invalid Parameters).
        cqe: CqeRepr,
    },
    /// A bounded wait ran out.
    #[error("timed out after {bound:?} waiting for {what}")]
    TimedOut {
        /// What was awaited.
        what: &'static str,
        /// The bound.
        bound: Duration,
    },
    /// A work request completed in error.
    #[error("{what}: work completion status {}", status.name())]
    Completion {
        /// Which work request.
        what: &'static str,
        /// Its status.
        status: WcStatus,
    },
    /// A verbs or CM call failed (see [`FabricError::errno`]).
    #[error("fabric error: {0}")]
    Fabric(#[from] FabricError),
    /// A wire format could not be emitted or parsed.
    #[error("wire error: {0}")]
    Wire(#[from] WireError),
    /// The queue has no room: the command would exceed the negotiated queue depth.
    #[error("queue {qid} full: {outstanding} commands outstanding, depth {depth}")]
    QueueFull {
        /// Queue ID.
        qid: u16,
        /// Commands awaiting a response.
        outstanding: usize,
        /// Negotiated depth (SQSIZE + 1).
        depth: usize,
    },
    /// The target did something the protocol does not allow (named).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The caller asked for something this host cannot do (named).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl InitiatorError {
    /// The same error, a missing response named as the Connect's (so a caller can tell a
    /// Connect that got no answer from any other command).
    pub fn for_connect(self) -> InitiatorError {
        match self {
            InitiatorError::TimedOut {
                what: "command response",
                bound,
            } => InitiatorError::TimedOut {
                what: "Connect response",
                bound,
            },
            e => e,
        }
    }

    /// Converts a bounded-wait error, naming what was awaited.
    pub fn from_wait(e: WaitError, what: &'static str) -> InitiatorError {
        match e {
            WaitError::TimedOut(bound) => InitiatorError::TimedOut { what, bound },
            WaitError::Fabric(f) => InitiatorError::Fabric(f),
        }
    }

    /// The NVMe status, when this is an NVMe error.
    pub fn nvme_status(&self) -> Option<Status> {
        match self {
            InitiatorError::Nvme { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result of a host operation.
pub type Result<T, E = InitiatorError> = std::result::Result<T, E>;
