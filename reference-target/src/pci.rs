//! The emulated PCIe bus between the offload engine (the NIC) and the backend NVMe
//! controllers: software attaches each controller it created; the engine finds the
//! controller a `create_nvme_ctrl` call names by its SQ-tail doorbell address, as a NIC
//! would reach the device behind a doorbell BAR address.
//!
//! The engine talks to a controller through [`BackendPort`] and finds it through a
//! [`BackendBus`]:
//!
//! - in-process, [`PciBus`] is the bus and [`BackendController`] the port;
//! - in a plugin (`reference-target/plugin`, the engine built as a `cdylib`), the
//!   controllers stay in the host: [`HostBus`] reaches them through the host's
//!   [`PciHost`] (`struct nvmf_pci_ops`), reads and writes their rings itself through the
//!   plugin's own device context, and notices their completions and PCI errors by polling.
//!
//! [`PciBus`] is also the host side of that: it implements [`PciHost`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use harness::fabric::{DeviceContext, FabricError, MrId};
use harness::plugin::{PciFunction, PciHost, PciQueue, PciSpan, PciState, PciStatus};
use nix::errno::Errno;

use crate::backend::{
    BackendController, BackendError, CqReader, CtrlState, Doorbells, Span, SqWriter,
};

/// What the engine uses of a backend controller.
#[async_trait]
pub trait BackendPort: Send + Sync {
    /// Entries of every queue.
    fn depth(&self) -> u16;
    /// Number of SQs.
    fn sq_count(&self) -> usize;
    /// A producer for SQ `sq` (at its initial tail); `None` for an unknown SQ.
    fn sq_writer(&self, sq: usize) -> Option<SqWriter>;
    /// A consumer of the CQ (at its initial head, phase 1).
    fn cq_reader(&self) -> CqReader;
    /// Running, or in PCI error.
    fn state(&self) -> CtrlState;
    /// Returns when the controller may have posted a completion or changed state since the
    /// previous call (spurious returns are allowed).
    async fn wait_activity(&self);
    /// The in-process controller behind the port, if it is one (fault injection).
    fn controller(self: Arc<Self>) -> Option<Arc<BackendController>> {
        None
    }
}

/// Where the engine finds backend controllers.
pub trait BackendBus: Send + Sync {
    /// The controller whose first SQ-tail doorbell is at (`mr`, virtual address `addr`).
    fn find_port(&self, mr: MrId, addr: u64) -> Option<Arc<dyn BackendPort>>;
}

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
    next_id: Mutex<u64>,
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
        let id = {
            let mut n = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        self.lock().insert((mr, addr), (id, ctrl));
    }

    /// Removes the controller at that doorbell, if any.
    pub fn detach(&self, mr: MrId, addr: u64) -> Option<Arc<BackendController>> {
        self.lock().remove(&(mr, addr)).map(|(_, c)| c)
    }

    /// Removes every controller (a stopping target's).
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

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(MrId, u64), Slot>> {
        self.ctrls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl BackendBus for PciBus {
    fn find_port(&self, mr: MrId, addr: u64) -> Option<Arc<dyn BackendPort>> {
        self.find(mr, addr).map(|c| c as Arc<dyn BackendPort>)
    }
}

fn pci_span(s: &Span) -> PciSpan {
    PciSpan {
        mr: s.mr,
        offset: s.offset,
        len: s.len,
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
                    ring: pci_span(&s.ring),
                    doorbell: pci_span(&s.doorbell),
                    initial: s.tail_ini,
                })
                .collect(),
            cq: PciQueue {
                ring: pci_span(&cfg.cq_ring),
                doorbell: pci_span(&cfg.cq_doorbell),
                initial: cfg.cq_head_ini,
            },
        })
    }

    fn ring_sq(&self, id: u64, sq: u32, tail: u16) -> Result<(), Errno> {
        self.by_id(id)?
            .ring_sq_doorbell(sq as usize, tail)
            .map_err(|e| backend_errno(&e))
    }

    fn ring_cq(&self, id: u64, head: u16) -> Result<(), Errno> {
        self.by_id(id)?
            .ring_cq_doorbell(head)
            .map_err(|e| backend_errno(&e))
    }

    fn status(&self, id: u64) -> Result<PciStatus, Errno> {
        let c = self.by_id(id)?;
        Ok(PciStatus {
            state: match c.state() {
                CtrlState::Running => PciState::Running,
                CtrlState::PciError => PciState::Error,
            },
            completions: c.counters().completions,
        })
    }
}

