//! The host's PCI side as a plugin sees it: backend NVMe controllers reachable by their
//! SQ-tail doorbell address, whose rings live in memory regions of the verbs device the
//! plugin returned (the plugin reads and writes queue entries itself), and whose doorbells
//! the plugin rings here (`struct nvmf_pci_ops` in `include/nvmf_offload.h`).
//!
//! [`super::emulated::PciBus`] implements it for the emulated controllers; a plugin reaches
//! it through [`super::host::HostBus`].

use nix::errno::Errno;

use super::ring::Span;
use crate::fabric::MrId;

/// A byte range of a memory region (of the plugin's verbs device), by offset: the seam's
/// [`Span`], under the name the ABI gives it (`struct nvmf_pci_span`).
pub type PciSpan = Span;

/// One queue of a controller: ring, doorbell and initial tail (SQ) or head (CQ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciQueue {
    /// The ring (64-byte SQ entries or 16-byte CQ entries).
    pub ring: PciSpan,
    /// The 4-byte little-endian doorbell.
    pub doorbell: PciSpan,
    /// First tail (SQ) or head (CQ).
    pub initial: u16,
}

/// A backend controller found on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PciFunction {
    /// The host's identifier for the other calls.
    pub id: u64,
    /// Entries of every queue.
    pub depth: u16,
    /// Its SQs, served round-robin (SQ ids in CQEs are index + 1).
    pub sqs: Vec<PciQueue>,
    /// Its CQ.
    pub cq: PciQueue,
}

/// Whether a controller works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PciState {
    /// Serving commands.
    Running,
    /// Fatal PCI error: doorbells are ignored, outstanding commands never complete.
    Error,
}

/// What a plugin polls to notice a controller's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciStatus {
    /// Running or in error.
    pub state: PciState,
    /// Completions posted so far (a change means: look at the CQ).
    pub completions: u64,
}

/// How a device rings a controller's doorbells (`struct nvmf_pci_doorbells`, ABI 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PciDoorbells {
    /// Through [`PciHost::ring_sq`] and [`PciHost::ring_cq`], noticing completions and
    /// errors with [`PciHost::status`].
    Call,
    /// By writing the doorbells in memory; completions are seen by their phase tags in
    /// the CQ ring and a PCI error by CSTS in the register block `regs` (see
    /// [`super::memory`]). The calls are refused with EPERM.
    Memory {
        /// The controller's register block (CAP, VS, CC, CSTS).
        regs: PciSpan,
    },
}

/// The host's PCI bus, as a NIC reaches the NVMe devices beside it.
pub trait PciHost: Send + Sync {
    /// The controller whose first SQ-tail doorbell is at `(doorbell_mr, doorbell_addr)`.
    fn find(&self, doorbell_mr: MrId, doorbell_addr: u64) -> Option<PciFunction>;

    /// Writes `tail` into SQ `sq`'s doorbell and wakes the controller. ENODEV: no such
    /// controller; EINVAL: no such SQ.
    fn ring_sq(&self, id: u64, sq: u32, tail: u16) -> Result<(), Errno>;

    /// Writes `head` into the CQ-head doorbell (releasing entries). ENODEV: no such
    /// controller.
    fn ring_cq(&self, id: u64, head: u16) -> Result<(), Errno>;

    /// State and completion count. ENODEV: no such controller.
    fn status(&self, id: u64) -> Result<PciStatus, Errno>;

    /// How the device rings this controller's doorbells. ENODEV: no such controller. A
    /// host that predates memory doorbells (ABI 1) has only calls.
    fn doorbells(&self, id: u64) -> Result<PciDoorbells, Errno> {
        let _ = id;
        Ok(PciDoorbells::Call)
    }
}
