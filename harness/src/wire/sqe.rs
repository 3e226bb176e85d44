//! NVMe submission queue entry, 64 bytes (NVMe Base Specification 2.0, "Common Command
//! Format"), and the NVM I/O commands of the NVM Command Set Specification 1.0 (Read,
//! Write, Write Zeroes, Dataset Management; Flush is in the Base specification).
//!
//! | bytes | field |
//! |-------|-------|
//! | 0 | OPC opcode |
//! | 1 | FUSE bits 1:0, reserved bits 5:2, PSDT bits 7:6 |
//! | 3:2 | CID |
//! | 7:4 | NSID |
//! | 11:8, 15:12 | CDW2, CDW3 |
//! | 23:16 | MPTR |
//! | 39:24 | DPTR (PRP1/PRP2, or SGL1 when PSDT is 01b/10b) |
//! | 63:40 | CDW10..CDW15 |
//!
//! Decisions where the specifications differ between revisions:
//! - CDW2, CDW3 and MPTR are kept raw for every command: NVMe 2.0 gives CDW2/3 meaning
//!   for Read/Write/Write Zeroes (extended protection information) and NVMe-oF leaves
//!   MPTR to the transport. They are never checked.
//! - Read/Write CDW12 bits 19:16 and 25 and CDW13 bits 15:8 are reserved (NVM Command Set
//!   1.0) and rejected, so NVMe 2.1's Command Extension Type (bits 19:16) is not accepted.
//!   DTYPE (CDW12 23:20) and DSPEC (CDW13 31:16) are reserved for Read.
//! - Write Zeroes CDW12 bits 23:16 and all of CDW13 are reserved and rejected.
//! - Flush CDW10..15 and Dataset Management CDW10 bits 31:8, CDW11 bits 31:3 and
//!   CDW12..15 are reserved and rejected.
//! - FUSE 11b and PSDT 11b (both reserved) parse successfully: the target judges them. With
//!   PSDT 00b or 11b the data pointer is kept raw; with 01b/10b it must be a valid SGL.

use super::field::{check_bits, check_len, get_u32, get_u64, set_u32, Field};
use super::opcode::NvmOpcode;
use super::sgl::{Sgl, SglRepr};
use super::view::{accessors, view};
use super::{Result, WireError};

/// Length of a submission queue entry in bytes.
pub const SQE_LEN: usize = 64;

/// Byte offsets inside a submission queue entry.
pub mod field {
    use super::Field;
    /// Opcode (byte 0).
    pub const OPCODE: usize = 0;
    /// FUSE (bits 1:0), reserved (bits 5:2) and PSDT (bits 7:6).
    pub const FLAGS: usize = 1;
    /// Command Identifier, u16.
    pub const CID: Field = 2..4;
    /// Namespace Identifier, u32.
    pub const NSID: Field = 4..8;
    /// Command Dword 2, u32.
    pub const CDW2: Field = 8..12;
    /// Command Dword 3, u32.
    pub const CDW3: Field = 12..16;
    /// Metadata Pointer, u64.
    pub const MPTR: Field = 16..24;
    /// Data Pointer: PRP Entry 1 and 2, or SGL Entry 1.
    pub const DPTR: Field = 24..40;
    /// Command Dword 10, u32.
    pub const CDW10: Field = 40..44;
    /// Command Dword 11, u32.
    pub const CDW11: Field = 44..48;
    /// Command Dword 12, u32.
    pub const CDW12: Field = 48..52;
    /// Command Dword 13, u32.
    pub const CDW13: Field = 52..56;
    /// Command Dword 14, u32.
    pub const CDW14: Field = 56..60;
    /// Command Dword 15, u32.
    pub const CDW15: Field = 60..64;
}

/// Bits of CDW0 byte 1.
mod flags {
    pub const FUSE_MASK: u8 = 0x03;
    pub const RESERVED_MASK: u8 = 0x3c;
    pub const PSDT_SHIFT: u8 = 6;
}

view!(
    /// A read/write view of a submission queue entry.
    Sqe,
    SQE_LEN,
    "sqe"
);

accessors!(Sqe {
    /// Opcode (byte 0).
    opcode, set_opcode: u8 @ field::OPCODE;
    /// Byte 1 as is: FUSE, reserved bits and PSDT.
    flags, set_flags: u8 @ field::FLAGS;
    /// Command Identifier.
    cid, set_cid: u16 @ field::CID;
    /// Namespace Identifier.
    nsid, set_nsid: u32 @ field::NSID;
    /// Metadata Pointer.
    mptr, set_mptr: u64 @ field::MPTR;
    /// The 16 data-pointer bytes (24..40).
    dptr, dptr_mut: [u8] @ field::DPTR;
});

