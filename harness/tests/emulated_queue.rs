//! The queue protocol: phase tags, round-robin, CQ flow control, DMA mapping, doorbells.

mod emulated_rig;

use std::time::Duration;

use emulated_rig::{rig, Opts};
use harness::backend::emulated::{
    backend_sqe, BackendController, ControllerConfig, DmaRegion, LbaFormat, Namespace, SqConfig,
};
use harness::backend::Span;
use harness::fabric::Access;
use harness::wire::{CqeRepr, RwCommand, SqeCommand, Status, CQE_LEN};

fn with_ns(o: Opts) -> emulated_rig::Rig {
    let r = rig(o);
    r.ctrl
        .add_namespace(Namespace::ram(1, LbaFormat::L512, 64).unwrap())
        .unwrap();
    r
}

/// `with_ns` with a queue depth of `depth` and the rest of the defaults.
fn with_ns_depth(depth: u16) -> emulated_rig::Rig {
    with_ns(Opts {
        depth,
        ..Opts::default()
    })
}

fn raw_cqe(r: &emulated_rig::Rig, slot: u64) -> CqeRepr {
    let mut b = [0u8; CQE_LEN];
    r.ctx
        .mr_read(r.cq_mr.id, slot * CQE_LEN as u64, &mut b)
        .unwrap();
    CqeRepr::parse_bytes(&b).unwrap()
}

#[tokio::test(start_paused = true)]
async fn phase_flips_on_every_wrap() {
    let depth = 4u16;
    let mut r = with_ns_depth(depth);
    let mut k = 0u64;
    for round in 0..7 {
        let n = 1 + round % 3;
        let cids: Vec<u16> = (0..n).map(|_| r.submit(1, SqeCommand::Flush, 0)).collect();
        let got = r.collect(n).await;
        for (c, cid) in got.iter().zip(&cids) {
            assert_eq!(c.cid, *cid);
            assert_eq!(c.status, Status::SUCCESS);
            assert_eq!(c.phase, (k / u64::from(depth)) % 2 == 0, "entry {k}");
            assert_eq!(c.sq_id, 1);
            k += 1;
        }
    }
    assert!(k > 3 * u64::from(depth));
    assert_eq!(r.ctrl.counters().completions, k);
    // The last SQ head reported is where the controller fetched to.
    assert_eq!(u64::from(r.sq[0].tail()), k % u64::from(depth));
}

#[tokio::test(start_paused = true)]
async fn nonzero_initial_doorbells() {
    let mut r = with_ns(Opts {
        depth: 8,
        sq_ini: 5,
        cq_ini: 6,
        ..Opts::default()
    });
    assert_eq!(r.cq.head(), 6);
    let cids: Vec<u16> = (0..5).map(|_| r.submit(1, SqeCommand::Flush, 0)).collect();
    let got = r.collect(5).await;
    assert_eq!(got.iter().map(|c| c.cid).collect::<Vec<_>>(), cids);
    // slots 6, 7 in phase 1, then 0, 1, 2 in phase 0
    let phases: Vec<bool> = got.iter().map(|c| c.phase).collect();
    assert_eq!(phases, [true, true, false, false, false]);
    assert_eq!(got.last().unwrap().sq_head, 2);
    assert_eq!(raw_cqe(&r, 6).cid, cids[0]);
}

#[tokio::test(start_paused = true)]
async fn round_robin_across_two_sqs() {
    let mut r = with_ns(Opts {
        sqs: 2,
        ..Opts::default()
    });
    // Fill both SQs before the controller runs (current-thread runtime: no await between).
    let a: Vec<u16> = (0..4)
        .map(|_| r.submit_to(0, 1, SqeCommand::Flush, 0))
        .collect();
    let b: Vec<u16> = (0..2)
        .map(|_| r.submit_to(1, 1, SqeCommand::Flush, 0))
        .collect();
    let got = r.collect(6).await;
    let order: Vec<(u16, u16)> = got.iter().map(|c| (c.sq_id, c.cid)).collect();
    assert_eq!(
        order,
        [
            (1, a[0]),
            (2, b[0]),
            (1, a[1]),
            (2, b[1]),
            (1, a[2]),
            (1, a[3])
        ]
    );
    assert_eq!(got[5].sq_head, 4);
    assert_eq!(got[3].sq_head, 2);
}

