//! The VFIO calls of `linux/vfio.h` (structures from `vfio-bindings`), and memory a
//! controller reaches by DMA. Every `unsafe` block of the VFIO backend is in this file.
//!
//! Registers are read and written with `pread` / `pwrite` on the device's BAR0 region, not
//! through a mapping: a controller whose memory space was disabled (a PCI error, a reset)
//! then gives `EIO`, which [`Bar0`] turns into an all-ones read, instead of a `SIGBUS` that
//! would kill the process. A register access costs a system call; the backend polls at
//! millisecond rates, so that is cheap.
//!
//! DMA memory ([`DmaBuffer`]) is page-aligned anonymous memory, locked, mapped in the
//! device's IOMMU domain at IOVA = its virtual address (which a 48-bit-wide IOMMU, such as
//! QEMU's `intel-iommu,aw-bits=48`, takes), and unmapped when dropped.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use vfio_bindings::bindings::vfio as b;

use super::regs::Registers;
use super::sysfs::VfioTarget;
use super::VfioError;

/// `_IO(VFIO_TYPE, VFIO_BASE + n)`.
const fn vfio_io(n: u32) -> nix::sys::ioctl::ioctl_num_type {
    nix::request_code_none!(b::VFIO_TYPE, b::VFIO_BASE + n) as nix::sys::ioctl::ioctl_num_type
}

const GET_API_VERSION: nix::sys::ioctl::ioctl_num_type = vfio_io(0);
const CHECK_EXTENSION: nix::sys::ioctl::ioctl_num_type = vfio_io(1);
const SET_IOMMU: nix::sys::ioctl::ioctl_num_type = vfio_io(2);
const GROUP_GET_STATUS: nix::sys::ioctl::ioctl_num_type = vfio_io(3);
const GROUP_SET_CONTAINER: nix::sys::ioctl::ioctl_num_type = vfio_io(4);
const GROUP_GET_DEVICE_FD: nix::sys::ioctl::ioctl_num_type = vfio_io(6);
const DEVICE_GET_REGION_INFO: nix::sys::ioctl::ioctl_num_type = vfio_io(8);
const DEVICE_SET_IRQS: nix::sys::ioctl::ioctl_num_type = vfio_io(10);
const IOMMU_MAP_DMA: nix::sys::ioctl::ioctl_num_type = vfio_io(13);
const IOMMU_UNMAP_DMA: nix::sys::ioctl::ioctl_num_type = vfio_io(14);

/// PCI Command register bits: memory space and bus master enable.
const PCI_COMMAND: u64 = 0x04;
const PCI_COMMAND_MEMORY: u16 = 0x2;
const PCI_COMMAND_MASTER: u16 = 0x4;

/// The memory page the backend maps with.
pub const PAGE: usize = 4096;

fn call_err(call: &'static str, errno: Errno) -> VfioError {
    VfioError::Call { call, errno }
}

/// `ioctl(fd, request, arg)`, its result or the errno.
fn ioctl(
    fd: &impl AsRawFd,
    request: nix::sys::ioctl::ioctl_num_type,
    arg: usize,
) -> nix::Result<i32> {
    // SAFETY: every request here is a VFIO ioctl whose argument is either an integer or
    // a pointer to a live, initialised structure of the size its argsz says, which the
    // caller keeps alive for the duration of the call.
    let rc = unsafe { nix::libc::ioctl(fd.as_raw_fd(), request, arg) };
    Errno::result(rc)
}

/// An opened device: its container (IOMMU domain), group and device file.
#[derive(Debug)]
pub struct VfioDevice {
    target: VfioTarget,
    container: OwnedFd,
    _group: OwnedFd,
    device: Arc<OwnedFd>,
    bar0: Bar0,
    config_offset: u64,
}

