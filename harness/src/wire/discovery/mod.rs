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

use super::field::{check_bits, check_len, check_zero, get_u16, get_u64, set_u16, set_u64, Field};
use super::{Result, WireError};

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

/// A read/write view of the discovery log page header.
#[derive(Debug, Clone)]
pub struct DiscoveryLogHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DiscoveryLogHeader<T> {
    /// Wraps a buffer without checking its length; getters panic if it is shorter than
    /// 1024 bytes.
    pub const fn new_unchecked(buffer: T) -> DiscoveryLogHeader<T> {
        DiscoveryLogHeader { buffer }
    }

    /// Wraps a buffer of at least 1024 bytes.
    pub fn new_checked(buffer: T) -> Result<DiscoveryLogHeader<T>> {
        let h = DiscoveryLogHeader::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// `Err(Truncated)` if the buffer is shorter than 1024 bytes.
    pub fn check_len(&self) -> Result<()> {
        check_len(
            "discovery log header",
            DISCOVERY_LOG_HEADER_LEN,
            self.buffer.as_ref().len(),
        )
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

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

/// A read/write view of one discovery log page entry.
#[derive(Debug, Clone)]
pub struct DiscoveryEntry<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DiscoveryEntry<T> {
    /// Wraps a buffer without checking its length; getters panic if it is shorter than
    /// 1024 bytes.
    pub const fn new_unchecked(buffer: T) -> DiscoveryEntry<T> {
        DiscoveryEntry { buffer }
    }

    /// Wraps a buffer of at least 1024 bytes.
    pub fn new_checked(buffer: T) -> Result<DiscoveryEntry<T>> {
        let e = DiscoveryEntry::new_unchecked(buffer);
        e.check_len()?;
        Ok(e)
    }

    /// `Err(Truncated)` if the buffer is shorter than 1024 bytes.
    pub fn check_len(&self) -> Result<()> {
        check_len(
            "discovery log entry",
            DISCOVERY_LOG_ENTRY_LEN,
            self.buffer.as_ref().len(),
        )
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

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

/// The space-padded ASCII fields, with the names their errors carry.
#[derive(Debug, Clone, Copy)]
enum Text {
    Trsvcid,
    Traddr,
}

impl Text {
    fn non_ascii(self) -> &'static str {
        match self {
            Text::Trsvcid => "trsvcid (non-ASCII byte)",
            Text::Traddr => "traddr (non-ASCII byte)",
        }
    }

    fn too_long(self) -> &'static str {
        match self {
            Text::Trsvcid => "trsvcid (length over 32 bytes)",
            Text::Traddr => "traddr (length over 256 bytes)",
        }
    }

    fn nul(self) -> &'static str {
        match self {
            Text::Trsvcid => "trsvcid (NUL byte)",
            Text::Traddr => "traddr (NUL byte)",
        }
    }

    fn trailing_space(self) -> &'static str {
        match self {
            Text::Trsvcid => "trsvcid (ends in a space, which reads back as padding)",
            Text::Traddr => "traddr (ends in a space, which reads back as padding)",
        }
    }
}

/// Reads a space- or NUL-padded ASCII field: the bytes before the first NUL, trailing
/// spaces removed.
fn parse_text(bytes: &[u8], which: Text) -> Result<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let mut text = &bytes[..end];
    while let [rest @ .., b' '] = text {
        text = rest;
    }
    if let Some(&b) = text.iter().find(|b| !b.is_ascii()) {
        return Err(WireError::BadValue {
            field: which.non_ascii(),
            value: b.into(),
        });
    }
    // All ASCII, hence UTF-8.
    Ok(text.iter().map(|&b| char::from(b)).collect())
}

/// Checks that `text` fits `len` bytes and reads back unchanged from a space-padded field.
fn check_text(text: &str, len: usize, which: Text) -> Result<()> {
    let b = text.as_bytes();
    if b.len() > len {
        return Err(WireError::BadValue {
            field: which.too_long(),
            value: b.len() as u64,
        });
    }
    if let Some(&x) = b.iter().find(|x| !x.is_ascii()) {
        return Err(WireError::BadValue {
            field: which.non_ascii(),
            value: x.into(),
        });
    }
    if b.contains(&0) {
        return Err(WireError::BadValue {
            field: which.nul(),
            value: 0,
        });
    }
    if b.last() == Some(&b' ') {
        return Err(WireError::BadValue {
            field: which.trailing_space(),
            value: u64::from(b' '),
        });
    }
    Ok(())
}

