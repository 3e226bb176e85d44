//! The reference engine through its C ABI (`libnvmf_reference_plugin.so`, loaded with
//! `harness::plugin::Plugin`) behaves as the engine in-process: one scenario — NVMe-oF SRQ
//! with a staging buffer, a backend controller the host creates and attaches to its PCI
//! bus, namespace mappings and their errnos, a host queue connected and offloaded,
//! offloaded writes and reads, a PCI error on the backend raising NVME_PCI_ERR — run both
//! ways gives the same observations, and the plugin run is deterministic.
//!
//! The device is built with the same pieces as the engine's own tests
//! (`reference_target::testing::engine`).
//!
//! The library is `libnvmf_reference_plugin.so`, which cargo builds with this test (the
//! crate is `cdylib` + `rlib`) into `target/<profile>/deps/`, beside the test binary (see
//! `nvmf_reference_plugin::library_path`; `$NVMF_REFERENCE_PLUGIN` overrides).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use harness::api::MemRef;
use harness::api::{
    NsMapping, NvmeCtrlAttrs, NvmfSrqAttrs, OffloadEvent, OffloadProvider, Profile, QpNvmfFlags,
};
use harness::backend::emulated::{Fault, LbaFormat, Namespace, PciBus};
use harness::backend::PciHost;
use harness::fabric::sim::SimFabric;
use harness::fabric::{Access, DeviceContext, Fabric};
use harness::initiator::{DataMode, IoQueue, QueueSpec};
use harness::plugin::Plugin;
use harness::trace::{Names, Recorder, TracedContext, TracedProvider};
use harness::wire::Status;
use reference_target::engine::Engine;
use reference_target::quirks::{Quirk, Quirks};
use reference_target::testing::engine::{connect_queue, ctrl_attrs, spawn_backend, srq_attrs};

const BOUND: Duration = Duration::from_secs(5);