impl<T: AsRef<[u8]>> Sqe<T> {
    /// Fused Operation (bits 1:0 of byte 1).
    pub fn fuse(&self) -> Fuse {
        Fuse::from_bits(self.flags())
    }

    /// PRP or SGL for Data Transfer (bits 7:6 of byte 1).
    pub fn psdt(&self) -> Psdt {
        Psdt::from_bits(self.flags() >> flags::PSDT_SHIFT)
    }

    /// A view of the data pointer as SGL Entry 1.
    pub fn sgl1(&self) -> Sgl<&[u8]> {
        Sgl::new_unchecked(self.dptr())
    }

    /// Command dword `n` (0..16) at byte offset `4 * n`; panics if `n >= 16`.
    pub fn cdw(&self, n: usize) -> u32 {
        assert!(n < 16, "command dword index {n} out of range");
        get_u32(self.buffer.as_ref(), 4 * n)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Sqe<T> {
    /// Sets FUSE, keeping the other bits of byte 1.
    pub fn set_fuse(&mut self, value: Fuse) {
        let f = self.flags() & !flags::FUSE_MASK;
        self.set_flags(f | value as u8);
    }

    /// Sets PSDT, keeping the other bits of byte 1.
    pub fn set_psdt(&mut self, value: Psdt) {
        let f = self.flags() & !(0x3 << flags::PSDT_SHIFT);
        self.set_flags(f | (value as u8) << flags::PSDT_SHIFT);
    }

    /// Sets command dword `n` (0..16); panics if `n >= 16`.
    pub fn set_cdw(&mut self, n: usize, value: u32) {
        assert!(n < 16, "command dword index {n} out of range");
        set_u32(self.buffer.as_mut(), 4 * n, value);
    }
}

/// Fused Operation (CDW0 bits 9:8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Fuse {
    /// 00b: normal operation.
    #[default]
    Normal = 0,
    /// 01b: first command of a fused operation.
    First = 1,
    /// 10b: second command of a fused operation.
    Second = 2,
    /// 11b: reserved (parsed so that the target can reject it).
    Reserved = 3,
}

impl Fuse {
    /// From the low two bits of `bits`.
    pub fn from_bits(bits: u8) -> Fuse {
        match bits & 0x3 {
            0 => Fuse::Normal,
            1 => Fuse::First,
            2 => Fuse::Second,
            _ => Fuse::Reserved,
        }
    }
}

/// PRP or SGL for Data Transfer (CDW0 bits 15:14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Psdt {
    /// 00b: PRPs (not allowed on NVMe-oF; parsed so the target can reject it).
    Prp = 0,
    /// 01b: SGL; MPTR is the address of one contiguous metadata buffer. Linux and SPDK
    /// hosts send this on NVMe-oF.
    #[default]
    SglMptrContiguous = 1,
    /// 10b: SGL; MPTR is the address of an SGL segment with one descriptor.
    SglMptrSegment = 2,
    /// 11b: reserved.
    Reserved = 3,
}

impl Psdt {
    /// From the low two bits of `bits`.
    pub fn from_bits(bits: u8) -> Psdt {
        match bits & 0x3 {
            0 => Psdt::Prp,
            1 => Psdt::SglMptrContiguous,
            2 => Psdt::SglMptrSegment,
            _ => Psdt::Reserved,
        }
    }

    /// True for 01b and 10b, the values under which DPTR is an SGL descriptor.
    pub fn is_sgl(self) -> bool {
        matches!(self, Psdt::SglMptrContiguous | Psdt::SglMptrSegment)
    }
}

/// The data pointer (bytes 39:24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataPointer {
    /// SGL Entry 1 (PSDT 01b or 10b).
    Sgl(SglRepr),
    /// The raw 16 bytes (PSDT 00b: PRP1 and PRP2; PSDT 11b: undefined).
    Raw([u8; 16]),
}

impl DataPointer {
    /// PRP Entry 1 and 2 as the raw data pointer (PSDT 00b).
    pub fn prps(prp1: u64, prp2: u64) -> DataPointer {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&prp1.to_le_bytes());
        raw[8..].copy_from_slice(&prp2.to_le_bytes());
        DataPointer::Raw(raw)
    }

    /// PRP Entry 1 and 2 of a raw data pointer; `None` for an SGL.
    pub fn prp_entries(&self) -> Option<(u64, u64)> {
        match self {
            DataPointer::Raw(raw) => Some((get_u64(raw, 0), get_u64(raw, 8))),
            DataPointer::Sgl(_) => None,
        }
    }
}

