//! The connection manager over librdmacm (RDMA_PS_TCP): listen, resolve address and
//! route, connect / accept / reject with private data, established and disconnected.
//!
//! QPs are the context's own (`create_qp`, not `rdma_create_qp`: librdmacm's contexts are
//! not ours), so this module moves them through their states as RDMA CM does for its
//! own QPs, with `rdma_init_qp_attr`:
//!
//! - active side: address resolved → resolve the route; route resolved → QP to INIT,
//!   `rdma_connect` with its number; connect response → RTR, RTS, `rdma_establish`,
//!   then `Established` with the accept's private data;
//! - passive side: `cm_accept` moves the QP to INIT, RTR and RTS (as librdmacm's
//!   `rdma_accept` does) and calls `rdma_accept`; the CM's ESTABLISHED gives `Established`;
//! - both: DISCONNECTED moves the QP to ERR, then `Disconnected`; a rejected or failed
//!   connect puts the QP back in RESET (as it was before `cm_connect`).
//!
//! QP rights are set as RDMA CM sets them: LOCAL_WRITE | REMOTE_WRITE, and REMOTE_READ
//! when the side offered `responder_resources > 0` (as `sim`). CM events are read by a
//! task per context ([`drive`]), so a connection progresses while the caller awaits
//! another context; `poll_cm_event` also drains the channel itself.

use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::sync::Weak;

use tokio::io::unix::AsyncFd;

use super::{memory::ibv_access, os, qp::ibv_state, raw, State, VerbsContext};
use crate::fabric::{
    Access, CmEvent, CmEventKind, ConnId, ConnParam, FabricError, ListenerId, QpId, QpState,
    Result, CM_REJ_PRIVATE_DATA_MAX, CM_REP_PRIVATE_DATA_MAX, CM_REQ_PRIVATE_DATA_MAX,
};

/// Address and route resolution timeout.
const RESOLVE_MS: i32 = 2000;

/// A listening identifier, kept only to be destroyed with the listener (events name it
/// by tag).
pub(super) struct ListenerObj {
    pub _id: raw::CmId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Active: resolving address and route.
    Resolving,
    /// Active: REQ sent.
    Connecting,
    /// Passive: a request waiting for accept or reject.
    RequestReceived,
    /// Passive: accepted, waiting for the CM's ESTABLISHED.
    Accepted,
    /// Connected.
    Established,
    /// `cm_disconnect` called, waiting for the CM's DISCONNECTED.
    Disconnecting,
    /// Over: rejected, unreachable or disconnected.
    Closed,
}

pub(super) struct ConnObj {
    pub id: raw::CmId,
    pub qp: Option<QpId>,
    pub phase: Phase,
    /// This side's parameters (active: the request's).
    pub param: ConnParam,
}

fn qp_rights(param: &ConnParam) -> Access {
    Access::LOCAL_WRITE
        | Access::REMOTE_WRITE
        | if param.responder_resources > 0 {
            Access::REMOTE_READ
        } else {
            Access::empty()
        }
}

/// Tag kind of a connection's identifier ([`tag`]).
const CONN_TAG: usize = 1;
/// Tag kind of a listener's identifier.
const LISTENER_TAG: usize = 2;

/// The tag of object `id` of `kind`: never 0, which is an untagged identifier's.
fn tag(id: u32, kind: usize) -> usize {
    ((id as usize) << 2) | kind
}

/// The object id in `tag` when it is of `kind`.
fn untag(tag: usize, kind: usize) -> Option<u32> {
    (tag & 3 == kind)
        .then(|| u32::try_from(tag >> 2).ok())
        .flatten()
}

/// Reads the context's CM channel until the context is gone.
pub(super) async fn drive(me: Weak<VerbsContext>, afd: AsyncFd<OwnedFd>) {
    loop {
        let Ok(mut guard) = afd.readable().await else {
            return;
        };
        guard.clear_ready();
        let Some(ctx) = me.upgrade() else {
            return;
        };
        ctx.pump_cm();
    }
}

