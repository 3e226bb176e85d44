//! The offload data path: a command capsule arrives on an NVMe-oF SRQ; the engine decides
//! whether it offloads it; an offloaded command moves its data host ↔ staging buffer ↔
//! backend controller and is answered with a response capsule; anything else goes to
//! software as an SRQ receive (or, on a device without non-offloaded ops, raises
//! `UNSUPPORTED_NVMF_OP` and puts the QP in error).
//!
//! The offload decision (`decide`), in order — the first rule that fails sends the
//! capsule to software:
//! 1. the QP has offload enabled (`qp_set_nvmf`), and the capsule holds a whole SQE that
//!    parses as an NVM I/O command (not fused);
//! 2. its opcode is in the SRQ's `offload_ops`;
//! 3. its nsid is mapped on the SRQ (else also counted in `unknown_ns_cmds`);
//! 4. its data length (blocks × lba_data_size; DSM: ranges × 16) is ≤ `max_io_sz`;
//! 5. its data pointer is a keyed SGL (0x40 / 0x4F) of exactly that length, or, for a
//!    write, in-capsule data (0x01) of exactly that length within the capsule past ICDOFF.

use std::collections::btree_map::Entry;
use std::sync::Arc;

use harness::api::{OffloadEvent, OffloadOps, SrqHandle};
use harness::fabric::{QpAttr, QpState, RecvWr, SendOp, SendWr, WcStatus, WorkCompletion};
use harness::wire::{
    CqeRepr, DataPointer, SglAddressing, SglRepr, SqeCommand, SqeRepr, Status, SQE_LEN,
};

use super::{BackendSide, Cmd, Core, DataSrc, HostSide, OffloadSrq, Step, Wr};
use crate::quirks::Quirk;

/// Why a capsule is not offloaded (kept for traces and docs; the capsule goes to software).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotOffloaded {
    OffloadDisabled,
    Malformed,
    OpNotSelected,
    UnknownNamespace,
    TooLong,
    DataPointer,
}

impl Core {
    /// An engine capsule receive completed.
    pub(crate) fn on_capsule_wc(self: &Arc<Self>, srq: SrqHandle, slot: u32, wc: &WorkCompletion) {
        let (bytes, vqp) = {
            let (mut nic, path) = self.both();
            let Some(srq_state) = path.nvmf.get(&srq) else {
                return;
            };
            let (mr, slot_len, real_srq) = (srq_state.recv_mr, srq_state.slot_len, srq_state.real);
            let mut bytes = vec![0u8; (wc.byte_len as u64).min(slot_len) as usize];
            let ok = wc.status == WcStatus::Success
                && self
                    .real
                    .mr_read(mr.id, u64::from(slot) * slot_len, &mut bytes)
                    .is_ok();
            // Give the buffer back to the SRQ at once.
            let sg_list = vec![mr.sge(u64::from(slot) * slot_len, slot_len as u32)];
            let _ = nic.post_tagged(Wr::Capsule { srq, slot }, |wr_id| {
                self.real
                    .post_srq_recv(real_srq, &RecvWr { wr_id, sg_list })
            });
            if !ok {
                return;
            }
            let Some(vqp) = nic.real_qp.get(&wc.qp).copied() else {
                return;
            };
            crate::interop::tolerate_sgl1_reserved(&mut bytes);
            (bytes, vqp)
        };
        self.on_capsule(srq, vqp, bytes, wc.src_qp);
    }

