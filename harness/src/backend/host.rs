//! [`HostBus`]: the host's controllers seen from inside a plugin (`reference-target/plugin`,
//! the engine built as a `cdylib`). The controllers stay in the host process: the bus
//! reaches them through the host's [`PciHost`] (`struct nvmf_pci_ops`), reads and writes
//! their rings itself through the plugin's own device context, and notices their
//! completions and PCI errors by polling.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nix::errno::Errno;

use crate::backend::{
    BackendBus, BackendError, BackendPort, CqReader, CtrlState, Doorbells, PciFunction, PciHost,
    PciState, PciStatus, SqWriter,
};
use crate::fabric::{DeviceContext, FabricError, MrId};

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
            q.ring,
            self.f.depth,
            sq,
            q.initial,
            self.bells.clone(),
        ))
    }

    fn cq_reader(&self) -> CqReader {
        CqReader::new(
            self.ctx.clone(),
            self.f.cq.ring,
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

    use crate::fabric::sim::SimFabric;
    use crate::fabric::{Access, Fabric};
    use crate::wire::SqeCommand;

    use super::*;
    use crate::backend::emulated::{
        backend_sqe, BackendController, ControllerConfig, Fault, LbaFormat, Namespace, PciBus,
        SqConfig,
    };
    use crate::backend::Span;

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
