//! A device to test the offload engine on its own: an NVMe-oF SRQ, one emulated backend
//! controller with one namespace mapped as frontend nsid [`FE_NSID`], and one host queue
//! connected to a QP of that SRQ ([`rig`]). The pieces it is built from ([`srq_attrs`],
//! [`ctrl_attrs`], [`spawn_backend`], [`connect_queue`]) also build the same device from
//! any context and provider, such as a plugin's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use harness::api::{
    CtrlHandle, MemRef, NsMapping, NvmeCtrlAttrs, NvmfSrq, NvmfSrqAttrs, OffloadEvent,
    OffloadProvider, Profile, QpNvmfFlags,
};
use harness::backend::emulated::{
    BackendController, ControllerConfig, DmaRegion, LbaFormat, Namespace, PciBus,
};
use harness::fabric::sim::{SimFabric, SIM0_ADDR};
use harness::fabric::{
    wait, Access, CmEventKind, ConnParam, CqId, DeviceContext, Fabric, MrInfo, PdId, QpId, QpInit,
    SrqId, SrqInit,
};
use harness::initiator::connect::{cm_establish, CmOptions};
use harness::initiator::software::connect_through_software;
use harness::initiator::{HostQueue, IoQueue, QueueSpec};
use harness::trace::{Names, Recorder, TracedContext, TracedProvider};
use harness::wire::CmAcceptRepr;

use crate::engine::Engine;
use crate::quirks::Quirks;

/// Bound of every wait of an engine rig.
pub const BOUND: Duration = Duration::from_secs(5);
/// Depth of the backend controller's queues and of the SRQ's NVMe queue.
pub const DEPTH: u32 = 32;
/// The frontend nsid the rig maps the backend's namespace 1 as.
pub const FE_NSID: u32 = 7;
/// The target's listening port.
pub const PORT: u16 = 4420;

/// The engine, its device, and one host queue connected to it.
pub struct EngineRig {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Its device context (traced when the rig records a trace).
    pub ctx: Arc<dyn DeviceContext>,
    /// The NVMe-oF SRQ.
    pub srq: NvmfSrq,
    /// The backend controller's handle.
    pub ctrl: CtrlHandle,
    /// The emulated backend controller.
    pub backend: Arc<BackendController>,
    /// The host's I/O queue (qid 1), on [`FE_NSID`].
    pub io: IoQueue,
    /// The target's QP of that queue.
    pub target_qp: QpId,
    /// The target's CQ of that QP.
    pub target_cq: CqId,
    _fabric: Arc<SimFabric>,
}

impl EngineRig {
    /// The engine's next event, waited for within [`BOUND`]; panics when none comes.
    pub async fn next_event(&self) -> OffloadEvent {
        tokio::time::timeout(BOUND, self.engine.next_event())
            .await
            .expect("an engine event within the bound")
    }
}

/// Builds the device, a namespace of `format` with 4096 blocks, and one queue, offloaded
/// when `offload`.
pub async fn rig(
    seed: u64,
    profile: &str,
    format: LbaFormat,
    quirks: Quirks,
    offload: bool,
) -> EngineRig {
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
) -> EngineRig {
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
    let attrs = srq_attrs(&caps, &staging, caps.max_ioccsz.min(68));
    let srq = prov.create_srq(pd, &attrs).unwrap();
    let rings = ctx.reg_mr(pd, 4096, Access::LOCAL_WRITE).unwrap();
    let ctrl_attrs = ctrl_attrs(&rings, 1_000_000);
    let backend = spawn_backend(&ctx, &ctrl_attrs, &[staging, rings], &attrs.staging_buf);
    backend
        .add_namespace(Namespace::ram(1, format, 4096).unwrap())
        .unwrap();
    bus.attach(ctrl_attrs.sqdb.mr, ctrl_attrs.sqdb.addr, backend.clone());
    let ctrl = prov.create_nvme_ctrl(srq.handle, &ctrl_attrs).unwrap();
    prov.map_nsid(
        ctrl,
        &NsMapping {
            fe_nsid: FE_NSID,
            nvme_nsid: 1,
            lba_data_size: format.lba_data_size(),
        },
    )
    .unwrap();

    let host = match &trace {
        Some((rec, names)) => TracedContext::new(
            fabric.open("sim1").unwrap(),
            "host",
            rec.clone(),
            names.clone(),
        ) as Arc<dyn DeviceContext>,
        None => fabric.open("sim1").unwrap(),
    };
    let (queue, target_qp, target_cq, _) =
        connect_queue(&ctx, pd, srq.srq, host, QueueSpec::io(1, 32, 1024)).await;
    if offload {
        prov.qp_set_nvmf(target_qp, QpNvmfFlags::ENABLE).unwrap();
    }
    EngineRig {
        engine,
        ctx,
        srq,
        ctrl,
        backend,
        io: IoQueue::new(queue, FE_NSID, format.lba_data_size()),
        target_qp,
        target_cq,
        _fabric: fabric,
    }
}

