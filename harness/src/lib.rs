//! The nvmf-conform harness: everything a conformance suite uses to drive an NVMe-oF
//! target offload device.
//!
//! Three seams carry the design:
//!
//! - [`fabric`]: RDMA transport (`Fabric`, `DeviceContext`): the deterministic simulated
//!   fabric, or real verbs.
//! - [`api`]: the offload API under test (`OffloadProvider`), shaped after the RFC.
//! - [`backend`]: how a device reaches the NVMe controllers behind it (`BackendBus`,
//!   `BackendPort`): emulated controllers with fault injection, or the host's through a
//!   plugin.
//!
//! Around them:
//!
//! - [`wire`]: byte-exact NVMe and NVMe-oF formats (SQE, CQE, SGL, Connect, CM private data).
//! - [`capture`]: RoCEv2 pcap captures of the simulated fabric (Wireshark decodes NVMe-oF).
//! - [`initiator`]: an NVMe-oF RDMA host (admin and I/O queues, misbehaviour) over the fabric.
//! - [`trace`]: recording wrappers that turn a case into normalised, comparable text.
//! - [`plugin`]: vendor plugins through the C ABI of `include/nvmf_offload.h`
//!   ([`ffi`] holds the ABI's mirrors and all of the crate's unsafe code).
//! - [`remote`]: a device context used from another process (two-host mode): its calls as
//!   messages, the host that serves them, the proxy that makes them.
//! - [`runner`] and [`report`]: verdicts, exit codes, JUnit / Markdown / JSON reports.

pub mod api;
pub mod backend;
pub mod capture;
pub mod case;
pub mod fabric;
pub mod ffi;
pub mod initiator;
pub mod plugin;
pub mod remote;
pub mod report;
pub mod runner;
pub mod trace;
pub mod wire;