/// The command-specific part of an SQE (opcode and CDW10..CDW15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqeCommand {
    /// Read (02h).
    Read(RwCommand),
    /// Write (01h).
    Write(RwCommand),
    /// Flush (00h): CDW10..15 reserved.
    Flush,
    /// Write Zeroes (08h).
    WriteZeroes(WriteZeroesCommand),
    /// Dataset Management (09h).
    DatasetManagement(DsmCommand),
    /// Any other command, uninterpreted (admin commands, Fabrics, other I/O opcodes).
    Other {
        /// The opcode.
        opcode: u8,
        /// CDW10..CDW15 as is.
        cdw: [u32; 6],
    },
}

impl SqeCommand {
    /// The opcode this command emits.
    pub fn opcode(&self) -> u8 {
        match self {
            SqeCommand::Read(_) => NvmOpcode::Read.into(),
            SqeCommand::Write(_) => NvmOpcode::Write.into(),
            SqeCommand::Flush => NvmOpcode::Flush.into(),
            SqeCommand::WriteZeroes(_) => NvmOpcode::WriteZeroes.into(),
            SqeCommand::DatasetManagement(_) => NvmOpcode::DatasetManagement.into(),
            SqeCommand::Other { opcode, .. } => *opcode,
        }
    }
}

/// A parsed submission queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqeRepr {
    /// Fused Operation.
    pub fuse: Fuse,
    /// PRP or SGL for Data Transfer; must agree with `dptr` (SGL iff 01b/10b).
    pub psdt: Psdt,
    /// Command Identifier.
    pub cid: u16,
    /// Namespace Identifier.
    pub nsid: u32,
    /// Command Dword 2, uninterpreted.
    pub cdw2: u32,
    /// Command Dword 3, uninterpreted.
    pub cdw3: u32,
    /// Metadata Pointer, uninterpreted.
    pub mptr: u64,
    /// Data Pointer.
    pub dptr: DataPointer,
    /// Opcode and command-specific dwords.
    pub command: SqeCommand,
}

impl SqeRepr {
    /// An SQE with PSDT 01b and `sgl` as SGL Entry 1 (what NVMe-oF hosts send), with
    /// CDW2/3 and MPTR zero.
    pub fn new(cid: u16, nsid: u32, command: SqeCommand, sgl: SglRepr) -> SqeRepr {
        SqeRepr {
            fuse: Fuse::Normal,
            psdt: Psdt::SglMptrContiguous,
            cid,
            nsid,
            cdw2: 0,
            cdw3: 0,
            mptr: 0,
            dptr: DataPointer::Sgl(sgl),
            command,
        }
    }

    /// An SQE with PSDT 00b and PRP Entries 1 and 2 (what a driver writes for a PCIe
    /// controller), with CDW2/3 and MPTR zero.
    pub fn with_prps(cid: u16, nsid: u32, command: SqeCommand, prp1: u64, prp2: u64) -> SqeRepr {
        SqeRepr {
            fuse: Fuse::Normal,
            psdt: Psdt::Prp,
            cid,
            nsid,
            cdw2: 0,
            cdw3: 0,
            mptr: 0,
            dptr: DataPointer::prps(prp1, prp2),
            command,
        }
    }

    /// The opcode.
    pub fn opcode(&self) -> u8 {
        self.command.opcode()
    }

    /// SGL Entry 1, when the data pointer is an SGL.
    pub fn sgl1(&self) -> Option<&SglRepr> {
        match &self.dptr {
            DataPointer::Sgl(s) => Some(s),
            DataPointer::Raw(_) => None,
        }
    }

    fn parse_header<T: AsRef<[u8]>>(sqe: &Sqe<T>) -> Result<(SqeRepr, [u32; 6])> {
        sqe.check_len()?;
        check_bits(
            sqe.flags().into(),
            flags::RESERVED_MASK.into(),
            "sqe cdw0 reserved bits 13:10",
            field::FLAGS,
        )?;
        let psdt = sqe.psdt();
        let dptr = if psdt.is_sgl() {
            DataPointer::Sgl(SglRepr::parse(&sqe.sgl1())?)
        } else {
            let mut raw = [0u8; 16];
            raw.copy_from_slice(sqe.dptr());
            DataPointer::Raw(raw)
        };
        let b = sqe.buffer.as_ref();
        let cdw = core::array::from_fn(|i| sqe.cdw(10 + i));
        let repr = SqeRepr {
            fuse: sqe.fuse(),
            psdt,
            cid: sqe.cid(),
            nsid: sqe.nsid(),
            cdw2: get_u32(b, field::CDW2.start),
            cdw3: get_u32(b, field::CDW3.start),
            mptr: sqe.mptr(),
            dptr,
            command: SqeCommand::Other {
                opcode: sqe.opcode(),
                cdw,
            },
        };
        Ok((repr, cdw))
    }

