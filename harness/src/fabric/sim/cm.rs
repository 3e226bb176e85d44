//! The simulated connection manager: listen, connect request with private data,
//! accept / reject, established, disconnect, after RDMA CM over IB CM.

use std::net::{IpAddr, SocketAddr};

use super::net::{Conn, ConnState, Listener, Net, Timed};
use super::tap::{comm_id, TapCm, TapCmKind, TapMessage};
use crate::fabric::{
    Access, CmEvent, CmEventKind, ConnId, ConnParam, FabricError, ListenerId, QpDest, QpId,
    QpState, Result, CM_REJ_CONSUMER_DEFINED, CM_REJ_INVALID_SERVICE_ID, CM_REJ_PRIVATE_DATA_MAX,
    CM_REP_PRIVATE_DATA_MAX, CM_REQ_PRIVATE_DATA_MAX,
};

/// What `cm_connect` and `cm_accept` require of their QP and parameters, and their errors
/// (which name the call).
struct CmCall {
    /// The most private data the CM message carries.
    private_data_max: usize,
    not_reset: &'static str,
    private_data_too_long: &'static str,
    rnr_retry_too_high: &'static str,
}

const CONNECT: CmCall = CmCall {
    private_data_max: CM_REQ_PRIVATE_DATA_MAX,
    not_reset: "cm_connect: qp must be in RESET",
    private_data_too_long: "cm_connect: private_data longer than 56 bytes",
    rnr_retry_too_high: "cm_connect: rnr_retry_count above 7",
};

const ACCEPT: CmCall = CmCall {
    private_data_max: CM_REP_PRIVATE_DATA_MAX,
    not_reset: "cm_accept: qp must be in RESET",
    private_data_too_long: "cm_accept: private_data longer than 196 bytes",
    rnr_retry_too_high: "cm_accept: rnr_retry_count above 7",
};

impl Net {
    /// Checks, in order, that `qp` of context `ctx` exists and is in RESET, that `param`'s
    /// private data fits `call`'s message and that its RNR retry count is at most 7;
    /// returns the QP's number.
    fn cm_qp_and_param(
        &self,
        ctx: usize,
        qp: QpId,
        param: &ConnParam,
        call: &CmCall,
    ) -> Result<u32> {
        let q = self.ctxs[ctx]
            .qps
            .get(&qp)
            .ok_or(FabricError::NotFound("qp"))?;
        if q.state != QpState::Reset {
            return Err(FabricError::Invalid(call.not_reset));
        }
        if param.private_data.len() > call.private_data_max {
            return Err(FabricError::Invalid(call.private_data_too_long));
        }
        if param.rnr_retry_count > 7 {
            return Err(FabricError::Invalid(call.rnr_retry_too_high));
        }
        Ok(q.qpn)
    }

    /// Taps a CM message from connection `conn` of context `ctx` to the peer's connection
    /// `pconn` of context `pctx`; `kind` is only built when the fabric is tapped.
    fn tap_cm(
        &self,
        (ctx, conn): (usize, ConnId),
        (pctx, pconn): (usize, ConnId),
        kind: impl FnOnce() -> TapCmKind,
    ) {
        self.tap(|| {
            let msg = TapMessage::Cm(TapCm {
                local_comm_id: comm_id(ctx, conn),
                remote_comm_id: comm_id(pctx, pconn),
                kind: kind(),
            });
            Some((self.ctx_addr(ctx), self.ctx_addr(pctx), msg))
        });
    }

    pub(crate) fn cm_listen(&mut self, ctx: usize, addr: SocketAddr) -> Result<ListenerId> {
        let dev = self.ctxs[ctx].device;
        let ip = match addr.ip() {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => return Err(FabricError::AddrNotAvail(addr)),
        };
        if !ip.is_unspecified() && ip != self.devices[dev].addr {
            return Err(FabricError::AddrNotAvail(addr));
        }
        if addr.port() == 0 {
            return Err(FabricError::Invalid("listen address: port 0"));
        }
        let taken = self.devices[dev].contexts.iter().any(|c| {
            self.ctxs[*c].listeners.values().any(|l| {
                l.addr.port() == addr.port()
                    && (l.addr.ip() == addr.ip()
                        || ip.is_unspecified()
                        || l.addr.ip().is_unspecified())
            })
        });
        if taken {
            return Err(FabricError::AddrInUse(addr));
        }
        let id = ListenerId(self.ctxs[ctx].alloc_id());
        self.ctxs[ctx].listeners.insert(id, Listener { addr });
        Ok(id)
    }

