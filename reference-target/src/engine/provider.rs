//! The engine's [`OffloadProvider`] calls: every argument through the rule book
//! (`harness::api::check`), then the bookkeeping.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use async_trait::async_trait;
use harness::api::check::{self, CtrlCounts, MapState};
use harness::api::{
    CtrlHandle, NsCounters, NsMapping, NvmeCtrlAttrs, NvmfCaps, NvmfSrq, NvmfSrqAttrs,
    OffloadError, OffloadEvent, OffloadProvider, QpNvmfFlags, Result, SrqCounters, SrqHandle,
};
use harness::fabric::{Access, PdId, QpId, RecvWr, SrqInit};

use super::backend_link::reaper;
use super::staging::Staging;
use super::{Ctrl, CtxSrq, Engine, NsMap, OffloadSrq, Wr, DEFAULT_CMD_TIMEOUT};
use crate::quirks::Quirk;

/// Response capsule buffers per NVMe-oF SRQ, per receive it holds.
const RESP_SLOTS_PER_RECV: u32 = 2;

#[async_trait]
impl OffloadProvider for Engine {
    fn caps(&self) -> NvmfCaps {
        self.core.caps.clone()
    }

    fn create_srq(&self, pd: PdId, attrs: &NvmfSrqAttrs) -> Result<NvmfSrq> {
        let core = &self.core;
        let staging_mr = {
            let nic = core.nic();
            let mrs: Vec<_> = nic.mrs.values().copied().collect();
            check::check_srq_attrs(&core.caps, attrs, check::mr_table(&mrs))?;
            core.check_srq_room(&nic)?;
            nic.mrs[&attrs.staging_buf.mr]
        };
        let real = core.real.create_srq(pd, SrqInit::new(attrs.rq.max_wr))?;
        let slot_len = u64::from(attrs.ioccsz) * 16;
        let slots = attrs.rq.max_wr;
        let recv_mr = match core
            .real
            .reg_mr(pd, slot_len * u64::from(slots), Access::LOCAL_WRITE)
        {
            Ok(m) => m,
            Err(e) => {
                let _ = core.real.destroy_srq(real);
                return Err(e.into());
            }
        };
        let resp_slots = (slots * RESP_SLOTS_PER_RECV).max(16);
        let resp_mr = match core
            .real
            .reg_mr(pd, 16 * u64::from(resp_slots), Access::LOCAL_WRITE)
        {
            Ok(m) => m,
            Err(e) => {
                let _ = core.real.dereg_mr(recv_mr.id);
                let _ = core.real.destroy_srq(real);
                return Err(e.into());
            }
        };
        let (mut nic, mut path) = core.both();
        path.next_srq_handle += 1;
        let handle = SrqHandle(path.next_srq_handle);
        for slot in 0..slots {
            let id = nic.wr(Wr::Capsule { srq: handle, slot });
            let wr = RecvWr {
                wr_id: id,
                sg_list: vec![recv_mr.sge(u64::from(slot) * slot_len, slot_len as u32)],
            };
            core.real.post_srq_recv(real, &wr)?;
        }
        let vsrq = harness::fabric::SrqId(nic.alloc_id());
        nic.srqs.insert(vsrq, CtxSrq::Nvmf { handle });
        path.nvmf.insert(
            handle,
            OffloadSrq {
                vsrq,
                real,
                pd,
                attrs: attrs.clone(),
                staging_mr,
                staging_base: attrs.staging_buf.addr - staging_mr.addr,
                staging: Staging::new(attrs.staging_buf.len),
                recv_mr,
                slot_len,
                resp_mr,
                resp_free: (0..resp_slots).rev().collect(),
                sw_recvs: VecDeque::new(),
                sw_limit: 0,
                backlog: VecDeque::new(),
                waiting: VecDeque::new(),
                ctrls: BTreeSet::new(),
                ns: BTreeMap::new(),
                counters: SrqCounters::default(),
            },
        );
        Ok(NvmfSrq { handle, srq: vsrq })
    }

