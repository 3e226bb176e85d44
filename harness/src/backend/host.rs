//! [`HostBus`]: the host's controllers seen from inside a plugin (`reference-target/plugin`,
//! the engine built as a `cdylib`). The controllers stay in the host process: the bus
//! finds them through the host's [`PciHost`] (`struct nvmf_pci_ops`) and reads and writes
//! their rings itself through the plugin's own device context. It rings their doorbells
//! and notices their completions and PCI errors as the device's [`BackendAccess`] says:
//! through the host's calls (a software device), or, in memory-doorbell mode, as a NIC
//! does, by writing the doorbell words and polling the CQ's phase tags and CSTS in memory
//! ([`crate::backend::memory`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nix::errno::Errno;

use crate::backend::memory::{self, MemRegisters};
use crate::backend::regs;
use crate::backend::ring::write_u32;
use crate::backend::{
    BackendAccess, BackendBus, BackendError, BackendPort, CqReader, CtrlState, DoorbellMode,
    Doorbells, PciDoorbells, PciFunction, PciHost, PciSpan, PciState, PciStatus, Rings, SqWriter,
};
use crate::fabric::{DeviceContext, FabricError, MrId};

/// How often a [`HostBus`] port looks at its controller's status while the engine waits.
pub const HOST_POLL: Duration = Duration::from_millis(1);

/// The host's controllers seen from a plugin (see the module docs). `ctx` is the device
/// context the rings' memory regions belong to (the plugin's own).
pub struct HostBus {
    host: Arc<dyn PciHost>,
    ctx: Arc<dyn DeviceContext>,
    access: BackendAccess,
}

impl HostBus {
    /// A bus over the host's PCI side, reading and writing rings through `ctx`, ringing
    /// doorbells by calls.
    pub fn new(host: Arc<dyn PciHost>, ctx: Arc<dyn DeviceContext>) -> Arc<HostBus> {
        HostBus::with_access(host, ctx, BackendAccess::default())
    }

    /// A bus for a device that reaches controllers as `access` says.
    pub fn with_access(
        host: Arc<dyn PciHost>,
        ctx: Arc<dyn DeviceContext>,
        access: BackendAccess,
    ) -> Arc<HostBus> {
        Arc::new(HostBus { host, ctx, access })
    }
}

impl BackendBus for HostBus {
    fn find_port(&self, mr: MrId, addr: u64) -> Option<Arc<dyn BackendPort>> {
        let f = self.host.find(mr, addr)?;
        let watch = match (self.access.doorbells, self.host.doorbells(f.id)) {
            (DoorbellMode::Call, _) => Watch::Calls {
                host: self.host.clone(),
                id: f.id,
                seen: Mutex::new(self.host.status(f.id).ok()),
            },
            (DoorbellMode::Memory, Ok(PciDoorbells::Memory { regs })) => {
                let seen = Mutex::new(memory_view(self.ctx.as_ref(), &f, &regs));
                Watch::Memory { regs, seen }
            }
            (DoorbellMode::Memory, other) => {
                // A device that can only write memory cannot use this controller.
                tracing::warn!(id = f.id, ?other, "backend doorbells are not in memory");
                return None;
            }
        };
        let bells: Arc<dyn Doorbells> = match watch {
            Watch::Calls { .. } => Arc::new(CallBells {
                host: self.host.clone(),
                id: f.id,
            }),
            Watch::Memory { .. } => Arc::new(MemoryBells {
                ctx: self.ctx.clone(),
                sqs: f.sqs.iter().map(|q| q.doorbell).collect(),
                cq: f.cq.doorbell,
            }),
        };
        Some(Arc::new(HostPort {
            bells,
            ctx: self.ctx.clone(),
            f,
            watch,
            access: self.access,
        }))
    }
}

/// Doorbells rung by the host's calls.
struct CallBells {
    host: Arc<dyn PciHost>,
    id: u64,
}

fn pci_err(call: &'static str, errno: Errno) -> BackendError {
    BackendError::Fabric(FabricError::Os { call, errno })
}

impl Doorbells for CallBells {
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

/// Doorbells written in memory, as a NIC's posted writes.
struct MemoryBells {
    ctx: Arc<dyn DeviceContext>,
    sqs: Vec<PciSpan>,
    cq: PciSpan,
}

impl Doorbells for MemoryBells {
    fn ring_sq(&self, sq: usize, tail: u16) -> Result<(), BackendError> {
        let db = self.sqs.get(sq).ok_or(BackendError::Config("no such SQ"))?;
        write_u32(self.ctx.as_ref(), db, tail.into())
    }

    fn ring_cq(&self, head: u16) -> Result<(), BackendError> {
        write_u32(self.ctx.as_ref(), &self.cq, head.into())
    }
}

/// How a port notices activity.
enum Watch {
    /// The host's status calls: a new completion count or state.
    Calls {
        host: Arc<dyn PciHost>,
        id: u64,
        seen: Mutex<Option<PciStatus>>,
    },
    /// Memory: new bytes in the CQ ring (a posted entry) or a new CSTS.
    Memory {
        regs: PciSpan,
        seen: Mutex<MemoryView>,
    },
}

/// What a memory-doorbell port last saw: the CQ ring's bytes and the raw CSTS.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemoryView {
    cq: Option<Vec<u8>>,
    csts: u32,
}

