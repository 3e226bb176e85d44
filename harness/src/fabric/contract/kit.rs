//! The contract cases' toolkit: opened devices in a role ([`Dev`]), a side's PD, CQ and
//! QP ([`Side`]), connected pairs of QPs with or without the CM ([`Pair`], [`CmPair`]),
//! and the checks cases share (errnos, work completions, byte patterns, private data).

use nix::errno::Errno;

use super::*;
use crate::fabric::FabricError;
use crate::{check, check_eq, fail};

// ---------------------------------------------------------------------------------------
// Devices, sides, pairs
// ---------------------------------------------------------------------------------------

/// An opened device with its port 1, playing a role (`a`, `b`) in a case.
#[derive(Clone)]
pub struct Dev {
    /// The role in traces and messages.
    pub role: &'static str,
    /// Device name.
    pub name: String,
    /// The context.
    pub ctx: Arc<dyn DeviceContext>,
    /// Port 1 attributes when opened.
    pub port: PortAttr,
    /// Port 1's GID at index 1 (IPv4-mapped, RoCEv2).
    pub gid: Gid,
    trace: Trace,
}

impl Dev {
    pub(super) fn new(
        role: &'static str,
        name: String,
        ctx: Arc<dyn DeviceContext>,
        trace: Trace,
    ) -> Result<Dev, Failure> {
        let port = ctx.port_attr(1).ctx(format!("{name}: port_attr(1)"))?;
        check!(
            port.gids.len() >= 2,
            "{name}: port 1 has {} GIDs, a RoCEv2 port needs index 1",
            port.gids.len()
        );
        let gid = port.gids[1];
        Ok(Dev {
            role,
            name,
            ctx,
            port,
            gid,
            trace,
        })
    }

    /// Records an observation under this role.
    pub fn record(&self, line: impl fmt::Display) {
        self.trace.push(format!("{} {line}", self.role));
    }

    /// Allocates a PD.
    pub fn pd(&self) -> Result<PdId, Failure> {
        self.ctx.alloc_pd().ctx(format!("{}: alloc_pd", self.role))
    }

    /// Registers `len` bytes with `access` on `pd`.
    pub fn mr(&self, pd: PdId, len: u64, access: Access) -> Result<MrInfo, Failure> {
        let mr = self
            .ctx
            .reg_mr(pd, len, access)
            .ctx(format!("{}: reg_mr({len}, {access:?})", self.role))?;
        self.record(format_args!(
            "mr {} len {} lkey {:#x} rkey {:#x}",
            mr.id, mr.len, mr.lkey, mr.rkey
        ));
        Ok(mr)
    }

    /// Creates a CQ.
    pub fn cq(&self, cqe: u32) -> Result<CqId, Failure> {
        self.ctx
            .create_cq(cqe)
            .ctx(format!("{}: create_cq({cqe})", self.role))
    }

    /// A PD, a 16-entry CQ, an SRQ of `max_wr` receives and an RC QP in RESET using them.
    pub fn srq_qp(&self, max_wr: u32) -> Result<(PdId, SrqId, QpInfo), Failure> {
        let pd = self.pd()?;
        let cq = self.cq(16)?;
        let srq = self
            .ctx
            .create_srq(pd, SrqInit::new(max_wr))
            .ctx("create_srq")?;
        let qp = self.qp(pd, QpInit::on_cq(cq, Some(srq)))?;
        Ok((pd, srq, qp))
    }

    /// Creates an RC QP.
    pub fn qp(&self, pd: PdId, init: QpInit) -> Result<QpInfo, Failure> {
        let qp = self
            .ctx
            .create_qp(pd, init)
            .ctx(format!("{}: create_qp", self.role))?;
        self.record(format_args!("qp {} qpn {:#x}", qp.id, qp.qpn));
        Ok(qp)
    }