    /// Parses an SQE of an I/O queue: the NVM opcodes of [`NvmOpcode`] are interpreted
    /// and their reserved fields checked; every other opcode is [`SqeCommand::Other`].
    pub fn parse<T: AsRef<[u8]>>(sqe: &Sqe<T>) -> Result<SqeRepr> {
        let (mut repr, cdw) = SqeRepr::parse_header(sqe)?;
        repr.command = match NvmOpcode::try_from(sqe.opcode()) {
            Ok(NvmOpcode::Read) => SqeCommand::Read(RwCommand::parse(&cdw, true)?),
            Ok(NvmOpcode::Write) => SqeCommand::Write(RwCommand::parse(&cdw, false)?),
            Ok(NvmOpcode::Flush) => {
                for (i, &v) in cdw.iter().enumerate() {
                    check_bits(
                        v.into(),
                        u32::MAX.into(),
                        "flush cdw10..15 (reserved)",
                        field::CDW10.start + 4 * i,
                    )?;
                }
                SqeCommand::Flush
            }
            Ok(NvmOpcode::WriteZeroes) => SqeCommand::WriteZeroes(WriteZeroesCommand::parse(&cdw)?),
            Ok(NvmOpcode::DatasetManagement) => {
                SqeCommand::DatasetManagement(DsmCommand::parse(&cdw)?)
            }
            Err(_) => repr.command,
        };
        Ok(repr)
    }

    /// Parses an SQE without interpreting the opcode: the command is always
    /// [`SqeCommand::Other`]. Use it for admin queues, whose opcodes overlap the NVM ones.
    pub fn parse_raw<T: AsRef<[u8]>>(sqe: &Sqe<T>) -> Result<SqeRepr> {
        SqeRepr::parse_header(sqe).map(|(r, _)| r)
    }

    /// Parses the first 64 bytes of `bytes` as an I/O queue SQE.
    pub fn parse_bytes(bytes: &[u8]) -> Result<SqeRepr> {
        SqeRepr::parse(&Sqe::new_checked(bytes)?)
    }

    /// Length of the emitted SQE (64).
    pub const fn buffer_len(&self) -> usize {
        SQE_LEN
    }

    /// Writes the SQE into the first 64 bytes of `buf`.
    ///
    /// Fails when `buf` is short, when `psdt` and `dptr` disagree, or when a field does
    /// not fit its wire width.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        check_len("sqe", SQE_LEN, buf.len())?;
        let cdw = match &self.command {
            SqeCommand::Read(c) => c.emit(true)?,
            SqeCommand::Write(c) => c.emit(false)?,
            SqeCommand::Flush => [0; 6],
            SqeCommand::WriteZeroes(c) => c.emit()?,
            SqeCommand::DatasetManagement(c) => c.emit(),
            SqeCommand::Other { cdw, .. } => *cdw,
        };
        let mut dptr = [0u8; 16];
        match (&self.dptr, self.psdt.is_sgl()) {
            (DataPointer::Sgl(s), true) => s.emit(&mut dptr)?,
            (DataPointer::Raw(r), false) => dptr = *r,
            _ => {
                return Err(WireError::BadValue {
                    field: "sqe.psdt (does not match the data pointer kind)",
                    value: self.psdt as u64,
                })
            }
        }
        let mut s = Sqe::new_unchecked(&mut buf[..SQE_LEN]);
        s.set_opcode(self.opcode());
        s.set_flags(self.fuse as u8 | (self.psdt as u8) << flags::PSDT_SHIFT);
        s.set_cid(self.cid);
        s.set_nsid(self.nsid);
        s.set_cdw(2, self.cdw2);
        s.set_cdw(3, self.cdw3);
        s.set_mptr(self.mptr);
        s.dptr_mut().copy_from_slice(&dptr);
        for (i, v) in cdw.into_iter().enumerate() {
            s.set_cdw(10 + i, v);
        }
        Ok(())
    }

    /// The 64 emitted bytes.
    pub fn to_bytes(&self) -> Result<[u8; SQE_LEN]> {
        let mut b = [0u8; SQE_LEN];
        self.emit(&mut b)?;
        Ok(b)
    }
}

mod nvm;
pub use nvm::{DsmCommand, RwCommand, WriteZeroesCommand};

#[cfg(test)]
mod tests;
