//! An NVMe-oF RDMA host over the [`crate::fabric::DeviceContext`] trait, modelled on the
//! Linux host (`drivers/nvme/host/rdma.c`, `fabrics.c`).
//!
//! - [`queue`]: one host queue pair: receive ring, capsule buffers, CIDs, bounded waits.
//! - [`connect`]: RDMA CM connect with NVMe-oF private data, then Fabrics Connect.
//! - [`admin`]: [`Controller`]: properties, enable, Identify, features, shutdown.
//! - [`io`]: [`IoQueue`]: Read, Write, Flush, Write Zeroes, Dataset Management.
//! - [`misbehave`]: deliberate protocol violations through the same API.
//! - [`software`]: the target software's side of a Connect, for targets built by hand.
//! - [`error`]: the error type, [`InitiatorError`].

pub mod admin;
pub mod connect;
pub mod error;
pub mod io;
pub mod misbehave;
pub mod queue;
pub mod software;

pub use admin::{Controller, HostConfig, IdentifyController, IdentifyNamespace};
pub use error::{InitiatorError, Result};
pub use io::IoQueue;
pub use queue::{
    Command, Completion, DataMode, HostQueue, QueueSpec, Response, SqhdCheck, Transfer,
};
