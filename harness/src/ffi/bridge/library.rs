use super::*;

/// Why a library could not be used as a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibError {
    /// `dlopen` refused it (not a shared object, missing dependency...).
    Load(String),
    /// A required entry point is missing.
    Symbol(&'static str),
}

#[derive(Clone, Copy)]
struct Syms {
    abi: AbiVersionFn,
    open: OpenFn,
    close: CloseFn,
    verbs: VerbsFn,
    get_ops: GetOpsFn,
    progress: ProgressFn,
    open_error: Option<OpenErrorFn>,
}

/// A loaded plugin library. Never unloaded: a Rust plugin holds thread-local destructors
/// of its own runtime, so `dlclose` would be unsafe; a loaded plugin stays for the process.
pub struct PluginLib {
    _lib: ManuallyDrop<libloading::Library>,
    syms: Syms,
}

impl std::fmt::Debug for PluginLib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLib").finish_non_exhaustive()
    }
}

fn sym<T: Copy>(lib: &libloading::Library, name: &'static str) -> Result<T, LibError> {
    let cname = format!("{name}\0");
    // SAFETY: the symbol's type is the one include/nvmf_offload.h declares for `name`;
    // the library is never unloaded, so the copied function pointer stays valid.
    let s: libloading::Symbol<'_, T> =
        unsafe { lib.get(cname.as_bytes()) }.map_err(|_| LibError::Symbol(name))?;
    Ok(*s)
}

impl PluginLib {
    /// Loads a library and resolves the entry points of `include/nvmf_offload.h`.
    pub fn load(path: &Path) -> Result<PluginLib, LibError> {
        // SAFETY: loading a library runs its initialisers; a plugin is trusted code by
        // definition (the user names it on the command line).
        let lib =
            unsafe { libloading::Library::new(path) }.map_err(|e| LibError::Load(e.to_string()))?;
        let syms = Syms {
            abi: sym(&lib, "nvmf_offload_abi_version")?,
            open: sym(&lib, "nvmf_offload_open")?,
            close: sym(&lib, "nvmf_offload_close")?,
            verbs: sym(&lib, "nvmf_offload_verbs")?,
            get_ops: sym(&lib, "nvmf_offload_get_ops")?,
            progress: sym(&lib, "nvmf_offload_progress")?,
            open_error: sym(&lib, "nvmf_offload_open_error").ok(),
        };
        Ok(PluginLib {
            _lib: ManuallyDrop::new(lib),
            syms,
        })
    }

    /// What `nvmf_offload_abi_version()` returns.
    pub fn abi_version(&self) -> u32 {
        // SAFETY: resolved entry point without arguments.
        unsafe { (self.syms.abi)() }
    }

    /// Opens a device over the host's `lower` device and PCI side. On failure: the errno
    /// and the plugin's `nvmf_offload_open_error()` text, if any.
    pub fn open(
        self: &Arc<Self>,
        lower: Box<ExportedVerbs>,
        pci: Box<ExportedPci>,
        config: &str,
    ) -> Result<PluginDev, (Errno, Option<String>)> {
        let config = CString::new(config.replace('\0', " ")).unwrap_or_default();
        // The version the host speaks to this plugin: its own (checked by Plugin::load).
        let version = self.abi_version();
        let env = NvmfHostEnv {
            abi_version: version,
            reserved: 0,
            lower_ops: ExportedVerbs::ops(),
            lower_ctx: lower.ctx_ptr(),
            pci_ops: ExportedPci::ops(),
            pci_ctx: pci.ctx_ptr(),
            config: config.as_ptr(),
        };
        let mut dev: *mut NvmfOffloadDev = std::ptr::null_mut();
        // SAFETY: env and everything it points to live until the device is closed
        // (PluginDev owns them); dev is a valid out-pointer.
        let rc = unsafe { (self.syms.open)(&env, &mut dev) };
        let why = || {
            let f = self.syms.open_error?;
            // SAFETY: resolved optional entry point without arguments.
            let text = unsafe { f() };
            c_str(text).filter(|s| !s.is_empty())
        };
        if rc < 0 {
            return Err((errno_of_rc(rc).unwrap_or(Errno::EIO), why()));
        }
        if dev.is_null() {
            return Err((
                Errno::EPROTO,
                Some("nvmf_offload_open gave no device".into()),
            ));
        }
        let mut d = PluginDev {
            lib: self.clone(),
            dev,
            verbs: None,
            offload: None,
            _lower: lower,
            _pci: pci,
            _config: config,
        };
        let mut vops: *const NvmfVerbsOps = std::ptr::null();
        let mut vctx: *mut c_void = std::ptr::null_mut();
        // SAFETY: an open device and valid out-pointers.
        let rc = unsafe { (self.syms.verbs)(dev, &mut vops, &mut vctx) };
        // SAFETY: a non-null vtable returned by the plugin lives as long as the library.
        match (rc, unsafe { vops.as_ref() }) {
            (0, Some(o)) => d.verbs = Some((*o, RawCtx(vctx))),
            (rc, _) => {
                return Err((
                    errno_of_rc(rc).unwrap_or(Errno::EPROTO),
                    Some("nvmf_offload_verbs gave no verbs device".into()),
                ))
            }
        }
        let mut oops: *const NvmfOffloadOps = std::ptr::null();
        let mut octx: *mut c_void = std::ptr::null_mut();
        // SAFETY: as above.
        let rc = unsafe { (self.syms.get_ops)(dev, &mut oops, &mut octx) };
        // SAFETY: as above.
        match (rc, unsafe { oops.as_ref() }) {
            (0, Some(o)) => d.offload = Some((offload_ops(o, version), RawCtx(octx))),
            (rc, _) => {
                return Err((
                    errno_of_rc(rc).unwrap_or(Errno::EPROTO),
                    Some("nvmf_offload_get_ops gave no offload operations".into()),
                ))
            }
        }
        Ok(d)
    }
}

