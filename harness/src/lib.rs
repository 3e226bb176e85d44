//! The nvmf-conform harness: everything a conformance suite uses to drive an NVMe-oF
//! target offload device.
//!
//! - [`api`]: the offload API under test (`OffloadProvider`), shaped after the RFC.
//! - [`wire`]: byte-exact NVMe and NVMe-oF formats (SQE, CQE, SGL, Connect, CM private data).
//! - [`fabric`]: the RDMA transport seam and its deterministic simulated implementation.
//! - [`initiator`]: an NVMe-oF RDMA host (admin and I/O queues, misbehaviour) over the fabric.
//! - [`trace`]: recording wrappers that turn a case into normalised, comparable text.
//! - [`runner`] and [`report`]: verdicts, exit codes, JUnit / Markdown / JSON reports.

pub mod api;
pub mod fabric;
pub mod initiator;
pub mod report;
pub mod runner;
pub mod trace;
pub mod wire;
