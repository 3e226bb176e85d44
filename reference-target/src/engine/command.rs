//! An offloaded command ([`Cmd`]) and its life, as two small state machines: where it
//! stands with the host ([`HostSide`]) and with the backend controller ([`BackendSide`]).
//! They are two because they overlap: a command timed out in the backend is answered
//! while the backend may still DMA into its staging, and the `early-write-ack` quirk
//! answers before the backend has the data. Every transition is a method here; the data
//! path calls them and never sets a state itself.
//!
//! ```text
//! host:    Received -> FetchingData -> DataReady -> Answered { sending } --+
//!              |            |             |                 |            |
//!              '------------+-------------+-----------------+--> Orphaned { sending }
//! backend: NotSubmitted -> AtBackend { cid, deadline } -> Done
//!              '---------------------------------------------> Done   (dead, removed)
//! ```
//!
//! A command is retired (its staging and response buffer freed) once it is not at the
//! backend, the host side is settled, and no response work request is outstanding
//! ([`Cmd::retirable`]).

use harness::api::SrqHandle;
use harness::fabric::QpId;
use harness::wire::SqeRepr;
use tokio::time::Instant;

use harness::api::CtrlHandle;

/// Where an offloaded command's data comes from or goes to.
#[derive(Debug, Clone)]
pub(crate) enum DataSrc {
    /// Host memory by keyed SGL (`invalidate`: 0x4F, answer with SEND with invalidate).
    Keyed {
        addr: u64,
        key: u32,
        invalidate: bool,
    },
    /// Write data carried in the capsule.
    InCapsule(Vec<u8>),
    /// No data (flush).
    None,
}

/// Where a command stands with the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostSide {
    /// Accepted by the offload decision; waiting for a response buffer and staging space.
    Received,
    /// Its write data (or DSM ranges) is being read from the host into staging.
    FetchingData,
    /// Its data is in staging, or it has none: the backend's turn.
    DataReady,
    /// The host's answer is decided; `sending`: its work requests (read data, response
    /// capsule) are outstanding.
    Answered { sending: bool },
    /// The host will get no (further) answer: the QP is gone or in error, or a quirk
    /// swallows it; `sending`: work requests already posted are still outstanding.
    Orphaned { sending: bool },
}

/// Where a command stands with its backend controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackendSide {
    /// Not submitted (waiting for data, or queued for a free SQ slot).
    NotSubmitted,
    /// In backend slot `cid`; its staging may be DMA'd. `deadline`: when it times out
    /// (`None` once it has).
    AtBackend { cid: u16, deadline: Option<Instant> },
    /// Completed, or never will be (PCI error, controller removed).
    Done,
}

/// An offloaded command in flight.
pub(crate) struct Cmd {
    pub vqp: QpId,
    pub real_qp: QpId,
    pub srq: SrqHandle,
    pub ctrl: CtrlHandle,
    pub fe_nsid: u32,
    pub sqe: SqeRepr,
    pub nvme_nsid: u32,
    pub blocks: u64,
    pub len: u64,
    pub data: DataSrc,
    /// Its staging space (offset in the SRQ's staging buffer), once taken.
    pub staging: Option<u64>,
    /// Its response buffer, once taken.
    pub resp_slot: Option<u32>,
    pub host: HostSide,
    pub backend: BackendSide,
    /// The backend failed it (error status, timeout, PCI error): counted at its answer.
    pub backend_failed: bool,
    pub sq_head: u16,
    /// SQ Identifier of its response: the QID of its queue.
    pub sq_id: u16,
}

impl Cmd {
    /// The RDMA READ of its data from the host is posted.
    pub fn fetching(&mut self) {
        self.host = HostSide::FetchingData;
    }

    /// Its data is in staging (or it needs none).
    pub fn data_ready(&mut self) {
        if matches!(self.host, HostSide::Received | HostSide::FetchingData) {
            self.host = HostSide::DataReady;
        }
    }

    /// Whether the host side is settled: answered, or never to be.
    pub fn host_settled(&self) -> bool {
        matches!(
            self.host,
            HostSide::Answered { .. } | HostSide::Orphaned { .. }
        )
    }

    /// Decides the host's answer: false when it is already settled (nothing to send).
    pub fn begin_answer(&mut self) -> bool {
        if self.host_settled() {
            return false;
        }
        self.host = HostSide::Answered { sending: false };
        true
    }

    /// The answer's work requests are posted.
    pub fn answer_posted(&mut self) {
        if let HostSide::Answered { sending } = &mut self.host {
            *sending = true;
        }
    }

    /// The answer's (or an orphan's) outstanding work requests completed or are gone.
    pub fn sending_done(&mut self) {
        match &mut self.host {
            HostSide::Answered { sending } | HostSide::Orphaned { sending } => *sending = false,
            _ => {}
        }
    }

    /// The host gets no further answer; work requests already posted stay outstanding.
    pub fn orphan(&mut self) {
        let sending = self.sending();
        self.host = HostSide::Orphaned { sending };
    }

    /// The host gets no further answer, and what was posted for it is gone too.
    pub fn orphan_discarding(&mut self) {
        self.host = HostSide::Orphaned { sending: false };
    }

    fn sending(&self) -> bool {
        matches!(
            self.host,
            HostSide::Answered { sending: true } | HostSide::Orphaned { sending: true }
        )
    }

    /// Submitted to the backend in slot `cid`, timing out at `deadline`.
    pub fn submitted(&mut self, cid: u16, deadline: Instant) {
        self.backend = BackendSide::AtBackend {
            cid,
            deadline: Some(deadline),
        };
    }

    /// Whether the backend holds it (and may DMA into its staging).
    pub fn at_backend(&self) -> bool {
        matches!(self.backend, BackendSide::AtBackend { .. })
    }

    /// When it times out, if it is at the backend and has not yet.
    pub fn deadline(&self) -> Option<Instant> {
        match self.backend {
            BackendSide::AtBackend { deadline, .. } => deadline,
            _ => None,
        }
    }

    /// Its deadline passed: it stays at the backend, but times out only once.
    pub fn deadline_passed(&mut self) {
        if let BackendSide::AtBackend { deadline, .. } = &mut self.backend {
            *deadline = None;
        }
    }

    /// The backend is done with it; `failed`: it failed there.
    pub fn backend_done(&mut self, failed: bool) {
        self.backend = BackendSide::Done;
        self.backend_failed |= failed;
    }

    /// Whether nothing uses its staging and response buffer any more.
    pub fn retirable(&self) -> bool {
        !self.at_backend() && self.host_settled() && !self.sending()
    }
}
