//! RoCEv2 framing: Ethernet, IPv4, UDP (port 4791), the InfiniBand transport headers
//! (BTH, RETH, AETH, IETH, DETH) and the invariant CRC.
//!
//! Values follow the InfiniBand Architecture Specification volume 1 (chapter 9, transport
//! headers) and its RoCEv2 annex (A17): the ICRC is a CRC-32 over a pseudo-packet made of
//! eight 0xFF bytes (for the absent LRH), the IP header with TOS, TTL and checksum set to
//! all ones, the UDP header with its checksum set to all ones, the BTH with its reserved
//! byte (the one before the destination QP) set to all ones, then every following byte up
//! to the ICRC. It is sent least significant byte first, as Ethernet's FCS.

use std::net::Ipv4Addr;

/// UDP destination port of RoCEv2.
pub const ROCEV2_UDP_PORT: u16 = 4791;
/// Path MTU the capture segments messages at.
pub const MTU: usize = 4096;
/// Default P_Key.
pub const DEFAULT_PKEY: u16 = 0xffff;

/// Length of the Ethernet header.
pub const ETH_LEN: usize = 14;
/// Length of the IPv4 header (no options).
pub const IPV4_LEN: usize = 20;
/// Length of the UDP header.
pub const UDP_LEN: usize = 8;
/// Length of the Base Transport Header.
pub const BTH_LEN: usize = 12;
/// Length of the invariant CRC.
pub const ICRC_LEN: usize = 4;
/// Offset of the BTH in a frame.
pub const BTH_OFFSET: usize = ETH_LEN + IPV4_LEN + UDP_LEN;

/// BTH opcodes used by the capture (RC, and UD SEND_ONLY for CM MADs).
#[allow(missing_docs)]
pub mod opcode {
    pub const RC_SEND_FIRST: u8 = 0x00;
    pub const RC_SEND_MIDDLE: u8 = 0x01;
    pub const RC_SEND_LAST: u8 = 0x02;
    pub const RC_SEND_ONLY: u8 = 0x04;
    pub const RC_RDMA_WRITE_FIRST: u8 = 0x06;
    pub const RC_RDMA_WRITE_MIDDLE: u8 = 0x07;
    pub const RC_RDMA_WRITE_LAST: u8 = 0x08;
    pub const RC_RDMA_WRITE_ONLY: u8 = 0x0a;
    pub const RC_RDMA_READ_REQUEST: u8 = 0x0c;
    pub const RC_RDMA_READ_RESPONSE_FIRST: u8 = 0x0d;
    pub const RC_RDMA_READ_RESPONSE_MIDDLE: u8 = 0x0e;
    pub const RC_RDMA_READ_RESPONSE_LAST: u8 = 0x0f;
    pub const RC_RDMA_READ_RESPONSE_ONLY: u8 = 0x10;
    pub const RC_ACKNOWLEDGE: u8 = 0x11;
    pub const RC_SEND_LAST_WITH_INVALIDATE: u8 = 0x16;
    pub const RC_SEND_ONLY_WITH_INVALIDATE: u8 = 0x17;
    pub const UD_SEND_ONLY: u8 = 0x64;
}

/// The locally administered MAC address of a simulated device: `02:00:` + its IPv4.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// The Base Transport Header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bth {
    /// Opcode.
    pub opcode: u8,
    /// Solicited event.
    pub solicited: bool,
    /// Destination QP number (24 bits).
    pub dest_qp: u32,
    /// Acknowledge request.
    pub ack_req: bool,
    /// Packet sequence number (24 bits).
    pub psn: u32,
}

/// Transport headers that may follow the BTH, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtHeaders {
    /// Datagram ETH: (Q_Key, source QP).
    pub deth: Option<(u32, u32)>,
    /// RDMA ETH: (virtual address, rkey, DMA length).
    pub reth: Option<(u64, u32, u32)>,
    /// ACK ETH: (syndrome, MSN).
    pub aeth: Option<(u8, u32)>,
    /// Invalidate ETH: the rkey.
    pub ieth: Option<u32>,
}

/// The endpoints of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Sender's address.
    pub src: Ipv4Addr,
    /// Receiver's address.
    pub dst: Ipv4Addr,
    /// UDP source port (entropy; any value).
    pub udp_src_port: u16,
}