impl VerbsContext {
    /// Handles every CM event waiting on the channel.
    fn pump_cm(&self) {
        while let Some(ev) = self.channel.get_event() {
            self.on_cm_event(ev);
        }
    }

    fn push_cm(&self, conn: ConnId, kind: CmEventKind) {
        self.cm_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(CmEvent { conn, kind });
        self.cm_notify.notify_waiters();
    }

    fn qp_to(&self, s: &State, qp: Option<QpId>, state: QpState) {
        if let Some(o) = qp.and_then(|q| s.qps.get(&q)) {
            let m = raw::Modify {
                state: ibv_state(state),
                ..Default::default()
            };
            if let Err(e) = o.qp.modify(&m) {
                tracing::warn!("verbs cm: moving {:?} to {state:?}: {e}", qp);
            }
        }
    }

    /// Ends a connection attempt: the QP back to RESET, the event to the user.
    fn conn_failed(&self, s: &mut State, conn: ConnId, kind: CmEventKind) {
        let Some(c) = s.conns.get_mut(&conn) else {
            return;
        };
        c.phase = Phase::Closed;
        let qp = c.qp;
        self.qp_to(s, qp, QpState::Reset);
        self.push_cm(conn, kind);
    }

    /// Active side, route resolved: QP to INIT, send the REQ.
    fn send_request(&self, s: &mut State, conn: ConnId) -> std::result::Result<(), String> {
        let c = &s.conns[&conn];
        let qp = c.qp.and_then(|q| s.qps.get(&q)).ok_or("the QP is gone")?;
        qp.qp
            .modify(&raw::Modify {
                state: ibv_state(QpState::Init),
                port: Some(1),
                access: Some(ibv_access(qp_rights(&c.param))),
                ..Default::default()
            })
            .map_err(|e| format!("QP to INIT: {e}"))?;
        c.id.connect(&raw::RawConnParam {
            private_data: &c.param.private_data,
            responder_resources: c.param.responder_resources,
            initiator_depth: c.param.initiator_depth,
            rnr_retry_count: c.param.rnr_retry_count,
            qp_num: qp.qpn,
        })
        .map_err(|e| format!("rdma_connect: {e}"))
    }

    /// Active side, connect response: RTR, RTS, RTU.
    fn complete_connect(&self, s: &mut State, conn: ConnId) -> std::result::Result<(), String> {
        let rd = self.rd_atomic();
        let c = &s.conns[&conn];
        let qp = c.qp.and_then(|q| s.qps.get(&q)).ok_or("the QP is gone")?;
        qp.qp
            .modify_by_cm(&c.id, ibv_state(QpState::Rtr), Some(rd), None)
            .map_err(|e| format!("QP to RTR: {e}"))?;
        qp.qp
            .modify_by_cm(&c.id, ibv_state(QpState::Rts), None, Some(rd))
            .map_err(|e| format!("QP to RTS: {e}"))?;
        c.id.establish().map_err(|e| format!("rdma_establish: {e}"))
    }

