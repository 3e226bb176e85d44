//! IB CM management datagrams (MADs) as RDMA CM sends them over RoCEv2: ConnectRequest
//! (REQ), ConnectReply (REP), ReadyToUse (RTU), ConnectReject (REJ), DisconnectRequest
//! (DREQ) and DisconnectReply (DREP), each a 256-byte MAD carried in a UD SEND_ONLY to QP1 (the GSI) with a DETH.
//!
//! Layouts are those of the InfiniBand Architecture Specification volume 1, 12.6 (offsets
//! below are into the 232-byte MAD data that follows the 24-byte MAD header). RDMA CM
//! prefixes a REQ's private data with its 36-byte IP header (version, IP version, source
//! port, source and destination addresses) and uses service ID `0x0000000001060000 | port`
//! for RDMA_PS_TCP, which is what Wireshark's `nvme-rdma` dissector keys on.

use std::net::Ipv4Addr;

use crate::fabric::sim::{TapCm, TapCmKind};

/// Length of a MAD.
pub const MAD_LEN: usize = 256;
/// Length of the MAD common header.
pub const MAD_HEADER_LEN: usize = 24;
/// The GSI's well-known Q_Key.
pub const GSI_QKEY: u32 = 0x8001_0000;
/// Management class of the communication manager.
pub const MGMT_CLASS_CM: u8 = 0x07;
/// Attribute ID of ConnectRequest.
pub const ATTR_REQ: u16 = 0x0010;
/// Attribute ID of ConnectReject.
pub const ATTR_REJ: u16 = 0x0012;
/// Attribute ID of ConnectReply.
pub const ATTR_REP: u16 = 0x0013;
/// Attribute ID of ReadyToUse.
pub const ATTR_RTU: u16 = 0x0014;
/// Attribute ID of DisconnectRequest.
pub const ATTR_DREQ: u16 = 0x0015;
/// Attribute ID of DisconnectReply.
pub const ATTR_DREP: u16 = 0x0016;
/// RDMA CM's service ID prefix for RDMA_PS_TCP (port space 0x0106).
pub const SERVICE_ID_PS_TCP: u64 = 0x0000_0000_0106_0000;
/// Offset of the private data in a REQ's MAD data.
pub const REQ_PRIVATE_OFFSET: usize = 140;
/// Offset of the private data in a REP's MAD data.
pub const REP_PRIVATE_OFFSET: usize = 36;
/// Offset of the private data in a REJ's MAD data.
pub const REJ_PRIVATE_OFFSET: usize = 84;
/// Length of RDMA CM's IP header at the start of a REQ's private data.
pub const CMA_HDR_LEN: usize = 36;

/// The IPv4-mapped GID of an address.
pub fn gid_of(ip: Ipv4Addr) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[10] = 0xff;
    g[11] = 0xff;
    g[12..].copy_from_slice(&ip.octets());
    g
}

