//! The simulated fabric: an in-process, deterministic RDMA network.
//!
//! Devices (default `sim0` at 127.0.10.1 and `sim1` at 127.0.10.2, one port each) carry
//! RC queue pairs that behave as libibverbs describes: the QP state machine, local and
//! remote key/bounds/rights checks, RNR and transport retries, flush on error, SRQ limit
//! and CQ overflow events, and an RDMA-CM-like connection manager with private data.
//!
//! Time is virtual, in nanoseconds: tokio's paused clock, which the fabric moves itself to
//! its next event whenever the runtime is idle (on a runtime from [`runtime`]; see
//! [`clock`](self::clock)), so a 30-second timeout costs nothing and a packet costs no
//! timer. Every packet gets the wire's latency ([`SimLink`]: 2 µs by default) plus a jitter
//! drawn from the seed plus its serialisation at the link's rate, so the interleaving of two
//! QPs — and with it every trace — is a function of the seed alone. Each QP keeps RC order.

mod clock;
mod cm;
mod context;
mod net;
mod tap;
mod transport;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use clock::runtime;
use clock::IdleHook;
pub use context::SimContext;
pub use net::SimLink;
use net::{Ctx, Device, Net, Timed};
pub use tap::{AckKind, PacketTap, TapCm, TapCmKind, TapMessage, TapOp, TapPacket};

use super::{AsyncEvent, DeviceAttr, DeviceContext, Fabric, FabricError, Fault, PortState, Result};

/// Address of the default device `sim0`.
pub const SIM0_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 1);
/// Address of the default device `sim1`.
pub const SIM1_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 2);

/// The limits every simulated device reports and enforces.
pub fn default_device_attr(name: &str) -> DeviceAttr {
    DeviceAttr {
        name: name.to_string(),
        phys_port_cnt: 1,
        max_qp: 4096,
        max_qp_wr: 16384,
        max_sge: 16,
        max_cq: 4096,
        max_cqe: 65536,
        max_mr: 65536,
        max_mr_size: 1 << 30,
        max_pd: 1024,
        max_srq: 1024,
        max_srq_wr: 16384,
        max_qp_rd_atom: 16,
    }
}

/// State shared by the fabric, its contexts and the packet pump.
pub(crate) struct Shared {
    net: Mutex<Net>,
    pump: Notify,
    /// Whether the pump waits for the runtime to go idle, and for which event.
    idle: clock::IdleWait,
}

impl Shared {
    /// Runs `f` on the network, then wakes whoever its changes concern.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Net) -> R) -> R {
        let (r, wakes) = {
            let mut net = self.net.lock().unwrap_or_else(|p| p.into_inner());
            let r = f(&mut net);
            (r, net.take_wakes())
        };
        for w in wakes {
            w.notify_waiters();
        }
        self.pump.notify_one();
        r
    }
}

/// Owns the pump task: dropped with the last fabric or context handle.
pub(crate) struct Inner {
    pub(crate) shared: Arc<Shared>,
    pump: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// A simulated RDMA network of devices; see the module docs.
pub struct SimFabric {
    inner: Arc<Inner>,
}

impl SimFabric {
    /// A network with devices `sim0` and `sim1`, every random choice drawn from `seed`.
    /// Must be called inside a tokio runtime (it spawns the packet pump).
    pub fn new(seed: u64) -> Arc<SimFabric> {
        SimFabric::with_devices(seed, &[("sim0", SIM0_ADDR), ("sim1", SIM1_ADDR)])
    }

    /// A network with the given devices (name, IPv4 address) and the default wire.
    pub fn with_devices(seed: u64, devices: &[(&str, Ipv4Addr)]) -> Arc<SimFabric> {
        SimFabric::with_link(seed, devices, SimLink::default())
    }

    /// A network with the given devices and wire.
    pub fn with_link(seed: u64, devices: &[(&str, Ipv4Addr)], link: SimLink) -> Arc<SimFabric> {
        let devices = devices
            .iter()
            .map(|(name, addr)| Device {
                attr: default_device_attr(name),
                addr: *addr,
                port_state: PortState::Active,
                qpns: Default::default(),
                rkeys: Default::default(),
                contexts: Vec::new(),
            })
            .collect();
        let shared = Arc::new(Shared {
            net: Mutex::new(Net::new(seed, devices, link)),
            pump: Notify::new(),
            idle: clock::IdleWait::default(),
        });
        let hook = IdleHook::current();
        if let Some(h) = &hook {
            h.register(&shared);
        }
        let pump = tokio::spawn(pump(shared.clone(), hook));
        Arc::new(SimFabric {
            inner: Arc::new(Inner { shared, pump }),
        })
    }

    /// Installs (or, with `None`, removes) the observer of every message on the wire;
    /// see [`PacketTap`]. Does not change what the fabric does.
    pub fn set_tap(&self, tap: Option<Arc<dyn PacketTap>>) {
        self.inner
            .shared
            .net
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tap = tap;
    }
}

impl Fabric for SimFabric {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn devices(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .shared
            .with(|n| n.devices.iter().map(|d| d.attr.name.clone()).collect()))
    }