    fn on_cm_event(&self, ev: raw::RawCmEvent) {
        let mut s = self.lock();
        if ev.event == 4 {
            // CONNECT_REQUEST: a new identifier on one of our listeners.
            let Some(new_id) = ev.new_id else { return };
            let Some(listener) = untag(ev.listen_tag, LISTENER_TAG)
                .map(ListenerId)
                .filter(|l| s.listeners.contains_key(l))
            else {
                // The listener was closed: dropping the identifier rejects the request.
                return;
            };
            let peer = new_id
                .peer_addr()
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
            let id = ConnId(s.alloc_id());
            new_id.set_tag(tag(id.0, CONN_TAG));
            let param = ConnParam {
                private_data: ev.private_data,
                responder_resources: ev.responder_resources,
                initiator_depth: ev.initiator_depth,
                rnr_retry_count: ev.rnr_retry_count,
            };
            s.conns.insert(
                id,
                ConnObj {
                    id: new_id,
                    qp: None,
                    phase: Phase::RequestReceived,
                    param: ConnParam::default(),
                },
            );
            self.push_cm(
                id,
                CmEventKind::ConnectRequest {
                    listener,
                    peer,
                    param,
                },
            );
            return;
        }
        let Some((conn, phase)) = untag(ev.tag, CONN_TAG)
            .map(ConnId)
            .and_then(|id| s.conns.get(&id).map(|c| (id, c.phase)))
        else {
            tracing::debug!(
                "verbs cm: event {} for no connection (tag {:#x})",
                ev.event,
                ev.tag
            );
            return;
        };
        match ev.event {
            // ADDR_RESOLVED
            0 if phase == Phase::Resolving => {
                if let Err(e) = s.conns[&conn].id.resolve_route(RESOLVE_MS) {
                    tracing::debug!("verbs cm: rdma_resolve_route: {e}");
                    self.conn_failed(&mut s, conn, CmEventKind::Unreachable);
                }
            }
            // ROUTE_RESOLVED
            2 if phase == Phase::Resolving => match self.send_request(&mut s, conn) {
                Ok(()) => s.conns.get_mut(&conn).expect("found").phase = Phase::Connecting,
                Err(e) => {
                    tracing::debug!("verbs cm: connect: {e}");
                    self.conn_failed(&mut s, conn, CmEventKind::Unreachable);
                }
            },
            // ADDR_ERROR, ROUTE_ERROR, CONNECT_ERROR, UNREACHABLE
            1 | 3 | 6 | 7 => match phase {
                Phase::Resolving | Phase::Connecting => {
                    self.conn_failed(&mut s, conn, CmEventKind::Unreachable)
                }
                Phase::Accepted | Phase::Established | Phase::Disconnecting => {
                    self.disconnected(&mut s, conn)
                }
                _ => {}
            },
            // REJECTED
            8 if matches!(phase, Phase::Resolving | Phase::Connecting) => {
                let kind = CmEventKind::Rejected {
                    status: u32::try_from(ev.status).unwrap_or(0),
                    private_data: ev.private_data,
                };
                self.conn_failed(&mut s, conn, kind);
            }
            // CONNECT_RESPONSE
            5 if phase == Phase::Connecting => match self.complete_connect(&mut s, conn) {
                Ok(()) => {
                    s.conns.get_mut(&conn).expect("found").phase = Phase::Established;
                    self.push_cm(
                        conn,
                        CmEventKind::Established {
                            private_data: ev.private_data,
                        },
                    );
                }
                Err(e) => {
                    tracing::debug!("verbs cm: completing the connect: {e}");
                    let _ = s.conns[&conn].id.disconnect();
                    self.conn_failed(&mut s, conn, CmEventKind::Unreachable);
                }
            },
            // ESTABLISHED (passive side; its QP went to RTS at accept)
            9 if phase == Phase::Accepted => {
                s.conns.get_mut(&conn).expect("found").phase = Phase::Established;
                self.push_cm(
                    conn,
                    CmEventKind::Established {
                        private_data: Vec::new(),
                    },
                );
            }
            // DISCONNECTED, DEVICE_REMOVAL
            10 | 11 => self.disconnected(&mut s, conn),
            _ => {}
        }
    }

    fn disconnected(&self, s: &mut State, conn: ConnId) {
        let Some(c) = s.conns.get_mut(&conn) else {
            return;
        };
        if !matches!(
            c.phase,
            Phase::Accepted | Phase::Established | Phase::Disconnecting
        ) {
            return;
        }
        if c.phase != Phase::Disconnecting {
            // The peer disconnected: answer its DREQ (RDMA CM sends the DREP from
            // rdma_disconnect), or it only learns of the end at its DREQ timeout.
            if let Err(e) = c.id.disconnect() {
                tracing::debug!("verbs cm: rdma_disconnect after the peer's: {e}");
            }
        }
        c.phase = Phase::Closed;
        let qp = c.qp;
        self.qp_to(s, qp, QpState::Err);
        self.push_cm(conn, CmEventKind::Disconnected);
    }

