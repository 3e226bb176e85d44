//! One connection (one NVMe-oF queue) as software sees it.
//!
//! Its QP is attached to the subsystem's NVMe-oF SRQ; capsules the engine does not serve
//! arrive as receives of the subsystem's shared receive buffers, completing on the
//! connection's own CQ (which also carries its sends). The connection task handles one
//! capsule at a time: it reads it, gives the buffer back to the SRQ, and dispatches it
//! (Connect, admin, or the software I/O path). Data moves with RDMA READ / WRITE through
//! the connection's bounce buffer; each response is one SEND (with invalidate for a 4Fh
//! SGL) of a 16-byte CQE from the connection's response buffer. Every wait is bounded.

use std::collections::VecDeque;
use std::sync::Arc;

use harness::fabric::{ConnId, CqId, MrInfo, QpId, SendOp, SendWr, WcStatus, WorkCompletion};
use harness::wire::{CqeRepr, SglAddressing, SglRepr, Sqe, Status, SQE_LEN};

use super::state::{Shared, OP_BOUND};

/// Work request ids of sends carry this bit; receive ids are buffer slot numbers.
pub(crate) const SEND_TAG: u64 = 1 << 40;

/// The data a command's SGL1 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataRef {
    /// Host memory, keyed (`invalidate`: 4Fh).
    Keyed {
        addr: u64,
        key: u32,
        len: u32,
        invalidate: bool,
    },
    /// In the capsule, at this byte offset of the capsule (SQE included), this long.
    InCapsule { start: usize, len: u32 },
}

/// A received capsule of at least an SQE: the SQE view over its first 64 bytes, through
/// which every handler reads the command's fields, and the whole capsule (in-capsule data
/// follows the SQE). Built once per capsule by the connection's task.
pub(crate) struct Capsule<'a> {
    pub sqe: Sqe<&'a [u8]>,
    pub bytes: &'a [u8],
}

impl<'a> Capsule<'a> {
    /// `None` for fewer bytes than an SQE.
    pub fn new(bytes: &'a [u8]) -> Option<Capsule<'a>> {
        let sqe = Sqe::new_checked(bytes.get(..SQE_LEN)?).ok()?;
        Some(Capsule { sqe, bytes })
    }

    /// The command identifier.
    pub fn cid(&self) -> u16 {
        self.sqe.cid()
    }

    /// The SQE's 64 bytes.
    pub fn sqe_bytes(&self) -> &'a [u8] {
        &self.bytes[..SQE_LEN]
    }
}

/// A connection: see the module docs.
pub(crate) struct Queue {
    pub sh: Arc<Shared>,
    /// The port it came through (an index into `Shared::ports`).
    pub port: usize,
    /// The port's subsystem (an index into `Shared::subs`).
    pub sub: usize,
    pub conn: ConnId,
    pub qp: QpId,
    pub cq: CqId,
    /// QID of the CM private data.
    pub cm_qid: u16,
    pub resp_mr: MrInfo,
    pub data_mr: MrInfo,
    pub(crate) pending: VecDeque<WorkCompletion>,
    next_wr: u64,
    /// Capsules software received on this queue, modulo `entries`: SQHD of software's
    /// responses.
    pub received: u16,
    /// Entries of the queue (the CM request's HSQSIZE + 1), the modulus of SQHD.
    pub entries: u32,
    /// The controller after a successful Connect.
    pub cntlid: Option<u16>,
    /// The queue's QID after a successful Connect.
    pub qid: u16,
    /// The QP failed or the host is gone: stop.
    pub dead: bool,
}

