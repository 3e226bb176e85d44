//! A remote device in this process: [`LocalLink`] hands every call and reply through JSON
//! (as the control channel will carry them) to a [`DeviceHost`]; [`RemoteFabric`] opens
//! every device of a fabric that way. Case code then runs against a device it reaches only
//! by messages, which is what proves the messages carry everything.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::call::{CtxCall, CtxReply, CtxWait};
use super::context::RemoteContext;
use super::error::ErrorRepr;
use super::host::DeviceHost;
use super::offload::{OffloadCall, OffloadHost, OffloadLink, OffloadReply, RemoteProvider};
use super::Link;
use crate::api::OffloadProvider;
use crate::fabric::{DeviceContext, Fabric, Fault, Result};

/// A [`Link`] (and, with a provider, an [`OffloadLink`]) to a host in this process; every
/// message goes through JSON text.
pub struct LocalLink {
    host: DeviceHost,
    offload: Option<OffloadHost>,
}

impl LocalLink {
    /// A link to a host serving `ctx`.
    pub fn new(ctx: Arc<dyn DeviceContext>) -> LocalLink {
        LocalLink {
            host: DeviceHost::new(ctx),
            offload: None,
        }
    }

    /// A link to a host serving `ctx` and `provider` (one device's two faces).
    pub fn with_provider(
        ctx: Arc<dyn DeviceContext>,
        provider: Arc<dyn OffloadProvider>,
    ) -> LocalLink {
        LocalLink {
            host: DeviceHost::new(ctx),
            offload: Some(OffloadHost::new(provider)),
        }
    }

    /// `ctx` and `provider`, each reached only by messages through one local link.
    pub fn device(
        ctx: Arc<dyn DeviceContext>,
        provider: Arc<dyn OffloadProvider>,
    ) -> std::result::Result<crate::plugin::DeviceUnderTest, String> {
        let link = Arc::new(LocalLink::with_provider(ctx, provider));
        let ctx = RemoteContext::new(link.clone()).map_err(|e| e.to_string())?;
        let provider = RemoteProvider::new(link).map_err(|e| e.to_string())?;
        Ok((Arc::new(ctx), Arc::new(provider)))
    }

    fn no_provider() -> OffloadReply {
        OffloadReply::Error(ErrorRepr {
            errno: nix::errno::Errno::ENODEV as i32,
            reason: "this link serves no offload provider".into(),
        })
    }
}

/// `v` as the other side reads it: written as JSON and parsed back (`Err`: why not).
pub(super) fn carried<T: Serialize + for<'de> Deserialize<'de>>(
    v: &T,
) -> std::result::Result<T, ErrorRepr> {
    let broken = |e: serde_json::Error| ErrorRepr {
        errno: nix::errno::Errno::ENODEV as i32,
        reason: format!("a message did not survive JSON: {e}"),
    };
    let text = serde_json::to_string(v).map_err(broken)?;
    serde_json::from_str(&text).map_err(broken)
}

#[async_trait]
impl Link for LocalLink {
    fn call(&self, call: &CtxCall) -> CtxReply {
        let reply = match carried(call) {
            Ok(call) => carried(&self.host.handle(call)),
            Err(e) => Err(e),
        };
        reply.unwrap_or_else(CtxReply::Error)
    }

    async fn wait(&self, wait: &CtxWait) -> CtxReply {
        let reply = match carried(wait) {
            Ok(wait) => carried(&self.host.wait(wait).await),
            Err(e) => Err(e),
        };
        reply.unwrap_or_else(CtxReply::Error)
    }
}

#[async_trait]
impl OffloadLink for LocalLink {
    fn call(&self, call: &OffloadCall) -> OffloadReply {
        let Some(host) = &self.offload else {
            return LocalLink::no_provider();
        };
        let reply = match carried(call) {
            Ok(call) => carried(&host.handle(call)),
            Err(e) => Err(e),
        };
        reply.unwrap_or_else(OffloadReply::Error)
    }

    async fn next_event(&self) -> OffloadReply {
        let Some(host) = &self.offload else {
            return LocalLink::no_provider();
        };
        carried(&host.next_event().await).unwrap_or_else(OffloadReply::Error)
    }
}

/// A fabric whose devices are all reached through a [`LocalLink`]: the same devices,
/// names and faults as `inner`'s.
pub struct RemoteFabric {
    inner: Arc<dyn Fabric>,
}

impl RemoteFabric {
    /// `inner`'s devices, each behind a link.
    pub fn new(inner: Arc<dyn Fabric>) -> Arc<RemoteFabric> {
        Arc::new(RemoteFabric { inner })
    }
}

impl Fabric for RemoteFabric {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn devices(&self) -> Result<Vec<String>> {
        self.inner.devices()
    }
    fn open(&self, device: &str) -> Result<Arc<dyn DeviceContext>> {
        let link = Arc::new(LocalLink::new(self.inner.open(device)?));
        Ok(Arc::new(RemoteContext::new(link)?))
    }
    fn inject(&self, fault: Fault) -> Result<()> {
        self.inner.inject(fault)
    }
}