#[tokio::test(start_paused = true)]
async fn cq_full_waits_for_head_doorbell() {
    let depth = 4u16;
    let mut r = with_ns_depth(depth);
    let first: Vec<u16> = (0..3).map(|_| r.submit(1, SqeCommand::Flush, 0)).collect();
    // Consume nothing yet: let the controller fill the CQ (3 entries = depth - 1).
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(r.ctrl.counters().completions, 3);
    let second: Vec<u16> = (0..3).map(|_| r.submit(1, SqeCommand::Flush, 0)).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let k = r.ctrl.counters();
    assert_eq!(k.commands, 6, "all fetched");
    assert_eq!(k.completions, 3, "none posted while the CQ is full");
    for (slot, cid) in first.iter().enumerate() {
        let c = raw_cqe(&r, slot as u64);
        assert_eq!((c.cid, c.phase), (*cid, true), "slot {slot} intact");
    }
    assert_eq!(raw_cqe(&r, 3).cid, 0, "the free slot stays free");
    // Reading without ringing does not release anything.
    let got = r.cq.drain().unwrap();
    assert_eq!(got.iter().map(|c| c.cid).collect::<Vec<_>>(), first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.ctrl.counters().completions, 3);
    // Release: the rest arrives, wrapping with phase 0.
    r.cq.release().unwrap();
    let got = r.collect(3).await;
    assert_eq!(got.iter().map(|c| c.cid).collect::<Vec<_>>(), second);
    assert_eq!(
        got.iter().map(|c| c.phase).collect::<Vec<_>>(),
        [true, false, false]
    );
}

#[tokio::test(start_paused = true)]
async fn dma_outside_mapped_regions_is_data_transfer_error() {
    let mut r = with_ns(Opts::default());
    let other = r.ctx.reg_mr(r.pd, 4096, Access::LOCAL_WRITE).unwrap();
    // Buffer in an unmapped region.
    let cid = r.cid();
    let sqe = backend_sqe(cid, 1, SqeCommand::Read(RwCommand::new(0, 1)), other.addr);
    r.submit_raw(&sqe);
    let c = r.collect(1).await.remove(0);
    assert_eq!((c.cid, c.status), (cid, Status::DATA_TRANSFER_ERROR));
    // Buffer straddling the end of the staging buffer (write: data is read first).
    let c = r
        .run(
            1,
            SqeCommand::Write(RwCommand::new(0, 2)),
            emulated_rig::STAGING - 512,
        )
        .await;
    assert_eq!(c.status, Status::DATA_TRANSFER_ERROR);
    // Address 0.
    let sqe = backend_sqe(77, 1, SqeCommand::Write(RwCommand::new(0, 1)), 0);
    r.submit_raw(&sqe);
    assert_eq!(r.collect(1).await[0].status, Status::DATA_TRANSFER_ERROR);
    let k = r.ctrl.counters();
    assert_eq!((k.dma_faults, k.errors), (3, 3));
    // A mapped buffer still works, and nothing was written by the failed write.
    let c = r.run(1, SqeCommand::Read(RwCommand::new(0, 1)), 0).await;
    assert_eq!(c.status, Status::SUCCESS);
    assert!(r.get(0, 512).iter().all(|&b| b == 0));
}

