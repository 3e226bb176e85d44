//! A device to test the engine on its own: an NVMe-oF SRQ, one backend controller with
//! one namespace mapped as fe_nsid 7, and one host queue connected to a QP of that SRQ.
//! Each test binary uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use harness::api::{
    MemRef, NsMapping, NvmeCtrlAttrs, NvmfSrq, NvmfSrqAttrs, OffloadProvider, Profile, QpNvmfFlags,
};
use harness::backend::emulated::PciBus;
use harness::backend::emulated::{
    BackendController, ControllerConfig, DmaRegion, LbaFormat, Namespace,
};
use harness::fabric::sim::{SimFabric, SIM0_ADDR};
use harness::fabric::{
    wait, Access, CmEventKind, ConnParam, DeviceContext, Fabric, QpCap, QpInit, SrqInit,
};
use harness::initiator::connect::{cm_establish, CmOptions};
use harness::initiator::software::connect_through_software;
use harness::initiator::{HostQueue, IoQueue, QueueSpec};
use harness::trace::{Names, Recorder, TracedContext, TracedProvider};
use harness::wire::CmAcceptRepr;
use reference_target::engine::Engine;
use reference_target::quirks::Quirks;

pub const BOUND: Duration = Duration::from_secs(5);
pub const DEPTH: u32 = 32;

pub struct Rig {
    pub engine: Arc<Engine>,
    pub ctx: Arc<dyn DeviceContext>,
    pub srq: NvmfSrq,
    pub ctrl: harness::api::CtrlHandle,
    pub backend: Arc<BackendController>,
    pub io: IoQueue,
    pub target_qp: harness::fabric::QpId,
    pub target_cq: harness::fabric::CqId,
    _fabric: Arc<SimFabric>,
}

/// Builds the device, a namespace of `format` with 2048 blocks, and one offloaded queue.
pub async fn rig(
    seed: u64,
    profile: &str,
    format: LbaFormat,
    quirks: Quirks,
    offload: bool,
) -> Rig {
    rig_traced(seed, profile, format, quirks, offload, None).await
}

