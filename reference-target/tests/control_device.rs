//! The device itself over the control channel (`open-device` … `close-device`), with two
//! processes on loopback: the runner's [`RemoteDevice`] against `nvmf-reference-target
//! --control 127.0.0.1:0 --fabric sim`. The device context, the offload API and the
//! backends answer through it as in one process (errors with their errno and reason), the
//! refusals name what is wrong, and a runner that vanishes with the device open leaves it
//! free for the next.

mod control_rig;

use std::sync::Arc;

use harness::api::{NvmfSrqAttrs, OffloadError, OffloadProvider};
use harness::fabric::{Access, DeviceContext, MrInfo};
use harness::remote::{BackendCall, BackendLink, BackendReply};
use reference_target::quirks::Quirks;
use reference_target::remote::RemoteDevice;

use control_rig::{config, full, refused, runner, spawn_target, LabSecret};

/// A staging region and SRQ attributes the full profile accepts.
fn srq_attrs(ctx: &dyn DeviceContext, provider: &dyn OffloadProvider) -> (MrInfo, NvmfSrqAttrs) {
    let caps = provider.caps();
    let pd = ctx.alloc_pd().expect("a PD on the remote device");
    let len = reference_target::control::config::default_staging_len(&caps);
    let staging = ctx.reg_mr(pd, len, Access::LOCAL_WRITE).expect("staging");
    let attrs = NvmfSrqAttrs {
        rq: harness::fabric::SrqInit::new(64),
        offload_ops: caps.allowed_offload_ops(),
        max_namespaces: caps.max_srq_namespaces,
        nvme_log_page_sz: 0,
        ioccsz: caps.min_ioccsz.max(4),
        icdoff: 0,
        max_io_sz: caps.max_io_sz,
        nvme_queue_depth: 32.clamp(caps.min_nvme_queue_depth, caps.max_nvme_queue_depth),
        staging_buf: harness::api::MemRef::of(&staging, 0, staging.len),
    };
    (staging, attrs)
}

#[tokio::test]
async fn the_device_answers_across_the_channel() {
    let lab = LabSecret::new("device");
    let p = spawn_target(Some(&lab));
    let t = Arc::new(runner(&p, &lab.security()).await.expect("hello"));
    let d = RemoteDevice::open(t.clone(), &full(), &Quirks::none())
        .await
        .expect("open-device");
    assert_eq!(d.ip().to_string(), "127.0.10.1", "sim0's address");
    refused(
        RemoteDevice::open(t.clone(), &full(), &Quirks::none()).await,
        "the device is open: close it first",
    );
    refused(
        t.start(&config(), &full(), &Quirks::none()).await,
        "the device is open: close it first",
    );
    let (ctx, provider) = d.faces().expect("the device's two faces");
    assert_eq!(provider.caps(), full().caps, "the profile's caps");
    // memory written and read back on the other host
    let pd = ctx.alloc_pd().unwrap();
    let mr = ctx.reg_mr(pd, 4096, Access::LOCAL_WRITE).unwrap();
    ctx.mr_write(mr.id, 100, b"across the wire").unwrap();
    let mut back = [0u8; 15];
    ctx.mr_read(mr.id, 100, &mut back).unwrap();
    assert_eq!(&back, b"across the wire");
    // an error keeps its errno and its reason
    let (staging, attrs) = srq_attrs(&ctx, &provider);
    let bad = NvmfSrqAttrs {
        max_io_sz: 0,
        ..attrs.clone()
    };
    match provider.create_srq(pd, &bad) {
        Err(OffloadError::Invalid(field)) => assert!(field.contains("max_io_sz"), "{field}"),
        other => panic!("an SRQ of max_io_sz 0 was not refused with EINVAL: {other:?}"),
    }
    let srq = provider.create_srq(pd, &attrs).expect("a valid SRQ");
    // a backend controller made on the target host, its counters read from here
    let len = BackendCall::rings_len(attrs.nvme_queue_depth, 1);
    let rings = ctx.reg_mr(pd, len, Access::LOCAL_WRITE).unwrap();
    let call = BackendCall::Create {
        pd,
        srq: attrs,
        staging,
        rings,
        nsqs: 1,
        ini: (0, 0),
        namespaces: vec![harness::remote::NsSource::Ram {
            nsid: 1,
            format: harness::backend::emulated::LbaFormat::L4096,
            blocks: 16,
        }],
    };
    let BackendReply::Created {
        attrs: ctrl,
        backend,
    } = BackendLink::call(&*d, &call)
    else {
        panic!("no backend controller made")
    };
    let handle = provider
        .create_nvme_ctrl(srq.handle, &ctrl)
        .expect("the device takes the controller");
    match BackendLink::call(&*d, &BackendCall::Counters { backend }) {
        BackendReply::Counters(c) => assert_eq!(c.commands, 0, "{c:?}"),
        other => panic!("no counters: {other:?}"),
    }
    assert!(matches!(
        BackendLink::call(&*d, &BackendCall::Counters { backend: 99 }),
        BackendReply::Failed(m) if m.contains("99")
    ));
    provider.remove_nvme_ctrl(srq.handle, handle).unwrap();
    provider.destroy_srq(srq.handle).unwrap();
    assert!(provider.poll_event().is_none(), "no event was raised");
    let trace = d.close().expect("close-device");
    assert!(
        trace.iter().all(|l| l.starts_with("backend")),
        "only the backend's own lines come back: {trace:?}"
    );
    assert_eq!(d.close(), Ok(trace), "closing again gives the same outcome");
    // closed: the device's calls are refused, a target can start
    assert!(matches!(
        BackendLink::call(&*d, &BackendCall::Counters { backend }),
        BackendReply::Failed(m) if m.contains("no device is open")
    ));
    t.start(&config(), &full(), &Quirks::none())
        .await
        .expect("a target starts once the device is closed");
    t.stop().await.expect("stop");
}

#[tokio::test]
async fn a_runner_that_vanishes_with_the_device_open_leaves_it_free() {
    let lab = LabSecret::new("vanish");
    let mut p = spawn_target(Some(&lab));
    for round in 0..3 {
        let t = Arc::new(runner(&p, &lab.security()).await.expect("hello"));
        let d = RemoteDevice::open(t.clone(), &full(), &Quirks::none())
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let (ctx, provider) = d.faces().unwrap();
        let (_, attrs) = srq_attrs(&ctx, &provider);
        let pd = ctx.alloc_pd().unwrap();
        provider.create_srq(pd, &attrs).expect("an SRQ");
        // gone without a word: the connection's thread ends with the last handle
        drop((ctx, provider, d, t));
        assert!(p.alive(), "round {round}: the target host's process died");
    }
    // and a target still starts on the same device
    let t = runner(&p, &lab.security()).await.expect("hello");
    t.start(&config(), &full(), &Quirks::none())
        .await
        .expect("start after vanished runners");
    t.stop().await.expect("stop");
}