/// The attributes of an NVMe-oF SRQ of 64 receives that offloads every op the caps allow,
/// with capsules of `ioccsz` 16-byte units, a [`DEPTH`]-deep NVMe queue and the whole of
/// `staging` as its staging buffer.
pub fn srq_attrs(caps: &harness::api::NvmfCaps, staging: &MrInfo, ioccsz: u32) -> NvmfSrqAttrs {
    NvmfSrqAttrs {
        rq: SrqInit::new(64),
        offload_ops: caps.allowed_offload_ops(),
        max_namespaces: 4,
        nvme_log_page_sz: 0,
        ioccsz,
        icdoff: 0,
        max_io_sz: caps.max_io_sz,
        nvme_queue_depth: DEPTH,
        staging_buf: MemRef::of(staging, 0, staging.len),
    }
}

/// A backend controller's attributes in one 4 KiB `rings` MR: the SQ at 0, the CQ at
/// 2048, the SQ and CQ doorbells at 3072 and 3076, both starting at 0.
pub fn ctrl_attrs(rings: &MrInfo, cmd_timeout_us: u32) -> NvmeCtrlAttrs {
    NvmeCtrlAttrs {
        sq_buf: MemRef::of(rings, 0, u64::from(DEPTH) * 64),
        cq_buf: MemRef::of(rings, 2048, u64::from(DEPTH) * 16),
        sqdb: MemRef::of(rings, 3072, 4),
        cqdb: MemRef::of(rings, 3076, 4),
        sqdb_ini: 0,
        cqdb_ini: 0,
        cmd_timeout_us,
        extra_sqs: vec![],
    }
}

/// An emulated backend controller with those rings, on `ctx`'s memory `mrs`, that may DMA
/// into `staging` (which must lie in one of `mrs`); attach it to a bus at its SQ doorbell.
pub fn spawn_backend(
    ctx: &Arc<dyn DeviceContext>,
    attrs: &NvmeCtrlAttrs,
    mrs: &[MrInfo],
    staging: &MemRef,
) -> Arc<BackendController> {
    let staging_mr = mrs
        .iter()
        .find(|m| m.id == staging.mr)
        .expect("the staging buffer is in one of the MRs");
    let cfg = ControllerConfig::from_attrs(
        attrs,
        DEPTH as u16,
        harness::api::check::mr_table(mrs),
        vec![DmaRegion::from_mem(staging, staging_mr).expect("staging inside its MR")],
    )
    .unwrap();
    Arc::new(BackendController::spawn(ctx.clone(), cfg).unwrap())
}

/// Listens on sim0's [`PORT`], connects a host queue of `spec` from `host`, accepts it on
/// a QP of the NVMe-oF SRQ `srq`, and has its Connect answered by software through the
/// device (the RFC's order, before offload is enabled): the queue, the target's QP and
/// CQ, and the controller ID.
pub async fn connect_queue(
    ctx: &Arc<dyn DeviceContext>,
    pd: PdId,
    srq: SrqId,
    host: Arc<dyn DeviceContext>,
    spec: QueueSpec,
) -> (HostQueue, QpId, CqId, u16) {
    let addr = SocketAddr::new(SIM0_ADDR.into(), PORT);
    ctx.cm_listen(addr).unwrap();
    let hpd = host.alloc_pd().unwrap();
    let mut queue = HostQueue::create(host, hpd, spec, BOUND).unwrap();
    let opts = CmOptions::for_queue(&queue);
    let target = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let ev = wait::cm_event(ctx.as_ref(), BOUND).await.unwrap();
            assert!(matches!(ev.kind, CmEventKind::ConnectRequest { .. }));
            let cq = ctx.create_cq(256).unwrap();
            let qp = ctx.create_qp(pd, QpInit::on_cq(cq, Some(srq))).unwrap();
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
    let (qp, cq) = target.await.unwrap();
    let cntlid = connect_through_software(&mut queue, ctx, (qp, cq, pd), srq, 1, BOUND)
        .await
        .unwrap();
    (queue, qp, cq, cntlid)
}