    fn on_capsule(
        self: &Arc<Self>,
        srq: SrqHandle,
        vqp: harness::fabric::QpId,
        bytes: Vec<u8>,
        src_qp: u32,
    ) {
        let decision = {
            let (mut nic, mut path) = self.both();
            let Some(ctx_qp) = nic.qps.get_mut(&vqp) else {
                return;
            };
            ctx_qp.received += 1;
            if let Some(queue) = super::QueueOfQp::from_connect(&bytes) {
                ctx_qp.queue = Some(queue);
            }
            let sq_head = super::QueueOfQp::sq_head(ctx_qp.queue, ctx_qp.received);
            let sq_id = ctx_qp.queue.map_or(0, |queue| queue.qid);
            let offload = ctx_qp.offload;
            let real_qp = ctx_qp.real;
            if !offload {
                Err((NotOffloaded::OffloadDisabled, 0u8))
            } else {
                self.decide(&mut path, srq, vqp, real_qp, &bytes, (sq_head, sq_id))
            }
        };
        tracing::debug!(?vqp, len = bytes.len(), decision = ?decision, "engine capsule");
        match decision {
            Ok(cmd) => self.start(cmd),
            Err((NotOffloaded::OffloadDisabled, _)) => {
                self.deliver_to_software(srq, vqp, &bytes, src_qp)
            }
            Err((_, opcode)) => {
                if self.caps.supports_non_offloaded_ops {
                    self.deliver_to_software(srq, vqp, &bytes, src_qp);
                } else if !self.quirks.has(Quirk::UnsupportedOpSilent) {
                    self.events
                        .push(OffloadEvent::UnsupportedNvmfOp { qp: vqp, opcode });
                    let real = self.nic().qps.get(&vqp).map(|q| q.real);
                    if let Some(real) = real {
                        let _ = self.real.modify_qp(real, &QpAttr::state(QpState::Err));
                    }
                }
            }
        }
    }

    /// The offload decision (see the module docs); on success the command is registered.
    fn decide(
        &self,
        path: &mut super::Path,
        srq: SrqHandle,
        vqp: harness::fabric::QpId,
        real_qp: harness::fabric::QpId,
        bytes: &[u8],
        (sq_head, sq_id): (u16, u16),
    ) -> Result<u64, (NotOffloaded, u8)> {
        let opcode = bytes.first().copied().unwrap_or(0);
        let no = |why| Err((why, opcode));
        if bytes.len() < SQE_LEN {
            return no(NotOffloaded::Malformed);
        }
        let Ok(sqe) = SqeRepr::parse_bytes(&bytes[..SQE_LEN]) else {
            return no(NotOffloaded::Malformed);
        };
        if sqe.fuse != harness::wire::Fuse::Normal {
            return no(NotOffloaded::Malformed);
        }
        let srq_state = path.nvmf.get_mut(&srq).expect("capsule of a live SRQ");
        let Some(op) = OffloadOps::from_opcode(opcode) else {
            return no(NotOffloaded::OpNotSelected);
        };
        if !srq_state.attrs.offload_ops.contains(op) {
            return no(NotOffloaded::OpNotSelected);
        }
        let Some(map) = srq_state.ns.get(&sqe.nsid) else {
            srq_state.counters.unknown_ns_cmds += 1;
            return no(NotOffloaded::UnknownNamespace);
        };
        let lba = u64::from(map.lba_data_size);
        let (blocks, len, writes) = match &sqe.command {
            SqeCommand::Read(rw) => (u64::from(rw.nlb) + 1, (u64::from(rw.nlb) + 1) * lba, false),
            SqeCommand::Write(rw) => (u64::from(rw.nlb) + 1, (u64::from(rw.nlb) + 1) * lba, true),
            // Blocks are counted for reads and writes only; write zeroes moves no data.
            SqeCommand::WriteZeroes(_) => (0, 0, false),
            SqeCommand::DatasetManagement(d) => (0, (u64::from(d.nr) + 1) * 16, true),
            SqeCommand::Flush => (0, 0, false),
            SqeCommand::Other { .. } => return no(NotOffloaded::OpNotSelected),
        };
        if len > u64::from(srq_state.attrs.max_io_sz) {
            return no(NotOffloaded::TooLong);
        }
        let unchecked = self.quirks.has(Quirk::SglLengthUnchecked);
        let data = if len == 0 {
            DataSrc::None
        } else {
            match &sqe.dptr {
                DataPointer::Sgl(SglRepr::KeyedDataBlock {
                    invalidate,
                    address,
                    length,
                    key,
                }) if u64::from(*length) == len || unchecked => DataSrc::Keyed {
                    addr: *address,
                    key: *key,
                    invalidate: *invalidate,
                },
                DataPointer::Sgl(SglRepr::DataBlock {
                    addressing: SglAddressing::Offset,
                    address,
                    length,
                }) if writes && u64::from(*length) == len => {
                    // In-capsule data starts `icdoff` units after the SQE; the descriptor's
                    // address is an offset into it.
                    let data_start = SQE_LEN as u64 + u64::from(srq_state.attrs.icdoff) * 16;
                    let Some((start, end)) = data_start
                        .checked_add(*address)
                        .and_then(|s| Some((s, s.checked_add(len)?)))
                    else {
                        return no(NotOffloaded::DataPointer);
                    };
                    if end > bytes.len() as u64
                        || end > data_start + srq_state.attrs.in_capsule_data_len()
                    {
                        return no(NotOffloaded::DataPointer);
                    }
                    DataSrc::InCapsule(bytes[start as usize..end as usize].to_vec())
                }
                _ => return no(NotOffloaded::DataPointer),
            }
        };
        let cmd = Cmd {
            vqp,
            real_qp,
            srq,
            ctrl: map.ctrl,
            fe_nsid: sqe.nsid,
            nvme_nsid: map.nvme_nsid,
            blocks,
            len,
            data,
            sqe,
            staging: None,
            resp_slot: None,
            host: HostSide::Received,
            backend: BackendSide::NotSubmitted,
            backend_failed: false,
            sq_head,
            sq_id,
        };
        path.next_cmd += 1;
        let id = path.next_cmd;
        path.cmds.insert(id, cmd);
        Ok(id)
    }

