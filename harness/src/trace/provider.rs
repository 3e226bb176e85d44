//! [`TracedProvider`]: an [`OffloadProvider`] that records every call, its result (the
//! errno on failure) and every offload event, under the `device` actor by default.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Names, Recorder};
use crate::api::{
    CtrlHandle, NsCounters, NsMapping, NvmeCtrlAttrs, NvmfCaps, NvmfSrq, NvmfSrqAttrs,
    OffloadError, OffloadEvent, OffloadProvider, QpNvmfFlags, Result, SrqCounters, SrqHandle,
};
use crate::fabric::{PdId, QpId};

/// A provider that records what crosses it; see the module docs.
pub struct TracedProvider {
    inner: Arc<dyn OffloadProvider>,
    actor: String,
    /// The actor whose context created the QPs and PDs passed in (to name them alike).
    ctx_actor: String,
    rec: Recorder,
    names: Names,
}

impl TracedProvider {
    /// Wraps `inner`; `ctx_actor` is the actor of the traced context whose QPs and PDs
    /// are passed to it, so they print with the same names.
    pub fn new(
        inner: Arc<dyn OffloadProvider>,
        actor: &str,
        ctx_actor: &str,
        rec: Recorder,
        names: Names,
    ) -> Arc<TracedProvider> {
        Arc::new(TracedProvider {
            inner,
            actor: actor.to_string(),
            ctx_actor: ctx_actor.to_string(),
            rec,
            names,
        })
    }

    fn call<T>(&self, what: String, r: &Result<T>, ok: impl FnOnce(&T) -> String) {
        let out = match r {
            Ok(v) => ok(v),
            Err(e) => errno(e),
        };
        self.rec
            .push(&self.actor, "call", format!("{what} -> {out}"));
    }

    /// Records a call as "ok" or its errno and hands its result back.
    fn done<T>(&self, what: String, r: Result<T>) -> Result<T> {
        self.call(what, &r, |_| "ok".into());
        r
    }

    fn srq(&self, h: SrqHandle) -> String {
        self.names.of(&self.actor, "nvmf-srq", u64::from(h.0))
    }

    fn ctrl(&self, h: CtrlHandle) -> String {
        self.names.of(&self.actor, "ctrl", u64::from(h.0))
    }

    fn event(&self, e: &OffloadEvent) {
        let text = match e {
            OffloadEvent::NvmePciErr { ctrl } => format!("NVME_PCI_ERR {}", self.ctrl(*ctrl)),
            OffloadEvent::NvmeTimeout { ctrl, cid, .. } => format!(
                "NVME_TIMEOUT {}{}",
                self.ctrl(*ctrl),
                cid.map(|c| format!(" backend-cid={c}")).unwrap_or_default()
            ),
            OffloadEvent::UnsupportedNvmfOp { qp, opcode } => format!(
                "UNSUPPORTED_NVMF_OP {} opcode={opcode:#04x}",
                self.names.of(&self.ctx_actor, "qp", u64::from(qp.0))
            ),
            other => other.to_string(),
        };
        self.rec.push(&self.actor, "event", text);
    }
}

/// `OffloadOps(READ | WRITE)` as `READ|WRITE`.
fn flags(debug: String) -> String {
    let inner = debug
        .split_once('(')
        .map(|(_, rest)| rest.trim_end_matches(')').to_string())
        .unwrap_or(debug);
    inner.replace(' ', "")
}

/// The errno of a failed call, e.g. `EEXIST`.
fn errno(e: &OffloadError) -> String {
    format!("{:?}", e.errno())
}

#[async_trait]
impl OffloadProvider for TracedProvider {
    fn caps(&self) -> NvmfCaps {
        self.inner.caps()
    }

