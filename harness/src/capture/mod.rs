//! Packet captures of the simulated fabric, as RoCEv2 frames in a pcap file.
//!
//! A [`Capture`] attached to a [`SimFabric`] is its [`PacketTap`]: every message that
//! crosses the simulated wire becomes one or more Ethernet / IPv4 / UDP 4791 frames with
//! the InfiniBand transport headers a RoCEv2 NIC would send (`roce`), and CM messages
//! become IB CM MADs on QP1 (`cm`). PSNs are kept per QP by the capture, messages are
//! segmented at a 4096-byte MTU, the ICRC is computed. Frame timestamps are the fabric's
//! virtual time, so the same seed gives a byte-identical file.
//!
//! ```no_run
//! # async fn demo() -> Result<(), harness::capture::CaptureError> {
//! let fabric = harness::fabric::sim::SimFabric::new(7);
//! let capture = harness::capture::Capture::new();
//! capture.attach(&fabric);
//! // ... run the scenario ...
//! capture.write_pcap("run.pcap")?;
//! # Ok(()) }
//! ```
//!
//! Wireshark decodes the file with `-d udp.port==4791,infiniband` (the default already);
//! its `nvme-rdma` dissector recognises the queues from the CM request (service ID of
//! RDMA_PS_TCP port 4420) and decodes the capsules.

pub mod cm;
pub mod pcap;
pub mod roce;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fabric::sim::{AckKind, PacketTap, SimFabric, TapCm, TapMessage, TapOp, TapPacket};
use roce::{opcode, syndrome, Bth, Endpoints, ExtHeaders, MTU};

/// Why a capture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be created or written.
    #[error("capture file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The pcap writer failed.
    #[error("pcap: {0}")]
    Pcap(#[from] pcap_file::PcapError),
    /// A frame longer than a pcap record can say (never built by the capture).
    #[error("frame of {0} bytes is too long for pcap")]
    FrameTooLong(usize),
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Virtual time since the fabric was created.
    pub at: Duration,
    /// The Ethernet frame, ICRC included (no FCS).
    pub data: Vec<u8>,
}

/// A RoCEv2 capture of a simulated fabric; clones share the same frames.
#[derive(Clone, Default)]
pub struct Capture {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("frames", &self.len())
            .finish()
    }
}

/// The last request a QP sent: its work request, first PSN and PSNs used.
#[derive(Clone, Copy)]
struct LastRequest {
    wr: u64,
    start: u32,
    npsn: u32,
}

#[derive(Default)]
struct State {
    frames: Vec<Frame>,
    /// Next PSN of each (device, QP) as a requester.
    next_psn: BTreeMap<(Ipv4Addr, u32), u32>,
    last: BTreeMap<(Ipv4Addr, u32), LastRequest>,
    /// Message sequence number of each (device, QP) as a responder.
    msn: BTreeMap<(Ipv4Addr, u32), u32>,
}

const PSN_MASK: u32 = 0x00ff_ffff;

/// The starting PSN the capture gives a QP (announced in the CM REQ / REP).
pub fn initial_psn(qpn: u32) -> u32 {
    qpn.wrapping_mul(0x9e37_79b1) & PSN_MASK
}

impl Capture {
    /// An empty capture, not yet attached.
    pub fn new() -> Capture {
        Capture::default()
    }

    /// Starts capturing `fabric` (replaces any tap it had).
    pub fn attach(&self, fabric: &SimFabric) {
        fabric.set_tap(Some(Arc::new(self.clone())));
    }

    /// Stops capturing `fabric` (removes its tap); the frames stay.
    pub fn detach(&self, fabric: &SimFabric) {
        fabric.set_tap(None);
    }

    /// Number of frames captured so far.
    pub fn len(&self) -> usize {
        self.lock().frames.len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the frames captured so far, in time order.
    pub fn frames(&self) -> Vec<Frame> {
        self.lock().frames.clone()
    }

    /// The capture as pcap bytes.
    pub fn to_pcap_bytes(&self) -> Result<Vec<u8>, CaptureError> {
        let mut out = Vec::new();
        self.write_pcap_to(&mut out)?;
        Ok(out)
    }

    /// Writes the capture as pcap to `out`; returns the bytes written.
    pub fn write_pcap_to<W: std::io::Write>(&self, out: W) -> Result<usize, CaptureError> {
        let frames: Vec<(Duration, Vec<u8>)> = self
            .lock()
            .frames
            .iter()
            .map(|f| (f.at, f.data.clone()))
            .collect();
        pcap::write(out, &frames)
    }

    /// Writes the capture to the pcap file `path` (created or truncated).
    pub fn write_pcap(&self, path: impl AsRef<Path>) -> Result<(), CaptureError> {
        let path = path.as_ref();
        let io = |source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io)?;
        let mut w = std::io::BufWriter::new(file);
        self.write_pcap_to(&mut w)?;
        std::io::Write::flush(&mut w).map_err(io)?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PacketTap for Capture {
    fn on_packet(&self, p: &TapPacket) {
        self.lock().packet(p);
    }
}

/// The UDP source port of a QP's packets (RoCEv2 uses it for entropy only).
fn udp_port(qpn: u32) -> u16 {
    0xc000 | (qpn & 0x3fff) as u16
}

/// Splits a message into MTU-sized segments (one, possibly empty, at least).
fn segments(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        vec![data]
    } else {
        data.chunks(MTU).collect()
    }
}

/// Picks first / middle / last / only.
fn pick(i: usize, n: usize, ops: [u8; 4]) -> u8 {
    match (i == 0, i + 1 == n) {
        (true, true) => ops[3],
        (true, false) => ops[0],
        (false, false) => ops[1],
        (false, true) => ops[2],
    }
}

impl State {
    fn push(&mut self, at: Duration, ep: Endpoints, bth: Bth, ext: ExtHeaders, payload: &[u8]) {
        let data = roce::frame(ep, bth, ext, payload);
        self.frames.push(Frame { at, data });
    }