    pub(super) fn cm_listen_impl(&self, addr: SocketAddr) -> Result<ListenerId> {
        let SocketAddr::V4(v4) = addr else {
            return Err(FabricError::AddrNotAvail(addr));
        };
        if !v4.ip().is_unspecified() && *v4.ip() != self.port.addr {
            return Err(FabricError::AddrNotAvail(addr));
        }
        if addr.port() == 0 {
            return Err(FabricError::Invalid("listen address: port 0"));
        }
        let id = raw::CmId::create(&self.channel).map_err(|e| os("rdma_create_id", e))?;
        let map = |e: nix::errno::Errno, call| match e {
            nix::errno::Errno::EADDRINUSE => FabricError::AddrInUse(addr),
            nix::errno::Errno::EADDRNOTAVAIL | nix::errno::Errno::ENODEV => {
                FabricError::AddrNotAvail(addr)
            }
            e => os(call, e),
        };
        id.bind(v4).map_err(|e| map(e, "rdma_bind_addr"))?;
        id.listen(64).map_err(|e| map(e, "rdma_listen"))?;
        let mut s = self.lock();
        let lid = ListenerId(s.alloc_id());
        id.set_tag(tag(lid.0, LISTENER_TAG));
        s.listeners.insert(lid, ListenerObj { _id: id });
        Ok(lid)
    }

    pub(super) fn cm_close_listener_impl(&self, listener: ListenerId) -> Result<()> {
        let removed = self.lock().listeners.remove(&listener);
        removed.map(drop).ok_or(FabricError::NotFound("listener"))
    }

    pub(super) fn cm_connect_impl(
        &self,
        addr: SocketAddr,
        qp: QpId,
        param: &ConnParam,
    ) -> Result<ConnId> {
        if param.private_data.len() > CM_REQ_PRIVATE_DATA_MAX {
            return Err(FabricError::Invalid(
                "cm_connect: private_data longer than 56 bytes",
            ));
        }
        if param.rnr_retry_count > 7 {
            return Err(FabricError::Invalid("cm_connect: rnr_retry_count above 7"));
        }
        let SocketAddr::V4(dst) = addr else {
            return Err(FabricError::Invalid("cm_connect: address is not IPv4"));
        };
        {
            let s = self.lock();
            let o = s.qps.get(&qp).ok_or(FabricError::NotFound("qp"))?;
            if o.qp.query_state().map_err(|e| os("ibv_query_qp", e))? != 0 {
                return Err(FabricError::Invalid("cm_connect: qp must be in RESET"));
            }
        }
        let id = raw::CmId::create(&self.channel).map_err(|e| os("rdma_create_id", e))?;
        let src = (!self.port.addr.is_unspecified()).then(|| SocketAddrV4::new(self.port.addr, 0));
        // Tagged and resolved under the lock: the CM driver cannot handle the identifier's
        // first event before the connection is in the table.
        let mut s = self.lock();
        let conn = ConnId(s.alloc_id());
        id.set_tag(tag(conn.0, CONN_TAG));
        let started = id.resolve_addr(src, dst, RESOLVE_MS);
        s.conns.insert(
            conn,
            ConnObj {
                id,
                qp: Some(qp),
                phase: Phase::Resolving,
                param: param.clone(),
            },
        );
        if let Err(e) = started {
            tracing::debug!("verbs cm: rdma_resolve_addr({addr}): {e}");
            self.conn_failed(&mut s, conn, CmEventKind::Unreachable);
        }
        Ok(conn)
    }

