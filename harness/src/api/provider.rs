//! The API under test: [`OffloadProvider`], one device's NVMe-oF target offload.

use async_trait::async_trait;

use super::caps::NvmfCaps;
use super::ctrl::{CtrlHandle, NvmeCtrlAttrs};
use super::error::Result;
use super::event::OffloadEvent;
use super::namespace::{NsCounters, NsMapping};
use super::qp::QpNvmfFlags;
use super::srq::{NvmfSrq, NvmfSrqAttrs, SrqCounters, SrqHandle};
use crate::fabric::{PdId, QpId};

/// NVMe-oF target offload of one device, working on one fabric
/// [`DeviceContext`](crate::fabric::DeviceContext): staging buffers and backend rings are
/// memory regions of that context, and the target's control plane creates QPs on it with
/// `srq: Some(`[`NvmfSrq::srq`]`)`.
///
/// Used as `Arc<dyn OffloadProvider>`. Every failing call returns the errno of
/// [`super::check`]'s table; the rules and their order are the functions of that module.
/// A handle that names no live object of this provider is EINVAL in every call
/// (ENOENT is kept for "namespace not mapped").
#[async_trait]
pub trait OffloadProvider: Send + Sync {
    /// The device's offload capabilities (`ibv_query_device_ex`, `nvmf_caps`).
    fn caps(&self) -> NvmfCaps;

    /// Creates an SRQ with NVMe-oF attributes (`ibv_create_srq_ex` with
    /// `IBV_SRQT_NVMF`); the staging buffer belongs to the device from now on.
    ///
    /// EOPNOTSUPP: the device has no RC offload. EINVAL: any attribute outside the caps
    /// ([`super::check::check_srq_attrs`]). The receive queue sizing and the PD are the
    /// fabric's to check; its errors pass through (ENOMEM past the device's SRQ count).
    fn create_srq(&self, pd: PdId, attrs: &NvmfSrqAttrs) -> Result<NvmfSrq>;

    /// Destroys an NVMe-oF SRQ and its fabric SRQ; the staging buffer is software's again.
    ///
    /// EINVAL: unknown handle. EBUSY: it still has backend controllers, or QPs attached.
    fn destroy_srq(&self, srq: SrqHandle) -> Result<()>;

    /// Adds a backend controller to an SRQ (`ibv_srq_create_nvme_ctrl`); its queues have
    /// the SRQ's `nvme_queue_depth`.
    ///
    /// EINVAL: `srq` names no NVMe-oF SRQ, or an attribute breaks
    /// [`super::check::check_ctrl_attrs`]. ENOSPC: the SRQ has `max_srq_backend_ctrls`.
    /// ENOMEM: the device has `max_backend_ctrls_total`.
    fn create_nvme_ctrl(&self, srq: SrqHandle, attrs: &NvmeCtrlAttrs) -> Result<CtrlHandle>;

    /// Removes a backend controller (`ibv_srq_remove_nvme_ctrl`); its rings are software's
    /// again.
    ///
    /// EINVAL: unknown SRQ or controller, or the controller belongs to another SRQ.
    /// EBUSY: namespaces are still mapped on it.
    fn remove_nvme_ctrl(&self, srq: SrqHandle, ctrl: CtrlHandle) -> Result<()>;

    /// Maps a front-facing nsid to a namespace of a backend controller
    /// (`ibv_map_nvmf_nsid`); offloaded commands for it are served from then on.
    ///
    /// EINVAL: unknown controller; fe_nsid 0, 0xFFFFFFFF or above `max_frontend_nsid`;
    /// nvme_nsid 0 or 0xFFFFFFFF. EOPNOTSUPP (ENOTSUP): `lba_data_size` not supported.
    /// EEXIST: fe_nsid already mapped on any controller of the SRQ. ENOSPC: the SRQ's
    /// `max_namespaces` reached. ENOMEM: the device's `max_namespaces` reached.
    fn map_nsid(&self, ctrl: CtrlHandle, m: &NsMapping) -> Result<()>;

