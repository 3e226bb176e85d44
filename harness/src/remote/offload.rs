//! The offload API used from another process: one [`OffloadCall`] per `OffloadProvider`
//! method that answers at once, the [`OffloadReply`] each gets, [`OffloadHost`] carrying
//! them out on the real provider, and [`RemoteProvider`], an `OffloadProvider` that sends
//! each call over an [`OffloadLink`].

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::error::ErrorRepr;
use crate::api::{
    CtrlHandle, NsCounters, NsMapping, NvmeCtrlAttrs, NvmfCaps, NvmfSrq, NvmfSrqAttrs,
    OffloadError, OffloadEvent, OffloadProvider, QpNvmfFlags, Result, SrqCounters, SrqHandle,
};
use crate::backend::BackendAccess;
use crate::fabric::{PdId, QpId};

/// An `OffloadProvider` call that answers at once. Each variant's fields are the arguments
/// of the method it names, documented there.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OffloadCall {
    /// `caps`.
    Caps,
    /// `create_srq`.
    CreateSrq { pd: PdId, attrs: NvmfSrqAttrs },
    /// `destroy_srq`.
    DestroySrq { srq: SrqHandle },
    /// `create_nvme_ctrl`.
    CreateNvmeCtrl {
        srq: SrqHandle,
        attrs: NvmeCtrlAttrs,
    },
    /// `remove_nvme_ctrl`.
    RemoveNvmeCtrl { srq: SrqHandle, ctrl: CtrlHandle },
    /// `map_nsid`.
    MapNsid { ctrl: CtrlHandle, m: NsMapping },
    /// `unmap_nsid`.
    UnmapNsid { ctrl: CtrlHandle, fe_nsid: u32 },
    /// `qp_set_nvmf`.
    QpSetNvmf { qp: QpId, flags: QpNvmfFlags },
    /// `ns_counters`.
    NsCounters { ctrl: CtrlHandle, fe_nsid: u32 },
    /// `srq_counters`.
    SrqCounters { srq: SrqHandle },
    /// `poll_event`.
    PollEvent,
    /// `backend_access`.
    BackendAccess,
    /// `inject_pci_error`.
    InjectPciError { ctrl: CtrlHandle },
}

/// What an offload call gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "kebab-case")]
pub enum OffloadReply {
    /// Done, nothing to give back.
    Done,
    /// The device's capabilities.
    Caps(NvmfCaps),
    /// A new NVMe-oF SRQ.
    Srq(NvmfSrq),
    /// A new backend controller.
    Ctrl(CtrlHandle),
    /// A namespace's counters.
    NsCounters(NsCounters),
    /// An SRQ's counters.
    SrqCounters(SrqCounters),
    /// An event, if one was pending (or the one awaited).
    Event(Option<OffloadEvent>),
    /// How the device reaches its backend controllers.
    BackendAccess(BackendAccess),
    /// The call failed (or the link broke: ENODEV).
    Error(ErrorRepr),
}

/// How offload calls reach the host and replies come back.
#[async_trait]
pub trait OffloadLink: Send + Sync {
    /// Carries one call.
    fn call(&self, call: &OffloadCall) -> OffloadReply;
    /// Waits on the host's side for the provider's next event.
    async fn next_event(&self) -> OffloadReply;
}

/// Serves offload calls on one provider.
pub struct OffloadHost {
    provider: Arc<dyn OffloadProvider>,
}

fn reply<T>(r: Result<T>, ok: impl FnOnce(T) -> OffloadReply) -> OffloadReply {
    super::answer(r, ok, OffloadReply::Error)
}

fn done(r: Result<()>) -> OffloadReply {
    reply(r, |()| OffloadReply::Done)
}

impl OffloadHost {
    /// A host serving `provider`.
    pub fn new(provider: Arc<dyn OffloadProvider>) -> OffloadHost {
        OffloadHost { provider }
    }

    /// Carries out `call`.
    pub fn handle(&self, call: OffloadCall) -> OffloadReply {
        let p = &self.provider;
        match call {
            OffloadCall::Caps => OffloadReply::Caps(p.caps()),
            OffloadCall::CreateSrq { pd, attrs } => {
                reply(p.create_srq(pd, &attrs), OffloadReply::Srq)
            }
            OffloadCall::DestroySrq { srq } => done(p.destroy_srq(srq)),
            OffloadCall::CreateNvmeCtrl { srq, attrs } => {
                reply(p.create_nvme_ctrl(srq, &attrs), OffloadReply::Ctrl)
            }
            OffloadCall::RemoveNvmeCtrl { srq, ctrl } => done(p.remove_nvme_ctrl(srq, ctrl)),
            OffloadCall::MapNsid { ctrl, m } => done(p.map_nsid(ctrl, &m)),
            OffloadCall::UnmapNsid { ctrl, fe_nsid } => done(p.unmap_nsid(ctrl, fe_nsid)),
            OffloadCall::QpSetNvmf { qp, flags } => done(p.qp_set_nvmf(qp, flags)),
            OffloadCall::NsCounters { ctrl, fe_nsid } => {
                reply(p.ns_counters(ctrl, fe_nsid), OffloadReply::NsCounters)
            }
            OffloadCall::SrqCounters { srq } => {
                reply(p.srq_counters(srq), OffloadReply::SrqCounters)
            }
            OffloadCall::PollEvent => OffloadReply::Event(p.poll_event()),
            OffloadCall::BackendAccess => OffloadReply::BackendAccess(p.backend_access()),
            OffloadCall::InjectPciError { ctrl } => done(p.inject_pci_error(ctrl)),
        }
    }