    fn destroy_srq(&self, srq: SrqHandle) -> Result<()> {
        let core = &self.core;
        let (mut nic, mut path) = core.both();
        let srq_state = path.nvmf.get(&srq).ok_or(check::UNKNOWN_SRQ)?;
        let qps = nic.qps.values().filter(|q| q.nvmf == Some(srq)).count() as u32;
        check::check_destroy_srq(srq_state.ctrls.len() as u32, qps)?;
        let srq_state = path.nvmf.remove(&srq).expect("present");
        nic.srqs.remove(&srq_state.vsrq);
        nic.wrs
            .retain(|_, w| !matches!(w, Wr::Capsule { srq: s, .. } if *s == srq));
        drop(path);
        drop(nic);
        let _ = core.real.destroy_srq(srq_state.real);
        let _ = core.real.dereg_mr(srq_state.recv_mr.id);
        let _ = core.real.dereg_mr(srq_state.resp_mr.id);
        let _ = srq_state.pd;
        Ok(())
    }

    fn create_nvme_ctrl(&self, srq: SrqHandle, attrs: &NvmeCtrlAttrs) -> Result<CtrlHandle> {
        let core = &self.core;
        let (nic, mut path) = core.both();
        let srq_state = path.nvmf.get(&srq).ok_or(check::UNKNOWN_SRQ)?;
        let mrs: Vec<_> = nic.mrs.values().copied().collect();
        let counts = CtrlCounts {
            srq_ctrls: srq_state.ctrls.len() as u32,
            device_ctrls: path.ctrls.len() as u32,
        };
        check::check_create_ctrl(
            &core.caps,
            &srq_state.attrs,
            attrs,
            check::mr_table(&mrs),
            counts,
        )?;
        let backend =
            core.bus
                .find_port(attrs.sqdb.mr, attrs.sqdb.addr)
                .ok_or(OffloadError::Invalid(
                    "sqdb is the doorbell of no backend controller on the bus",
                ))?;
        let depth = backend.depth();
        if u32::from(depth) != srq_state.attrs.nvme_queue_depth {
            return Err(OffloadError::Invalid(
                "backend queue depth differs from the SRQ's nvme_queue_depth",
            ));
        }
        let nsq = backend.sq_count();
        if nsq != attrs.sqs().count() {
            return Err(OffloadError::Invalid(
                "backend SQ count differs from sq_buf + extra_sqs",
            ));
        }
        let writers = (0..nsq)
            .map(|i| backend.sq_writer(i).expect("sq exists"))
            .collect();
        path.next_ctrl_handle += 1;
        let handle = CtrlHandle(path.next_ctrl_handle);
        let kick = std::sync::Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(reaper(
            std::sync::Arc::downgrade(core),
            handle,
            backend.clone(),
            kick.clone(),
        ));
        let cids = u16::try_from(usize::from(depth) * nsq).unwrap_or(u16::MAX);
        path.ctrls.insert(
            handle,
            Ctrl {
                srq,
                reader: backend.cq_reader(),
                backend,
                writers,
                outstanding_per_sq: vec![0; nsq],
                rr: 0,
                reaped: 0,
                depth,
                free_cids: (0..cids).rev().collect(),
                inflight: BTreeMap::new(),
                queued: VecDeque::new(),
                timeout: attrs.cmd_timeout().unwrap_or(DEFAULT_CMD_TIMEOUT),
                abandoned: BTreeSet::new(),
                dead: false,
                kick,
                task: task.abort_handle(),
            },
        );
        path.nvmf
            .get_mut(&srq)
            .expect("present")
            .ctrls
            .insert(handle);
        Ok(handle)
    }

    fn remove_nvme_ctrl(&self, srq: SrqHandle, ctrl: CtrlHandle) -> Result<()> {
        let core = &self.core;
        {
            let path = core.path();
            let srq_state = path.nvmf.get(&srq).ok_or(check::UNKNOWN_SRQ)?;
            let ctrl_state = path.ctrls.get(&ctrl).ok_or(check::UNKNOWN_CTRL)?;
            let namespaces = srq_state.ns.values().filter(|m| m.ctrl == ctrl).count() as u32;
            check::check_remove_ctrl(ctrl_state.srq == srq, namespaces)?;
        }
        core.drop_ctrl_commands(ctrl);
        let mut path = core.path();
        if let Some(ctrl_state) = path.ctrls.remove(&ctrl) {
            ctrl_state.task.abort();
        }
        if let Some(srq_state) = path.nvmf.get_mut(&srq) {
            srq_state.ctrls.remove(&ctrl);
        }
        Ok(())
    }

