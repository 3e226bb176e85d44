//! A connection's task: it takes its work completions one at a time, gives each received
//! capsule's buffer back to the SRQ, and dispatches the capsule: Connect
//! (`control/connect.rs`), admin and Fabrics commands on the admin queue
//! (`control/admin.rs`), I/O on an I/O queue (`control/io.rs`).

use harness::fabric::{RecvWr, WcStatus, WorkCompletion};
use harness::wire::{sqe_field, FabricsCmd, FabricsType, Status, FABRICS_OPCODE};
use tokio::sync::watch;

use super::queue::{Capsule, Queue, SEND_TAG};
use super::state::IDLE_TICK;
use super::{admin, connect, io};

impl Queue {
    /// The connection task: capsules until cancelled, disconnected or broken.
    pub(crate) async fn run(mut self, mut cancel: watch::Receiver<bool>) {
        loop {
            if *cancel.borrow() {
                tracing::debug!(conn = ?self.conn, qid = self.qid, "queue cancelled (disconnect or teardown)");
                break;
            }
            if self.dead {
                break;
            }
            let wc = match self.pending.pop_front() {
                Some(wc) => wc,
                None => match self.sh.ctx.poll_cq(self.cq, 1) {
                    Err(e) => {
                        self.die(format_args!("poll_cq: {e}"));
                        break;
                    }
                    Ok(mut v) => match v.pop() {
                        Some(wc) => wc,
                        None => {
                            tokio::select! {
                                r = self.sh.ctx.wait_cq(self.cq) => if let Err(e) = r {
                                    self.die(format_args!("wait_cq: {e}"));
                                    break;
                                },
                                r = cancel.changed() => if r.is_err() {
                                    tracing::debug!(conn = ?self.conn, qid = self.qid, "queue cancelled (target stopped)");
                                    break;
                                },
                                _ = tokio::time::sleep(IDLE_TICK) => {}
                            }
                            continue;
                        }
                    },
                },
            };
            self.on_wc(wc).await;
        }
        self.cleanup();
    }

    async fn on_wc(&mut self, wc: WorkCompletion) {
        if wc.wr_id & SEND_TAG != 0 {
            if wc.status != WcStatus::Success {
                self.die(format_args!("send completed with {}", wc.status.name()));
            }
            return;
        }
        let sub = &self.sh.subs[self.sub];
        let slot = wc.wr_id;
        let mut bytes = vec![0u8; (u64::from(wc.byte_len)).min(sub.slot_len) as usize];
        let ok = wc.status == WcStatus::Success
            && self
                .sh
                .ctx
                .mr_read(sub.recv_mr.id, slot * sub.slot_len, &mut bytes)
                .is_ok();
        if wc.status != WcStatus::WrFlushErr {
            let wr = RecvWr {
                wr_id: slot,
                sg_list: vec![sub.recv_mr.sge(slot * sub.slot_len, sub.slot_len as u32)],
            };
            let _ = self.sh.ctx.post_srq_recv(sub.srq.srq, &wr);
        }
        if !ok {
            self.die(format_args!(
                "receive completed with {} ({} bytes)",
                wc.status.name(),
                wc.byte_len
            ));
            return;
        }
        self.received = ((u32::from(self.received) + 1) % self.entries) as u16;
        self.on_capsule(bytes).await;
    }

    async fn on_capsule(&mut self, mut bytes: Vec<u8>) {
        crate::interop::tolerate_sgl1_reserved(&mut bytes);
        tracing::debug!(
            conn = ?self.conn,
            qid = self.qid,
            len = bytes.len(),
            opcode = bytes.first().copied(),
            "capsule"
        );
        let Some(c) = Capsule::new(&bytes) else {
            // Not even a command: answer if a CID can be read, else drop it.
            if let Some(cid) = bytes.get(sqe_field::CID) {
                let cid = u16::from_le_bytes([cid[0], cid[1]]);
                self.respond(cid, Status::INVALID_FIELD.with_dnr(), 0, None)
                    .await;
            }
            return;
        };
        tracing::debug!(
            conn = ?self.conn,
            cid = c.cid(),
            nsid = c.sqe.nsid(),
            cdw10 = c.sqe.cdw(10),
            "capsule's command"
        );
        let (cid, opcode) = (c.cid(), c.sqe.opcode());
        let connect =
            FabricsCmd::new_unchecked(c.sqe_bytes()).fctype() == FabricsType::Connect as u8;
        if opcode == FABRICS_OPCODE && connect {
            connect::on_connect(self, &c).await;
        } else if self.cntlid.is_none() {
            self.sh.log(format!(
                "command-before-connect subsystem={} cm_qid={} opcode={opcode:#04x} cid={cid}",
                self.sh.subs[self.sub].cfg.nqn, self.cm_qid
            ));
            self.respond(cid, Status::COMMAND_SEQUENCE_ERROR.with_dnr(), 0, None)
                .await;
        } else if self.qid == 0 {
            if opcode == FABRICS_OPCODE {
                admin::on_fabrics(self, &c).await;
            } else {
                admin::on_admin(self, &c).await;
            }
        } else if opcode == FABRICS_OPCODE {
            self.respond(cid, Status::INVALID_OPCODE.with_dnr(), 0, None)
                .await;
        } else {
            io::on_io(self, &c).await;
        }
    }
}
