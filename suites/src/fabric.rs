//! The fabric a run's cases use: the embedded simulated fabric (the default: virtual time,
//! deterministic, fault injection, captures) or real verbs on a named RDMA device
//! (hardware or soft-RoCE; built with the `verbs` cargo feature).
//!
//! On verbs the target and the hosts open the same device (two contexts: RDMA CM loops the
//! connection back through it), the target listens on the device's IPv4 address, and
//! cases run on a runtime with real time: their bounds are real seconds (scale them with
//! `--timeout-scale` on emulated machines). Cases that need the simulated fabric itself
//! (fault injection on the wire) skip, saying so.

use std::net::Ipv4Addr;
use std::sync::Arc;

use harness::capture::Capture;
use harness::fabric::contract::FabricFactory;
use harness::fabric::sim::SimFabric;
use harness::fabric::{DeviceContext, Fabric, FabricError};

/// Which fabric cases run on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FabricChoice {
    /// The embedded simulated fabric (`sim0` for the target, `sim1` for hosts).
    #[default]
    Sim,
    /// Real verbs on this device (e.g. `rxe0`).
    Verbs {
        /// The device name, as `ibv_devices` lists it.
        device: String,
    },
}

/// One case's fabric: a fresh fabric, the device the target opens and the one hosts open.
pub struct CaseFabric {
    /// The fabric.
    pub fabric: Arc<dyn Fabric>,
    /// The same fabric when it is the simulated one (captures attach to it).
    pub sim: Option<Arc<SimFabric>>,
    /// The device the target (engine, control plane) opens.
    pub target_device: String,
    /// The device hosts open.
    pub host_device: String,
}

impl CaseFabric {
    /// Records the fabric's traffic into `capture` when the fabric is the simulated one (a
    /// real fabric's traffic is captured on its netdev instead).
    pub fn capture_into(&self, capture: Option<&Capture>) {
        if let (Some(c), Some(sim)) = (capture, &self.sim) {
            c.attach(sim);
        }
    }

    /// Opens the target's device, after [`CaseFabric::capture_into`].
    pub fn open_target(
        &self,
        capture: Option<&Capture>,
    ) -> Result<Arc<dyn DeviceContext>, FabricError> {
        self.capture_into(capture);
        self.fabric.open(&self.target_device)
    }
}

impl FabricChoice {
    /// `sim` or `verbs`, as the reports name it.
    pub fn name(&self) -> &'static str {
        match self {
            FabricChoice::Sim => "sim",
            FabricChoice::Verbs { .. } => "verbs",
        }
    }

    /// Whether this is the simulated fabric.
    pub fn is_sim(&self) -> bool {
        matches!(self, FabricChoice::Sim)
    }

    /// A fresh fabric for one case run with `seed`.
    pub fn for_case(&self, seed: u64) -> Result<CaseFabric, String> {
        match self {
            FabricChoice::Sim => {
                let sim = SimFabric::new(seed);
                Ok(CaseFabric {
                    fabric: sim.clone(),
                    sim: Some(sim),
                    target_device: "sim0".into(),
                    host_device: "sim1".into(),
                })
            }
            FabricChoice::Verbs { device } => Ok(CaseFabric {
                fabric: verbs_fabric()?,
                sim: None,
                target_device: device.clone(),
                host_device: device.clone(),
            }),
        }
    }

    /// New fabrics for the contract cases that build more than one.
    pub fn factory(&self) -> Result<FabricFactory, String> {
        match self {
            FabricChoice::Sim => Ok(Arc::new(|s| SimFabric::new(s) as Arc<dyn Fabric>)),
            FabricChoice::Verbs { .. } => {
                verbs_fabric()?;
                Ok(Arc::new(|_| {
                    verbs_fabric().unwrap_or_else(|_| SimFabric::new(0) as Arc<dyn Fabric>)
                }))
            }
        }
    }

    /// A runtime for one case: current-thread, with the fabric's virtual clock on `sim` and
    /// wall time plus the I/O driver (completion channels, CM events) on `verbs`.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        match self {
            FabricChoice::Sim => harness::fabric::sim::runtime(),
            FabricChoice::Verbs { .. } => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
    }

    /// Whether cases can run here at all: on verbs the device must open (`Err` says why
    /// not; a runner exits 125 on it).
    pub fn check(&self) -> Result<(), String> {
        let FabricChoice::Verbs { device } = self else {
            return Ok(());
        };
        let rt = self
            .runtime()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        rt.block_on(async {
            let f = verbs_fabric()?;
            let names = f.devices().map_err(|e| e.to_string())?;
            if !names.iter().any(|n| n == device) {
                return Err(format!(
                    "--device {device}: no such RDMA device (there are: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ));
            }
            let ctx = f.open(device).map_err(|e| format!("{device}: {e}"))?;
            let port = ctx
                .port_attr(1)
                .map_err(|e| format!("{device} port 1: {e}"))?;
            if port.addr == Ipv4Addr::UNSPECIFIED {
                return Err(format!(
                    "{device}: its netdev has no IPv4 address (RDMA CM listens on one)"
                ));
            }
            Ok(())
        })
    }
}

#[cfg(feature = "verbs")]
fn verbs_fabric() -> Result<Arc<dyn Fabric>, String> {
    Ok(harness::fabric::verbs::VerbsFabric::new() as Arc<dyn Fabric>)
}

#[cfg(not(feature = "verbs"))]
fn verbs_fabric() -> Result<Arc<dyn Fabric>, String> {
    Err("the verbs fabric is not built in this build (build with `--features verbs`)".into())
}

/// The name of the host's first RDMA device, or why there is none (no kernel support, an
/// empty list).
pub fn first_verbs_device() -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(async {
        let names = verbs_fabric()?.devices().map_err(|e| e.to_string())?;
        names
            .into_iter()
            .next()
            .ok_or_else(|| "no RDMA device: the device list is empty".to_string())
    })
}
