//! A deliberately crashing device, for the runner's containment tests: with
//! `crash=map_nsid` in the config, the plugin aborts the process in its first `map_nsid`,
//! as a vendor library with a fatal bug would. Every other call passes through.

use std::sync::Arc;

use async_trait::async_trait;
use harness::api::{
    CtrlHandle, NsCounters, NsMapping, NvmeCtrlAttrs, NvmfCaps, NvmfSrq, NvmfSrqAttrs,
    OffloadEvent, OffloadProvider, QpNvmfFlags, Result, SrqCounters, SrqHandle,
};
use harness::fabric::{PdId, QpId};

/// The offload calls a config may ask the plugin to crash in.
pub const CRASH_POINTS: [&str; 1] = ["map_nsid"];

/// `inner`, aborting the process in `map_nsid`.
pub struct CrashOnMap(pub Arc<dyn OffloadProvider>);

#[async_trait]
impl OffloadProvider for CrashOnMap {
    fn caps(&self) -> NvmfCaps {
        self.0.caps()
    }
    fn create_srq(&self, pd: PdId, attrs: &NvmfSrqAttrs) -> Result<NvmfSrq> {
        self.0.create_srq(pd, attrs)
    }
    fn destroy_srq(&self, srq: SrqHandle) -> Result<()> {
        self.0.destroy_srq(srq)
    }
    fn create_nvme_ctrl(&self, srq: SrqHandle, attrs: &NvmeCtrlAttrs) -> Result<CtrlHandle> {
        self.0.create_nvme_ctrl(srq, attrs)
    }
    fn remove_nvme_ctrl(&self, srq: SrqHandle, ctrl: CtrlHandle) -> Result<()> {
        self.0.remove_nvme_ctrl(srq, ctrl)
    }
    fn map_nsid(&self, _ctrl: CtrlHandle, _m: &NsMapping) -> Result<()> {
        std::process::abort()
    }
    fn unmap_nsid(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<()> {
        self.0.unmap_nsid(ctrl, fe_nsid)
    }
    fn qp_set_nvmf(&self, qp: QpId, flags: QpNvmfFlags) -> Result<()> {
        self.0.qp_set_nvmf(qp, flags)
    }
    fn ns_counters(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<NsCounters> {
        self.0.ns_counters(ctrl, fe_nsid)
    }
    fn srq_counters(&self, srq: SrqHandle) -> Result<SrqCounters> {
        self.0.srq_counters(srq)
    }
    fn poll_event(&self) -> Option<OffloadEvent> {
        self.0.poll_event()
    }
    async fn next_event(&self) -> OffloadEvent {
        self.0.next_event().await
    }
    fn backend_access(&self) -> harness::backend::BackendAccess {
        self.0.backend_access()
    }
    fn inject_pci_error(&self, ctrl: CtrlHandle) -> Result<()> {
        self.0.inject_pci_error(ctrl)
    }
}
