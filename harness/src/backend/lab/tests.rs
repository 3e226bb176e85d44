//! The lab actions on a scratch sysfs: a device directory with a `config` file (the
//! Command register at 04h), `reset`, `reset_method`, `remove` and a `driver` link, which the
//! tests read back as the kernel would have been asked.

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use super::*;

struct Tree {
    dir: PathBuf,
    roots: LabRoots,
    dev: PathBuf,
    addr: PciAddress,
}

impl Tree {
    /// A device bound to `driver`, Command 0x0406 (memory space and bus master on).
    fn new(name: &str, driver: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("nvmf-lab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let roots = LabRoots {
            sys: dir.join("sys"),
            proc: dir.join("proc"),
        };
        let addr: PciAddress = "0000:01:00.0".parse().unwrap();
        let real = roots
            .sys
            .join("devices/pci0000:00/0000:00:02.0/0000:01:00.0");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::create_dir_all(roots.sys.join("bus/pci/devices")).unwrap();
        std::fs::create_dir_all(roots.sys.join("bus/pci/drivers/vfio-pci")).unwrap();
        std::fs::create_dir_all(roots.sys.join("class/block")).unwrap();
        std::fs::create_dir_all(&roots.proc).unwrap();
        std::fs::write(roots.proc.join("mounts"), "/dev/sda1 / ext4 rw 0 0\n").unwrap();
        let dev = roots.sys.join("bus/pci/devices/0000:01:00.0");
        symlink(&real, &dev).unwrap();
        let mut config = vec![0u8; 64];
        config[4] = 0x06;
        config[5] = 0x04;
        std::fs::write(dev.join("config"), config).unwrap();
        symlink(
            roots.sys.join("bus/pci/drivers").join(driver),
            dev.join("driver"),
        )
        .unwrap();
        Tree {
            dir,
            roots,
            dev,
            addr,
        }
    }

    fn command(&self) -> u16 {
        let c = std::fs::read(self.dev.join("config")).unwrap();
        u16::from_le_bytes([c[4], c[5]])
    }

    fn injector(&self) -> Injector {
        Injector::new(self.roots.clone(), self.addr, &[self.addr]).unwrap()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn actions_parse_by_name_and_bad_names_list_them() {
    for a in Action::ALL {
        assert_eq!(a.name().parse::<Action>(), Ok(a));
    }
    let e = "flr".parse::<Action>().unwrap_err();
    assert!(e.contains("bus-master-off") && e.contains("remove"), "{e}");
}

#[test]
fn refusals_come_before_any_write() {
    let t = Tree::new("refusals", "nvme");
    let other: PciAddress = "0000:02:00.0".parse().unwrap();
    assert_eq!(
        Injector::new(t.roots.clone(), t.addr, &[other]).unwrap_err(),
        LabError::NotAllowed(t.addr)
    );
    assert!(matches!(
        Injector::new(t.roots.clone(), other, &[other]).unwrap_err(),
        LabError::NoSuchDevice(..)
    ));
    let e = Injector::new(t.roots.clone(), t.addr, &[t.addr]).unwrap_err();
    assert_eq!(
        e,
        LabError::NotVfio {
            device: t.addr,
            driver: "nvme".into()
        }
    );
    // A namespace of the device that is mounted: refused before the driver is looked at.
    let ns = t.dev.join("nvme/nvme0/nvme0n1");
    std::fs::create_dir_all(&ns).unwrap();
    symlink(&ns, t.roots.sys.join("class/block/nvme0n1")).unwrap();
    std::fs::write(
        t.roots.proc.join("mounts"),
        "/dev/sda1 / ext4 rw 0 0\n/dev/nvme0n1p2 /data xfs rw 0 0\n",
    )
    .unwrap();
    let e = Injector::new(t.roots.clone(), t.addr, &[t.addr]).unwrap_err();
    assert!(
        matches!(&e, LabError::InUse { block, what, .. } if block == "nvme0n1" && what.contains("/data")),
        "{e:?}"
    );
    std::fs::write(t.roots.proc.join("mounts"), "").unwrap();
    std::fs::write(
        t.roots.proc.join("swaps"),
        "Filename Type Size Used Priority\n/dev/nvme0n1p1 partition 1 0 -2\n",
    )
    .unwrap();
    assert!(matches!(
        Injector::new(t.roots.clone(), t.addr, &[t.addr]).unwrap_err(),
        LabError::InUse { .. }
    ));
    assert_eq!(t.command(), 0x0406, "nothing was written");
}

#[test]
fn command_bits_are_cleared_then_written_back() {
    let t = Tree::new("command", "vfio-pci");
    let inj = t.injector();
    for (action, cleared) in [(Action::BusMasterOff, 0x0402), (Action::MemoryOff, 0x0404)] {
        let applied = inj.apply(action).unwrap();
        assert_eq!(t.command(), cleared);
        assert_eq!(applied.took_effect(), Some(true));
        assert!(
            applied.observe().contains("driver vfio-pci"),
            "{}",
            applied.observe()
        );
        let what = applied.undo().unwrap();
        assert!(what.contains("0x0406"), "{what}");
        assert_eq!(t.command(), 0x0406);
    }
    // Dropped without undo: undone all the same.
    drop(inj.apply(Action::BusMasterOff).unwrap());
    assert_eq!(t.command(), 0x0406);
}

#[test]
fn a_report_holds_before_during_and_after() {
    let t = Tree::new("report", "vfio-pci");
    let inj = t.injector();
    let mut during = 0;
    let r = inject(&inj, Action::BusMasterOff, || during = t.command()).unwrap();
    assert_eq!(during, 0x0402, "held while the hold ran");
    assert_eq!(r.took_effect, Some(true));
    assert!(
        r.before.contains("0x0406") && r.after.contains("0x0406"),
        "{r:?}"
    );
    assert!(r.during.contains("bus master off"), "{r:?}");
    assert!(r.undone.is_some() && r.undo_error.is_none());
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"action\":\"bus-master-off\""), "{json}");
}