/// Writes checked `text` into `out`, padded with spaces.
fn emit_text(text: &str, out: &mut [u8]) {
    out.fill(b' ');
    out[..text.len()].copy_from_slice(text.as_bytes());
}

/// Reads the NUL-terminated SUBNQN.
fn parse_subnqn(bytes: &[u8]) -> Result<String> {
    match bytes.iter().position(|&b| b == 0) {
        Some(len) => core::str::from_utf8(&bytes[..len])
            .map(str::to_owned)
            .map_err(|_| WireError::NqnInvalid { field: "subnqn" }),
        None => Err(WireError::NqnUnterminated {
            field: "subnqn",
            max: SUBNQN_MAX_LEN,
        }),
    }
}

/// Checks that `nqn` fits the SUBNQN field with its terminator and has no NUL.
fn check_subnqn(nqn: &str) -> Result<()> {
    if nqn.len() > SUBNQN_MAX_LEN {
        return Err(WireError::NqnTooLong {
            field: "subnqn",
            len: nqn.len(),
            max: SUBNQN_MAX_LEN,
        });
    }
    if nqn.as_bytes().contains(&0) {
        return Err(WireError::NqnInvalid { field: "subnqn" });
    }
    Ok(())
}

/// A parsed discovery log page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DiscoveryLogHeaderRepr {
    /// Generation Counter: changes whenever the log's contents change.
    pub genctr: u64,
    /// Number of Records that follow the header.
    pub numrec: u64,
    /// Record Format (0 for the format of this module).
    pub recfmt: u16,
}

impl DiscoveryLogHeaderRepr {
    /// Parses the header; reserved bytes 1023:18 must be zero.
    pub fn parse<T: AsRef<[u8]>>(header: &DiscoveryLogHeader<T>) -> Result<DiscoveryLogHeaderRepr> {
        header.check_len()?;
        check_zero(
            header.buffer.as_ref(),
            field::HDR_RESERVED,
            "discovery log header reserved bytes 1023:18",
        )?;
        Ok(DiscoveryLogHeaderRepr {
            genctr: header.genctr(),
            numrec: header.numrec(),
            recfmt: header.recfmt(),
        })
    }

    /// Parses the first 1024 bytes of `bytes`.
    pub fn parse_bytes(bytes: &[u8]) -> Result<DiscoveryLogHeaderRepr> {
        DiscoveryLogHeaderRepr::parse(&DiscoveryLogHeader::new_checked(bytes)?)
    }

    /// Length of the emitted header (1024).
    pub const fn buffer_len(&self) -> usize {
        DISCOVERY_LOG_HEADER_LEN
    }

    /// Writes the header into the first 1024 bytes of `buf`, reserved bytes zeroed; fails
    /// when `buf` is short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("discovery log header", DISCOVERY_LOG_HEADER_LEN, buf.len())?;
        let buf = &mut buf[..DISCOVERY_LOG_HEADER_LEN];
        buf.fill(0);
        let mut h = DiscoveryLogHeader::new_unchecked(buf);
        h.set_genctr(self.genctr);
        h.set_numrec(self.numrec);
        h.set_recfmt(self.recfmt);
        Ok(())
    }

    /// The 1024 emitted bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut b = vec![0u8; DISCOVERY_LOG_HEADER_LEN];
        self.emit(&mut b)?;
        Ok(b)
    }
}

/// The RDMA Transport Specific Address Subtype of a discovery log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RdmaTsas {
    /// QP Service Type ([`QPTYPE_RC`], [`QPTYPE_DATAGRAM`]).
    pub qptype: u8,
    /// Provider Type ([`PRTYPE_NONE`], [`PRTYPE_ROCEV2`], ...).
    pub prtype: u8,
    /// Connection Management Service ([`CMS_RDMA_CM`]).
    pub cms: u8,
    /// Partition Key.
    pub pkey: u16,
}

