//! Shared setup for the emulated-backend tests: a controller on the simulated fabric.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use harness::backend::emulated::{
    backend_sqe, BackendController, ControllerConfig, DmaRegion, LbaFormat, Namespace, SqConfig,
};
use harness::backend::{CqReader, Span, SqWriter};
use harness::fabric::sim::SimFabric;
use harness::fabric::{Access, DeviceContext, Fabric, MrInfo, PdId};
use harness::wire::{CqeRepr, SqeCommand, SqeRepr, CQE_LEN, SQE_LEN};

/// Bytes of the staging buffer.
pub const STAGING: u64 = 1 << 20;

/// A controller, its queues' producer/consumer helpers, and its memory.
pub struct Rig {
    pub fabric: Arc<SimFabric>,
    pub ctx: Arc<dyn DeviceContext>,
    pub pd: PdId,
    pub ctrl: BackendController,
    pub sq: Vec<SqWriter>,
    pub cq: CqReader,
    pub cq_mr: MrInfo,
    pub staging: MrInfo,
    next_cid: u16,
}

pub struct Opts {
    pub depth: u16,
    pub sqs: usize,
    pub sq_ini: u16,
    pub cq_ini: u16,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            depth: 16,
            sqs: 1,
            sq_ini: 0,
            cq_ini: 0,
        }
    }
}

pub fn rig(o: Opts) -> Rig {
    let fabric = SimFabric::new(7);
    let ctx = fabric.open("sim0").unwrap();
    let pd = ctx.alloc_pd().unwrap();
    let d = u64::from(o.depth);
    let reg = |len| ctx.reg_mr(pd, len, Access::LOCAL_WRITE).unwrap();
    let dbs = reg(64);
    let cq_mr = reg(d * CQE_LEN as u64);
    let staging = reg(STAGING);
    let sqs = (0..o.sqs)
        .map(|i| SqConfig {
            ring: Span::new(&reg(d * SQE_LEN as u64), 0, d * SQE_LEN as u64),
            doorbell: Span::new(&dbs, 4 * (i as u64 + 1), 4),
            tail_ini: o.sq_ini,
        })
        .collect();
    let cfg = ControllerConfig {
        depth: o.depth,
        sqs,
        cq_ring: Span::new(&cq_mr, 0, d * CQE_LEN as u64),
        cq_doorbell: Span::new(&dbs, 0, 4),
        cq_head_ini: o.cq_ini,
        memory: None,
        dma: vec![DmaRegion::whole(&staging)],
    };
    let ctrl = BackendController::spawn(ctx.clone(), cfg).unwrap();
    let sq = (0..o.sqs).map(|i| ctrl.sq_writer(i).unwrap()).collect();
    let cq = ctrl.cq_reader();
    Rig {
        fabric,
        ctx,
        pd,
        ctrl,
        sq,
        cq,
        cq_mr,
        staging,
        next_cid: 1,
    }
}

/// A rig with one RAM namespace (nsid 1) of `blocks` blocks in `format`.
pub fn rig_ns(format: LbaFormat, blocks: u64) -> Rig {
    let r = rig(Opts::default());
    r.ctrl
        .add_namespace(Namespace::ram(1, format, blocks).unwrap())
        .unwrap();
    r
}

impl Rig {
    /// The address of `off` in the staging buffer.
    pub fn addr(&self, off: u64) -> u64 {
        self.staging.addr + off
    }

    pub fn put(&self, off: u64, data: &[u8]) {
        self.ctx.mr_write(self.staging.id, off, data).unwrap();
    }

    pub fn get(&self, off: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        self.ctx.mr_read(self.staging.id, off, &mut b).unwrap();
        b
    }

    pub fn cid(&mut self) -> u16 {
        self.next_cid = self.next_cid.wrapping_add(1);
        self.next_cid
    }

    /// Writes a command for `nsid` with its buffer at staging offset `off` to SQ `sq`
    /// and rings; returns its CID.
    pub fn submit_to(&mut self, sq: usize, nsid: u32, c: SqeCommand, off: u64) -> u16 {
        let cid = self.cid();
        let sqe = backend_sqe(cid, nsid, c, self.addr(off));
        self.sq[sq].submit(&sqe).unwrap();
        cid
    }

    pub fn submit(&mut self, nsid: u32, c: SqeCommand, off: u64) -> u16 {
        self.submit_to(0, nsid, c, off)
    }

    pub fn submit_raw(&mut self, sqe: &SqeRepr) {
        self.sq[0].submit(sqe).unwrap();
    }

    /// Collects `n` completions (releasing them), waiting at most `limit` (virtual time);
    /// returns what arrived.
    pub async fn collect_within(&mut self, n: usize, limit: Duration) -> Vec<CqeRepr> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let got = self.cq.drain().unwrap();
            if !got.is_empty() {
                self.cq.release().unwrap();
            }
            out.extend(got);
            if out.len() >= n {
                return out;
            }
            if tokio::time::timeout_at(deadline, self.ctrl.wait_completion())
                .await
                .is_err()
            {
                return out;
            }
        }
    }

    /// Exactly `n` completions within 5 s (virtual), or panic.
    pub async fn collect(&mut self, n: usize) -> Vec<CqeRepr> {
        let got = self.collect_within(n, Duration::from_secs(5)).await;
        assert_eq!(got.len(), n, "completions: {got:?}");
        got
    }

    /// Runs one command and returns its completion.
    pub async fn run(&mut self, nsid: u32, c: SqeCommand, off: u64) -> CqeRepr {
        let cid = self.submit(nsid, c, off);
        let cqe = self.collect(1).await.remove(0);
        assert_eq!(cqe.cid, cid);
        cqe
    }
}
