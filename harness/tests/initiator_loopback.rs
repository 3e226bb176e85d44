//! The NVMe-oF RDMA host (`harness::initiator`) against a tiny scripted fake target on
//! the simulated fabric: target on `sim0` 127.0.10.1:4420, host on `sim1`. Virtual time;
//! every wait is bounded.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::fabric::sim::SimFabric;
use harness::fabric::wait;
use harness::fabric::{
    Access, CmEventKind, ConnParam, CqId, DeviceContext, Fabric, MrInfo, PdId, QpCap, QpId, QpInit,
    RecvWr, SendOp, SendWr, WcOpcode, WcStatus, WorkCompletion,
};
use harness::initiator::misbehave;
use harness::initiator::{
    Command, Controller, DataMode, HostConfig, HostQueue, InitiatorError, QueueSpec, Transfer,
};
use harness::wire::{
    CmAcceptRepr, CmRejectRepr, CmRejectStatus, CmRequestRepr, ConnectDataRepr, CqeRepr,
    FabricsRepr, SglRepr, Sqe, SqeCommand, SqeRepr, Status, CNTLID_DYNAMIC, CONNECT_DATA_LEN,
    SGL_ID_IN_CAPSULE, SGL_ID_KEYED, SGL_ID_KEYED_INVALIDATE,
};

const SUBNQN: &str = "nqn.2026-11.io.nvmf-conform:fake";
const LBA: usize = 512;
const RAM: usize = 4 << 20;
const ICD: u32 = 8192;
const CNTLID: u16 = 1;
const SILENT_OPCODE: u8 = 0x18; // Keep Alive: the fake target never answers it
const TARGET_BOUND: Duration = Duration::from_secs(600);

fn target_addr() -> SocketAddr {
    "127.0.10.1:4420".parse().unwrap()
}

/// What the fake target saw, for the tests to check.
#[derive(Debug, Default)]
struct Log {
    cm_requests: Vec<CmRequestRepr>,
    connects: Vec<(u8, u16, ConnectDataRepr)>,
    sgl_ids: Vec<(u8, u8)>,
    capsules: Vec<Vec<u8>>,
}

#[derive(Clone)]
struct Target {
    ctx: Arc<dyn DeviceContext>,
    pd: PdId,
    ram: Arc<Mutex<Vec<u8>>>,
    log: Arc<Mutex<Log>>,
    cc: Arc<Mutex<u32>>,
}

/// Starts the fake target; returns its log.
async fn start_target(fabric: &Arc<SimFabric>) -> Arc<Mutex<Log>> {
    let ctx = fabric.open("sim0").unwrap();
    ctx.cm_listen(target_addr()).unwrap();
    let t = Target {
        pd: ctx.alloc_pd().unwrap(),
        ctx,
        ram: Arc::new(Mutex::new(vec![0u8; RAM])),
        log: Arc::default(),
        cc: Arc::default(),
    };
    let log = t.log.clone();
    tokio::spawn(async move { t.cm_loop().await });
    log
}

struct TQueue {
    t: Target,
    qid: u16,
    qp: QpId,
    cq: CqId,
    recv: MrInfo,
    bounce: MrInfo,
    resp: MrInfo,
    resp_slot: u64,
    stash: VecDeque<WorkCompletion>,
    /// Capsules received, modulo `entries`: the SQHD of responses.
    received: u64,
    /// Entries of the queue (HSQSIZE + 1).
    entries: u64,
}

const RECV_SLOT: u64 = 64 + ICD as u64;
const RECVS: u64 = 64;

