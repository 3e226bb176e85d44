//! `nvmf-reference-target`: runs the reference NVMe-oF target (offload engine + software
//! control plane) from a TOML configuration, on the simulated fabric or (built with the
//! `verbs` feature) on a real RDMA device, where real initiators reach it.
//!
//! Exit codes: 0 success, 1 the self-test failed, 2 usage or configuration error, 125 no
//! RDMA device (`--fabric verbs` on a machine without one).

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
use reference_target::remote::Secret;

mod control;

#[cfg(feature = "verbs")]
const FABRIC_HELP: &str = "Fabric: `sim` (in-process simulated RDMA; the target listens on \
device sim0) or `verbs` (a real RDMA device: hardware or soft-RoCE; see --device and \
--listen).";
#[cfg(not(feature = "verbs"))]
const FABRIC_HELP: &str = "Fabric: `sim` (in-process simulated RDMA; the target listens on \
device sim0). `verbs` is not built in this build (build with `--features verbs`).";

/// The reference NVMe-oF target: an offloading NIC emulated in software, plus the
/// target's control plane, configured by a TOML file. It answers the discovery NQN on
/// every port, so `nvme discover` and `nvme connect -t rdma` work against it.
///
/// Serving real initiators: `--fabric verbs --listen 192.0.2.1:4420 --duration 3600`
/// (stops early on SIGINT or SIGTERM).
///
/// Two-host mode: `--fabric verbs --control 192.0.2.1:4800 --control-secret lab.secret`
/// takes no configuration; a runner on another host (`nvmf-conform run --fabric verbs
/// --connect 192.0.2.1:4800 --control-secret lab.secret`) starts a target per case over
/// that control channel: TLS 1.3, both ends proving they hold the same secret file (make
/// one with `--new-secret FILE`; docs/two-host.md). Add `--target plugin:PATH
/// [--plugin-config STRING]` to serve a vendor plugin's device there instead of the
/// reference engine.
///
/// A real NVMe controller through VFIO: `--vfio-check 0000:01:00.0 --vfio-read 0` opens the
/// controller (bound to vfio-pci, behind an IOMMU), brings it up, prints its Identify data
/// and the status of each block read. `--vfio-write-verify LBA` also overwrites one block
/// and reads it back, only with `--allow-destructive` naming the same device: never point
/// it at a disk that holds data.
///
/// Exit codes: 0 success, 1 self-test failed (or a VFIO check found an error status or a
/// mismatch), 2 usage or configuration error (a plugin configuration the plugin refuses
/// among them), 125 no RDMA device (or, for --vfio-check, no device that can be driven
/// through VFIO; for --target plugin:PATH, a plugin device that does not open).
#[derive(Parser, Debug)]
#[command(name = "nvmf-reference-target", version, about, long_about)]
struct Cli {
    /// The configuration file (see fixtures/configs/reference.toml).
    #[arg(long, required_unless_present_any = ["control", "list_quirks", "vfio_check", "new_secret"])]
    config: Option<PathBuf>,
    /// Two-host mode: serve the control channel on this TCP address instead of one
    /// configuration; the runner (`nvmf-conform run --connect ADDR`) starts a target per
    /// case. Serves until SIGINT or SIGTERM (or --duration seconds). Needs
    /// --control-secret (or --insecure).
    #[arg(long, value_name = "ADDR:PORT", conflicts_with_all = ["config", "listen", "self_test"])]
    control: Option<std::net::SocketAddr>,
    /// The lab secret runners must prove they hold (a file only its owner can read, of at
    /// least 32 bytes; the runner names the same file's copy): the channel is TLS 1.3 and
    /// both ends prove the secret, bound to the session.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    control_secret: Option<PathBuf>,
    /// What the control channel serves on the device: `reference` (the reference engine,
    /// with each runner's profile and quirks) or `plugin:PATH` (a vendor library
    /// implementing include/nvmf_offload.h, opened on the device for each case: a vendor's
    /// device certified across a real wire; its caps are its own).
    #[arg(long, value_name = "TARGET", default_value = "reference")]
    target: String,
    /// With --target plugin:PATH: the configuration string the plugin is opened with (the
    /// reference plugin's: `profile=full;doorbells=memory`, docs/vendor-guide.md).
    #[arg(long, value_name = "STRING", default_value = "")]
    plugin_config: String,
    /// With --control: lend this real NVMe controller (`vfio:PCI`, bound to vfio-pci behind
    /// an IOMMU) to runners: every backend controller of a runner's device is a queue pair
    /// of it, a control-plane case's target may be served from it, and its faults come from
    /// this host's fault broker (NVMF_FAULT_BROKER). Resets the controller and lets hosts
    /// write its namespace: needs --allow-destructive naming it. Runners must name it too
    /// (`nvmf-conform run --connect … --backend vfio:PCI`).
    #[arg(long, value_name = "vfio:PCI")]
    backend: Option<String>,
    /// Serve the control channel in plain TCP without authentication: anyone who reaches
    /// the port can start targets and inject faults. Said at every start.
    #[arg(long)]
    insecure: bool,
    /// Write a new lab secret (32 random bytes, hex, mode 600) to FILE and exit; copy it to
    /// the runner's host.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "control", "vfio_check"])]
    new_secret: Option<PathBuf>,
    /// Check that the NVMe controller at this PCI address can be driven through VFIO (see
    /// above), then exit.
    #[arg(long, value_name = "PCI", conflicts_with_all = ["config", "control", "self_test"])]
    vfio_check: Option<String>,
    /// With --vfio-check: read this block (repeatable) and print its status.
    #[arg(long = "vfio-read", value_name = "LBA", requires = "vfio_check")]
    vfio_reads: Vec<u64>,
    /// With --vfio-check: the namespace to read and write (default: the first active one).
    #[arg(
        long,
        value_name = "NSID",
        default_value_t = 0,
        requires = "vfio_check"
    )]
    vfio_nsid: u32,
    /// With --vfio-check: write a pattern to this block and read it back. Destroys the
    /// block's data: needs --allow-destructive naming the device.
    #[arg(long, value_name = "LBA", requires = "vfio_check")]
    vfio_write_verify: Option<u64>,
    /// With --vfio-check: meet a real fault (repeatable, in order): `stall` (a read stalls
    /// on the backing store, then the stall is lifted), `pci-error` (an AER error on the
    /// controller's port; leaves the controller reset) — both need the fault broker whose
    /// directory NVMF_FAULT_BROKER names (the soft-RoCE VM's, docs/softroce.md; without one,
    /// exit 125 saying so), `unplug` (the controller is unplugged; VFIO must ask for it
    /// back; also through the broker) — or `controller-fatal` (the driver unmaps a queue's
    /// CQ from the IOMMU; the controller must go fatal).
    #[arg(long = "vfio-fault", value_name = "FAULT", requires = "vfio_check")]
    vfio_faults: Vec<harness::backend::vfio::check::FaultCheck>,
    /// Consent to destructive actions on this PCI device (repeatable): --vfio-write-verify,
    /// and serving a configuration whose `[subsystem.backend]` is `kind = "vfio"` (the
    /// target resets the controller and hosts write its namespaces).
    #[arg(long = "allow-destructive", value_name = "PCI")]
    allow_destructive: Vec<String>,
    /// Print every quirk (name and the rule it breaks) and exit.
    #[arg(long)]
    list_quirks: bool,
    /// Turn a quirk on (repeatable), in addition to the config's `quirks`.
    #[arg(long = "quirk", value_name = "NAME")]
    quirks: Vec<String>,
    #[arg(long, default_value = "sim", help = FABRIC_HELP)]
    fabric: String,
    /// The RDMA device to serve on (`--fabric verbs`; default: the first one, e.g. rxe0).
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// Serve the configuration's port at this address instead of its `addr` (the config
    /// must have exactly one [[port]]). On verbs it is an address of the device's netdev.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Seed of the simulated fabric.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Keep serving this many seconds before stopping (0: start, report, stop); SIGINT
    /// or SIGTERM stop it earlier. Target events are printed as they happen.
    #[arg(long, default_value_t = 0)]
    duration: u64,
    /// Diagnostics on stderr, with timestamps: `error`, `warn`, `info` (adds the target
    /// events), `debug` (adds every capsule software handles and its response), `trace`.
    #[arg(long, default_value = "warn", value_name = "LEVEL")]
    log_level: tracing::Level,
    /// Connect a built-in initiator (on sim1, or on the same verbs device), write and read
    /// back a few blocks on every namespace of every port, print a summary; exit 0 when
    /// all matched, 1 otherwise.
    #[arg(long)]
    self_test: bool,
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("nvmf-reference-target: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(cli.log_level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if cli.list_quirks {
        for q in Quirk::ALL {
            println!("{:<26} {}", q.name(), q.description());
        }
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &cli.new_secret {
        return match Secret::generate(path) {
            Ok(()) => {
                println!(
                    "nvmf-reference-target: new lab secret in {}: copy it (mode 600) to the \
                     runner's host",
                    path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => usage(format!("--new-secret: {e}")),
        };
    }
    if let Some(pci) = &cli.vfio_check {
        return vfio_check(&cli, pci);
    }
    match cli.fabric.as_str() {
        "sim" => {}
        #[cfg(feature = "verbs")]
        "verbs" => {}
        #[cfg(not(feature = "verbs"))]
        "verbs" => {
            return usage(
                "--fabric verbs: the verbs fabric is not built in this build (build with \
                 `--features verbs`, or use --fabric sim)",
            )
        }
        other => return usage(format!("--fabric {other}: unknown fabric (sim, verbs)")),
    }
    if cli.control.is_none() && (cli.insecure || cli.control_secret.is_some()) {
        return usage(
            "--control-secret and --insecure protect a control channel: they need --control",
        );
    }
    if cli.control.is_none() && (cli.target != "reference" || !cli.plugin_config.is_empty()) {
        return usage(
            "--target and --plugin-config say what a control channel serves: they need \
             --control (a configuration is served by the reference engine)",
        );
    }
    if cli.control.is_none() && cli.backend.is_some() {
        return usage(
            "--backend says what a control channel lends to its runners: it needs --control \
             (a configuration names its controller in [subsystem.backend])",
        );
    }
    if let Some(addr) = cli.control {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return usage(format!("runtime: {e}")),
        };
        return rt.block_on(control::serve_control(&cli, addr));
    }
    let Some(path) = cli.config.as_ref() else {
        return usage("--config FILE is required (see fixtures/configs/reference.toml)");
    };
    let mut config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    for s in &config.subsystems {
        if let reference_target::control::BackendConfig::Vfio { pci } = s.backend {
            if !consented(&cli, pci) {
                return usage(format!(
                    "subsystem `{}` is served from the NVMe controller {pci} (subsystem.backend): \
                     the target resets it and hosts write its namespaces; add \
                     --allow-destructive {pci} to consent (never a disk holding data)",
                    s.nqn
                ));
            }
        }
    }
    for name in &cli.quirks {
        match name.parse::<Quirk>() {
            Ok(q) => config.quirks.insert(q),
            Err(e) => return usage(format!("--quirk: {e}")),
        }
    }
    if let Some(addr) = cli.listen {
        match config.ports.as_mut_slice() {
            [p] => p.addr = addr,
            ports => {
                return usage(format!(
                    "--listen {addr}: the config has {} [[port]] entries; --listen needs \
                     exactly one (give several ports their addresses in the config)",
                    ports.len()
                ))
            }
        }
    }
    // Virtual time only for the self-test on the simulated fabric; serving is real time.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(cli.self_test && cli.fabric == "sim")
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => return usage(format!("runtime: {e}")),
    };
    rt.block_on(run(cli, config))
}

