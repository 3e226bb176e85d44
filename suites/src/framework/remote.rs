//! The device under test of two-host mode (`--connect ADDR`): the target and its device
//! run in `nvmf-reference-target --control` on another host, reached through the control
//! channel ([`reference_target::remote`]); this process only has the hosts.
//!
//! Control-plane cases reach the target through [`super::target::TargetRig`], whose every
//! look behind the target (controllers, counters, backend blocks, events) becomes a request
//! on the channel; their Dut (`Dut::remote`) has [`Elsewhere`] for its provider, which
//! answers ENODEV. Every other case uses the remote target's device itself
//! ([`RemoteDevice`]: its context, offload API and emulated backends as messages).

use std::sync::Arc;

use async_trait::async_trait;
use harness::api::{
    CtrlHandle, NsCounters, NsMapping, NvmeCtrlAttrs, NvmfCaps, NvmfSrq, NvmfSrqAttrs,
    OffloadError, OffloadEvent, OffloadProvider, Profile, QpNvmfFlags, SrqCounters, SrqHandle,
};
use harness::fabric::{PdId, QpId};
use reference_target::quirks::Quirks;
use reference_target::remote::{RemoteDevice, RemoteTarget};

/// The provider of a device in another process: its caps are the profile's, every call
/// is ENODEV and no event ever comes.
pub struct Elsewhere {
    caps: NvmfCaps,
}

impl Elsewhere {
    /// A device elsewhere presenting `caps`.
    pub fn new(caps: NvmfCaps) -> Elsewhere {
        Elsewhere { caps }
    }
}

const ELSEWHERE: OffloadError =
    OffloadError::NoDevice("the device is in the remote target's process");

#[async_trait]
impl OffloadProvider for Elsewhere {
    fn caps(&self) -> NvmfCaps {
        self.caps.clone()
    }
    fn create_srq(&self, _pd: PdId, _attrs: &NvmfSrqAttrs) -> harness::api::Result<NvmfSrq> {
        Err(ELSEWHERE)
    }
    fn destroy_srq(&self, _srq: SrqHandle) -> harness::api::Result<()> {
        Err(ELSEWHERE)
    }
    fn create_nvme_ctrl(
        &self,
        _srq: SrqHandle,
        _attrs: &NvmeCtrlAttrs,
    ) -> harness::api::Result<CtrlHandle> {
        Err(ELSEWHERE)
    }
    fn remove_nvme_ctrl(&self, _srq: SrqHandle, _ctrl: CtrlHandle) -> harness::api::Result<()> {
        Err(ELSEWHERE)
    }
    fn map_nsid(&self, _ctrl: CtrlHandle, _m: &NsMapping) -> harness::api::Result<()> {
        Err(ELSEWHERE)
    }
    fn unmap_nsid(&self, _ctrl: CtrlHandle, _fe_nsid: u32) -> harness::api::Result<()> {
        Err(ELSEWHERE)
    }
    fn qp_set_nvmf(&self, _qp: QpId, _flags: QpNvmfFlags) -> harness::api::Result<()> {
        Err(ELSEWHERE)
    }
    fn ns_counters(&self, _ctrl: CtrlHandle, _fe_nsid: u32) -> harness::api::Result<NsCounters> {
        Err(ELSEWHERE)
    }
    fn srq_counters(&self, _srq: SrqHandle) -> harness::api::Result<SrqCounters> {
        Err(ELSEWHERE)
    }
    fn poll_event(&self) -> Option<OffloadEvent> {
        None
    }
    async fn next_event(&self) -> OffloadEvent {
        std::future::pending().await
    }
}

/// What a remote Dut carries besides the usual fields: the channel, and what a target it
/// starts is given.
#[derive(Clone)]
pub struct Remote {
    /// The control channel.
    pub target: Arc<RemoteTarget>,
    /// The profile the remote engine presents.
    pub profile: Profile,
    /// The quirks the remote target commits.
    pub quirks: Quirks,
    /// The remote target's device, when the case uses it itself (every case but the
    /// control-plane ones).
    pub device: Option<Arc<RemoteDevice>>,
}