impl Queue {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        sh: Arc<Shared>,
        port: usize,
        conn: ConnId,
        qp: QpId,
        cq: CqId,
        (cm_qid, entries): (u16, u32),
        resp_mr: MrInfo,
        data_mr: MrInfo,
    ) -> Queue {
        let sub = sh.ports[port].sub;
        Queue {
            sh,
            port,
            sub,
            conn,
            qp,
            cq,
            cm_qid,
            resp_mr,
            data_mr,
            pending: VecDeque::new(),
            next_wr: 0,
            received: 0,
            entries: entries.max(1),
            cntlid: None,
            qid: cm_qid,
            dead: false,
        }
    }

    /// The queue stops serving, for `why` (logged: a queue that dies is worth knowing of).
    pub(crate) fn die(&mut self, why: std::fmt::Arguments<'_>) {
        if !self.dead {
            tracing::warn!(conn = ?self.conn, qid = self.qid, "the queue stops: {why}");
        }
        self.dead = true;
    }

    /// Interprets SGL1 (bytes 24..40) of a capsule: `Err(status)` for a descriptor the
    /// target does not take (type → 0/11h).
    pub(crate) fn data_ref(
        &self,
        c: &Capsule<'_>,
        icdoff: usize,
    ) -> Result<Option<DataRef>, Status> {
        let Ok(sgl) = SglRepr::parse(&c.sqe.sgl1()) else {
            return Err(Status::SGL_DESCRIPTOR_TYPE_INVALID.with_dnr());
        };
        match sgl {
            SglRepr::KeyedDataBlock {
                invalidate,
                address,
                length,
                key,
            } => Ok(Some(DataRef::Keyed {
                addr: address,
                key,
                len: length,
                invalidate,
            })),
            SglRepr::DataBlock {
                addressing: SglAddressing::Offset,
                address,
                length,
            } => {
                let start = ((SQE_LEN + icdoff) as u64).checked_add(address);
                let end = start.and_then(|s| s.checked_add(u64::from(length)));
                match (start, end) {
                    (Some(start), Some(e)) if e <= c.bytes.len() as u64 => {
                        Ok(Some(DataRef::InCapsule {
                            start: start as usize,
                            len: length,
                        }))
                    }
                    _ => Err(Status::SGL_OFFSET_INVALID.with_dnr()),
                }
            }
            _ => Err(Status::SGL_DESCRIPTOR_TYPE_INVALID.with_dnr()),
        }
    }

    fn post(&mut self, op: SendOp, sg: Vec<harness::fabric::Sge>) -> Option<u64> {
        self.next_wr += 1;
        let id = SEND_TAG | self.next_wr;
        match self.sh.ctx.post_send(self.qp, &SendWr::new(id, op, sg)) {
            Ok(()) => Some(id),
            Err(e) => {
                self.die(format_args!("post_send: {e}"));
                None
            }
        }
    }

    /// Waits (bounded) for the completion of send `id`; receives that complete meanwhile
    /// are kept for later. False (and the queue is dead) unless it succeeded.
    async fn complete(&mut self, id: u64) -> bool {
        let deadline = tokio::time::Instant::now() + OP_BOUND;
        loop {
            let wcs = match self.sh.ctx.poll_cq(self.cq, 16) {
                Ok(v) => v,
                Err(e) => {
                    self.die(format_args!("poll_cq: {e}"));
                    return false;
                }
            };
            let mut found = None;
            for wc in wcs {
                if wc.wr_id == id {
                    found = Some(wc.status);
                } else if wc.wr_id & SEND_TAG != 0 {
                    if wc.status != WcStatus::Success {
                        self.die(format_args!("send completed with {}", wc.status.name()));
                    }
                } else {
                    self.pending.push_back(wc);
                }
            }
            if let Some(s) = found {
                if s != WcStatus::Success {
                    self.die(format_args!("work request completed with {}", s.name()));
                }
                return s == WcStatus::Success;
            }
            match tokio::time::timeout_at(deadline, self.sh.ctx.wait_cq(self.cq)).await {
                Ok(Ok(())) => {}
                r => {
                    self.die(format_args!("no completion within {OP_BOUND:?} ({r:?})"));
                    return false;
                }
            }
        }
    }

    /// RDMA READ of `len` bytes of host memory; `None` when it failed (queue dead).
    pub(crate) async fn rdma_read(&mut self, addr: u64, key: u32, len: u32) -> Option<Vec<u8>> {
        if u64::from(len) > self.data_mr.len {
            return None;
        }
        let sge = self.data_mr.sge(0, len);
        let id = self.post(
            SendOp::RdmaRead {
                remote_addr: addr,
                rkey: key,
            },
            vec![sge],
        )?;
        if !self.complete(id).await {
            return None;
        }
        let mut buf = vec![0u8; len as usize];
        self.sh.ctx.mr_read(self.data_mr.id, 0, &mut buf).ok()?;
        Some(buf)
    }

    /// RDMA WRITE of `data` into host memory; false when it failed (queue dead).
    pub(crate) async fn rdma_write(&mut self, addr: u64, key: u32, data: &[u8]) -> bool {
        if data.len() as u64 > self.data_mr.len {
            return false;
        }
        if self.sh.ctx.mr_write(self.data_mr.id, 0, data).is_err() {
            return false;
        }
        let sge = self.data_mr.sge(0, data.len() as u32);
        let Some(id) = self.post(
            SendOp::RdmaWrite {
                remote_addr: addr,
                rkey: key,
            },
            vec![sge],
        ) else {
            return false;
        };
        self.complete(id).await
    }

    /// Sends the response capsule: SQHD = capsules software received on this queue,
    /// SQID = the queue's QID; SEND with invalidate of `invalidate` when given.
    pub(crate) async fn respond(
        &mut self,
        cid: u16,
        status: Status,
        result: u64,
        invalidate: Option<u32>,
    ) {
        tracing::debug!(conn = ?self.conn, qid = self.qid, cid, %status, dead = self.dead, "response");
        if self.dead {
            return;
        }
        let cqe = CqeRepr {
            result,
            sq_head: self.received,
            sq_id: self.qid,
            cid,
            phase: false,
            status,
        };
        let Ok(bytes) = cqe.to_bytes() else { return };
        if let Err(e) = self.sh.ctx.mr_write(self.resp_mr.id, 0, &bytes) {
            self.die(format_args!("writing the response: {e}"));
            return;
        }
        let op = match invalidate {
            Some(rkey) => SendOp::SendWithInv { rkey },
            None => SendOp::Send,
        };
        let sge = self.resp_mr.sge(0, 16);
        if let Some(id) = self.post(op, vec![sge]) {
            self.complete(id).await;
        }
    }

    /// The queue ends: forget it in its controller (the admin queue takes the controller
    /// and its I/O queues with it), then free its objects.
    pub(crate) fn cleanup(self) {
        let sh = self.sh.clone();
        let admin_of = {
            let mut st = sh.lock();
            st.conns.remove(&self.conn);
            match self.cntlid {
                Some(c) if self.qid != 0 => {
                    if let Some(ctrl) = st.ctrls.get_mut(&(self.sub, c)) {
                        if ctrl.io_conns.remove(&self.conn) {
                            ctrl.io_qids.remove(&self.qid);
                        }
                    }
                    None
                }
                Some(c) => st
                    .ctrls
                    .get(&(self.sub, c))
                    .filter(|x| x.admin_conn == self.conn)
                    .map(|_| c),
                None => None,
            }
        };
        if let Some(c) = admin_of {
            sh.teardown_ctrl(self.sub, c, "admin queue disconnected");
        }
        let ctx = &sh.ctx;
        let _ = ctx.cm_disconnect(self.conn);
        let _ = ctx.cm_destroy(self.conn);
        let _ = ctx.destroy_qp(self.qp);
        let _ = ctx.destroy_cq(self.cq);
        let _ = ctx.dereg_mr(self.resp_mr.id);
        let _ = ctx.dereg_mr(self.data_mr.id);
        sh.log(format!(
            "queue-closed subsystem={} qid={} cntlid={}",
            sh.subs[self.sub].cfg.nqn,
            self.qid,
            self.cntlid.map_or("-".into(), |c| c.to_string())
        ));
    }
}