fn memory_view(ctx: &dyn DeviceContext, f: &PciFunction, regs: &PciSpan) -> MemoryView {
    let mut cq = vec![0u8; f.cq.ring.len as usize];
    let cq = ctx
        .mr_read(f.cq.ring.mr, f.cq.ring.offset, &mut cq)
        .ok()
        .map(|()| cq);
    let (csts, _) = regs::csts(&MemRegisters { ctx, regs: *regs });
    MemoryView { cq, csts }
}

struct HostPort {
    bells: Arc<dyn Doorbells>,
    ctx: Arc<dyn DeviceContext>,
    f: PciFunction,
    watch: Watch,
    access: BackendAccess,
}

impl HostPort {
    /// The rings of the function's queues, through the host's context and doorbells.
    fn queues(&self) -> Rings {
        Rings::new(self.ctx.clone(), self.f.depth, self.bells.clone())
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
        Some(self.queues().sq_writer(sq, q.ring, q.initial))
    }

    fn cq_reader(&self) -> CqReader {
        self.queues().cq_reader(self.f.cq.ring, self.f.cq.initial)
    }

    fn state(&self) -> CtrlState {
        let running = match &self.watch {
            Watch::Calls { host, id, .. } => matches!(
                host.status(*id),
                Ok(PciStatus {
                    state: PciState::Running,
                    ..
                })
            ),
            Watch::Memory { regs, .. } => {
                let (raw, _) = regs::csts(&MemRegisters {
                    ctx: self.ctx.as_ref(),
                    regs: *regs,
                });
                !memory::csts_failed(raw)
            }
        };
        // Not running: an error, or a controller the host no longer has.
        if running {
            CtrlState::Running
        } else {
            CtrlState::PciError
        }
    }

    async fn wait_activity(&self) {
        loop {
            let changed = match &self.watch {
                Watch::Calls { host, id, seen } => {
                    let now = host.status(*id).ok();
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    std::mem::replace(&mut *seen, now) != now
                }
                Watch::Memory { regs, seen } => {
                    let now = memory_view(self.ctx.as_ref(), &self.f, regs);
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    std::mem::replace(&mut *seen, now.clone()) != now
                }
            };
            if changed {
                return;
            }
            tokio::time::sleep(HOST_POLL).await;
        }
    }