impl VfioDevice {
    /// Opens `target` (checked with [`super::sysfs::check`]): a new container with the
    /// type-1 IOMMU, the device's group in it, the device, its BAR0 and config regions;
    /// turns on memory space and bus mastering.
    pub fn open(target: &VfioTarget) -> Result<VfioDevice, VfioError> {
        let container = open_fd(Path::new("/dev/vfio/vfio"))?;
        let api = ioctl(&container, GET_API_VERSION, 0)
            .map_err(|e| call_err("VFIO_GET_API_VERSION", e))?;
        if api != b::VFIO_API_VERSION as i32 {
            return Err(VfioError::Unsupported(format!(
                "VFIO API version {api}, expected 0"
            )));
        }
        let type1 = ioctl(&container, CHECK_EXTENSION, b::VFIO_TYPE1v2_IOMMU as usize)
            .map_err(|e| call_err("VFIO_CHECK_EXTENSION", e))?;
        if type1 != 1 {
            return Err(VfioError::Unsupported(
                "the kernel's VFIO has no type-1 v2 IOMMU".into(),
            ));
        }
        let group = open_fd(&target.group_node)?;
        let mut status = b::vfio_group_status {
            argsz: std::mem::size_of::<b::vfio_group_status>() as u32,
            flags: 0,
        };
        ioctl(&group, GROUP_GET_STATUS, &mut status as *mut _ as usize)
            .map_err(|e| call_err("VFIO_GROUP_GET_STATUS", e))?;
        if status.flags & b::VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(VfioError::GroupNotViable(target.group));
        }
        let raw_container = container.as_raw_fd();
        ioctl(
            &group,
            GROUP_SET_CONTAINER,
            &raw_container as *const i32 as usize,
        )
        .map_err(|e| call_err("VFIO_GROUP_SET_CONTAINER", e))?;
        ioctl(&container, SET_IOMMU, b::VFIO_TYPE1v2_IOMMU as usize)
            .map_err(|e| call_err("VFIO_SET_IOMMU", e))?;
        let name = CString::new(target.address.to_string()).expect("no NUL in an address");
        let fd = ioctl(&group, GROUP_GET_DEVICE_FD, name.as_ptr() as usize)
            .map_err(|e| call_err("VFIO_GROUP_GET_DEVICE_FD", e))?;
        // SAFETY: the kernel just returned this descriptor to this process; nothing else
        // owns it.
        let device = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let bar = region(&device, b::VFIO_PCI_BAR0_REGION_INDEX)?;
        let config = region(&device, b::VFIO_PCI_CONFIG_REGION_INDEX)?;
        let dev = VfioDevice {
            target: target.clone(),
            container,
            _group: group,
            bar0: Bar0 {
                device: device.clone(),
                offset: bar.offset,
                size: bar.size,
            },
            device,
            config_offset: config.offset,
        };
        dev.enable()?;
        Ok(dev)
    }

    /// Turns on memory space and bus mastering in the PCI Command register (a link reset,
    /// as the recovery from a PCI error does, turns them off).
    pub fn enable(&self) -> Result<(), VfioError> {
        let cmd = self.config_read16(PCI_COMMAND)?;
        self.config_write16(PCI_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)
    }

    /// The device's address and group.
    pub fn target(&self) -> &VfioTarget {
        &self.target
    }

    /// BAR0: the controller's registers.
    pub fn bar0(&self) -> &Bar0 {
        &self.bar0
    }

    /// Reads a 16-bit register of the device's PCI configuration space.
    pub fn config_read16(&self, offset: u64) -> Result<u16, VfioError> {
        let mut v = [0u8; 2];
        nix::sys::uio::pread(
            self.device.as_fd(),
            &mut v,
            (self.config_offset + offset) as i64,
        )
        .map_err(|e| call_err("pread(config)", e))?;
        Ok(u16::from_le_bytes(v))
    }

    /// Writes a 16-bit register of the device's PCI configuration space.
    pub fn config_write16(&self, offset: u64, value: u16) -> Result<(), VfioError> {
        nix::sys::uio::pwrite(
            self.device.as_fd(),
            &value.to_le_bytes(),
            (self.config_offset + offset) as i64,
        )
        .map_err(|e| call_err("pwrite(config)", e))?;
        Ok(())
    }

    /// DMA memory of `pages` pages, zeroed, mapped for this device at IOVA = VA.
    pub fn dma(&self, pages: usize) -> Result<DmaBuffer, VfioError> {
        DmaBuffer::new(
            self.container.try_clone().map_err(|e| {
                call_err(
                    "dup(container)",
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                )
            })?,
            pages,
        )
    }

    /// Maps `len` bytes of this process's memory at `vaddr` (page aligned) for DMA at
    /// IOVA = `vaddr`, until [`VfioDevice::unmap`].
    pub fn map(&self, vaddr: u64, len: u64) -> Result<(), VfioError> {
        map_dma(&self.container, vaddr, len)
    }

    /// Undoes [`VfioDevice::map`].
    pub fn unmap(&self, vaddr: u64, len: u64) -> Result<(), VfioError> {
        unmap_dma(&self.container, vaddr, len)
    }

    /// An eventfd the kernel signals on the device's PCI error (`VFIO_PCI_ERR_IRQ_INDEX`,
    /// AER), on a request to release it (`VFIO_PCI_REQ_IRQ_INDEX`, hot-unplug), or on one
    /// of its MSI-X vectors (`VFIO_PCI_MSIX_IRQ_INDEX`: the controller posted a completion
    /// on a CQ with interrupts on).
    pub fn notifier(&self, which: Notifier) -> Result<OwnedFd, VfioError> {
        let efd = nix::sys::eventfd::EventFd::from_flags(
            nix::sys::eventfd::EfdFlags::EFD_NONBLOCK | nix::sys::eventfd::EfdFlags::EFD_CLOEXEC,
        )
        .map_err(|e| call_err("eventfd", e))?;
        #[repr(C)]
        struct IrqSetOne {
            set: b::vfio_irq_set,
            fd: i32,
        }
        let arg = IrqSetOne {
            set: b::vfio_irq_set {
                argsz: std::mem::size_of::<IrqSetOne>() as u32,
                flags: b::VFIO_IRQ_SET_DATA_EVENTFD | b::VFIO_IRQ_SET_ACTION_TRIGGER,
                index: match which {
                    Notifier::Error => b::VFIO_PCI_ERR_IRQ_INDEX,
                    Notifier::Request => b::VFIO_PCI_REQ_IRQ_INDEX,
                    Notifier::Msix(_) => b::VFIO_PCI_MSIX_IRQ_INDEX,
                },
                start: match which {
                    Notifier::Msix(vector) => u32::from(vector),
                    _ => 0,
                },
                count: 1,
                data: Default::default(),
            },
            fd: efd.as_fd().as_raw_fd(),
        };
        ioctl(
            &*self.device,
            DEVICE_SET_IRQS,
            &arg as *const IrqSetOne as usize,
        )
        .map_err(|e| call_err("VFIO_DEVICE_SET_IRQS", e))?;
        Ok(OwnedFd::from(efd))
    }
}

