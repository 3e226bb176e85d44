//! `nvmf-reference-target`: runs the reference NVMe-oF target (offload engine + software
//! control plane) from a TOML configuration.
//!
//! Exit codes: 0 success, 1 the self-test failed, 2 usage or configuration error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use harness::api::OffloadProvider;
use harness::fabric::sim::SimFabric;
use harness::fabric::{DeviceContext, Fabric};
use harness::initiator::{Controller, DataMode, HostConfig};
use harness::wire::Status;
use reference_target::control::{Config, Target};
use reference_target::quirks::Quirk;

/// The reference NVMe-oF target: an offloading NIC emulated in software, plus the
/// target's control plane, configured by a TOML file.
///
/// Exit codes: 0 success, 1 self-test failed, 2 usage or configuration error.
#[derive(Parser, Debug)]
#[command(name = "nvmf-reference-target", version, about, long_about)]
struct Cli {
    /// The configuration file (see fixtures/configs/reference.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print every quirk (name and the rule it breaks) and exit.
    #[arg(long)]
    list_quirks: bool,
    /// Turn a quirk on (repeatable), in addition to the config's `quirks`.
    #[arg(long = "quirk", value_name = "NAME")]
    quirks: Vec<String>,
    /// Fabric: `sim` (in-process simulated RDMA; the target listens on device sim0).
    /// `verbs` is not built in this build.
    #[arg(long, default_value = "sim")]
    fabric: String,
    /// Seed of the simulated fabric.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep serving this many seconds before stopping (0: start, report, stop).
    #[arg(long, default_value_t = 0)]
    duration: u64,
    /// Connect a built-in initiator on sim1, write and read back a few blocks on every
    /// namespace of every port, print a summary; exit 0 when all matched, 1 otherwise.
    #[arg(long)]
    self_test: bool,
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("nvmf-reference-target: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list_quirks {
        for q in Quirk::ALL {
            println!("{:<26} {}", q.name(), q.description());
        }
        return ExitCode::SUCCESS;
    }
    match cli.fabric.as_str() {
        "sim" => {}
        "verbs" => {
            return usage(
                "--fabric verbs: the verbs fabric is not built in this build (use --fabric sim)",
            )
        }
        other => return usage(format!("--fabric {other}: unknown fabric (sim)")),
    }
    let Some(path) = cli.config.as_ref() else {
        return usage("--config FILE is required (see fixtures/configs/reference.toml)");
    };
    let mut config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    for name in &cli.quirks {
        match name.parse::<Quirk>() {
            Ok(q) => config.quirks.insert(q),
            Err(e) => return usage(format!("--quirk: {e}")),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(cli.self_test)
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => return usage(format!("runtime: {e}")),
    };
    rt.block_on(run(cli, config))
}

async fn run(cli: Cli, config: Config) -> ExitCode {
    let fabric = SimFabric::new(cli.seed);
    let dev = match fabric.open("sim0") {
        Ok(d) => d,
        Err(e) => return usage(format!("sim0: {e}")),
    };
    let ports = config.ports.clone();
    let subsystems = config.subsystems.clone();
    let target = match Target::start(dev, config) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    println!(
        "nvmf-reference-target: serving {} subsystem(s) on {} port(s) (fabric sim, seed {})",
        subsystems.len(),
        ports.len(),
        cli.seed
    );
    let mut code = ExitCode::SUCCESS;
    if cli.self_test {
        let host = match fabric.open("sim1") {
            Ok(h) => h,
            Err(e) => return usage(format!("sim1: {e}")),
        };
        let mut ok = true;
        for p in &ports {
            let Some(s) = subsystems.iter().find(|s| s.nqn == p.subsystem) else {
                continue;
            };
            match self_test(&target, host.clone(), p.addr, s).await {
                Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
                Err(e) => {
                    println!("self-test {} {}: FAILED: {e}", p.addr, s.nqn);
                    ok = false;
                }
            }
        }
        println!("self-test: {}", if ok { "PASSED" } else { "FAILED" });
        if !ok {
            code = ExitCode::from(1);
        }
    }
    if cli.duration > 0 {
        tokio::time::sleep(Duration::from_secs(cli.duration)).await;
    }
    for line in target.events() {
        println!("event: {line}");
    }
    target.shutdown();
    code
}

async fn self_test(
    target: &Target,
    host: Arc<dyn DeviceContext>,
    addr: std::net::SocketAddr,
    s: &reference_target::control::SubsystemConfig,
) -> Result<Vec<String>, String> {
    let mut cfg = HostConfig::new(&s.nqn);
    if let Some(h) = s.hosts.first() {
        cfg.hostnqn = h.clone();
    }
    let mut c = Controller::connect(host, addr, cfg)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    c.enable().await.map_err(|e| format!("enable: {e}"))?;
    let id = c
        .identify_controller()
        .await
        .map_err(|e| format!("identify: {e}"))?;
    let mut out = vec![format!(
        "self-test {addr} {}: cntlid {} nn {} mdts {} ioccsz {}",
        s.nqn, id.cntlid, id.nn, id.mdts, id.ioccsz
    )];
    for (i, n) in s.namespaces.iter().enumerate() {
        let bs = n.lba_format.lba_data_size();
        let mut io = c
            .connect_io_queue(i as u16 + 1, 32, 0, n.nsid, bs)
            .await
            .map_err(|e| format!("I/O queue for nsid {}: {e}", n.nsid))?;
        let blocks = 8u32.min(n.blocks() as u32).max(1);
        let data: Vec<u8> = (0..blocks * bs)
            .map(|j| (j % 251) as u8 ^ n.nsid as u8)
            .collect();
        let w = io
            .write(0, &data, DataMode::Keyed)
            .await
            .map_err(|e| format!("write nsid {}: {e}", n.nsid))?;
        let r = io
            .read(0, blocks, DataMode::Keyed)
            .await
            .map_err(|e| format!("read nsid {}: {e}", n.nsid))?;
        if w.cqe.status != Status::SUCCESS || r.cqe.status != Status::SUCCESS || r.data != data {
            return Err(format!(
                "nsid {}: write {:?} read {:?}, data {}",
                n.nsid,
                w.cqe.status,
                r.cqe.status,
                if r.data == data { "matches" } else { "differs" }
            ));
        }
        let counters = target
            .ctrl_of(&s.nqn, n.nsid)
            .and_then(|ctrl| target.engine().ns_counters(ctrl, n.nsid).ok());
        out.push(format!(
            "self-test nsid {} format {}: {} blocks written and read back OK; offloaded {}",
            n.nsid,
            n.lba_format,
            blocks,
            counters.map_or("none (software path)".to_string(), |k| format!(
                "write_cmds={} read_cmds={}",
                k.write_cmds, k.read_cmds
            ))
        ));
        let _ = io.disconnect(Duration::from_secs(2)).await;
    }
    let _ = c.shutdown().await;
    Ok(out)
}