/// Builds one complete RoCEv2 Ethernet frame, ICRC included. `payload` is padded to a
/// multiple of four bytes as the BTH's pad count says.
pub fn frame(ep: Endpoints, bth: Bth, ext: ExtHeaders, payload: &[u8]) -> Vec<u8> {
    let pad = (4 - payload.len() % 4) % 4;
    let mut ib = Vec::with_capacity(BTH_LEN + 28 + payload.len() + pad + ICRC_LEN);
    ib.push(bth.opcode);
    ib.push(if bth.solicited { 0x80 } else { 0 } | ((pad as u8) << 4));
    ib.extend_from_slice(&DEFAULT_PKEY.to_be_bytes());
    ib.extend_from_slice(&(bth.dest_qp & 0x00ff_ffff).to_be_bytes());
    let psn = (bth.psn & 0x00ff_ffff) | if bth.ack_req { 0x8000_0000 } else { 0 };
    ib.extend_from_slice(&psn.to_be_bytes());
    if let Some((qkey, src_qp)) = ext.deth {
        ib.extend_from_slice(&qkey.to_be_bytes());
        ib.extend_from_slice(&(src_qp & 0x00ff_ffff).to_be_bytes());
    }
    if let Some((va, rkey, len)) = ext.reth {
        ib.extend_from_slice(&va.to_be_bytes());
        ib.extend_from_slice(&rkey.to_be_bytes());
        ib.extend_from_slice(&len.to_be_bytes());
    }
    if let Some((syndrome, msn)) = ext.aeth {
        ib.extend_from_slice(&((u32::from(syndrome) << 24) | (msn & 0x00ff_ffff)).to_be_bytes());
    }
    if let Some(rkey) = ext.ieth {
        ib.extend_from_slice(&rkey.to_be_bytes());
    }
    ib.extend_from_slice(payload);
    ib.resize(ib.len() + pad, 0);

    let udp_len = UDP_LEN + ib.len() + ICRC_LEN;
    let ip_len = IPV4_LEN + udp_len;
    let mut f = Vec::with_capacity(ETH_LEN + ip_len);
    f.extend_from_slice(&mac_of(ep.dst));
    f.extend_from_slice(&mac_of(ep.src));
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    // IPv4: no options, DF, TTL 64, UDP; identification 0 (DF set, never fragmented).
    let mut ip = [0u8; IPV4_LEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&ep.src.octets());
    ip[16..20].copy_from_slice(&ep.dst.octets());
    let sum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&ep.udp_src_port.to_be_bytes());
    f.extend_from_slice(&ROCEV2_UDP_PORT.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]); // UDP checksum: not used by RoCEv2 over IPv4
    f.extend_from_slice(&ib);
    let icrc = icrc(&f[ETH_LEN..]);
    f.extend_from_slice(&icrc.to_le_bytes());
    f
}

/// The one's-complement checksum of an IPv4 header (its checksum field taken as is).
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for (i, pair) in header.chunks(2).enumerate() {
        if i == 5 {
            continue; // the checksum field itself
        }
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map(u32::from).unwrap_or(0);
        sum += hi | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The invariant CRC of a RoCEv2 IPv4 packet: `packet` runs from the IPv4 header to the
/// last byte before the ICRC. Returns the CRC value; it goes on the wire little-endian.
/// A packet too short to hold IPv4, UDP and BTH headers gets the CRC of what there is.
pub fn icrc(packet: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[0xff; 8]);
    let masked_len = (IPV4_LEN + UDP_LEN + BTH_LEN).min(packet.len());
    let mut head = packet[..masked_len].to_vec();
    // IPv4 TOS, TTL, header checksum.
    for i in [1, 8, 10, 11] {
        if let Some(b) = head.get_mut(i) {
            *b = 0xff;
        }
    }
    // UDP checksum, BTH reserved byte before the destination QP.
    for i in [IPV4_LEN + 6, IPV4_LEN + 7, IPV4_LEN + UDP_LEN + 4] {
        if let Some(b) = head.get_mut(i) {
            *b = 0xff;
        }
    }
    h.update(&head);
    h.update(&packet[masked_len..]);
    h.finalize()
}

/// AETH syndromes.
pub mod syndrome {
    /// ACK with an invalid credit count (credits not used).
    pub const ACK: u8 = 0x1f;
    /// RNR NAK with timer code 12 (0.64 ms, the simulated fabric's RNR timer).
    pub const RNR_NAK: u8 = 0x20 | 0x0c;
    /// NAK: invalid request.
    pub const NAK_INVALID_REQUEST: u8 = 0x61;
    /// NAK: remote access error.
    pub const NAK_REMOTE_ACCESS: u8 = 0x62;
    /// NAK: remote operational error.
    pub const NAK_REMOTE_OP: u8 = 0x63;
}
