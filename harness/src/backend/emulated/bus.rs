//! [`PciBus`]: the emulated controllers a process created, reachable by their first
//! SQ-tail doorbell (as a NIC reaches the device behind a doorbell BAR address). It is the
//! engine's [`BackendBus`] in-process and the host side ([`PciHost`]) of a plugin's PCI
//! calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nix::errno::Errno;

use super::config::{ControllerConfig, DmaRegion, MemoryConfig};
use super::controller::BackendController;
use crate::api::NvmeCtrlAttrs;
use crate::backend::memory::{MemoryBar, BAR_LEN};
use crate::backend::{
    BackendAccess, BackendBus, BackendError, BackendPort, CqReader, CtrlState, DoorbellMode,
    PciDoorbells, PciFunction, PciHost, PciQueue, PciState, PciStatus, SqWriter,
};
use crate::fabric::{Access, DeviceContext, MrId, MrInfo, PdId};

#[async_trait]
impl BackendPort for BackendController {
    fn depth(&self) -> u16 {
        BackendController::depth(self)
    }

    fn sq_count(&self) -> usize {
        self.config().sqs.len()
    }

    fn sq_writer(&self, sq: usize) -> Option<SqWriter> {
        BackendController::sq_writer(self, sq)
    }

    fn cq_reader(&self) -> CqReader {
        BackendController::cq_reader(self)
    }

    fn state(&self) -> CtrlState {
        BackendController::state(self)
    }

    async fn wait_activity(&self) {
        // A PCI error also signals "posted" (see `Inner::fail`); the watch is belt and
        // braces.
        let mut state = self.watch_state();
        tokio::select! {
            biased;
            _ = self.wait_completion() => {}
            _ = state.changed() => {}
        }
    }

    fn controller(self: Arc<Self>) -> Option<Arc<BackendController>> {
        Some(self)
    }
}

type Slot = (u64, Arc<BackendController>);

/// Controllers reachable by the engine, keyed by their first SQ-tail doorbell.
#[derive(Default)]
pub struct PciBus {
    ctrls: Mutex<BTreeMap<(MrId, u64), Slot>>,
    /// Ports of controllers that are not emulated (a real one through VFIO): reachable by
    /// the engine, not through [`PciHost`].
    ports: Mutex<BTreeMap<(MrId, u64), Arc<dyn BackendPort>>>,
    next_id: Mutex<u64>,
    /// Memory doorbells: where BAR regions are registered, and the device's access.
    memory: Mutex<Option<(Arc<dyn DeviceContext>, BackendAccess)>>,
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

    /// Gives every controller [`PciBus::spawn`] makes from now on the doorbells `access`
    /// asks for: with [`DoorbellMode::Memory`], a BAR region registered through `ctx`
    /// (the device's own context, so that the registration is the backend's, not a call
    /// of the software under test) and `access`'s PRP window.
    pub fn use_access(&self, ctx: Arc<dyn DeviceContext>, access: BackendAccess) {
        *self.memory.lock().unwrap_or_else(|p| p.into_inner()) =
            (access.doorbells == DoorbellMode::Memory).then_some((ctx, access));
    }

    /// Starts an emulated controller for `attrs` (queues of `depth` entries in the
    /// regions `mrs`, DMA to `dma`) on `ctx`. In memory-doorbell mode
    /// ([`PciBus::use_access`]) it first registers a BAR region on `pd` and moves `attrs`'
    /// doorbells into it. The caller adds namespaces and [`PciBus::attach`]es it.
    pub fn spawn(
        &self,
        ctx: Arc<dyn DeviceContext>,
        pd: PdId,
        attrs: &mut NvmeCtrlAttrs,
        depth: u16,
        mrs: &[MrInfo],
        dma: Vec<DmaRegion>,
    ) -> Result<BackendController, BackendError> {
        let memory = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some((bar_ctx, access)) = memory else {
            let cfg =
                ControllerConfig::from_attrs(attrs, depth, crate::api::check::mr_table(mrs), dma)?;
            return BackendController::spawn(ctx, cfg);
        };
        let bar = MemoryBar {
            mr: bar_ctx.reg_mr(pd, BAR_LEN, Access::LOCAL_WRITE)?,
        };
        let started = (|| {
            bar.place(attrs);
            let mut all = mrs.to_vec();
            all.push(bar.mr);
            let mut cfg =
                ControllerConfig::from_attrs(attrs, depth, crate::api::check::mr_table(&all), dma)?;
            cfg.memory = Some(MemoryConfig {
                regs: bar.regs(),
                prp: access.prp,
            });
            BackendController::spawn(ctx, cfg)
        })();
        match started {
            Ok(c) => Ok(c.owning_bar(bar_ctx, bar.mr.id)),
            Err(e) => {
                let _ = bar_ctx.dereg_mr(bar.mr.id);
                Err(e)
            }
        }
    }