    /// Takes staging space and a response buffer, then moves the data in or submits.
    pub(crate) fn start(self: &Arc<Self>, id: u64) {
        enum Next {
            Fetch(harness::fabric::QpId, SendWr),
            Submit,
            Wait,
        }
        let next = {
            let (mut nic, mut path) = self.both();
            let (nic, path) = (&mut *nic, &mut *path);
            let Some(cmd) = path.cmds.get_mut(&id) else {
                return;
            };
            let srq_state = path.nvmf.get_mut(&cmd.srq).expect("cmd of a live SRQ");
            if cmd.resp_slot.is_none() {
                cmd.resp_slot = srq_state.resp_free.pop();
            }
            if cmd.staging.is_none() && cmd.len > 0 {
                cmd.staging = srq_state.staging.alloc(cmd.len);
            }
            if cmd.resp_slot.is_none() || (cmd.len > 0 && cmd.staging.is_none()) {
                if !srq_state.waiting.contains(&id) {
                    srq_state.waiting.push_back(id);
                }
                Next::Wait
            } else {
                let staging_off = srq_state.staging_base + cmd.staging.unwrap_or(0);
                match &cmd.data {
                    DataSrc::Keyed { addr, key, .. } if is_inbound(&cmd.sqe) => {
                        let sge = srq_state.staging_mr.sge(staging_off, cmd.len as u32);
                        let (addr, key, real_qp) = (*addr, *key, cmd.real_qp);
                        cmd.fetching();
                        let wr_id = {
                            nic.next_wr += 1;
                            nic.wrs.insert(
                                nic.next_wr,
                                Wr::Cmd {
                                    cmd: id,
                                    step: Step::Fetch,
                                },
                            );
                            nic.next_wr
                        };
                        Next::Fetch(
                            real_qp,
                            SendWr::new(
                                wr_id,
                                SendOp::RdmaRead {
                                    remote_addr: addr,
                                    rkey: key,
                                },
                                vec![sge],
                            ),
                        )
                    }
                    DataSrc::InCapsule(data) => {
                        let _ = self
                            .real
                            .mr_write(srq_state.staging_mr.id, staging_off, data);
                        cmd.data_ready();
                        Next::Submit
                    }
                    _ => {
                        cmd.data_ready();
                        Next::Submit
                    }
                }
            }
        };
        match next {
            Next::Wait => tracing::debug!(id, "engine cmd waits for a response slot or staging"),
            Next::Submit => self.submit_backend(id),
            Next::Fetch(qp, wr) => {
                if let Err(e) = self.real.post_send(qp, &wr) {
                    tracing::warn!(id, "engine: posting the RDMA READ of host data failed: {e}");
                    self.nic().wrs.remove(&wr.wr_id);
                    self.abort_cmd(id);
                }
            }
        }
    }