/// Whether `--allow-destructive` names `address`.
fn consented(cli: &Cli, address: harness::backend::vfio::PciAddress) -> bool {
    cli.allow_destructive.iter().any(|a| {
        a.parse::<harness::backend::vfio::PciAddress>()
            .is_ok_and(|a| a == address)
    })
}

/// `--vfio-check`: see the command's help.
fn vfio_check(cli: &Cli, pci: &str) -> ExitCode {
    use harness::backend::vfio::check::{self, CheckPlan};
    use harness::backend::vfio::{sysfs::Roots, PciAddress, VfioError};
    let address: PciAddress = match pci.parse() {
        Ok(a) => a,
        Err(e) => return usage(format!("--vfio-check: {e}")),
    };
    if cli.vfio_write_verify.is_some() && !consented(cli, address) {
        return usage(format!(
            "--vfio-write-verify overwrites a block of {address}: add \
             --allow-destructive {address} to consent (never on a disk holding data)"
        ));
    }
    let plan = CheckPlan {
        nsid: cli.vfio_nsid,
        reads: cli.vfio_reads.clone(),
        write_verify: cli.vfio_write_verify,
        bound: Duration::from_secs(10),
        faults: cli.vfio_faults.clone(),
    };
    let mut broker = harness::backend::vfio::broker::Broker::from_env();
    if plan.faults.iter().any(|f| f.needs_broker()) && broker.is_none() {
        eprintln!(
            "nvmf-reference-target: --vfio-fault needs a fault broker: {} is not set \
             (the soft-RoCE VM's run-vm.sh --broker provides one)",
            harness::backend::vfio::broker::ENV
        );
        return ExitCode::from(125);
    }
    let mut say = |line: String| println!("vfio {address}: {line}");
    match check::run(address, &Roots::default(), &plan, broker.as_mut(), &mut say) {
        Ok(out) => {
            let bad_data = out.verified == Some(false);
            let bad_faults: Vec<_> = out.faults.iter().filter(|(_, ok)| !ok).collect();
            for (fault, _) in &bad_faults {
                println!(
                    "vfio {address}: the controller did not behave as expected under {fault:?}"
                );
            }
            if out.failed_reads.is_empty() && !bad_data && bad_faults.is_empty() {
                println!("vfio {address}: ok");
                ExitCode::SUCCESS
            } else {
                println!(
                    "vfio {address}: {} read(s) failed{}",
                    out.failed_reads.len(),
                    if bad_data {
                        ", and the written block read back different"
                    } else {
                        ""
                    }
                );
                ExitCode::from(1)
            }
        }
        Err(
            e @ (VfioError::NoSuchDevice(..)
            | VfioError::NoIommuGroup(_)
            | VfioError::WrongDriver { .. }
            | VfioError::NoGroupNode(_)),
        ) => {
            eprintln!("nvmf-reference-target: --vfio-check: {e}");
            ExitCode::from(125)
        }
        Err(e) => {
            eprintln!("nvmf-reference-target: --vfio-check {address}: {e}");
            ExitCode::from(1)
        }
    }
}