/// The plugin library cargo built with this test.
fn plugin_path() -> PathBuf {
    nvmf_reference_plugin::library_path()
        .unwrap_or_else(|| PathBuf::from(nvmf_reference_plugin::library_file_name()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    InProcess,
    Plugin,
}

struct Run {
    /// What the scenario observed, one line per fact.
    facts: Vec<String>,
    /// The whole trace (host, target, device).
    trace: String,
}

fn errno_of<T: std::fmt::Debug>(r: Result<T, harness::api::OffloadError>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("{:?} {}", e.errno(), e.reason()),
    }
}

/// Everything the harness's `Dut` does, for one scenario, on the given kind of device.
async fn scenario(seed: u64, kind: Kind, quirks: &[Quirk]) -> Run {
    let fabric = SimFabric::new(seed);
    let real = fabric.open("sim0").unwrap();
    let bus = PciBus::new();
    let profile = Profile::builtin("full").unwrap();
    let (ctx, prov): (Arc<dyn DeviceContext>, Arc<dyn OffloadProvider>) = match kind {
        Kind::InProcess => {
            let mut q = Quirks::none();
            for x in quirks {
                q.insert(*x);
            }
            let e = Engine::with_limits(real, profile.caps.clone(), profile.device, q, bus.clone());
            (e.context(), e.provider())
        }
        Kind::Plugin => {
            let path = plugin_path();
            let plugin = Plugin::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let names: Vec<&str> = quirks.iter().map(|q| q.name()).collect();
            let config = format!("profile=full;quirks={}", names.join(","));
            let pci: Arc<dyn PciHost> = bus.clone();
            plugin.open(real, pci, &config).unwrap()
        }
    };
    let rec = Recorder::new();
    let names = Names::new();
    let ctx: Arc<dyn DeviceContext> = TracedContext::new(ctx, "target", rec.clone(), names.clone());
    let prov: Arc<dyn OffloadProvider> =
        TracedProvider::new(prov, "device", "target", rec.clone(), names.clone());
    let mut facts = Vec::new();
    let caps = prov.caps();
    facts.push(format!("caps {:?}", caps == profile.caps));

    // SRQ with its staging buffer.
    let pd = ctx.alloc_pd().unwrap();
    let staging_len = caps.min_staging_buf_size.max(2 * u64::from(caps.max_io_sz));
    let staging = ctx.reg_mr(pd, staging_len, Access::LOCAL_WRITE).unwrap();
    let attrs = srq_attrs(&caps, &staging, caps.max_ioccsz.min(260));
    let bad = NvmfSrqAttrs {
        ioccsz: caps.max_ioccsz + 1,
        ..attrs.clone()
    };
    facts.push(format!(
        "srq too big ioccsz: {}",
        errno_of(prov.create_srq(pd, &bad))
    ));
    let srq = prov.create_srq(pd, &attrs).unwrap();

    // A backend controller, created by the host on its bus (as suites' Backends::create).
    let rings = ctx.reg_mr(pd, 4096, Access::LOCAL_WRITE).unwrap();
    let ctrl_attrs = ctrl_attrs(&rings, 0);
    let backend = spawn_backend(&ctx, &ctrl_attrs, &[staging, rings], &attrs.staging_buf);
    backend
        .add_namespace(Namespace::ram(1, LbaFormat::L4096, 1024).unwrap())
        .unwrap();
    let lost = NvmeCtrlAttrs {
        sqdb: MemRef::of(&rings, 3080, 4),
        ..ctrl_attrs.clone()
    };
    bus.attach(ctrl_attrs.sqdb.mr, ctrl_attrs.sqdb.addr, backend.clone());
    facts.push(format!(
        "ctrl not on the bus: {}",
        errno_of(prov.create_nvme_ctrl(srq.handle, &lost))
    ));
    let ctrl = prov.create_nvme_ctrl(srq.handle, &ctrl_attrs).unwrap();
    let m = NsMapping {
        fe_nsid: 7,
        nvme_nsid: 1,
        lba_data_size: 4096,
    };
    facts.push(format!("map: {}", errno_of(prov.map_nsid(ctrl, &m))));
    facts.push(format!("map again: {}", errno_of(prov.map_nsid(ctrl, &m))));
    let odd = NsMapping {
        fe_nsid: 8,
        lba_data_size: 4097,
        ..m
    };
    facts.push(format!("map 4097: {}", errno_of(prov.map_nsid(ctrl, &odd))));
    facts.push(format!("unmap 9: {}", errno_of(prov.unmap_nsid(ctrl, 9))));

    // The host connects; the target accepts on the NVMe-oF SRQ and enables offload.
    let host: Arc<dyn DeviceContext> = TracedContext::new(
        fabric.open("sim1").unwrap(),
        "host",
        rec.clone(),
        names.clone(),
    );
    let (queue, qp, _, cntlid) =
        connect_queue(&ctx, pd, srq.srq, host, QueueSpec::io(1, 32, 4096)).await;
    facts.push(format!("connect: cntlid {cntlid}"));
    let bad_flags = prov.qp_set_nvmf(qp, QpNvmfFlags::from_bits_retain(2));
    prov.qp_set_nvmf(qp, QpNvmfFlags::ENABLE).unwrap();
    facts.push(format!("qp_set_nvmf bit 1: {}", errno_of(bad_flags)));
    let mut io = IoQueue::new(queue, 7, 4096);

    // Offloaded I/O.
    let data: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    let w = io.write(4, &data, DataMode::Keyed).await.unwrap();
    facts.push(format!("write status {:?}", w.cqe.status));
    let r = io.read(4, 2, DataMode::Keyed).await.unwrap();
    facts.push(format!(
        "read status {:?}, data equal {}",
        r.cqe.status,
        r.data == data
    ));
    let small = vec![0xA5u8; 4096];
    let w = io.write(9, &small, DataMode::InCapsule).await;
    facts.push(format!("in-capsule write {:?}", w.map(|c| c.cqe.status)));
    let on_media = backend.with_namespace(1, |ns| ns.read_blocks(4, 2).map(|b| b == data).ok());
    facts.push(format!("on the backend's media: {on_media:?}"));
    facts.push(format!("counters {}", errno_of(prov.ns_counters(ctrl, 7))));
    facts.push(format!(
        "srq counters {}",
        errno_of(prov.srq_counters(srq.handle))
    ));

    // A PCI error on the backend: the next read fails, the device raises NVME_PCI_ERR.
    backend.inject(Fault::PciError).unwrap();
    let r = io.read(4, 1, DataMode::Keyed).await.unwrap();
    facts.push(format!(
        "read after PCI error: internal error {}, dnr {}",
        r.cqe.status.same_code(Status::INTERNAL_ERROR),
        r.cqe.status.dnr
    ));
    let ev = tokio::time::timeout(BOUND, prov.next_event()).await;
    facts.push(format!(
        "event {:?}",
        ev.as_ref().map(OffloadEvent::to_string)
    ));
    facts.push(format!(
        "remove with namespace: {}",
        errno_of(prov.remove_nvme_ctrl(srq.handle, ctrl))
    ));
    facts.push(format!("unmap: {}", errno_of(prov.unmap_nsid(ctrl, 7))));
    facts.push(format!(
        "remove: {}",
        errno_of(prov.remove_nvme_ctrl(srq.handle, ctrl))
    ));
    facts.push(format!("events left {:?}", prov.poll_event()));
    Run {
        facts,
        trace: rec.text(),
    }
}

/// The trace less SEND success completions and flushes (timing, not behaviour).
fn canonical(trace: &str) -> Vec<&str> {
    trace
        .lines()
        .filter(|l| {
            !(l.contains(" wc ") && (l.contains("Send SUCCESS") || l.contains("WR_FLUSH_ERR")))
        })
        .collect()
}

fn check_plugin_built() {
    let p = plugin_path();
    assert!(
        p.is_file(),
        "{} missing: build it with `cargo build -p nvmf-reference-plugin` (cargo test builds it \
         with this test) or set NVMF_REFERENCE_PLUGIN",
        p.display()
    );
}

#[tokio::test(start_paused = true)]
async fn catalog_scenario_through_the_plugin_equals_in_process() {
    check_plugin_built();
    let a = scenario(7, Kind::InProcess, &[]).await;
    let b = scenario(7, Kind::Plugin, &[]).await;
    println!("{}", b.facts.join("\n"));
    assert_eq!(a.facts, b.facts, "in-process vs plugin");
    // Call by call the same, up to what is timing (as suites' snapshot::canonical): when a
    // SEND's ACK is polled relative to the peer's answer.
    assert_eq!(canonical(&a.trace), canonical(&b.trace), "traces");
    assert!(
        b.facts
            .iter()
            .any(|f| f == "event Ok(\"NVME_PCI_ERR ctrl=1\")"),
        "{:?}",
        b.facts
    );
    assert!(
        b.facts.iter().any(|f| f.contains("data equal true")),
        "{:?}",
        b.facts
    );
}

#[tokio::test(start_paused = true)]
async fn plugin_runs_are_deterministic() {
    check_plugin_built();
    let a = scenario(11, Kind::Plugin, &[]).await;
    let b = scenario(11, Kind::Plugin, &[]).await;
    assert_eq!(a.facts, b.facts);
    assert_eq!(a.trace, b.trace);
}

#[tokio::test(start_paused = true)]
async fn quirks_reach_the_plugin() {
    check_plugin_built();
    let a = scenario(3, Kind::InProcess, &[Quirk::NoPciErrEvent]).await;
    let b = scenario(3, Kind::Plugin, &[Quirk::NoPciErrEvent]).await;
    assert_eq!(a.facts, b.facts);
    assert!(
        b.facts.iter().any(|f| f.starts_with("event Err")),
        "{:?}",
        b.facts
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_config_is_einval_with_the_reason() {
    check_plugin_built();
    let plugin = Plugin::load(plugin_path()).unwrap();
    let fabric = SimFabric::new(1);
    let pci: Arc<dyn PciHost> = PciBus::new();
    let e = plugin
        .open(
            fabric.open("sim0").unwrap(),
            pci.clone(),
            "quirks=no-such-quirk",
        )
        .err()
        .expect("refused");
    assert_eq!(e.errno(), Some(nix::errno::Errno::EINVAL), "{e}");
    assert!(e.to_string().contains("no-such-quirk"), "{e}");
    let e = plugin
        .open(fabric.open("sim0").unwrap(), pci, "profile=nope")
        .err()
        .expect("refused");
    assert!(e.to_string().contains("profile"), "{e}");
}
