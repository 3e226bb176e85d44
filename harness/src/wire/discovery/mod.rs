//! Discovery log page (Log Identifier 70h): a 1024-byte header followed by NUMREC
//! 1024-byte entries (NVMe Base Specification 2.0, "Discovery Log Page"; NVM Express over
//! Fabrics 1.1, "Discovery Log Page"; Linux `struct nvmf_disc_rsp_page_hdr` and
//! `struct nvmf_disc_rsp_page_entry`).
//!
//! Header:
//!
//! | bytes | field |
//! |-------|-------|
//! | 7:0 | GENCTR, generation counter |
//! | 15:8 | NUMREC, number of records |
//! | 17:16 | RECFMT, record format (0) |
//! | 1023:18 | reserved |
//!
//! Entry `n` starts at byte `1024 + 1024 * n`:
//!
//! | bytes | field |
//! |-------|-------|
//! | 0 | TRTYPE, transport type ([`TRTYPE_RDMA`], ...) |
//! | 1 | ADRFAM, address family ([`ADRFAM_IPV4`], ...) |
//! | 2 | SUBTYPE, subsystem type ([`SUBTYPE_NVME`], ...) |
//! | 3 | TREQ: bits 1:0 secure channel, bit 2 SQ flow control disable supported |
//! | 5:4 | PORTID |
//! | 7:6 | CNTLID ([`CNTLID_DYNAMIC`](super::CNTLID_DYNAMIC): dynamic controller model) |
//! | 9:8 | ASQSZ, admin max SQ size |
//! | 11:10 | EFLAGS, entry flags |
//! | 31:12 | reserved |
//! | 63:32 | TRSVCID, transport service identifier (ASCII; RDMA/TCP: the port number) |
//! | 255:64 | reserved |
//! | 511:256 | SUBNQN, NUL-terminated |
//! | 767:512 | TRADDR, transport address (ASCII, e.g. `10.0.2.15`) |
//! | 1023:768 | TSAS, transport specific address subtype; RDMA: see below |
//!
//! RDMA TSAS (NVMe RDMA Transport Specification, "Transport Specific Address Subtype";
//! Linux `tsas.rdma`): byte 768 QPTYPE, 769 PRTYPE, 770 CMS, 775:771 reserved, 777:776
//! PKEY, 1023:778 reserved.
//!
//! Decisions:
//!
//! - TRTYPE, ADRFAM, SUBTYPE, EFLAGS, RECFMT and the RDMA QPTYPE, PRTYPE and CMS are kept
//!   as raw values: a value this module does not name is not a parse error (later
//!   revisions add values; judging them is the suites' business). TREQ bits 7:3 are
//!   reserved ([`WireError::Reserved`]) and secure channel 11b is reserved
//!   ([`WireError::BadValue`]).
//! - TRSVCID and TRADDR are ASCII. Parsing takes the bytes before the first NUL and strips
//!   trailing spaces (Linux nvmet pads with spaces, `memcpy_and_pad(..., ' ')`; other
//!   targets pad with NULs); bytes after a NUL are ignored. Emitting pads with spaces, as
//!   Linux does, and refuses text that would not read back the same: longer than the
//!   field, non-ASCII, containing NUL, or ending in a space.
//! - SUBNQN is UTF-8 up to the first NUL, which must be within the 256 bytes (so at most
//!   255 bytes; the 223-byte NQN maximum is a conformance question left to the suites,
//!   not a framing rule). Emitting pads with NULs (Linux `strncpy`).
//! - TSAS is interpreted for RDMA (TRTYPE 1) only: there [`DiscoveryEntryRepr::rdma`] is
//!   `Some` and the reserved TSAS bytes must be zero. For other transports (TCP's SECTYPE,
//!   ...) the 256 bytes are ignored when parsing and zeroed when emitting.
//! - [`DiscoveryLogRepr::parse_bytes`] reads exactly NUMREC entries (bytes after them are
//!   ignored) and checks that they are all present before allocating anything.

use super::field::Field;
use super::view::{accessors, view};

/// Length of the discovery log page header in bytes.
pub const DISCOVERY_LOG_HEADER_LEN: usize = 1024;
/// Length of one discovery log page entry in bytes.
pub const DISCOVERY_LOG_ENTRY_LEN: usize = 1024;
/// Log Identifier of the discovery log page (Linux `NVME_LOG_DISC`).
pub const DISCOVERY_LOG_LID: u8 = 0x70;

