//! RC queue pairs: create, the state machine (`ibv_modify_qp`), query, destroy.
//!
//! RTR is built for RoCEv2: a global route to the peer's GID from the port's IPv4-mapped
//! RoCEv2 GID, the port's active MTU, PSNs 0, an RNR timer of 0.64 ms (as `sim`), and
//! RDMA READ depths at the device's `max_qp_rd_atom` (at most 16). RTS uses a 16.8 ms
//! ACK timeout. RESET -> ERR, which the trait allows and Linux refuses, passes through INIT.

use super::{memory::ibv_access, os, raw, VerbsContext};
use crate::fabric::{
    CqId, FabricError, PdId, QpAttr, QpCap, QpId, QpInfo, QpInit, QpState, Result, SrqId,
};
use crate::ffi::convert::qp_state_from_u32;

pub(super) struct QpObj {
    pub qp: raw::Qp,
    pub pd: PdId,
    pub send_cq: CqId,
    pub recv_cq: CqId,
    pub srq: Option<SrqId>,
    pub qpn: u32,
    pub cap: QpCap,
}

// `ibv_qp_state` of a [`QpState`].
pub(super) use crate::ffi::convert::qp_state_to_u32 as ibv_state;

fn from_ibv_state(s: u32) -> Result<QpState> {
    qp_state_from_u32(s).ok_or(FabricError::Invalid("query_qp: unknown QP state"))
}

impl VerbsContext {
    /// The RDMA READ depth used for both directions.
    pub(super) fn rd_atomic(&self) -> u8 {
        u8::try_from(self.attr.max_qp_rd_atom.min(16)).unwrap_or(16)
    }

    pub(super) fn create_qp_impl(&self, pd: PdId, init: QpInit) -> Result<QpInfo> {
        let c = init.cap;
        if c.max_send_wr == 0
            || c.max_send_wr > self.attr.max_qp_wr
            || (init.srq.is_none() && (c.max_recv_wr == 0 || c.max_recv_wr > self.attr.max_qp_wr))
            || c.max_send_sge > self.attr.max_sge
            || c.max_recv_sge > self.attr.max_sge
        {
            return Err(FabricError::Invalid(
                "create_qp: queue sizes zero or above the device's limits",
            ));
        }
        let mut s = self.lock();
        if !s.pds.contains_key(&pd) {
            return Err(FabricError::NotFound("pd"));
        }
        let send = s
            .cqs
            .get(&init.send_cq)
            .ok_or(FabricError::Invalid("create_qp: unknown send CQ"))?;
        let recv = s
            .cqs
            .get(&init.recv_cq)
            .ok_or(FabricError::Invalid("create_qp: unknown receive CQ"))?;
        let srq = match init.srq {
            Some(id) => Some(
                &s.srqs
                    .get(&id)
                    .ok_or(FabricError::Invalid("create_qp: unknown SRQ"))?
                    .srq,
            ),
            None => None,
        };
        let caps = raw::QpCaps {
            max_send_wr: c.max_send_wr,
            max_recv_wr: c.max_recv_wr,
            max_send_sge: c.max_send_sge,
            max_recv_sge: c.max_recv_sge,
        };
        let qp = raw::Qp::create(&s.pds[&pd].pd, &send.cq, &recv.cq, srq, &caps)
            .map_err(|e| os("ibv_create_qp", e))?;
        let qpn = qp.qp_num();
        let id = QpId(s.alloc_id());
        s.qps.insert(
            id,
            QpObj {
                qp,
                pd,
                send_cq: init.send_cq,
                recv_cq: init.recv_cq,
                srq: init.srq,
                qpn,
                cap: c,
            },
        );
        Ok(QpInfo { id, qpn })
    }

    pub(super) fn modify_qp_impl(&self, qp: QpId, attr: &QpAttr) -> Result<()> {
        let s = self.lock();
        let o = s.qps.get(&qp).ok_or(FabricError::NotFound("qp"))?;
        let mut m = raw::Modify {
            state: ibv_state(attr.state),
            ..Default::default()
        };
        let cur = from_ibv_state(o.qp.query_state().map_err(|e| os("ibv_query_qp", e))?)?;
        match (cur, attr.state) {
            (QpState::Reset, QpState::Init) => {
                let (Some(port), Some(access)) = (attr.port, attr.access) else {
                    return Err(FabricError::Invalid(
                        "modify_qp(INIT): port and access are required",
                    ));
                };
                if port == 0 || port > self.attr.phys_port_cnt {
                    return Err(FabricError::Invalid("modify_qp(INIT): port out of range"));
                }
                m.port = Some(port);
                m.access = Some(ibv_access(access));
            }
            (QpState::Init, QpState::Rtr) => {
                let Some(dest) = attr.dest else {
                    return Err(FabricError::Invalid("modify_qp(RTR): dest is required"));
                };
                m.rtr = Some((
                    dest.gid.0,
                    dest.qpn,
                    self.port.sgid_index,
                    self.port.mtu_enum,
                    self.rd_atomic(),
                ));
            }
            (QpState::Rtr, QpState::Rts) => {
                if attr.retry_cnt > 7 || attr.rnr_retry > 7 {
                    return Err(FabricError::Invalid(
                        "modify_qp(RTS): retry_cnt and rnr_retry are 0..=7",
                    ));
                }
                m.rts = Some((attr.retry_cnt, attr.rnr_retry, self.rd_atomic()));
            }
            (QpState::Reset, QpState::Err) => {
                // The trait lets any state go to ERR; Linux's ib_modify_qp_is_ok refuses
                // RESET -> ERR on every device, so pass through INIT (no rights), as
                // nothing can be outstanding on a QP in RESET.
                o.qp.modify(&raw::Modify {
                    state: ibv_state(QpState::Init),
                    port: Some(1),
                    access: Some(0),
                    ..Default::default()
                })
                .map_err(|e| os("ibv_modify_qp(RESET -> INIT -> ERR)", e))?;
            }
            _ => {}
        }
        o.qp.modify(&m).map_err(|e| os("ibv_modify_qp", e))
    }

    pub(super) fn query_qp_impl(&self, qp: QpId) -> Result<QpState> {
        let s = self.lock();
        let o = s.qps.get(&qp).ok_or(FabricError::NotFound("qp"))?;
        from_ibv_state(o.qp.query_state().map_err(|e| os("ibv_query_qp", e))?)
    }

    pub(super) fn destroy_qp_impl(&self, qp: QpId) -> Result<()> {
        let mut s = self.lock();
        let o = s.qps.get_mut(&qp).ok_or(FabricError::NotFound("qp"))?;
        o.qp.destroy().map_err(|e| os("ibv_destroy_qp", e))?;
        s.qps.remove(&qp);
        for c in s.conns.values_mut() {
            if c.qp == Some(qp) {
                c.qp = None;
            }
        }
        Ok(())
    }
}
