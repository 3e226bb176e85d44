//! Two-host mode end to end without RDMA hardware: the control-plane cases run through
//! the runner's remote path (`offload_verdict` with `Options::connect`): the target starts
//! behind a control channel on loopback TCP, every look behind it is a request on the
//! channel, and traces are compared with the snapshots as two-host mode compares them
//! (`Timing::Remote` for the control-plane cases, `Timing::RemoteDevice` for the cases
//! that drive the remote device: host, target, device and backend lines). The channel's
//! target and the runner's hosts share one simulated
//! fabric here, standing in for the RDMA link between two hosts (the soft-RoCE VM runs
//! the same over real verbs, in two processes). The target host serves the reference
//! engine, or a vendor plugin's device (the reference plugin here).

use std::sync::Arc;
use std::time::Duration;

use harness::api::Profile;
use harness::fabric::sim::SimFabric;
use harness::fabric::Fabric;
use harness::plugin::Plugin;
use harness::runner::Verdict;
use reference_target::quirks::{Quirk, Quirks};
use reference_target::remote::{ControlServer, Opened, Secret, Security, Served};
use suites::catalog::{self, Body};
use suites::fabric::CaseFabric;
use suites::options::Connect;
use suites::run::{offload_verdict, Options, PluginTarget};

/// The reference plugin's configuration the plugin tests serve: doorbells written in memory
/// and PRPs as bus addresses through a window, as a NIC reaches its backends.
const NIC_LIKE: &str = "profile=full;doorbells=memory;prp-window=0x100000000000000";

fn reference_plugin() -> Plugin {
    let path = nvmf_reference_plugin::library_path()
        .expect("cargo builds libnvmf_reference_plugin.so for this test (a dev-dependency)");
    Plugin::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A control channel's target on its own thread (with its own runtime, as another host's
/// would be: the runner's calls on the device block the runner's thread while the target
/// answers), serving a simulated fabric's `sim0` (the reference engine, or `plugin` opened
/// with its configuration); the channel's address and security, and the fabric, which the
/// runner's hosts share.
fn serve_on_a_thread(
    seed: u64,
    plugin: Option<(Plugin, &'static str)>,
) -> (std::net::SocketAddr, Security, Arc<SimFabric>) {
    // the lab secret both ends hold: the channel is TLS, each end proving it
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("nvmf-two-host-{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lab.secret");
    Secret::generate(&path).unwrap();
    let security = Security::Secret(Arc::new(Secret::load(&path).unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let theirs = security.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let fabric = SimFabric::new(seed);
            let shared = fabric.clone();
            let open = Arc::new(move || {
                Ok(Opened {
                    ctx: shared.open("sim0").map_err(|e| e.to_string())?,
                    fabric: None,
                })
            });
            let served = match plugin {
                None => Served::Reference,
                Some((plugin, config)) => Served::plugin(plugin, config, &open().unwrap())
                    .unwrap_or_else(|e| panic!("{e}")),
            };
            let server =
                ControlServer::bind("127.0.0.1:0".parse().unwrap(), theirs, open, "sim", "sim0")
                    .await
                    .unwrap()
                    .serving(served);
            tx.send((server.local_addr().unwrap(), fabric)).unwrap();
            // serves until the test process ends
            server.serve().await;
        });
    });
    let (addr, fabric) = rx.recv().unwrap();
    (addr, security, fabric)
}

/// Runs the cases `filters` select through a control channel with `profile` and `quirks`;
/// returns `(id, verdict)` of each.
fn run_remote(filters: &[&str], profile: &str, quirks: Quirks) -> Vec<(String, Verdict)> {
    run_served(filters, profile, quirks, None)
}

