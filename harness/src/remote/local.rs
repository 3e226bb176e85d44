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
use super::Link;
use crate::fabric::{DeviceContext, Fabric, Fault, Result};

/// A [`Link`] to a host in this process; every message goes through JSON text.
pub struct LocalLink {
    host: DeviceHost,
}

impl LocalLink {
    /// A link to a host serving `ctx`.
    pub fn new(ctx: Arc<dyn DeviceContext>) -> LocalLink {
        LocalLink {
            host: DeviceHost::new(ctx),
        }
    }
}

/// `v` as the other side reads it: written as JSON and parsed back.
fn carried<T: Serialize + for<'de> Deserialize<'de>>(v: &T) -> std::result::Result<T, CtxReply> {
    let broken = |e: serde_json::Error| {
        CtxReply::Error(ErrorRepr {
            errno: nix::errno::Errno::ENODEV as i32,
            reason: format!("a message did not survive JSON: {e}"),
        })
    };
    let text = serde_json::to_string(v).map_err(broken)?;
    serde_json::from_str(&text).map_err(broken)
}

#[async_trait]
impl Link for LocalLink {
    fn call(&self, call: &CtxCall) -> CtxReply {
        match carried(call) {
            Ok(call) => carried(&self.host.handle(call)).unwrap_or_else(|e| e),
            Err(e) => e,
        }
    }

    async fn wait(&self, wait: &CtxWait) -> CtxReply {
        match carried(wait) {
            Ok(wait) => carried(&self.host.wait(wait).await).unwrap_or_else(|e| e),
            Err(e) => e,
        }
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
