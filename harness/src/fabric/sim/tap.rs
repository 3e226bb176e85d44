//! The packet tap: an observer of every message that crosses the simulated wire.
//!
//! [`SimFabric::set_tap`](super::SimFabric::set_tap) installs a [`PacketTap`]; the fabric
//! then calls it, in virtual-time order, for each request, READ response, ACK / NAK and CM
//! message it delivers. With no tap set the fabric only pays an `Option` check. The tap is
//! called with the network's lock held: it must not call back into the fabric.
//!
//! Messages the fabric drops (link down, connection cut, peer QP gone) are not reported:
//! the tap sees what a receiver's port would.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::fabric::ConnId;

/// Receives every message that crosses the simulated wire.
pub trait PacketTap: Send + Sync {
    /// One message; called in virtual-time order, with the network's lock held.
    fn on_packet(&self, packet: &TapPacket);
}

/// A message on the simulated wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapPacket {
    /// Virtual time since the fabric was created.
    pub at: Duration,
    /// Address of the sending device.
    pub src: Ipv4Addr,
    /// Address of the receiving device.
    pub dst: Ipv4Addr,
    /// What was sent.
    pub msg: TapMessage,
}

/// The kinds of message a tap sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapMessage {
    /// An RC request, requester to responder. A retransmission (after an RNR NAK) carries
    /// the same `wr` as the first transmission.
    Request {
        /// Requester's QP number.
        src_qpn: u32,
        /// Responder's QP number.
        dst_qpn: u32,
        /// Identifies the work request (unique per fabric).
        wr: u64,
        /// The operation and its data.
        op: TapOp,
    },
    /// The data of an RDMA READ, responder to requester.
    ReadResponse {
        /// Responder's QP number.
        src_qpn: u32,
        /// Requester's QP number.
        dst_qpn: u32,
        /// The READ request's `wr`.
        wr: u64,
        /// The bytes read.
        data: Vec<u8>,
    },
    /// An acknowledgement or NAK of a request, responder to requester.
    Ack {
        /// Responder's QP number.
        src_qpn: u32,
        /// Requester's QP number.
        dst_qpn: u32,
        /// The acknowledged request's `wr`.
        wr: u64,
        /// ACK, RNR NAK or NAK.
        kind: AckKind,
    },
    /// A connection-manager message.
    Cm(TapCm),
}

/// An RC request's operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapOp {
    /// SEND, or SEND with invalidate of `invalidate`.
    Send {
        /// The message.
        payload: Vec<u8>,
        /// The rkey to invalidate, for SEND with invalidate.
        invalidate: Option<u32>,
    },
    /// RDMA WRITE.
    RdmaWrite {
        /// Remote virtual address.
        va: u64,
        /// Remote key.
        rkey: u32,
        /// The data written.
        payload: Vec<u8>,
    },
    /// RDMA READ request.
    RdmaRead {
        /// Remote virtual address.
        va: u64,
        /// Remote key.
        rkey: u32,
        /// Bytes requested.
        len: u32,
    },
}

/// What an acknowledgement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckKind {
    /// Positive acknowledgement.
    Ack,
    /// Receiver not ready: no receive posted.
    RnrNak,
    /// NAK: invalid request (e.g. the receive buffer is too small).
    NakInvalidRequest,
    /// NAK: remote access error (key, rights, bounds).
    NakRemoteAccess,
    /// NAK: remote operational error.
    NakRemoteOp,
}

/// A connection-manager message, with the communication IDs of both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapCm {
    /// Sender's communication ID.
    pub local_comm_id: u32,
    /// Receiver's communication ID (0 on a request).
    pub remote_comm_id: u32,
    /// Which message.
    pub kind: TapCmKind,
}

/// The CM messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapCmKind {
    /// Connect request (IB CM REQ) from `src_port` to the listener's `dst_port`.
    Request {
        /// The active side's port (RDMA CM's source port).
        src_port: u16,
        /// The listener's port (the service ID's port).
        dst_port: u16,
        /// The active side's QP number.
        qpn: u32,
        /// IRD offered.
        responder_resources: u8,
        /// ORD asked.
        initiator_depth: u8,
        /// RNR retry count.
        rnr_retry_count: u8,
        /// The user's private data.
        private_data: Vec<u8>,
    },
    /// Accept (IB CM REP).
    Reply {
        /// The passive side's QP number.
        qpn: u32,
        /// IRD offered.
        responder_resources: u8,
        /// ORD asked.
        initiator_depth: u8,
        /// RNR retry count.
        rnr_retry_count: u8,
        /// The user's private data.
        private_data: Vec<u8>,
    },
    /// Ready to use (IB CM RTU).
    ReadyToUse,
    /// Reject (IB CM REJ) of a request.
    Reject {
        /// IB CM reject reason (8 = invalid service ID, 28 = consumer defined).
        reason: u16,
        /// The user's private data.
        private_data: Vec<u8>,
    },
    /// Disconnect request (IB CM DREQ).
    Disconnect,
    /// Disconnect reply (IB CM DREP): the answer to a DREQ.
    DisconnectReply,
}

/// The communication ID the tap reports for a context's connection identifier.
pub(crate) fn comm_id(ctx: usize, conn: ConnId) -> u32 {
    0x1000_0000 | (((ctx as u32) & 0x0fff) << 16) | (conn.0 & 0xffff)
}
