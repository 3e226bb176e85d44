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
//! - `UNSUPPORTED_NVMF_OP` and every other event: logged.
//!
//! Every event is kept ([`super::Target::offload_events`]) and logged as
//! `offload-event <NAME> ...` in the target event log ([`super::Target::events`]).

use std::sync::Arc;

use harness::api::{CtrlHandle, OffloadEvent};

use super::state::{Shared, IDLE_TICK};

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

pub(crate) fn on_event(sh: &Shared, ev: OffloadEvent) {
    sh.log(format!("offload-event {} {ev:?}", ev.name()));
    sh.record_offload_event(ev.clone());
    match ev {
        OffloadEvent::NvmePciErr { ctrl } => match sub_of(sh, ctrl) {
            Some(sub) => release(sh, sub, ctrl, "pci-error"),
            None => sh.log(format!("stale-event NVME_PCI_ERR {ctrl}")),
        },
        OffloadEvent::NvmeTimeout { ctrl, .. } => match sub_of(sh, ctrl) {
            // Re-creating a real controller's queues under a stalled command is not built:
            // its namespaces go offline, as after a PCI error.
            Some(sub) if sh.subs[sub].real.is_some() => release(sh, sub, ctrl, "timeout"),
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
    let (old, generation) = {
        let st = sh.lock();
        match st.backends.get(&sub) {
            Some(b) => match b.backend.emulated() {
                Some(c) => (c.clone(), b.generation + 1),
                None => return,
            },
            None => return,
        }
    };
    match sh.build_backend(sub, Some(&old), generation) {
        Ok(slot) => {
            let new = slot.ctrl;
            let old_slot = sh.lock().backends.insert(sub, slot);
            if let Some(o) = old_slot {
                drop(o.backend);
                let _ = sh.ctx.dereg_mr(o.rings.id);
            }
            sh.log(format!(
                "ctrl-recreated subsystem={} old={ctrl} new={} generation={generation}",
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
            sh.log(format!("ctrl-recreate-failed {ctrl}: {e}"));
        }
    }
}