/// A parsed discovery log page entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DiscoveryEntryRepr {
    /// Transport Type ([`TRTYPE_RDMA`], ...).
    pub trtype: u8,
    /// Address Family ([`ADRFAM_IPV4`], ...).
    pub adrfam: u8,
    /// Subsystem Type ([`SUBTYPE_NVME`], ...).
    pub subtype: u8,
    /// Transport Requirements: secure channel in bits 1:0 ([`TREQ_NOT_SPECIFIED`], ...),
    /// [`TREQ_DISABLE_SQFLOW`] in bit 2.
    pub treq: u8,
    /// Port ID.
    pub portid: u16,
    /// Controller ID ([`CNTLID_DYNAMIC`](super::CNTLID_DYNAMIC) for the dynamic model).
    pub cntlid: u16,
    /// Admin Max SQ Size.
    pub asqsz: u16,
    /// Entry Flags.
    pub eflags: u16,
    /// Transport Service Identifier, ASCII, at most 32 bytes (RDMA: the port, "4420").
    pub trsvcid: String,
    /// NVM Subsystem NQN, at most 255 bytes.
    pub subnqn: String,
    /// Transport Address, ASCII, at most 256 bytes (e.g. "10.0.2.15").
    pub traddr: String,
    /// The RDMA TSAS: `Some` exactly when `trtype` is [`TRTYPE_RDMA`].
    pub rdma: Option<RdmaTsas>,
}

impl DiscoveryEntryRepr {
    /// Parses an entry: reserved bytes and TREQ bits 7:3 must be zero, the secure channel
    /// must not be 11b, TRSVCID and TRADDR must be ASCII, SUBNQN NUL-terminated UTF-8, and
    /// for RDMA the reserved TSAS bytes must be zero.
    pub fn parse<T: AsRef<[u8]>>(entry: &DiscoveryEntry<T>) -> Result<DiscoveryEntryRepr> {
        entry.check_len()?;
        let b = entry.buffer.as_ref();
        let treq = entry.treq();
        check_bits(
            treq.into(),
            0xf8,
            "discovery entry treq reserved bits 7:3",
            field::TREQ,
        )?;
        if treq & TREQ_SECURE_CHANNEL_MASK == 0b11 {
            return Err(WireError::BadValue {
                field: "treq secure channel (11b is reserved)",
                value: treq.into(),
            });
        }
        check_zero(b, field::RESERVED1, "discovery entry reserved bytes 31:12")?;
        check_zero(b, field::RESERVED2, "discovery entry reserved bytes 255:64")?;
        let trtype = entry.trtype();
        let rdma = if trtype == TRTYPE_RDMA {
            check_zero(
                b,
                field::RDMA_RESERVED1,
                "discovery entry rdma tsas reserved bytes 775:771",
            )?;
            check_zero(
                b,
                field::RDMA_RESERVED2,
                "discovery entry rdma tsas reserved bytes 1023:778",
            )?;
            Some(RdmaTsas {
                qptype: entry.rdma_qptype(),
                prtype: entry.rdma_prtype(),
                cms: entry.rdma_cms(),
                pkey: entry.rdma_pkey(),
            })
        } else {
            None
        };
        Ok(DiscoveryEntryRepr {
            trtype,
            adrfam: entry.adrfam(),
            subtype: entry.subtype(),
            treq,
            portid: entry.portid(),
            cntlid: entry.cntlid(),
            asqsz: entry.asqsz(),
            eflags: entry.eflags(),
            trsvcid: parse_text(entry.trsvcid_field(), Text::Trsvcid)?,
            subnqn: parse_subnqn(entry.subnqn_field())?,
            traddr: parse_text(entry.traddr_field(), Text::Traddr)?,
            rdma,
        })
    }

    /// Parses the first 1024 bytes of `bytes`.
    pub fn parse_bytes(bytes: &[u8]) -> Result<DiscoveryEntryRepr> {
        DiscoveryEntryRepr::parse(&DiscoveryEntry::new_checked(bytes)?)
    }

    /// Length of the emitted entry (1024).
    pub const fn buffer_len(&self) -> usize {
        DISCOVERY_LOG_ENTRY_LEN
    }

    /// Checks every field that `emit` could refuse.
    fn check(&self) -> Result<()> {
        check_bits(
            self.treq.into(),
            0xf8,
            "discovery entry treq reserved bits 7:3",
            field::TREQ,
        )?;
        if self.treq & TREQ_SECURE_CHANNEL_MASK == 0b11 {
            return Err(WireError::BadValue {
                field: "treq secure channel (11b is reserved)",
                value: self.treq.into(),
            });
        }
        if (self.trtype == TRTYPE_RDMA) != self.rdma.is_some() {
            return Err(WireError::BadValue {
                field: "discovery entry rdma (present exactly when trtype is 1, RDMA)",
                value: self.trtype.into(),
            });
        }
        check_text(&self.trsvcid, field::TRSVCID.len(), Text::Trsvcid)?;
        check_subnqn(&self.subnqn)?;
        check_text(&self.traddr, field::TRADDR.len(), Text::Traddr)
    }