    pub(crate) fn cm_close_listener(&mut self, ctx: usize, l: ListenerId) -> Result<()> {
        self.ctxs[ctx]
            .listeners
            .remove(&l)
            .map(|_| ())
            .ok_or(FabricError::NotFound("listener"))
    }

    pub(crate) fn cm_connect(
        &mut self,
        ctx: usize,
        addr: SocketAddr,
        qp: QpId,
        param: &ConnParam,
    ) -> Result<ConnId> {
        self.cm_qp_and_param(ctx, qp, param, &CONNECT)?;
        if !addr.is_ipv4() {
            return Err(FabricError::Invalid("cm_connect: address is not IPv4"));
        }
        let dev = self.ctxs[ctx].device;
        let local = SocketAddr::new(self.devices[dev].addr.into(), self.next_port);
        self.next_port = self.next_port.wrapping_add(1).max(40000);
        let id = ConnId(self.ctxs[ctx].alloc_id());
        self.ctxs[ctx].conns.insert(
            id,
            Conn {
                state: ConnState::Connecting,
                qp: Some(qp),
                peer: None,
                local,
                param: param.clone(),
            },
        );
        let at = self.now() + self.latency();
        self.schedule(
            at,
            Timed::CmRequest {
                ctx,
                conn: id,
                addr,
            },
        );
        Ok(id)
    }

    /// A connect request reaches the address it was sent to.
    pub(crate) fn on_cm_request(&mut self, ctx: usize, conn: ConnId, addr: SocketAddr) {
        let Some(c) = self.ctxs[ctx].conns.get(&conn) else {
            return;
        };
        if c.state != ConnState::Connecting {
            return;
        }
        let from = self.ctxs[ctx].device;
        let to = match addr.ip() {
            IpAddr::V4(ip) => self.device_by_addr(ip),
            IpAddr::V6(_) => None,
        };
        if !self.path_up(from, 0, to) {
            self.push_cm_event(
                ctx,
                CmEvent {
                    conn,
                    kind: CmEventKind::Unreachable,
                },
            );
            return;
        }
        let to = to.expect("path_up checked");
        self.tap(|| {
            let c = &self.ctxs[ctx].conns[&conn];
            let qpn = c.qp.and_then(|q| self.ctxs[ctx].qps.get(&q)).map(|q| q.qpn);
            let msg = TapMessage::Cm(TapCm {
                local_comm_id: comm_id(ctx, conn),
                remote_comm_id: 0,
                kind: TapCmKind::Request {
                    src_port: c.local.port(),
                    dst_port: addr.port(),
                    qpn: qpn.unwrap_or(0),
                    responder_resources: c.param.responder_resources,
                    initiator_depth: c.param.initiator_depth,
                    rnr_retry_count: c.param.rnr_retry_count,
                    private_data: c.param.private_data.clone(),
                },
            });
            Some((self.ctx_addr(ctx), self.devices[to].addr, msg))
        });
        let listener = self.devices[to].contexts.iter().find_map(|lc| {
            self.ctxs[*lc]
                .listeners
                .iter()
                .find(|(_, l)| {
                    l.addr.port() == addr.port()
                        && (l.addr.ip() == addr.ip() || l.addr.ip().is_unspecified())
                })
                .map(|(id, _)| (*lc, *id))
        });
        let Some((lctx, lid)) = listener else {
            self.tap(|| {
                let msg = TapMessage::Cm(TapCm {
                    local_comm_id: 0,
                    remote_comm_id: comm_id(ctx, conn),
                    kind: TapCmKind::Reject {
                        reason: CM_REJ_INVALID_SERVICE_ID as u16,
                        private_data: Vec::new(),
                    },
                });
                Some((self.devices[to].addr, self.ctx_addr(ctx), msg))
            });
            let ev = CmEvent {
                conn,
                kind: CmEventKind::Rejected {
                    status: CM_REJ_INVALID_SERVICE_ID,
                    private_data: Vec::new(),
                },
            };
            let at = self.now() + self.latency();
            self.schedule(at, Timed::CmDeliver { ctx, event: ev });
            if let Some(c) = self.ctxs[ctx].conns.get_mut(&conn) {
                c.state = ConnState::Rejected;
            }
            return;
        };
        let (local, param) = {
            let c = &self.ctxs[ctx].conns[&conn];
            (c.local, c.param.clone())
        };
        let pid = ConnId(self.ctxs[lctx].alloc_id());
        self.ctxs[lctx].conns.insert(
            pid,
            Conn {
                state: ConnState::RequestReceived,
                qp: None,
                peer: Some((ctx, conn)),
                local: addr,
                param: param.clone(),
            },
        );
        self.ctxs[ctx].conns.get_mut(&conn).expect("conn").peer = Some((lctx, pid));
        self.push_cm_event(
            lctx,
            CmEvent {
                conn: pid,
                kind: CmEventKind::ConnectRequest {
                    listener: lid,
                    peer: local,
                    param,
                },
            },
        );
    }