/// How often a [`HostBus`] port looks at its controller's status while the engine waits.
pub const HOST_POLL: Duration = Duration::from_millis(1);

/// The host's controllers seen from a plugin (see the module docs). `ctx` is the device
/// context the rings' memory regions belong to (the plugin's own).
pub struct HostBus {
    host: Arc<dyn PciHost>,
    ctx: Arc<dyn DeviceContext>,
}

impl HostBus {
    /// A bus over the host's PCI side, reading and writing rings through `ctx`.
    pub fn new(host: Arc<dyn PciHost>, ctx: Arc<dyn DeviceContext>) -> Arc<HostBus> {
        Arc::new(HostBus { host, ctx })
    }
}

impl BackendBus for HostBus {
    fn find_port(&self, mr: MrId, addr: u64) -> Option<Arc<dyn BackendPort>> {
        let f = self.host.find(mr, addr)?;
        let seen = self.host.status(f.id).ok();
        Some(Arc::new(HostPort {
            bells: Arc::new(HostBells {
                host: self.host.clone(),
                id: f.id,
            }),
            ctx: self.ctx.clone(),
            f,
            seen: Mutex::new(seen),
        }))
    }
}

struct HostBells {
    host: Arc<dyn PciHost>,
    id: u64,
}

fn pci_err(call: &'static str, errno: Errno) -> BackendError {
    BackendError::Fabric(FabricError::Os { call, errno })
}

impl Doorbells for HostBells {
    fn ring_sq(&self, sq: usize, tail: u16) -> Result<(), BackendError> {
        let sq = u32::try_from(sq).map_err(|_| BackendError::Config("no such SQ"))?;
        self.host
            .ring_sq(self.id, sq, tail)
            .map_err(|e| pci_err("nvmf_pci_ops.ring_sq", e))
    }

    fn ring_cq(&self, head: u16) -> Result<(), BackendError> {
        self.host
            .ring_cq(self.id, head)
            .map_err(|e| pci_err("nvmf_pci_ops.ring_cq", e))
    }
}

struct HostPort {
    bells: Arc<HostBells>,
    ctx: Arc<dyn DeviceContext>,
    f: PciFunction,
    seen: Mutex<Option<PciStatus>>,
}

fn span(s: &PciSpan) -> Span {
    Span {
        mr: s.mr,
        offset: s.offset,
        len: s.len,
    }
}

#[async_trait]
impl BackendPort for HostPort {
    fn depth(&self) -> u16 {
        self.f.depth
    }

    fn sq_count(&self) -> usize {
        self.f.sqs.len()
    }

    fn sq_writer(&self, sq: usize) -> Option<SqWriter> {
        let q = self.f.sqs.get(sq)?;
        Some(SqWriter::new(
            self.ctx.clone(),
            span(&q.ring),
            self.f.depth,
            sq,
            q.initial,
            self.bells.clone(),
        ))
    }

    fn cq_reader(&self) -> CqReader {
        CqReader::new(
            self.ctx.clone(),
            span(&self.f.cq.ring),
            self.f.depth,
            self.f.cq.initial,
            self.bells.clone(),
        )
    }

    fn state(&self) -> CtrlState {
        match self.bells.host.status(self.f.id) {
            Ok(PciStatus {
                state: PciState::Running,
                ..
            }) => CtrlState::Running,
            // An error, or a controller the host no longer has.
            _ => CtrlState::PciError,
        }
    }

