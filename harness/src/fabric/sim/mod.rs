//! The simulated fabric: an in-process, deterministic RDMA network.
//!
//! (Implementation in progress: this stub only fixes the public constructor.)

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::{DeviceContext, Fabric, FabricError, Fault, Result};

/// Address of the default device `sim0`.
pub const SIM0_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 1);
/// Address of the default device `sim1`.
pub const SIM1_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 10, 2);

/// A simulated RDMA network of devices; see the module docs.
pub struct SimFabric {
    _seed: u64,
}

impl SimFabric {
    /// A network with devices `sim0` and `sim1`, every random choice drawn from `seed`.
    /// Must be called inside a tokio runtime (it spawns the packet pump).
    pub fn new(seed: u64) -> Arc<SimFabric> {
        Arc::new(SimFabric { _seed: seed })
    }
}

impl Fabric for SimFabric {
    fn kind(&self) -> &'static str {
        "sim"
    }
    fn devices(&self) -> Result<Vec<String>> {
        Ok(vec!["sim0".into(), "sim1".into()])
    }
    fn open(&self, device: &str) -> Result<Arc<dyn DeviceContext>> {
        Err(FabricError::NoDevice(device.into()))
    }
    fn inject(&self, _fault: Fault) -> Result<()> {
        Err(FabricError::NotSupported("sim not built yet"))
    }
}