/// A device's node GUID: its MAC as an EUI-64.
pub fn guid_of(ip: Ipv4Addr) -> [u8; 8] {
    let m = super::roce::mac_of(ip);
    [m[0], m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
}

/// What a MAD needs beyond the tap's message: the endpoints and the QP's starting PSN.
#[derive(Debug, Clone, Copy)]
pub struct MadContext {
    /// Sender's address.
    pub src: Ipv4Addr,
    /// Receiver's address.
    pub dst: Ipv4Addr,
    /// Starting PSN of the QP a REQ or REP announces.
    pub start_psn: u32,
    /// Transaction ID (the same for every message of one connection).
    pub tid: u64,
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// Builds the 256-byte MAD of a CM message. Private data longer than the message holds is
/// cut to fit.
pub fn mad(cm: &TapCm, cx: &MadContext) -> Vec<u8> {
    let mut m = vec![0u8; MAD_LEN];
    let attr = match cm.kind {
        TapCmKind::Request { .. } => ATTR_REQ,
        TapCmKind::Reply { .. } => ATTR_REP,
        TapCmKind::ReadyToUse => ATTR_RTU,
        TapCmKind::Reject { .. } => ATTR_REJ,
        TapCmKind::Disconnect => ATTR_DREQ,
        TapCmKind::DisconnectReply => ATTR_DREP,
    };
    m[0] = 1; // base version
    m[1] = MGMT_CLASS_CM;
    m[2] = 2; // class version
    m[3] = 0x03; // method: Send
    put(&mut m, 8, &cx.tid.to_be_bytes());
    put(&mut m, 16, &attr.to_be_bytes());
    let d = &mut m[MAD_HEADER_LEN..];
    put(d, 0, &cm.local_comm_id.to_be_bytes());
    match &cm.kind {
        TapCmKind::Request {
            src_port,
            dst_port,
            qpn,
            responder_resources,
            initiator_depth,
            rnr_retry_count,
            private_data,
        } => {
            put(
                d,
                8,
                &(SERVICE_ID_PS_TCP | u64::from(*dst_port)).to_be_bytes(),
            );
            put(d, 16, &guid_of(cx.src));
            put(
                d,
                32,
                &(((qpn & 0x00ff_ffff) << 8) | u32::from(*responder_resources)).to_be_bytes(),
            );
            put(d, 36, &u32::from(*initiator_depth).to_be_bytes());
            // Remote EECN 0; remote CM response timeout 20, RC, end-to-end flow control.
            d[43] = (20 << 3) | 1;
            // Starting PSN; local CM response timeout 20, retry count 7.
            put(
                d,
                44,
                &(((cx.start_psn & 0x00ff_ffff) << 8) | (20 << 3) | 7).to_be_bytes(),
            );
            put(d, 48, &0xffffu16.to_be_bytes());
            // Path MTU 4096 (5), no RDC, RNR retry count; max CM retries 15.
            d[50] = (5 << 4) | (rnr_retry_count & 7);
            d[51] = 15 << 4;
            // Primary local and remote LIDs: 0, as on RoCE.
            put(d, 56, &gid_of(cx.src));
            put(d, 72, &gid_of(cx.dst));
            d[93] = 64; // hop limit
            d[95] = 18 << 3; // local ACK timeout
            let mut p = [0u8; CMA_HDR_LEN];
            p[1] = 4 << 4; // IPv4
            p[2..4].copy_from_slice(&src_port.to_be_bytes());
            p[16..20].copy_from_slice(&cx.src.octets());
            p[32..36].copy_from_slice(&cx.dst.octets());
            put(d, REQ_PRIVATE_OFFSET, &p);
            let at = REQ_PRIVATE_OFFSET + CMA_HDR_LEN;
            let n = private_data.len().min(d.len() - at);
            put(d, at, &private_data[..n]);
        }
        TapCmKind::Reply {
            qpn,
            responder_resources,
            initiator_depth,
            rnr_retry_count,
            private_data,
        } => {
            put(d, 4, &cm.remote_comm_id.to_be_bytes());
            put(d, 12, &((qpn & 0x00ff_ffff) << 8).to_be_bytes());
            put(d, 20, &((cx.start_psn & 0x00ff_ffff) << 8).to_be_bytes());
            d[24] = *responder_resources;
            d[25] = *initiator_depth;
            d[26] = (15 << 3) | 1; // target ACK delay, failover not supported, e2e flow control
            d[27] = (rnr_retry_count & 7) << 5;
            put(d, 28, &guid_of(cx.src));
            let n = private_data.len().min(d.len() - REP_PRIVATE_OFFSET);
            put(d, REP_PRIVATE_OFFSET, &private_data[..n]);
        }
        TapCmKind::ReadyToUse | TapCmKind::Disconnect | TapCmKind::DisconnectReply => {
            put(d, 4, &cm.remote_comm_id.to_be_bytes());
        }
        TapCmKind::Reject {
            reason,
            private_data,
        } => {
            put(d, 4, &cm.remote_comm_id.to_be_bytes());
            d[8] = 0; // message rejected: REQ
            put(d, 10, &reason.to_be_bytes());
            let n = private_data.len().min(d.len() - REJ_PRIVATE_OFFSET);
            put(d, REJ_PRIVATE_OFFSET, &private_data[..n]);
        }
    }
    m
}
