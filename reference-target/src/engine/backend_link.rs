//! The engine's side of a backend controller: submitting commands to its SQs
//! (round-robin), reaping its CQ, command timeouts and PCI errors.
//!
//! Decisions where the RFC is silent:
//! - a command whose backend controller hit a **PCI error**, or that was in flight when it
//!   happened, is answered with **Internal Error (0/06h), DNR clear**: the host may retry,
//!   the target may recover the controller;
//! - a command the backend does not complete within the controller's `cmd_timeout`
//!   raises `NVME_TIMEOUT` and is answered with **Internal Error (0/06h), DNR clear**; its
//!   staging space stays reserved until the backend completes it late or the controller is
//!   removed (the backend may still DMA into it).

use std::sync::{Arc, Weak};

use harness::api::{CtrlHandle, OffloadEvent};
use harness::wire::{SqeRepr, Status};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::Core;
use crate::quirks::Quirk;
use harness::backend::round_robin;
use harness::backend::BackendPort;
use harness::backend::CtrlState;

impl Core {
    /// Submits an offloaded command to its backend controller, or queues it when every SQ
    /// is full; answers at once when the controller is dead.
    pub(crate) fn submit_backend(self: &Arc<Self>, id: u64) {
        let dead = {
            let mut path = self.path();
            let path = &mut *path;
            let Some(cmd) = path.cmds.get_mut(&id) else {
                return;
            };
            match path.ctrls.get_mut(&cmd.ctrl) {
                None => true,
                Some(ctrl) if ctrl.dead => true,
                Some(ctrl) => {
                    let limit = ctrl.depth.saturating_sub(1);
                    let nsq = ctrl.writers.len();
                    let sq = round_robin::order(ctrl.rr, nsq)
                        .find(|i| ctrl.outstanding_per_sq[*i] < limit);
                    match (sq, ctrl.free_cids.pop()) {
                        (Some(sq), Some(cid)) => {
                            ctrl.rr = round_robin::after(sq, nsq);
                            let srq_state = &path.nvmf[&cmd.srq];
                            let addr = cmd.staging.map_or(0, |s| {
                                srq_state.staging_mr.addr + srq_state.staging_base + s
                            });
                            let sqe = ctrl.backend.prps(cid, addr, cmd.len).map(|(p1, p2)| {
                                SqeRepr::with_prps(cid, cmd.nvme_nsid, cmd.sqe.command, p1, p2)
                            });
                            if sqe.and_then(|s| ctrl.writers[sq].submit(&s)).is_err() {
                                ctrl.free_cids.push(cid);
                                true
                            } else {
                                ctrl.outstanding_per_sq[sq] += 1;
                                ctrl.inflight.insert(cid, (id, sq));
                                cmd.submitted(cid, Instant::now() + ctrl.timeout);
                                ctrl.kick.notify_one();
                                false
                            }
                        }
                        (_, cid) => {
                            if let Some(cid) = cid {
                                ctrl.free_cids.push(cid);
                            }
                            ctrl.queued.push_back(id);
                            false
                        }
                    }
                }
            }
        };
        if dead {
            self.fail_unanswered(id, Status::INTERNAL_ERROR);
        }
    }

    /// Answers a command with an error status from the backend side.
    fn fail_unanswered(self: &Arc<Self>, id: u64, status: Status) {
        if let Some(cmd) = self.path().cmds.get_mut(&id) {
            cmd.backend_done(true);
        }
        self.on_backend_done(id, status);
    }

