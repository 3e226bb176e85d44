//! The controller properties a Fabrics host reads and writes with Property Get / Set
//! (NVMe Base Specification 2.0, "Controller Registers"): their offsets, and typed
//! [`CapRepr`], [`CcRepr`] and [`CstsRepr`] over their values. `parse` keeps the fields
//! listed and ignores the other bits (reserved ones, and CAP's BPS, PMRS, CMBS, NSSS and
//! CRMS, which no Fabrics controller here reports); `emit` writes the fields and leaves
//! the other bits zero, so `parse(emit(r)) == r` for fields within their widths.

use core::fmt;

use super::packed::packed;

/// Property offset of CAP (Controller Capabilities, 8 bytes).
pub const PROP_CAP: u32 = 0x00;
/// Property offset of VS (Version, 4 bytes).
pub const PROP_VS: u32 = 0x08;
/// Property offset of CC (Controller Configuration, 4 bytes).
pub const PROP_CC: u32 = 0x14;
/// Property offset of CSTS (Controller Status, 4 bytes).
pub const PROP_CSTS: u32 = 0x1c;

/// Register offset of AQA (Admin Queue Attributes, 4 bytes): PCIe controllers only.
pub const REG_AQA: u32 = 0x24;
/// Register offset of ASQ (Admin Submission Queue Base Address, 8 bytes): PCIe only.
pub const REG_ASQ: u32 = 0x28;
/// Register offset of ACQ (Admin Completion Queue Base Address, 8 bytes): PCIe only.
pub const REG_ACQ: u32 = 0x30;
/// Register offset of the first doorbell (SQ 0 tail) of a PCIe controller.
pub const REG_DOORBELLS: u32 = 0x1000;

/// The BAR offset of queue `qid`'s SQ Tail doorbell with doorbell stride `dstrd`
/// (CAP.DSTRD): `1000h + (2 qid) (4 << DSTRD)`.
pub fn sq_tail_doorbell(qid: u16, dstrd: u8) -> u64 {
    u64::from(REG_DOORBELLS) + 2 * u64::from(qid) * (4u64 << dstrd)
}

/// The BAR offset of queue `qid`'s CQ Head doorbell: `1000h + (2 qid + 1) (4 << DSTRD)`.
pub fn cq_head_doorbell(qid: u16, dstrd: u8) -> u64 {
    u64::from(REG_DOORBELLS) + (2 * u64::from(qid) + 1) * (4u64 << dstrd)
}

packed! {
    /// Controller Capabilities.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct CapRepr: u64 {
        /// MQES (bits 15:0): the largest queue's entries, 0's based.
        pub mqes: u16 => 0, 16;
        /// CQR (bit 16): queues must be physically contiguous.
        pub cqr: bool => 16, 1;
        /// AMS (bits 18:17): arbitration mechanisms supported beyond round robin.
        pub ams: u8 => 17, 2;
        /// TO (bits 31:24): worst-case time to ready, in 500 ms units.
        pub to: u8 => 24, 8;
        /// DSTRD (bits 35:32): doorbell stride.
        pub dstrd: u8 => 32, 4;
        /// NSSRS (bit 36): NVM subsystem reset supported.
        pub nssrs: bool => 36, 1;
        /// CSS (bits 44:37): command sets supported (bit 0: NVM).
        pub css: u8 => 37, 8;
        /// MPSMIN (bits 51:48).
        pub mpsmin: u8 => 48, 4;
        /// MPSMAX (bits 55:52).
        pub mpsmax: u8 => 52, 4;
    }
}

impl fmt::Display for CapRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CAP mqes={} cqr={} to={} css={:#04x}",
            self.mqes,
            u8::from(self.cqr),
            self.to,
            self.css
        )
    }
}

/// CC.SHN: no notification.
pub const SHN_NONE: u8 = 0b00;
/// CC.SHN: normal shutdown.
pub const SHN_NORMAL: u8 = 0b01;
/// CC.SHN: abrupt shutdown.
pub const SHN_ABRUPT: u8 = 0b10;