    /// Writes the entry into the first 1024 bytes of `buf`: TRSVCID and TRADDR padded with
    /// spaces, SUBNQN with NULs, reserved bytes (and a non-RDMA TSAS) zeroed. Fails when
    /// `buf` is short, TREQ has reserved bits or values, `rdma` does not match `trtype`,
    /// or a text field does not fit or would not read back the same.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("discovery log entry", DISCOVERY_LOG_ENTRY_LEN, buf.len())?;
        self.check()?;
        let buf = &mut buf[..DISCOVERY_LOG_ENTRY_LEN];
        buf.fill(0);
        let mut e = DiscoveryEntry::new_unchecked(buf);
        e.set_trtype(self.trtype);
        e.set_adrfam(self.adrfam);
        e.set_subtype(self.subtype);
        e.set_treq(self.treq);
        e.set_portid(self.portid);
        e.set_cntlid(self.cntlid);
        e.set_asqsz(self.asqsz);
        e.set_eflags(self.eflags);
        emit_text(&self.trsvcid, e.trsvcid_field_mut());
        e.subnqn_field_mut()[..self.subnqn.len()].copy_from_slice(self.subnqn.as_bytes());
        emit_text(&self.traddr, e.traddr_field_mut());
        if let Some(r) = self.rdma {
            e.set_rdma_qptype(r.qptype);
            e.set_rdma_prtype(r.prtype);
            e.set_rdma_cms(r.cms);
            e.set_rdma_pkey(r.pkey);
        }
        Ok(())
    }

    /// The 1024 emitted bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut b = vec![0u8; DISCOVERY_LOG_ENTRY_LEN];
        self.emit(&mut b)?;
        Ok(b)
    }
}

/// A whole discovery log page: the header and its NUMREC entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DiscoveryLogRepr {
    /// The header; `header.numrec` equals `entries.len()`.
    pub header: DiscoveryLogHeaderRepr,
    /// The entries, in log order.
    pub entries: Vec<DiscoveryEntryRepr>,
}

impl DiscoveryLogRepr {
    /// Parses a header and the NUMREC entries after it. A buffer shorter than
    /// `1024 + 1024 * NUMREC` bytes is `Err(Truncated)` (with `need` saturated at
    /// `usize::MAX` when that size overflows), found before anything is allocated; bytes
    /// after the last entry are ignored.
    pub fn parse_bytes(bytes: &[u8]) -> Result<DiscoveryLogRepr> {
        let header = DiscoveryLogHeaderRepr::parse_bytes(bytes)?;
        let need = usize::try_from(header.numrec)
            .ok()
            .and_then(|n| n.checked_mul(DISCOVERY_LOG_ENTRY_LEN))
            .and_then(|n| n.checked_add(DISCOVERY_LOG_HEADER_LEN))
            .unwrap_or(usize::MAX);
        check_len("discovery log", need, bytes.len())?;
        let entries = bytes[DISCOVERY_LOG_HEADER_LEN..need]
            .chunks_exact(DISCOVERY_LOG_ENTRY_LEN)
            .map(DiscoveryEntryRepr::parse_bytes)
            .collect::<Result<Vec<_>>>()?;
        Ok(DiscoveryLogRepr { header, entries })
    }

    /// Length of the emitted log: `1024 + 1024 * entries.len()`.
    pub fn buffer_len(&self) -> usize {
        DISCOVERY_LOG_HEADER_LEN + DISCOVERY_LOG_ENTRY_LEN * self.entries.len()
    }