    pub(super) fn cm_accept_impl(&self, conn: ConnId, qp: QpId, param: &ConnParam) -> Result<()> {
        let rd = self.rd_atomic();
        let mut s = self.lock();
        let c = s.conns.get(&conn).ok_or(FabricError::NotFound("conn"))?;
        if c.phase != Phase::RequestReceived {
            return Err(FabricError::Invalid(
                "cm_accept: conn is not an unanswered request",
            ));
        }
        if param.private_data.len() > CM_REP_PRIVATE_DATA_MAX {
            return Err(FabricError::Invalid(
                "cm_accept: private_data longer than 196 bytes",
            ));
        }
        if param.rnr_retry_count > 7 {
            return Err(FabricError::Invalid("cm_accept: rnr_retry_count above 7"));
        }
        let o = s.qps.get(&qp).ok_or(FabricError::NotFound("qp"))?;
        if o.qp.query_state().map_err(|e| os("ibv_query_qp", e))? != 0 {
            return Err(FabricError::Invalid("cm_accept: qp must be in RESET"));
        }
        let steps = || -> Result<()> {
            o.qp.modify(&raw::Modify {
                state: ibv_state(QpState::Init),
                port: Some(1),
                access: Some(ibv_access(qp_rights(param))),
                ..Default::default()
            })
            .map_err(|e| os("ibv_modify_qp(INIT)", e))?;
            o.qp.modify_by_cm(&c.id, ibv_state(QpState::Rtr), Some(rd), None)
                .map_err(|e| os("ibv_modify_qp(RTR)", e))?;
            // RTS before the REP leaves, as librdmacm's rdma_accept does: the host may
            // send its first capsule as soon as it has the REP, before this side's
            // ESTABLISHED event, and the answer must not find the QP still in RTR.
            o.qp.modify_by_cm(&c.id, ibv_state(QpState::Rts), None, Some(rd))
                .map_err(|e| os("ibv_modify_qp(RTS)", e))?;
            c.id.accept(&raw::RawConnParam {
                private_data: &param.private_data,
                responder_resources: param.responder_resources,
                initiator_depth: param.initiator_depth,
                rnr_retry_count: param.rnr_retry_count,
                qp_num: o.qpn,
            })
            .map_err(|e| os("rdma_accept", e))
        };
        if let Err(e) = steps() {
            self.qp_to(&s, Some(qp), QpState::Reset);
            return Err(e);
        }
        let c = s.conns.get_mut(&conn).expect("checked");
        c.phase = Phase::Accepted;
        c.qp = Some(qp);
        c.param = param.clone();
        Ok(())
    }

    pub(super) fn cm_reject_impl(&self, conn: ConnId, private_data: &[u8]) -> Result<()> {
        let mut s = self.lock();
        let c = s
            .conns
            .get_mut(&conn)
            .ok_or(FabricError::NotFound("conn"))?;
        if c.phase != Phase::RequestReceived {
            return Err(FabricError::Invalid(
                "cm_reject: conn is not an unanswered request",
            ));
        }
        if private_data.len() > CM_REJ_PRIVATE_DATA_MAX {
            return Err(FabricError::Invalid(
                "cm_reject: private_data longer than 148 bytes",
            ));
        }
        c.id.reject(private_data)
            .map_err(|e| os("rdma_reject", e))?;
        c.phase = Phase::Closed;
        Ok(())
    }

    pub(super) fn cm_disconnect_impl(&self, conn: ConnId) -> Result<()> {
        let mut s = self.lock();
        let c = s
            .conns
            .get_mut(&conn)
            .ok_or(FabricError::NotFound("conn"))?;
        if !matches!(c.phase, Phase::Established | Phase::Accepted) {
            return Err(FabricError::Invalid("cm_disconnect: conn is not connected"));
        }
        c.phase = Phase::Disconnecting;
        let qp = c.qp;
        let r = c.id.disconnect();
        self.qp_to(&s, qp, QpState::Err);
        r.map_err(|e| os("rdma_disconnect", e))
    }

    pub(super) fn cm_destroy_impl(&self, conn: ConnId) -> Result<()> {
        let mut s = self.lock();
        let c = s.conns.remove(&conn).ok_or(FabricError::NotFound("conn"))?;
        if matches!(
            c.phase,
            Phase::Established | Phase::Accepted | Phase::Disconnecting
        ) {
            self.qp_to(&s, c.qp, QpState::Err);
        }
        // rdma_destroy_id disconnects a connected identifier.
        drop(c);
        Ok(())
    }

    pub(super) fn poll_cm_event_impl(&self) -> Option<CmEvent> {
        self.pump_cm();
        self.cm_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    pub(super) async fn next_cm_event_impl(&self) -> CmEvent {
        loop {
            let notified = self.cm_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = self.poll_cm_event_impl() {
                return e;
            }
            notified.await;
        }
    }
}
