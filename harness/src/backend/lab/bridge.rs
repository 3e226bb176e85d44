//! A secondary bus reset by hand, for a kernel that offers none for the device (its
//! `reset_method` refuses `bus`, or the reset answers ENOTTY, as Linux 6.1 does for a device
//! under QEMU's root port): the Secondary Bus Reset bit of the port's Bridge Control held
//! for a few milliseconds, then the device's configuration header written back, as the
//! kernel's own bus reset does. Only when the device is alone below its port.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use super::{io, Injector, LabError};
use crate::backend::vfio::PciAddress;

/// Bridge Control (16 bits at 3Eh of a type-1 header) and its Secondary Bus Reset bit.
const BRIDGE_CONTROL: u64 = 0x3e;
const SECONDARY_BUS_RESET: u16 = 1 << 6;
/// How long the reset is held (the PCI spec asks for at least 1 ms) and how long the device
/// then gets before its configuration is written back.
const HOLD: Duration = Duration::from_millis(5);
const SETTLE: Duration = Duration::from_millis(100);
/// Bytes of the type-0 header written back, and where they start (after Vendor and Device
/// ID, which are read-only).
const HEADER: usize = 0x40;

fn read_at(path: &Path, at: u64, buf: &mut [u8]) -> Result<(), LabError> {
    let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    f.read_exact_at(buf, at).map_err(|e| io(path, e))
}

fn write_at(path: &Path, at: u64, buf: &[u8]) -> Result<(), LabError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io(path, e))?;
    f.write_all_at(buf, at).map_err(|e| io(path, e))
}

impl Injector {
    /// The port the device sits below (its parent in sysfs), when it is a PCI function.
    fn port(&self) -> Option<(PciAddress, std::path::PathBuf)> {
        let real = self.dev.canonicalize().ok()?;
        let parent = real.parent()?;
        let name = parent.file_name()?.to_str()?;
        let addr: PciAddress = name.parse().ok()?;
        Some((addr, parent.to_path_buf()))
    }

    /// Resets the device's secondary bus by hand (see the module docs); what was done.
    pub(super) fn manual_bus_reset(&self) -> Result<String, LabError> {
        let (port, dir) = self.port().ok_or_else(|| {
            LabError::Unsupported(format!("{}: no PCI port above it in sysfs", self.address))
        })?;
        let others: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| io(&dir, e))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<PciAddress>().is_ok() && *n != self.address.to_string())
            .collect();
        if !others.is_empty() {
            return Err(LabError::Unsupported(format!(
                "{}: a bus reset of port {port} would reset {} too",
                self.address,
                others.join(", ")
            )));
        }
        let config = self.dev.join("config");
        let mut header = [0u8; HEADER];
        read_at(&config, 0, &mut header)?;
        let port_config = dir.join("config");
        let mut bc = [0u8; 2];
        read_at(&port_config, BRIDGE_CONTROL, &mut bc)?;
        let bc = u16::from_le_bytes(bc);
        write_at(
            &port_config,
            BRIDGE_CONTROL,
            &(bc | SECONDARY_BUS_RESET).to_le_bytes(),
        )?;
        std::thread::sleep(HOLD);
        write_at(
            &port_config,
            BRIDGE_CONTROL,
            &(bc & !SECONDARY_BUS_RESET).to_le_bytes(),
        )?;
        std::thread::sleep(SETTLE);
        // The header back: BARs and the rest first, the Command register last (it turns
        // decoding on once the BARs are in place).
        write_at(&config, 0x08, &header[0x08..HEADER])?;
        write_at(&config, 0x04, &header[0x04..0x06])?;
        Ok(format!(
            "secondary bus reset of port {port} by hand (Bridge Control {bc:#06x}, SBR held \
             {} ms), the device's configuration header written back",
            HOLD.as_millis()
        ))
    }
}