#[tokio::test(start_paused = true)]
async fn bad_sqe_and_bad_doorbell() {
    let mut r = with_ns(Opts::default());
    // Reserved bits set in CDW0: Invalid Field.
    let mut raw = backend_sqe(9, 1, SqeCommand::Flush, 0).to_bytes().unwrap();
    raw[1] |= 0x04;
    r.sq[0].push_raw(&raw).unwrap();
    r.sq[0].ring().unwrap();
    let c = r.collect(1).await.remove(0);
    assert_eq!((c.cid, c.status), (9, Status::INVALID_FIELD));
    // A tail beyond the depth is ignored.
    r.ctrl.ring_sq_doorbell(0, 1000).unwrap();
    let got = r.collect_within(1, Duration::from_millis(50)).await;
    assert!(got.is_empty());
    assert!(r.ctrl.counters().bad_doorbells > 0);
    assert!(r.ctrl.ring_sq_doorbell(5, 0).is_err());
}

#[tokio::test(start_paused = true)]
async fn config_from_api_attrs() {
    use harness::api::{BackendSq, MemRef, NvmeCtrlAttrs};
    let fabric = harness::fabric::sim::SimFabric::new(1);
    let ctx = harness::fabric::Fabric::open(fabric.as_ref(), "sim0").unwrap();
    let pd = ctx.alloc_pd().unwrap();
    let q = ctx.reg_mr(pd, 8192, Access::LOCAL_WRITE).unwrap();
    let st = ctx.reg_mr(pd, 65536, Access::LOCAL_WRITE).unwrap();
    let attrs = NvmeCtrlAttrs {
        sq_buf: MemRef::of(&q, 0, 1024),
        cq_buf: MemRef::of(&q, 1024, 256),
        sqdb: MemRef::of(&q, 2048, 4),
        cqdb: MemRef::of(&q, 2052, 4),
        sqdb_ini: 1,
        cqdb_ini: 2,
        cmd_timeout_us: 0,
        extra_sqs: vec![BackendSq {
            buf: MemRef::of(&q, 4096, 1024),
            db: MemRef::of(&q, 2056, 4),
            db_ini: 0,
        }],
    };
    let mrs = [q, st];
    let mr_of = harness::api::check::mr_table(&mrs);
    let dma = vec![DmaRegion::from_mem(&MemRef::of(&st, 4096, 8192), &st).unwrap()];
    let cfg = ControllerConfig::from_attrs(&attrs, 16, &mr_of, dma.clone()).unwrap();
    assert_eq!(cfg.sqs.len(), 2);
    assert_eq!(
        cfg.sqs[1],
        SqConfig {
            ring: Span::new(&q, 4096, 1024),
            doorbell: Span::new(&q, 2056, 4),
            tail_ini: 0
        }
    );
    assert_eq!(cfg.cq_head_ini, 2);
    // Too deep for the rings.
    assert!(ControllerConfig::from_attrs(&attrs, 32, &mr_of, dma.clone()).is_err());
    let ctrl = BackendController::spawn(ctx.clone(), cfg).unwrap();
    let mut b = [0u8; 4];
    ctx.mr_read(q.id, 2048, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 1, "initial SQ tail written");
    ctx.mr_read(q.id, 2052, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 2, "initial CQ head written");
    // The staging buffer mapping is what DMA may touch: the start of the MR is outside.
    ctrl.add_namespace(Namespace::ram(1, LbaFormat::L512, 8).unwrap())
        .unwrap();
    let mut w = ctrl.sq_writer(0).unwrap();
    let mut rd = ctrl.cq_reader();
    w.submit(&backend_sqe(
        1,
        1,
        SqeCommand::Read(RwCommand::new(0, 1)),
        st.addr,
    ))
    .unwrap();
    w.submit(&backend_sqe(
        2,
        1,
        SqeCommand::Read(RwCommand::new(0, 1)),
        st.addr + 4096,
    ))
    .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        tokio::time::timeout(Duration::from_secs(1), ctrl.wait_completion())
            .await
            .unwrap();
        got.extend(rd.drain().unwrap());
    }
    rd.release().unwrap();
    assert_eq!(got[0].status, Status::DATA_TRANSFER_ERROR);
    assert_eq!(got[1].status, Status::SUCCESS);
}
