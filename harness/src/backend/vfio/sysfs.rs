//! Whether a PCI device can be driven through VFIO, read from sysfs before any VFIO call:
//! the device exists, it is in an IOMMU group, it is bound to `vfio-pci`, and the group's
//! node is in `/dev/vfio`. Each refusal is a [`VfioError`] that says what to do.

use std::path::{Path, PathBuf};

use super::{PciAddress, VfioError};

/// Where sysfs and the VFIO nodes are (`/sys` and `/dev/vfio`; a scratch tree in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// sysfs.
    pub sys: PathBuf,
    /// The VFIO group nodes.
    pub dev_vfio: PathBuf,
}

impl Default for Roots {
    fn default() -> Roots {
        Roots {
            sys: PathBuf::from("/sys"),
            dev_vfio: PathBuf::from("/dev/vfio"),
        }
    }
}

/// A device that passed every check: its IOMMU group and the group's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfioTarget {
    /// The device.
    pub address: PciAddress,
    /// Its IOMMU group number.
    pub group: u32,
    /// `/dev/vfio/<group>`.
    pub group_node: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> VfioError {
    VfioError::Io {
        path: path.to_path_buf(),
        errno: e
            .raw_os_error()
            .map_or(nix::errno::Errno::EIO, nix::errno::Errno::from_raw),
    }
}

/// The last component of the symbolic link at `path`, or `None` when there is no link.
fn link_name(path: &Path) -> Result<Option<String>, VfioError> {
    match std::fs::read_link(path) {
        Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// Checks that `address` can be opened through VFIO, in the order an operator fixes them.
pub fn check(roots: &Roots, address: PciAddress) -> Result<VfioTarget, VfioError> {
    let dev = roots.sys.join("bus/pci/devices").join(address.to_string());
    if !dev.exists() {
        return Err(VfioError::NoSuchDevice(address, dev));
    }
    let group = link_name(&dev.join("iommu_group"))?.ok_or(VfioError::NoIommuGroup(address))?;
    let group: u32 = group.parse().map_err(|_| VfioError::Io {
        path: dev.join("iommu_group"),
        errno: nix::errno::Errno::EINVAL,
    })?;
    let driver = link_name(&dev.join("driver"))?;
    if driver.as_deref() != Some("vfio-pci") {
        return Err(VfioError::WrongDriver {
            address,
            driver: driver.unwrap_or_else(|| "no driver".into()),
        });
    }
    let group_node = roots.dev_vfio.join(group.to_string());
    if !group_node.exists() {
        return Err(VfioError::NoGroupNode(group_node));
    }
    Ok(VfioTarget {
        address,
        group,
        group_node,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A scratch sysfs with one device, set up step by step.
    struct Tree {
        dir: PathBuf,
        roots: Roots,
        dev: PathBuf,
    }

    impl Tree {
        fn new(name: &str) -> Tree {
            let dir =
                std::env::temp_dir().join(format!("nvmf-vfio-sysfs-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let roots = Roots {
                sys: dir.join("sys"),
                dev_vfio: dir.join("dev/vfio"),
            };
            let dev = roots.sys.join("bus/pci/devices/0000:01:00.0");
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::create_dir_all(&roots.dev_vfio).unwrap();
            Tree { dir, roots, dev }
        }

        fn link(&self, name: &str, target: &str) {
            symlink(target, self.dev.join(name)).unwrap();
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn each_missing_piece_is_named_in_order() {
        let a: PciAddress = "0000:01:00.0".parse().unwrap();
        let t = Tree::new("order");
        let other: PciAddress = "0000:02:00.0".parse().unwrap();
        assert!(matches!(
            check(&t.roots, other),
            Err(VfioError::NoSuchDevice(..))
        ));
        assert_eq!(check(&t.roots, a), Err(VfioError::NoIommuGroup(a)));
        t.link("iommu_group", "../../../../kernel/iommu_groups/7");
        let e = check(&t.roots, a).unwrap_err();
        assert_eq!(
            e,
            VfioError::WrongDriver {
                address: a,
                driver: "no driver".into()
            }
        );
        assert!(e.to_string().contains("never a system disk"), "{e}");
        t.link("driver", "../../../../bus/pci/drivers/nvme");
        assert!(matches!(
            check(&t.roots, a),
            Err(VfioError::WrongDriver { driver, .. }) if driver == "nvme"
        ));
        std::fs::remove_file(t.dev.join("driver")).unwrap();
        t.link("driver", "../../../../bus/pci/drivers/vfio-pci");
        let node = t.roots.dev_vfio.join("7");
        assert_eq!(
            check(&t.roots, a),
            Err(VfioError::NoGroupNode(node.clone()))
        );
        std::fs::write(&node, b"").unwrap();
        assert_eq!(
            check(&t.roots, a),
            Ok(VfioTarget {
                address: a,
                group: 7,
                group_node: node
            })
        );
    }

    #[test]
    fn this_machine_without_vfio_says_why() {
        // Whatever this machine has, a device that is not there is named, not a panic.
        let a: PciAddress = "ffff:ff:1f.7".parse().unwrap();
        assert!(matches!(
            check(&Roots::default(), a),
            Err(VfioError::NoSuchDevice(..))
        ));
    }
}