/// [`run_remote`] with the target host serving `plugin` (with its configuration) when
/// given; the runner takes what the target serves from its `hello`, as `nvmf-conform` does.
/// `NVMF_TWO_HOST_TRACE=1` prints each case's verdict as it ends (`--nocapture`).
fn run_served(
    filters: &[&str],
    profile: &str,
    quirks: Quirks,
    plugin: Option<(Plugin, &'static str)>,
) -> Vec<(String, Verdict)> {
    // One catalog through a channel at a time: two at once on a small machine slow a case's
    // teardown past the 5 s a target gives the next runner before it says it is busy.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let served_plugin = plugin.is_some();
    let (addr, security, fabric) = serve_on_a_thread(5, plugin);
    let mut opts = Options {
        profile: Profile::builtin(profile).unwrap(),
        quirks,
        snapshots: Some(suites::snapshot::default_dir()),
        connect: Some(Connect { addr, security }),
        ..Options::default()
    };
    let c = opts.connect.as_ref().unwrap();
    let info = runtime()
        .block_on(suites::run::connect_remote(c, 1.0))
        .unwrap()
        .info()
        .clone();
    let adopted = suites::run::adopt_remote(&mut opts, &info);
    assert_eq!(adopted.is_some(), served_plugin, "{info:?}");
    if served_plugin {
        assert_eq!(opts.profile.name, "plugin:libnvmf_reference_plugin.so");
    }
    let mut out = Vec::new();
    let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
    for e in catalog::select(&filters) {
        let Body::Offload(case) = &e.body else {
            continue;
        };
        let place = CaseFabric {
            fabric: fabric.clone() as Arc<dyn Fabric>,
            sim: Some(fabric.clone()),
            target_device: "sim0".into(),
            host_device: "sim1".into(),
        };
        let bound = Duration::from_secs(60);
        // a runtime per case, as nvmf-conform runs them: what a case left running ends
        // with it (and lets go of its channel before the next case connects)
        let outcome = runtime().block_on(offload_verdict(
            &e.id,
            case,
            place,
            &opts,
            None,
            bound,
            "(wall time)",
        ));
        let (verdict, trace) = (outcome.verdict, outcome.trace);
        if matches!(verdict, Verdict::Pass) {
            assert!(
                trace.iter().any(|l| l == suites::run::REMOTE_TRACE_MARK),
                "{}: the remote target's trace was not collected",
                e.id
            );
            // a control-plane case's target lines come from the remote target
            let control = case.needs.contains(&suites::framework::Need::ControlPlane);
            assert!(
                !control || trace.iter().any(|l| l.starts_with("target")),
                "{}: no target line in {trace:#?}",
                e.id
            );
        }
        if std::env::var_os("NVMF_TWO_HOST_TRACE").is_some() {
            eprintln!("{} {verdict:?}", e.id);
        }
        out.push((e.id.clone(), verdict));
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn control_plane_cases_pass_through_the_channel() {
    let results = run_remote(
        &["connect", "recovery", "security", "caps.consistent"],
        "full",
        Quirks::none(),
    );
    let passed = results
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Pass))
        .count();
    assert!(passed >= 35, "only {passed} passed: {results:#?}");
    for (id, v) in &results {
        match v {
            Verdict::Pass => {}
            // the full profile serves non-offloaded ops: this one case is for devices
            // that do not
            Verdict::Skip(why) if why.contains("supports_non_offloaded_ops") => {}
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(results.iter().any(|(id, _)| id == "caps.consistent"));
}

/// A target that breaks a rule is caught through the channel too: the quirk reaches the
/// remote target, and the case that checks the rule fails.
#[test]
fn a_remote_quirk_is_caught() {
    let results = run_remote(
        &["connect", "recovery", "security"],
        "full",
        Quirks::one(Quirk::AllowAnyHost),
    );
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Fail(_)))
        .map(|(id, _)| id.as_str())
        .collect();
    assert!(
        failed.iter().any(|id| id.contains("host-not-allowed")),
        "allow-any-host went unnoticed: failed {failed:?}"
    );
}

/// Every offload case runs through the channel (the device context, the offload API and
/// the emulated backends of the target host's device used as messages) and ends as it does
/// in one process.
#[test]
fn the_whole_catalog_runs_through_the_channel() {
    let remote = run_remote(&[], "full", Quirks::none());
    let opts = Options {
        profile: Profile::builtin("full").unwrap(),
        snapshots: Some(suites::snapshot::default_dir()),
        ..Options::default()
    };
    let passed = same_verdicts_as(&opts, &remote, "across the channel");
    assert!(passed > 150, "only {passed} passed");
}

/// A vendor plugin served on the target host (`nvmf-reference-target --control … --target
/// plugin:PATH`): the runner takes the device's caps from `hello`, and every offload case
/// (control-plane cases start a target over the plugin's device there, the others use the
/// device through the channel) ends as it does with the plugin in the runner's process. The
/// reference plugin reaches its backends as a NIC does (doorbells in memory).
#[test]
fn a_plugin_served_on_the_target_host_runs_the_catalog() {
    let plugin = Some((reference_plugin(), NIC_LIKE));
    let remote = run_served(&[], "full", Quirks::none(), plugin);
    let opts = Options {
        snapshots: Some(suites::snapshot::default_dir()),
        plugin: Some(PluginTarget {
            plugin: reference_plugin(),
            config: NIC_LIKE.into(),
        }),
        isolation: suites::isolate::Isolation::Case,
        ..Options::default()
    };
    same_verdicts_as(&opts, &remote, "with the plugin served");
    for area in ["pci-error", "timeout", "connect", "datapath"] {
        let ran = remote
            .iter()
            .filter(|(id, v)| id.starts_with(&format!("{area}.")) && matches!(v, Verdict::Pass))
            .count();
        assert!(
            ran > 0,
            "area {area}: no case passed with the plugin served"
        );
    }
}

/// Runs every offload case in one process with `opts` and checks each ended as in
/// `remote` (`how` it ran, for the messages); how many passed.
fn same_verdicts_as(opts: &Options, remote: &[(String, Verdict)], how: &str) -> usize {
    let offload: Vec<_> = catalog::all()
        .into_iter()
        .filter(|e| matches!(e.body, Body::Offload(_)))
        .collect();
    let direct = suites::run::run(&offload, opts, |_| {});
    assert_eq!(direct.cases.len(), remote.len());
    let differ: Vec<String> = direct
        .cases
        .iter()
        .zip(remote)
        .filter(|(d, r)| format!("{:?}", d.verdict) != format!("{:?}", r.1))
        .map(|(d, r)| format!("{}: {:?} in one process, {:?} {how}", d.id, d.verdict, r.1))
        .collect();
    assert!(
        differ.is_empty(),
        "{} differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    let passed = remote
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Pass))
        .count();
    eprintln!("{passed} of {} offload cases passed {how}", remote.len());
    passed
}
