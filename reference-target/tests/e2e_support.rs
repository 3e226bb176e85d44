//! Shared helpers of the end-to-end tests (included with `#[path]`; also built alone).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use harness::fabric::sim::{SimFabric, SIM0_ADDR};
use harness::fabric::{DeviceContext, Fabric};
use harness::initiator::{Controller, HostConfig};
use reference_target::control::{Config, Target};

/// The subsystem of the fixtures.
pub const SUB0: &str = "nqn.2026-11.io.nvmf-conform:sub0";
/// The second subsystem of `software-only.toml`.
pub const SUB1: &str = "nqn.2026-11.io.nvmf-conform:sub1";
/// The host NQN the initiator uses by default (allowed by `reference.toml`).
pub const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7374";
/// Bound of every test wait.
pub const BOUND: Duration = Duration::from_secs(10);

/// A fixture config file's text.
pub fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/configs")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The target side of a test: the fabric, the running target, the host's device.
pub struct Rig {
    /// The simulated fabric (kept alive for the test).
    pub fabric: Arc<SimFabric>,
    /// The running target on sim0.
    pub target: Target,
    /// The host's device (sim1).
    pub host: Arc<dyn DeviceContext>,
}

/// Starts a target with config `text` on sim0 and opens sim1 for the host.
pub fn start(seed: u64, text: &str) -> Rig {
    let fabric = SimFabric::new(seed);
    let config = Config::parse("<test>", text).expect("config parses");
    let target = Target::start(fabric.open("sim0").unwrap(), config).expect("target starts");
    let host = fabric.open("sim1").unwrap();
    Rig {
        fabric,
        target,
        host,
    }
}

/// The target's address on sim0.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::new(SIM0_ADDR.into(), port)
}

/// A host configuration for `subnqn`.
pub fn host_config(subnqn: &str) -> HostConfig {
    let mut c = HostConfig::new(subnqn);
    c.command_bound = Duration::from_secs(5);
    c
}

/// Connects the admin queue and enables the controller.
pub async fn connect(rig: &Rig, port: u16, cfg: HostConfig) -> Controller {
    let mut c = Controller::connect(rig.host.clone(), addr(port), cfg)
        .await
        .expect("admin connect");
    c.enable().await.expect("enable");
    c
}

/// A deterministic data pattern.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(31).wrapping_add(seed * 7) % 251) as u8)
        .collect()
}

/// Waits (bounded) until the engine has no command in flight (a response's SEND
/// completes at the target after the host has it); returns how many are left.
pub async fn settle(engine: &reference_target::engine::Engine) -> usize {
    let deadline = tokio::time::Instant::now() + BOUND;
    while engine.commands_in_flight() != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    engine.commands_in_flight()
}

/// Two subsystems, as the fuzz world (`fuzz/src/world.rs`) has them: [`SUB0`] offloaded on
/// port 4420 and [`SUB1`] software-only on port 4421, each with a 4 MiB namespace 1.
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
