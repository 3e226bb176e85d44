//! The simulated network's state: devices, contexts, verbs objects and the timed event queue.
//!
//! Everything lives behind one mutex; maps are `BTreeMap` so that iteration order, and with
//! it every trace, depends only on the seed.

use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::tap::{PacketTap, TapMessage, TapPacket};
use crate::fabric::{
    Access, AsyncEvent, CmEvent, ConnId, ConnParam, CqId, DeviceAttr, Gid, ListenerId, MrId, PdId,
    PortState, QpDest, QpId, QpState, RecvWr, SendWr, SrqId, WorkCompletion,
};

/// The simulated wire. The default looks like a 100 Gb/s RoCE link inside one rack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimLink {
    /// One-way latency of a packet (default 2 µs).
    pub latency: Duration,
    /// Largest random addition to a packet's latency, drawn from the seed (default 500 ns).
    pub jitter: Duration,
    /// Serialisation rate in bits per second: a packet's payload adds its length at this
    /// rate to its latency (default 100 Gb/s, 0.08 ns per byte).
    pub bits_per_sec: u64,
}

impl Default for SimLink {
    fn default() -> SimLink {
        SimLink {
            latency: Duration::from_micros(2),
            jitter: Duration::from_nanos(500),
            bits_per_sec: 100_000_000_000,
        }
    }
}

impl SimLink {
    /// Time to put `bytes` on the wire.
    pub fn serialisation(&self, bytes: u64) -> Duration {
        if self.bits_per_sec == 0 {
            return Duration::ZERO;
        }
        let ns = u128::from(bytes) * 8 * 1_000_000_000 / u128::from(self.bits_per_sec);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }
}
/// Delay before a sender retries after an RNR NAK.
pub(crate) const RNR_TIMER: Duration = Duration::from_micros(640);
/// Local ACK timeout before a transport retry.
pub(crate) const ACK_TIMEOUT: Duration = Duration::from_millis(8);

/// A device of the network.
pub(crate) struct Device {
    pub attr: DeviceAttr,
    pub addr: Ipv4Addr,
    pub port_state: PortState,
    /// qpn → owning context and handle.
    pub qpns: BTreeMap<u32, (usize, QpId)>,
    /// rkey → owning context and region (valid for remote access).
    pub rkeys: BTreeMap<u32, (usize, MrId)>,
    /// Contexts opened on this device.
    pub contexts: Vec<usize>,
}

impl Device {
    pub fn gid(&self) -> Gid {
        Gid::from_ipv4(self.addr)
    }
}

pub(crate) struct Pd;

pub(crate) struct Mr {
    pub pd: PdId,
    pub addr: u64,
    pub lkey: u32,
    pub rkey: u32,
    pub access: Access,
    pub data: Vec<u8>,
    /// Cleared by a peer's SEND with invalidate: remote access refused from then on.
    pub remote_valid: bool,
}

#[derive(Default)]
pub(crate) struct Cq {
    pub cqe: u32,
    pub entries: VecDeque<WorkCompletion>,
    pub overrun: bool,
    pub notify: Arc<Notify>,
}

pub(crate) struct Srq {
    pub pd: PdId,
    pub max_wr: u32,
    pub max_sge: u32,
    pub limit: u32,
    pub queue: VecDeque<RecvWr>,
}

/// A posted send request and where it stands.
pub(crate) struct PendingSend {
    pub seq: u64,
    pub wr: SendWr,
    /// Attempts left after RNR NAKs (7 = forever).
    pub rnr_left: u8,
    /// Transport retries left after lost packets.
    pub retry_left: u8,
    /// Data an RDMA READ fetched, scattered locally when its response arrives.
    pub read_data: Option<Vec<u8>>,
}

pub(crate) struct Qp {
    pub pd: PdId,
    pub qpn: u32,
    pub send_cq: CqId,
    pub recv_cq: CqId,
    pub srq: Option<SrqId>,
    pub cap: crate::fabric::QpCap,
    pub state: QpState,
    pub access: Access,
    pub dest: Option<QpDest>,
    pub retry_cnt: u8,
    pub rnr_retry: u8,
    pub sq: VecDeque<PendingSend>,
    /// Whether the head of `sq` has an event in flight.
    pub head_in_flight: bool,
    pub rq: VecDeque<RecvWr>,
    pub comm_est_sent: bool,
    /// Time before which no packet of this QP may arrive (keeps RC order under jitter).
    pub last_arrival: Instant,
}