/// TRTYPE: RDMA.
pub const TRTYPE_RDMA: u8 = 1;
/// TRTYPE: Fibre Channel.
pub const TRTYPE_FC: u8 = 2;
/// TRTYPE: TCP.
pub const TRTYPE_TCP: u8 = 3;
/// TRTYPE: intra-host transport (Linux `NVMF_TRTYPE_LOOP`).
pub const TRTYPE_LOOP: u8 = 254;

/// ADRFAM: IPv4.
pub const ADRFAM_IPV4: u8 = 1;
/// ADRFAM: IPv6.
pub const ADRFAM_IPV6: u8 = 2;
/// ADRFAM: InfiniBand.
pub const ADRFAM_IB: u8 = 3;
/// ADRFAM: Fibre Channel.
pub const ADRFAM_FC: u8 = 4;
/// ADRFAM: intra-host transport (Linux `NVMF_ADDR_FAMILY_LOOP`).
pub const ADRFAM_LOOP: u8 = 254;

/// SUBTYPE: a referral to another discovery service.
pub const SUBTYPE_REFERRAL: u8 = 1;
/// SUBTYPE: an NVM subsystem.
pub const SUBTYPE_NVME: u8 = 2;
/// SUBTYPE: the discovery subsystem being queried (current discovery subsystem).
pub const SUBTYPE_CURRENT_DISCOVERY: u8 = 3;

/// TREQ bits 1:0, secure channel requirement.
pub const TREQ_SECURE_CHANNEL_MASK: u8 = 0b11;
/// TREQ secure channel 00b: not specified.
pub const TREQ_NOT_SPECIFIED: u8 = 0;
/// TREQ secure channel 01b: required.
pub const TREQ_REQUIRED: u8 = 1;
/// TREQ secure channel 10b: not required.
pub const TREQ_NOT_REQUIRED: u8 = 2;
/// TREQ bit 2: SQ flow control disable supported.
pub const TREQ_DISABLE_SQFLOW: u8 = 1 << 2;

/// RDMA QPTYPE: reliable connected.
pub const QPTYPE_RC: u8 = 1;
/// RDMA QPTYPE: reliable datagram.
pub const QPTYPE_DATAGRAM: u8 = 2;
/// RDMA PRTYPE: no provider specified.
pub const PRTYPE_NONE: u8 = 1;
/// RDMA PRTYPE: InfiniBand.
pub const PRTYPE_IB: u8 = 2;
/// RDMA PRTYPE: RoCE.
pub const PRTYPE_ROCE: u8 = 3;
/// RDMA PRTYPE: RoCEv2.
pub const PRTYPE_ROCEV2: u8 = 4;
/// RDMA PRTYPE: iWARP.
pub const PRTYPE_IWARP: u8 = 5;
/// RDMA CMS: RDMA_CM.
pub const CMS_RDMA_CM: u8 = 1;

/// Longest SUBNQN a 256-byte field holds with its NUL terminator.
const SUBNQN_MAX_LEN: usize = 255;

/// Byte offsets inside the discovery log header (`HDR_*`) and inside one entry (the
/// others, relative to the entry's first byte).
pub mod field {
    use super::Field;
    /// Header: Generation Counter, u64.
    pub const HDR_GENCTR: Field = 0..8;
    /// Header: Number of Records, u64.
    pub const HDR_NUMREC: Field = 8..16;
    /// Header: Record Format, u16.
    pub const HDR_RECFMT: Field = 16..18;
    /// Header: reserved bytes 1023:18.
    pub const HDR_RESERVED: Field = 18..1024;

