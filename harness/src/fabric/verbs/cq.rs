//! Completion queues, each with its own completion channel; `wait_cq` awaits the
//! channel's descriptor with tokio's `AsyncFd` (arm, poll, then wait: no lost wake-up).
//!
//! Completions polled from the device while waiting are kept, in order, in front of the
//! device's queue, so `wait_cq` can tell "the CQ holds a completion" without losing it.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::io::unix::AsyncFd;

use super::{os, raw, VerbsContext};
use crate::fabric::{CqId, FabricError, Result, WorkCompletion};

pub(super) struct CqObj {
    pub cq: raw::Cq,
    pub afd: Arc<AsyncFd<OwnedFd>>,
    pub buffered: VecDeque<WorkCompletion>,
}

impl VerbsContext {
    pub(super) fn create_cq_impl(&self, cqe: u32) -> Result<CqId> {
        if cqe == 0 || cqe > self.attr.max_cqe {
            return Err(FabricError::Invalid("create_cq: cqe 0 or above max_cqe"));
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            FabricError::NotSupported("verbs: create_cq needs a tokio runtime with I/O enabled")
        })?;
        let cq = raw::Cq::create(&self.ctx, i32::try_from(cqe).unwrap_or(i32::MAX))
            .map_err(|e| os("ibv_create_cq", e))?;
        let afd = {
            let _g = handle.enter();
            raw::watch(cq.channel_fd()).map_err(|e| os("AsyncFd(comp channel)", io(e)))?
        };
        let mut s = self.lock();
        let id = CqId(s.alloc_id());
        s.cqs.insert(
            id,
            CqObj {
                cq,
                afd: Arc::new(afd),
                buffered: VecDeque::new(),
            },
        );
        Ok(id)
    }

    pub(super) fn destroy_cq_impl(&self, cq: CqId) -> Result<()> {
        let mut s = self.lock();
        if !s.cqs.contains_key(&cq) {
            return Err(FabricError::NotFound("cq"));
        }
        if s.qps.values().any(|q| q.send_cq == cq || q.recv_cq == cq) {
            return Err(FabricError::Busy("destroy_cq: a QP uses it"));
        }
        let obj = s.cqs.get_mut(&cq).expect("checked");
        obj.cq.destroy().map_err(|e| os("ibv_destroy_cq", e))?;
        s.cqs.remove(&cq);
        Ok(())
    }

    pub(super) fn poll_cq_impl(&self, cq: CqId, max: usize) -> Result<Vec<WorkCompletion>> {
        let mut s = self.lock();
        if !s.cqs.contains_key(&cq) {
            return Err(FabricError::NotFound("cq"));
        }
        let mut out = Vec::new();
        {
            let obj = s.cqs.get_mut(&cq).expect("checked");
            while out.len() < max {
                match obj.buffered.pop_front() {
                    Some(wc) => out.push(wc),
                    None => break,
                }
            }
        }
        if out.len() < max {
            let raw = s.cqs[&cq]
                .cq
                .poll(max - out.len())
                .map_err(|e| os("ibv_poll_cq", e))?;
            for r in raw {
                out.push(Self::translate(&mut s, r));
            }
        }
        Ok(out)
    }

    pub(super) async fn wait_cq_impl(&self, cq: CqId) -> Result<()> {
        loop {
            let afd = {
                let mut s = self.lock();
                let obj = s.cqs.get(&cq).ok_or(FabricError::NotFound("cq"))?;
                if !obj.buffered.is_empty() {
                    return Ok(());
                }
                obj.cq
                    .req_notify()
                    .map_err(|e| os("ibv_req_notify_cq", e))?;
                let raw = obj.cq.poll(64).map_err(|e| os("ibv_poll_cq", e))?;
                if !raw.is_empty() {
                    let wcs: Vec<_> = raw
                        .into_iter()
                        .map(|r| Self::translate(&mut s, r))
                        .collect();
                    s.cqs.get_mut(&cq).expect("checked").buffered.extend(wcs);
                    return Ok(());
                }
                obj.afd.clone()
            };
            let mut guard = afd
                .readable()
                .await
                .map_err(|e| os("poll(comp channel)", io(e)))?;
            {
                let s = self.lock();
                if let Some(obj) = s.cqs.get(&cq) {
                    obj.cq.drain_events();
                } else {
                    return Err(FabricError::NotFound("cq"));
                }
            }
            guard.clear_ready();
        }
    }
}

pub(super) fn io(e: std::io::Error) -> nix::errno::Errno {
    e.raw_os_error()
        .map_or(nix::errno::Errno::EIO, nix::errno::Errno::from_raw)
}