    /// Waits for the provider's next event.
    pub async fn next_event(&self) -> OffloadReply {
        OffloadReply::Event(Some(self.provider.next_event().await))
    }
}

/// An offload provider in another process (or behind any [`OffloadLink`]).
pub struct RemoteProvider {
    link: Arc<dyn OffloadLink>,
    caps: NvmfCaps,
    access: BackendAccess,
}

fn unexpected(reply: OffloadReply) -> OffloadError {
    match reply {
        OffloadReply::Error(e) => OffloadError::from(&e),
        _ => OffloadError::NoDevice("the remote device answered another call's reply"),
    }
}

impl RemoteProvider {
    /// The provider behind `link`; its caps and backend access are read once, now.
    pub fn new(link: Arc<dyn OffloadLink>) -> Result<RemoteProvider> {
        let caps = match link.call(&OffloadCall::Caps) {
            OffloadReply::Caps(c) => c,
            other => return Err(unexpected(other)),
        };
        let access = match link.call(&OffloadCall::BackendAccess) {
            OffloadReply::BackendAccess(a) => a,
            other => return Err(unexpected(other)),
        };
        Ok(RemoteProvider { link, caps, access })
    }
}

#[async_trait]
impl OffloadProvider for RemoteProvider {
    fn caps(&self) -> NvmfCaps {
        self.caps.clone()
    }
    fn create_srq(&self, pd: PdId, attrs: &NvmfSrqAttrs) -> Result<NvmfSrq> {
        let call = OffloadCall::CreateSrq {
            pd,
            attrs: attrs.clone(),
        };
        ask!(self, call, OffloadReply::Srq(s) => s)
    }
    fn destroy_srq(&self, srq: SrqHandle) -> Result<()> {
        ask!(self, OffloadCall::DestroySrq { srq }, OffloadReply::Done => ())
    }
    fn create_nvme_ctrl(&self, srq: SrqHandle, attrs: &NvmeCtrlAttrs) -> Result<CtrlHandle> {
        let call = OffloadCall::CreateNvmeCtrl {
            srq,
            attrs: attrs.clone(),
        };
        ask!(self, call, OffloadReply::Ctrl(c) => c)
    }
    fn remove_nvme_ctrl(&self, srq: SrqHandle, ctrl: CtrlHandle) -> Result<()> {
        ask!(self, OffloadCall::RemoveNvmeCtrl { srq, ctrl }, OffloadReply::Done => ())
    }
    fn map_nsid(&self, ctrl: CtrlHandle, m: &NsMapping) -> Result<()> {
        ask!(self, OffloadCall::MapNsid { ctrl, m: *m }, OffloadReply::Done => ())
    }
    fn unmap_nsid(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<()> {
        ask!(self, OffloadCall::UnmapNsid { ctrl, fe_nsid }, OffloadReply::Done => ())
    }
    fn qp_set_nvmf(&self, qp: QpId, flags: QpNvmfFlags) -> Result<()> {
        ask!(self, OffloadCall::QpSetNvmf { qp, flags }, OffloadReply::Done => ())
    }
    fn ns_counters(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<NsCounters> {
        ask!(self, OffloadCall::NsCounters { ctrl, fe_nsid }, OffloadReply::NsCounters(c) => c)
    }
    fn srq_counters(&self, srq: SrqHandle) -> Result<SrqCounters> {
        ask!(self, OffloadCall::SrqCounters { srq }, OffloadReply::SrqCounters(c) => c)
    }
    fn poll_event(&self) -> Option<OffloadEvent> {
        match self.link.call(&OffloadCall::PollEvent) {
            OffloadReply::Event(e) => e,
            _ => None,
        }
    }
    async fn next_event(&self) -> OffloadEvent {
        if let OffloadReply::Event(Some(e)) = self.link.next_event().await {
            return e;
        }
        // a broken link: no event will come (callers bound their waits)
        std::future::pending().await
    }
    fn backend_access(&self) -> BackendAccess {
        self.access
    }
    fn inject_pci_error(&self, ctrl: CtrlHandle) -> Result<()> {
        ask!(self, OffloadCall::InjectPciError { ctrl }, OffloadReply::Done => ())
    }
}