pub(crate) struct Listener {
    pub addr: SocketAddr,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ConnState {
    /// Active side: request sent, waiting for the answer.
    Connecting,
    /// Passive side: request received, not yet answered.
    RequestReceived,
    /// Passive side: accepted, waiting for the RTU.
    Accepted,
    Established,
    Disconnected,
    Rejected,
}

pub(crate) struct Conn {
    pub state: ConnState,
    pub qp: Option<QpId>,
    pub peer: Option<(usize, ConnId)>,
    pub local: SocketAddr,
    pub param: ConnParam,
}

/// One opened device context and everything it created.
pub(crate) struct Ctx {
    pub device: usize,
    pub next_id: u32,
    pub pds: BTreeMap<PdId, Pd>,
    pub mrs: BTreeMap<MrId, Mr>,
    pub cqs: BTreeMap<CqId, Cq>,
    pub srqs: BTreeMap<SrqId, Srq>,
    pub qps: BTreeMap<QpId, Qp>,
    pub listeners: BTreeMap<ListenerId, Listener>,
    pub conns: BTreeMap<ConnId, Conn>,
    pub async_events: VecDeque<AsyncEvent>,
    pub cm_events: VecDeque<CmEvent>,
    pub notify: Arc<Notify>,
    pub closed: bool,
}

impl Ctx {
    pub fn new(device: usize) -> Ctx {
        Ctx {
            device,
            next_id: 0,
            pds: BTreeMap::new(),
            mrs: BTreeMap::new(),
            cqs: BTreeMap::new(),
            srqs: BTreeMap::new(),
            qps: BTreeMap::new(),
            listeners: BTreeMap::new(),
            conns: BTreeMap::new(),
            async_events: VecDeque::new(),
            cm_events: VecDeque::new(),
            notify: Arc::new(Notify::new()),
            closed: false,
        }
    }

    pub fn alloc_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

/// What the event queue can hold.
#[derive(Debug)]
pub(crate) enum Timed {
    /// The head send request of a QP reaches its peer.
    Arrive { ctx: usize, qp: QpId, seq: u64 },
    /// The head send request's acknowledgement (and READ data) reaches the sender.
    Ack { ctx: usize, qp: QpId, seq: u64 },
    /// A connect request reaches the listener's device.
    CmRequest {
        ctx: usize,
        conn: ConnId,
        addr: SocketAddr,
    },
    /// A CM event is delivered to a context.
    CmDeliver { ctx: usize, event: CmEvent },
    /// The passive side of an accepted connection gets the RTU.
    CmRtu { ctx: usize, conn: ConnId },
    /// The peer of a disconnecting side learns of it.
    CmDisconnect { ctx: usize, conn: ConnId },
}

pub(crate) struct Scheduled {
    pub at: Instant,
    pub seq: u64,
    pub what: Timed,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // BinaryHeap is a max-heap: invert so the earliest (then lowest seq) comes first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The whole network.
pub(crate) struct Net {
    pub rng: ChaCha8Rng,
    pub devices: Vec<Device>,
    pub ctxs: Vec<Ctx>,
    pub queue: BinaryHeap<Scheduled>,
    pub seq: u64,
    pub extra_delay: Duration,
    /// (device, qpn) whose connection was cut by a fault.
    pub dropped: Vec<(usize, u32)>,
    pub next_qpn: u32,
    pub next_mr_addr: u64,
    pub next_port: u16,
    /// The wire's latency, jitter and rate.
    pub link: SimLink,
    /// Notifications to fire once the lock is released.
    pub wake: Vec<Arc<Notify>>,
    /// Observer of the wire, if any (`SimFabric::set_tap`).
    pub tap: Option<Arc<dyn PacketTap>>,
    /// Virtual time the network was created: the tap's time origin.
    pub start: Instant,
    /// The network's virtual time: tokio's clock, or ahead of it by less than a timer tick
    /// while the pump moves it from event to event (see `clock`).
    pub clock: Instant,
}

impl Net {
    pub fn new(seed: u64, devices: Vec<Device>, link: SimLink) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let next_qpn = 0x100 + (rng.random::<u32>() % 0x1000);
        let next_mr_addr = 0x7f00_0000_0000 + u64::from(rng.random::<u16>()) * 0x10_0000;
        Net {
            rng,
            devices,
            ctxs: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            extra_delay: Duration::ZERO,
            dropped: Vec::new(),
            next_qpn,
            next_mr_addr,
            next_port: 40000,
            link,
            wake: Vec::new(),
            tap: None,
            start: Instant::now(),
            clock: Instant::now(),
        }
    }