#[test]
fn resets_go_through_the_kernel_and_restore_the_method() {
    let t = Tree::new("reset", "vfio-pci");
    let inj = t.injector();
    assert!(matches!(
        inj.apply(Action::Reset),
        Err(LabError::Unsupported(_))
    ));
    std::fs::write(t.dev.join("reset"), "").unwrap();
    inj.apply(Action::Reset).unwrap().undo().unwrap();
    assert_eq!(std::fs::read_to_string(t.dev.join("reset")).unwrap(), "1");
    // No kernel bus reset and a port in sysfs: by hand.
    let port = t.roots.sys.join("devices/pci0000:00/0000:00:02.0");
    let mut bridge = vec![0u8; 64];
    bridge[0x3e] = 0x10;
    std::fs::write(port.join("config"), &bridge).unwrap();
    let what = inj.apply(Action::BusReset).unwrap().undo().unwrap();
    assert!(
        what.contains("by hand") && what.contains("0000:00:02.0"),
        "{what}"
    );
    let after = std::fs::read(port.join("config")).unwrap();
    assert_eq!(after[0x3e], 0x10, "Bridge Control as it was, SBR released");
    assert_eq!(t.command(), 0x0406, "the header written back");
    // The kernel's, when it has one.
    std::fs::write(t.dev.join("reset_method"), "flr bus\n").unwrap();
    let what = inj.apply(Action::BusReset).unwrap().undo().unwrap();
    assert!(what.contains("the kernel's bus reset"), "{what}");
    assert_eq!(
        std::fs::read_to_string(t.dev.join("reset_method")).unwrap(),
        "flr bus"
    );
    // Another device below the port: no reset by hand.
    std::fs::remove_file(t.dev.join("reset_method")).unwrap();
    std::fs::create_dir_all(port.join("0000:01:00.1")).unwrap();
    let e = inj.apply(Action::BusReset).unwrap_err();
    assert!(e.to_string().contains("0000:01:00.1"), "{e}");
}

#[test]
fn a_device_not_back_on_vfio_pci_is_reported_not_restored() {
    let t = Tree::new("rebind", "vfio-pci");
    let inj = t.injector().with_come_back(Duration::from_millis(200));
    std::fs::write(t.dev.join("remove"), "").unwrap();
    std::fs::write(t.roots.sys.join("bus/pci/rescan"), "").unwrap();
    std::fs::write(t.roots.sys.join("bus/pci/drivers_probe"), "").unwrap();
    std::fs::write(t.dev.join("driver_override"), "").unwrap();
    let applied = inj.apply(Action::Remove).unwrap();
    assert_eq!(std::fs::read_to_string(t.dev.join("remove")).unwrap(), "1");
    // The scratch tree keeps the directory, as a rescan brings it back; the kernel
    // would have bound the nvme driver to it.
    std::fs::remove_file(t.dev.join("driver")).unwrap();
    std::fs::create_dir_all(t.roots.sys.join("bus/pci/drivers/nvme")).unwrap();
    symlink(
        t.roots.sys.join("bus/pci/drivers/nvme"),
        t.dev.join("driver"),
    )
    .unwrap();
    std::fs::write(t.roots.sys.join("bus/pci/drivers/nvme/unbind"), "").unwrap();
    let e = applied.undo().unwrap_err();
    assert!(e.to_string().contains("not vfio-pci"), "{e}");
    assert_eq!(
        std::fs::read_to_string(t.roots.sys.join("bus/pci/rescan")).unwrap(),
        "1"
    );
    assert_eq!(
        std::fs::read_to_string(t.dev.join("driver_override")).unwrap(),
        "vfio-pci"
    );
    assert_eq!(
        std::fs::read_to_string(t.roots.sys.join("bus/pci/drivers/nvme/unbind")).unwrap(),
        "0000:01:00.0"
    );
}
