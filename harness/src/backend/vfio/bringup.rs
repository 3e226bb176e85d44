//! Bringing a PCIe NVMe controller from whatever state it is in to ready, with its admin
//! queues in place: the sequence every driver runs (Linux's `nvme_disable_ctrl` /
//! `nvme_enable_ctrl`, SPDK's `nvme_ctrlr_process_init`), as one state machine.
//!
//! [`Phase::Checking`] reads CAP and refuses what the controller cannot do (no NVM command
//! set, the page size, the admin queue size, unaligned queues); [`Phase::Disabling`] clears
//! CC.EN and waits for CSTS.RDY = 0; [`Phase::Configuring`] writes AQA, ASQ and ACQ;
//! [`Phase::Enabling`] writes CC (EN, the page size, 64-byte SQEs, 16-byte CQEs) and waits
//! for CSTS.RDY = 1. Every wait is bounded by CAP.TO (500 ms units, at least one); CSTS.CFS
//! while enabling, or registers that read all ones, end the bring-up with the reason.

use std::time::{Duration, Instant};

use super::regs::{self, Registers};
use super::VfioError;
use crate::wire::{AqaRepr, CapRepr, CcRepr, PROP_CC, REG_AQA};

/// What the bring-up sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The host memory page size (CC.MPS), a power of two of at least 4096.
    pub page: u64,
    /// Entries of each admin queue.
    pub admin_entries: u16,
    /// Bus address of the admin SQ (page aligned).
    pub asq: u64,
    /// Bus address of the admin CQ (page aligned).
    pub acq: u64,
}

/// A controller that is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// CAP as read.
    pub cap: CapRepr,
    /// How long the bring-up waited on the controller.
    pub waited: Duration,
}

/// Where a bring-up is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading CAP and checking the settings against it.
    Checking,
    /// CC.EN cleared, waiting for CSTS.RDY = 0.
    Disabling,
    /// Writing AQA, ASQ and ACQ.
    Configuring,
    /// CC written with EN, waiting for CSTS.RDY = 1.
    Enabling,
    /// Done.
    Ready,
}

/// Time for the bring-up's waits: the real clock, or a virtual one in tests.
pub trait Clock {
    /// Time since the clock's start.
    fn now(&self) -> Duration;
    /// Waits `d`.
    fn sleep(&mut self, d: Duration);
}

/// The real clock: `std::thread::sleep` (the bring-up runs once, before the controller
/// serves anything).
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// How often CSTS is read while waiting.
const POLL: Duration = Duration::from_millis(1);

/// Brings the controller behind `regs` up with `settings`.
pub fn bring_up(
    regs: &dyn Registers,
    settings: &Settings,
    clock: &mut dyn Clock,
) -> Result<Ready, VfioError> {
    let start = clock.now();
    let mut phase = Phase::Checking;
    let mut cap = CapRepr::default();
    loop {
        phase = match phase {
            Phase::Checking => {
                let (raw, parsed) = regs::cap(regs);
                if raw == u64::MAX {
                    return Err(VfioError::DeviceGone("reading CAP"));
                }
                check(raw, &parsed, settings)?;
                cap = parsed;
                Phase::Disabling
            }
            Phase::Disabling => {
                disable(regs, &cap, clock)?;
                Phase::Configuring
            }
            Phase::Configuring => {
                let entries = settings.admin_entries - 1;
                let aqa = AqaRepr {
                    asqs: entries,
                    acqs: entries,
                };
                regs.write32(u64::from(REG_AQA), aqa.emit());
                regs::set_admin_queues(regs, settings.asq, settings.acq);
                Phase::Enabling
            }
            Phase::Enabling => {
                let cc = CcRepr {
                    en: true,
                    css: 0,
                    mps: (settings.page.trailing_zeros() - 12) as u8,
                    iosqes: 6,
                    iocqes: 4,
                    ..CcRepr::default()
                };
                regs.write32(u64::from(PROP_CC), cc.emit());
                wait_ready(regs, &cap, true, clock)?;
                Phase::Ready
            }
            Phase::Ready => {
                return Ok(Ready {
                    cap,
                    waited: clock.now().saturating_sub(start),
                })
            }
        };
    }
}

/// Clears CC.EN and waits (bounded by CAP.TO) for CSTS.RDY = 0: the controller stops
/// touching its queues' memory.
pub fn disable(
    regs: &dyn Registers,
    cap: &CapRepr,
    clock: &mut dyn Clock,
) -> Result<(), VfioError> {
    let cc = CcRepr::parse(regs.read32(u64::from(PROP_CC)));
    if cc.en {
        regs.write32(u64::from(PROP_CC), CcRepr { en: false, ..cc }.emit());
    }
    wait_ready(regs, cap, false, clock)
}

/// Refuses settings the controller cannot take.
fn check(raw: u64, cap: &CapRepr, s: &Settings) -> Result<(), VfioError> {
    if cap.css & 1 == 0 {
        return Err(VfioError::NoNvmCommandSet(raw));
    }
    let (min, max) = (4096u64 << cap.mpsmin, 4096u64 << cap.mpsmax);
    if !s.page.is_power_of_two() || s.page < min || s.page > max {
        return Err(VfioError::PageSize {
            page: s.page,
            min,
            max,
        });
    }
    let most = (u32::from(cap.mqes) + 1).min(4096);
    if s.admin_entries < 2 || u32::from(s.admin_entries) > most {
        return Err(VfioError::AdminQueueSize {
            entries: u32::from(s.admin_entries),
            max: most,
        });
    }
    for (what, addr) in [("the admin SQ", s.asq), ("the admin CQ", s.acq)] {
        if addr % s.page != 0 {
            return Err(VfioError::Unaligned {
                what,
                addr,
                page: s.page,
            });
        }
    }
    Ok(())
}

