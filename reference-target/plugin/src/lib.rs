//! The reference offload engine as a vendor plugin: `libnvmf_reference_plugin.so`
//! implements `include/nvmf_offload.h`, so the catalog can run against it through the C
//! ABI exactly as against a vendor's library (`nvmf-conform run --target plugin:PATH`).
//!
//! The plugin is a device over the host's lower verbs device: it runs
//! [`reference_target::engine::Engine`] (with the quirks the config names) on its own
//! current-thread tokio runtime with a paused clock, which
//! `nvmf_offload_progress(dev, now_ns)` advances to the host's time. Backend NVMe
//! controllers stay in the host; the engine reaches them through the host's
//! `struct nvmf_pci_ops` ([`harness::backend::host::HostBus`]).
//!
//! Config string: `key=value` pairs separated by `;`:
//! - `profile=NAME` (a built-in profile: `full`, `minimal`, `tight`) or `profile=PATH`
//!   (a TOML profile file); default `full`;
//! - `quirks=a,b` (names of `nvmf-reference-target --list-quirks`); default none;
//! - `crash=map_nsid`: abort the process in that call (a deliberately crashing plugin, for
//!   the runner's containment tests); default none;
//! - `doorbells=call|memory`: how the device rings backend doorbells: through the host's
//!   `nvmf_pci_ops` calls (default), or, as a NIC does, by writing the doorbell words in
//!   memory and polling the CQ's phase tags and CSTS (plugin ABI 2; the host then gives it
//!   memory-doorbell controllers, `harness::backend::memory`);
//! - `prp-window=BUS` (with `doorbells=memory`): the PRPs the device writes into backend
//!   SQEs are bus addresses, virtual address + `BUS` (hex `0x…` or decimal), reported to
//!   the host as a PRP window, as a NIC behind an IOMMU writes IOVAs.
//!
//! `src/entry.rs` holds the C entry points and all of this crate's unsafe code.

mod crash;
mod entry;

use std::sync::Arc;
use std::time::Duration;

use harness::api::{OffloadProvider, Profile};
use harness::backend::host::HostBus;
use harness::backend::{BackendAccess, DoorbellMode, PciHost, PrpWindow};
use harness::fabric::DeviceContext;
use harness::ffi::bridge::{ExportedOffload, ExportedVerbs};
use nix::errno::Errno;
use reference_target::engine::Engine;
use reference_target::quirks::{Quirk, Quirks};
use tokio::runtime::Runtime;
use tokio::time::Instant;

/// File name of the built plugin (`libnvmf_reference_plugin.so` on Linux).
pub fn library_file_name() -> String {
    format!(
        "{}nvmf_reference_plugin{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Where cargo left the plugin for the running executable: `$NVMF_REFERENCE_PLUGIN` if
/// set; else the executable's directory (a test binary in `target/<profile>/deps/`, where
/// a build of this crate as a dependency puts the cdylib) or its parent
/// (`target/<profile>/`, where `cargo build -p nvmf-reference-plugin` puts it). `None`
/// when neither holds the file. A test that needs it depends on this crate (dev-dependency)
/// so that cargo builds it.
pub fn library_path() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("NVMF_REFERENCE_PLUGIN") {
        return Some(p.into());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let name = library_file_name();
    let found = [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(&name))
        .find(|p| p.is_file());
    found
}

/// What a config string asks for.
#[derive(Debug, Clone)]
pub struct Config {
    /// The capability profile.
    pub profile: Profile,
    /// The quirks to run with.
    pub quirks: Quirks,
    /// An offload call to abort the process in (`crash=map_nsid`): a deliberately crashing
    /// plugin, for the runner's containment tests.
    pub crash: Option<String>,
    /// How the device reaches backends (`doorbells=`, `prp-window=`).
    pub access: BackendAccess,
}

/// Length of the PRP window `prp-window=BUS` reports: every virtual address below it.
pub const PRP_WINDOW_LEN: u64 = 1 << 56;

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Parses `profile=...;quirks=...` (see the crate docs); the error names the key or value.
pub fn parse_config(text: &str) -> Result<Config, String> {
    let mut profile = None;
    let mut quirks = Quirks::none();
    let mut crash = None;
    let mut access = BackendAccess::default();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("config item {item:?} is not key=value"))?;
        match k.trim() {
            "profile" => {
                let v = v.trim();
                let p = if v.contains('/') || v.ends_with(".toml") {
                    Profile::load(std::path::Path::new(v))
                } else {
                    Profile::builtin(v)
                };
                profile = Some(p.map_err(|e| format!("profile: {e}"))?);
            }
            "quirks" => {
                for q in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let q: Quirk = q.parse().map_err(|e| format!("quirks: {e}"))?;
                    quirks.insert(q);
                }
            }
            "crash" => {
                let v = v.trim();
                if !crash::CRASH_POINTS.contains(&v) {
                    return Err(format!(
                        "crash: {v:?} is not a crash point ({})",
                        crash::CRASH_POINTS.join(", ")
                    ));
                }
                crash = Some(v.to_string());
            }
            "doorbells" => {
                access.doorbells = match v.trim() {
                    "call" => DoorbellMode::Call,
                    "memory" => DoorbellMode::Memory,
                    v => return Err(format!("doorbells: {v:?} is neither call nor memory")),
                }
            }
            "prp-window" => {
                let bus = parse_u64(v.trim())
                    .filter(|b| b.checked_add(PRP_WINDOW_LEN).is_some())
                    .ok_or_else(|| {
                        format!("prp-window: {v:?} is no bus address below 2^64 - 2^56")
                    })?;
                access.prp = Some(PrpWindow {
                    bus,
                    va: 0,
                    len: PRP_WINDOW_LEN,
                });
            }
            other => {
                return Err(format!(
                    "unknown config key {other:?} (profile, quirks, crash, doorbells, prp-window)"
                ))
            }
        }
    }
    let profile = match profile {
        Some(p) => p,
        None => Profile::builtin("full").map_err(|e| format!("profile: {e}"))?,
    };
    if access.prp.is_some() && access.doorbells != DoorbellMode::Memory {
        return Err(
            "prp-window: needs doorbells=memory (a software device's PRPs are \
                    virtual addresses)"
                .into(),
        );
    }
    Ok(Config {
        profile,
        quirks,
        crash,
        access,
    })
}

