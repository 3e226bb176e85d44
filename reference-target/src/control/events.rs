//! Reactions to offload events (`next_event`), as the shipped kernel target reacts:
//!
//! - `NVME_PCI_ERR { ctrl }`: stop offloading to that controller — unmap its namespaces,
//!   remove it from the SRQ, detach it from the bus. Its namespaces go **offline**: later
//!   I/O to them reaches software (unmapped nsid) and is answered 0/82h Namespace Not
//!   Ready with DNR. Commands the engine had in flight were already answered by the
//!   engine (Internal Error, DNR clear).
//! - `NVME_TIMEOUT { ctrl, .. }`: abort, release and re-create the controller — unmap,
//!   remove (the engine answers what is still in flight on it with 0/08h Aborted due to
//!   SQ Deletion), detach; then a fresh backend controller (new rings) takes over the
//!   namespaces (their data is kept), is attached, created and mapped again. Events for
//!   a controller already replaced are logged as stale.
//! - On a **real controller** (a `vfio` backend) the reactions differ where the hardware
//!   does: after `NVME_PCI_ERR` the namespaces go offline, the controller is reset and
//!   brought up again (`RealController::recover`), the engine's queue pair is created
//!   anew and the namespaces come back (`ctrl-recovered`); after `NVME_TIMEOUT` the
//!   namespaces are unmapped and offline (`ctrl-quarantined`) until the controller has
//!   finished every command the engine gave it — a command cannot be taken back from a
//!   real controller, which may still move its data — then the queue pair is re-created
//!   and they come back (`ctrl-recreated`); a controller that never finishes within
//!   [`QUARANTINE_BOUND`] is reset as after a PCI error.
//! - `UNSUPPORTED_NVMF_OP` and every other event: logged.
//!
//! Every event is kept ([`super::Target::offload_events`]) and logged as
//! `offload-event <NAME> ...` in the target event log ([`super::Target::events`]).

use std::sync::Arc;

use harness::api::{CtrlHandle, OffloadEvent};
use harness::backend::emulated::BackendController;

use super::state::{Shared, IDLE_TICK};

/// Longest a real controller's timed-out commands are waited for before it is reset.
pub const QUARANTINE_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits for offload events and reacts to each, for as long as the target runs.
pub(crate) async fn event_loop(sh: Arc<Shared>) {
    loop {
        let Ok(ev) = tokio::time::timeout(IDLE_TICK, sh.provider.next_event()).await else {
            continue;
        };
        on_event(&sh, ev);
    }
}

/// The subsystem whose current backend controller is `ctrl`.
fn sub_of(sh: &Shared, ctrl: CtrlHandle) -> Option<usize> {
    sh.lock()
        .backends
        .iter()
        .find(|(_, b)| b.ctrl == Some(ctrl))
        .map(|(i, _)| *i)
}

pub(crate) fn on_event(sh: &Arc<Shared>, ev: OffloadEvent) {
    sh.log(format!("offload-event {} {ev:?}", ev.name()));
    sh.record_offload_event(ev.clone());
    match ev {
        OffloadEvent::NvmePciErr { ctrl } => match sub_of(sh, ctrl) {
            Some(sub) if sh.subs[sub].real.is_some() => {
                release(sh, sub, ctrl, "pci-error");
                let sh2 = sh.clone();
                sh.spawn(async move { recover_real(&sh2, sub, ctrl).await });
            }
            Some(sub) => release(sh, sub, ctrl, "pci-error"),
            None => sh.log(format!("stale-event NVME_PCI_ERR {ctrl}")),
        },
        OffloadEvent::NvmeTimeout { ctrl, .. } => match sub_of(sh, ctrl) {
            Some(sub) if sh.subs[sub].real.is_some() => quarantine_real(sh, sub, ctrl),
            Some(sub) => recreate(sh, sub, ctrl),
            None => sh.log(format!("stale-event NVME_TIMEOUT {ctrl}")),
        },
        _ => {}
    }
}

/// Unmaps every namespace of `ctrl` and removes it from the engine and the bus.
fn unplug(sh: &Shared, sub: usize, ctrl: CtrlHandle) {
    let s = &sh.subs[sub];
    for n in &s.cfg.namespaces {
        let _ = sh.provider.unmap_nsid(ctrl, n.nsid);
    }
    if let Err(e) = sh.provider.remove_nvme_ctrl(s.srq.handle, ctrl) {
        sh.log(format!(
            "remove-nvme-ctrl-failed {ctrl} errno={}",
            e.errno()
        ));
    }
    if let Some(b) = sh.lock().backends.get(&sub) {
        sh.bus.detach(b.attrs.sqdb.mr, b.attrs.sqdb.addr);
        sh.bus.detach_port(b.attrs.sqdb.mr, b.attrs.sqdb.addr);
    }
    if let Some(real) = &s.real {
        if let Some(why) = real.why_stopped() {
            sh.log(format!(
                "real-controller-stopped {} {ctrl}: {why}",
                real.address()
            ));
        }
        real.detach_engine();
    }
}

