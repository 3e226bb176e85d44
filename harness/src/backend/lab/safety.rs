//! What a lab action checks before it touches a device: the device exists, no block device
//! it backs is mounted or used as swap, and it is bound to `vfio-pci` (no kernel driver
//! holds it). In that order, each refusal a [`LabError`] naming what to fix.

use std::path::{Path, PathBuf};

use super::{io, LabError, LabRoots};
use crate::backend::vfio::PciAddress;

/// The last component of the symbolic link at `path`, if it is one.
pub(super) fn link_name(path: &Path) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// The block devices (`nvme0n1`, …) whose sysfs node lies under the device's.
pub fn block_devices(roots: &LabRoots, dev: &Path) -> Vec<String> {
    let Ok(dev) = dev.canonicalize() else {
        return vec![];
    };
    let Ok(entries) = std::fs::read_dir(roots.sys.join("class/block")) else {
        return vec![];
    };
    let mut out: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().canonicalize().is_ok_and(|p| p.starts_with(&dev)))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Whether `source` (a mount's or swap's first field) is block device `name` or one of its
/// partitions (`nvme0n1p2`, `sda1`).
fn is_on(source: &str, name: &str) -> bool {
    let Some(rest) = source
        .strip_prefix("/dev/")
        .and_then(|s| s.strip_prefix(name))
    else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    // A disk whose name ends in a digit numbers its partitions after a `p`.
    let digits = if name.ends_with(|c: char| c.is_ascii_digit()) {
        rest.strip_prefix('p')
    } else {
        Some(rest)
    };
    digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// A mount or swap line of procfs that uses block device `name`.
fn user_of(roots: &LabRoots, name: &str) -> Result<Option<String>, LabError> {
    for file in ["mounts", "swaps"] {
        let path = roots.proc.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path, e)),
        };
        for line in text.lines() {
            let mut f = line.split_whitespace();
            if let (Some(src), Some(at)) = (f.next(), f.next()) {
                if is_on(src, name) {
                    return Ok(Some(format!("{src} on {at} ({file})")));
                }
            }
        }
    }
    Ok(None)
}

/// Checks the device (see the module docs); its sysfs directory when it may be touched.
pub fn check(roots: &LabRoots, address: PciAddress) -> Result<PathBuf, LabError> {
    let dev = roots.sys.join("bus/pci/devices").join(address.to_string());
    if !dev.exists() {
        return Err(LabError::NoSuchDevice(address, dev));
    }
    for block in block_devices(roots, &dev) {
        if let Some(what) = user_of(roots, &block)? {
            return Err(LabError::InUse {
                device: address,
                block,
                what,
            });
        }
    }
    match link_name(&dev.join("driver")) {
        Some(d) if d == "vfio-pci" => Ok(dev),
        d => Err(LabError::NotVfio {
            device: address,
            driver: d.unwrap_or_else(|| "no driver".into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_on_their_disk() {
        assert!(is_on("/dev/nvme0n1", "nvme0n1"));
        assert!(is_on("/dev/nvme0n1p3", "nvme0n1"));
        assert!(is_on("/dev/sda1", "sda"));
        assert!(!is_on("/dev/nvme0n10", "nvme0n1p"));
        assert!(!is_on("/dev/nvme0n12", "nvme0n1"), "another namespace");
        assert!(!is_on("/dev/nvme0n1p", "nvme0n1"));
        assert!(!is_on("/dev/sdab", "sda"));
        assert!(!is_on("tmpfs", "sda"));
        assert!(!is_on("/dev/mapper/root", "sda"));
    }
}
