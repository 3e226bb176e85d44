//! The C entry points of `include/nvmf_offload.h`, and all of this crate's unsafe code.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use harness::backend::PciHost;
use harness::fabric::DeviceContext;
use harness::ffi::abi::{
    NvmfHostEnv, NvmfOffloadDev, NvmfOffloadOps, NvmfVerbsOps, NVMF_OFFLOAD_ABI_VERSION,
};
use harness::ffi::bridge::{ExportedOffload, ExportedVerbs, ImportedPci, ImportedVerbs};
use nix::errno::Errno;

use crate::Device;

static OPEN_ERROR: Mutex<Option<CString>> = Mutex::new(None);

fn set_open_error(s: &str) {
    let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
    *OPEN_ERROR.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
}

fn neg(e: Errno) -> c_int {
    -(e as c_int)
}

/// `nvmf_offload_abi_version`.
#[no_mangle]
pub extern "C" fn nvmf_offload_abi_version() -> u32 {
    NVMF_OFFLOAD_ABI_VERSION
}

/// `nvmf_offload_open_error`: why the last open failed (valid until the next open).
#[no_mangle]
pub extern "C" fn nvmf_offload_open_error() -> *const c_char {
    match &*OPEN_ERROR.lock().unwrap_or_else(|p| p.into_inner()) {
        // The CString stays in the static until the next failing open replaces it.
        Some(c) => c.as_ptr(),
        None => std::ptr::null(),
    }
}

/// `nvmf_offload_open`.
///
/// # Safety
/// `env` must point to a valid `struct nvmf_host_env` whose tables and contexts live until
/// `nvmf_offload_close`; `out` must be a valid out-pointer.
#[no_mangle]
pub unsafe extern "C" fn nvmf_offload_open(
    env: *const NvmfHostEnv,
    out: *mut *mut NvmfOffloadDev,
) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller passes a valid env or null (checked).
        let Some(env) = (unsafe { env.as_ref() }) else {
            return Err((Errno::EINVAL, "env is null".to_string()));
        };
        if env.abi_version != NVMF_OFFLOAD_ABI_VERSION {
            return Err((
                Errno::EPROTO,
                format!(
                    "host ABI version {}, plugin speaks {NVMF_OFFLOAD_ABI_VERSION}",
                    env.abi_version
                ),
            ));
        }
        // SAFETY: tables given by the host, null or valid for the device's life.
        let (Some(lower_ops), Some(pci_ops)) = (unsafe { env.lower_ops.as_ref() }, unsafe {
            env.pci_ops.as_ref()
        }) else {
            return Err((Errno::EINVAL, "lower_ops or pci_ops is null".to_string()));
        };
        let config = if env.config.is_null() {
            String::new()
        } else {
            // SAFETY: a NUL-terminated string from the host, copied at once.
            unsafe { CStr::from_ptr(env.config) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: the host's lower device and PCI side live until close (ABI contract).
        let lower: Arc<dyn DeviceContext> =
            Arc::new(unsafe { ImportedVerbs::from_raw(*lower_ops, env.lower_ctx, None) });
        // SAFETY: as above.
        let pci: Arc<dyn PciHost> =
            Arc::new(unsafe { ImportedPci::from_raw(*pci_ops, env.pci_ctx) });
        Device::open(lower, pci, &config)
    }));
    match r {
        Ok(Ok(dev)) => {
            if out.is_null() {
                return neg(Errno::EINVAL);
            }
            let p = Box::into_raw(Box::new(dev)) as *mut NvmfOffloadDev;
            // SAFETY: non-null out-pointer from the host.
            unsafe { out.write(p) };
            0
        }
        Ok(Err((errno, why))) => {
            set_open_error(&why);
            neg(errno)
        }
        Err(_) => {
            set_open_error("panic while opening");
            neg(Errno::EIO)
        }
    }
}

fn dev<'a>(d: *mut NvmfOffloadDev) -> Option<&'a Device> {
    // SAFETY: a pointer nvmf_offload_open returned and the host has not closed.
    unsafe { (d as *const Device).as_ref() }
}

/// `nvmf_offload_close`.
///
/// # Safety
/// `d` must come from `nvmf_offload_open` and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn nvmf_offload_close(d: *mut NvmfOffloadDev) {
    if d.is_null() {
        return;
    }
    // SAFETY: the Box nvmf_offload_open leaked, closed once.
    let b = unsafe { Box::from_raw(d as *mut Device) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(b)));
}

/// Hands the host a table and its context: EINVAL for an unknown device or a null
/// out-pointer.
///
/// # Safety
/// `d` from `nvmf_offload_open`; `ops`, `ctx` valid out-pointers or null.
unsafe fn hand_out<T>(
    d: *mut NvmfOffloadDev,
    ops: *mut *const T,
    ctx: *mut *mut c_void,
    table: *const T,
    context: impl FnOnce(&Device) -> *mut c_void,
) -> c_int {
    let Some(dv) = dev(d) else {
        return neg(Errno::EINVAL);
    };
    if ops.is_null() || ctx.is_null() {
        return neg(Errno::EINVAL);
    }
    // SAFETY: non-null out-pointers from the host.
    unsafe {
        ops.write(table);
        ctx.write(context(dv));
    }
    0
}

/// Defines the entry point `$name`, which hands the host the device's `$ops` table
/// (`$table`) and its context (`$context`) through [`hand_out`].
macro_rules! hand_out_entry {
    ($name:ident, $ops:ty, $table:expr, $context:path) => {
        #[doc = concat!("`", stringify!($name), "`.")]
        ///
        /// # Safety
        /// `d` from `nvmf_offload_open`; `ops`, `ctx` valid out-pointers.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            d: *mut NvmfOffloadDev,
            ops: *mut *const $ops,
            ctx: *mut *mut c_void,
        ) -> c_int {
            // SAFETY: as this function's own contract.
            unsafe { hand_out(d, ops, ctx, $table, $context) }
        }
    };
}

hand_out_entry!(
    nvmf_offload_verbs,
    NvmfVerbsOps,
    ExportedVerbs::ops(),
    Device::verbs_ctx
);
hand_out_entry!(
    nvmf_offload_get_ops,
    NvmfOffloadOps,
    ExportedOffload::ops(),
    Device::offload_ctx
);

/// `nvmf_offload_progress`.
///
/// # Safety
/// `d` from `nvmf_offload_open`.
#[no_mangle]
pub unsafe extern "C" fn nvmf_offload_progress(d: *mut NvmfOffloadDev, now_ns: u64) -> c_int {
    let Some(dv) = dev(d) else {
        return neg(Errno::EINVAL);
    };
    match catch_unwind(AssertUnwindSafe(|| dv.progress(now_ns))) {
        Ok(()) => 0,
        Err(_) => neg(Errno::EIO),
    }
}
