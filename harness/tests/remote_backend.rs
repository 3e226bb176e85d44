//! The emulated backends as messages (two-host mode, issue 19): a `BackendHost` on a
//! simulated device, reached through JSON text (`JsonBackendLink`), makes controllers the
//! bus finds, counts, takes faults, holds media, hands a namespace with its data to a new
//! controller, and refuses what it cannot do with a message naming the field or the
//! controller; every call and reply survives JSON.

use std::sync::Arc;

use harness::api::{MemRef, NvmfSrqAttrs, OffloadOps};
use harness::backend::emulated::{CmdMatch, Counters, Fault, LbaFormat, PciBus};
use harness::fabric::sim::SimFabric;
use harness::fabric::{Access, Fabric, SrqInit};
use harness::remote::{
    BackendCall, BackendHost, BackendId, BackendLink, BackendReply, JsonBackendLink, NsSource,
};

const BS: usize = 4096;

struct Rig {
    link: JsonBackendLink,
    ctx: Arc<dyn harness::fabric::DeviceContext>,
    bus: Arc<PciBus>,
    pd: harness::fabric::PdId,
    srq: NvmfSrqAttrs,
    staging: harness::fabric::MrInfo,
}

fn rig() -> Rig {
    let fabric = SimFabric::new(1);
    let ctx = fabric.open("sim0").unwrap();
    let pd = ctx.alloc_pd().unwrap();
    let staging = ctx.reg_mr(pd, 1 << 20, Access::LOCAL_WRITE).unwrap();
    let srq = NvmfSrqAttrs {
        rq: SrqInit::new(64),
        offload_ops: OffloadOps::READ_WRITE_FLUSH,
        max_namespaces: 8,
        nvme_log_page_sz: 0,
        ioccsz: 4,
        icdoff: 0,
        max_io_sz: 128 << 10,
        nvme_queue_depth: 32,
        staging_buf: MemRef::of(&staging, 0, 1 << 20),
    };
    let bus = PciBus::new();
    Rig {
        link: JsonBackendLink(BackendHost::new(ctx.clone(), bus.clone(), None)),
        ctx,
        bus,
        pd,
        srq,
        staging,
    }
}

impl Rig {
    /// A region for the rings of `nsqs` SQs, as a caller registers it.
    fn rings(&self, nsqs: u32) -> harness::fabric::MrInfo {
        let len = BackendCall::rings_len(self.srq.nvme_queue_depth, nsqs.clamp(1, 64));
        self.ctx.reg_mr(self.pd, len, Access::LOCAL_WRITE).unwrap()
    }

    fn create(&self, nsqs: u32, namespaces: Vec<NsSource>) -> BackendReply {
        self.link.call(&BackendCall::Create {
            pd: self.pd,
            srq: self.srq.clone(),
            staging: self.staging,
            rings: self.rings(nsqs),
            nsqs,
            ini: (0, 0),
            namespaces,
        })
    }

    fn made(&self, namespaces: Vec<NsSource>) -> (harness::api::NvmeCtrlAttrs, BackendId) {
        match self.create(1, namespaces) {
            BackendReply::Created { attrs, backend } => (attrs, backend),
            other => panic!("not created: {other:?}"),
        }
    }
}

fn ram(blocks: u64) -> NsSource {
    NsSource::Ram {
        nsid: 1,
        format: LbaFormat::L4096,
        blocks,
    }
}

