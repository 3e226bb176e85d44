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

use super::field::{get_u16, get_u64, set_u16, set_u64, Field};
use super::view::view;

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

impl<T: AsRef<[u8]>> DiscoveryLogHeader<T> {
    /// Generation Counter.
    pub fn genctr(&self) -> u64 {
        get_u64(self.buffer.as_ref(), field::HDR_GENCTR.start)
    }

    /// Number of Records.
    pub fn numrec(&self) -> u64 {
        get_u64(self.buffer.as_ref(), field::HDR_NUMREC.start)
    }

    /// Record Format.
    pub fn recfmt(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::HDR_RECFMT.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DiscoveryLogHeader<T> {
    /// Sets the Generation Counter.
    pub fn set_genctr(&mut self, value: u64) {
        set_u64(self.buffer.as_mut(), field::HDR_GENCTR.start, value);
    }

    /// Sets the Number of Records.
    pub fn set_numrec(&mut self, value: u64) {
        set_u64(self.buffer.as_mut(), field::HDR_NUMREC.start, value);
    }

    /// Sets the Record Format.
    pub fn set_recfmt(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::HDR_RECFMT.start, value);
    }
}

view!(
    /// A read/write view of one discovery log page entry.
    DiscoveryEntry,
    DISCOVERY_LOG_ENTRY_LEN,
    "discovery log entry"
);

impl<T: AsRef<[u8]>> DiscoveryEntry<T> {
    /// Transport Type.
    pub fn trtype(&self) -> u8 {
        self.buffer.as_ref()[field::TRTYPE]
    }

    /// Address Family.
    pub fn adrfam(&self) -> u8 {
        self.buffer.as_ref()[field::ADRFAM]
    }

    /// Subsystem Type.
    pub fn subtype(&self) -> u8 {
        self.buffer.as_ref()[field::SUBTYPE]
    }

    /// Transport Requirements.
    pub fn treq(&self) -> u8 {
        self.buffer.as_ref()[field::TREQ]
    }

    /// Port ID.
    pub fn portid(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PORTID.start)
    }

    /// Controller ID.
    pub fn cntlid(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CNTLID.start)
    }

    /// Admin Max SQ Size.
    pub fn asqsz(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ASQSZ.start)
    }

    /// Entry Flags.
    pub fn eflags(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::EFLAGS.start)
    }

    /// The 32 bytes of the TRSVCID field.
    pub fn trsvcid_field(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TRSVCID]
    }

    /// The 256 bytes of the SUBNQN field.
    pub fn subnqn_field(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SUBNQN]
    }

    /// The 256 bytes of the TRADDR field.
    pub fn traddr_field(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TRADDR]
    }

    /// The 256 bytes of the TSAS field.
    pub fn tsas_field(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TSAS]
    }

    /// RDMA TSAS: QP Service Type.
    pub fn rdma_qptype(&self) -> u8 {
        self.buffer.as_ref()[field::RDMA_QPTYPE]
    }

    /// RDMA TSAS: Provider Type.
    pub fn rdma_prtype(&self) -> u8 {
        self.buffer.as_ref()[field::RDMA_PRTYPE]
    }

    /// RDMA TSAS: Connection Management Service.
    pub fn rdma_cms(&self) -> u8 {
        self.buffer.as_ref()[field::RDMA_CMS]
    }

    /// RDMA TSAS: Partition Key.
    pub fn rdma_pkey(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::RDMA_PKEY.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DiscoveryEntry<T> {
    /// Sets the Transport Type.
    pub fn set_trtype(&mut self, value: u8) {
        self.buffer.as_mut()[field::TRTYPE] = value;
    }

    /// Sets the Address Family.
    pub fn set_adrfam(&mut self, value: u8) {
        self.buffer.as_mut()[field::ADRFAM] = value;
    }

    /// Sets the Subsystem Type.
    pub fn set_subtype(&mut self, value: u8) {
        self.buffer.as_mut()[field::SUBTYPE] = value;
    }

    /// Sets the Transport Requirements.
    pub fn set_treq(&mut self, value: u8) {
        self.buffer.as_mut()[field::TREQ] = value;
    }

    /// Sets the Port ID.
    pub fn set_portid(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::PORTID.start, value);
    }

    /// Sets the Controller ID.
    pub fn set_cntlid(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CNTLID.start, value);
    }

    /// Sets the Admin Max SQ Size.
    pub fn set_asqsz(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::ASQSZ.start, value);
    }

    /// Sets the Entry Flags.
    pub fn set_eflags(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::EFLAGS.start, value);
    }

    /// The TRSVCID field, writable.
    pub fn trsvcid_field_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::TRSVCID]
    }

    /// The SUBNQN field, writable.
    pub fn subnqn_field_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::SUBNQN]
    }

    /// The TRADDR field, writable.
    pub fn traddr_field_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::TRADDR]
    }

    /// The TSAS field, writable.
    pub fn tsas_field_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::TSAS]
    }

    /// Sets the RDMA TSAS QP Service Type.
    pub fn set_rdma_qptype(&mut self, value: u8) {
        self.buffer.as_mut()[field::RDMA_QPTYPE] = value;
    }

    /// Sets the RDMA TSAS Provider Type.
    pub fn set_rdma_prtype(&mut self, value: u8) {
        self.buffer.as_mut()[field::RDMA_PRTYPE] = value;
    }

    /// Sets the RDMA TSAS Connection Management Service.
    pub fn set_rdma_cms(&mut self, value: u8) {
        self.buffer.as_mut()[field::RDMA_CMS] = value;
    }

    /// Sets the RDMA TSAS Partition Key.
    pub fn set_rdma_pkey(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::RDMA_PKEY.start, value);
    }
}

mod repr;
pub use repr::{DiscoveryEntryRepr, DiscoveryLogHeaderRepr, DiscoveryLogRepr, RdmaTsas};

#[cfg(test)]
mod tests;
