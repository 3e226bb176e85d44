//! The NVM command set's I/O commands as an SQE carries them in CDW10..CDW15 (NVM Command
//! Set Specification 1.0): Read and Write ([`RwCommand`]), Write Zeroes
//! ([`WriteZeroesCommand`]) and Dataset Management ([`DsmCommand`]). Reserved bits are
//! rejected on parse, naming the dword.

use super::super::field::{check_bits, check_width};
use super::super::{Result, WireError};
use super::field;

/// Bits of Read/Write/Write Zeroes CDW12 and CDW13 (NVM Command Set 1.0).
mod rw {
    pub const NLB_MASK: u32 = 0xffff;
    pub const DTYPE_SHIFT: u32 = 20;
    pub const DTYPE_MASK: u32 = 0xf;
    pub const STC: u32 = 1 << 24;
    pub const DEAC: u32 = 1 << 25;
    pub const PRINFO_SHIFT: u32 = 26;
    pub const PRINFO_MASK: u32 = 0xf;
    pub const FUA: u32 = 1 << 30;
    pub const LR: u32 = 1 << 31;
    /// Read/Write CDW12 reserved bits 25 and 19:16.
    pub const RW_CDW12_RESERVED: u32 = (1 << 25) | (0xf << 16);
    /// Read CDW12 bits 23:20 (DTYPE is a Write field).
    pub const READ_CDW12_DTYPE: u32 = 0xf << 20;
    /// Write Zeroes CDW12 reserved bits 23:16.
    pub const WZ_CDW12_RESERVED: u32 = 0xff << 16;
    pub const DSM_MASK: u32 = 0xff;
    /// CDW13 reserved bits 15:8.
    pub const CDW13_RESERVED: u32 = 0xff00;
    pub const DSPEC_SHIFT: u32 = 16;
}

/// Bits of Dataset Management CDW10/CDW11.
mod dsm {
    pub const NR_MASK: u32 = 0xff;
    pub const IDR: u32 = 1 << 0;
    pub const IDW: u32 = 1 << 1;
    pub const AD: u32 = 1 << 2;
    pub const CDW11_RESERVED: u32 = !0x7;
}

/// Read and Write command fields (CDW10..CDW15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RwCommand {
    /// Starting LBA (CDW10 low, CDW11 high).
    pub slba: u64,
    /// Number of Logical Blocks, 0's based (CDW12 bits 15:0).
    pub nlb: u16,
    /// Limited Retry (CDW12 bit 31).
    pub lr: bool,
    /// Force Unit Access (CDW12 bit 30).
    pub fua: bool,
    /// Protection Information field, PRACT and PRCHK (CDW12 bits 29:26, 4 bits).
    pub prinfo: u8,
    /// Storage Tag Check (CDW12 bit 24).
    pub stc: bool,
    /// Directive Type (CDW12 bits 23:20, 4 bits; Write only, must be 0 for Read).
    pub dtype: u8,
    /// Dataset Management hints (CDW13 bits 7:0).
    pub dsm: u8,
    /// Directive Specific (CDW13 bits 31:16; Write only, must be 0 for Read).
    pub dspec: u16,
    /// Initial Logical Block Reference Tag (CDW14).
    pub ilbrt: u32,
    /// Logical Block Application Tag (CDW15 bits 15:0).
    pub lbat: u16,
    /// Logical Block Application Tag Mask (CDW15 bits 31:16).
    pub lbatm: u16,
}

impl RwCommand {
    /// `blocks` blocks from `slba` (NLB = `blocks - 1`, 0's based); `blocks` is clamped
    /// to 1..=65536.
    pub fn new(slba: u64, blocks: u32) -> RwCommand {
        RwCommand {
            slba,
            nlb: (blocks.clamp(1, 0x1_0000) - 1) as u16,
            ..RwCommand::default()
        }
    }

    /// The number of blocks, `nlb + 1`.
    pub fn blocks(&self) -> u32 {
        u32::from(self.nlb) + 1
    }