    fn open(&self, device: &str) -> Result<Arc<dyn DeviceContext>> {
        let ctx = self.inner.shared.with(|n| {
            let dev = n
                .devices
                .iter()
                .position(|d| d.attr.name == device)
                .ok_or_else(|| FabricError::NoDevice(device.to_string()))?;
            n.ctxs.push(Ctx::new(dev));
            let ctx = n.ctxs.len() - 1;
            n.devices[dev].contexts.push(ctx);
            Ok::<_, FabricError>(ctx)
        })?;
        Ok(Arc::new(SimContext {
            inner: self.inner.clone(),
            ctx,
        }))
    }

    fn inject(&self, fault: Fault) -> Result<()> {
        self.inner.shared.with(|n| n.inject(fault))
    }
}

impl Net {
    fn inject(&mut self, fault: Fault) -> Result<()> {
        match fault {
            Fault::Link { addr, up } => {
                let dev = self
                    .device_by_addr(addr)
                    .ok_or(FabricError::Invalid("fault: no device has that address"))?;
                let state = if up {
                    PortState::Active
                } else {
                    PortState::Down
                };
                if self.devices[dev].port_state != state {
                    self.devices[dev].port_state = state;
                    let ev = if up {
                        AsyncEvent::PortActive(1)
                    } else {
                        AsyncEvent::PortErr(1)
                    };
                    for c in self.devices[dev].contexts.clone() {
                        self.push_event(c, ev.clone());
                    }
                }
            }
            Fault::QpError { addr, qpn } => {
                let (c, qp) = self.qp_by_addr(addr, qpn)?;
                self.push_event(c, AsyncEvent::QpFatal(qp));
                self.qp_to_err(c, qp);
            }
            Fault::Delay(d) => self.extra_delay = d,
            Fault::DropConnection { addr, qpn } => {
                let (c, qp) = self.qp_by_addr(addr, qpn)?;
                let dev = self.ctxs[c].device;
                self.dropped.push((dev, qpn));
                if let Some(dest) = self.ctxs[c].qps[&qp].dest {
                    if let Some(pd) = self.device_by_gid(&dest.gid) {
                        self.dropped.push((pd, dest.qpn));
                    }
                }
            }
        }
        Ok(())
    }

    fn qp_by_addr(&self, addr: Ipv4Addr, qpn: u32) -> Result<(usize, super::QpId)> {
        let dev = self
            .device_by_addr(addr)
            .ok_or(FabricError::Invalid("fault: no device has that address"))?;
        self.devices[dev]
            .qpns
            .get(&qpn)
            .copied()
            .ok_or(FabricError::NotFound("fault: no QP with that number"))
    }

    /// Runs one due event, if any; returns the time of the next one otherwise.
    fn step(&mut self, now: Instant) -> Result<(), Option<Instant>> {
        match self.queue.peek() {
            Some(e) if e.at <= now => {}
            Some(e) => return Err(Some(e.at)),
            None => return Err(None),
        }
        let ev = self.queue.pop().expect("peeked");
        match ev.what {
            Timed::Arrive { ctx, qp, seq } => self.on_arrive(ctx, qp, seq),
            Timed::Ack { ctx, qp, seq } => self.on_ack(ctx, qp, seq),
            Timed::CmRequest { ctx, conn, addr } => self.on_cm_request(ctx, conn, addr),
            Timed::CmDeliver { ctx, event } => self.push_cm_event(ctx, event),
            Timed::CmRtu { ctx, conn } => self.on_cm_rtu(ctx, conn),
            Timed::CmDisconnect { ctx, conn } => self.on_cm_disconnect(ctx, conn),
        }
        Ok(())
    }
}

/// Delivers scheduled events when their time comes: on a runtime with the idle hook, by
/// moving the network's clock to the next one when the runtime is idle (see [`clock`]);
/// without it, on a tokio timer.
async fn pump(shared: Arc<Shared>, hook: Option<Arc<IdleHook>>) {
    loop {
        let notified = shared.pump.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = loop {
            let (r, wakes) = {
                let mut net = shared.net.lock().unwrap_or_else(|p| p.into_inner());
                let now = net.now();
                let r = net.step(now);
                (r, net.take_wakes())
            };
            for w in wakes {
                w.notify_waiters();
            }
            if let Err(next) = r {
                break next;
            }
        };
        match (next, &hook) {
            (Some(at), Some(hook)) => {
                hook.wait_for_idle(&shared.idle, at);
                notified.await;
                if hook.stop_waiting(&shared.idle) {
                    let now = Instant::now();
                    let tick = clock::next_tick(hook.origin(), now);
                    // The event comes before tokio's next tick: only the network's clock
                    // moves. Otherwise tokio's moves to that tick first, firing its timers.
                    let before_tick = {
                        let mut net = shared.net.lock().unwrap_or_else(|p| p.into_inner());
                        match net.queue.peek().map(|e| e.at) {
                            Some(at) if at < tick => {
                                net.clock = net.clock.max(at);
                                true
                            }
                            Some(_) => false,
                            None => true,
                        }
                    };
                    if !before_tick {
                        tokio::time::advance(tick - now).await;
                    }
                }
            }
            (Some(at), None) => {
                tokio::select! {
                    biased;
                    _ = &mut notified => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            (None, _) => notified.await,
        }
    }
}