    /// Writes `data` at `offset` of `mr`.
    pub fn write(&self, mr: &MrInfo, offset: u64, data: &[u8]) -> Result<(), Failure> {
        self.ctx
            .mr_write(mr.id, offset, data)
            .ctx(format!("{}: mr_write({}, {offset})", self.role, mr.id))
    }

    /// Reads `len` bytes at `offset` of `mr`.
    pub fn read(&self, mr: &MrInfo, offset: u64, len: usize) -> Result<Vec<u8>, Failure> {
        let mut buf = vec![0u8; len];
        self.ctx.mr_read(mr.id, offset, &mut buf).ctx(format!(
            "{}: mr_read({}, {offset}, {len})",
            self.role, mr.id
        ))?;
        Ok(buf)
    }

    /// Reads `expected.len()` bytes at `offset` of `mr` and compares them with `expected`
    /// ([`check_bytes`]).
    pub fn check_read(&self, mr: &MrInfo, offset: u64, expected: &[u8], what: &str) -> CaseResult {
        check_bytes(&self.read(mr, offset, expected.len())?, expected, what)
    }

    /// Reads `len` bytes at `offset` of `mr` and fails with `what` unless all are zero.
    pub fn check_zeroed(&self, mr: &MrInfo, offset: u64, len: usize, what: &str) -> CaseResult {
        let bytes = self.read(mr, offset, len)?;
        check!(bytes.iter().all(|b| *b == 0), "{what}");
        Ok(())
    }

    /// Waits (bounded) for the next completion on `cq`.
    pub async fn wc(&self, cq: CqId, what: &str) -> Result<WorkCompletion, Failure> {
        self.wc_within(cq, BOUND, what).await
    }

    /// Waits up to `bound` for the next completion on `cq`.
    pub async fn wc_within(
        &self,
        cq: CqId,
        bound: Duration,
        what: &str,
    ) -> Result<WorkCompletion, Failure> {
        let wc = wait::completion(&*self.ctx, cq, bound).await.ctx(format!(
            "{}: {what}: waiting for a completion on {cq}",
            self.role
        ))?;
        self.record(format_args!("wc {wc:?}"));
        Ok(wc)
    }

    /// Waits for the next completion on `cq` and checks its wr_id, status and (when given)
    /// opcode ([`check_wc`]); `what` names it in both.
    pub async fn completes(
        &self,
        cq: CqId,
        what: &str,
        wr_id: u64,
        status: WcStatus,
        opcode: Option<WcOpcode>,
    ) -> Result<WorkCompletion, Failure> {
        let wc = self.wc(cq, what).await?;
        check_wc(&wc, wr_id, status, opcode, what)?;
        Ok(wc)
    }

