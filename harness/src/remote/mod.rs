//! A device used from another process (two-host mode, issue 19): a [`DeviceContext`] and an
//! `OffloadProvider` whose every call is a message, served by a [`DeviceHost`] and an
//! [`OffloadHost`] where the device is, and made by a [`RemoteContext`] and a
//! [`RemoteProvider`] that are themselves a `DeviceContext` and an `OffloadProvider`, so
//! case code runs unchanged.
//!
//! | file | holds |
//! |---|---|
//! | `error.rs` | errors (offload and fabric) as they cross a process boundary |
//! | `call.rs` | the calls, the waits and the replies ([`CtxCall`], [`CtxWait`], [`CtxReply`]) |
//! | `host.rs` | [`DeviceHost`]: carries a call out on the real device context |
//! | `context.rs` | [`RemoteContext`]: the `DeviceContext` that sends each call over a [`Link`] |
//! | `offload.rs` | the same for the offload API: [`OffloadCall`], [`OffloadHost`], [`RemoteProvider`] over an [`OffloadLink`] |
//! | `backend.rs` | the emulated backend controllers as messages: [`BackendCall`], [`BackendHost`], [`BackendLink`] |
//! | `local.rs` | [`LocalLink`] (every message through JSON to a host in this process) and [`RemoteFabric`] |
//!
//! A [`Link`] carries a call and brings back its reply; the control channel's link (TCP or
//! TLS to `nvmf-reference-target --control`) is the next step of issue 19.
//!
//! [`DeviceContext`]: crate::fabric::DeviceContext

use async_trait::async_trait;

use error::ErrorRepr;

/// Sends `$call` over `$self.link`: the reply `$reply` gives `Ok($out)`; any other is
/// `Err(unexpected(other))`, with the calling module's `unexpected` (the error the reply
/// holds, or ENODEV naming the reply).
macro_rules! ask {
    ($self:ident, $call:expr, $reply:pat => $out:expr) => {
        match $self.link.call(&$call) {
            $reply => Ok($out),
            other => Err(unexpected(other)),
        }
    };
}

pub mod backend;
pub mod call;
pub mod context;
pub mod error;
pub mod host;
pub mod local;
pub mod offload;

pub use backend::{
    BackendCall, BackendHost, BackendId, BackendLink, BackendReply, JsonBackendLink, NsSource,
};
pub use call::{CtxCall, CtxReply, CtxWait};
pub use context::RemoteContext;
pub use host::DeviceHost;
pub use local::{LocalLink, RemoteFabric};
pub use offload::{OffloadCall, OffloadHost, OffloadLink, OffloadReply, RemoteProvider};

/// A call's result as a reply: `ok` of its value, or `error` of its error as it travels
/// ([`error::ErrorRepr`]).
fn answer<T, E, R>(
    r: Result<T, E>,
    ok: impl FnOnce(T) -> R,
    error: impl FnOnce(ErrorRepr) -> R,
) -> R
where
    for<'a> ErrorRepr: From<&'a E>,
{
    match r {
        Ok(v) => ok(v),
        Err(e) => error(ErrorRepr::from(&e)),
    }
}

/// How calls reach the host and replies come back. A link that breaks answers every call
/// with [`CtxReply::Error`] (ENODEV, naming why).
#[async_trait]
pub trait Link: Send + Sync {
    /// Carries one call (the device's answer is immediate).
    fn call(&self, call: &CtxCall) -> CtxReply;
    /// Waits on the host's side as `wait` says, and brings back what came.
    async fn wait(&self, wait: &CtxWait) -> CtxReply;
}
