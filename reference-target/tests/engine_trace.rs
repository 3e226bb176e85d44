//! Traces of the engine at work: what an offloaded write and read look like from host,
//! target and device, and that the same seed gives the same trace.

use harness::backend::emulated::LbaFormat;
use harness::initiator::DataMode;
use harness::trace::{Names, Recorder};
use reference_target::quirks::Quirks;
use reference_target::testing::data::counting;
use reference_target::testing::engine::rig_traced;

async fn traced_write_read(seed: u64) -> String {
    let rec = Recorder::new();
    let mut r = rig_traced(
        seed,
        "full",
        LbaFormat::L4096,
        Quirks::none(),
        true,
        Some((rec.clone(), Names::new())),
    )
    .await;
    let data = counting(8192, 1);
    r.io.write(4, &data, DataMode::KeyedInvalidate)
        .await
        .unwrap();
    let rd = r.io.read(4, 2, DataMode::Keyed).await.unwrap();
    assert_eq!(rd.data, data);
    rec.text()
}

#[tokio::test(start_paused = true)]
async fn offloaded_write_and_read_trace() {
    let text = traced_write_read(5).await;
    // The device is configured through the API, software answers the Connect, then the
    // device serves the I/O with no software receive: the target actor sees no other
    // capsule.
    assert!(text.contains("device   call    create_srq"), "{text}");
    assert!(text.contains("device   call    qp_set_nvmf"), "{text}");
    assert!(
        text.contains("host     capsule -> write slba=4 nlb=1 cid="),
        "{text}"
    );
    assert!(text.contains("host     resp    <- cid="), "{text}");
    assert!(
        text.contains("invalidated=mr"),
        "0x4F answered with invalidate: {text}"
    );
    let software: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("target   capsule"))
        .collect();
    assert_eq!(software.len(), 1, "{text}");
    assert!(software[0].contains("connect cid="), "{text}");
    assert!(
        !text.contains("key?") && !text.contains("qpn?"),
        "unnamed values: {text}"
    );
    insta::assert_snapshot!(text);
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_trace() {
    let a = traced_write_read(9).await;
    let b = traced_write_read(9).await;
    assert_eq!(a, b);
}
