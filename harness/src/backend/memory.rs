//! Memory doorbells: backend controllers whose doorbells and registers are memory the
//! device under test writes and reads, as a NIC reaches a real SSD with posted PCIe writes
//! and reads, with no call into the host (`doorbells=memory`, plugin ABI 2).
//!
//! A device that can only write memory (a real offload NIC) says so in its
//! [`BackendAccess`] (`nvmf_offload_ops.backend_access`). The host then gives each emulated
//! controller a [`MemoryBar`]: a memory region of [`BAR_LEN`] bytes registered on the
//! device's PD and laid out as a PCIe controller's BAR0 with doorbell stride 0:
//!
//! | offset | what |
//! |---|---|
//! | 00h–1Fh | CAP, VS, CC, CSTS at their NVMe offsets ([`init_registers`]) |
//! | 1000h | SQ 0 tail doorbell (`sqdb`) |
//! | 1004h | CQ head doorbell (`cqdb`): with `sqdb`, one 64-byte-aligned chunk |
//! | 1000h + 8·i | extra SQ i's tail doorbell |
//!
//! The controller notices doorbell writes by reading that memory every [`POLL`] (a
//! posted write is only seen when looked at; several writes between two looks are seen as
//! the last one). The device notices completions by their phase tags in the CQ ring and a
//! PCI error by CSTS, both in memory.
//!
//! **What a device can observe of a PCI error through memory.** When an emulated controller
//! in this mode fails ([`crate::backend::emulated::Fault::PciError`]) it stops fetching and
//! completing, and its registers read all ones ([`fail_registers`]: CSTS.CFS and RDY read
//! 1, as a master-aborted read of a dead function gives). The device's doorbell writes
//! still land (in RAM; on a dead SSD they would be dropped), and its outstanding commands
//! never complete. A real SSD's PCI error (AER, surprise removal, a bus reset) needs a real
//! SSD: see `docs/vendor-guide.md`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api::{MemRef, NvmeCtrlAttrs};
use crate::fabric::{DeviceContext, MrInfo};
use crate::wire::{cq_head_doorbell, sq_tail_doorbell, CapRepr, CcRepr, CstsRepr};
use crate::wire::{PROP_CAP, PROP_CC, PROP_CSTS, PROP_VS};

use super::regs::{write64, Registers};
use super::Span;

/// How a device rings a backend controller's doorbells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DoorbellMode {
    /// Through the host's calls (`nvmf_pci_ops.ring_sq` / `ring_cq` / `status`): software
    /// devices.
    #[default]
    Call,
    /// By writing the doorbell words in memory, and reading completions and CSTS from
    /// memory: what a NIC can do.
    Memory,
}

/// How the addresses a device writes into backend SQEs (PRP entries) map to host virtual
/// addresses: bus addresses `bus..bus + len` are virtual addresses `va..va + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PrpWindow {
    /// First bus address of the window.
    pub bus: u64,
    /// The virtual address `bus` stands for.
    pub va: u64,
    /// Length of the window in bytes.
    pub len: u64,
}

impl PrpWindow {
    /// The virtual address of the `len` bytes at bus address `addr`, when all of them lie
    /// in the window.
    pub fn to_va(&self, addr: u64, len: u64) -> Option<u64> {
        let end = addr.checked_add(len)?;
        let inside = addr >= self.bus && end <= self.bus.checked_add(self.len)?;
        inside.then(|| addr - self.bus + self.va)
    }

    /// The bus address of virtual address `va`, when it lies in the window.
    pub fn to_bus(&self, va: u64) -> Option<u64> {
        let inside = va >= self.va && va - self.va < self.len;
        inside.then(|| va - self.va + self.bus)
    }
}

/// How a device reaches its backend controllers (`struct nvmf_backend_access`): the
/// doorbell mode it needs and how its PRP addresses translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct BackendAccess {
    /// Calls or memory.
    pub doorbells: DoorbellMode,
    /// `None`: PRPs are virtual addresses inside the staging buffer's region (software
    /// devices, and real ones whose IOVA is the virtual address).
    pub prp: Option<PrpWindow>,
}

/// Bytes of a memory-doorbell controller's BAR region: registers, then the doorbell page.
pub const BAR_LEN: u64 = 0x2000;

/// Bytes of the register block at the start of the BAR region (CAP to CSTS).
pub const REGS_LEN: u64 = 0x20;

/// How often a memory-doorbell controller looks at its doorbells, and a memory-doorbell
/// device at its CQ and CSTS: the plugin ABI's progress tick.
pub const POLL: Duration = Duration::from_millis(1);

/// A memory-doorbell controller's BAR: a memory region of [`BAR_LEN`] bytes (see the module
/// docs for its layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBar {
    /// The region.
    pub mr: MrInfo,
}

impl MemoryBar {
    /// The register block.
    pub fn regs(&self) -> Span {
        Span::new(&self.mr, 0, REGS_LEN)
    }

    /// SQ `sq`'s tail doorbell (SQ 0 is `sqdb`, SQ i ≥ 1 the i-th extra SQ).
    pub fn sq_doorbell(&self, sq: usize) -> MemRef {
        let qid = u16::try_from(sq).unwrap_or(u16::MAX);
        MemRef::of(&self.mr, sq_tail_doorbell(qid, 0), 4)
    }

    /// The CQ head doorbell.
    pub fn cq_doorbell(&self) -> MemRef {
        MemRef::of(&self.mr, cq_head_doorbell(0, 0), 4)
    }