/// Opens the self-test initiator's device context.
type OpenHost = Box<dyn Fn() -> Result<Arc<dyn DeviceContext>, String>>;

/// The device the target serves on, and a second context on the same fabric for the
/// self-test's initiator; `Err` is the exit code, the message printed.
fn open_devices(cli: &Cli) -> Result<(Arc<dyn DeviceContext>, OpenHost), ExitCode> {
    if cli.fabric == "sim" {
        let fabric = SimFabric::new(cli.seed);
        let name = cli.device.clone().unwrap_or_else(|| "sim0".into());
        let dev = fabric
            .open(&name)
            .map_err(|e| usage(format!("--device {name}: {e}")))?;
        let host: OpenHost =
            Box::new(move || fabric.open("sim1").map_err(|e| format!("sim1: {e}")));
        return Ok((dev, host));
    }
    open_verbs(cli)
}

#[cfg(feature = "verbs")]
fn open_verbs(cli: &Cli) -> Result<(Arc<dyn DeviceContext>, OpenHost), ExitCode> {
    use harness::fabric::verbs::{is_no_rdma_device, VerbsFabric};
    let fabric = VerbsFabric::new();
    let name = match &cli.device {
        Some(n) => n.clone(),
        None => match fabric.devices() {
            Ok(d) if !d.is_empty() => d[0].clone(),
            Ok(_) => {
                eprintln!("nvmf-reference-target: no RDMA device: the device list is empty");
                return Err(ExitCode::from(125));
            }
            Err(e) => {
                eprintln!("nvmf-reference-target: {e}");
                return Err(ExitCode::from(if is_no_rdma_device(&e) { 125 } else { 2 }));
            }
        },
    };
    let dev = fabric.open(&name).map_err(|e| {
        eprintln!("nvmf-reference-target: --device {name}: {e}");
        ExitCode::from(if is_no_rdma_device(&e) { 125 } else { 2 })
    })?;
    let host: OpenHost = Box::new(move || fabric.open(&name).map_err(|e| format!("{name}: {e}")));
    Ok((dev, host))
}

