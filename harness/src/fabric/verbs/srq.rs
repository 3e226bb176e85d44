//! Shared receive queues and their limit watermark (`IBV_EVENT_SRQ_LIMIT_REACHED` comes
//! through `events.rs`). Verbs cannot tell how many receives an SRQ holds: `posted` is
//! counted here, up on `post_srq_recv`, down on each completion polled for a QP on it.

use super::raw::{self, RecvQueue};
use super::{os, VerbsContext};
use crate::fabric::{FabricError, PdId, RecvWr, Result, SrqAttr, SrqId, SrqInit};

pub(super) struct SrqObj {
    pub srq: raw::Srq,
    pub pd: PdId,
    pub max_wr: u32,
    pub max_sge: u32,
    pub posted: u32,
}

pub(super) fn sges(wr: &RecvWr) -> Vec<(u64, u32, u32)> {
    wr.sg_list
        .iter()
        .map(|s| (s.addr, s.length, s.lkey))
        .collect()
}

impl VerbsContext {
    pub(super) fn create_srq_impl(&self, pd: PdId, init: SrqInit) -> Result<SrqId> {
        if init.max_wr == 0 || init.max_wr > self.attr.max_srq_wr {
            return Err(FabricError::Invalid(
                "create_srq: max_wr 0 or above max_srq_wr",
            ));
        }
        if init.srq_limit > init.max_wr {
            return Err(FabricError::Invalid("create_srq: srq_limit above max_wr"));
        }
        if init.max_sge == 0 || init.max_sge > self.attr.max_sge {
            return Err(FabricError::Invalid(
                "create_srq: max_sge 0 or above max_sge",
            ));
        }
        let mut s = self.lock();
        let p = s.pds.get(&pd).ok_or(FabricError::NotFound("pd"))?;
        let srq = raw::Srq::create(&p.pd, init.max_wr, init.max_sge, init.srq_limit)
            .map_err(|e| os("ibv_create_srq", e))?;
        let (max_wr, _, _) = srq.query().map_err(|e| os("ibv_query_srq", e))?;
        let id = SrqId(s.alloc_id());
        s.srqs.insert(
            id,
            SrqObj {
                srq,
                pd,
                max_wr,
                max_sge: init.max_sge,
                posted: 0,
            },
        );
        Ok(id)
    }

    pub(super) fn arm_srq_impl(&self, srq: SrqId, limit: u32) -> Result<()> {
        let s = self.lock();
        let o = s.srqs.get(&srq).ok_or(FabricError::NotFound("srq"))?;
        if limit > o.max_wr {
            return Err(FabricError::Invalid("arm_srq: limit above max_wr"));
        }
        o.srq.arm(limit).map_err(|e| os("ibv_modify_srq", e))
    }

    pub(super) fn query_srq_impl(&self, srq: SrqId) -> Result<SrqAttr> {
        let s = self.lock();
        let o = s.srqs.get(&srq).ok_or(FabricError::NotFound("srq"))?;
        let (max_wr, _, srq_limit) = o.srq.query().map_err(|e| os("ibv_query_srq", e))?;
        Ok(SrqAttr {
            max_wr,
            posted: o.posted,
            srq_limit,
        })
    }

    pub(super) fn destroy_srq_impl(&self, srq: SrqId) -> Result<()> {
        let mut s = self.lock();
        if !s.srqs.contains_key(&srq) {
            return Err(FabricError::NotFound("srq"));
        }
        if s.qps.values().any(|q| q.srq == Some(srq)) {
            return Err(FabricError::Busy("destroy_srq: a QP uses it"));
        }
        let o = s.srqs.get_mut(&srq).expect("checked");
        o.srq.destroy().map_err(|e| os("ibv_destroy_srq", e))?;
        s.srqs.remove(&srq);
        Ok(())
    }

    pub(super) fn post_srq_recv_impl(&self, srq: SrqId, wr: &RecvWr) -> Result<()> {
        let mut s = self.lock();
        let o = s.srqs.get_mut(&srq).ok_or(FabricError::NotFound("srq"))?;
        if wr.sg_list.len() > o.max_sge as usize {
            return Err(FabricError::Invalid(
                "post_srq_recv: more SGEs than max_sge",
            ));
        }
        o.srq.post_recv(wr.wr_id, &sges(wr)).map_err(|e| match e {
            nix::errno::Errno::ENOMEM => FabricError::NoMemory("post_srq_recv: the SRQ is full"),
            e => os("ibv_post_srq_recv", e),
        })?;
        o.posted += 1;
        Ok(())
    }
}