    fn map_nsid(&self, ctrl: CtrlHandle, m: &NsMapping) -> Result<()> {
        let core = &self.core;
        let mut path = core.path();
        let srq = path.ctrls.get(&ctrl).ok_or(check::UNKNOWN_CTRL)?.srq;
        let device_namespaces = path.nvmf.values().map(|n| n.ns.len() as u32).sum();
        let srq_state = path.nvmf.get_mut(&srq).expect("ctrl of a live SRQ");
        let mapped = match srq_state.ns.get(&m.fe_nsid) {
            Some(x) if core.quirks.has(Quirk::EexistPerCtrl) => x.ctrl == ctrl,
            Some(_) => true,
            None => false,
        };
        let state = MapState {
            fe_nsid_mapped_in_srq: mapped,
            srq_namespaces: srq_state.ns.len() as u32,
            device_namespaces,
        };
        let mut caps = core.caps.clone();
        if core.quirks.has(Quirk::LbaSizeUnchecked) {
            caps.lba_data_sizes.insert(m.lba_data_size);
        }
        check::check_map_nsid(&caps, &srq_state.attrs, m, state)?;
        srq_state.ns.insert(
            m.fe_nsid,
            NsMap {
                ctrl,
                nvme_nsid: m.nvme_nsid,
                lba_data_size: m.lba_data_size,
                counters: NsCounters::default(),
            },
        );
        Ok(())
    }

    fn unmap_nsid(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<()> {
        let core = &self.core;
        let mut path = core.path();
        let srq = path.ctrls.get(&ctrl).ok_or(check::UNKNOWN_CTRL)?.srq;
        let srq_state = path.nvmf.get_mut(&srq).expect("ctrl of a live SRQ");
        let mapped = srq_state.ns.get(&fe_nsid).is_some_and(|x| x.ctrl == ctrl);
        if !mapped && core.quirks.has(Quirk::UnmapMissingOk) {
            return Ok(());
        }
        check::check_unmap_nsid(&core.caps, fe_nsid, mapped)?;
        srq_state.ns.remove(&fe_nsid);
        Ok(())
    }

    fn qp_set_nvmf(&self, qp: QpId, flags: QpNvmfFlags) -> Result<()> {
        let mut nic = self.core.nic();
        let on_nvmf = nic.qps.get(&qp).is_some_and(|q| q.nvmf.is_some());
        check::check_qp_set_nvmf(flags, on_nvmf)?;
        nic.qps.get_mut(&qp).expect("checked").offload = true;
        Ok(())
    }

    fn ns_counters(&self, ctrl: CtrlHandle, fe_nsid: u32) -> Result<NsCounters> {
        let path = self.core.path();
        let srq = path.ctrls.get(&ctrl).ok_or(check::UNKNOWN_CTRL)?.srq;
        check::check_fe_nsid(&self.core.caps, fe_nsid)?;
        path.nvmf[&srq]
            .ns
            .get(&fe_nsid)
            .filter(|m| m.ctrl == ctrl)
            .map(|m| m.counters)
            .ok_or(check::NS_NOT_MAPPED)
    }

    fn srq_counters(&self, srq: SrqHandle) -> Result<SrqCounters> {
        let path = self.core.path();
        path.nvmf
            .get(&srq)
            .map(|n| n.counters)
            .ok_or(check::UNKNOWN_SRQ)
    }

    fn poll_event(&self) -> Option<OffloadEvent> {
        self.core.events.pop()
    }

    async fn next_event(&self) -> OffloadEvent {
        self.core.events.next().await
    }

    fn backend_access(&self) -> harness::backend::BackendAccess {
        *super::relock(&self.core.access)
    }

    /// The engine's path to the controller fails as on a backend PCI error: the event, and
    /// every command on it answered.
    fn inject_pci_error(&self, ctrl: CtrlHandle) -> Result<()> {
        if !self.core.path().ctrls.contains_key(&ctrl) {
            return Err(OffloadError::Invalid("ctrl"));
        }
        self.core.on_pci_error(ctrl);
        Ok(())
    }
}
