//! The whole reference target on `sim0`, started from a config text, with the host's
//! device `sim1` beside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use harness::fabric::sim::{SimFabric, SIM0_ADDR};
use harness::fabric::{DeviceContext, Fabric};
use harness::initiator::{Controller, HostConfig};

use crate::control::{Config, Target};
use crate::engine::Engine;

/// The subsystem of the fixtures.
pub const SUB0: &str = "nqn.2026-11.io.nvmf-conform:sub0";
/// The second subsystem of `software-only.toml` and of [`TWO_SUBS`].
pub const SUB1: &str = "nqn.2026-11.io.nvmf-conform:sub1";
/// The host NQN the initiator uses by default (allowed by `reference.toml`).
pub const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7374";
/// Bound of every wait of a target rig.
pub const BOUND: Duration = Duration::from_secs(10);

/// Two subsystems: [`SUB0`] offloaded on port 4420 and [`SUB1`] software-only on port
/// 4421, each with a 4 MiB namespace 1 of 4 KiB blocks.
pub const TWO_SUBS: &str = r#"
profile = "full"
[[port]]
addr = "127.0.10.1:4420"
subsystem = "nqn.2026-11.io.nvmf-conform:sub0"
[[port]]
addr = "127.0.10.1:4421"
subsystem = "nqn.2026-11.io.nvmf-conform:sub1"
[[subsystem]]
nqn = "nqn.2026-11.io.nvmf-conform:sub0"
allow_any_host = true
[[subsystem.namespace]]
nsid = 1
size = "4MiB"
lba_format = "4096"
[[subsystem]]
nqn = "nqn.2026-11.io.nvmf-conform:sub1"
allow_any_host = true
offload = false
[[subsystem.namespace]]
nsid = 1
size = "4MiB"
lba_format = "4096"
"#;

/// The text of one of the project's fixture configs (`fixtures/configs/NAME`), read from
/// the source tree this crate was built from.
pub fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/configs")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The target side of a test: the fabric, the running target, the host's device.
pub struct TargetRig {
    /// The simulated fabric (kept alive for the test).
    pub fabric: Arc<SimFabric>,
    /// The running target on sim0.
    pub target: Target,
    /// The host's device (sim1).
    pub host: Arc<dyn DeviceContext>,
}

/// Starts a target with config `text` on sim0 of a fabric built with `seed`, and opens
/// sim1 for the host. Panics (the test fails) when the config or the start is refused.
pub fn start(seed: u64, text: &str) -> TargetRig {
    let fabric = SimFabric::new(seed);
    let config = Config::parse("<test>", text).expect("config parses");
    let target = Target::start(fabric.open("sim0").unwrap(), config).expect("target starts");
    let host = fabric.open("sim1").unwrap();
    TargetRig {
        fabric,
        target,
        host,
    }
}

/// The target's address on sim0.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::new(SIM0_ADDR.into(), port)
}

/// A host configuration for `subnqn`, each command bounded to 5 s.
pub fn host_config(subnqn: &str) -> HostConfig {
    let mut c = HostConfig::new(subnqn);
    c.command_bound = Duration::from_secs(5);
    c
}

/// Connects the admin queue of `rig`'s host to `port` and enables the controller.
pub async fn connect(rig: &TargetRig, port: u16, cfg: HostConfig) -> Controller {
    let mut c = Controller::connect(rig.host.clone(), addr(port), cfg)
        .await
        .expect("admin connect");
    c.enable().await.expect("enable");
    c
}

/// Waits (bounded) until the engine has no command in flight (a response's SEND
/// completes at the target after the host has it); returns how many are left.
pub async fn settle(engine: &Engine) -> usize {
    let deadline = tokio::time::Instant::now() + BOUND;
    while engine.commands_in_flight() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    engine.commands_in_flight()
}