/// Waits until CSTS.RDY is `want`, at most CAP.TO.
fn wait_ready(
    regs: &dyn Registers,
    cap: &CapRepr,
    want: bool,
    clock: &mut dyn Clock,
) -> Result<(), VfioError> {
    let bound = Duration::from_millis(500) * u32::from(cap.to.max(1));
    let start = clock.now();
    let during = if want { "enabling" } else { "disabling" };
    loop {
        let (raw, csts) = regs::csts(regs);
        if raw == u32::MAX {
            return Err(VfioError::DeviceGone(during));
        }
        if want && csts.cfs {
            return Err(VfioError::ControllerFatal { csts: raw, during });
        }
        if csts.rdy == want {
            return Ok(());
        }
        let waited = clock.now().saturating_sub(start);
        if waited >= bound {
            return Err(VfioError::NotReady {
                want: u8::from(want),
                waited_ms: waited.as_millis() as u64,
                csts: raw,
            });
        }
        clock.sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::super::regs::fake::{FakeClock, FakeRegisters};
    use super::*;
    use crate::wire::{PROP_CSTS, REG_ACQ, REG_ASQ};

    /// QEMU's controller: MQES 2047, CQR, TO 15 (7.5 s), NVM, MPSMIN 0, MPSMAX 4.
    fn qemu_cap() -> u64 {
        CapRepr {
            mqes: 2047,
            cqr: true,
            to: 15,
            css: 1,
            mpsmax: 4,
            ..CapRepr::default()
        }
        .emit()
    }

    fn settings() -> Settings {
        Settings {
            page: 4096,
            admin_entries: 32,
            asq: 0x7f00_0000_1000,
            acq: 0x7f00_0000_2000,
        }
    }

    #[test]
    fn a_running_controller_is_disabled_configured_and_enabled() {
        let regs = FakeRegisters::new(qemu_cap(), Some(3));
        // Left enabled and ready by whoever had it before.
        regs.state().values.insert(u64::from(PROP_CC), 1);
        regs.state().values.insert(u64::from(PROP_CSTS), 1);
        let mut clock = FakeClock::default();
        let ready = bring_up(&regs, &settings(), &mut clock).unwrap();
        assert_eq!(ready.cap, CapRepr::parse(qemu_cap()));
        assert_eq!(ready.waited, Duration::from_millis(6), "3 polls down, 3 up");
        let writes = regs.state().writes.clone();
        let asq = u64::from(REG_ASQ);
        let acq = u64::from(REG_ACQ);
        assert_eq!(
            writes,
            vec![
                (u64::from(PROP_CC), 0),
                (u64::from(REG_AQA), 0x001f_001f),
                (asq, 0x0000_1000),
                (asq + 4, 0x7f00),
                (acq, 0x0000_2000),
                (acq + 4, 0x7f00),
                (u64::from(PROP_CC), 1 | 6 << 16 | 4 << 20),
            ]
        );
    }

    #[test]
    fn a_controller_that_never_gets_ready_is_bounded_by_cap_to() {
        let regs = FakeRegisters::new(qemu_cap(), None);
        let mut clock = FakeClock::default();
        let e = bring_up(&regs, &settings(), &mut clock).unwrap_err();
        assert_eq!(
            e,
            VfioError::NotReady {
                want: 1,
                waited_ms: 7500,
                csts: 0
            }
        );
        assert!(e.to_string().contains("CAP.TO"), "{e}");
    }

    #[test]
    fn fatal_status_and_a_vanished_device_end_it() {
        let regs = FakeRegisters::new(qemu_cap(), Some(1));
        regs.state().fatal_on_enable = true;
        let e = bring_up(&regs, &settings(), &mut FakeClock::default()).unwrap_err();
        assert!(
            matches!(e, VfioError::ControllerFatal { csts, during: "enabling" } if csts & 2 != 0),
            "{e:?}"
        );
        let regs = FakeRegisters::new(qemu_cap(), Some(1));
        regs.state().gone = true;
        assert_eq!(
            bring_up(&regs, &settings(), &mut FakeClock::default()),
            Err(VfioError::DeviceGone("reading CAP"))
        );
    }

    #[test]
    fn settings_the_controller_cannot_take_are_refused_before_any_write() {
        let regs = FakeRegisters::new(qemu_cap(), Some(1));
        let mut clock = FakeClock::default();
        let bad = |s: Settings| bring_up(&regs, &s, &mut FakeClock::default()).unwrap_err();
        assert!(matches!(
            bad(Settings {
                page: 8192 << 4,
                ..settings()
            }),
            VfioError::PageSize { max: 65536, .. }
        ));
        assert!(matches!(
            bad(Settings {
                admin_entries: 1,
                ..settings()
            }),
            VfioError::AdminQueueSize { max: 2048, .. }
        ));
        assert!(matches!(
            bad(Settings {
                acq: 0x2010,
                ..settings()
            }),
            VfioError::Unaligned {
                what: "the admin CQ",
                ..
            }
        ));
        let no_nvm = FakeRegisters::new(qemu_cap() & !(1 << 37), Some(1));
        assert!(matches!(
            bring_up(&no_nvm, &settings(), &mut clock),
            Err(VfioError::NoNvmCommandSet(_))
        ));
        assert!(regs.state().writes.is_empty());
    }
}