impl Target {
    async fn cm_loop(self) {
        loop {
            let Ok(ev) = wait::cm_event(self.ctx.as_ref(), TARGET_BOUND).await else {
                return;
            };
            let CmEventKind::ConnectRequest { param, .. } = ev.kind else {
                continue;
            };
            let req = CmRequestRepr::parse_bytes(&param.private_data);
            let status = match req {
                Err(_) => Some(CmRejectStatus::InvalidLength),
                Ok(r) if r.recfmt != 0 => Some(CmRejectStatus::InvalidRecfmt),
                Ok(r) if r.qid == 0 && r.hsqsize > 31 => Some(CmRejectStatus::InvalidHsqsize),
                Ok(_) => None,
            };
            if let Some(sts) = status {
                let rej = CmRejectRepr {
                    recfmt: 0,
                    status: sts,
                }
                .to_bytes();
                self.ctx.cm_reject(ev.conn, &rej).unwrap();
                continue;
            }
            let req = req.unwrap();
            self.log.lock().unwrap().cm_requests.push(req);
            let cq = self.ctx.create_cq(1024).unwrap();
            let qp = self
                .ctx
                .create_qp(
                    self.pd,
                    QpInit {
                        send_cq: cq,
                        recv_cq: cq,
                        srq: None,
                        cap: QpCap {
                            max_send_wr: 256,
                            max_recv_wr: RECVS as u32,
                            max_send_sge: 1,
                            max_recv_sge: 1,
                        },
                    },
                )
                .unwrap();
            let acc = CmAcceptRepr {
                recfmt: 0,
                crqsize: req.hsqsize + 1,
            }
            .to_bytes();
            self.ctx
                .cm_accept(
                    ev.conn,
                    qp.id,
                    &ConnParam {
                        private_data: acc.to_vec(),
                        responder_resources: 0,
                        initiator_depth: 16,
                        rnr_retry_count: 7,
                    },
                )
                .unwrap();
            let mr = |len| self.ctx.reg_mr(self.pd, len, Access::LOCAL_WRITE).unwrap();
            let q = TQueue {
                t: self.clone(),
                qid: req.qid,
                qp: qp.id,
                cq,
                recv: mr(RECVS * RECV_SLOT),
                bounce: mr(1 << 20),
                resp: mr(256 * 16),
                resp_slot: 0,
                stash: VecDeque::new(),
                received: 0,
                entries: u64::from(req.hsqsize) + 1,
            };
            tokio::spawn(q.serve());
        }
    }
}

impl TQueue {
    async fn next_wc(&mut self) -> Option<WorkCompletion> {
        if let Some(wc) = self.stash.pop_front() {
            return Some(wc);
        }
        wait::completion(self.t.ctx.as_ref(), self.cq, TARGET_BOUND)
            .await
            .ok()
    }

    /// Posts an RDMA READ or WRITE against the host and waits for its completion.
    async fn rdma(&mut self, op: SendOp, len: u32) -> bool {
        let wr = SendWr::new(7, op, vec![self.bounce.sge(0, len)]);
        if self.t.ctx.post_send(self.qp, &wr).is_err() {
            return false;
        }
        loop {
            let Ok(wc) = wait::completion(self.t.ctx.as_ref(), self.cq, TARGET_BOUND).await else {
                return false;
            };
            if wc.wr_id == 7 && wc.opcode != WcOpcode::Recv {
                return wc.status == WcStatus::Success;
            }
            self.stash.push_back(wc);
        }
    }

    fn respond(&mut self, cid: u16, status: Status, result: u64, inv: Option<u32>) {
        let cqe = CqeRepr {
            result,
            sq_head: self.received as u16,
            sq_id: self.qid,
            cid,
            phase: false,
            status,
        };
        let off = (self.resp_slot % 256) * 16;
        self.resp_slot += 1;
        self.t
            .ctx
            .mr_write(self.resp.id, off, &cqe.to_bytes().unwrap())
            .unwrap();
        let op = match inv {
            Some(rkey) => SendOp::SendWithInv { rkey },
            None => SendOp::Send,
        };
        let mut wr = SendWr::new(8, op, vec![self.resp.sge(off, 16)]);
        wr.signaled = false;
        let _ = self.t.ctx.post_send(self.qp, &wr);
    }

    async fn serve(mut self) {
        for i in 0..RECVS {
            self.post_recv(i);
        }
        while let Some(wc) = self.next_wc().await {
            if wc.status != WcStatus::Success {
                return;
            }
            if wc.opcode != WcOpcode::Recv {
                continue;
            }
            let slot = wc.wr_id;
            let mut capsule = vec![0u8; wc.byte_len as usize];
            self.t
                .ctx
                .mr_read(self.recv.id, slot * RECV_SLOT, &mut capsule)
                .unwrap();
            self.post_recv(slot);
            self.received = (self.received + 1) % self.entries;
            self.t.log.lock().unwrap().capsules.push(capsule.clone());
            self.handle(&capsule).await;
        }
    }

