//! The control channel of two-host mode: `nvmf-reference-target --control ADDR` on the
//! target host, `nvmf-conform run --connect ADDR` on the initiator host. Over TLS 1.3, after
//! both ends prove they hold the lab's secret, the runner starts a target per case from the
//! case's configuration, reads what only the target can see (controllers, counters, backend
//! blocks, its event log), injects backend faults, and takes the target's trace when it
//! stops it. The NVMe-oF traffic itself goes over RDMA between the two hosts' devices.
//!
//! | file | holds |
//! |---|---|
//! | `proto.rs` | the messages (JSON lines) and bounded line reading |
//! | `auth.rs` | the lab secret, its proofs bound to the TLS session, the TLS configurations |
//! | `channel.rs` | the stream under the lines: TLS or (`--insecure`) plain TCP, each end's setup |
//! | `server.rs` | the target's end: one runner at a time, a fresh device per `start` |
//! | `served.rs` | what the channel serves on its device: the reference engine or a vendor plugin |
//! | `device.rs` | the device itself served (`open-device`): context, offload API, backends |
//! | `link.rs` | the runner's end of it: [`RemoteDevice`], the link the remote device's proxies use |
//! | `client.rs` | the runner's end: typed calls, each bounded in time |
//!
//! See `docs/two-host.md`.

pub mod auth;
pub mod channel;
pub mod client;
pub mod device;
pub mod link;
pub mod proto;
pub mod served;
pub mod server;

pub use auth::{Secret, Security};
pub use client::{RemoteError, RemoteInfo, RemoteTarget, REPLY_BOUND};
pub use device::LendsReal;
pub use link::RemoteDevice;
pub use proto::LentReal;
pub use served::Served;
pub use server::{ControlServer, OpenDevice, Opened};