    /// Transport Type.
    pub const TRTYPE: usize = 0;
    /// Address Family.
    pub const ADRFAM: usize = 1;
    /// Subsystem Type.
    pub const SUBTYPE: usize = 2;
    /// Transport Requirements.
    pub const TREQ: usize = 3;
    /// Port ID, u16.
    pub const PORTID: Field = 4..6;
    /// Controller ID, u16.
    pub const CNTLID: Field = 6..8;
    /// Admin Max SQ Size, u16.
    pub const ASQSZ: Field = 8..10;
    /// Entry Flags, u16.
    pub const EFLAGS: Field = 10..12;
    /// Reserved bytes 31:12.
    pub const RESERVED1: Field = 12..32;
    /// Transport Service Identifier, 32 bytes.
    pub const TRSVCID: Field = 32..64;
    /// Reserved bytes 255:64.
    pub const RESERVED2: Field = 64..256;
    /// NVM Subsystem NQN, 256 bytes.
    pub const SUBNQN: Field = 256..512;
    /// Transport Address, 256 bytes.
    pub const TRADDR: Field = 512..768;
    /// Transport Specific Address Subtype, 256 bytes.
    pub const TSAS: Field = 768..1024;
    /// RDMA TSAS: QP Service Type.
    pub const RDMA_QPTYPE: usize = 768;
    /// RDMA TSAS: Provider Type.
    pub const RDMA_PRTYPE: usize = 769;
    /// RDMA TSAS: Connection Management Service.
    pub const RDMA_CMS: usize = 770;
    /// RDMA TSAS: reserved bytes 775:771.
    pub const RDMA_RESERVED1: Field = 771..776;
    /// RDMA TSAS: Partition Key, u16.
    pub const RDMA_PKEY: Field = 776..778;
    /// RDMA TSAS: reserved bytes 1023:778.
    pub const RDMA_RESERVED2: Field = 778..1024;
}

view!(
    /// A read/write view of the discovery log page header.
    DiscoveryLogHeader,
    DISCOVERY_LOG_HEADER_LEN,
    "discovery log header"
);

accessors!(DiscoveryLogHeader {
    /// Generation Counter.
    genctr, set_genctr: u64 @ field::HDR_GENCTR;
    /// Number of Records.
    numrec, set_numrec: u64 @ field::HDR_NUMREC;
    /// Record Format.
    recfmt, set_recfmt: u16 @ field::HDR_RECFMT;
});

view!(
    /// A read/write view of one discovery log page entry.
    DiscoveryEntry,
    DISCOVERY_LOG_ENTRY_LEN,
    "discovery log entry"
);

accessors!(DiscoveryEntry {
    /// Transport Type.
    trtype, set_trtype: u8 @ field::TRTYPE;
    /// Address Family.
    adrfam, set_adrfam: u8 @ field::ADRFAM;
    /// Subsystem Type.
    subtype, set_subtype: u8 @ field::SUBTYPE;
    /// Transport Requirements.
    treq, set_treq: u8 @ field::TREQ;
    /// Port ID.
    portid, set_portid: u16 @ field::PORTID;
    /// Controller ID.
    cntlid, set_cntlid: u16 @ field::CNTLID;
    /// Admin Max SQ Size.
    asqsz, set_asqsz: u16 @ field::ASQSZ;
    /// Entry Flags.
    eflags, set_eflags: u16 @ field::EFLAGS;
    /// The 32 bytes of the TRSVCID field.
    trsvcid_field, trsvcid_field_mut: [u8] @ field::TRSVCID;
    /// The 256 bytes of the SUBNQN field.
    subnqn_field, subnqn_field_mut: [u8] @ field::SUBNQN;
    /// The 256 bytes of the TRADDR field.
    traddr_field, traddr_field_mut: [u8] @ field::TRADDR;
    /// The 256 bytes of the TSAS field.
    tsas_field, tsas_field_mut: [u8] @ field::TSAS;
    /// RDMA TSAS: QP Service Type.
    rdma_qptype, set_rdma_qptype: u8 @ field::RDMA_QPTYPE;
    /// RDMA TSAS: Provider Type.
    rdma_prtype, set_rdma_prtype: u8 @ field::RDMA_PRTYPE;
    /// RDMA TSAS: Connection Management Service.
    rdma_cms, set_rdma_cms: u8 @ field::RDMA_CMS;
    /// RDMA TSAS: Partition Key.
    rdma_pkey, set_rdma_pkey: u16 @ field::RDMA_PKEY;
});

mod repr;
pub use repr::{DiscoveryEntryRepr, DiscoveryLogHeaderRepr, DiscoveryLogRepr, RdmaTsas};

#[cfg(test)]
mod tests;