    fn prps(&self, _cid: u16, addr: u64, _len: u64) -> Result<(u64, u64), BackendError> {
        match self.access.prp {
            None => Ok((addr, 0)),
            Some(w) => w
                .to_bus(addr)
                .map(|bus| (bus, 0))
                .ok_or(BackendError::Config(
                    "staging buffer outside the PRP window",
                )),
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
            memory: None,
        };
        let c = Arc::new(BackendController::spawn(ctx.clone(), cfg).unwrap());
        c.add_namespace(Namespace::ram(1, LbaFormat::L4096, 8).unwrap())
            .unwrap();
        let bus = PciBus::new();
        bus.attach(m.id, m.addr + 1024, c.clone());
        (ctx, bus, c, m.id, m.addr + 1024)
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_bus_lets_go_of_its_ports() {
        // A port that is not an emulated controller (a real controller's holds its device
        // file and the device context): the bus must not keep it past `release`, or the
        // controller could never be opened again in this process.
        let (ctx, bus, _c, mr, sqdb) = rig();
        let hb = HostBus::new(bus.clone() as Arc<dyn PciHost>, ctx.clone());
        let port = hb.find_port(mr, sqdb).expect("port");
        bus.attach_port(mr, sqdb + 4096, port.clone());
        assert_eq!(Arc::strong_count(&port), 2);
        assert!(bus.find_port(mr, sqdb + 4096).is_some());
        assert_eq!(bus.release().len(), 1, "the emulated controller");
        assert_eq!(Arc::strong_count(&port), 1, "the bus still holds the port");
        assert!(bus.find_port(mr, sqdb + 4096).is_none());
        assert!(bus.find_port(mr, sqdb).is_none());
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

    /// A device in memory-doorbell mode: the host lays the controller's doorbells out as a
    /// BAR in a region of its own, refuses doorbell and status calls (counting them); the
    /// device writes the doorbells, sees its CQE and a PCI error in memory, and its PRPs
    /// are bus addresses through a window.
    #[tokio::test(start_paused = true)]
    async fn memory_doorbells_need_no_call() {
        use crate::api::MemRef;
        use crate::backend::emulated::DmaRegion;
        use crate::backend::{BackendAccess, DoorbellMode, PrpWindow};
        use crate::wire::NvmOpcode;

        let ctx = SimFabric::new(1).open("sim0").unwrap();
        let pd = ctx.alloc_pd().unwrap();
        let rings = ctx.reg_mr(pd, 4096, Access::LOCAL_WRITE).unwrap();
        let staging = ctx.reg_mr(pd, 8192, Access::LOCAL_WRITE).unwrap();
        let window = PrpWindow {
            bus: 1 << 56,
            va: 0,
            len: 1 << 56,
        };
        let access = BackendAccess {
            doorbells: DoorbellMode::Memory,
            prp: Some(window),
        };
        let bus = PciBus::new();
        bus.use_access(ctx.clone(), access);
        let mut attrs = crate::api::NvmeCtrlAttrs {
            sq_buf: MemRef::of(&rings, 0, 8 * 64),
            cq_buf: MemRef::of(&rings, 2048, 8 * 16),
            sqdb: MemRef::of(&rings, 1024, 4),
            cqdb: MemRef::of(&rings, 1028, 4),
            sqdb_ini: 0,
            cqdb_ini: 0,
            cmd_timeout_us: 0,
            extra_sqs: vec![],
        };
        let c = Arc::new(
            bus.spawn(
                ctx.clone(),
                pd,
                &mut attrs,
                8,
                &[rings, staging],
                vec![DmaRegion::whole(&staging)],
            )
            .unwrap(),
        );
        assert!(c.memory_doorbells());
        // The doorbells moved into a BAR region: sqdb at 1000h, cqdb at 1004h.
        assert_ne!(attrs.sqdb.mr, rings.id);
        assert_eq!(attrs.cqdb.mr, attrs.sqdb.mr);
        assert_eq!(attrs.cqdb.addr, attrs.sqdb.addr + 4);
        assert_eq!(attrs.sqdb.addr % 64, 0);
        c.add_namespace(Namespace::ram(1, LbaFormat::L4096, 8).unwrap())
            .unwrap();
        c.with_namespace(1, |ns| ns.write_blocks(3, &[0x5a; 4096]).unwrap())
            .unwrap();
        bus.attach(attrs.sqdb.mr, attrs.sqdb.addr, c.clone());

        let host: Arc<dyn PciHost> = bus.clone();
        let f = host.find(attrs.sqdb.mr, attrs.sqdb.addr).unwrap();
        let regs = match host.doorbells(f.id).unwrap() {
            PciDoorbells::Memory { regs } => regs,
            PciDoorbells::Call => panic!("memory doorbells expected"),
        };
        assert_eq!((regs.mr, regs.offset), (attrs.sqdb.mr, 0));
        assert_eq!(host.ring_sq(f.id, 0, 1), Err(Errno::EPERM));
        assert_eq!(host.status(f.id).map(|_| ()), Err(Errno::EPERM));
        assert_eq!(c.counters().doorbell_calls, 2);

        // A call-mode device cannot use it (its status call is refused and counted); a
        // memory-mode one can, and makes no call.
        let calls = HostBus::new(host.clone(), ctx.clone());
        let p = calls.find_port(attrs.sqdb.mr, attrs.sqdb.addr).unwrap();
        assert_eq!(c.counters().doorbell_calls, 3);
        assert_eq!(
            p.state(),
            CtrlState::PciError,
            "every status call is refused"
        );
        assert_eq!(c.counters().doorbell_calls, 4);
        let hb = HostBus::with_access(host.clone(), ctx.clone(), access);
        let port = hb.find_port(attrs.sqdb.mr, attrs.sqdb.addr).expect("port");
        assert_eq!(port.state(), CtrlState::Running);
        let (prp1, prp2) = port.prps(0, staging.addr, 4096).unwrap();
        assert_eq!((prp1, prp2), (staging.addr + (1 << 56), 0));
        let read = crate::wire::RwCommand {
            slba: 3,
            ..Default::default()
        };
        let sqe = backend_sqe(7, 1, SqeCommand::Read(read), prp1);
        assert_eq!(sqe.opcode(), NvmOpcode::Read as u8);
        let mut w = port.sq_writer(0).unwrap();
        w.submit(&sqe).unwrap();
        tokio::time::timeout(Duration::from_secs(1), port.wait_activity())
            .await
            .expect("the completion is noticed in memory");
        let mut r = port.cq_reader();
        let cqe = r.poll().unwrap().expect("a CQE");
        assert_eq!((cqe.cid, cqe.status.is_success()), (7, true));
        r.release().unwrap();
        let mut data = [0u8; 4096];
        ctx.mr_read(staging.id, 0, &mut data).unwrap();
        assert_eq!(data, [0x5a; 4096], "read through the PRP window");

        c.inject(Fault::PciError).unwrap();
        tokio::time::timeout(Duration::from_secs(1), port.wait_activity())
            .await
            .expect("the PCI error is noticed in memory");
        assert_eq!(port.state(), CtrlState::PciError);
        let counters = c.counters();
        assert_eq!((counters.doorbell_calls, counters.completions), (4, 1));
    }
}
