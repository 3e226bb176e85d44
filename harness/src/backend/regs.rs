//! Access to a PCIe NVMe controller's registers in BAR0, 32 bits at a time: the mapped BAR
//! of a real controller ([`super::vfio`]), a memory-doorbell controller's BAR in a memory
//! region ([`super::memory::MemoryBar`]), or a fake in tests. 64-bit registers (CAP, ASQ, ACQ) are read and
//! written as two halves, low first, which every controller takes (QEMU's needs both
//! halves of ASQ / ACQ written).

use crate::wire::{CapRepr, CstsRepr, PROP_CAP, PROP_CSTS, REG_ACQ, REG_ASQ};

/// 32-bit register access at byte offsets of BAR0.
pub trait Registers: Send + Sync {
    /// Reads the register at `offset`.
    fn read32(&self, offset: u64) -> u32;
    /// Writes `value` to the register at `offset`.
    fn write32(&self, offset: u64, value: u32);
}

/// Reads a 64-bit register as two halves, low first.
pub fn read64(regs: &dyn Registers, offset: u64) -> u64 {
    let low = regs.read32(offset);
    let high = regs.read32(offset + 4);
    u64::from(low) | u64::from(high) << 32
}

/// Writes a 64-bit register as two halves, low first.
pub fn write64(regs: &dyn Registers, offset: u64, value: u64) {
    regs.write32(offset, value as u32);
    regs.write32(offset + 4, (value >> 32) as u32);
}

/// CAP, raw and parsed.
pub fn cap(regs: &dyn Registers) -> (u64, CapRepr) {
    let raw = read64(regs, u64::from(PROP_CAP));
    (raw, CapRepr::parse(raw))
}

/// CSTS, raw and parsed.
pub fn csts(regs: &dyn Registers) -> (u32, CstsRepr) {
    let raw = regs.read32(u64::from(PROP_CSTS));
    (raw, CstsRepr::parse(raw))
}

/// Why a raw CSTS value says the controller is dead, if it does: all ones (gone from the
/// bus, as a master-aborted read gives) or CFS set.
pub fn csts_fault(raw: u32) -> Option<&'static str> {
    if raw == u32::MAX {
        Some("the controller reads all ones (gone from the bus)")
    } else if CstsRepr::parse(raw).cfs {
        Some("CSTS.CFS: controller fatal status")
    } else {
        None
    }
}

/// Writes the admin queues' base addresses.
pub fn set_admin_queues(regs: &dyn Registers, asq: u64, acq: u64) {
    write64(regs, u64::from(REG_ASQ), asq);
    write64(regs, u64::from(REG_ACQ), acq);
}

/// A controller's registers in memory, for tests: writes are recorded, and CSTS.RDY
/// follows CC.EN after a number of CSTS reads (as a controller takes time to get ready).
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::Registers;
    use crate::wire::{CcRepr, CstsRepr, PROP_CC, PROP_CSTS};

    #[derive(Debug, Default)]
    pub struct State {
        /// Register values by offset.
        pub values: BTreeMap<u64, u32>,
        /// Every write, in order.
        pub writes: Vec<(u64, u32)>,
        /// CSTS reads before RDY follows EN; `None`: never.
        pub ready_after: Option<u32>,
        /// CSTS reads since EN last changed.
        pub reads_since: u32,
        /// CSTS.CFS is set once EN is 1.
        pub fatal_on_enable: bool,
        /// Every read returns all ones.
        pub gone: bool,
    }

    /// The fake.
    #[derive(Debug, Default)]
    pub struct FakeRegisters(pub Mutex<State>);

    /// Virtual time for the waits.
    #[derive(Debug, Default)]
    pub struct FakeClock(pub std::time::Duration);

    impl crate::backend::vfio::bringup::Clock for FakeClock {
        fn now(&self) -> std::time::Duration {
            self.0
        }
        fn sleep(&mut self, d: std::time::Duration) {
            self.0 += d;
        }
    }

    impl FakeRegisters {
        /// A controller with this CAP whose RDY follows EN after `ready_after` reads.
        pub fn new(cap: u64, ready_after: Option<u32>) -> FakeRegisters {
            let mut s = State {
                ready_after,
                ..State::default()
            };
            s.values.insert(0, cap as u32);
            s.values.insert(4, (cap >> 32) as u32);
            FakeRegisters(Mutex::new(s))
        }

        /// The state, to set up or inspect.
        pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
            self.0.lock().unwrap()
        }
    }

    impl Registers for FakeRegisters {
        fn read32(&self, offset: u64) -> u32 {
            let mut s = self.state();
            if s.gone {
                return u32::MAX;
            }
            if offset == u64::from(PROP_CSTS) {
                s.reads_since += 1;
                let en = CcRepr::parse(s.values.get(&u64::from(PROP_CC)).copied().unwrap_or(0)).en;
                let mut csts = CstsRepr::parse(s.values.get(&offset).copied().unwrap_or(0));
                if s.ready_after.is_some_and(|n| s.reads_since > n) {
                    csts.rdy = en;
                }
                csts.cfs = en && s.fatal_on_enable;
                s.values.insert(offset, csts.emit());
            }
            s.values.get(&offset).copied().unwrap_or(0)
        }

        fn write32(&self, offset: u64, value: u32) {
            let mut s = self.state();
            s.writes.push((offset, value));
            if offset == u64::from(PROP_CC) {
                let before = CcRepr::parse(s.values.get(&offset).copied().unwrap_or(0)).en;
                if CcRepr::parse(value).en != before {
                    s.reads_since = 0;
                }
            }
            s.values.insert(offset, value);
        }
    }
}