    /// Moves every doorbell of `attrs` into this BAR.
    pub fn place(&self, attrs: &mut NvmeCtrlAttrs) {
        attrs.sqdb = self.sq_doorbell(0);
        attrs.cqdb = self.cq_doorbell();
        for (i, sq) in attrs.extra_sqs.iter_mut().enumerate() {
            sq.db = self.sq_doorbell(i + 1);
        }
    }

    /// The registers in the region, read and written through `ctx`.
    pub fn registers<'a>(&self, ctx: &'a dyn DeviceContext) -> MemRegisters<'a> {
        MemRegisters {
            ctx,
            regs: self.regs(),
        }
    }
}

/// A register block in a memory region, as [`Registers`]. A read that fails reads all
/// ones (as a PCIe read of an unreachable function); a write that fails is dropped (as a
/// posted write to one).
pub struct MemRegisters<'a> {
    /// Where the region is read and written.
    pub ctx: &'a dyn DeviceContext,
    /// The register block ([`MemoryBar::regs`]).
    pub regs: Span,
}

impl Registers for MemRegisters<'_> {
    fn read32(&self, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        if offset + 4 > self.regs.len {
            return u32::MAX;
        }
        match self
            .ctx
            .mr_read(self.regs.mr, self.regs.offset + offset, &mut b)
        {
            Ok(()) => u32::from_le_bytes(b),
            Err(_) => u32::MAX,
        }
    }

    fn write32(&self, offset: u64, value: u32) {
        if offset + 4 <= self.regs.len {
            let _ = self.ctx.mr_write(
                self.regs.mr,
                self.regs.offset + offset,
                &value.to_le_bytes(),
            );
        }
    }
}

/// Writes the registers of an enabled, ready controller of queue depth `depth`: CAP (MQES
/// `depth - 1`, contiguous queues, NVM command set, doorbell stride 0), VS 1.4, CC (EN,
/// 64-byte SQEs, 16-byte CQEs), CSTS (RDY).
pub fn init_registers(regs: &dyn Registers, depth: u16) {
    let cap = CapRepr {
        mqes: depth.saturating_sub(1),
        cqr: true,
        to: 30,
        css: 1,
        ..CapRepr::default()
    };
    write64(regs, u64::from(PROP_CAP), cap.emit());
    regs.write32(u64::from(PROP_VS), 0x0001_0400);
    let cc = CcRepr {
        en: true,
        iosqes: 6,
        iocqes: 4,
        ..CcRepr::default()
    };
    regs.write32(u64::from(PROP_CC), cc.emit());
    let csts = CstsRepr {
        rdy: true,
        ..CstsRepr::default()
    };
    regs.write32(u64::from(PROP_CSTS), csts.emit());
}

/// Makes every register read all ones (a failed controller, see the module docs).
pub fn fail_registers(regs: &dyn Registers) {
    for off in (0..REGS_LEN).step_by(4) {
        regs.write32(off, u32::MAX);
    }
}

/// Whether a CSTS value read through memory says the controller is dead: all ones (an
/// unreachable function) or CFS set.
pub fn csts_failed(raw: u32) -> bool {
    super::regs::csts_fault(raw).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::regs::{cap, csts};
    use crate::fabric::sim::SimFabric;
    use crate::fabric::{Access, Fabric};

    #[test]
    fn windows_translate_inside_only() {
        let w = PrpWindow {
            bus: 0x1_0000_0000,
            va: 0x7000,
            len: 0x3000,
        };
        assert_eq!(w.to_va(0x1_0000_0000, 0x3000), Some(0x7000));
        assert_eq!(w.to_va(0x1_0000_1000, 0x1000), Some(0x8000));
        assert_eq!(w.to_va(0x1_0000_2001, 0x1000), None);
        assert_eq!(w.to_va(0xffff_ffff, 1), None);
        assert_eq!(w.to_va(u64::MAX, 2), None);
        assert_eq!(w.to_bus(0x8000), Some(0x1_0000_1000));
        assert_eq!(w.to_bus(0xa000), None);
        assert_eq!(w.to_bus(0x6fff), None);
    }

    #[tokio::test]
    async fn a_bar_lays_out_doorbells_as_pcie_with_stride_0() {
        let ctx = SimFabric::new(1).open("sim0").unwrap();
        let pd = ctx.alloc_pd().unwrap();
        let mr = ctx.reg_mr(pd, BAR_LEN, Access::LOCAL_WRITE).unwrap();
        let bar = MemoryBar { mr };
        assert_eq!(bar.sq_doorbell(0).addr, mr.addr + 0x1000);
        assert_eq!(bar.cq_doorbell().addr, mr.addr + 0x1004);
        assert_eq!(bar.sq_doorbell(2).addr, mr.addr + 0x1010);
        assert_eq!(
            (mr.addr + 0x1000) % 64,
            0,
            "sqdb and cqdb share a 64-byte chunk"
        );

        let regs = bar.registers(ctx.as_ref());
        init_registers(&regs, 64);
        let (_, c) = cap(&regs);
        assert_eq!((c.mqes, c.cqr, c.dstrd, c.css), (63, true, 0, 1));
        let (raw, s) = csts(&regs);
        assert!(s.rdy && !s.cfs && !csts_failed(raw));
        fail_registers(&regs);
        let (raw, s) = csts(&regs);
        assert_eq!(raw, u32::MAX);
        assert!(s.cfs && csts_failed(raw));
        assert!(csts_failed(
            CstsRepr {
                cfs: true,
                ..CstsRepr::default()
            }
            .emit()
        ));
        assert_eq!(
            regs.read32(REGS_LEN),
            u32::MAX,
            "past the block reads all ones"
        );
    }
}