    fn cdw12(&self) -> u32 {
        let mut v = u32::from(self.nlb);
        v |= (u32::from(self.dtype) & rw::DTYPE_MASK) << rw::DTYPE_SHIFT;
        v |= (u32::from(self.prinfo) & rw::PRINFO_MASK) << rw::PRINFO_SHIFT;
        if self.stc {
            v |= rw::STC;
        }
        if self.fua {
            v |= rw::FUA;
        }
        if self.lr {
            v |= rw::LR;
        }
        v
    }

    pub(super) fn parse(cdw: &[u32; 6], read: bool) -> Result<RwCommand> {
        let (c12, c13) = (cdw[2], cdw[3]);
        check_bits(
            c12.into(),
            rw::RW_CDW12_RESERVED.into(),
            "cdw12 reserved bits 25, 19:16",
            field::CDW12.start,
        )?;
        check_bits(
            c13.into(),
            rw::CDW13_RESERVED.into(),
            "cdw13 reserved bits 15:8",
            field::CDW13.start,
        )?;
        if read {
            check_bits(
                c12.into(),
                rw::READ_CDW12_DTYPE.into(),
                "read cdw12 bits 23:20 (dtype)",
                field::CDW12.start,
            )?;
            check_bits(
                c13.into(),
                0xffff_0000,
                "read cdw13 bits 31:16 (dspec)",
                field::CDW13.start,
            )?;
        }
        Ok(RwCommand {
            slba: u64::from(cdw[0]) | u64::from(cdw[1]) << 32,
            nlb: (c12 & rw::NLB_MASK) as u16,
            lr: c12 & rw::LR != 0,
            fua: c12 & rw::FUA != 0,
            prinfo: ((c12 >> rw::PRINFO_SHIFT) & rw::PRINFO_MASK) as u8,
            stc: c12 & rw::STC != 0,
            dtype: ((c12 >> rw::DTYPE_SHIFT) & rw::DTYPE_MASK) as u8,
            dsm: (c13 & rw::DSM_MASK) as u8,
            dspec: (c13 >> rw::DSPEC_SHIFT) as u16,
            ilbrt: cdw[4],
            lbat: cdw[5] as u16,
            lbatm: (cdw[5] >> 16) as u16,
        })
    }

    pub(super) fn emit(&self, read: bool) -> Result<[u32; 6]> {
        check_width(self.prinfo.into(), 4, "rw.prinfo")?;
        check_width(self.dtype.into(), 4, "rw.dtype")?;
        if read && self.dtype != 0 {
            return Err(WireError::BadValue {
                field: "read.dtype",
                value: self.dtype.into(),
            });
        }
        if read && self.dspec != 0 {
            return Err(WireError::BadValue {
                field: "read.dspec",
                value: self.dspec.into(),
            });
        }
        Ok([
            self.slba as u32,
            (self.slba >> 32) as u32,
            self.cdw12(),
            u32::from(self.dsm) | u32::from(self.dspec) << rw::DSPEC_SHIFT,
            self.ilbrt,
            u32::from(self.lbat) | u32::from(self.lbatm) << 16,
        ])
    }
}

/// Write Zeroes command fields (CDW10..CDW15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WriteZeroesCommand {
    /// Starting LBA (CDW10 low, CDW11 high).
    pub slba: u64,
    /// Number of Logical Blocks, 0's based (CDW12 bits 15:0).
    pub nlb: u16,
    /// Limited Retry (CDW12 bit 31).
    pub lr: bool,
    /// Force Unit Access (CDW12 bit 30).
    pub fua: bool,
    /// Protection Information field (CDW12 bits 29:26, 4 bits).
    pub prinfo: u8,
    /// Deallocate (CDW12 bit 25).
    pub deac: bool,
    /// Storage Tag Check (CDW12 bit 24).
    pub stc: bool,
    /// Initial Logical Block Reference Tag (CDW14).
    pub ilbrt: u32,
    /// Logical Block Application Tag (CDW15 bits 15:0).
    pub lbat: u16,
    /// Logical Block Application Tag Mask (CDW15 bits 31:16).
    pub lbatm: u16,
}

