//! Vendor plugins: a shared library implementing `include/nvmf_offload.h` is the device
//! under test (`nvmf-conform run --target plugin:PATH`).
//!
//! ```text
//!   host (this process)                              plugin (.so)
//!   lower: Arc<dyn DeviceContext> (sim0) --verbs-->  its device: wraps or ignores it
//!   pci:   Arc<dyn PciHost> (backends)   --pci---->  reaches backend controllers
//!   Plugin::open -> (Arc<dyn DeviceContext>, Arc<dyn OffloadProvider>)  <-- verbs + offload
//!   a host task every 1 ms: nvmf_offload_progress(dev, now_ns)
//! ```
//!
//! [`Plugin::load`] checks the library (file, entry points, ABI version);
//! [`Plugin::open`] opens a device and returns the device context software uses and the
//! provider, both plain trait objects: trace them, hand them to the catalog, as with the
//! reference engine. Their async waits poll the plugin every millisecond of the host's
//! (virtual) time, and a host task calls the plugin's `progress` every millisecond, so
//! everything stays single-threaded and, on the simulated fabric, deterministic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;

use crate::api::OffloadProvider;
use crate::backend::PciHost;
use crate::fabric::DeviceContext;
use crate::ffi::abi::{NVMF_OFFLOAD_ABI_VERSION, NVMF_OFFLOAD_ABI_VERSION_MIN};
use crate::ffi::bridge::{ExportedPci, ExportedVerbs, LibError, PluginDev, PluginLib};

/// The ABI version this host speaks (`NVMF_OFFLOAD_ABI_VERSION`).
pub const ABI_VERSION: u32 = NVMF_OFFLOAD_ABI_VERSION;

/// The oldest plugin ABI version this host loads (`NVMF_OFFLOAD_ABI_VERSION_MIN`).
pub const ABI_VERSION_MIN: u32 = NVMF_OFFLOAD_ABI_VERSION_MIN;

/// Interval of the host's progress calls, and of its polls of the plugin's waits.
pub const TICK: std::time::Duration = crate::ffi::bridge::POLL_INTERVAL;

/// What [`Plugin::open`] returns: the device context software must use, and the offload
/// provider working on it.
pub type DeviceUnderTest = (Arc<dyn DeviceContext>, Arc<dyn OffloadProvider>);

/// Why a plugin could not be loaded or opened. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// No file at that path.
    #[error("plugin {path}: no such file")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file is not a loadable shared library.
    #[error("plugin {path}: not a loadable shared library: {reason}")]
    NotLoadable {
        /// The path given.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// A shared library without the entry points of `include/nvmf_offload.h`.
    #[error("plugin {path}: not an nvmf-offload plugin (no symbol {symbol})")]
    NotAPlugin {
        /// The path given.
        path: PathBuf,
        /// The first entry point missing.
        symbol: &'static str,
    },
    /// The plugin speaks an ABI version this host does not.
    #[error(
        "plugin {path}: ABI version {plugin}, this host speaks versions {min} to {host} \
         (rebuild the plugin against this host's include/nvmf_offload.h)"
    )]
    AbiMismatch {
        /// The path given.
        path: PathBuf,
        /// What `nvmf_offload_abi_version()` returned.
        plugin: u32,
        /// [`ABI_VERSION_MIN`].
        min: u32,
        /// [`ABI_VERSION`].
        host: u32,
    },
    /// [`Plugin::open`] was called outside a tokio runtime.
    #[error("plugin {path}: open must be called inside a tokio runtime")]
    NoRuntime {
        /// The path given.
        path: PathBuf,
    },
    /// `nvmf_offload_open` (or a getter right after it) failed.
    #[error("plugin {path}: open failed with {errno}{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    OpenFailed {
        /// The path given.
        path: PathBuf,
        /// Its errno.
        errno: Errno,
        /// The plugin's explanation (`nvmf_offload_open_error()`), if any.
        reason: Option<String>,
    },
}

impl PluginError {
    /// The errno of a failed open, if that is what this is.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            PluginError::OpenFailed { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// A loaded plugin library (see the module docs). Cheap to clone; opens any number of
/// devices.
#[derive(Debug, Clone)]
pub struct Plugin {
    path: PathBuf,
    lib: Arc<PluginLib>,
}

impl Plugin {
    /// Loads the library at `path` and checks its entry points and ABI version.
    pub fn load(path: impl AsRef<Path>) -> Result<Plugin, PluginError> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(PluginError::NotFound { path });
        }
        // A bare file name would make dlopen search the system's library path.
        let abs = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let lib = PluginLib::load(&abs).map_err(|e| match e {
            LibError::Load(reason) => PluginError::NotLoadable {
                path: path.clone(),
                reason,
            },
            LibError::Symbol(symbol) => PluginError::NotAPlugin {
                path: path.clone(),
                symbol,
            },
        })?;
        let plugin = lib.abi_version();
        if !(ABI_VERSION_MIN..=ABI_VERSION).contains(&plugin) {
            return Err(PluginError::AbiMismatch {
                path,
                plugin,
                min: ABI_VERSION_MIN,
                host: ABI_VERSION,
            });
        }
        Ok(Plugin {
            path,
            lib: Arc::new(lib),
        })
    }

    /// The path it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ABI version it speaks (`nvmf_offload_abi_version()`).
    pub fn abi_version(&self) -> u32 {
        self.lib.abi_version()
    }

    /// Opens a device over the host's `lower` verbs device and PCI side `pci`, with a
    /// plugin-defined `config` string (the reference plugin: `profile=full;quirks=a,b`).
    /// Returns the device context software must use and the offload provider.
    ///
    /// Must be called inside a tokio runtime (the host's): it spawns the task that calls
    /// the plugin's `progress` every [`TICK`] until both returned objects are dropped.
    pub fn open(
        &self,
        lower: Arc<dyn DeviceContext>,
        pci: Arc<dyn PciHost>,
        config: &str,
    ) -> Result<DeviceUnderTest, PluginError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| PluginError::NoRuntime {
            path: self.path.clone(),
        })?;
        let lower = ExportedVerbs::new(lower, Some(rt.clone()));
        let pci = ExportedPci::new(pci, Some(rt));
        let epoch = tokio::time::Instant::now();
        let dev = self
            .lib
            .open(lower, pci, config)
            .map_err(|(errno, reason)| PluginError::OpenFailed {
                path: self.path.clone(),
                errno,
                reason,
            })?;
        let dev = Arc::new(dev);
        let weak = Arc::downgrade(&dev);
        let path = self.path.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                let Some(dev) = weak.upgrade() else { return };
                let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let rc = dev.progress(now);
                if rc < 0 {
                    tracing::error!(path = %path.display(), rc, "plugin progress failed; stopping");
                    return;
                }
            }
        });
        let ctx: Arc<dyn DeviceContext> = Arc::new(PluginDev::context(&dev));
        let provider = PluginDev::provider(&dev);
        provider
            .query_backend_access()
            .map_err(|(errno, why)| PluginError::OpenFailed {
                path: self.path.clone(),
                errno,
                reason: Some(format!("nvmf_offload_ops.backend_access: {why}")),
            })?;
        let provider: Arc<dyn OffloadProvider> = Arc::new(provider);
        Ok((ctx, provider))
    }
}
