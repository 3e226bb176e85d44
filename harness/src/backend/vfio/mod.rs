//! A real NVMe controller behind the backend seam, driven from userspace through VFIO, as
//! a userspace target (or an offload NIC) drives an SSD: rings in memory the engine owns,
//! doorbells written into the controller's BAR, completions reaped by phase tag.
//!
//! Each piece testable without a device:
//! - [`address`]: the PCI address an operator names (`0000:01:00.0`), checked field by
//!   field;
//! - [`sysfs`]: whether that device can be driven through VFIO at all — present, in an
//!   IOMMU group, bound to `vfio-pci`, its group node there — each refusal a precise
//!   [`VfioError`];
//! - [`sys`]: every `unsafe` call (container, group, device, DMA mapping, eventfds);
//! - [`regs`] (shared with the memory-doorbell backend, [`super::regs`]): 32-bit register
//!   access to BAR0, 64-bit registers as two halves;
//! - [`bringup`]: the reset-and-enable sequence, bounded by CAP.TO;
//! - [`queue`]: a polled queue pair in the driver's own DMA memory;
//! - [`controller`]: [`VfioController`], bring-up, Identify, queue creation, commands;
//! - [`port`]: [`VfioPort`], the engine's [`super::BackendPort`] on the controller: rings
//!   in the engine's memory, doorbells in BAR0, PRP lists, MSI-X, CSTS and eventfds
//!   watched;
//! - [`shared`]: [`SharedController`], a controller lending one queue pair per port
//!   (the control plane's and the suites' real backends), with one of its own for I/O the
//!   caller runs itself;
//! - [`lent`]: [`LentController`], a shared controller whose queue pairs are a device's
//!   backend controllers, with real faults through a [`FaultLine`] (the suites' real
//!   backend, in their process or served on the control channel's target host);
//! - [`broker`] and [`check`]: real faults from the host's fault broker, and
//!   `nvmf-reference-target --vfio-check`.
//!
//! PRP entries and lists are [`super::prp`]; see `docs/architecture.md`.

pub mod address;
pub mod bringup;
pub mod broker;
pub mod check;
pub mod controller;
pub mod lent;
pub mod port;
pub mod queue;
pub use super::regs;
pub mod shared;
pub mod sys;
pub mod sysfs;

use std::path::PathBuf;

pub use address::PciAddress;
pub use controller::{Transfer, VfioController, VfioNamespace};
pub use lent::{FaultLine, LentController};
pub use port::{RingLayout, VfioPort};
pub use shared::SharedController;

/// Why a controller cannot be reached or brought up through VFIO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VfioError {
    /// The PCI address does not parse; names the field.
    #[error("PCI address {text:?}: {why}")]
    BadAddress {
        /// What was given.
        text: String,
        /// Which field is wrong and why.
        why: String,
    },
    /// No such PCI device.
    #[error("no PCI device {0} ({1} does not exist)")]
    NoSuchDevice(PciAddress, PathBuf),
    /// The device is in no IOMMU group: no IOMMU, or it is off.
    #[error(
        "PCI device {0} is in no IOMMU group: VFIO needs an IOMMU (on Intel, boot with \
         intel_iommu=on; in QEMU, -device intel-iommu); Debian's kernels have no no-IOMMU mode"
    )]
    NoIommuGroup(PciAddress),
    /// The device is bound to another driver, or to none.
    #[error(
        "PCI device {address} is bound to {driver}, not vfio-pci: unbind it and bind it to \
         vfio-pci (echo vfio-pci > .../driver_override; echo {address} > \
         /sys/bus/pci/drivers_probe) — never a system disk"
    )]
    WrongDriver {
        /// The device.
        address: PciAddress,
        /// Its driver, or `no driver`.
        driver: String,
    },
    /// The group's VFIO node is missing: the vfio modules are not loaded.
    #[error("VFIO group node {0} is missing: load vfio-pci (modprobe vfio-pci)")]
    NoGroupNode(PathBuf),
    /// A VFIO or memory call failed.
    #[error("{call}: {errno}")]
    Call {
        /// The call.
        call: &'static str,
        /// Its errno.
        errno: nix::errno::Errno,
    },
    /// The kernel's VFIO lacks what the backend needs.
    #[error("unsupported VFIO: {0}")]
    Unsupported(String),
    /// The IOMMU group holds devices not bound to vfio-pci.
    #[error(
        "IOMMU group {0} is not viable: every device in it must be bound to vfio-pci (or to \
         no driver)"
    )]
    GroupNotViable(u32),
    /// A sysfs or device file could not be read.
    #[error("{path}: {errno}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        errno: nix::errno::Errno,
    },
    /// The controller does not support the NVM command set (CAP.CSS bit 0).
    #[error("the controller does not support the NVM command set (CAP {0:#018x})")]
    NoNvmCommandSet(u64),
    /// The host's memory page size is outside CAP.MPSMIN..=MPSMAX.
    #[error(
        "memory page size {page} is outside the controller's {min}..={max} (CAP.MPSMIN/MPSMAX)"
    )]
    PageSize {
        /// The page size asked for.
        page: u64,
        /// The smallest the controller takes.
        min: u64,
        /// The largest.
        max: u64,
    },
    /// The admin queues are larger than the controller takes (CAP.MQES, AQA's 12 bits).
    #[error("admin queues of {entries} entries: the controller takes 2..={max}")]
    AdminQueueSize {
        /// Entries asked for.
        entries: u32,
        /// The largest.
        max: u32,
    },
    /// A queue base address is not page aligned.
    #[error("{what} at {addr:#x} is not aligned to the {page}-byte memory page")]
    Unaligned {
        /// Which queue.
        what: &'static str,
        /// Its address.
        addr: u64,
        /// The page size.
        page: u64,
    },
    /// CSTS.CFS: the controller reported a fatal error.
    #[error("controller fatal status (CSTS {csts:#010x}) while {during}")]
    ControllerFatal {
        /// CSTS as read.
        csts: u32,
        /// What the driver was doing.
        during: &'static str,
    },
    /// Registers read all ones: the device is gone (surprise removal, link down).
    #[error("registers read all ones while {0}: the device is gone")]
    DeviceGone(&'static str),
    /// A command got no completion within its bound, while CSTS stayed ready.
    #[error("{what}: no completion within {waited_ms} ms")]
    NoCompletion {
        /// The command.
        what: &'static str,
        /// How long the driver waited.
        waited_ms: u64,
    },
    /// A command completed with an error status.
    #[error("{what}: {status}")]
    Status {
        /// The command.
        what: &'static str,
        /// Its status.
        status: crate::wire::Status,
    },
    /// The fault broker refused a fault or did not answer.
    #[error("fault broker: {0}")]
    Broker(String),
    /// CSTS.RDY did not follow CC.EN within the controller's bound (CAP.TO).
    #[error("CSTS.RDY did not become {want} within {waited_ms} ms (CAP.TO; CSTS {csts:#010x})")]
    NotReady {
        /// The RDY value waited for.
        want: u8,
        /// How long the driver waited.
        waited_ms: u64,
        /// CSTS as last read.
        csts: u32,
    },
}