    fn packet(&mut self, p: &TapPacket) {
        match &p.msg {
            TapMessage::Request {
                src_qpn,
                dst_qpn,
                wr,
                op,
            } => self.request(p, *src_qpn, *dst_qpn, *wr, op),
            TapMessage::ReadResponse {
                src_qpn,
                dst_qpn,
                wr,
                data,
            } => self.response(p, *src_qpn, *dst_qpn, *wr, None, data),
            TapMessage::Ack {
                src_qpn,
                dst_qpn,
                wr,
                kind,
            } => self.response(p, *src_qpn, *dst_qpn, *wr, Some(*kind), &[]),
            TapMessage::Cm(cm) => self.cm(p, cm),
        }
    }

    fn request(&mut self, p: &TapPacket, src_qpn: u32, dst_qpn: u32, wr: u64, op: &TapOp) {
        let key = (p.src, src_qpn);
        let npsn = match op {
            TapOp::Send { payload, .. } | TapOp::RdmaWrite { payload, .. } => {
                segments(payload).len() as u32
            }
            TapOp::RdmaRead { len, .. } => (*len as usize).div_ceil(MTU).max(1) as u32,
        };
        let start = match self.last.get(&key) {
            Some(l) if l.wr == wr => l.start, // retransmission after an RNR NAK
            _ => {
                let next = self.next_psn.entry(key).or_insert(initial_psn(src_qpn));
                let start = *next;
                *next = (start + npsn) & PSN_MASK;
                self.last.insert(key, LastRequest { wr, start, npsn });
                start
            }
        };
        let ep = Endpoints {
            src: p.src,
            dst: p.dst,
            udp_src_port: udp_port(src_qpn),
        };
        let bth = |opcode, i: usize, last: bool| Bth {
            opcode,
            solicited: false,
            dest_qp: dst_qpn,
            ack_req: last,
            psn: (start + i as u32) & PSN_MASK,
        };
        match op {
            TapOp::Send {
                payload,
                invalidate,
            } => {
                let segs = segments(payload);
                let n = segs.len();
                for (i, seg) in segs.into_iter().enumerate() {
                    let mut ext = ExtHeaders::default();
                    let code = match invalidate {
                        Some(rkey) => {
                            if i + 1 == n {
                                ext.ieth = Some(*rkey);
                            }
                            pick(
                                i,
                                n,
                                [
                                    opcode::RC_SEND_FIRST,
                                    opcode::RC_SEND_MIDDLE,
                                    opcode::RC_SEND_LAST_WITH_INVALIDATE,
                                    opcode::RC_SEND_ONLY_WITH_INVALIDATE,
                                ],
                            )
                        }
                        None => pick(
                            i,
                            n,
                            [
                                opcode::RC_SEND_FIRST,
                                opcode::RC_SEND_MIDDLE,
                                opcode::RC_SEND_LAST,
                                opcode::RC_SEND_ONLY,
                            ],
                        ),
                    };
                    let mut b = bth(code, i, i + 1 == n);
                    b.solicited = i + 1 == n;
                    self.push(p.at, ep, b, ext, seg);
                }
            }
            TapOp::RdmaWrite { va, rkey, payload } => {
                let segs = segments(payload);
                let n = segs.len();
                for (i, seg) in segs.into_iter().enumerate() {
                    let mut ext = ExtHeaders::default();
                    if i == 0 {
                        ext.reth = Some((*va, *rkey, payload.len() as u32));
                    }
                    let code = pick(
                        i,
                        n,
                        [
                            opcode::RC_RDMA_WRITE_FIRST,
                            opcode::RC_RDMA_WRITE_MIDDLE,
                            opcode::RC_RDMA_WRITE_LAST,
                            opcode::RC_RDMA_WRITE_ONLY,
                        ],
                    );
                    self.push(p.at, ep, bth(code, i, i + 1 == n), ext, seg);
                }
            }
            TapOp::RdmaRead { va, rkey, len } => {
                let ext = ExtHeaders {
                    reth: Some((*va, *rkey, *len)),
                    ..ExtHeaders::default()
                };
                let b = bth(opcode::RC_RDMA_READ_REQUEST, 0, true);
                self.push(p.at, ep, b, ext, &[]);
            }
        }
    }

