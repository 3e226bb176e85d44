//! The offload API under test: the RFC's NVMe-oF target offload verbs, in Rust.
//!
//! - [`OffloadProvider`] ([`provider`]): the calls a target's control plane makes.
//! - [`NvmfCaps`] ([`caps`]): what a device can do; [`Profile`] ([`profile`]) names a set
//!   of caps in a TOML file (`fixtures/profiles/`).
//! - [`OffloadOps`] / [`OffloadType`] ([`ops`]): which commands are offloaded, and the rule
//!   tying an SRQ's request to the device's capability bits.
//! - [`NvmfSrqAttrs`] ([`srq`]), [`NvmeCtrlAttrs`] ([`ctrl`]), [`NsMapping`]
//!   ([`namespace`]), [`QpNvmfFlags`] ([`qp`]): the arguments, with [`MemRef`] ([`mem`]).
//! - [`OffloadEvent`] ([`event`]): the asynchronous events, with trace names.
//! - [`OffloadError`] ([`error`]): one variant per errno.
//! - [`check`]: the rule book, pure functions giving the exact errno for every argument
//!   and state; its module docs hold the table of errno decisions.

pub mod caps;
pub mod check;
pub mod ctrl;
pub mod error;
pub mod event;
pub mod mem;
pub mod namespace;
pub mod ops;
pub mod profile;
pub mod provider;
pub mod qp;
pub mod srq;

pub use caps::{CapsProblem, NvmfCaps};
pub use ctrl::{BackendSq, CtrlAttrMask, CtrlHandle, NvmeCtrlAttrs};
pub use error::{OffloadError, Result};
pub use event::OffloadEvent;
pub use mem::MemRef;
pub use namespace::{NsCounters, NsMapping};
pub use ops::{OffloadOps, OffloadType};
pub use profile::{Profile, ProfileError};
pub use provider::OffloadProvider;
pub use qp::QpNvmfFlags;
pub use srq::{NvmfSrq, NvmfSrqAttrs, SrqCounters, SrqHandle, StagingBuf};
