//! Lab injection on a real SSD: faults a lab makes on the NVMe controller behind an offload
//! NIC, from its host, through sysfs, each one undone afterwards. The safest first:
//!
//! | [`Action`] | what is done | what the NIC sees | undone by |
//! |---|---|---|---|
//! | `bus-master-off` | PCI Command: Bus Master Enable cleared | the SSD stops DMA: no SQE fetched, no CQE written (a command timeout) | the saved Command register written back |
//! | `memory-off` | PCI Command: Memory Space Enable cleared | its doorbell writes are dropped; register reads fail (all ones on real hardware) | the same |
//! | `reset` | the kernel's reset of the function (`reset`: FLR or the device's own method) | its queues vanish: the controller is disabled | nothing to restore: the kernel saves and restores the configuration; checked |
//! | `bus-reset` | a secondary bus reset of the SSD's port: the kernel's (`reset_method` = `bus`), or by hand where it has none ([`bridge`]) | the same, and a link down | the configuration restored (by the kernel, or the saved header written back) |
//! | `remove` | the function removed (`remove`) | the device is gone | a rescan, and the device bound to `vfio-pci` again |
//!
//! Every action needs the device named twice (`--device` and `--allow-destructive`), and is
//! refused ([`safety`]) for a device that backs a mounted filesystem or swap, or that is not
//! bound to `vfio-pci` (so no kernel driver holds it). An [`Applied`] action is undone by
//! [`Applied::undo`], or when it is dropped; the [`Report`] says what was done, seen and
//! undone, or why it could not be.

mod bridge;
pub mod safety;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::vfio::PciAddress;

/// Where sysfs and procfs are (`/sys`, `/proc`; a scratch tree in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabRoots {
    /// sysfs.
    pub sys: PathBuf,
    /// procfs (mounts, swaps).
    pub proc: PathBuf,
}

impl Default for LabRoots {
    fn default() -> LabRoots {
        LabRoots {
            sys: PathBuf::from("/sys"),
            proc: PathBuf::from("/proc"),
        }
    }
}

/// A fault to make on the SSD (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Clear Bus Master Enable.
    BusMasterOff,
    /// Clear Memory Space Enable.
    MemoryOff,
    /// The kernel's reset of the function.
    Reset,
    /// A secondary bus reset of the function's port.
    BusReset,
    /// Remove the function (undone by a rescan).
    Remove,
}

impl Action {
    /// Every action, the safest first.
    pub const ALL: [Action; 5] = [
        Action::BusMasterOff,
        Action::MemoryOff,
        Action::Reset,
        Action::BusReset,
        Action::Remove,
    ];

    /// The name `--action` takes.
    pub fn name(self) -> &'static str {
        match self {
            Action::BusMasterOff => "bus-master-off",
            Action::MemoryOff => "memory-off",
            Action::Reset => "reset",
            Action::BusReset => "bus-reset",
            Action::Remove => "remove",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Action, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                format!("{s:?} is no action ({})", names.join(", "))
            })
    }
}

/// Why an action was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabError {
    /// The device is not the one `--allow-destructive` names.
    #[error("{0}: a destructive action needs --allow-destructive {0} (naming this device)")]
    NotAllowed(PciAddress),
    /// No such PCI device.
    #[error("no PCI device {0} ({1} does not exist)")]
    NoSuchDevice(PciAddress, PathBuf),
    /// The device backs a mounted filesystem or swap.
    #[error("{device} backs {block}, which is in use ({what}): refused")]
    InUse {
        /// The device.
        device: PciAddress,
        /// Its block device.
        block: String,
        /// The mount point or swap line.
        what: String,
    },
    /// The device is not bound to vfio-pci.
    #[error(
        "{device} is bound to {driver}, not vfio-pci: lab actions are refused on a device a \
         kernel driver holds (bind it to vfio-pci first; never a system disk)"
    )]
    NotVfio {
        /// The device.
        device: PciAddress,
        /// Its driver, or `no driver`.
        driver: String,
    },
    /// The kernel offers no way to do this action here.
    #[error("{0}")]
    Unsupported(String),
    /// A sysfs or procfs file could not be read or written.
    #[error("{path}: {errno}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        errno: nix::errno::Errno,
    },
    /// The device did not come back as it was.
    #[error("{0}")]
    NotRestored(String),
}