    /// Waits (bounded) for `n` completions on `cq`.
    pub async fn wcs(
        &self,
        cq: CqId,
        n: usize,
        what: &str,
    ) -> Result<Vec<WorkCompletion>, Failure> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let wc = wait::completion(&*self.ctx, cq, BOUND).await.ctx(format!(
                "{}: {what}: waiting for completion {} of {n} on {cq} (got {out:?})",
                self.role,
                i + 1
            ))?;
            self.record(format_args!("wc {wc:?}"));
            out.push(wc);
        }
        Ok(out)
    }

    /// Waits [`QUIET`] and checks no completion arrived on `cq`.
    pub async fn no_wc(&self, cq: CqId, what: &str) -> CaseResult {
        tokio::time::sleep(QUIET).await;
        let got = self
            .ctx
            .poll_cq(cq, 16)
            .ctx(format!("{}: poll_cq({cq})", self.role))?;
        check!(
            got.is_empty(),
            "{}: {what}: expected no completion on {cq}, got {got:?}",
            self.role
        );
        Ok(())
    }

    /// Waits (bounded) for an async event matching `pred`, skipping (and recording) others.
    pub async fn event(
        &self,
        what: &str,
        pred: impl Fn(&AsyncEvent) -> bool,
    ) -> Result<AsyncEvent, Failure> {
        let deadline = tokio::time::Instant::now() + BOUND;
        let mut others = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match wait::async_event(&*self.ctx, left).await {
                Ok(e) => {
                    self.record(format_args!("event {e:?}"));
                    if pred(&e) {
                        return Ok(e);
                    }
                    others.push(e);
                }
                Err(_) => fail!(
                    "{}: expected async event {what} within {BOUND:?}, got only {others:?}",
                    self.role
                ),
            }
        }
    }

    /// Waits [`QUIET`], then drains pending async events; fails if one matches `pred`.
    pub async fn no_event(&self, what: &str, pred: impl Fn(&AsyncEvent) -> bool) -> CaseResult {
        tokio::time::sleep(QUIET).await;
        while let Some(e) = self.ctx.poll_async_event() {
            self.record(format_args!("event {e:?}"));
            check!(
                !pred(&e),
                "{}: expected no {what} event, got {e:?}",
                self.role
            );
        }
        Ok(())
    }

    /// Waits (bounded) for the next CM event.
    pub async fn cm_event(&self, what: &str) -> Result<CmEvent, Failure> {
        self.cm_event_within(BOUND, what).await
    }

    /// Waits up to `bound` for the next CM event.
    pub async fn cm_event_within(&self, bound: Duration, what: &str) -> Result<CmEvent, Failure> {
        let e = wait::cm_event(&*self.ctx, bound)
            .await
            .ctx(format!("{}: {what}: waiting for a CM event", self.role))?;
        self.record(format_args!("cm {e:?}"));
        Ok(e)
    }

    /// Waits [`QUIET`] and checks no CM event is pending.
    pub async fn no_cm_event(&self, what: &str) -> CaseResult {
        tokio::time::sleep(QUIET).await;
        if let Some(e) = self.ctx.poll_cm_event() {
            self.record(format_args!("cm {e:?}"));
            fail!("{}: {what}: expected no CM event, got {e:?}", self.role);
        }
        Ok(())
    }

    /// The QP's state.
    pub fn state(&self, qp: QpId) -> Result<QpState, Failure> {
        self.ctx
            .query_qp(qp)
            .ctx(format!("{}: query_qp({qp})", self.role))
    }

    /// Polls (bounded) until `qp` is in `state`.
    pub async fn reaches_state(&self, qp: QpId, state: QpState, what: &str) -> CaseResult {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let s = self.state(qp)?;
            if s == state {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                fail!(
                    "{}: {what}: expected {qp} to reach {state:?} within {BOUND:?}, it is {s:?}",
                    self.role
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One side of a pair: a device, a PD, one CQ for both queues, and a QP.
#[derive(Clone)]
pub struct Side {
    /// The device.
    pub dev: Dev,
    /// Protection domain of everything on this side.
    pub pd: PdId,
    /// Send and receive CQ of the QP.
    pub cq: CqId,
    /// The QP (in RESET after [`Side::create`]).
    pub qp: QpInfo,
}

impl Side {
    /// A PD, a 256-entry CQ and an RC QP in RESET with `cap` on `dev`.
    pub fn create(dev: &Dev, cap: QpCap) -> Result<Side, Failure> {
        let pd = dev.pd()?;
        let cq = dev.cq(256)?;
        let qp = dev.qp(
            pd,
            QpInit {
                cap,
                ..QpInit::on_cq(cq, None)
            },
        )?;
        Ok(Side {
            dev: dev.clone(),
            pd,
            cq,
            qp,
        })
    }

    /// Where a peer's RTR points to reach this QP.
    pub fn dest(&self) -> QpDest {
        QpDest {
            gid: self.dev.gid,
            qpn: self.qp.qpn,
        }
    }

    /// Registers a region on this side's PD.
    pub fn mr(&self, len: u64, access: Access) -> Result<MrInfo, Failure> {
        self.dev.mr(self.pd, len, access)
    }

    /// Posts a receive.
    pub fn post_recv(&self, wr_id: u64, sg_list: Vec<Sge>) -> CaseResult {
        self.dev
            .ctx
            .post_recv(self.qp.id, &RecvWr { wr_id, sg_list })
            .ctx(format!("{}: post_recv(wr_id {wr_id})", self.dev.role))
    }

    /// Posts a send request.
    pub fn post_send(&self, wr: SendWr) -> CaseResult {
        let id = wr.wr_id;
        self.dev.ctx.post_send(self.qp.id, &wr).ctx(format!(
            "{}: post_send(wr_id {id}, {:?})",
            self.dev.role, wr.op
        ))
    }

    /// Posts a signaled SEND of the list.
    pub fn send(&self, wr_id: u64, sg_list: Vec<Sge>) -> CaseResult {
        self.post_send(SendWr::new(wr_id, SendOp::Send, sg_list))
    }

    /// Waits for the next completion of this side.
    pub async fn wc(&self, what: &str) -> Result<WorkCompletion, Failure> {
        self.dev.wc(self.cq, what).await
    }

    /// Waits for this side's next completion and checks its wr_id, status and (when given)
    /// opcode ([`check_wc`]); `what` names it in both.
    pub async fn completes(
        &self,
        what: &str,
        wr_id: u64,
        status: WcStatus,
        opcode: Option<WcOpcode>,
    ) -> Result<WorkCompletion, Failure> {
        self.dev
            .completes(self.cq, what, wr_id, status, opcode)
            .await
    }

    /// Waits for this side's next completion and checks it is `wr_id`, successful, with
    /// `opcode`; `what` names it.
    pub async fn succeeds(
        &self,
        what: &str,
        wr_id: u64,
        opcode: WcOpcode,
    ) -> Result<WorkCompletion, Failure> {
        self.completes(what, wr_id, WcStatus::Success, Some(opcode))
            .await
    }

    /// Posts `wr` and waits for its successful completion, with its operation's opcode;
    /// `what` names it.
    pub async fn post_ok(&self, wr: SendWr, what: &str) -> Result<WorkCompletion, Failure> {
        let (wr_id, opcode) = (wr.wr_id, wr.op.wc_opcode());
        self.post_send(wr)?;
        self.succeeds(what, wr_id, opcode).await
    }

    /// Posts `wr` and waits for its completion with `status` (opcode unchecked); `what` names
    /// it.
    pub async fn post_completes(
        &self,
        wr: SendWr,
        status: WcStatus,
        what: &str,
    ) -> Result<WorkCompletion, Failure> {
        let wr_id = wr.wr_id;
        self.post_send(wr)?;
        self.completes(what, wr_id, status, None).await
    }

    /// Waits (at most [`LONG_BOUND`]) for this side's send `wr_id` to fail with
    /// RETRY_EXC_ERR and for its QP to reach ERR; `what` names the send.
    pub async fn retry_exceeded(&self, wr_id: u64, what: &str) -> CaseResult {
        let wc = self.dev.wc_within(self.cq, LONG_BOUND, what).await?;
        check_wc(&wc, wr_id, WcStatus::RetryExcErr, None, what)?;
        self.reaches_state(QpState::Err, "sender after RETRY_EXC_ERR")
            .await
    }

    /// Waits for `n` completions of this side.
    pub async fn wcs(&self, n: usize, what: &str) -> Result<Vec<WorkCompletion>, Failure> {
        self.dev.wcs(self.cq, n, what).await
    }

    /// Checks no completion arrives on this side within [`QUIET`].
    pub async fn no_wc(&self, what: &str) -> CaseResult {
        self.dev.no_wc(self.cq, what).await
    }

    /// The QP's state.
    pub fn state(&self) -> Result<QpState, Failure> {
        self.dev.state(self.qp.id)
    }

    /// Checks the QP is in `state`; `what` names the check.
    pub fn in_state(&self, state: QpState, what: &str) -> CaseResult {
        check_eq!(self.state()?, state, "{what}");
        Ok(())
    }

    /// Moves the QP.
    pub fn modify(&self, attr: QpAttr) -> CaseResult {
        self.dev
            .ctx
            .modify_qp(self.qp.id, &attr)
            .ctx(format!("{}: modify_qp({:?})", self.dev.role, attr.state))
    }

    /// Polls until the QP is in `state`.
    pub async fn reaches_state(&self, state: QpState, what: &str) -> CaseResult {
        self.dev.reaches_state(self.qp.id, state, what).await
    }

    /// Waits for a ConnectRequest: (new conn, listener, peer address, peer params).
    pub async fn connect_request(
        &self,
        what: &str,
    ) -> Result<(ConnId, ListenerId, SocketAddr, ConnParam), Failure> {
        let e = self.dev.cm_event(what).await?;
        match e.kind {
            CmEventKind::ConnectRequest {
                listener,
                peer,
                param,
            } => Ok((e.conn, listener, peer, param)),
            other => fail!(
                "{}: {what}: expected ConnectRequest, got {other:?} on {}",
                self.dev.role,
                e.conn
            ),
        }
    }

    /// Waits for `Disconnected` on `conn`; `what` names the wait.
    pub async fn disconnected(&self, conn: ConnId, what: &str) -> CaseResult {
        let e = self.dev.cm_event(what).await?;
        check!(
            e.conn == conn && e.kind == CmEventKind::Disconnected,
            "{what}: expected Disconnected on {conn}, got {e:?}"
        );
        Ok(())
    }

    /// Waits for `Established` on `conn` and returns its private data.
    pub async fn established(&self, conn: ConnId, what: &str) -> Result<Vec<u8>, Failure> {
        let e = self.dev.cm_event(what).await?;
        match e.kind {
            CmEventKind::Established { private_data } if e.conn == conn => Ok(private_data),
            other => fail!(
                "{}: {what}: expected Established on {conn}, got {other:?} on {}",
                self.dev.role,
                e.conn
            ),
        }
    }
}

/// Options of [`Env::pair`].
#[derive(Debug, Clone, Copy)]
pub struct PairOpts {
    /// QP access flags of `a` (what `b` may do to `a`).
    pub access_a: Access,
    /// QP access flags of `b`.
    pub access_b: Access,
    /// Transport retry count of both QPs.
    pub retry_cnt: u8,
    /// RNR retry count of both QPs.
    pub rnr_retry: u8,
    /// Queue sizes of both QPs.
    pub cap: QpCap,
}

impl Default for PairOpts {
    fn default() -> Self {
        PairOpts {
            access_a: all_remote(),
            access_b: all_remote(),
            retry_cnt: 7,
            rnr_retry: 7,
            cap: QpCap::default(),
        }
    }
}

impl PairOpts {
    /// With these retry counts.
    pub fn retries(self, retry_cnt: u8, rnr_retry: u8) -> PairOpts {
        PairOpts {
            retry_cnt,
            rnr_retry,
            ..self
        }
    }
}

/// LOCAL_WRITE | REMOTE_WRITE | REMOTE_READ.
pub fn all_remote() -> Access {
    Access::LOCAL_WRITE | Access::REMOTE_WRITE | Access::REMOTE_READ
}

/// Two connected RC QPs.
#[derive(Clone)]
pub struct Pair {
    /// Requester side in most cases.
    pub a: Side,
    /// Responder side in most cases.
    pub b: Side,
}

impl Pair {
    /// Registers `len` bytes on each side ([`mrs`]).
    pub fn mrs(&self, len: u64, b_access: Access) -> Result<(MrInfo, MrInfo), Failure> {
        mrs(&self.a, &self.b, len, b_access)
    }

    /// Posts `wr` on `a`, expects REM_ACCESS_ERR, both QPs in ERR and no receive consumed
    /// at `b`.
    pub async fn expect_violation(&self, wr: SendWr, what: &str) -> CaseResult {
        self.a
            .post_completes(wr, WcStatus::RemAccessErr, what)
            .await?;
        self.a
            .reaches_state(QpState::Err, &format!("requester after {what}"))
            .await?;
        self.b
            .reaches_state(QpState::Err, &format!("responder after {what}"))
            .await?;
        self.b
            .no_wc(&format!("responder of {what} (no receive consumed)"))
            .await
    }

    /// Creates a side on each device and connects them by `modify_qp`.
    pub fn on(a: &Dev, b: &Dev, opts: PairOpts) -> Result<Pair, Failure> {
        let a = Side::create(a, opts.cap)?;
        let b = Side::create(b, opts.cap)?;
        connect_qps(&a.dev, a.qp, &b.dev, b.qp, opts)?;
        Ok(Pair { a, b })
    }
}

/// Registers `len` bytes on each side: `a`'s with LOCAL_WRITE, `b`'s with `b_access`.
fn mrs(a: &Side, b: &Side, len: u64, b_access: Access) -> Result<(MrInfo, MrInfo), Failure> {
    Ok((a.mr(len, Access::LOCAL_WRITE)?, b.mr(len, b_access)?))
}

/// Moves `qa` on `a` and `qb` on `b` through INIT, RTR (towards each other) and RTS.
pub fn connect_qps(a: &Dev, qa: QpInfo, b: &Dev, qb: QpInfo, opts: PairOpts) -> CaseResult {
    let steps = [
        (a, qa, QpAttr::init(1, opts.access_a)),
        (b, qb, QpAttr::init(1, opts.access_b)),
        (
            a,
            qa,
            QpAttr::rtr(QpDest {
                gid: b.gid,
                qpn: qb.qpn,
            }),
        ),
        (
            b,
            qb,
            QpAttr::rtr(QpDest {
                gid: a.gid,
                qpn: qa.qpn,
            }),
        ),
        (a, qa, QpAttr::rts(opts.retry_cnt, opts.rnr_retry)),
        (b, qb, QpAttr::rts(opts.retry_cnt, opts.rnr_retry)),
    ];
    for (dev, qp, attr) in steps {
        dev.ctx.modify_qp(qp.id, &attr).ctx(format!(
            "{}: modify_qp({}, {:?})",
            dev.role, qp.id, attr.state
        ))?;
    }
    Ok(())
}

/// Two QPs connected through the CM.
pub struct CmPair {
    /// Active side.
    pub a: Side,
    /// Passive side.
    pub b: Side,
    /// Where `b` listens.
    pub addr: SocketAddr,
    /// `b`'s listener.
    pub listener: ListenerId,
    /// Active identifier.
    pub conn_a: ConnId,
    /// Passive identifier (from the ConnectRequest).
    pub conn_b: ConnId,
    /// The active side's address as the ConnectRequest gave it.
    pub peer: SocketAddr,
    /// The request's parameters as `b` saw them.
    pub request: ConnParam,
    /// Private data of `a`'s Established (the accept's).
    pub established_a: Vec<u8>,
    /// Private data of `b`'s Established.
    pub established_b: Vec<u8>,
}

impl CmPair {
    /// Registers `len` bytes on each side ([`mrs`]).
    pub fn mrs(&self, len: u64, b_access: Access) -> Result<(MrInfo, MrInfo), Failure> {
        mrs(&self.a, &self.b, len, b_access)
    }
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/// Checks a completion's wr_id and status, and its opcode when given (only meaningful for
/// successful completions: real devices leave the opcode of error completions undefined).
pub fn check_wc(
    wc: &WorkCompletion,
    wr_id: u64,
    status: WcStatus,
    opcode: Option<WcOpcode>,
    what: &str,
) -> CaseResult {
    check!(
        wc.wr_id == wr_id && wc.status == status,
        "{what}: expected wr_id {wr_id} with {}, got wr_id {} with {} ({wc:?})",
        status.name(),
        wc.wr_id,
        wc.status.name()
    );
    if let Some(op) = opcode {
        check_eq!(wc.opcode, op, "{what}: opcode of wr_id {wr_id}");
    }
    Ok(())
}

/// Checks a completion is the successful completion of `wr_id` with `opcode` ([`check_wc`]).
pub fn check_success(wc: &WorkCompletion, wr_id: u64, opcode: WcOpcode, what: &str) -> CaseResult {
    check_wc(wc, wr_id, WcStatus::Success, Some(opcode), what)
}

/// A signaled RDMA WRITE of `sges` to `remote_addr` under `rkey`.
pub fn rdma_write(wr_id: u64, remote_addr: u64, rkey: u32, sges: Vec<Sge>) -> SendWr {
    SendWr::new(wr_id, SendOp::RdmaWrite { remote_addr, rkey }, sges)
}

/// A signaled RDMA READ from `remote_addr` under `rkey` into `sges`.
pub fn rdma_read(wr_id: u64, remote_addr: u64, rkey: u32, sges: Vec<Sge>) -> SendWr {
    SendWr::new(wr_id, SendOp::RdmaRead { remote_addr, rkey }, sges)
}

/// A deterministic byte pattern of `len` bytes from `seed` and `salt`.
pub fn pattern(seed: u64, salt: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Compares two byte strings, naming the first differing offset.
pub fn check_bytes(got: &[u8], expected: &[u8], what: &str) -> CaseResult {
    check!(
        got.len() == expected.len(),
        "{what}: expected {} bytes, got {}",
        expected.len(),
        got.len()
    );
    if let Some(i) = got.iter().zip(expected).position(|(g, e)| g != e) {
        fail!(
            "{what}: bytes differ first at offset {i}: expected {:#04x}, got {:#04x}",
            expected[i],
            got[i]
        );
    }
    Ok(())
}

/// Checks CM private data: `got` starts with `sent` and anything after it (real CMs pad to
/// the message's private-data size) is zero, up to `max` bytes.
pub fn check_private_data(got: &[u8], sent: &[u8], max: usize, what: &str) -> CaseResult {
    check!(
        got.len() >= sent.len() && got.len() <= max,
        "{what}: expected the {} bytes sent (possibly zero-padded up to {max}), got {} bytes {got:02x?}",
        sent.len(),
        got.len()
    );
    check_bytes(&got[..sent.len()], sent, what)?;
    check!(
        got[sent.len()..].iter().all(|b| *b == 0),
        "{what}: padding after the {} bytes sent is not zero: {:02x?}",
        sent.len(),
        &got[sent.len()..]
    );
    Ok(())
}

/// Posts requests 0, 1, … to a queue of 8 entries with `post` (the verb `call`) until one
/// is refused or more than `limit` were accepted: the queue must refuse with ENOMEM once
/// full, after at least 8. `full` names the full queue ("a full SRQ"), `accepted` what a
/// queue that refused nothing accepted ("requests on a QP with max_recv_wr 8"). Returns
/// how many were accepted.
pub fn fill_queue(
    call: &str,
    full: &str,
    accepted: &str,
    limit: u64,
    mut post: impl FnMut(u64) -> Result<(), FabricError>,
) -> Result<u64, Failure> {
    let mut posted = 0u64;
    let err = loop {
        match post(posted) {
            Ok(()) => posted += 1,
            Err(e) => break Some(e),
        }
        if posted > limit {
            break None;
        }
    };
    match err {
        None => fail!("{call} accepted {posted} {accepted}"),
        Some(e) => check!(
            e.errno() == Errno::ENOMEM && posted >= 8,
            "{call} on {full}: expected ENOMEM after at least 8, got {e} after {posted}"
        ),
    }
    Ok(posted)
}