impl VfioDevice {
    /// Turns the device's MSI-X off in VFIO (every vector's eventfd unwired), so that the
    /// next [`VfioDevice::notifier`] for a vector enables it anew — as it must after a
    /// reset of the function, which clears the MSI-X capability VFIO had programmed.
    pub fn msix_off(&self) -> Result<(), VfioError> {
        let arg = b::vfio_irq_set {
            argsz: std::mem::size_of::<b::vfio_irq_set>() as u32,
            flags: b::VFIO_IRQ_SET_DATA_NONE | b::VFIO_IRQ_SET_ACTION_TRIGGER,
            index: b::VFIO_PCI_MSIX_IRQ_INDEX,
            start: 0,
            count: 0,
            data: Default::default(),
        };
        ioctl(
            &*self.device,
            DEVICE_SET_IRQS,
            &arg as *const b::vfio_irq_set as usize,
        )
        .map_err(|e| call_err("VFIO_DEVICE_SET_IRQS(MSI-X off)", e))?;
        Ok(())
    }
}

/// Which of the device's notifiers [`VfioDevice::notifier`] wires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notifier {
    /// A PCI error was reported on the device.
    Error,
    /// The kernel asks for the device back (hot-unplug).
    Request,
    /// MSI-X vector `n` fired.
    Msix(u16),
}

fn open_fd(path: &Path) -> Result<OwnedFd, VfioError> {
    open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| VfioError::Io {
        path: path.to_path_buf(),
        errno,
    })
}

fn region(device: &OwnedFd, index: u32) -> Result<b::vfio_region_info, VfioError> {
    let mut info = b::vfio_region_info {
        argsz: std::mem::size_of::<b::vfio_region_info>() as u32,
        index,
        ..Default::default()
    };
    ioctl(device, DEVICE_GET_REGION_INFO, &mut info as *mut _ as usize)
        .map_err(|e| call_err("VFIO_DEVICE_GET_REGION_INFO", e))?;
    Ok(info)
}

