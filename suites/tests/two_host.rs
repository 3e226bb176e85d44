//! Two-host mode end to end without RDMA hardware: the control-plane cases run through
//! the runner's remote path (`offload_verdict` with `Options::connect`): the target starts
//! behind a control channel on loopback TCP, every look behind it is a request on the
//! channel, and traces are compared with the snapshots the host's way
//! (`Timing::Remote`). The channel's target and the runner's hosts share one simulated
//! fabric here, standing in for the RDMA link between two hosts (the soft-RoCE VM runs
//! the same over real verbs, in two processes).

use std::sync::Arc;
use std::time::Duration;

use harness::api::Profile;
use harness::fabric::sim::SimFabric;
use harness::fabric::Fabric;
use harness::runner::Verdict;
use reference_target::quirks::{Quirk, Quirks};
use reference_target::remote::{ControlServer, Opened, Secret, Security};
use suites::catalog::{self, Body};
use suites::fabric::CaseFabric;
use suites::options::Connect;
use suites::run::{offload_verdict, Options};

/// A control channel's target on its own thread (with its own runtime, as another host's
/// would be: the runner's calls on the device block the runner's thread while the target
/// answers), serving a simulated fabric's `sim0`; the channel's address and security, and
/// the fabric, which the runner's hosts share.
fn serve_on_a_thread(seed: u64) -> (std::net::SocketAddr, Security, Arc<SimFabric>) {
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
            let open = move || {
                Ok(Opened {
                    ctx: shared.open("sim0").map_err(|e| e.to_string())?,
                    fabric: None,
                })
            };
            let server = ControlServer::bind(
                "127.0.0.1:0".parse().unwrap(),
                theirs,
                Arc::new(open),
                "sim",
                "sim0",
            )
            .await
            .unwrap();
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
    let (addr, security, fabric) = serve_on_a_thread(5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = Options {
            profile: Profile::builtin(profile).unwrap(),
            quirks,
            snapshots: Some(suites::snapshot::default_dir()),
            connect: Some(Connect { addr, security }),
            ..Options::default()
        };
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
            let outcome =
                offload_verdict(&e.id, case, place, &opts, None, bound, "(wall time)").await;
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
            out.push((e.id.clone(), verdict));
        }
        out
    })
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
    let offload: Vec<_> = catalog::all()
        .into_iter()
        .filter(|e| matches!(e.body, Body::Offload(_)))
        .collect();
    let direct = suites::run::run(&offload, &opts, |_| {});
    assert_eq!(direct.cases.len(), remote.len());
    let differ: Vec<String> = direct
        .cases
        .iter()
        .zip(&remote)
        .filter(|(d, r)| format!("{:?}", d.verdict) != format!("{:?}", r.1))
        .map(|(d, r)| {
            format!(
                "{}: {:?} in one process, {:?} across the channel",
                d.id, d.verdict, r.1
            )
        })
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
    eprintln!(
        "{passed} of {} offload cases passed across the channel",
        remote.len()
    );
    assert!(passed > 150, "only {passed} passed");
}