    /// Moves a QP through INIT and RTR to RTS towards `dest`, as the CM does for its user.
    fn cm_bring_up(&mut self, ctx: usize, qp: QpId, dest: QpDest, responder: u8, rnr: u8) {
        let q = self.ctxs[ctx].qps.get_mut(&qp).expect("checked qp");
        q.access = Access::LOCAL_WRITE
            | Access::REMOTE_WRITE
            | if responder > 0 {
                Access::REMOTE_READ
            } else {
                Access::empty()
            };
        q.dest = Some(dest);
        q.retry_cnt = 7;
        q.rnr_retry = rnr;
        q.state = QpState::Rts;
    }

    pub(crate) fn cm_accept(
        &mut self,
        ctx: usize,
        conn: ConnId,
        qp: QpId,
        param: &ConnParam,
    ) -> Result<()> {
        let c = self.ctxs[ctx]
            .conns
            .get(&conn)
            .ok_or(FabricError::NotFound("conn"))?;
        if c.state != ConnState::RequestReceived {
            return Err(FabricError::Invalid(
                "cm_accept: conn is not an unanswered request",
            ));
        }
        let (actx, aconn) = c.peer.expect("request has a peer");
        let areq = c.param.clone();
        let pqpn = self.cm_qp_and_param(ctx, qp, param, &ACCEPT)?;
        let active = self.ctxs[actx]
            .conns
            .get(&aconn)
            .filter(|a| a.state == ConnState::Connecting);
        let Some(aqp) = active.and_then(|a| a.qp) else {
            return Err(FabricError::NotConnected("cm_accept: the peer gave up"));
        };
        let Some(aq) = self.ctxs[actx]
            .qps
            .get(&aqp)
            .filter(|q| q.state == QpState::Reset)
        else {
            return Err(FabricError::NotConnected(
                "cm_accept: the peer's qp is gone",
            ));
        };
        let aqpn = aq.qpn;
        let pgid = self.devices[self.ctxs[ctx].device].gid();
        let agid = self.devices[self.ctxs[actx].device].gid();
        self.cm_bring_up(
            ctx,
            qp,
            QpDest {
                gid: agid,
                qpn: aqpn,
            },
            param.responder_resources,
            areq.rnr_retry_count,
        );
        self.cm_bring_up(
            actx,
            aqp,
            QpDest {
                gid: pgid,
                qpn: pqpn,
            },
            areq.responder_resources,
            param.rnr_retry_count,
        );
        self.tap_cm((ctx, conn), (actx, aconn), || TapCmKind::Reply {
            qpn: pqpn,
            responder_resources: param.responder_resources,
            initiator_depth: param.initiator_depth,
            rnr_retry_count: param.rnr_retry_count,
            private_data: param.private_data.clone(),
        });
        let c = self.ctxs[ctx].conns.get_mut(&conn).expect("conn");
        c.state = ConnState::Accepted;
        c.qp = Some(qp);
        self.ctxs[actx].conns.get_mut(&aconn).expect("conn").state = ConnState::Established;
        let now = self.now();
        let l1 = self.latency();
        let l2 = self.latency();
        self.schedule(
            now + l1,
            Timed::CmDeliver {
                ctx: actx,
                event: CmEvent {
                    conn: aconn,
                    kind: CmEventKind::Established {
                        private_data: param.private_data.clone(),
                    },
                },
            },
        );
        self.schedule(now + l1 + l2, Timed::CmRtu { ctx, conn });
        Ok(())
    }

    pub(crate) fn on_cm_rtu(&mut self, ctx: usize, conn: ConnId) {
        let Some(c) = self.ctxs[ctx].conns.get_mut(&conn) else {
            return;
        };
        if c.state != ConnState::Accepted {
            return;
        }
        c.state = ConnState::Established;
        if let Some(active) = c.peer {
            self.tap_cm(active, (ctx, conn), || TapCmKind::ReadyToUse);
        }
        self.push_cm_event(
            ctx,
            CmEvent {
                conn,
                kind: CmEventKind::Established {
                    private_data: Vec::new(),
                },
            },
        );
    }