#[cfg(not(feature = "verbs"))]
fn open_verbs(_cli: &Cli) -> Result<(Arc<dyn DeviceContext>, OpenHost), ExitCode> {
    Err(usage("--fabric verbs: not built in this build"))
}

async fn run(cli: Cli, config: Config) -> ExitCode {
    let (dev, open_host) = match open_devices(&cli) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let ports = config.ports.clone();
    let subsystems = config.subsystems.clone();
    let target = match Target::start(dev, config) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    println!(
        "nvmf-reference-target: serving {} subsystem(s) on {} port(s) (fabric {}, {})",
        subsystems.len(),
        ports.len(),
        cli.fabric,
        if cli.fabric == "sim" {
            format!("seed {}", cli.seed)
        } else {
            format!(
                "listening on {}",
                ports
                    .iter()
                    .map(|p| p.addr.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let mut code = ExitCode::SUCCESS;
    if cli.self_test {
        let host = match open_host() {
            Ok(h) => h,
            Err(e) => return usage(e),
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
    let mut printed = 0;
    if cli.duration > 0 {
        let stop = tokio::time::sleep(Duration::from_secs(cli.duration));
        tokio::pin!(stop);
        let signals = stop_signals();
        tokio::pin!(signals);
        loop {
            printed = print_events(&target, printed);
            tokio::select! {
                _ = &mut stop => break,
                why = &mut signals => {
                    println!("nvmf-reference-target: {why}: stopping");
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
    print_events(&target, printed);
    print_counters(&target, &subsystems);
    target.shutdown();
    code
}

/// One line per namespace: what the offload engine served (its counters) and how many I/O
/// commands software served for the subsystem.
fn print_counters(target: &Target, subsystems: &[reference_target::control::SubsystemConfig]) {
    let Some(engine) = target.offload_engine() else {
        return;
    };
    let provider = engine.provider();
    for s in subsystems {
        for nsid in target.namespace_ids(&s.nqn) {
            let Some(ctrl) = target.ctrl_of(&s.nqn, nsid) else {
                println!(
                    "counters: {} nsid {nsid}: no backend controller (released)",
                    s.nqn
                );
                continue;
            };
            if let Ok(c) = provider.ns_counters(ctrl, nsid) {
                println!(
                    "counters: {} nsid {nsid}: offloaded reads {} ({} blocks), writes {} ({} \
                     blocks), flushes {}, errors {} (backend {}); software-served I/O {}",
                    s.nqn,
                    c.read_cmds,
                    c.read_blocks,
                    c.write_cmds,
                    c.write_blocks,
                    c.flush_cmds,
                    c.error_cmds,
                    c.backend_error_cmds,
                    target.software_io_commands(&s.nqn)
                );
            }
        }
    }
}

/// Prints the target events after the first `from`; returns how many there are.
fn print_events(target: &Target, from: usize) -> usize {
    let events = target.events();
    for line in events.iter().skip(from) {
        println!("event: {line}");
    }
    events.len()
}

/// Resolves with the name of the first SIGINT or SIGTERM (never, if they cannot be
/// watched).
async fn stop_signals() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        _ => std::future::pending().await,
    }
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
