//! A stopped target lets go of its device: after `Target::shutdown` (or a drop) nothing
//! holds the device context any more, so a real device's listening ports and memory are
//! freed and the next target in the same process (the control channel's next case) can
//! listen on the same port.

use std::sync::Arc;

use harness::fabric::sim::SimFabric;
use harness::fabric::Fabric;
use reference_target::control::{Config, Target};
use reference_target::testing::target::*;

/// Lets aborted tasks be dropped.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

async fn released_after(stop: impl FnOnce(Target)) {
    let fabric = SimFabric::new(1);
    let dev = fabric.open("sim0").unwrap();
    let config = Config::parse("<test>", &fixture("reference.toml")).unwrap();
    let t = Target::start(dev.clone(), config).expect("target starts");
    // a session, so that queues, controllers and backend I/O existed
    let rig_host = fabric.open("sim1").unwrap();
    let mut c = harness::initiator::Controller::connect(rig_host, addr(4420), host_config(SUB0))
        .await
        .expect("admin connect");
    c.enable().await.expect("enable");
    drop(c);
    stop(t);
    settle().await;
    assert_eq!(
        Arc::strong_count(&dev),
        1,
        "the stopped target still holds its device context"
    );
    // and the port is free for the next target
    let config = Config::parse("<test>", &fixture("reference.toml")).unwrap();
    Target::start(dev, config).expect("a second target listens on the same port");
}

#[tokio::test(start_paused = true)]
async fn shutdown_releases_the_device() {
    released_after(Target::shutdown).await;
}

#[tokio::test(start_paused = true)]
async fn drop_releases_the_device() {
    released_after(drop).await;
}
