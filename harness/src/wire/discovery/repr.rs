//! The parsed discovery log: [`DiscoveryLogHeaderRepr`], [`DiscoveryEntryRepr`] (with its
//! RDMA [`RdmaTsas`]) and the whole [`DiscoveryLogRepr`], each with `parse` and `emit`.

use super::super::field::{check_bits, check_len, check_zero};
use super::super::{Result, WireError};
use super::*;

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
    /// Controller ID ([`CNTLID_DYNAMIC`](crate::wire::CNTLID_DYNAMIC) for the dynamic model).
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