    /// Removes a mapping (`ibv_unmap_nvmf_nsid`); its commands go to software (or count
    /// as unknown-namespace commands) from then on.
    ///
    /// EINVAL: unknown controller, or an fe_nsid that can never be mapped (0,
    /// 0xFFFFFFFF, above `max_frontend_nsid`). ENOENT: not mapped on this controller.
    fn unmap_nsid(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<()>;

    /// Enables offload on a QP attached to an NVMe-oF SRQ (`ibv_qp_set_nvmf`); call it
    /// after the QP's CONNECT was processed. Enabling twice succeeds.
    ///
    /// EINVAL: unknown flag bits; unknown QP, or a QP not attached to an NVMe-oF SRQ.
    /// EOPNOTSUPP: flags without ENABLE (offload cannot be turned off).
    fn qp_set_nvmf(&self, qp: QpId, flags: QpNvmfFlags) -> Result<()>;

    /// Counters of a mapped namespace.
    ///
    /// EINVAL: unknown controller or an fe_nsid that can never be mapped. ENOENT: not
    /// mapped on this controller.
    fn ns_counters(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<NsCounters>;

    /// Counters of an NVMe-oF SRQ. EINVAL: unknown handle.
    fn srq_counters(&self, srq: SrqHandle) -> Result<SrqCounters>;

    /// Takes the oldest pending event, if any.
    fn poll_event(&self) -> Option<OffloadEvent>;

    /// Waits for the next event (`ibv_get_async_event`); unbounded, callers bound it.
    async fn next_event(&self) -> OffloadEvent;

    /// How the device reaches backend controllers (plugin ABI 2 `backend_access`): its
    /// doorbells by the host's calls or in memory, and how its PRPs translate. The default
    /// is a software device's: calls, PRPs that are virtual addresses.
    fn backend_access(&self) -> crate::backend::BackendAccess {
        crate::backend::BackendAccess::default()
    }

    /// Makes the device's own path to backend controller `ctrl` fail as a backend PCI
    /// error would, reported as one (`NVME_PCI_ERR`); ABI 2 `inject_pci_error`. EINVAL:
    /// unknown controller. EOPNOTSUPP (the default): the device cannot.
    fn inject_pci_error(&self, ctrl: CtrlHandle) -> Result<()> {
        let _ = ctrl;
        Err(super::OffloadError::NotSupported("inject_pci_error"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::api::check;
    use crate::api::error::OffloadError;
    use crate::fabric::SrqId;

    /// A provider with nothing but events and a fixed SRQ, to prove the trait is usable as
    /// `Arc<dyn OffloadProvider>`.
    struct Stub {
        events: Mutex<VecDeque<OffloadEvent>>,
        notify: tokio::sync::Notify,
    }

    #[async_trait]
    impl OffloadProvider for Stub {
        fn caps(&self) -> NvmfCaps {
            NvmfCaps::default()
        }
        fn create_srq(&self, _pd: PdId, _attrs: &NvmfSrqAttrs) -> Result<NvmfSrq> {
            Err(OffloadError::NotSupported("stub"))
        }
        fn destroy_srq(&self, _srq: SrqHandle) -> Result<()> {
            Err(check::UNKNOWN_SRQ)
        }
        fn create_nvme_ctrl(&self, _srq: SrqHandle, _a: &NvmeCtrlAttrs) -> Result<CtrlHandle> {
            Err(check::UNKNOWN_SRQ)
        }
        fn remove_nvme_ctrl(&self, _srq: SrqHandle, _ctrl: CtrlHandle) -> Result<()> {
            Err(check::UNKNOWN_SRQ)
        }
        fn map_nsid(&self, _ctrl: CtrlHandle, _m: &NsMapping) -> Result<()> {
            Err(check::UNKNOWN_CTRL)
        }
        fn unmap_nsid(&self, _ctrl: CtrlHandle, _fe_nsid: u32) -> Result<()> {
            Err(check::UNKNOWN_CTRL)
        }
        fn qp_set_nvmf(&self, _qp: QpId, flags: QpNvmfFlags) -> Result<()> {
            check::check_qp_set_nvmf(flags, false)
        }
        fn ns_counters(&self, _ctrl: CtrlHandle, _fe_nsid: u32) -> Result<NsCounters> {
            Err(check::UNKNOWN_CTRL)
        }
        fn srq_counters(&self, _srq: SrqHandle) -> Result<SrqCounters> {
            Err(check::UNKNOWN_SRQ)
        }
        fn poll_event(&self) -> Option<OffloadEvent> {
            self.events.lock().unwrap().pop_front()
        }
        async fn next_event(&self) -> OffloadEvent {
            loop {
                let notified = self.notify.notified();
                if let Some(ev) = self.poll_event() {
                    return ev;
                }
                notified.await;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn usable_as_arc_dyn() {
        let stub = Arc::new(Stub {
            events: Mutex::new(VecDeque::new()),
            notify: tokio::sync::Notify::new(),
        });
        let p: Arc<dyn OffloadProvider> = stub.clone();
        assert!(!p.caps().offload_supported());
        assert_eq!(p.poll_event(), None);
        assert_eq!(
            p.qp_set_nvmf(QpId(0), QpNvmfFlags::ENABLE),
            Err(check::QP_NOT_ON_NVMF_SRQ)
        );
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.next_event().await }
        });
        tokio::task::yield_now().await;
        stub.events
            .lock()
            .unwrap()
            .push_back(OffloadEvent::SrqLimitReached { srq: SrqId(1) });
        stub.notify.notify_waiters();
        assert_eq!(waiter.await.unwrap().to_string(), "SRQ_LIMIT_REACHED srq=1");
    }
}
