//! The control channel of two-host mode (`--control ADDR`): how it opens the device for
//! each runner, what it serves there (the reference engine or a plugin), the real
//! controller it lends (`--backend vfio:PCI`), and the serving loop.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use harness::fabric::sim::SimFabric;
use harness::fabric::Fabric;
use harness::plugin::Plugin;
use reference_target::remote::{ControlServer, OpenDevice, Opened, Secret, Security, Served};

#[cfg(feature = "verbs")]
use super::open_verbs;
use super::{consented, stop_signals, usage, Cli};

/// How the control channel opens the device for each target, and the device's name; `Err`
/// is the exit code (the device does not open now: 125 when there is no RDMA device).
fn control_opener(cli: &Cli) -> Result<(OpenDevice, String), ExitCode> {
    if cli.fabric == "sim" {
        let seed = cli.seed;
        let name = cli.device.clone().unwrap_or_else(|| "sim0".into());
        let open = {
            let name = name.clone();
            move || {
                let fabric = SimFabric::new(seed);
                let ctx = fabric.open(&name).map_err(|e| format!("{name}: {e}"))?;
                Ok(Opened {
                    ctx,
                    fabric: Some(fabric as Arc<dyn Fabric>),
                })
            }
        };
        open().map_err(usage)?;
        return Ok((Arc::new(open), name));
    }
    control_opener_verbs(cli)
}

#[cfg(feature = "verbs")]
fn control_opener_verbs(cli: &Cli) -> Result<(OpenDevice, String), ExitCode> {
    use harness::fabric::verbs::VerbsFabric;
    // The same checks (and exit codes) as serving one configuration.
    let (dev, _) = open_verbs(cli)?;
    drop(dev);
    let name = match &cli.device {
        Some(n) => n.clone(),
        None => VerbsFabric::new()
            .devices()
            .ok()
            .and_then(|d| d.first().cloned())
            .unwrap_or_default(),
    };
    let fabric = VerbsFabric::new();
    let device = name.clone();
    let open = move || {
        let ctx = fabric.open(&device).map_err(|e| format!("{device}: {e}"))?;
        Ok(Opened { ctx, fabric: None })
    };
    Ok((Arc::new(open), name))
}

#[cfg(not(feature = "verbs"))]
fn control_opener_verbs(_cli: &Cli) -> Result<(OpenDevice, String), ExitCode> {
    Err(usage("--fabric verbs: not built in this build"))
}

/// The control channel's protection as the command line asks: a secret file, or
/// `--insecure` said out loud; neither is a usage error.
fn control_security(cli: &Cli) -> Result<Security, String> {
    match (&cli.control_secret, cli.insecure) {
        (Some(path), _) => Ok(Security::Secret(Arc::new(
            Secret::load(path).map_err(|e| format!("--control-secret {e}"))?,
        ))),
        (None, true) => Ok(Security::Insecure),
        (None, false) => Err(
            "--control needs --control-secret FILE (the lab secret runners \
             must prove; make one with --new-secret FILE), or --insecure for a channel \
             without authentication"
                .into(),
        ),
    }
}

/// Two-host mode: serves the control channel on `addr` until a signal or --duration.
pub(super) async fn serve_control(cli: &Cli, addr: std::net::SocketAddr) -> ExitCode {
    let security = match control_security(cli) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let (open, device) = match control_opener(cli) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let served = match served(cli, &open).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let real = match lent_real(cli) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let described = security.describe();
    let server = match ControlServer::bind(addr, security, open, &cli.fabric, &device).await {
        Ok(s) => s.serving(served.clone()),
        Err(e) => return usage(format!("--control {addr}: {e}")),
    };
    let server = match real {
        Some(r) => {
            println!(
                "nvmf-reference-target: lending the real controller {} (namespace 1: {} blocks \
                 of {}; fault broker: {})",
                r.address,
                r.facts.blocks,
                r.facts.format,
                if r.facts.broker { "yes" } else { "none" }
            );
            server.lending(r)
        }
        None => server,
    };
    let local = server.local_addr().unwrap_or(addr);
    println!(
        "nvmf-reference-target: control channel on {local} (fabric {}, device {device}, \
         serving {})",
        cli.fabric,
        served.name()
    );
    match server.fingerprint() {
        Some(fp) => println!(
            "nvmf-reference-target: control channel: {described}; certificate SHA-256 {fp}"
        ),
        None => eprintln!("nvmf-reference-target: WARNING: control channel {described}"),
    }
    let serving = tokio::spawn(server.serve());
    let until = async {
        if cli.duration > 0 {
            tokio::time::sleep(Duration::from_secs(cli.duration)).await;
            "--duration elapsed"
        } else {
            std::future::pending().await
        }
    };
    let why = tokio::select! {
        why = until => why,
        why = stop_signals() => why,
    };
    println!("nvmf-reference-target: {why}: stopping");
    serving.abort();
    let _ = serving.await;
    ExitCode::SUCCESS
}

/// The real controller `--backend vfio:PCI` names, opened once to learn what it offers
/// (exit 2 without the consent or for a bad address, 125 for one that cannot be driven).
fn lent_real(cli: &Cli) -> Result<Option<reference_target::remote::LendsReal>, ExitCode> {
    use harness::backend::vfio::{FaultLine, PciAddress};
    let Some(text) = &cli.backend else {
        return Ok(None);
    };
    let address: PciAddress = match text.split_once(':') {
        Some(("vfio", pci)) => pci
            .parse()
            .map_err(|e| usage(format!("--backend {text}: {e}")))?,
        _ => return Err(usage(format!("--backend {text}: expected vfio:PCI"))),
    };
    if !consented(cli, address) {
        return Err(usage(format!(
            "--backend vfio:{address}: runners' cases reset the controller and write its \
             namespace; add --allow-destructive {address} to consent (never a disk holding data)"
        )));
    }
    let faults = std::sync::Arc::new(FaultLine::from_env());
    match reference_target::remote::LendsReal::new(address, faults) {
        Ok(r) => Ok(Some(r)),
        Err(why) => {
            eprintln!("nvmf-reference-target: --backend vfio:{address}: {why}");
            Err(ExitCode::from(125))
        }
    }
}

/// What `--target` names: the reference engine, or a plugin, loaded and its device opened
/// once on the device to read its caps (exit 2 for a library that is not a plugin or a
/// configuration it refuses, 125 for a device it cannot open).
async fn served(cli: &Cli, open: &OpenDevice) -> Result<Served, ExitCode> {
    let path = match cli.target.split_once(':') {
        None if cli.target == "reference" => {
            if !cli.plugin_config.is_empty() {
                return Err(usage("--plugin-config configures a --target plugin:PATH"));
            }
            return Ok(Served::Reference);
        }
        Some(("plugin", path)) if !path.is_empty() => path,
        _ => {
            return Err(usage(format!(
                "--target {}: expected reference or plugin:PATH",
                cli.target
            )))
        }
    };
    let plugin = Plugin::load(path).map_err(|e| usage(format!("--target plugin:{path}: {e}")))?;
    let device = open().map_err(|e| {
        eprintln!("nvmf-reference-target: the device did not open: {e}");
        ExitCode::from(125)
    })?;
    match Served::plugin(plugin, &cli.plugin_config, &device) {
        Ok(s) => Ok(s),
        Err(e) if e.errno() == Some(nix::errno::Errno::EINVAL) => Err(usage(format!(
            "--plugin-config `{}`: {e}",
            cli.plugin_config
        ))),
        Err(e) => {
            eprintln!("nvmf-reference-target: --target plugin:{path}: {e}");
            Err(ExitCode::from(125))
        }
    }
}