impl WriteZeroesCommand {
    pub(super) fn parse(cdw: &[u32; 6]) -> Result<WriteZeroesCommand> {
        let c12 = cdw[2];
        check_bits(
            c12.into(),
            rw::WZ_CDW12_RESERVED.into(),
            "write zeroes cdw12 reserved bits 23:16",
            field::CDW12.start,
        )?;
        check_bits(
            cdw[3].into(),
            u32::MAX.into(),
            "write zeroes cdw13 (reserved)",
            field::CDW13.start,
        )?;
        Ok(WriteZeroesCommand {
            slba: u64::from(cdw[0]) | u64::from(cdw[1]) << 32,
            nlb: (c12 & rw::NLB_MASK) as u16,
            lr: c12 & rw::LR != 0,
            fua: c12 & rw::FUA != 0,
            prinfo: ((c12 >> rw::PRINFO_SHIFT) & rw::PRINFO_MASK) as u8,
            deac: c12 & rw::DEAC != 0,
            stc: c12 & rw::STC != 0,
            ilbrt: cdw[4],
            lbat: cdw[5] as u16,
            lbatm: (cdw[5] >> 16) as u16,
        })
    }

    pub(super) fn emit(&self) -> Result<[u32; 6]> {
        check_width(self.prinfo.into(), 4, "write_zeroes.prinfo")?;
        let mut c12 = u32::from(self.nlb);
        c12 |= u32::from(self.prinfo) << rw::PRINFO_SHIFT;
        for (set, bit) in [
            (self.deac, rw::DEAC),
            (self.stc, rw::STC),
            (self.fua, rw::FUA),
            (self.lr, rw::LR),
        ] {
            if set {
                c12 |= bit;
            }
        }
        Ok([
            self.slba as u32,
            (self.slba >> 32) as u32,
            c12,
            0,
            self.ilbrt,
            u32::from(self.lbat) | u32::from(self.lbatm) << 16,
        ])
    }
}

/// Dataset Management command fields (CDW10, CDW11); the ranges travel as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DsmCommand {
    /// Number of Ranges, 0's based (CDW10 bits 7:0).
    pub nr: u8,
    /// Integral Dataset for Read (CDW11 bit 0).
    pub idr: bool,
    /// Integral Dataset for Write (CDW11 bit 1).
    pub idw: bool,
    /// Attribute – Deallocate (CDW11 bit 2).
    pub ad: bool,
}

impl DsmCommand {
    /// The number of 16-byte range entries, `nr + 1`.
    pub fn ranges(&self) -> usize {
        usize::from(self.nr) + 1
    }

    pub(super) fn parse(cdw: &[u32; 6]) -> Result<DsmCommand> {
        check_bits(
            cdw[0].into(),
            (!dsm::NR_MASK).into(),
            "dsm cdw10 reserved bits 31:8",
            field::CDW10.start,
        )?;
        check_bits(
            cdw[1].into(),
            dsm::CDW11_RESERVED.into(),
            "dsm cdw11 reserved bits 31:3",
            field::CDW11.start,
        )?;
        for (i, &v) in cdw[2..].iter().enumerate() {
            check_bits(
                v.into(),
                u32::MAX.into(),
                "dsm cdw12..15 (reserved)",
                field::CDW12.start + 4 * i,
            )?;
        }
        Ok(DsmCommand {
            nr: (cdw[0] & dsm::NR_MASK) as u8,
            idr: cdw[1] & dsm::IDR != 0,
            idw: cdw[1] & dsm::IDW != 0,
            ad: cdw[1] & dsm::AD != 0,
        })
    }

    pub(super) fn emit(&self) -> [u32; 6] {
        let mut c11 = 0;
        for (set, bit) in [
            (self.idr, dsm::IDR),
            (self.idw, dsm::IDW),
            (self.ad, dsm::AD),
        ] {
            if set {
                c11 |= bit;
            }
        }
        [u32::from(self.nr), c11, 0, 0, 0, 0]
    }
}