fn map_dma(container: &OwnedFd, vaddr: u64, len: u64) -> Result<(), VfioError> {
    let map = b::vfio_iommu_type1_dma_map {
        argsz: std::mem::size_of::<b::vfio_iommu_type1_dma_map>() as u32,
        flags: b::VFIO_DMA_MAP_FLAG_READ | b::VFIO_DMA_MAP_FLAG_WRITE,
        vaddr,
        iova: vaddr,
        size: len,
    };
    ioctl(container, IOMMU_MAP_DMA, &map as *const _ as usize)
        .map_err(|e| call_err("VFIO_IOMMU_MAP_DMA", e))?;
    Ok(())
}

fn unmap_dma(container: &OwnedFd, vaddr: u64, len: u64) -> Result<(), VfioError> {
    let mut unmap = b::vfio_iommu_type1_dma_unmap {
        argsz: std::mem::size_of::<b::vfio_iommu_type1_dma_unmap>() as u32,
        flags: 0,
        iova: vaddr,
        size: len,
        data: Default::default(),
    };
    ioctl(container, IOMMU_UNMAP_DMA, &mut unmap as *mut _ as usize)
        .map_err(|e| call_err("VFIO_IOMMU_UNMAP_DMA", e))?;
    Ok(())
}

/// A controller's BAR0, read and written through the device file.
#[derive(Debug, Clone)]
pub struct Bar0 {
    device: Arc<OwnedFd>,
    offset: u64,
    size: u64,
}

impl Registers for Bar0 {
    /// All ones when the read fails (memory space off, device gone) or lies outside BAR0:
    /// what a PCIe read of a missing device returns.
    fn read32(&self, offset: u64) -> u32 {
        let mut v = [0u8; 4];
        if offset + 4 > self.size {
            return u32::MAX;
        }
        match nix::sys::uio::pread(self.device.as_fd(), &mut v, (self.offset + offset) as i64) {
            Ok(4) => u32::from_le_bytes(v),
            _ => u32::MAX,
        }
    }

    /// Dropped when it fails, as a posted PCIe write to a missing device is.
    fn write32(&self, offset: u64, value: u32) {
        if offset + 4 <= self.size {
            let _ = nix::sys::uio::pwrite(
                self.device.as_fd(),
                &value.to_le_bytes(),
                (self.offset + offset) as i64,
            );
        }
    }
}

/// Page-aligned memory a controller reaches by DMA at IOVA = its virtual address.
#[derive(Debug)]
pub struct DmaBuffer {
    container: OwnedFd,
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is plain memory owned by this value; every access goes through
// volatile reads and writes of bytes within it, which any thread may make.
unsafe impl Send for DmaBuffer {}
// SAFETY: as above: shared access only reads or writes bytes with volatile operations.
unsafe impl Sync for DmaBuffer {}

impl DmaBuffer {
    fn new(container: OwnedFd, pages: usize) -> Result<DmaBuffer, VfioError> {
        let len = pages.max(1) * PAGE;
        let size = std::num::NonZeroUsize::new(len).expect("at least one page");
        // SAFETY: an anonymous private mapping of fresh memory; no file, no address hint.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                size,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_PRIVATE | nix::sys::mman::MapFlags::MAP_POPULATE,
            )
        }
        .map_err(|e| call_err("mmap", e))?
        .cast::<u8>();
        let buf = DmaBuffer {
            container,
            ptr,
            len,
        };
        map_dma(&buf.container, buf.iova(), len as u64)?;
        Ok(buf)
    }

    /// The bus address of the first byte (its virtual address).
    pub fn iova(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never empty: at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Copies `buf.len()` bytes from `offset` (volatile: the device may have written
    /// them). Panics outside the buffer.
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset + buf.len() <= self.len, "read past the DMA buffer");
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `offset + i` is inside the mapping (checked above), which lives as
            // long as `self`.
            *b = unsafe { self.ptr.as_ptr().add(offset + i).read_volatile() };
        }
    }

    /// Copies `data` to `offset` (volatile: the device may read it). Panics outside the
    /// buffer.
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(offset + data.len() <= self.len, "write past the DMA buffer");
        for (i, b) in data.iter().enumerate() {
            // SAFETY: inside the mapping, as in `read`.
            unsafe { self.ptr.as_ptr().add(offset + i).write_volatile(*b) };
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        let _ = unmap_dma(&self.container, self.iova(), self.len as u64);
        // SAFETY: this mapping was made by `new` with this length and is no longer used:
        // the device's access was removed just above.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) };
    }
}