fn io(path: &Path, e: std::io::Error) -> LabError {
    LabError::Io {
        path: path.to_path_buf(),
        errno: e
            .raw_os_error()
            .map_or(nix::errno::Errno::EIO, nix::errno::Errno::from_raw),
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text).map_err(|e| io(path, e))
}

/// The PCI Command register's offset and its Memory Space and Bus Master Enable bits.
const PCI_COMMAND: u64 = 0x04;
const COMMAND_MEMORY: u16 = 1 << 1;
const COMMAND_MASTER: u16 = 1 << 2;

/// How long a removed device may take to come back after a rescan, or a driver to bind.
pub const COME_BACK: Duration = Duration::from_secs(10);

/// One device a lab may inject faults into: checked by [`Injector::new`].
#[derive(Debug, Clone)]
pub struct Injector {
    roots: LabRoots,
    address: PciAddress,
    dev: PathBuf,
    come_back: Duration,
}

impl Injector {
    /// The device `address`, when `allowed` names it and [`safety::check`] passes.
    pub fn new(
        roots: LabRoots,
        address: PciAddress,
        allowed: &[PciAddress],
    ) -> Result<Injector, LabError> {
        if !allowed.contains(&address) {
            return Err(LabError::NotAllowed(address));
        }
        let dev = safety::check(&roots, address)?;
        Ok(Injector {
            roots,
            address,
            dev,
            come_back: COME_BACK,
        })
    }

    /// The same, waiting at most `bound` for a removed device to come back or a driver to
    /// bind (default [`COME_BACK`]).
    pub fn with_come_back(mut self, bound: Duration) -> Injector {
        self.come_back = bound;
        self
    }

    /// The device.
    pub fn address(&self) -> PciAddress {
        self.address
    }

    fn command(&self) -> Result<u16, LabError> {
        let path = self.dev.join("config");
        let f = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
        let mut b = [0u8; 2];
        f.read_exact_at(&mut b, PCI_COMMAND)
            .map_err(|e| io(&path, e))?;
        Ok(u16::from_le_bytes(b))
    }

    fn set_command(&self, v: u16) -> Result<(), LabError> {
        let path = self.dev.join("config");
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        f.write_all_at(&v.to_le_bytes(), PCI_COMMAND)
            .map_err(|e| io(&path, e))
    }

    fn reset_method(&self) -> Result<Option<String>, LabError> {
        let path = self.dev.join("reset_method");
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Does `action` (see the module docs); undone by the returned [`Applied`].
    pub fn apply(&self, action: Action) -> Result<Applied<'_>, LabError> {
        let saved = match action {
            Action::BusMasterOff | Action::MemoryOff => {
                let before = self.command()?;
                let bit = if action == Action::BusMasterOff {
                    COMMAND_MASTER
                } else {
                    COMMAND_MEMORY
                };
                self.set_command(before & !bit)?;
                Saved::Command(before)
            }
            Action::Reset => {
                if !self.dev.join("reset").exists() {
                    return Err(LabError::Unsupported(format!(
                        "{}: the kernel offers no reset for this function",
                        self.address
                    )));
                }
                write_file(&self.dev.join("reset"), "1")?;
                Saved::Nothing
            }
            Action::BusReset => self.bus_reset()?,
            Action::Remove => {
                write_file(&self.dev.join("remove"), "1")?;
                Saved::Removed
            }
        };
        Ok(Applied {
            inj: self,
            action,
            saved,
            done: false,
        })
    }