/// As [`rig`], recording host, target and device into `trace` when given.
pub async fn rig_traced(
    seed: u64,
    profile: &str,
    format: LbaFormat,
    quirks: Quirks,
    offload: bool,
    trace: Option<(Recorder, Names)>,
) -> Rig {
    let fabric = SimFabric::new(seed);
    let caps = Profile::builtin(profile).unwrap().caps;
    let bus = PciBus::new();
    let engine = Engine::new(
        fabric.open("sim0").unwrap(),
        caps.clone(),
        quirks,
        bus.clone(),
    );
    let (ctx, prov): (Arc<dyn DeviceContext>, Arc<dyn OffloadProvider>) = match &trace {
        Some((rec, names)) => (
            TracedContext::new(engine.context(), "target", rec.clone(), names.clone()),
            TracedProvider::new(
                engine.provider(),
                "device",
                "target",
                rec.clone(),
                names.clone(),
            ),
        ),
        None => (engine.context(), engine.provider()),
    };
    let pd = ctx.alloc_pd().unwrap();
    let staging_len = caps.min_staging_buf_size.max(1 << 20);
    let staging = ctx.reg_mr(pd, staging_len, Access::LOCAL_WRITE).unwrap();
    let ops = caps.allowed_offload_ops();
    let attrs = NvmfSrqAttrs {
        rq: SrqInit {
            max_wr: 64,
            max_sge: 1,
            srq_limit: 0,
        },
        offload_ops: ops,
        max_namespaces: 4,
        nvme_log_page_sz: 0,
        ioccsz: caps.max_ioccsz.min(68),
        icdoff: 0,
        max_io_sz: caps.max_io_sz,
        nvme_queue_depth: DEPTH,
        staging_buf: MemRef::of(&staging, 0, staging_len),
    };
    let srq = prov.create_srq(pd, &attrs).unwrap();
    let rings = ctx.reg_mr(pd, 4096, Access::LOCAL_WRITE).unwrap();
    let ctrl_attrs = NvmeCtrlAttrs {
        sq_buf: MemRef::of(&rings, 0, u64::from(DEPTH) * 64),
        cq_buf: MemRef::of(&rings, 2048, u64::from(DEPTH) * 16),
        sqdb: MemRef::of(&rings, 3072, 4),
        cqdb: MemRef::of(&rings, 3076, 4),
        sqdb_ini: 0,
        cqdb_ini: 0,
        cmd_timeout_us: 1_000_000,
        extra_sqs: vec![],
    };
    let mrs = [staging, rings];
    let cfg = ControllerConfig::from_attrs(
        &ctrl_attrs,
        DEPTH as u16,
        harness::api::check::mr_table(&mrs),
        vec![DmaRegion::from_mem(&attrs.staging_buf, &staging).unwrap()],
    )
    .unwrap();
    let backend = Arc::new(BackendController::spawn(ctx.clone(), cfg).unwrap());
    backend
        .add_namespace(Namespace::ram(1, format, 4096).unwrap())
        .unwrap();
    bus.attach(ctrl_attrs.sqdb.mr, ctrl_attrs.sqdb.addr, backend.clone());
    let ctrl = prov.create_nvme_ctrl(srq.handle, &ctrl_attrs).unwrap();
    prov.map_nsid(
        ctrl,
        &NsMapping {
            fe_nsid: 7,
            nvme_nsid: 1,
            lba_data_size: format.lba_data_size(),
        },
    )
    .unwrap();

    // Host queue and the connection.
    let addr = SocketAddr::new(SIM0_ADDR.into(), 4420);
    ctx.cm_listen(addr).unwrap();
    let host = match &trace {
        Some((rec, names)) => TracedContext::new(
            fabric.open("sim1").unwrap(),
            "host",
            rec.clone(),
            names.clone(),
        ) as Arc<dyn DeviceContext>,
        None => fabric.open("sim1").unwrap(),
    };
    let hpd = host.alloc_pd().unwrap();
    let mut queue = HostQueue::create(host, hpd, QueueSpec::io(1, 32, 1024), BOUND).unwrap();
    let opts = CmOptions::for_queue(&queue);
    let target = {
        let ctx = ctx.clone();
        let srq_id = srq.srq;
        tokio::spawn(async move {
            let ev = wait::cm_event(ctx.as_ref(), BOUND).await.unwrap();
            assert!(matches!(ev.kind, CmEventKind::ConnectRequest { .. }));
            let cq = ctx.create_cq(256).unwrap();
            let qp = ctx
                .create_qp(
                    pd,
                    QpInit {
                        send_cq: cq,
                        recv_cq: cq,
                        srq: Some(srq_id),
                        cap: QpCap::default(),
                    },
                )
                .unwrap();
            let accept = CmAcceptRepr {
                recfmt: 0,
                crqsize: 32,
            };
            let param = ConnParam {
                private_data: accept.to_bytes().to_vec(),
                responder_resources: 0,
                initiator_depth: 16,
                rnr_retry_count: 7,
            };
            ctx.cm_accept(ev.conn, qp.id, &param).unwrap();
            (qp.id, cq)
        })
    };
    cm_establish(&mut queue, addr, &opts, BOUND).await.unwrap();
    let (target_qp, target_cq) = target.await.unwrap();
    // The RFC's order: the Connect reaches software through the device, then offload.
    connect_through_software(
        &mut queue,
        &ctx,
        (target_qp, target_cq, pd),
        srq.srq,
        1,
        BOUND,
    )
    .await
    .unwrap();
    if offload {
        prov.qp_set_nvmf(target_qp, QpNvmfFlags::ENABLE).unwrap();
    }
    Rig {
        engine,
        ctx,
        srq,
        ctrl,
        backend,
        io: IoQueue::new(queue, 7, format.lba_data_size()),
        target_qp,
        target_cq,
        _fabric: fabric,
    }
}

pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A small seeded generator (SplitMix64) for tests that pick moments, kinds and ranges
/// from a seed: the same seed gives the same run.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }
}

/// Writes `data` at `slba` on `io` (keyed), reads it back and compares: the check that a
/// queue is still served. The error names what failed.
pub async fn write_read_compare(io: &mut IoQueue, slba: u64, data: &[u8]) -> Result<(), String> {
    use harness::initiator::DataMode;
    use harness::wire::Status;
    let w = io
        .write(slba, data, DataMode::Keyed)
        .await
        .map_err(|e| format!("write: {e}"))?;
    if w.cqe.status != Status::SUCCESS {
        return Err(format!("write status {}", w.cqe.status));
    }
    let blocks = (data.len() as u32).div_ceil(io.lba_size());
    let r = io
        .read(slba, blocks, DataMode::Keyed)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if r.cqe.status != Status::SUCCESS {
        return Err(format!("read status {}", r.cqe.status));
    }
    if r.data != data {
        return Err("data read back differs from data written".into());
    }
    Ok(())
}