    fn post_recv(&self, i: u64) {
        let wr = RecvWr {
            wr_id: i,
            sg_list: vec![self.recv.sge(i * RECV_SLOT, RECV_SLOT as u32)],
        };
        self.t.ctx.post_recv(self.qp, &wr).unwrap();
    }

    /// Gets `len` bytes of host data named by `sgl` (RDMA READ or in-capsule).
    async fn fetch(&mut self, sgl: &SglRepr, capsule: &[u8]) -> Option<Vec<u8>> {
        match *sgl {
            SglRepr::KeyedDataBlock {
                address,
                length,
                key,
                ..
            } => {
                let op = SendOp::RdmaRead {
                    remote_addr: address,
                    rkey: key,
                };
                if !self.rdma(op, length).await {
                    return None;
                }
                let mut b = vec![0u8; length as usize];
                self.t.ctx.mr_read(self.bounce.id, 0, &mut b).ok()?;
                Some(b)
            }
            SglRepr::DataBlock {
                address, length, ..
            } => capsule
                .get(64 + address as usize..64 + address as usize + length as usize)
                .map(<[u8]>::to_vec),
            _ => None,
        }
    }

    /// Puts `data` to the host region named by a keyed `sgl`.
    async fn put(&mut self, sgl: &SglRepr, data: &[u8]) -> bool {
        let SglRepr::KeyedDataBlock { address, key, .. } = *sgl else {
            return false;
        };
        self.t.ctx.mr_write(self.bounce.id, 0, data).unwrap();
        let op = SendOp::RdmaWrite {
            remote_addr: address,
            rkey: key,
        };
        self.rdma(op, data.len() as u32).await
    }

    fn inv(sgl: Option<&SglRepr>) -> Option<u32> {
        match sgl {
            Some(SglRepr::KeyedDataBlock {
                invalidate: true,
                key,
                ..
            }) => Some(*key),
            _ => None,
        }
    }