    /// An engine work request of a command completed.
    pub(crate) fn on_cmd_wc(self: &Arc<Self>, id: u64, step: Step, wc: &WorkCompletion) {
        tracing::debug!(
            id,
            ?step,
            status = wc.status.name(),
            "engine cmd work completion"
        );
        if wc.status != WcStatus::Success {
            // The QP is in error: nothing more can be sent to this host.
            {
                let mut path = self.path();
                if let Some(cmd) = path.cmds.get_mut(&id) {
                    if step == Step::Respond {
                        cmd.orphan_discarding();
                    } else {
                        cmd.orphan();
                    }
                }
            }
            self.try_retire(id);
            return;
        }
        match step {
            Step::Fetch => {
                let early = {
                    let mut path = self.path();
                    path.cmds.get_mut(&id).is_some_and(|c| {
                        c.data_ready();
                        self.quirks.has(Quirk::EarlyWriteAck)
                            && matches!(c.sqe.command, SqeCommand::Write(_))
                    })
                };
                if early {
                    self.respond(id, Status::SUCCESS, false);
                }
                self.submit_backend(id);
            }
            Step::Deliver => {}
            Step::Respond => {
                if let Some(cmd) = self.path().cmds.get_mut(&id) {
                    cmd.sending_done();
                }
                self.try_retire(id);
            }
        }
    }

    /// The backend completed (or failed) a command.
    pub(crate) fn on_backend_done(self: &Arc<Self>, id: u64, status: Status) {
        tracing::debug!(id, %status, "engine cmd: backend done");
        let (read_ok, answered) = {
            let mut path = self.path();
            let Some(cmd) = path.cmds.get_mut(&id) else {
                return;
            };
            cmd.backend_done(!status.is_success());
            (
                status.is_success() && matches!(cmd.sqe.command, SqeCommand::Read(_)),
                cmd.host_settled(),
            )
        };
        if answered {
            self.try_retire(id);
            return;
        }
        if read_ok {
            self.respond(id, status, true);
        } else {
            self.respond(id, status, false);
        }
    }

    /// Sends the response capsule (after an RDMA WRITE of read data when `deliver`).
    pub(crate) fn respond(self: &Arc<Self>, id: u64, status: Status, deliver: bool) {
        let posts = {
            let (mut nic, mut path) = self.both();
            let (nic, path) = (&mut *nic, &mut *path);
            let Some(cmd) = path.cmds.get_mut(&id) else {
                return;
            };
            if !cmd.begin_answer() {
                return;
            }
            let hang = self.quirks.has(Quirk::HangOneCommand)
                && !path.hung_once
                && matches!(cmd.sqe.command, SqeCommand::Read(_));
            let srq_state = path.nvmf.get_mut(&cmd.srq).expect("cmd of a live SRQ");
            // Counters.
            if let Some(mapping) = srq_state.ns.get_mut(&cmd.fe_nsid) {
                let counters = &mut mapping.counters;
                match &cmd.sqe.command {
                    SqeCommand::Read(_) => {
                        counters.read_cmds += 1;
                        counters.read_blocks += cmd.blocks;
                    }
                    SqeCommand::Write(_) => {
                        counters.write_cmds += 1;
                        counters.write_blocks += cmd.blocks;
                        if matches!(cmd.data, DataSrc::InCapsule(_)) {
                            counters.write_inline_cmds += 1;
                            counters.write_inline_blocks += cmd.blocks;
                        }
                    }
                    SqeCommand::Flush => counters.flush_cmds += 1,
                    _ => {}
                }
                if !status.is_success() {
                    counters.error_cmds += 1;
                }
                if cmd.backend_failed {
                    counters.backend_error_cmds += 1;
                }
            }
            if hang {
                path.hung_once = true;
                cmd.orphan();
                None
            } else {
                let slot = cmd.resp_slot.expect("response slot taken at start");
                let cqe = CqeRepr {
                    result: 0,
                    sq_head: cmd.sq_head,
                    sq_id: cmd.sq_id,
                    cid: cmd.sqe.cid,
                    phase: false,
                    status,
                };
                let bytes = cqe.to_bytes().expect("a CQE always encodes");
                let off = u64::from(slot) * 16;
                let _ = self.real.mr_write(srq_state.resp_mr.id, off, &bytes);
                let mut wrs = Vec::new();
                if deliver {
                    if let (DataSrc::Keyed { addr, key, .. }, Some(s)) = (&cmd.data, cmd.staging) {
                        let sge = srq_state
                            .staging_mr
                            .sge(srq_state.staging_base + s, cmd.len as u32);
                        let op = SendOp::RdmaWrite {
                            remote_addr: *addr,
                            rkey: *key,
                        };
                        wrs.push((Step::Deliver, op, sge));
                    }
                }
                let op = match cmd.data {
                    DataSrc::Keyed {
                        key,
                        invalidate: true,
                        ..
                    } => SendOp::SendWithInv { rkey: key },
                    _ => SendOp::Send,
                };
                wrs.push((Step::Respond, op, srq_state.resp_mr.sge(off, 16)));
                cmd.answer_posted();
                let qp = cmd.real_qp;
                let mut out = Vec::new();
                for (step, op, sge) in wrs {
                    nic.next_wr += 1;
                    nic.wrs.insert(nic.next_wr, Wr::Cmd { cmd: id, step });
                    out.push(SendWr::new(nic.next_wr, op, vec![sge]));
                }
                Some((qp, out))
            }
        };
        match posts {
            None => self.try_retire(id),
            Some((qp, wrs)) => {
                for wr in wrs {
                    if self.real.post_send(qp, &wr).is_err() {
                        let (mut nic, mut path) = self.both();
                        nic.wrs.remove(&wr.wr_id);
                        if let Some(cmd) = path.cmds.get_mut(&id) {
                            cmd.orphan_discarding();
                        }
                        drop(path);
                        drop(nic);
                        self.try_retire(id);
                        return;
                    }
                }
            }
        }
    }