    /// The kernel's bus reset (`reset_method` = `bus`), or, where the kernel has none for
    /// this device, one by hand ([`bridge`]).
    fn bus_reset(&self) -> Result<Saved, LabError> {
        if let Some(before) = self.reset_method()? {
            if write_file(&self.dev.join("reset_method"), "bus").is_ok() {
                let reset = write_file(&self.dev.join("reset"), "1");
                write_file(&self.dev.join("reset_method"), &before)?;
                match reset {
                    Ok(()) => {
                        return Ok(Saved::Done(format!(
                            "the kernel's bus reset; reset_method {before:?} written back"
                        )))
                    }
                    Err(LabError::Io {
                        errno: nix::errno::Errno::ENOTTY,
                        ..
                    }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.manual_bus_reset().map(Saved::Done)
    }

    /// The device's driver, if any.
    fn driver(&self) -> Option<String> {
        safety::link_name(&self.dev.join("driver"))
    }

    /// Binds the device to vfio-pci again (after a rescan the kernel may have bound
    /// another driver, or none).
    fn rebind_vfio(&self) -> Result<(), LabError> {
        write_file(&self.dev.join("driver_override"), "vfio-pci")?;
        if let Some(d) = self.driver().filter(|d| d != "vfio-pci") {
            write_file(&self.dev.join("driver/unbind"), &self.address.to_string())
                .map_err(|e| LabError::NotRestored(format!("unbinding {d}: {e}")))?;
        }
        if self.driver().is_none() {
            write_file(
                &self.roots.sys.join("bus/pci/drivers_probe"),
                &self.address.to_string(),
            )?;
        }
        wait_until(self.come_back, || {
            self.driver().as_deref() == Some("vfio-pci")
        })
        .map_err(|_| {
            LabError::NotRestored(format!(
                "{} is bound to {} after the rescan, not vfio-pci",
                self.address,
                self.driver().unwrap_or_else(|| "no driver".into())
            ))
        })
    }
}

fn wait_until(bound: Duration, mut f: impl FnMut() -> bool) -> Result<(), ()> {
    let t0 = Instant::now();
    loop {
        if f() {
            return Ok(());
        }
        if t0.elapsed() >= bound {
            return Err(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Saved {
    Command(u16),
    /// Restored as part of the action; what was done.
    Done(String),
    Nothing,
    Removed,
}

/// An action done on the device; undone by [`Applied::undo`] or when dropped.
#[derive(Debug)]
pub struct Applied<'a> {
    inj: &'a Injector,
    action: Action,
    saved: Saved,
    done: bool,
}

impl Applied<'_> {
    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// What sysfs shows of the device now, in one line: its Command register, or that it
    /// is gone.
    pub fn observe(&self) -> String {
        if !self.inj.dev.exists() {
            return format!("{} is not on the bus", self.inj.address);
        }
        match self.inj.command() {
            Ok(c) => format!(
                "Command {c:#06x} (memory space {}, bus master {}), driver {}",
                on_off(c & COMMAND_MEMORY != 0),
                on_off(c & COMMAND_MASTER != 0),
                self.inj.driver().unwrap_or_else(|| "none".into())
            ),
            Err(e) => format!("Command unreadable: {e}"),
        }
    }

    /// Whether the action shows: the bit it cleared reads clear, the device it removed is
    /// gone; `None` for a reset, which leaves nothing in sysfs to see afterwards (the
    /// controller's registers show it: CC.EN and CSTS.RDY 0).
    pub fn took_effect(&self) -> Option<bool> {
        match self.action {
            Action::BusMasterOff => Some(self.inj.command().is_ok_and(|c| c & COMMAND_MASTER == 0)),
            Action::MemoryOff => Some(self.inj.command().is_ok_and(|c| c & COMMAND_MEMORY == 0)),
            Action::Remove => Some(!self.inj.dev.exists()),
            Action::Reset | Action::BusReset => None,
        }
    }

    /// Undoes the action and checks the device is back as it was: the Command register as
    /// saved, `reset_method` as saved, the device present and bound to vfio-pci.
    pub fn undo(mut self) -> Result<String, LabError> {
        self.done = true;
        self.restore()
    }

    fn restore(&self) -> Result<String, LabError> {
        let inj = self.inj;
        match &self.saved {
            Saved::Command(c) => {
                inj.set_command(*c)?;
                let now = inj.command()?;
                if now != *c {
                    return Err(LabError::NotRestored(format!(
                        "Command reads {now:#06x} after writing {c:#06x} back"
                    )));
                }
                Ok(format!("Command {c:#06x} written back"))
            }
            Saved::Done(what) => Ok(what.clone()),
            Saved::Nothing => Ok("nothing to restore (the kernel restores the configuration \
                                  after a reset)"
                .into()),
            Saved::Removed => {
                write_file(&inj.roots.sys.join("bus/pci/rescan"), "1")?;
                wait_until(inj.come_back, || inj.dev.exists()).map_err(|_| {
                    LabError::NotRestored(format!(
                        "{} did not come back within {} s of a rescan",
                        inj.address,
                        inj.come_back.as_secs_f64()
                    ))
                })?;
                inj.rebind_vfio()?;
                Ok("rescanned, bound to vfio-pci".into())
            }
        }
        .and_then(|what| {
            // Whatever the action, the device must be there and vfio-pci's.
            match inj.driver() {
                Some(d) if d == "vfio-pci" => Ok(what),
                d => Err(LabError::NotRestored(format!(
                    "{} is bound to {} afterwards, not vfio-pci",
                    inj.address,
                    d.unwrap_or_else(|| "no driver".into())
                ))),
            }
        })
    }
}

impl Drop for Applied<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.restore() {
                tracing::error!(device = %self.inj.address, action = %self.action, %e,
                    "a lab action could not be undone");
            }
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// What one lab action did, for the report (`nvmf-conform inject` prints it as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The device.
    pub device: String,
    /// The action.
    pub action: Action,
    /// What sysfs showed before.
    pub before: String,
    /// What sysfs showed while it held.
    pub during: String,
    /// Whether the action showed ([`Applied::took_effect`]; `None`: a reset, which sysfs
    /// does not show).
    pub took_effect: Option<bool>,
    /// How long it held, in milliseconds.
    pub held_ms: u64,
    /// What undoing it did, when it was undone.
    pub undone: Option<String>,
    /// Why it could not be undone, when it was not.
    pub undo_error: Option<String>,
    /// What sysfs showed after.
    pub after: String,
}

/// Does `action` on the device, holds it while `hold` runs (the caller's traffic, or a
/// sleep), undoes it, and reports. An action that could not be done at all is an error;
/// one that could not be undone is a report whose `undo_error` says why.
pub fn inject(inj: &Injector, action: Action, hold: impl FnOnce()) -> Result<Report, LabError> {
    let look = |inj: &Injector| match inj.command() {
        Ok(c) => format!(
            "Command {c:#06x}, driver {}",
            inj.driver().unwrap_or_else(|| "none".into())
        ),
        Err(_) if !inj.dev.exists() => "not on the bus".into(),
        Err(e) => format!("unreadable: {e}"),
    };
    let before = look(inj);
    let applied = inj.apply(action)?;
    let t0 = Instant::now();
    let during = applied.observe();
    let took_effect = applied.took_effect();
    hold();
    let held_ms = t0.elapsed().as_millis() as u64;
    let (undone, undo_error) = match applied.undo() {
        Ok(what) => (Some(what), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Report {
        device: inj.address.to_string(),
        action,
        before,
        during,
        took_effect,
        held_ms,
        undone,
        undo_error,
        after: look(inj),
    })
}

#[cfg(test)]
mod tests;