fn failed(r: BackendReply, needle: &str) {
    match r {
        BackendReply::Failed(why) => assert!(why.contains(needle), "{why:?} lacks {needle:?}"),
        other => panic!("expected a failure naming {needle:?}, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn controllers_are_made_found_looked_at_and_released_through_messages() {
    let r = rig();
    let (attrs, a) = r.made(vec![ram(64)]);
    let (attrs_b, b) = r.made(vec![ram(16)]);
    assert_ne!(a, b);
    // the bus finds each where the device will look, and the host names it
    assert!(r.bus.find(attrs.sqdb.mr, attrs.sqdb.addr).is_some());
    assert_eq!(
        r.link.call(&BackendCall::Find {
            attrs: attrs.clone()
        }),
        BackendReply::Found(Some(a))
    );
    assert_eq!(
        r.link.call(&BackendCall::Find { attrs: attrs_b }),
        BackendReply::Found(Some(b))
    );
    assert_eq!(
        r.link.call(&BackendCall::Counters { backend: a }),
        BackendReply::Counters(Counters::default())
    );
    assert_eq!(
        r.link.call(&BackendCall::Blocks { backend: b }),
        BackendReply::Blocks(Some(16))
    );

    // media behind the device's back
    let data: Vec<u8> = (0..2 * BS).map(|i| (i % 251) as u8).collect();
    let write = BackendCall::WriteBlocks {
        backend: a,
        slba: 3,
        data: data.clone(),
    };
    assert_eq!(r.link.call(&write), BackendReply::Done);
    assert_eq!(
        r.link.call(&BackendCall::ReadBlock {
            backend: a,
            slba: 4
        }),
        BackendReply::Bytes(data[BS..].to_vec())
    );
    failed(
        r.link.call(&BackendCall::ReadBlock {
            backend: a,
            slba: 64,
        }),
        "reading the backend's media",
    );

    // faults go in and come out
    let stall = BackendCall::Inject {
        backend: a,
        fault: Fault::Timeout {
            on: CmdMatch::Any,
            delay: None,
        },
    };
    assert_eq!(r.link.call(&stall), BackendReply::Done);
    assert_eq!(
        r.link.call(&BackendCall::ClearFaults { backend: a }),
        BackendReply::Done
    );

    // the namespace, data and all, moves to a new controller
    let (_, c) = r.made(vec![NsSource::From { from: a, nsid: 1 }]);
    assert_eq!(
        r.link.call(&BackendCall::ReadBlock {
            backend: c,
            slba: 3
        }),
        BackendReply::Bytes(data[..BS].to_vec())
    );
    assert_eq!(
        r.link.call(&BackendCall::Blocks { backend: a }),
        BackendReply::Blocks(None),
        "the namespace left its old controller"
    );
    failed(
        r.create(1, vec![NsSource::From { from: a, nsid: 1 }]),
        "taking the namespace back",
    );

    // release: off the bus, and no number answers any more
    assert_eq!(r.link.call(&BackendCall::Release), BackendReply::Done);
    assert!(r.bus.find(attrs.sqdb.mr, attrs.sqdb.addr).is_none());
    assert_eq!(
        r.link.call(&BackendCall::Find { attrs }),
        BackendReply::Found(None)
    );
    failed(
        r.link.call(&BackendCall::Counters { backend: a }),
        &format!("backend {a}: no such controller"),
    );
}

#[tokio::test(start_paused = true)]
async fn what_the_host_cannot_do_is_refused_naming_why() {
    let r = rig();
    failed(r.create(0, vec![ram(8)]), "nsqs: 0");
    failed(r.create(65, vec![ram(8)]), "nsqs: 65");
    // the rings' region: long enough for every ring, and writable by the controller
    let need = BackendCall::rings_len(r.srq.nvme_queue_depth, 2);
    for (len, access, why) in [
        (
            need - 1,
            Access::LOCAL_WRITE,
            format!(
                "rings: a region of {} bytes, fewer than the {need}",
                need - 1
            ),
        ),
        (
            need,
            Access::REMOTE_READ,
            "rings: the region is not locally writable".to_string(),
        ),
    ] {
        let rings = r.ctx.reg_mr(r.pd, len, access).unwrap();
        let call = BackendCall::Create {
            pd: r.pd,
            srq: r.srq.clone(),
            staging: r.staging,
            rings,
            nsqs: 2,
            ini: (0, 0),
            namespaces: vec![ram(8)],
        };
        failed(r.link.call(&call), &why);
    }
    failed(
        r.create(
            1,
            vec![NsSource::Ram {
                nsid: 1,
                format: LbaFormat::new(1000, 0),
                blocks: 8,
            }],
        ),
        "namespace",
    );
    failed(
        r.create(1, vec![NsSource::From { from: 99, nsid: 1 }]),
        "backend 99: no such controller",
    );
    let (_, a) = r.made(vec![ram(1024)]);
    failed(
        r.link.call(&BackendCall::WriteBlocks {
            backend: a,
            slba: 0,
            data: vec![0; (1 << 20) + BS],
        }),
        "data:",
    );
    failed(
        r.link.call(&BackendCall::Inject {
            backend: 7,
            fault: Fault::PciError,
        }),
        "backend 7",
    );
    // and the host still serves
    assert_eq!(
        r.link.call(&BackendCall::Counters { backend: a }),
        BackendReply::Counters(Counters::default())
    );
}

#[tokio::test(start_paused = true)]
async fn a_host_of_emulated_controllers_says_so_to_every_real_controller_call() {
    let r = rig();
    // no real controller behind it: the facts say none, and every real call is refused
    // naming what asked, the reply surviving JSON
    assert_eq!(
        r.link.call(&BackendCall::RealFacts),
        BackendReply::RealFacts(None)
    );
    for (call, what) in [
        (
            BackendCall::RealInject {
                fault: harness::backend::vfio::broker::RealFault::Stall,
            },
            "real fault",
        ),
        (BackendCall::RealMediaErrorLba, "real media error"),
    ] {
        match r.link.call(&call) {
            BackendReply::Failed(why) => assert_eq!(
                why,
                format!("{what}: the backend host serves emulated controllers")
            ),
            other => panic!("{call:?} answered {other:?}"),
        }
    }
    // lifting a stall asks nothing of a host without a real controller
    assert_eq!(r.link.call(&BackendCall::RealLiftStall), BackendReply::Done);
    // and its emulated controllers are still made and reached as before
    let (_, id) = r.made(vec![NsSource::Ram {
        nsid: 1,
        format: LbaFormat::L4096,
        blocks: 8,
    }]);
    match r.link.call(&BackendCall::Blocks { backend: id }) {
        BackendReply::Blocks(Some(8)) => {}
        other => panic!("blocks: {other:?}"),
    }
}