    /// An ACK / NAK (`kind` set) or READ response data (`kind` None), responder to requester.
    fn response(
        &mut self,
        p: &TapPacket,
        src_qpn: u32,
        dst_qpn: u32,
        wr: u64,
        kind: Option<AckKind>,
        data: &[u8],
    ) {
        let req = self
            .last
            .get(&(p.dst, dst_qpn))
            .copied()
            .filter(|l| l.wr == wr)
            .unwrap_or(LastRequest {
                wr,
                start: initial_psn(dst_qpn),
                npsn: 1,
            });
        let ep = Endpoints {
            src: p.src,
            dst: p.dst,
            udp_src_port: udp_port(src_qpn),
        };
        let msn_key = (p.src, src_qpn);
        let completes = matches!(kind, None | Some(AckKind::Ack));
        let msn = {
            let m = self.msn.entry(msn_key).or_insert(0);
            if completes {
                *m = (*m + 1) & PSN_MASK;
            }
            *m
        };
        let bth = |opcode, psn: u32| Bth {
            opcode,
            solicited: false,
            dest_qp: dst_qpn,
            ack_req: false,
            psn: psn & PSN_MASK,
        };
        match kind {
            Some(k) => {
                let (syn, psn) = match k {
                    AckKind::Ack => (syndrome::ACK, req.start + req.npsn - 1),
                    AckKind::RnrNak => (syndrome::RNR_NAK, req.start),
                    AckKind::NakInvalidRequest => (syndrome::NAK_INVALID_REQUEST, req.start),
                    AckKind::NakRemoteAccess => (syndrome::NAK_REMOTE_ACCESS, req.start),
                    AckKind::NakRemoteOp => (syndrome::NAK_REMOTE_OP, req.start),
                };
                let ext = ExtHeaders {
                    aeth: Some((syn, msn)),
                    ..ExtHeaders::default()
                };
                self.push(p.at, ep, bth(opcode::RC_ACKNOWLEDGE, psn), ext, &[]);
            }
            None => {
                let segs = segments(data);
                let n = segs.len();
                for (i, seg) in segs.into_iter().enumerate() {
                    let code = pick(
                        i,
                        n,
                        [
                            opcode::RC_RDMA_READ_RESPONSE_FIRST,
                            opcode::RC_RDMA_READ_RESPONSE_MIDDLE,
                            opcode::RC_RDMA_READ_RESPONSE_LAST,
                            opcode::RC_RDMA_READ_RESPONSE_ONLY,
                        ],
                    );
                    let mut ext = ExtHeaders::default();
                    if code != opcode::RC_RDMA_READ_RESPONSE_MIDDLE {
                        ext.aeth = Some((syndrome::ACK, msn));
                    }
                    self.push(p.at, ep, bth(code, req.start + i as u32), ext, seg);
                }
            }
        }
    }

    fn cm(&mut self, p: &TapPacket, cm: &TapCm) {
        use crate::fabric::sim::TapCmKind;
        let (active_comm, qpn) = match &cm.kind {
            TapCmKind::Request { qpn, .. } => (cm.local_comm_id, Some(*qpn)),
            TapCmKind::Reply { qpn, .. } => (cm.remote_comm_id, Some(*qpn)),
            TapCmKind::ReadyToUse => (cm.local_comm_id, None),
            TapCmKind::Reject { .. } => (cm.remote_comm_id, None),
            TapCmKind::Disconnect => (cm.local_comm_id, None),
            // The DREP carries the transaction ID of the DREQ it answers.
            TapCmKind::DisconnectReply => (cm.remote_comm_id, None),
        };
        let tid = match cm.kind {
            TapCmKind::Disconnect | TapCmKind::DisconnectReply => {
                (1u64 << 32) | u64::from(active_comm)
            }
            _ => u64::from(active_comm),
        };
        let start_psn = qpn.map(initial_psn).unwrap_or(0);
        let cx = cm::MadContext {
            src: p.src,
            dst: p.dst,
            start_psn,
            tid,
        };
        let mad = cm::mad(cm, &cx);
        let key = (p.src, 1);
        let next = self.next_psn.entry(key).or_insert(0);
        let psn = *next;
        *next = (psn + 1) & PSN_MASK;
        let ep = Endpoints {
            src: p.src,
            dst: p.dst,
            udp_src_port: udp_port(1),
        };
        let bth = Bth {
            opcode: opcode::UD_SEND_ONLY,
            solicited: false,
            dest_qp: 1,
            ack_req: false,
            psn,
        };
        let ext = ExtHeaders {
            deth: Some((cm::GSI_QKEY, 1)),
            ..ExtHeaders::default()
        };
        self.push(p.at, ep, bth, ext, &mad);
    }
}
