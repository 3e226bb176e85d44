//! What the control channel serves on its device: the reference engine (with the profile
//! and quirks each runner asks for), or a vendor plugin's device (`nvmf-reference-target
//! --control … --target plugin:PATH`), so that a vendor's device is certified across a
//! real wire as it is in one process.

use std::sync::Arc;

use harness::api::{NvmfCaps, OffloadProvider, Profile};
use harness::backend::emulated::PciBus;
use harness::fabric::DeviceContext;
use harness::plugin::{Plugin, PluginError};

use super::server::Opened;
use crate::engine::Engine;
use crate::quirks::Quirks;

/// The device under test a control channel serves.
#[derive(Clone)]
pub enum Served {
    /// The reference engine, built for each runner with the profile and quirks it asks for.
    Reference,
    /// A vendor plugin's device, opened with `config`; the runner's profile is not used
    /// (the device has its own caps, read when the channel started).
    Plugin {
        /// The loaded library.
        plugin: Plugin,
        /// Its configuration string (`--plugin-config`).
        config: String,
        /// The caps its device reported.
        caps: NvmfCaps,
    },
}

/// A device opened for a runner: its context and provider, with the engine when it is the
/// reference one.
pub struct Faces {
    /// The reference engine (none for a plugin).
    pub engine: Option<Arc<Engine>>,
    /// The device context software uses.
    pub ctx: Arc<dyn DeviceContext>,
    /// The offload provider.
    pub provider: Arc<dyn OffloadProvider>,
}

impl Served {
    /// `plugin`'s device with `config`, opened once on `device` to read its caps (and to
    /// refuse, before any runner comes, a configuration the plugin refuses). Must be called
    /// inside a tokio runtime.
    pub fn plugin(plugin: Plugin, config: &str, device: &Opened) -> Result<Served, PluginError> {
        let (_ctx, provider) = plugin.open(device.ctx.clone(), PciBus::new(), config)?;
        let caps = provider.caps();
        Ok(Served::Plugin {
            plugin,
            config: config.into(),
            caps,
        })
    }

    /// How `hello` names it: `reference`, or `plugin:FILE` (the library's file name).
    pub fn name(&self) -> String {
        match self {
            Served::Reference => "reference".into(),
            Served::Plugin { plugin, .. } => {
                let path = plugin.path();
                let file = path.file_name().unwrap_or(path.as_os_str());
                format!("plugin:{}", file.to_string_lossy())
            }
        }
    }

    /// A plugin's caps (none for the reference engine).
    pub fn caps(&self) -> Option<NvmfCaps> {
        match self {
            Served::Reference => None,
            Served::Plugin { caps, .. } => Some(caps.clone()),
        }
    }

    /// Builds the device on `ctx` (a freshly opened device) with `profile` and `quirks` (the
    /// reference engine's; a plugin has its own), its backend controllers on `bus`, laid out
    /// as in one process for a device that writes its doorbells in memory.
    pub(super) fn open(
        &self,
        ctx: Arc<dyn DeviceContext>,
        bus: &Arc<PciBus>,
        profile: &Profile,
        quirks: &Quirks,
    ) -> Result<Faces, String> {
        let faces = match self {
            Served::Reference => {
                let engine = Engine::with_limits(
                    ctx,
                    profile.caps.clone(),
                    profile.device,
                    quirks.clone(),
                    bus.clone(),
                );
                Faces {
                    ctx: engine.context(),
                    provider: engine.provider(),
                    engine: Some(engine),
                }
            }
            Served::Plugin { plugin, config, .. } => {
                let (ctx, provider) = plugin
                    .open(ctx, bus.clone(), config)
                    .map_err(|e| format!("the plugin could not open a device: {e}"))?;
                Faces {
                    engine: None,
                    ctx,
                    provider,
                }
            }
        };
        // their BAR regions registered on the device's own context
        bus.use_access(faces.ctx.clone(), faces.provider.backend_access());
        Ok(faces)
    }
}