/// One opened device: the engine, its runtime and clock, and its exported faces.
pub struct Device {
    verbs: Box<ExportedVerbs>,
    offload: Box<ExportedOffload>,
    engine: Arc<Engine>,
    base: Instant,
    // Last (fields drop in order): the runtime outlives everything that spawned on it;
    // dropping it drops the engine's remaining tasks.
    rt: Runtime,
}

impl Device {
    /// Opens the reference engine over `lower`, reaching backends through `pci`.
    pub fn open(
        lower: Arc<dyn DeviceContext>,
        pci: Arc<dyn PciHost>,
        config: &str,
    ) -> Result<Device, (Errno, String)> {
        let cfg = parse_config(config).map_err(|e| (Errno::EINVAL, e))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .map_err(|e| (Errno::ENOMEM, format!("runtime: {e}")))?;
        let (engine, base) = {
            let _g = rt.enter();
            let bus = HostBus::with_access(pci, lower.clone(), cfg.access);
            let engine = Engine::with_limits(
                lower,
                cfg.profile.caps.clone(),
                cfg.profile.device,
                cfg.quirks,
                bus,
            );
            engine.set_backend_access(cfg.access);
            (engine, Instant::now())
        };
        let h = rt.handle().clone();
        let verbs = ExportedVerbs::new(engine.context(), Some(h.clone()));
        let provider: Arc<dyn OffloadProvider> = match cfg.crash.as_deref() {
            Some("map_nsid") => Arc::new(crash::CrashOnMap(engine.provider())),
            _ => engine.provider(),
        };
        let offload = ExportedOffload::new(provider, Some(h));
        Ok(Device {
            verbs,
            offload,
            engine,
            base,
            rt,
        })
    }

    /// Runs the engine's tasks until the plugin clock reads `now_ns` after open and every
    /// task is idle.
    pub fn progress(&self, now_ns: u64) {
        let target = self.base + Duration::from_nanos(now_ns);
        self.rt.block_on(async move {
            if Instant::now() < target {
                tokio::time::sleep_until(target).await;
            }
            // Tasks woken at `target` itself run before we return.
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
        });
    }

    fn verbs_ctx(&self) -> *mut std::ffi::c_void {
        self.verbs.ctx_ptr()
    }

    fn offload_ctx(&self) -> *mut std::ffi::c_void {
        self.offload.ctx_ptr()
    }

    /// Offloaded commands not yet retired (for diagnostics).
    pub fn commands_in_flight(&self) -> usize {
        self.engine.commands_in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_strings() {
        let c = parse_config("").unwrap();
        assert_eq!(c.profile.name, "full");
        assert_eq!(c.quirks.iter().count(), 0);
        let c = parse_config("profile=minimal; quirks=eexist-per-ctrl,no-pci-err-event").unwrap();
        assert_eq!(c.profile.name, "minimal");
        assert_eq!(c.quirks.iter().count(), 2);
        assert!(parse_config("profile=nope")
            .unwrap_err()
            .contains("profile"));
        assert!(parse_config("quirks=nope").unwrap_err().contains("quirks"));
        assert!(parse_config("colour=red").unwrap_err().contains("colour"));
        assert!(parse_config("profile").unwrap_err().contains("key=value"));
        let c = parse_config("doorbells=memory;prp-window=0x100000000000000").unwrap();
        assert_eq!(c.access.doorbells, DoorbellMode::Memory);
        assert_eq!(c.access.prp.unwrap().bus, 1 << 56);
        assert_eq!(parse_config("").unwrap().access, BackendAccess::default());
        assert!(parse_config("doorbells=mmio")
            .unwrap_err()
            .contains("doorbells"));
        assert!(
            parse_config("doorbells=memory;prp-window=0xffffffffffffffff")
                .unwrap_err()
                .contains("prp-window")
        );
        assert!(parse_config("prp-window=4096")
            .unwrap_err()
            .contains("doorbells=memory"));
    }
}
