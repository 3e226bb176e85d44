//! An orderly stop ([`Target::stop`]): no new connections, every queue closed, then every
//! object the target made on the device given back, in the order the offload API allows
//! (namespace mappings, backend controllers, the NVMe-oF SRQ, memory regions, the
//! protection domain), so that the device is as it was before the target started and the
//! next target can build them all again. A device that refuses a call is not a reason to
//! stop early: the stop goes on and reports every refusal.

use std::time::Duration;

use tokio::time::Instant;

use super::state::Shared;
use super::target::{release_backends, Target, RELEASE_BOUND};

/// How often the stop looks whether the queues and the engine are done.
const POLL: Duration = Duration::from_millis(10);

impl Target {
    /// Stops the target and gives the device back everything the target made on it (see
    /// the module docs); waits for the queues to close and for the engine's commands in
    /// flight, each within [`RELEASE_BOUND`]. Returns the calls the device refused, each
    /// naming the object and the errno (empty when everything went back), and what did
    /// not finish in time.
    pub async fn stop(mut self) -> Vec<String> {
        let sh = self.shared().clone();
        for l in sh.listeners.keys() {
            let _ = sh.ctx.cm_close_listener(*l);
        }
        let mut problems = Vec::new();
        self.disconnect_all();
        let deadline = Instant::now() + RELEASE_BOUND;
        let open = wait_until(deadline, || sh.lock().conns.len()).await;
        if open != 0 {
            problems.push(format!(
                "{open} queue(s) still open after {RELEASE_BOUND:?}"
            ));
        }
        if let Some(e) = &sh.engine {
            let left = wait_until(deadline, || e.commands_in_flight()).await;
            if left != 0 {
                problems.push(format!(
                    "{left} offloaded command(s) still in flight after {RELEASE_BOUND:?}"
                ));
            }
        }
        self.abort_tasks();
        give_back(&sh, &mut problems);
        release_backends(&sh);
        self.released = true;
        sh.log(format!("target-stopped problems={}", problems.len()));
        problems
    }
}

/// Waits until `left()` is 0 or `deadline` passes; returns what is left.
async fn wait_until(deadline: Instant, left: impl Fn() -> usize) -> usize {
    loop {
        let n = left();
        if n == 0 || Instant::now() >= deadline {
            return n;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every subsystem's objects on the device, last made first; refusals go to `problems`.
fn give_back(sh: &Shared, problems: &mut Vec<String>) {
    for (i, s) in sh.subs.iter().enumerate() {
        let (slot, offline) = {
            let mut st = sh.lock();
            let offline: Vec<u32> = st
                .ns_offline
                .keys()
                .filter(|(sub, _)| *sub == i)
                .map(|(_, nsid)| *nsid)
                .collect();
            (st.backends.remove(&i), offline)
        };
        if let Some(slot) = slot {
            if let Some(ctrl) = slot.ctrl {
                // An offline namespace was unmapped when it went offline.
                for n in s
                    .cfg
                    .namespaces
                    .iter()
                    .filter(|n| !offline.contains(&n.nsid))
                {
                    let r = sh.provider.unmap_nsid(ctrl, n.nsid);
                    note(problems, || format!("unmap_nsid({ctrl}, {})", n.nsid), r);
                }
                let r = sh.provider.remove_nvme_ctrl(s.srq.handle, ctrl);
                note(problems, || format!("remove_nvme_ctrl({ctrl})"), r);
            }
            sh.bus.detach(slot.attrs.sqdb.mr, slot.attrs.sqdb.addr);
            sh.bus.detach_port(slot.attrs.sqdb.mr, slot.attrs.sqdb.addr);
            if let Some(real) = &s.real {
                real.detach_engine();
            }
            drop(slot.backend);
            let r = sh.ctx.dereg_mr(slot.rings.id);
            note(
                problems,
                || format!("dereg_mr(backend rings of `{}`)", s.cfg.nqn),
                r,
            );
        }
        let r = sh.provider.destroy_srq(s.srq.handle);
        note(problems, || format!("destroy_srq({})", s.srq.handle), r);
        for (mr, what) in [
            (s.recv_mr.id, "receive buffers"),
            (s.staging_mr.id, "staging buffer"),
        ] {
            let r = sh.ctx.dereg_mr(mr);
            note(
                problems,
                || format!("dereg_mr({what} of `{}`)", s.cfg.nqn),
                r,
            );
        }
        let r = sh.ctx.dealloc_pd(s.pd);
        note(problems, || format!("dealloc_pd(pd of `{}`)", s.cfg.nqn), r);
    }
}

/// Adds `what: error` to `problems` when the device refused the call.
fn note<E: std::fmt::Display>(
    problems: &mut Vec<String>,
    what: impl FnOnce() -> String,
    r: Result<(), E>,
) {
    if let Err(e) = r {
        problems.push(format!("{}: {e}", what()));
    }
}