fn release(sh: &Shared, sub: usize, ctrl: CtrlHandle, why: &'static str) {
    unplug(sh, sub, ctrl);
    let mut st = sh.lock();
    if let Some(b) = st.backends.get_mut(&sub) {
        b.ctrl = None;
    }
    for n in &sh.subs[sub].cfg.namespaces {
        st.ns_offline.insert((sub, n.nsid), why);
    }
    drop(st);
    sh.log(format!(
        "ctrl-released subsystem={} {ctrl} reason={why} namespaces-offline={:?}",
        sh.subs[sub].cfg.nqn,
        sh.subs[sub]
            .cfg
            .namespaces
            .iter()
            .map(|n| n.nsid)
            .collect::<Vec<_>>()
    ));
}

fn recreate(sh: &Shared, sub: usize, ctrl: CtrlHandle) {
    unplug(sh, sub, ctrl);
    let old = {
        let st = sh.lock();
        match st.backends.get(&sub).and_then(|b| b.backend.emulated()) {
            Some(c) => c.clone(),
            None => return,
        }
    };
    rebuild(
        sh,
        sub,
        ctrl,
        Some(&old),
        ("ctrl-recreated", "ctrl-recreate-failed"),
    );
}

/// A new backend controller (or, on a real controller, a new engine queue pair) for
/// subsystem `sub`, taking over the namespaces of `emulated` when given, in place of `old`:
/// its namespaces mapped and online again. `(done, failed)` name the outcome in the log;
/// when it fails the namespaces stay offline.
fn rebuild(
    sh: &Shared,
    sub: usize,
    old: CtrlHandle,
    emulated: Option<&BackendController>,
    (done, failed): (&str, &str),
) {
    let generation = sh.lock().backends.get(&sub).map_or(1, |b| b.generation + 1);
    match sh.build_backend(sub, emulated, generation) {
        Ok(slot) => {
            let new = slot.ctrl;
            let old_slot = {
                let mut st = sh.lock();
                for n in &sh.subs[sub].cfg.namespaces {
                    st.ns_offline.remove(&(sub, n.nsid));
                }
                st.backends.insert(sub, slot)
            };
            if let Some(o) = old_slot {
                drop(o.backend);
                let _ = sh.ctx.dereg_mr(o.rings.id);
            }
            sh.log(format!(
                "{done} subsystem={} old={old} new={} generation={generation}",
                sh.subs[sub].cfg.nqn,
                new.map_or("-".to_string(), |c| c.to_string())
            ));
        }
        Err(e) => {
            {
                let mut st = sh.lock();
                if let Some(b) = st.backends.get_mut(&sub) {
                    b.ctrl = None;
                }
                for n in &sh.subs[sub].cfg.namespaces {
                    st.ns_offline.insert((sub, n.nsid), "re-creation failed");
                }
            }
            sh.log(format!("{failed} {old}: {e}"));
        }
    }
}

/// A real controller's command timed out: stop offloading to it (namespaces unmapped and
/// offline) and wait until it has finished every command the engine gave it; then a fresh
/// queue pair takes over. See the module docs.
fn quarantine_real(sh: &Arc<Shared>, sub: usize, ctrl: CtrlHandle) {
    {
        let mut st = sh.lock();
        for n in &sh.subs[sub].cfg.namespaces {
            st.ns_offline.insert((sub, n.nsid), "timeout");
        }
    }
    for n in &sh.subs[sub].cfg.namespaces {
        let _ = sh.provider.unmap_nsid(ctrl, n.nsid);
    }
    sh.log(format!(
        "ctrl-quarantined subsystem={} {ctrl}: waiting for the controller to finish the timed-out command(s)",
        sh.subs[sub].cfg.nqn
    ));
    let sh2 = sh.clone();
    sh.spawn(async move {
        let deadline = tokio::time::Instant::now() + QUARANTINE_BOUND;
        let drained = loop {
            let left = sh2.engine.as_ref().map_or(0, |e| e.commands_in_flight());
            if left == 0 {
                break true;
            }
            if sub_of(&sh2, ctrl).is_none() || tokio::time::Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        if sub_of(&sh2, ctrl).is_none() {
            return; // released meanwhile (a PCI error): that path recovers it
        }
        if drained {
            unplug(&sh2, sub, ctrl);
            rebuild(&sh2, sub, ctrl, None, ("ctrl-recreated", "ctrl-recreate-failed"));
        } else {
            sh2.log(format!(
                "ctrl-quarantine-expired {ctrl}: commands still at the controller after {} s; resetting it",
                QUARANTINE_BOUND.as_secs()
            ));
            release(&sh2, sub, ctrl, "timeout");
            recover_real(&sh2, sub, ctrl).await;
        }
    });
}

/// Resets subsystem `sub`'s real controller (released after a PCI error) and attaches the
/// engine to it again.
async fn recover_real(sh: &Arc<Shared>, sub: usize, ctrl: CtrlHandle) {
    let Some(real) = sh.subs[sub].real.clone() else {
        return;
    };
    let reset = tokio::task::spawn_blocking(move || real.recover()).await;
    match reset {
        Ok(Ok(())) => rebuild(
            sh,
            sub,
            ctrl,
            None,
            ("ctrl-recovered", "ctrl-recover-failed"),
        ),
        Ok(Err(e)) => sh.log(format!("ctrl-recover-failed {ctrl}: {e}")),
        Err(e) => sh.log(format!("ctrl-recover-failed {ctrl}: {e}")),
    }
}
