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
/// The second subsystem of `software-only.toml` and of [`two_subs`].
pub const SUB1: &str = "nqn.2026-11.io.nvmf-conform:sub1";
/// The host NQN the initiator uses by default (allowed by `reference.toml`).
pub const HOSTNQN: &str = "nqn.2014-08.org.nvmexpress:uuid:6e766d66-636f-6e66-6f72-6d2d686f7374";
/// Bound of every wait of a target rig.
pub const BOUND: Duration = Duration::from_secs(10);

/// A target config text built a table at a time, for tests that need their own: ports
/// on sim0's address, subsystems that allow any host, and their namespaces.
#[derive(Debug, Clone, Default)]
pub struct ConfigText(String);

impl ConfigText {
    /// A config with `profile = "NAME"`.
    pub fn profile(name: &str) -> ConfigText {
        ConfigText::default().set(&format!("profile = {name:?}"))
    }

    /// One `key = value` line in the table opened last (the top level before any).
    pub fn set(mut self, line: &str) -> ConfigText {
        self.0.push_str(line);
        self.0.push('\n');
        self
    }

    /// A port on sim0's `127.0.10.1:PORT` for subsystem `subnqn`.
    pub fn port(self, port: u16, subnqn: &str) -> ConfigText {
        self.set("[[port]]")
            .set(&format!("addr = \"127.0.10.1:{port}\""))
            .set(&format!("subsystem = {subnqn:?}"))
    }

    /// A subsystem `nqn` that allows any host, with further `settings` (`key = value`
    /// lines).
    pub fn subsystem(self, nqn: &str, settings: &[&str]) -> ConfigText {
        let c = self
            .set("[[subsystem]]")
            .set(&format!("nqn = {nqn:?}"))
            .set("allow_any_host = true");
        settings.iter().fold(c, |c, line| c.set(line))
    }

    /// A namespace of the subsystem added last; [`set`](Self::set) adds to it.
    pub fn namespace(self, nsid: u32, size: &str, lba_format: &str) -> ConfigText {
        self.set("[[subsystem.namespace]]")
            .set(&format!("nsid = {nsid}"))
            .set(&format!("size = {size:?}"))
            .set(&format!("lba_format = {lba_format:?}"))
    }

    /// Namespaces 1, 2, … of the subsystem added last, each of `size`, in the LBA formats
    /// `lba_formats`.
    pub fn namespaces(self, size: &str, lba_formats: &[&str]) -> ConfigText {
        (1..)
            .zip(lba_formats)
            .fold(self, |c, (nsid, format)| c.namespace(nsid, size, format))
    }

    /// The text.
    pub fn build(self) -> String {
        self.0
    }
}

/// Two subsystems on profile `full`: [`SUB0`] offloaded on port 4420, with namespaces 1,
/// 2, … of `size` in the LBA formats `sub0_formats`, and [`SUB1`] software-only on port
/// 4421, with a namespace 1 of `size` in 4 KiB blocks.
pub fn two_subs_with(size: &str, sub0_formats: &[&str]) -> String {
    ConfigText::profile("full")
        .port(4420, SUB0)
        .port(4421, SUB1)
        .subsystem(SUB0, &[])
        .namespaces(size, sub0_formats)
        .subsystem(SUB1, &["offload = false"])
        .namespace(1, size, "4096")
        .build()
}

/// Two subsystems: [`SUB0`] offloaded on port 4420 and [`SUB1`] software-only on port
/// 4421, each with a 4 MiB namespace 1 of 4 KiB blocks.
pub fn two_subs() -> String {
    two_subs_with("4MiB", &["4096"])
}

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

impl TargetRig {
    /// Waits (bounded by [`BOUND`]) for the first event of the target's log that contains
    /// `needle`, and returns it; panics with the log when none comes.
    pub async fn expect_event(&self, needle: &str) -> String {
        match self.target.wait_event(needle, BOUND).await {
            Some(event) => event,
            None => panic!(
                "no `{needle}` event within {BOUND:?}: {:?}",
                self.target.events()
            ),
        }
    }

    /// How many events of the target's log start with `prefix`.
    pub fn count_events(&self, prefix: &str) -> usize {
        self.target
            .events()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

/// Checks `done` every `step` until it holds or [`BOUND`] has passed; returns whether it
/// held.
pub async fn wait_until(step: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(step).await;
    }
    done()
}

/// Waits (bounded) until the engine has no command in flight (a response's SEND
/// completes at the target after the host has it); returns how many are left.
pub async fn settle(engine: &Engine) -> usize {
    wait_until(Duration::from_millis(1), || {
        engine.commands_in_flight() == 0
    })
    .await;
    engine.commands_in_flight()
}