    /// Drops a command that can no longer be answered.
    pub(crate) fn abort_cmd(self: &Arc<Self>, id: u64) {
        if let Some(cmd) = self.path().cmds.get_mut(&id) {
            cmd.orphan();
        }
        self.try_retire(id);
    }

    /// Frees a command's staging space and response buffer once nothing uses them.
    pub(crate) fn try_retire(self: &Arc<Self>, id: u64) {
        let srq = {
            let mut path = self.path();
            let cmd = match path.cmds.entry(id) {
                Entry::Occupied(e) if e.get().retirable() => e.remove(),
                _ => return,
            };
            let Some(srq_state) = path.nvmf.get_mut(&cmd.srq) else {
                return;
            };
            if let Some(offset) = cmd.staging {
                srq_state.staging.free(offset, cmd.len);
            }
            if let Some(slot) = cmd.resp_slot {
                srq_state.resp_free.push(slot);
            }
            srq_state.waiting.retain(|w| *w != id);
            cmd.srq
        };
        self.pump_waiting(srq);
    }

    /// Starts the commands waiting for staging space, in order, while they fit.
    pub(crate) fn pump_waiting(self: &Arc<Self>, srq: SrqHandle) {
        while let Some(next) = self.pop_from_srq(srq, |s| s.waiting.pop_front()) {
            self.start(next);
            let mut path = self.path();
            let Some(srq_state) = path.nvmf.get_mut(&srq) else {
                return;
            };
            // Still no room (`start` queued it again, at the back): it goes back to the head
            // of the line and the pump stops until the next retire. (Looking only at the
            // front spun forever once two commands waited: found on soft-RoCE, where a
            // host's reads really are in flight together.)
            if let Some(pos) = srq_state.waiting.iter().position(|w| *w == next) {
                srq_state.waiting.remove(pos);
                srq_state.waiting.push_front(next);
                return;
            }
        }
    }

    /// What `pop` takes from the state of NVMe-oF SRQ `srq` (`None` once the SRQ is gone),
    /// under the data path's lock.
    pub(crate) fn pop_from_srq<T>(
        &self,
        srq: SrqHandle,
        pop: impl FnOnce(&mut OffloadSrq) -> Option<T>,
    ) -> Option<T> {
        self.path().nvmf.get_mut(&srq).and_then(pop)
    }
}

/// Whether a command's data flows from the host to the target.
fn is_inbound(sqe: &SqeRepr) -> bool {
    matches!(
        sqe.command,
        SqeCommand::Write(_) | SqeCommand::DatasetManagement(_)
    )
}