    /// Reports a message to the tap, if one is set; `make` builds it only then.
    pub fn tap(&self, make: impl FnOnce() -> Option<(Ipv4Addr, Ipv4Addr, TapMessage)>) {
        let Some(tap) = &self.tap else { return };
        if let Some((src, dst, msg)) = make() {
            tap.on_packet(&TapPacket {
                at: self
                    .clock
                    .max(Instant::now())
                    .saturating_duration_since(self.start),
                src,
                dst,
                msg,
            });
        }
    }

    /// The network's virtual time now (never behind tokio's clock).
    pub fn now(&mut self) -> Instant {
        self.clock = self.clock.max(Instant::now());
        self.clock
    }

    /// Address of the device a context was opened on.
    pub fn ctx_addr(&self, ctx: usize) -> Ipv4Addr {
        self.devices[self.ctxs[ctx].device].addr
    }

    /// A fresh key, unique on its device and never 0.
    pub fn new_key(&mut self, device: usize) -> u32 {
        loop {
            let k: u32 = self.rng.random();
            let d = &self.devices[device];
            if k != 0 && !d.rkeys.contains_key(&k) && !self.lkey_in_use(device, k) {
                return k;
            }
        }
    }

    fn lkey_in_use(&self, device: usize, key: u32) -> bool {
        self.devices[device].contexts.iter().any(|c| {
            self.ctxs[*c]
                .mrs
                .values()
                .any(|m| m.lkey == key || m.rkey == key)
        })
    }

    /// One-way latency of the next packet: base + seeded jitter + injected delay.
    pub fn latency(&mut self) -> Duration {
        let jitter = self.link.jitter.as_nanos().max(1) as u64;
        self.link.latency
            + Duration::from_nanos(self.rng.random_range(0..jitter))
            + self.extra_delay
    }

    pub fn schedule(&mut self, at: Instant, what: Timed) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            what,
        });
    }

    pub fn device_by_addr(&self, ip: Ipv4Addr) -> Option<usize> {
        self.devices.iter().position(|d| d.addr == ip)
    }

    pub fn device_by_gid(&self, gid: &Gid) -> Option<usize> {
        gid.to_ipv4().and_then(|ip| self.device_by_addr(ip))
    }

    /// Queues a completion on a CQ (overflow → CQ error event, completion lost).
    pub fn push_wc(&mut self, ctx: usize, cq: CqId, wc: WorkCompletion) {
        let c = &mut self.ctxs[ctx];
        let Some(q) = c.cqs.get_mut(&cq) else { return };
        if q.overrun {
            return;
        }
        if q.entries.len() >= q.cqe as usize {
            q.overrun = true;
            c.async_events.push_back(AsyncEvent::CqErr(cq));
            let n = c.notify.clone();
            self.wake.push(n);
            return;
        }
        q.entries.push_back(wc);
        let n = q.notify.clone();
        self.wake.push(n);
    }

    pub fn push_event(&mut self, ctx: usize, ev: AsyncEvent) {
        self.push_to(ctx, |c| c.async_events.push_back(ev));
    }

    pub fn push_cm_event(&mut self, ctx: usize, ev: CmEvent) {
        self.push_to(ctx, |c| c.cm_events.push_back(ev));
    }

    /// Queues an event on context `ctx` with `push` and wakes its waiters; a closed context
    /// gets nothing.
    fn push_to(&mut self, ctx: usize, push: impl FnOnce(&mut Ctx)) {
        let c = &mut self.ctxs[ctx];
        if c.closed {
            return;
        }
        push(c);
        let n = c.notify.clone();
        self.wake.push(n);
    }

    /// Fires and clears the pending notifications (call after releasing nothing else).
    pub fn take_wakes(&mut self) -> Vec<Arc<Notify>> {
        std::mem::take(&mut self.wake)
    }

    /// Is the path between these two devices (and this QP's connection) usable?
    pub fn path_up(&self, from: usize, from_qpn: u32, to: Option<usize>) -> bool {
        let Some(to) = to else { return false };
        self.devices[from].port_state == PortState::Active
            && self.devices[to].port_state == PortState::Active
            && !self.dropped.contains(&(from, from_qpn))
    }
}