/// A copy of the plugin's offload table: all of it from a plugin of ABI 2 or later, the
/// ABI 1 part (the rest `None`) from an ABI 1 plugin, whose table is shorter.
fn offload_ops(o: &NvmfOffloadOps, version: u32) -> NvmfOffloadOps {
    if version >= 2 {
        return *o;
    }
    let mut ops = NvmfOffloadOps {
        query_caps: None,
        create_srq: None,
        destroy_srq: None,
        create_nvme_ctrl: None,
        remove_nvme_ctrl: None,
        map_nsid: None,
        unmap_nsid: None,
        qp_set_nvmf: None,
        ns_counters: None,
        srq_counters: None,
        poll_event: None,
        last_error: None,
        backend_access: None,
        inject_pci_error: None,
    };
    // SAFETY: an ABI 1 table holds OFFLOAD_OPS_V1_LEN bytes of nullable function pointers
    // laid out as the start of NvmfOffloadOps (the layout test checks the offsets); the
    // destination is a whole NvmfOffloadOps, and the two do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (o as *const NvmfOffloadOps).cast::<u8>(),
            (&mut ops as *mut NvmfOffloadOps).cast::<u8>(),
            OFFLOAD_OPS_V1_LEN,
        );
    }
    ops
}

/// An opened plugin device; closed when dropped (after everything using it).
pub struct PluginDev {
    lib: Arc<PluginLib>,
    dev: *mut NvmfOffloadDev,
    verbs: Option<(NvmfVerbsOps, RawCtx)>,
    offload: Option<(NvmfOffloadOps, RawCtx)>,
    _lower: Box<ExportedVerbs>,
    _pci: Box<ExportedPci>,
    _config: CString,
}

// SAFETY: single-threaded ABI (see the module docs); the device pointer is only used
// through the plugin's entry points, never dereferenced here.
unsafe impl Send for PluginDev {}
// SAFETY: as above.
unsafe impl Sync for PluginDev {}

impl PluginDev {
    /// `nvmf_offload_progress(dev, now_ns)`: 0 or a negative errno.
    pub fn progress(&self, now_ns: u64) -> c_int {
        // SAFETY: an open device.
        unsafe { (self.lib.syms.progress)(self.dev, now_ns) }
    }

    /// The plugin's verbs device as a [`DeviceContext`] (keeps the device open).
    pub fn context(self: &Arc<Self>) -> ImportedVerbs {
        let (ops, ctx) = self.verbs.expect("checked at open");
        let keep: Arc<dyn Any + Send + Sync> = self.clone();
        // SAFETY: the plugin's vtable and context, valid until close, which `keep` delays.
        unsafe { ImportedVerbs::from_raw(ops, ctx.0, Some(keep)) }
    }

    /// The plugin's offload operations as an [`OffloadProvider`] (keeps the device open).
    pub fn provider(self: &Arc<Self>) -> ImportedOffload {
        let (ops, ctx) = self.offload.expect("checked at open");
        let keep: Arc<dyn Any + Send + Sync> = self.clone();
        // SAFETY: as above.
        unsafe { ImportedOffload::from_raw(ops, ctx.0, Some(keep)) }
    }
}

impl Drop for PluginDev {
    fn drop(&mut self) {
        // SAFETY: an open device, closed once; the exported lower device and PCI side it
        // uses are dropped only after this (fields drop after Drop::drop).
        unsafe { (self.lib.syms.close)(self.dev) };
    }
}