    /// Makes `ctrl` reachable at its SQ doorbell (`mr`, virtual address `addr`).
    pub fn attach(&self, mr: MrId, addr: u64, ctrl: Arc<BackendController>) {
        let id = {
            let mut n = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        self.lock().insert((mr, addr), (id, ctrl));
    }

    /// Makes a port that is not an emulated controller reachable at (`mr`, `addr`), the
    /// address that names its first SQ-tail doorbell.
    pub fn attach_port(&self, mr: MrId, addr: u64, port: Arc<dyn BackendPort>) {
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((mr, addr), port);
    }

    /// Removes the port at that address, if any.
    pub fn detach_port(&self, mr: MrId, addr: u64) -> Option<Arc<dyn BackendPort>> {
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(mr, addr))
    }

    /// Removes the controller at that doorbell, if any.
    pub fn detach(&self, mr: MrId, addr: u64) -> Option<Arc<BackendController>> {
        self.lock().remove(&(mr, addr)).map(|(_, c)| c)
    }

    /// Lets go of everything: removes every controller and every port of a real
    /// controller ([`PciBus::attach_port`]: a port holds the device context, and so the
    /// device, and its controller's device file), and forgets the device context memory
    /// doorbells were registered on ([`PciBus::use_access`]), which holds the device (whose
    /// PCI side is this bus) alive. For a device or target that ends.
    pub fn release(&self) -> Vec<Arc<BackendController>> {
        *self.memory.lock().unwrap_or_else(|p| p.into_inner()) = None;
        drop(std::mem::take(
            &mut *self.ports.lock().unwrap_or_else(|p| p.into_inner()),
        ));
        self.detach_all()
    }

    /// Removes every controller.
    pub fn detach_all(&self) -> Vec<Arc<BackendController>> {
        std::mem::take(&mut *self.lock())
            .into_values()
            .map(|(_, c)| c)
            .collect()
    }

    /// The controller behind a doorbell address.
    pub fn find(&self, mr: MrId, addr: u64) -> Option<Arc<BackendController>> {
        self.lock().get(&(mr, addr)).map(|(_, c)| c.clone())
    }

    fn by_id(&self, id: u64) -> Result<Arc<BackendController>, Errno> {
        self.lock()
            .values()
            .find(|(i, _)| *i == id)
            .map(|(_, c)| c.clone())
            .ok_or(Errno::ENODEV)
    }

    /// The controller `id` for a doorbell or status call: EPERM (and counted) when its
    /// doorbells are memory, which a device in memory mode never calls.
    fn by_id_calling(&self, id: u64) -> Result<Arc<BackendController>, Errno> {
        let c = self.by_id(id)?;
        if c.memory_doorbells() {
            c.refuse_call();
            return Err(Errno::EPERM);
        }
        Ok(c)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(MrId, u64), Slot>> {
        self.ctrls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl BackendBus for PciBus {
    fn find_port(&self, mr: MrId, addr: u64) -> Option<Arc<dyn BackendPort>> {
        match self.find(mr, addr) {
            Some(c) => Some(c as Arc<dyn BackendPort>),
            None => self
                .ports
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&(mr, addr))
                .cloned(),
        }
    }
}

fn backend_errno(e: &BackendError) -> Errno {
    match e {
        BackendError::Fabric(f) => f.errno(),
        BackendError::Config(_) => Errno::EINVAL,
        _ => Errno::EIO,
    }
}

impl PciHost for PciBus {
    fn find(&self, doorbell_mr: MrId, doorbell_addr: u64) -> Option<PciFunction> {
        let (id, c) = self.lock().get(&(doorbell_mr, doorbell_addr)).cloned()?;
        let cfg = c.config();
        Some(PciFunction {
            id,
            depth: cfg.depth,
            sqs: cfg
                .sqs
                .iter()
                .map(|s| PciQueue {
                    ring: s.ring,
                    doorbell: s.doorbell,
                    initial: s.tail_ini,
                })
                .collect(),
            cq: PciQueue {
                ring: cfg.cq_ring,
                doorbell: cfg.cq_doorbell,
                initial: cfg.cq_head_ini,
            },
        })
    }

    fn ring_sq(&self, id: u64, sq: u32, tail: u16) -> Result<(), Errno> {
        self.by_id_calling(id)?
            .ring_sq_doorbell(sq as usize, tail)
            .map_err(|e| backend_errno(&e))
    }

    fn ring_cq(&self, id: u64, head: u16) -> Result<(), Errno> {
        self.by_id_calling(id)?
            .ring_cq_doorbell(head)
            .map_err(|e| backend_errno(&e))
    }

    fn doorbells(&self, id: u64) -> Result<PciDoorbells, Errno> {
        Ok(match self.by_id(id)?.config().memory {
            Some(m) => PciDoorbells::Memory { regs: m.regs },
            None => PciDoorbells::Call,
        })
    }

    fn status(&self, id: u64) -> Result<PciStatus, Errno> {
        let c = self.by_id_calling(id)?;
        Ok(PciStatus {
            state: match c.state() {
                CtrlState::Running => PciState::Running,
                CtrlState::PciError => PciState::Error,
            },
            completions: c.counters().completions,
        })
    }
}