    pub(crate) fn cm_reject(
        &mut self,
        ctx: usize,
        conn: ConnId,
        private_data: &[u8],
    ) -> Result<()> {
        let c = self.ctxs[ctx]
            .conns
            .get_mut(&conn)
            .ok_or(FabricError::NotFound("conn"))?;
        if c.state != ConnState::RequestReceived {
            return Err(FabricError::Invalid(
                "cm_reject: conn is not an unanswered request",
            ));
        }
        if private_data.len() > CM_REJ_PRIVATE_DATA_MAX {
            return Err(FabricError::Invalid(
                "cm_reject: private_data longer than 148 bytes",
            ));
        }
        c.state = ConnState::Rejected;
        let (actx, aconn) = c.peer.expect("request has a peer");
        let active = self.ctxs[actx].conns.get(&aconn);
        if active.is_some_and(|a| a.state == ConnState::Connecting) {
            self.tap_cm((ctx, conn), (actx, aconn), || TapCmKind::Reject {
                reason: CM_REJ_CONSUMER_DEFINED as u16,
                private_data: private_data.to_vec(),
            });
        }
        if let Some(a) = self.ctxs[actx].conns.get_mut(&aconn) {
            if a.state == ConnState::Connecting {
                a.state = ConnState::Rejected;
                let ev = CmEvent {
                    conn: aconn,
                    kind: CmEventKind::Rejected {
                        status: CM_REJ_CONSUMER_DEFINED,
                        private_data: private_data.to_vec(),
                    },
                };
                let at = self.now() + self.latency();
                self.schedule(
                    at,
                    Timed::CmDeliver {
                        ctx: actx,
                        event: ev,
                    },
                );
            }
        }
        Ok(())
    }

    /// Tears down this side of a connection: QP to ERR, the peer told, optionally a local event.
    fn cm_teardown(&mut self, ctx: usize, conn: ConnId, local_event: bool) {
        let c = self.ctxs[ctx].conns.get_mut(&conn).expect("conn");
        c.state = ConnState::Disconnected;
        let (qp, peer) = (c.qp, c.peer);
        if let Some(qp) = qp {
            self.qp_to_err(ctx, qp);
        }
        if let Some(peer) = peer {
            self.tap_cm((ctx, conn), peer, || TapCmKind::Disconnect);
        }
        let now = self.now();
        let l1 = self.latency();
        if let Some((pctx, pconn)) = peer {
            self.schedule(
                now + l1,
                Timed::CmDisconnect {
                    ctx: pctx,
                    conn: pconn,
                },
            );
        }
        if local_event {
            let l2 = self.latency();
            self.schedule(
                now + l1 + l2,
                Timed::CmDeliver {
                    ctx,
                    event: CmEvent {
                        conn,
                        kind: CmEventKind::Disconnected,
                    },
                },
            );
        }
    }

    pub(crate) fn cm_disconnect(&mut self, ctx: usize, conn: ConnId) -> Result<()> {
        let c = self.ctxs[ctx]
            .conns
            .get(&conn)
            .ok_or(FabricError::NotFound("conn"))?;
        if !matches!(c.state, ConnState::Established | ConnState::Accepted) {
            return Err(FabricError::Invalid("cm_disconnect: conn is not connected"));
        }
        self.cm_teardown(ctx, conn, true);
        Ok(())
    }

    /// The peer of `conn` disconnected (its DREQ arrived): answered with a DREP, as the IB
    /// CM does, also when this side's own DREQ crossed it.
    pub(crate) fn on_cm_disconnect(&mut self, ctx: usize, conn: ConnId) {
        let Some(c) = self.ctxs[ctx].conns.get_mut(&conn) else {
            return;
        };
        let (state, peer) = (c.state, c.peer);
        if matches!(
            state,
            ConnState::Established | ConnState::Accepted | ConnState::Disconnected
        ) {
            if let Some(peer) = peer {
                self.tap_cm((ctx, conn), peer, || TapCmKind::DisconnectReply);
            }
        }
        let Some(c) = self.ctxs[ctx].conns.get_mut(&conn) else {
            return;
        };
        if !matches!(state, ConnState::Established | ConnState::Accepted) {
            return;
        }
        c.state = ConnState::Disconnected;
        if let Some(qp) = c.qp {
            self.qp_to_err(ctx, qp);
        }
        self.push_cm_event(
            ctx,
            CmEvent {
                conn,
                kind: CmEventKind::Disconnected,
            },
        );
    }

    pub(crate) fn cm_destroy(&mut self, ctx: usize, conn: ConnId) -> Result<()> {
        let c = self.ctxs[ctx]
            .conns
            .get(&conn)
            .ok_or(FabricError::NotFound("conn"))?;
        if matches!(c.state, ConnState::Established | ConnState::Accepted) {
            self.cm_teardown(ctx, conn, false);
        }
        self.ctxs[ctx].conns.remove(&conn);
        Ok(())
    }
}