    /// Writes the header and the entries into the first `buffer_len()` bytes of `buf`.
    /// Fails when `buf` is short, `header.numrec` is not `entries.len()`, or an entry
    /// cannot be emitted.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("discovery log", self.buffer_len(), buf.len())?;
        if self.header.numrec != self.entries.len() as u64 {
            return Err(WireError::BadValue {
                field: "discovery log numrec (differs from the number of entries)",
                value: self.header.numrec,
            });
        }
        // Validate every entry before touching the buffer.
        for e in &self.entries {
            e.check()?;
        }
        let (head, rest) = buf.split_at_mut(DISCOVERY_LOG_HEADER_LEN);
        self.header.emit(head)?;
        for (e, out) in self
            .entries
            .iter()
            .zip(rest.chunks_exact_mut(DISCOVERY_LOG_ENTRY_LEN))
        {
            e.emit(out)?;
        }
        Ok(())
    }

    /// The `buffer_len()` emitted bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut b = vec![0u8; self.buffer_len()];
        self.emit(&mut b)?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CNTLID_DYNAMIC;
    use proptest::prelude::*;

    const SUB: &str = "nqn.2014-08.org.nvmexpress:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";

    /// An RDMA entry as Linux nvmet writes it (`nvmet_format_discovery_entry`).
    fn rdma_by_hand() -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[0] = 1; // TRTYPE RDMA
        b[1] = 1; // ADRFAM IPv4
        b[2] = 2; // SUBTYPE NVM subsystem
        b[3] = 0b110; // TREQ: not required, SQ flow control disable supported
        b[4..6].copy_from_slice(&[0x01, 0x00]); // PORTID 1
        b[6..8].copy_from_slice(&[0xff, 0xff]); // CNTLID dynamic
        b[8..10].copy_from_slice(&[0x20, 0x00]); // ASQSZ 32
        b[10..12].copy_from_slice(&[0x00, 0x00]); // EFLAGS
        b[32..64].fill(b' ');
        b[32..36].copy_from_slice(b"4420");
        b[256..256 + SUB.len()].copy_from_slice(SUB.as_bytes());
        b[512..768].fill(b' ');
        b[512..521].copy_from_slice(b"10.0.2.15");
        b[768] = 1; // QPTYPE reliable connected
        b[769] = 1; // PRTYPE none
        b[770] = 1; // CMS RDMA_CM
        b[776..778].copy_from_slice(&[0xff, 0xff]); // PKEY
        b
    }

    fn rdma_entry() -> DiscoveryEntryRepr {
        DiscoveryEntryRepr {
            trtype: TRTYPE_RDMA,
            adrfam: ADRFAM_IPV4,
            subtype: SUBTYPE_NVME,
            treq: TREQ_NOT_REQUIRED | TREQ_DISABLE_SQFLOW,
            portid: 1,
            cntlid: CNTLID_DYNAMIC,
            asqsz: 32,
            eflags: 0,
            trsvcid: "4420".into(),
            subnqn: SUB.into(),
            traddr: "10.0.2.15".into(),
            rdma: Some(RdmaTsas {
                qptype: QPTYPE_RC,
                prtype: PRTYPE_NONE,
                cms: CMS_RDMA_CM,
                pkey: 0xffff,
            }),
        }
    }

    #[test]
    fn entry_layout_by_hand() {
        let b = rdma_by_hand();
        assert_eq!(DiscoveryEntryRepr::parse_bytes(&b).unwrap(), rdma_entry());
        assert_eq!(rdma_entry().to_bytes().unwrap(), b);
        let v = DiscoveryEntry::new_checked(&b[..]).unwrap();
        assert_eq!(v.portid(), 1);
        assert_eq!(v.asqsz(), 32);
        assert_eq!(&v.trsvcid_field()[..5], b"4420 ");
        assert_eq!(v.rdma_pkey(), 0xffff);
        assert_eq!(field::TRSVCID.start, 32);
        assert_eq!(field::SUBNQN.start, 256);
        assert_eq!(field::TRADDR.start, 512);
        assert_eq!(field::TSAS.start, 768);
    }

    #[test]
    fn header_layout_by_hand() {
        let mut b = vec![0u8; 1024];
        b[0..8].copy_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]); // GENCTR 7
        b[8..16].copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]); // NUMREC 2
        let h = DiscoveryLogHeaderRepr::parse_bytes(&b).unwrap();
        assert_eq!(
            h,
            DiscoveryLogHeaderRepr {
                genctr: 7,
                numrec: 2,
                recfmt: 0
            }
        );
        assert_eq!(h.to_bytes().unwrap(), b);
        b[1023] = 1;
        assert_eq!(
            DiscoveryLogHeaderRepr::parse_bytes(&b),
            Err(WireError::Reserved {
                what: "discovery log header reserved bytes 1023:18",
                offset: 1023
            })
        );
    }

    #[test]
    fn text_padding() {
        // NUL padding (older targets) reads the same as space padding; bytes after the
        // first NUL are ignored.
        let mut b = rdma_by_hand();
        b[32..64].fill(0);
        b[32..36].copy_from_slice(b"4420");
        b[40] = 0xff;
        b[512..768].fill(0);
        b[512..521].copy_from_slice(b"10.0.2.15");
        b[521] = b' ';
        assert_eq!(DiscoveryEntryRepr::parse_bytes(&b).unwrap(), rdma_entry());
        // Non-ASCII before the padding.
        let mut b = rdma_by_hand();
        b[513] = 0xc3;
        assert_eq!(
            DiscoveryEntryRepr::parse_bytes(&b),
            Err(WireError::BadValue {
                field: "traddr (non-ASCII byte)",
                value: 0xc3
            })
        );
        // A field of 32 characters, no padding at all.
        let mut b = rdma_by_hand();
        b[32..64].fill(b'9');
        assert_eq!(
            DiscoveryEntryRepr::parse_bytes(&b).unwrap().trsvcid,
            "9".repeat(32)
        );
    }

    #[test]
    fn subnqn_rules() {
        let mut b = rdma_by_hand();
        b[256..512].fill(b'n');
        assert_eq!(
            DiscoveryEntryRepr::parse_bytes(&b),
            Err(WireError::NqnUnterminated {
                field: "subnqn",
                max: 255
            })
        );
        b[511] = 0;
        assert_eq!(
            DiscoveryEntryRepr::parse_bytes(&b).unwrap().subnqn.len(),
            255
        );
        b[256] = 0xff;
        assert_eq!(
            DiscoveryEntryRepr::parse_bytes(&b),
            Err(WireError::NqnInvalid { field: "subnqn" })
        );
    }

    #[test]
    fn reserved_and_treq() {
        for (at, what) in [
            (12, "discovery entry reserved bytes 31:12"),
            (255, "discovery entry reserved bytes 255:64"),
            (771, "discovery entry rdma tsas reserved bytes 775:771"),
            (1023, "discovery entry rdma tsas reserved bytes 1023:778"),
        ] {
            let mut b = rdma_by_hand();
            b[at] = 1;
            assert_eq!(
                DiscoveryEntryRepr::parse_bytes(&b),
                Err(WireError::Reserved { what, offset: at })
            );
        }
        let mut b = rdma_by_hand();
        b[3] = 0x08;
        assert_eq!(
            DiscoveryEntryRepr::parse_bytes(&b),
            Err(WireError::Reserved {
                what: "discovery entry treq reserved bits 7:3",
                offset: 3
            })
        );
        b[3] = 0x03;
        assert!(matches!(
            DiscoveryEntryRepr::parse_bytes(&b),
            Err(WireError::BadValue { value: 3, .. })
        ));
        // A TCP entry: the TSAS is not interpreted, and emitted as zeros.
        let mut b = rdma_by_hand();
        b[0] = TRTYPE_TCP;
        b[771] = 9;
        let r = DiscoveryEntryRepr::parse_bytes(&b).unwrap();
        assert_eq!(r.rdma, None);
        assert!(r.to_bytes().unwrap()[768..].iter().all(|&x| x == 0));
    }

    #[test]
    fn emit_errors() {
        let ok = rdma_entry();
        let cases: [(DiscoveryEntryRepr, WireError); 7] = [
            (
                DiscoveryEntryRepr {
                    trsvcid: "1".repeat(33),
                    ..ok.clone()
                },
                WireError::BadValue {
                    field: "trsvcid (length over 32 bytes)",
                    value: 33,
                },
            ),
            (
                DiscoveryEntryRepr {
                    traddr: "é".into(),
                    ..ok.clone()
                },
                WireError::BadValue {
                    field: "traddr (non-ASCII byte)",
                    value: 0xc3,
                },
            ),
            (
                DiscoveryEntryRepr {
                    traddr: "a\0b".into(),
                    ..ok.clone()
                },
                WireError::BadValue {
                    field: "traddr (NUL byte)",
                    value: 0,
                },
            ),
            (
                DiscoveryEntryRepr {
                    trsvcid: "4420 ".into(),
                    ..ok.clone()
                },
                WireError::BadValue {
                    field: "trsvcid (ends in a space, which reads back as padding)",
                    value: 0x20,
                },
            ),
            (
                DiscoveryEntryRepr {
                    subnqn: "x".repeat(256),
                    ..ok.clone()
                },
                WireError::NqnTooLong {
                    field: "subnqn",
                    len: 256,
                    max: 255,
                },
            ),
            (
                DiscoveryEntryRepr {
                    rdma: None,
                    ..ok.clone()
                },
                WireError::BadValue {
                    field: "discovery entry rdma (present exactly when trtype is 1, RDMA)",
                    value: 1,
                },
            ),
            (
                DiscoveryEntryRepr {
                    treq: 0x10,
                    ..ok.clone()
                },
                WireError::Reserved {
                    what: "discovery entry treq reserved bits 7:3",
                    offset: 3,
                },
            ),
        ];
        for (r, e) in cases {
            assert_eq!(r.to_bytes(), Err(e));
        }
        assert!(ok.emit(&mut [0u8; 1023]).is_err());
        for n in [0, 1, 511, 1023] {
            assert_eq!(
                DiscoveryEntryRepr::parse_bytes(&vec![0u8; n]),
                Err(WireError::Truncated {
                    what: "discovery log entry",
                    need: 1024,
                    got: n
                })
            );
        }
    }

    #[test]
    fn whole_log() {
        let log = DiscoveryLogRepr {
            header: DiscoveryLogHeaderRepr {
                genctr: 3,
                numrec: 2,
                recfmt: 0,
            },
            entries: vec![
                rdma_entry(),
                DiscoveryEntryRepr {
                    trtype: TRTYPE_TCP,
                    subtype: SUBTYPE_CURRENT_DISCOVERY,
                    subnqn: "nqn.2014-08.org.nvmexpress.discovery".into(),
                    rdma: None,
                    ..rdma_entry()
                },
            ],
        };
        let b = log.to_bytes().unwrap();
        assert_eq!(b.len(), 3 * 1024);
        assert_eq!(&b[1024..2048], &rdma_by_hand()[..]);
        assert_eq!(DiscoveryLogRepr::parse_bytes(&b).unwrap(), log);
        // Trailing bytes are ignored.
        let mut longer = b.clone();
        longer.extend_from_slice(&[0xaa; 100]);
        assert_eq!(DiscoveryLogRepr::parse_bytes(&longer).unwrap(), log);
        // One byte short of the last entry.
        assert_eq!(
            DiscoveryLogRepr::parse_bytes(&b[..3071]),
            Err(WireError::Truncated {
                what: "discovery log",
                need: 3072,
                got: 3071
            })
        );
        // numrec must match the entries when emitting.
        let mut bad = log.clone();
        bad.header.numrec = 5;
        assert!(matches!(
            bad.to_bytes(),
            Err(WireError::BadValue { value: 5, .. })
        ));
        assert!(log.emit(&mut vec![0u8; 3071]).is_err());
    }

    #[test]
    fn huge_numrec_is_a_clean_error() {
        let h = DiscoveryLogHeaderRepr {
            genctr: 0,
            numrec: u64::MAX,
            recfmt: 0,
        };
        let b = h.to_bytes().unwrap();
        assert_eq!(
            DiscoveryLogRepr::parse_bytes(&b),
            Err(WireError::Truncated {
                what: "discovery log",
                need: usize::MAX,
                got: 1024
            })
        );
        let mut b = b;
        b[8..16].copy_from_slice(&(u64::MAX / 1024).to_le_bytes());
        assert!(matches!(
            DiscoveryLogRepr::parse_bytes(&b),
            Err(WireError::Truncated { .. })
        ));
        assert_eq!(
            DiscoveryLogRepr::parse_bytes(&[]),
            Err(WireError::Truncated {
                what: "discovery log header",
                need: 1024,
                got: 0
            })
        );
    }

    // ------------------------------------------------------------ properties

    /// ASCII text (no NUL, no trailing space) of at most `max` bytes.
    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[\\x01-\\x7f]{{0,{max}}}"))
            .unwrap()
            .prop_map(|s| s.trim_end_matches(' ').to_owned())
    }

    fn subnqn() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9.:_-]{0,255}",
            "nqn\\.2014-08\\.org\\.nvmexpress:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[^\\x00]{0,60}",
        ]
        .prop_filter("at most 255 bytes", |s| s.len() <= SUBNQN_MAX_LEN)
    }

    fn rdma_tsas() -> impl Strategy<Value = RdmaTsas> {
        any::<(u8, u8, u8, u16)>().prop_map(|(qptype, prtype, cms, pkey)| RdmaTsas {
            qptype,
            prtype,
            cms,
            pkey,
        })
    }

    fn entry() -> impl Strategy<Value = DiscoveryEntryRepr> {
        (
            prop_oneof![Just(TRTYPE_RDMA), any::<u8>()],
            any::<(u8, u8)>(),
            (0u8..3, any::<bool>()),
            any::<[u16; 4]>(),
            (text(32), subnqn(), text(256)),
            rdma_tsas(),
        )
            .prop_map(
                |(
                    trtype,
                    (adrfam, subtype),
                    (sc, sqflow),
                    [portid, cntlid, asqsz, eflags],
                    (trsvcid, subnqn, traddr),
                    tsas,
                )| DiscoveryEntryRepr {
                    trtype,
                    adrfam,
                    subtype,
                    treq: sc | if sqflow { TREQ_DISABLE_SQFLOW } else { 0 },
                    portid,
                    cntlid,
                    asqsz,
                    eflags,
                    trsvcid,
                    subnqn,
                    traddr,
                    rdma: (trtype == TRTYPE_RDMA).then_some(tsas),
                },
            )
    }

    proptest! {
        #[test]
        fn header_round_trip(
            genctr in any::<u64>(),
            numrec in any::<u64>(),
            recfmt in any::<u16>(),
        ) {
            let h = DiscoveryLogHeaderRepr { genctr, numrec, recfmt };
            let b = h.to_bytes()?;
            prop_assert_eq!(b.len(), h.buffer_len());
            prop_assert_eq!(DiscoveryLogHeaderRepr::parse_bytes(&b)?, h);
        }

        #[test]
        fn entry_round_trip(r in entry()) {
            let b = r.to_bytes()?;
            prop_assert_eq!(b.len(), r.buffer_len());
            prop_assert_eq!(DiscoveryEntryRepr::parse_bytes(&b)?, r.clone());
            prop_assert!(DiscoveryEntryRepr::parse_bytes(&b[..1023]).is_err());
        }

        #[test]
        fn log_round_trip(
            genctr in any::<u64>(),
            entries in proptest::collection::vec(entry(), 0..4),
        ) {
            let log = DiscoveryLogRepr {
                header: DiscoveryLogHeaderRepr { genctr, numrec: entries.len() as u64, recfmt: 0 },
                entries,
            };
            let b = log.to_bytes()?;
            prop_assert_eq!(b.len(), log.buffer_len());
            prop_assert_eq!(DiscoveryLogRepr::parse_bytes(&b)?, log);
            if b.len() > DISCOVERY_LOG_HEADER_LEN {
                let short = DiscoveryLogRepr::parse_bytes(&b[..b.len() - 1]);
                let is_truncated = matches!(short, Err(WireError::Truncated { .. }));
                prop_assert!(is_truncated);
            }
        }

        /// Mostly-valid entries: random bytes with the reserved ranges zeroed, so that
        /// the text and TSAS rules are reached. Whatever parses re-emits to bytes that
        /// parse to the same repr.
        #[test]
        fn random_entry_bytes(
            b in proptest::collection::vec(any::<u8>(), 1024),
            trtype in prop_oneof![Just(TRTYPE_RDMA), Just(TRTYPE_TCP)],
            ascii in any::<bool>(),
        ) {
            let mut b = b;
            b[field::TRTYPE] = trtype;
            b[field::TREQ] &= 0x06;
            b[field::RESERVED1].fill(0);
            b[field::RESERVED2].fill(0);
            b[field::RDMA_RESERVED1].fill(0);
            b[field::RDMA_RESERVED2].fill(0);
            b[field::SUBNQN.end - 1] = 0;
            if ascii {
                for x in &mut b[field::TRSVCID] { *x &= 0x7f; }
                for x in &mut b[field::SUBNQN] { *x &= 0x7f; }
                for x in &mut b[field::TRADDR] { *x &= 0x7f; }
            }
            match DiscoveryEntryRepr::parse_bytes(&b) {
                Ok(r) => prop_assert_eq!(DiscoveryEntryRepr::parse_bytes(&r.to_bytes()?)?, r),
                Err(e) => prop_assert!(!ascii, "ascii entry failed: {:?}", e),
            }
        }

        #[test]
        fn random_log_bytes(
            b in proptest::collection::vec(any::<u8>(), 0..3000),
            numrec in 0u64..4,
        ) {
            let mut b = b;
            if b.len() >= DISCOVERY_LOG_HEADER_LEN {
                b[8..16].copy_from_slice(&numrec.to_le_bytes());
                b[field::HDR_RESERVED].fill(0);
            }
            if let Ok(r) = DiscoveryLogRepr::parse_bytes(&b) {
                prop_assert_eq!(DiscoveryLogRepr::parse_bytes(&r.to_bytes()?)?, r);
            }
        }
    }
}
