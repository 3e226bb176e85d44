//! `Target::stop` gives the device back every object the target made on it: a second and a
//! third target start on the same engine (which holds exactly the SRQs one target needs)
//! and serve I/O, while a target that was only dropped leaves its SRQ behind.

use std::sync::Arc;

use harness::backend::emulated::PciBus;
use harness::fabric::sim::SimFabric;
use harness::fabric::Fabric;
use harness::initiator::{Controller, DataMode};
use harness::wire::Status;
use reference_target::control::{Config, Target};
use reference_target::engine::Engine;
use reference_target::testing::target::*;

/// An engine on sim0 of `fabric` that holds at most one SRQ (the reference config's
/// subsystem needs one), and the config.
fn one_srq_engine(fabric: &Arc<SimFabric>) -> (Arc<Engine>, Arc<PciBus>, Config) {
    let mut config = Config::parse("<test>", &fixture("reference.toml")).unwrap();
    config.profile.device.max_srq = Some(1);
    let bus = PciBus::new();
    let engine = Engine::with_limits(
        fabric.open("sim0").unwrap(),
        config.profile.caps.clone(),
        config.profile.device,
        config.quirks.clone(),
        bus.clone(),
    );
    (engine, bus, config)
}

fn start_on(engine: &Arc<Engine>, bus: &Arc<PciBus>, config: &Config) -> Result<Target, String> {
    Target::start_on(
        engine.clone(),
        bus.clone(),
        engine.context(),
        engine.provider(),
        config.clone(),
    )
    .map_err(|e| e.to_string())
}

/// Connects a host with an I/O queue on namespace 1, writes and reads back a block, and
/// leaves the queues connected.
async fn serve(fabric: &Arc<SimFabric>, round: u8) -> (Controller, harness::initiator::IoQueue) {
    let host = fabric.open("sim1").unwrap();
    let mut c = Controller::connect(host, addr(4420), host_config(SUB0))
        .await
        .expect("admin connect");
    c.enable().await.expect("enable");
    let mut io = c
        .connect_io_queue(1, 16, 0, 1, 512)
        .await
        .expect("I/O queue connect");
    let data = vec![round; 512];
    let w = io.write(7, &data, DataMode::Keyed).await.unwrap();
    assert_eq!(w.cqe.status, Status::SUCCESS, "write, target {round}");
    let r = io.read(7, 1, DataMode::Keyed).await.unwrap();
    assert_eq!(r.cqe.status, Status::SUCCESS, "read, target {round}");
    assert_eq!(r.data, data, "data read back, target {round}");
    (c, io)
}

#[tokio::test(start_paused = true)]
async fn a_stopped_target_gives_back_every_object_and_the_next_one_starts() {
    let fabric = SimFabric::new(5);
    let (engine, bus, config) = one_srq_engine(&fabric);
    for round in 0..3u8 {
        let t = start_on(&engine, &bus, &config)
            .unwrap_or_else(|e| panic!("target {round} did not start: {e}"));
        // queues still connected when it stops: the stop closes them
        let _host = serve(&fabric, round).await;
        let problems = t.stop().await;
        assert!(problems.is_empty(), "target {round} stop: {problems:?}");
        assert_eq!(engine.commands_in_flight(), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_target_keeps_its_srq_so_the_limit_is_checked() {
    let fabric = SimFabric::new(6);
    let (engine, bus, config) = one_srq_engine(&fabric);
    let t = start_on(&engine, &bus, &config).expect("first target starts");
    drop(t);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let e = start_on(&engine, &bus, &config).expect_err("the device holds one SRQ");
    assert!(e.contains("NVMe-oF SRQ"), "{e}");
}