    fn create_srq(&self, pd: PdId, attrs: &NvmfSrqAttrs) -> Result<NvmfSrq> {
        let r = self.inner.create_srq(pd, attrs);
        self.call(
            format!(
                "create_srq {} ops={} max_ns={} ioccsz={} icdoff={} max_io_sz={} qd={} staging={}",
                self.names.of(&self.ctx_actor, "pd", u64::from(pd.0)),
                flags(format!("{:?}", attrs.offload_ops)),
                attrs.max_namespaces,
                attrs.ioccsz,
                attrs.icdoff,
                attrs.max_io_sz,
                attrs.nvme_queue_depth,
                attrs.staging_buf.len
            ),
            &r,
            |s| {
                let name = self
                    .names
                    .add(&self.actor, "nvmf-srq", u64::from(s.handle.0));
                // The SRQ's receive side is an SRQ of the context: name it there too.
                self.names.add(&self.ctx_actor, "srq", u64::from(s.srq.0));
                name
            },
        );
        r
    }

    fn destroy_srq(&self, srq: SrqHandle) -> Result<()> {
        let r = self.inner.destroy_srq(srq);
        self.done(format!("destroy_srq {}", self.srq(srq)), r)
    }

    fn create_nvme_ctrl(&self, srq: SrqHandle, attrs: &NvmeCtrlAttrs) -> Result<CtrlHandle> {
        let r = self.inner.create_nvme_ctrl(srq, attrs);
        self.call(
            format!(
                "create_nvme_ctrl {} sqs={} timeout_us={}",
                self.srq(srq),
                attrs.sqs().count(),
                attrs.cmd_timeout_us
            ),
            &r,
            |c| self.names.add(&self.actor, "ctrl", u64::from(c.0)),
        );
        r
    }

    fn remove_nvme_ctrl(&self, srq: SrqHandle, ctrl: CtrlHandle) -> Result<()> {
        let r = self.inner.remove_nvme_ctrl(srq, ctrl);
        self.done(
            format!("remove_nvme_ctrl {} {}", self.srq(srq), self.ctrl(ctrl)),
            r,
        )
    }

    fn map_nsid(&self, ctrl: CtrlHandle, m: &NsMapping) -> Result<()> {
        let r = self.inner.map_nsid(ctrl, m);
        self.done(
            format!(
                "map_nsid {} fe_nsid={} nvme_nsid={} lba_data_size={}",
                self.ctrl(ctrl),
                m.fe_nsid,
                m.nvme_nsid,
                m.lba_data_size
            ),
            r,
        )
    }

    fn unmap_nsid(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<()> {
        let r = self.inner.unmap_nsid(ctrl, fe_nsid);
        self.done(
            format!("unmap_nsid {} fe_nsid={fe_nsid}", self.ctrl(ctrl)),
            r,
        )
    }

    fn qp_set_nvmf(&self, qp: QpId, flags: QpNvmfFlags) -> Result<()> {
        let r = self.inner.qp_set_nvmf(qp, flags);
        self.done(
            format!(
                "qp_set_nvmf {} flags={:#x}",
                self.names.of(&self.ctx_actor, "qp", u64::from(qp.0)),
                flags.bits()
            ),
            r,
        )
    }

    fn ns_counters(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<NsCounters> {
        self.inner.ns_counters(ctrl, fe_nsid)
    }

    fn srq_counters(&self, srq: SrqHandle) -> Result<SrqCounters> {
        self.inner.srq_counters(srq)
    }

    fn poll_event(&self) -> Option<OffloadEvent> {
        self.inner.poll_event().inspect(|e| self.event(e))
    }

    async fn next_event(&self) -> OffloadEvent {
        let e = self.inner.next_event().await;
        self.event(&e);
        e
    }

    fn backend_access(&self) -> crate::backend::BackendAccess {
        self.inner.backend_access()
    }

    fn inject_pci_error(&self, ctrl: CtrlHandle) -> Result<()> {
        let r = self.inner.inject_pci_error(ctrl);
        self.done(format!("inject_pci_error {}", self.ctrl(ctrl)), r)
    }
}