    async fn wait_activity(&self) {
        loop {
            let now = self.bells.host.status(self.f.id).ok();
            {
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                if *seen != now {
                    *seen = now;
                    return;
                }
            }
            tokio::time::sleep(HOST_POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use harness::fabric::sim::SimFabric;
    use harness::fabric::{Access, Fabric};
    use harness::wire::SqeCommand;

    use super::*;
    use crate::backend::{backend_sqe, ControllerConfig, Fault, LbaFormat, Namespace, SqConfig};

    /// A controller of depth 8 on sim0, attached to a bus.
    fn rig() -> (
        Arc<dyn DeviceContext>,
        Arc<PciBus>,
        Arc<BackendController>,
        MrId,
        u64,
    ) {
        let ctx = SimFabric::new(1).open("sim0").unwrap();
        let pd = ctx.alloc_pd().unwrap();
        let m = ctx.reg_mr(pd, 4096, Access::LOCAL_WRITE).unwrap();
        let cfg = ControllerConfig {
            depth: 8,
            sqs: vec![SqConfig {
                ring: Span::new(&m, 0, 8 * 64),
                doorbell: Span::new(&m, 1024, 4),
                tail_ini: 0,
            }],
            cq_ring: Span::new(&m, 2048, 8 * 16),
            cq_doorbell: Span::new(&m, 1028, 4),
            cq_head_ini: 0,
            dma: vec![],
        };
        let c = Arc::new(BackendController::spawn(ctx.clone(), cfg).unwrap());
        c.add_namespace(Namespace::ram(1, LbaFormat::L4096, 8).unwrap())
            .unwrap();
        let bus = PciBus::new();
        bus.attach(m.id, m.addr + 1024, c.clone());
        (ctx, bus, c, m.id, m.addr + 1024)
    }

    #[tokio::test(start_paused = true)]
    async fn pci_bus_is_a_pci_host() {
        let (ctx, bus, c, mr, sqdb) = rig();
        let host: &dyn PciHost = bus.as_ref();
        let f = host.find(mr, sqdb).expect("found");
        assert_eq!(f.depth, 8);
        assert_eq!(f.sqs.len(), 1);
        assert_eq!(f.sqs[0].doorbell.offset, 1024);
        assert_eq!(f.cq.ring.offset, 2048);
        assert_eq!(host.find(mr, sqdb + 4), None);
        let s = host.status(f.id).unwrap();
        assert_eq!((s.state, s.completions), (PciState::Running, 0));
        assert_eq!(host.status(f.id + 100), Err(Errno::ENODEV));
        assert_eq!(host.ring_sq(f.id, 5, 0), Err(Errno::EINVAL));
        assert_eq!(host.ring_cq(f.id + 100, 0), Err(Errno::ENODEV));

        // The engine's view through the host side: write a flush, ring, see its CQE.
        let hb = HostBus::new(bus.clone() as Arc<dyn PciHost>, ctx.clone());
        let port = hb.find_port(mr, sqdb).expect("port");
        assert_eq!((port.depth(), port.sq_count()), (8, 1));
        assert!(port.clone().controller().is_none());
        let mut w = port.sq_writer(0).unwrap();
        w.submit(&backend_sqe(3, 1, SqeCommand::Flush, 0)).unwrap();
        tokio::time::timeout(Duration::from_secs(1), port.wait_activity())
            .await
            .expect("the completion is noticed");
        let mut r = port.cq_reader();
        let cqe = r.poll().unwrap().expect("a CQE");
        assert_eq!(cqe.cid, 3);
        r.release().unwrap();
        assert_eq!(host.status(f.id).unwrap().completions, 1);

        c.inject(Fault::PciError).unwrap();
        tokio::time::timeout(Duration::from_secs(1), port.wait_activity())
            .await
            .expect("the PCI error is noticed");
        assert_eq!(port.state(), CtrlState::PciError);
        assert_eq!(host.status(f.id).unwrap().state, PciState::Error);

        // In-process, the bus hands out the controller itself.
        let local = bus.find_port(mr, sqdb).unwrap();
        assert!(local.controller().is_some());
    }
}
