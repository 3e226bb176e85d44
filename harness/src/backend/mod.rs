//! The backend seam: how an offload device finds, drives and observes the NVMe
//! controllers behind it.
//!
//! A device under test gets a controller's queues from `create_nvme_ctrl` (SQ and CQ rings
//! and doorbells in memory regions); the engine then reaches the controller through a
//! [`BackendBus`] (find the controller behind a doorbell address) and a [`BackendPort`]
//! (write SQEs, ring doorbells, take CQEs, see a PCI error). Who implements them:
//!
//! - [`emulated`]: controllers the project emulates, with fault injection (PCI error,
//!   timeouts, DMA faults, media errors, slow completions); [`emulated::PciBus`] is their
//!   bus, and also the host side of the plugin ABI's PCI calls ([`PciHost`]).
//! - [`host`]: the controllers of the host process seen from inside a plugin, through
//!   [`PciHost`] (`struct nvmf_pci_ops` in `include/nvmf_offload.h`).
//! - [`ring`]: the NVMe queue protocol over memory regions that every port speaks.
//! - [`prp`]: PRP entries and lists, as a driver plans them and a controller walks them.
//! - [`memory`]: memory doorbells: emulated controllers whose doorbells and registers are
//!   memory the device writes and reads, as a NIC reaches a real SSD ([`BackendAccess`]).
//! - [`lab`]: faults a lab makes on a real SSD from its host (config-space writes, resets,
//!   removal), each checked for safety and undone.
//! - [`regs`]: 32-bit access to a controller's BAR0 registers (real, in memory, or fake).
//! - [`vfio`]: a real NVMe controller driven from userspace through VFIO, as another
//!   [`BackendPort`] on the bus.

pub mod emulated;
pub mod host;
pub mod lab;
pub mod memory;
pub mod pci;
pub mod prp;
pub mod regs;
pub mod ring;
pub mod round_robin;
pub mod vfio;

use std::sync::Arc;

use async_trait::async_trait;

use crate::fabric::{FabricError, MrId};

use emulated::BackendController;

pub use memory::{BackendAccess, DoorbellMode, PrpWindow};
pub use pci::{PciDoorbells, PciFunction, PciHost, PciQueue, PciSpan, PciState, PciStatus};
pub use ring::{CqReader, Doorbells, Rings, Span, SqWriter};

/// An error setting up or driving a backend controller.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A fabric call (memory region access) failed.
    #[error("fabric: {0}")]
    Fabric(#[from] FabricError),
    /// A file-backed namespace's I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An LBA format the emulated backend does not support.
    #[error("unsupported LBA format {0}")]
    UnsupportedFormat(emulated::LbaFormat),
    /// An invalid configuration; the text names the rule.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A namespace with this nsid already exists on the controller.
    #[error("namespace {0} already exists")]
    NamespaceExists(u32),
    /// No namespace with this nsid on the controller.
    #[error("namespace {0} not found")]
    NamespaceNotFound(u32),
}

/// A controller's state, observable with [`BackendController::watch_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtrlState {
    /// Serving commands.
    Running,
    /// Fatal PCI error (injected, or its queue memory became unreachable): doorbells are
    /// ignored and outstanding commands never complete. The engine raises `NvmePciErr`.
    PciError,
}

/// What the engine uses of a backend controller.
#[async_trait]
pub trait BackendPort: Send + Sync {
    /// Entries of every queue.
    fn depth(&self) -> u16;
    /// Number of SQs.
    fn sq_count(&self) -> usize;
    /// A producer for SQ `sq` (at its initial tail); `None` for an unknown SQ.
    fn sq_writer(&self, sq: usize) -> Option<SqWriter>;
    /// A consumer of the CQ (at its initial head, phase 1).
    fn cq_reader(&self) -> CqReader;
    /// Running, or in PCI error.
    fn state(&self) -> CtrlState;
    /// Returns when the controller may have posted a completion or changed state since the
    /// previous call (spurious returns are allowed).
    async fn wait_activity(&self);
    /// PRP1 and PRP2 describing the `len` bytes at address `addr` (one contiguous staging
    /// range) for the command in slot `cid`, as this controller reads them. The default is
    /// the emulated controllers' convention: PRP1 = the start of the range, PRP2 unused. A
    /// real controller's port builds PRP2 and a PRP list ([`prp`]).
    fn prps(&self, _cid: u16, addr: u64, _len: u64) -> Result<(u64, u64), BackendError> {
        Ok((addr, 0))
    }
    /// The in-process controller behind the port, if it is one (fault injection).
    fn controller(self: Arc<Self>) -> Option<Arc<BackendController>> {
        None
    }
}

/// Where the engine finds backend controllers.
pub trait BackendBus: Send + Sync {
    /// The controller whose first SQ-tail doorbell is at (`mr`, virtual address `addr`).
    fn find_port(&self, mr: MrId, addr: u64) -> Option<Arc<dyn BackendPort>>;
}