    /// Reaps completions, detects the PCI error and expired commands of one controller.
    pub(crate) fn reap(self: &Arc<Self>, handle: CtrlHandle) {
        let pci_error = {
            let path = self.path();
            match path.ctrls.get(&handle) {
                Some(c) => !c.dead && c.backend.state() == CtrlState::PciError,
                None => return,
            }
        };
        if pci_error {
            self.on_pci_error(handle);
            return;
        }
        let mut done = Vec::new();
        let mut expired = Vec::new();
        {
            let mut path = self.path();
            let path = &mut *path;
            let Some(ctrl) = path.ctrls.get_mut(&handle) else {
                return;
            };
            let stuck = self.quirks.has(Quirk::CqPhaseStuck);
            loop {
                if stuck && ctrl.reaped >= u64::from(ctrl.depth) {
                    break; // the quirk never sees entries past the first wrap
                }
                let Ok(Some(cqe)) = ctrl.reader.poll() else {
                    break;
                };
                ctrl.reaped += 1;
                if let Some((id, sq)) = ctrl.inflight.remove(&cqe.cid) {
                    ctrl.outstanding_per_sq[sq] -= 1;
                    ctrl.free_cids.push(cqe.cid);
                    let late = ctrl.abandoned.remove(&cqe.cid);
                    done.push((id, cqe.status, late));
                }
            }
            let _ = ctrl.reader.release();
            let now = Instant::now();
            for (&cid, &(id, _)) in &ctrl.inflight {
                if ctrl.abandoned.contains(&cid) {
                    continue;
                }
                if let Some(cmd) = path.cmds.get(&id) {
                    if cmd.deadline().is_some_and(|d| d <= now) {
                        expired.push((cid, id));
                    }
                }
            }
            let ctrl = path.ctrls.get_mut(&handle).expect("present");
            for (cid, _) in &expired {
                ctrl.abandoned.insert(*cid);
            }
            for (_, id) in &expired {
                if let Some(cmd) = path.cmds.get_mut(id) {
                    cmd.deadline_passed();
                }
            }
        }
        for (id, status, late) in done {
            if late {
                if let Some(cmd) = self.path().cmds.get_mut(&id) {
                    cmd.backend_done(false);
                }
                self.try_retire(id);
            } else {
                self.on_backend_done(id, status);
            }
        }
        for (cid, id) in expired {
            if self.quirks.has(Quirk::NoTimeoutEvent) {
                continue;
            }
            self.events.push(OffloadEvent::NvmeTimeout {
                ctrl: handle,
                sqid: None,
                cid: Some(cid),
            });
            if let Some(cmd) = self.path().cmds.get_mut(&id) {
                cmd.backend_failed = true;
            }
            // Still in the backend (it may DMA late): answer, keep the staging.
            self.answer_while_in_backend(id, Status::INTERNAL_ERROR);
        }
        self.pump_queued(handle);
    }

    fn answer_while_in_backend(self: &Arc<Self>, id: u64, status: Status) {
        let deliver = false;
        self.respond(id, status, deliver);
    }

    /// Starts commands queued for a free SQ slot.
    pub(crate) fn pump_queued(self: &Arc<Self>, handle: CtrlHandle) {
        loop {
            let next = {
                let mut path = self.path();
                let Some(ctrl) = path.ctrls.get_mut(&handle) else {
                    return;
                };
                let room = ctrl.dead
                    || (!ctrl.free_cids.is_empty()
                        && ctrl
                            .outstanding_per_sq
                            .iter()
                            .any(|o| *o < ctrl.depth.saturating_sub(1)));
                if !room {
                    return;
                }
                match ctrl.queued.pop_front() {
                    Some(id) => id,
                    None => return,
                }
            };
            self.submit_backend(next);
        }
    }

    /// A controller hit a PCI error: event, and every command on it answered.
    pub(crate) fn on_pci_error(self: &Arc<Self>, handle: CtrlHandle) {
        let victims: Vec<u64> = {
            let mut path = self.path();
            let Some(ctrl) = path.ctrls.get_mut(&handle) else {
                return;
            };
            if ctrl.dead {
                return;
            }
            ctrl.dead = true;
            let mut v: Vec<u64> = ctrl.inflight.values().map(|(id, _)| *id).collect();
            v.extend(ctrl.queued.drain(..));
            ctrl.inflight.clear();
            v
        };
        if !self.quirks.has(Quirk::NoPciErrEvent) {
            self.events.push(OffloadEvent::NvmePciErr { ctrl: handle });
        }
        for id in victims {
            if self.quirks.has(Quirk::LoseInflightOnPciErr) {
                if let Some(cmd) = self.path().cmds.get_mut(&id) {
                    cmd.backend_done(false);
                    cmd.orphan();
                }
                self.try_retire(id);
            } else {
                self.fail_unanswered(id, Status::INTERNAL_ERROR);
            }
        }
    }

    /// Every command of a controller being removed is answered (Aborted due to SQ
    /// Deletion) and released.
    pub(crate) fn drop_ctrl_commands(self: &Arc<Self>, handle: CtrlHandle) {
        let ids: Vec<u64> = {
            let path = self.path();
            path.cmds
                .iter()
                .filter(|(_, c)| c.ctrl == handle)
                .map(|(id, _)| *id)
                .collect()
        };
        for id in ids {
            self.fail_unanswered(id, Status::ABORTED_SQ_DELETION);
        }
    }
}

/// The reaper of one controller: wakes on a completion, a state change or the earliest
/// command deadline, and lets the engine reap.
pub(crate) async fn reaper(
    core: Weak<Core>,
    handle: CtrlHandle,
    backend: Arc<dyn BackendPort>,
    kick: Arc<Notify>,
) {
    loop {
        let deadline = {
            let Some(core) = core.upgrade() else { return };
            let path = core.path();
            let Some(ctrl) = path.ctrls.get(&handle) else {
                return;
            };
            ctrl.inflight
                .values()
                .filter_map(|(id, _)| path.cmds.get(id).and_then(|c| c.deadline()))
                .min()
        };
        tokio::select! {
            biased;
            _ = backend.wait_activity() => {}
            _ = kick.notified() => {}
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
        }
        let Some(core) = core.upgrade() else { return };
        core.reap(handle);
    }
}