packed! {
    /// Controller Configuration.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct CcRepr: u32 {
        /// EN (bit 0).
        pub en: bool => 0, 1;
        /// CSS (bits 6:4): I/O command set selected.
        pub css: u8 => 4, 3;
        /// MPS (bits 10:7): memory page size, 2^(12 + MPS).
        pub mps: u8 => 7, 4;
        /// AMS (bits 13:11): arbitration mechanism selected.
        pub ams: u8 => 11, 3;
        /// SHN (bits 15:14): shutdown notification.
        pub shn: u8 => 14, 2;
        /// IOSQES (bits 19:16): I/O SQ entry size, 2^n bytes.
        pub iosqes: u8 => 16, 4;
        /// IOCQES (bits 23:20): I/O CQ entry size, 2^n bytes.
        pub iocqes: u8 => 20, 4;
    }
}

impl fmt::Display for CcRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CC en={} shn={} iosqes={} iocqes={}",
            u8::from(self.en),
            self.shn,
            self.iosqes,
            self.iocqes
        )
    }
}

/// CSTS.SHST: normal operation.
pub const SHST_NORMAL: u8 = 0b00;
/// CSTS.SHST: shutdown processing occurring.
pub const SHST_OCCURRING: u8 = 0b01;
/// CSTS.SHST: shutdown processing complete.
pub const SHST_COMPLETE: u8 = 0b10;

packed! {
    /// Controller Status.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct CstsRepr: u32 {
        /// RDY (bit 0).
        pub rdy: bool => 0, 1;
        /// CFS (bit 1): controller fatal status.
        pub cfs: bool => 1, 1;
        /// SHST (bits 3:2): shutdown status.
        pub shst: u8 => 2, 2;
        /// NSSRO (bit 4): NVM subsystem reset occurred.
        pub nssro: bool => 4, 1;
        /// PP (bit 5): processing paused.
        pub pp: bool => 5, 1;
    }
}

impl fmt::Display for CstsRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CSTS rdy={} cfs={} shst={}",
            u8::from(self.rdy),
            u8::from(self.cfs),
            self.shst
        )
    }
}

packed! {
    /// Admin Queue Attributes: the admin queues' sizes, 0's based (at most 4095).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct AqaRepr: u32 {
        /// ASQS (bits 11:0): admin SQ entries, 0's based.
        pub asqs: u16 => 0, 12;
        /// ACQS (bits 27:16): admin CQ entries, 0's based.
        pub acqs: u16 => 16, 12;
    }
}

impl fmt::Display for AqaRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AQA asqs={} acqs={}", self.asqs, self.acqs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcie_registers_and_doorbells() {
        let aqa = AqaRepr { asqs: 31, acqs: 31 };
        assert_eq!(aqa.emit(), 0x001f_001f);
        assert_eq!(AqaRepr::parse(0xf000_f000 | aqa.emit()), aqa);
        assert_eq!(aqa.to_string(), "AQA asqs=31 acqs=31");
        // DSTRD 0: 4-byte doorbells back to back; DSTRD 2: 16 bytes apart.
        assert_eq!(sq_tail_doorbell(0, 0), 0x1000);
        assert_eq!(cq_head_doorbell(0, 0), 0x1004);
        assert_eq!(sq_tail_doorbell(1, 0), 0x1008);
        assert_eq!(cq_head_doorbell(3, 2), 0x1000 + 7 * 16);
    }

    #[test]
    fn the_reference_targets_cap_and_linux_cc() {
        // MQES 127, CQR, TO 30 (15 s), CSS NVM.
        let cap = CapRepr {
            mqes: 127,
            cqr: true,
            to: 30,
            css: 1,
            ..CapRepr::default()
        };
        assert_eq!(cap.emit(), 127 | 1 << 16 | 30 << 24 | 1 << 37);
        assert_eq!(CapRepr::parse(cap.emit()), cap);
        // Linux: IOSQES 6, IOCQES 4, EN.
        let cc = CcRepr::parse((6 << 16) | (4 << 20) | 1);
        assert!(cc.en && cc.iosqes == 6 && cc.iocqes == 4 && cc.shn == SHN_NONE);
        assert_eq!(
            CcRepr {
                shn: SHN_NORMAL,
                ..cc
            }
            .emit()
                >> 14
                & 0b11,
            1
        );
        let csts = CstsRepr {
            rdy: true,
            shst: SHST_COMPLETE,
            ..CstsRepr::default()
        };
        assert_eq!(csts.emit(), 0b1001);
        assert_eq!(csts.to_string(), "CSTS rdy=1 cfs=0 shst=2");
        // Reserved bits are ignored on parse and zero on emit.
        assert_eq!(CstsRepr::parse(0xffff_ffc0), CstsRepr::default());
        assert_eq!(CcRepr::parse(0xff00_000e).emit(), 0);
    }
}