    async fn handle(&mut self, capsule: &[u8]) {
        let cid = u16::from_le_bytes([capsule[2], capsule[3]]);
        if capsule[0] == 0x7f {
            let Ok(f) = FabricsRepr::parse_bytes(capsule) else {
                return self.respond(cid, Status::INVALID_FIELD, 0, None);
            };
            match f {
                FabricsRepr::Connect(c) => {
                    let data = self.fetch(&c.sgl1, capsule).await;
                    let data = data.and_then(|d| ConnectDataRepr::parse_bytes(&d).ok());
                    let Some(data) = data else {
                        return self.respond(cid, Status::DATA_TRANSFER_ERROR, 0, None);
                    };
                    let want = if c.qid == 0 { CNTLID_DYNAMIC } else { CNTLID };
                    let ok = data.cntlid == want && data.subnqn == SUBNQN && c.qid == self.qid;
                    self.t
                        .log
                        .lock()
                        .unwrap()
                        .connects
                        .push((c.sgl1.identifier(), c.qid, data));
                    if ok {
                        self.respond(cid, Status::SUCCESS, CNTLID.into(), None)
                    } else {
                        self.respond(cid, Status::CONNECT_INVALID_PARAMETERS, 1 << 16, None)
                    }
                }
                FabricsRepr::PropertyGet(p) => {
                    let cc = *self.t.cc.lock().unwrap();
                    let v: u64 = match p.offset {
                        0x00 => 127 | (1 << 24) | (1 << 37),
                        0x08 => 0x0001_0400,
                        0x14 => cc.into(),
                        0x1c => u64::from(cc & 1) | if cc & (3 << 14) != 0 { 0b10 << 2 } else { 0 },
                        _ => return self.respond(cid, Status::INVALID_FIELD, 0, None),
                    };
                    self.respond(cid, Status::SUCCESS, v, None)
                }
                FabricsRepr::PropertySet(p) => {
                    if p.offset == 0x14 {
                        *self.t.cc.lock().unwrap() = p.value as u32;
                    }
                    self.respond(cid, Status::SUCCESS, 0, None)
                }
            }
        } else if self.qid == 0 {
            let parsed = Sqe::new_checked(capsule).and_then(|s| SqeRepr::parse_raw(&s));
            let Ok(sqe) = parsed else {
                return self.respond(cid, Status::INVALID_FIELD, 0, None);
            };
            let SqeCommand::Other { opcode, cdw } = sqe.command else {
                return self.respond(cid, Status::INVALID_OPCODE, 0, None);
            };
            match opcode {
                0x06 => {
                    let mut id = vec![0u8; 4096];
                    if cdw[0] == 1 {
                        id[78..80].copy_from_slice(&CNTLID.to_le_bytes());
                        id[516..520].copy_from_slice(&1u32.to_le_bytes());
                        id[536..540].copy_from_slice(&0x0010_0005u32.to_le_bytes());
                        id[1792..1796].copy_from_slice(&((64 + ICD) / 16).to_le_bytes());
                        id[1796..1800].copy_from_slice(&1u32.to_le_bytes());
                    } else {
                        id[0..8].copy_from_slice(&((RAM / LBA) as u64).to_le_bytes());
                        id[8..16].copy_from_slice(&((RAM / LBA) as u64).to_le_bytes());
                        id[128 + 2] = 9;
                    }
                    let sgl = *sqe.sgl1().unwrap();
                    let ok = self.put(&sgl, &id).await;
                    let st = if ok {
                        Status::SUCCESS
                    } else {
                        Status::DATA_TRANSFER_ERROR
                    };
                    self.respond(cid, st, 0, Self::inv(Some(&sgl)))
                }
                0x09 => self.respond(cid, Status::SUCCESS, u64::from(cdw[1]), None),
                SILENT_OPCODE => {}
                _ => self.respond(cid, Status::INVALID_OPCODE, 0, None),
            }
        } else {
            let Ok(sqe) = SqeRepr::parse_bytes(&capsule[..64.min(capsule.len())]) else {
                return self.respond(cid, Status::INVALID_FIELD, 0, None);
            };
            let sgl = *sqe.sgl1().unwrap();
            self.t
                .log
                .lock()
                .unwrap()
                .sgl_ids
                .push((sqe.opcode(), sgl.identifier()));
            let inv = Self::inv(Some(&sgl));
            match sqe.command {
                SqeCommand::Read(rw) => {
                    let off = rw.slba as usize * LBA;
                    let len = rw.blocks() as usize * LBA;
                    let data = self.t.ram.lock().unwrap()[off..off + len].to_vec();
                    let ok = self.put(&sgl, &data).await;
                    let st = if ok {
                        Status::SUCCESS
                    } else {
                        Status::DATA_TRANSFER_ERROR
                    };
                    self.respond(cid, st, 0, inv)
                }
                SqeCommand::Write(rw) => {
                    let off = rw.slba as usize * LBA;
                    let len = rw.blocks() as usize * LBA;
                    match self.fetch(&sgl, capsule).await {
                        Some(d) if d.len() == len => {
                            self.t.ram.lock().unwrap()[off..off + len].copy_from_slice(&d);
                            self.respond(cid, Status::SUCCESS, 0, inv)
                        }
                        _ => self.respond(cid, Status::DATA_TRANSFER_ERROR, 0, inv),
                    }
                }
                SqeCommand::Flush => self.respond(cid, Status::SUCCESS, 0, None),
                SqeCommand::WriteZeroes(wz) => {
                    let off = wz.slba as usize * LBA;
                    let len = (usize::from(wz.nlb) + 1) * LBA;
                    self.t.ram.lock().unwrap()[off..off + len].fill(0);
                    self.respond(cid, Status::SUCCESS, 0, None)
                }
                SqeCommand::DatasetManagement(d) => match self.fetch(&sgl, capsule).await {
                    Some(r) if r.len() == 16 * d.ranges() => {
                        self.respond(cid, Status::SUCCESS, 0, inv)
                    }
                    _ => self.respond(cid, Status::DATA_TRANSFER_ERROR, 0, inv),
                },
                _ => self.respond(cid, Status::INVALID_OPCODE, 0, None),
            }
        }
    }
}

fn host(fabric: &Arc<SimFabric>) -> Arc<dyn DeviceContext> {
    fabric.open("sim1").unwrap()
}

