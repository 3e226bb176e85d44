//! The emulated PCIe bus between the offload engine (the NIC) and the backend NVMe
//! controllers: software attaches each controller it created; the engine finds the
//! controller a `create_nvme_ctrl` call names by its SQ-tail doorbell address, as a NIC
//! would reach the device behind a doorbell BAR address.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use harness::fabric::MrId;

use crate::backend::BackendController;

/// Controllers reachable by the engine, keyed by their first SQ-tail doorbell.
#[derive(Default)]
pub struct PciBus {
    ctrls: Mutex<BTreeMap<(MrId, u64), Arc<BackendController>>>,
}

impl std::fmt::Debug for PciBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.ctrls.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("PciBus").field("controllers", &n).finish()
    }
}

impl PciBus {
    /// An empty bus.
    pub fn new() -> Arc<PciBus> {
        Arc::new(PciBus::default())
    }

    /// Makes `ctrl` reachable at its SQ doorbell (`mr`, virtual address `addr`).
    pub fn attach(&self, mr: MrId, addr: u64, ctrl: Arc<BackendController>) {
        self.lock().insert((mr, addr), ctrl);
    }

    /// Removes the controller at that doorbell, if any.
    pub fn detach(&self, mr: MrId, addr: u64) -> Option<Arc<BackendController>> {
        self.lock().remove(&(mr, addr))
    }

    /// The controller behind a doorbell address.
    pub fn find(&self, mr: MrId, addr: u64) -> Option<Arc<BackendController>> {
        self.lock().get(&(mr, addr)).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(MrId, u64), Arc<BackendController>>> {
        self.ctrls.lock().unwrap_or_else(|p| p.into_inner())
    }
}