async fn controller(fabric: &Arc<SimFabric>, cfg: HostConfig) -> Controller {
    Controller::connect(host(fabric), target_addr(), cfg)
        .await
        .expect("admin connect")
}

/// A fabric of `seed` with the target started on it and a host connected with the default
/// config: the fabric (kept alive for the test), the target's log, the admin controller.
async fn connected(seed: u64) -> (Arc<SimFabric>, Arc<Mutex<Log>>, Controller) {
    let fabric = SimFabric::new(seed);
    let log = start_target(&fabric).await;
    let c = controller(&fabric, HostConfig::new(SUBNQN)).await;
    (fabric, log, c)
}

#[tokio::test(start_paused = true)]
async fn admin_connect_enable_identify() {
    let (_fabric, log, mut c) = connected(1).await;
    assert_eq!(c.cntlid(), CNTLID);
    let cap = c.enable().await.unwrap();
    assert_eq!(cap & 0xffff, 127);
    let id = c.identify_controller().await.unwrap();
    assert_eq!(id.ioccsz, (64 + ICD) / 16);
    assert_eq!(id.in_capsule_data(), ICD);
    assert_eq!(id.nn, 1);
    assert_eq!(id.cntlid, CNTLID);
    let ns = c.identify_namespace(1).await.unwrap();
    assert_eq!(ns.lba_size as usize, LBA);
    assert_eq!(ns.nsze as usize, RAM / LBA);
    assert_eq!(c.set_number_of_queues(4).await.unwrap(), (4, 4));
    {
        let log = log.lock().unwrap();
        let req = log.cm_requests[0];
        assert_eq!(
            (req.recfmt, req.qid, req.hrqsize, req.hsqsize),
            (0, 0, 32, 31)
        );
        let (sgl_id, qid, data) = &log.connects[0];
        assert_eq!((*sgl_id, *qid), (SGL_ID_KEYED, 0));
        assert_eq!(data.cntlid, CNTLID_DYNAMIC);
        assert_eq!(data.hostnqn, c.config().hostnqn);
    }
    c.shutdown().await.unwrap();
    c.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn connect_data_in_capsule() {
    let fabric = SimFabric::new(2);
    let log = start_target(&fabric).await;
    let cfg = HostConfig {
        connect_data_in_capsule: true,
        ..HostConfig::new(SUBNQN)
    };
    let c = controller(&fabric, cfg).await;
    assert_eq!(c.cntlid(), CNTLID);
    assert_eq!(log.lock().unwrap().connects[0].0, SGL_ID_IN_CAPSULE);
}

#[tokio::test(start_paused = true)]
async fn connect_invalid_parameters_is_typed() {
    let fabric = SimFabric::new(3);
    let _log = start_target(&fabric).await;
    let err = Controller::connect(host(&fabric), target_addr(), HostConfig::new("nqn.bad"))
        .await
        .unwrap_err();
    let InitiatorError::Nvme { status, cqe, .. } = err else {
        panic!("expected an NVMe error, got {err:?}");
    };
    assert!(status.same_code(Status::CONNECT_INVALID_PARAMETERS));
    let r = harness::initiator::connect::connect_response(&cqe).unwrap();
    assert!(matches!(
        r,
        harness::wire::ConnectResponse::InvalidParameters(p) if p.in_data
    ));
}

#[tokio::test(start_paused = true)]
async fn io_write_read_back_mib() {
    let (_fabric, log, mut c) = connected(4).await;
    c.enable().await.unwrap();
    let id = c.identify_controller().await.unwrap();
    let mut io = c
        .connect_io_queue(1, 32, id.in_capsule_data(), 1, LBA as u32)
        .await
        .unwrap();
    let data: Vec<u8> = (0..(1usize << 20))
        .map(|i| (i * 7 + i / 4096) as u8)
        .collect();
    let chunk = 256 << 10;
    for (i, part) in data.chunks(chunk).enumerate() {
        let slba = (i * chunk / LBA) as u64;
        let r = io.write(slba, part, DataMode::Keyed).await.unwrap();
        assert!(r.cqe.status.is_success(), "{:?}", r.cqe);
    }
    let mut back = Vec::new();
    let rchunk = 128 << 10;
    for i in 0..(data.len() / rchunk) {
        let slba = (i * rchunk / LBA) as u64;
        let blocks = (rchunk / LBA) as u32;
        let r = io
            .read(slba, blocks, DataMode::KeyedInvalidate)
            .await
            .unwrap();
        assert!(r.cqe.status.is_success());
        assert!(r.invalidated_rkey.is_some());
        assert_eq!(
            r.invalidated_rkey, r.rkey,
            "SEND with invalidate names our rkey"
        );
        back.extend_from_slice(&r.data);
    }
    assert!(back == data, "read back differs from what was written");
    // In-capsule write, read back with a plain keyed SGL.
    let small = vec![0xa5u8; 4096];
    let r = io.write(4000, &small, DataMode::InCapsule).await.unwrap();
    assert!(r.cqe.status.is_success());
    let r = io.read(4000, 8, DataMode::Keyed).await.unwrap();
    assert_eq!(r.data, small);
    assert_eq!(r.invalidated_rkey, None);
    assert!(io.flush().await.unwrap().cqe.status.is_success());
    let ids = log.lock().unwrap().sgl_ids.clone();
    assert!(ids.contains(&(0x01, SGL_ID_IN_CAPSULE)));
    assert!(ids.contains(&(0x02, SGL_ID_KEYED_INVALIDATE)));
    assert!(ids.contains(&(0x01, SGL_ID_KEYED)));
    {
        let log = log.lock().unwrap();
        let io_conn = log.connects.iter().find(|c| c.1 == 1).unwrap();
        assert_eq!(io_conn.2.cntlid, CNTLID);
        assert!(log
            .cm_requests
            .iter()
            .any(|r| r.qid == 1 && r.hsqsize == 31));
    }
    io.disconnect(Duration::from_secs(1)).await.unwrap();
    c.disconnect().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn cm_reject_is_typed() {
    let fabric = SimFabric::new(5);
    let _log = start_target(&fabric).await;
    let ctx = host(&fabric);
    let pd = ctx.alloc_pd().unwrap();
    let mut q = HostQueue::create(ctx, pd, QueueSpec::admin(), Duration::from_secs(1)).unwrap();
    let pdata = misbehave::cm_request_bytes(1, 0, 32, 31);
    let err =
        misbehave::connect_with_private_data(&mut q, target_addr(), pdata, Duration::from_secs(1))
            .await
            .unwrap_err();
    match err {
        InitiatorError::Rejected {
            cm_status, status, ..
        } => {
            assert_eq!(cm_status, harness::fabric::CM_REJ_CONSUMER_DEFINED);
            assert_eq!(status, Some(CmRejectStatus::InvalidRecfmt));
        }
        other => panic!("expected a reject, got {other:?}"),
    }
    // A host admin queue deeper than 32 is refused too.
    let err = Controller::connect(
        host(&fabric),
        target_addr(),
        HostConfig {
            admin_depth: 64,
            ..HostConfig::new(SUBNQN)
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        InitiatorError::Rejected {
            status: Some(CmRejectStatus::InvalidHsqsize),
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn no_listener_is_typed() {
    let fabric = SimFabric::new(6);
    let _log = start_target(&fabric).await;
    let err = Controller::connect(
        host(&fabric),
        "127.0.10.1:4421".parse().unwrap(),
        HostConfig::new(SUBNQN),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            InitiatorError::Unreachable | InitiatorError::Rejected { .. }
        ),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn missing_response_times_out() {
    let fabric = SimFabric::new(7);
    let _log = start_target(&fabric).await;
    let cfg = HostConfig {
        command_bound: Duration::from_millis(250),
        ..HostConfig::new(SUBNQN)
    };
    let mut c = controller(&fabric, cfg).await;
    let t0 = tokio::time::Instant::now();
    let err = c.keep_alive().await.unwrap_err();
    assert_eq!(
        err,
        InitiatorError::TimedOut {
            what: "command response",
            bound: Duration::from_millis(250)
        }
    );
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_millis(260));
}

/// A command of any `opcode` with `cdw` as its dwords 10..15, for namespace `nsid`.
fn other_command(nsid: u32, opcode: u8, cdw: [u32; 6]) -> Command {
    Command::Nvme {
        nsid,
        command: SqeCommand::Other { opcode, cdw },
    }
}

#[tokio::test(start_paused = true)]
async fn depth_is_enforced_unless_misbehaving() {
    let (_fabric, _log, mut c) = connected(8).await;
    let ka = other_command(0, SILENT_OPCODE, [0; 6]);
    let q = c.admin();
    for _ in 0..32 {
        q.submit(&ka, SglRepr::keyed(0, 0, 0), &[]).unwrap();
    }
    let err = q.submit(&ka, SglRepr::keyed(0, 0, 0), &[]).unwrap_err();
    assert!(matches!(
        err,
        InitiatorError::QueueFull {
            qid: 0,
            outstanding: 32,
            depth: 32
        }
    ));
    let cids = misbehave::overrun_sqsize(q, 0, 2).unwrap();
    assert_eq!(cids.len(), 2);
    assert_eq!(q.outstanding(), 34);
}

#[tokio::test(start_paused = true)]
async fn in_capsule_read_is_refused_locally() {
    let (_fabric, _log, mut c) = connected(9).await;
    let cmd = other_command(1, 0x06, [1, 0, 0, 0, 0, 0]);
    let err = c
        .admin()
        .execute(&cmd, Transfer::FromTarget(4096), DataMode::InCapsule)
        .await
        .unwrap_err();
    assert!(matches!(err, InitiatorError::Invalid(_)));
}

#[test]
fn misbehaviour_builders_emit_exact_bytes() {
    // CM private data with a wrong RECFMT and sizes.
    let b = misbehave::cm_request_bytes(7, 3, 0, 0xffff);
    let r = CmRequestRepr::parse_bytes(&b).unwrap();
    assert_eq!((r.recfmt, r.qid, r.hrqsize, r.hsqsize), (7, 3, 0, 0xffff));
    // Connect with any fields, data in capsule.
    let data = HostConfig::new(SUBNQN).connect_data(0x1234);
    let cap = misbehave::connect_capsule(9, 1, 5, 0, 77, &data).unwrap();
    assert_eq!(cap.len(), 64 + CONNECT_DATA_LEN);
    let FabricsRepr::Connect(c) = FabricsRepr::parse_bytes(&cap).unwrap() else {
        panic!("not a Connect");
    };
    assert_eq!((c.cid, c.recfmt, c.qid, c.sqsize, c.kato), (9, 1, 5, 0, 77));
    assert_eq!(c.sgl1, SglRepr::in_capsule(0, CONNECT_DATA_LEN as u32));
    assert_eq!(ConnectDataRepr::parse_bytes(&cap[64..]).unwrap(), data);
    // Oversized keyed read.
    let s = misbehave::read_sqe(3, 1, 10, 1, SglRepr::keyed(0x1000, 0x00ff_ffff, 0xabcd)).unwrap();
    let r = SqeRepr::parse_bytes(&s).unwrap();
    assert_eq!(r.cid, 3);
    assert_eq!(r.sgl1(), Some(&SglRepr::keyed(0x1000, 0x00ff_ffff, 0xabcd)));
    let SqeCommand::Read(rw) = r.command else {
        panic!("not a Read");
    };
    assert_eq!((rw.slba, rw.blocks()), (10, 1));
    // Raw SGL with an undefined descriptor type: the parser must refuse it, byte 15 as set.
    let mut raw = [0u8; 16];
    raw[15] = 0x70;
    let s2 = misbehave::sqe_with_raw_sgl(s, raw);
    assert_eq!(&s2[24..40], &raw);
    assert_eq!(&s2[..24], &s[..24]);
    assert_eq!(&s2[40..], &s[40..]);
    assert!(SqeRepr::parse_bytes(&s2).is_err());
    // Unknown opcode.
    let u = misbehave::opcode_sqe(4, 1, 0xee).unwrap();
    let r = SqeRepr::parse_bytes(&u).unwrap();
    assert_eq!(r.opcode(), 0xee);
    assert_eq!(r.cid, 4);
    // PRP data pointer.
    let p = misbehave::prp_sqe(5, 1, 0).unwrap();
    assert_eq!(p[1] >> 6, 0, "PSDT 00b");
    let w = misbehave::write_sqe(6, 1, 0, 2, SglRepr::in_capsule(8, 1024)).unwrap();
    let r = SqeRepr::parse_bytes(&w).unwrap();
    assert_eq!(r.sgl1().unwrap().identifier(), SGL_ID_IN_CAPSULE);
}

#[tokio::test(start_paused = true)]
async fn raw_capsules_and_cid_reuse_go_out_as_built() {
    let (_fabric, log, mut c) = connected(10).await;
    let mut io = c.connect_io_queue(1, 8, ICD, 1, LBA as u32).await.unwrap();
    let q = io.queue();
    // An unknown opcode, sent as raw bytes: the target gets exactly these bytes.
    let sqe = misbehave::opcode_sqe(0x4242, 1, 0xee).unwrap();
    assert_eq!(misbehave::send_raw(q, &sqe).unwrap(), Some(0x4242));
    let r = q
        .wait_response(0x4242, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(r.cqe.status.same_code(Status::INVALID_OPCODE));
    assert_eq!(log.lock().unwrap().capsules.last().unwrap(), &sqe.to_vec());
    // The same CID twice: both responses are delivered, one per wait.
    misbehave::reuse_cid(q, 1, 0x0077).unwrap();
    for _ in 0..2 {
        let r = q
            .wait_response(0x0077, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(r.cqe.cid, 0x0077);
        assert!(r.cqe.status.is_success());
    }
    assert_eq!(q.outstanding(), 0);
    // Abrupt loss of the I/O queue: no CM disconnect; the admin queue still works.
    misbehave::abrupt_disconnect(io.into_inner()).unwrap();
    c.set_number_of_queues(2).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn write_zeroes_and_dataset_management() {
    let (_fabric, log, mut c) = connected(11).await;
    let mut io = c.connect_io_queue(1, 16, ICD, 1, LBA as u32).await.unwrap();
    let ones = vec![0xffu8; 8 * LBA];
    let r = io
        .write(100, &ones, DataMode::KeyedInvalidate)
        .await
        .unwrap();
    assert!(r.cqe.status.is_success());
    assert_eq!(r.invalidated_rkey, r.rkey);
    assert!(io
        .write_zeroes(102, 2)
        .await
        .unwrap()
        .cqe
        .status
        .is_success());
    let back = io.read(100, 8, DataMode::Keyed).await.unwrap().data;
    assert!(back[..2 * LBA].iter().all(|b| *b == 0xff));
    assert!(back[2 * LBA..4 * LBA].iter().all(|b| *b == 0));
    assert!(back[4 * LBA..].iter().all(|b| *b == 0xff));
    let r = io
        .dataset_management(&[(0, 8, 100), (0, 4, 200)], true, DataMode::InCapsule)
        .await
        .unwrap();
    assert!(r.cqe.status.is_success());
    let dsm = log.lock().unwrap().capsules.last().unwrap().clone();
    assert_eq!(dsm.len(), 64 + 32);
    let sqe = SqeRepr::parse_bytes(&dsm).unwrap();
    let SqeCommand::DatasetManagement(d) = sqe.command else {
        panic!("not a DSM: {sqe:?}");
    };
    assert!(d.ad);
    assert_eq!(d.ranges(), 2);
    assert_eq!(&dsm[64 + 4..64 + 8], &8u32.to_le_bytes());
    assert_eq!(&dsm[64 + 16 + 8..64 + 32], &200u64.to_le_bytes());
}

#[tokio::test(start_paused = true)]
async fn unanswered_cm_request_times_out() {
    let fabric = SimFabric::new(12);
    // A listener that never accepts nor rejects.
    let mute = fabric.open("sim0").unwrap();
    let addr: SocketAddr = "127.0.10.1:4430".parse().unwrap();
    mute.cm_listen(addr).unwrap();
    let cfg = HostConfig {
        cm_bound: Duration::from_millis(300),
        ..HostConfig::new(SUBNQN)
    };
    let t0 = tokio::time::Instant::now();
    let err = Controller::connect(host(&fabric), addr, cfg)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        InitiatorError::TimedOut {
            what: "CM connect outcome",
            bound: Duration::from_millis(300)
        }
    );
    assert!(t0.elapsed() < Duration::from_millis(310));
}
