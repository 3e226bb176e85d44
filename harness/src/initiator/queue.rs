//! One host queue pair: QP, CQ, response receive ring, capsule buffers, command IDs.
//!
//! Like the Linux host (`drivers/nvme/host/rdma.c`), a queue of depth `N` posts `N`
//! 16-byte receives for responses (HRQSIZE = `N`), announces HSQSIZE = SQSIZE = `N - 1`
//! (0's based) and allows up to `N` commands outstanding. Each command goes out as one
//! SEND of a capsule (64-byte SQE + in-capsule data) from a registered buffer slot; a slot
//! is reused once its SEND has completed. Responses are matched to commands by CID.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::error::{InitiatorError, Result};
use crate::fabric::wait;
use crate::fabric::{
    Access, ConnId, CqId, DeviceContext, MrInfo, PdId, QpCap, QpInfo, QpInit, RecvWr, SendOp,
    SendWr, WcOpcode, WcStatus, WorkCompletion,
};
use crate::wire::{
    CmAcceptRepr, CmRequestRepr, CqeRepr, FabricsRepr, SglRepr, SqeCommand, SqeRepr, CM_RECFMT_1_0,
    CQE_LEN, SQE_LEN,
};

const WR_SEND: u64 = 1 << 32;
const WR_RECV: u64 = 2 << 32;
const WR_INDEX: u64 = 0xffff_ffff;

/// Shape of a host queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// Queue ID: 0 for the admin queue.
    pub qid: u16,
    /// Depth in entries (SQSIZE + 1); also the number of response receives posted.
    pub depth: u16,
    /// Bytes of in-capsule data each capsule buffer can carry after the SQE.
    pub in_capsule_data: u32,
    /// Capsule buffers beyond `depth`, so misbehaviour can overrun the queue on purpose.
    pub spare_slots: u16,
}

impl QueueSpec {
    /// The admin queue as Linux builds it: depth 32 (NVME_AQ_DEPTH), room for the
    /// 1024-byte Connect data in the capsule.
    pub fn admin() -> QueueSpec {
        QueueSpec {
            qid: 0,
            depth: 32,
            in_capsule_data: 1024,
            spare_slots: 8,
        }
    }

    /// An I/O queue of `depth` entries with `in_capsule_data` bytes of in-capsule data.
    pub fn io(qid: u16, depth: u16, in_capsule_data: u32) -> QueueSpec {
        QueueSpec {
            qid,
            depth,
            in_capsule_data,
            spare_slots: 8,
        }
    }

    /// The CM request private data a well-behaved host sends for this queue.
    pub fn cm_request(&self) -> CmRequestRepr {
        CmRequestRepr {
            recfmt: CM_RECFMT_1_0,
            qid: self.qid,
            hrqsize: self.depth,
            hsqsize: self.depth.saturating_sub(1),
            cntlid: 0,
        }
    }
}

/// How a command's data travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataMode {
    /// Keyed SGL 40h: the target RDMA-READs / -WRITEs a host region.
    #[default]
    Keyed,
    /// Keyed SGL 4Fh: as `Keyed`, and the target invalidates the rkey with its response.
    KeyedInvalidate,
    /// In-capsule data (SGL 01h, offset 0): host-to-target data only.
    InCapsule,
}

/// The data of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer<'a> {
    /// No data: SGL1 is a null keyed descriptor (address, length and key 0), as Linux sends.
    None,
    /// Host to target (Write, Connect data, DSM ranges).
    ToTarget(&'a [u8]),
    /// Target to host, this many bytes (Read, Identify).
    FromTarget(u32),
}

/// A response capsule as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The completion queue entry.
    pub cqe: CqeRepr,
    /// The rkey the target invalidated with SEND with Invalidate, if it did.
    pub invalidated_rkey: Option<u32>,
}

/// What a command ended with: its response and any data read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The completion queue entry.
    pub cqe: CqeRepr,
    /// Data the target wrote (for [`Transfer::FromTarget`]; empty otherwise).
    pub data: Vec<u8>,
    /// The rkey of the command's keyed region, when it had one.
    pub rkey: Option<u32>,
    /// The rkey the target invalidated with the response, if it did.
    pub invalidated_rkey: Option<u32>,
}

/// A command to send, before its CID and SGL1 are filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// An NVMe (admin or I/O) command: SGL1 and CID are set by the queue.
    Nvme {
        /// Namespace ID.
        nsid: u32,
        /// Opcode and command dwords.
        command: SqeCommand,
    },
    /// A Fabrics command: SGL1 and CID are set by the queue.
    Fabrics(FabricsRepr),
}

impl Command {
    /// The 64 SQE bytes with `cid` and `sgl1`.
    pub fn emit(&self, cid: u16, sgl1: SglRepr) -> Result<[u8; SQE_LEN]> {
        Ok(match *self {
            Command::Nvme { nsid, command } => SqeRepr::new(cid, nsid, command, sgl1).to_bytes()?,
            Command::Fabrics(mut f) => {
                match &mut f {
                    FabricsRepr::Connect(c) => {
                        c.cid = cid;
                        c.sgl1 = sgl1;
                    }
                    FabricsRepr::PropertyGet(c) => {
                        c.cid = cid;
                        c.sgl1 = sgl1;
                    }
                    FabricsRepr::PropertySet(c) => {
                        c.cid = cid;
                        c.sgl1 = sgl1;
                    }
                }
                f.to_bytes()?
            }
        })
    }
}

/// One host queue pair. Create it with [`HostQueue::create`], connect it with
/// [`super::connect::cm_establish`], close it with [`HostQueue::disconnect`] (or on
/// purpose without, [`HostQueue::abort`]).
pub struct HostQueue {
    ctx: Arc<dyn DeviceContext>,
    pd: PdId,
    cq: CqId,
    qp: QpInfo,
    conn: Option<ConnId>,
    accept: Option<CmAcceptRepr>,
    spec: QueueSpec,
    capsule_mr: MrInfo,
    capsule_len: usize,
    free_slots: Vec<u32>,
    resp_mr: MrInfo,
    receives_posted: bool,
    outstanding: HashSet<u16>,
    next_cid: u16,
    arrived: HashMap<u16, VecDeque<Response>>,
    command_bound: Duration,
    /// Capsules posted on this queue so far (the target's SQ tail, as the host sees it).
    sent: u64,
    /// For each CID, the value of `sent` right after each capsule carrying it was posted.
    sent_at: HashMap<u16, VecDeque<u64>>,
    /// How strictly responses' SQ Head Pointer is checked.
    sqhd: SqhdCheck,
}

/// How strictly a queue checks the SQ Head Pointer of its responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqhdCheck {
    /// Inside the queue, and at or past the head the answered command's own capsule made
    /// (every capsule is counted by whoever answers).
    #[default]
    Exact,
    /// Inside the queue only: for queues whose commands are answered partly by an offload
    /// device and partly by target software, which the offload API gives no count of the
    /// capsules the device consumed (so software's SQHD can lag behind).
    InQueue,
}

impl std::fmt::Debug for HostQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostQueue")
            .field("qid", &self.spec.qid)
            .field("qp", &self.qp)
            .field("conn", &self.conn)
            .field("outstanding", &self.outstanding.len())
            .finish()
    }
}

impl HostQueue {
    /// Creates the verbs objects of a queue (CQ, QP in RESET, capsule and response
    /// buffers) in protection domain `pd`. `command_bound` bounds each response wait.
    pub fn create(
        ctx: Arc<dyn DeviceContext>,
        pd: PdId,
        spec: QueueSpec,
        command_bound: Duration,
    ) -> Result<HostQueue> {
        if spec.depth == 0 {
            return Err(InitiatorError::Invalid("queue depth 0".into()));
        }
        let slots = u32::from(spec.depth) + u32::from(spec.spare_slots);
        let depth = u32::from(spec.depth);
        let cq = ctx.create_cq(2 * slots + depth + 16)?;
        let qp = ctx.create_qp(
            pd,
            QpInit {
                send_cq: cq,
                recv_cq: cq,
                srq: None,
                cap: QpCap {
                    max_send_wr: slots,
                    max_recv_wr: depth,
                    max_send_sge: 2,
                    max_recv_sge: 1,
                },
            },
        )?;
        let capsule_len = SQE_LEN + spec.in_capsule_data as usize;
        let capsule_mr = ctx.reg_mr(
            pd,
            u64::from(slots) * capsule_len as u64,
            Access::LOCAL_WRITE,
        )?;
        let resp_mr = ctx.reg_mr(pd, u64::from(depth) * CQE_LEN as u64, Access::LOCAL_WRITE)?;
        Ok(HostQueue {
            ctx,
            pd,
            cq,
            qp,
            conn: None,
            accept: None,
            spec,
            capsule_mr,
            capsule_len,
            free_slots: (0..slots).rev().collect(),
            resp_mr,
            receives_posted: false,
            outstanding: HashSet::new(),
            next_cid: 0,
            arrived: HashMap::new(),
            command_bound,
            sent: 0,
            sent_at: HashMap::new(),
            sqhd: SqhdCheck::Exact,
        })
    }

    /// The device context.
    pub fn ctx(&self) -> &Arc<dyn DeviceContext> {
        &self.ctx
    }

    /// The protection domain (host data regions must be in it).
    pub fn pd(&self) -> PdId {
        self.pd
    }

    /// The queue pair.
    pub fn qp(&self) -> QpInfo {
        self.qp
    }

    /// The completion queue (sends and receives).
    pub fn cq(&self) -> CqId {
        self.cq
    }

    /// The CM identifier once connected.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// The shape of the queue.
    pub fn spec(&self) -> QueueSpec {
        self.spec
    }

    /// Queue ID.
    pub fn qid(&self) -> u16 {
        self.spec.qid
    }

    /// SQSIZE, 0's based (depth - 1).
    pub fn sqsize(&self) -> u16 {
        self.spec.depth.saturating_sub(1)
    }

    /// The target's CM accept private data, when it parsed.
    pub fn accept(&self) -> Option<CmAcceptRepr> {
        self.accept
    }

    /// Commands submitted whose response has not been taken.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// The bound of each response wait.
    pub fn command_bound(&self) -> Duration {
        self.command_bound
    }

    /// Changes the bound of each response wait.
    pub fn set_command_bound(&mut self, bound: Duration) {
        self.command_bound = bound;
    }

    /// Largest capsule (SQE + in-capsule data) a slot holds.
    pub fn capsule_capacity(&self) -> usize {
        self.capsule_len
    }

    /// Records the CM connection (called by the connect path).
    pub(crate) fn set_connected(&mut self, conn: ConnId, accept: Option<CmAcceptRepr>) {
        self.conn = Some(conn);
        self.accept = accept;
    }

    /// Records the CM identifier before the outcome is known.
    pub(crate) fn set_conn(&mut self, conn: ConnId) {
        self.conn = Some(conn);
    }

    /// Posts one receive per queue entry for responses (once the QP is connected).
    pub fn post_receives(&mut self) -> Result<()> {
        if self.receives_posted {
            return Ok(());
        }
        for i in 0..u32::from(self.spec.depth) {
            self.post_recv(i)?;
        }
        self.receives_posted = true;
        Ok(())
    }

    fn post_recv(&self, i: u32) -> Result<()> {
        self.ctx.post_recv(
            self.qp.id,
            &RecvWr {
                wr_id: WR_RECV | u64::from(i),
                sg_list: vec![self
                    .resp_mr
                    .sge(u64::from(i) * CQE_LEN as u64, CQE_LEN as u32)],
            },
        )?;
        Ok(())
    }

    /// A fresh command ID, not outstanding.
    pub fn alloc_cid(&mut self) -> u16 {
        loop {
            let cid = self.next_cid;
            self.next_cid = self.next_cid.wrapping_add(1);
            if !self.outstanding.contains(&cid) {
                return cid;
            }
        }
    }

    /// Sends a command with a fresh CID; `in_capsule` follows the SQE in the capsule.
    /// Refuses (QueueFull) past the queue depth.
    pub fn submit(&mut self, cmd: &Command, sgl1: SglRepr, in_capsule: &[u8]) -> Result<u16> {
        self.check_depth()?;
        let cid = self.alloc_cid();
        let sqe = cmd.emit(cid, sgl1)?;
        self.post_capsule(&sqe, in_capsule)?;
        Ok(cid)
    }

    /// Sends capsule bytes exactly as given (SQE and data already laid out); the CID is
    /// read from bytes 3:2 when there are that many, and tracked for
    /// [`HostQueue::wait_response`]. With `enforce_depth` false the depth is not checked.
    pub fn post_raw(&mut self, capsule: &[u8], enforce_depth: bool) -> Result<Option<u16>> {
        if enforce_depth {
            self.check_depth()?;
        }
        self.post_capsule(capsule, &[])
    }

    fn check_depth(&self) -> Result<()> {
        if self.outstanding.len() >= usize::from(self.spec.depth) {
            return Err(self.queue_full());
        }
        Ok(())
    }

    /// [`InitiatorError::QueueFull`] for this queue as it stands.
    fn queue_full(&self) -> InitiatorError {
        InitiatorError::QueueFull {
            qid: self.spec.qid,
            outstanding: self.outstanding.len(),
            depth: self.spec.depth.into(),
        }
    }

    fn post_capsule(&mut self, head: &[u8], tail: &[u8]) -> Result<Option<u16>> {
        let len = head.len() + tail.len();
        if len > self.capsule_len {
            return Err(InitiatorError::Invalid(format!(
                "capsule of {len} bytes exceeds the {} bytes of a capsule buffer",
                self.capsule_len
            )));
        }
        if self.free_slots.is_empty() {
            self.poll()?;
        }
        let Some(slot) = self.free_slots.pop() else {
            return Err(self.queue_full());
        };
        let off = u64::from(slot) * self.capsule_len as u64;
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(head);
        buf.extend_from_slice(tail);
        if !buf.is_empty() {
            self.ctx.mr_write(self.capsule_mr.id, off, &buf)?;
        }
        let sg_list = if buf.is_empty() {
            vec![]
        } else {
            vec![self.capsule_mr.sge(off, len as u32)]
        };
        if let Err(e) = self.ctx.post_send(
            self.qp.id,
            &SendWr::new(WR_SEND | u64::from(slot), SendOp::Send, sg_list),
        ) {
            self.free_slots.push(slot);
            return Err(e.into());
        }
        self.sent += 1;
        let cid = (buf.len() >= 4).then(|| u16::from_le_bytes([buf[2], buf[3]]));
        if let Some(cid) = cid {
            self.sent_at.entry(cid).or_default().push_back(self.sent);
        }
        if let Some(cid) = cid {
            self.outstanding.insert(cid);
        }
        Ok(cid)
    }

    /// Takes every completion available now (no waiting).
    pub fn poll(&mut self) -> Result<()> {
        loop {
            let wcs = self.ctx.poll_cq(self.cq, 32)?;
            if wcs.is_empty() {
                return Ok(());
            }
            for wc in wcs {
                self.process(wc)?;
            }
        }
    }

    fn process(&mut self, wc: WorkCompletion) -> Result<()> {
        let index = (wc.wr_id & WR_INDEX) as u32;
        if wc.wr_id & WR_SEND != 0 {
            self.free_slots.push(index);
            if wc.status != WcStatus::Success {
                return Err(InitiatorError::Completion {
                    what: "command capsule SEND",
                    status: wc.status,
                });
            }
            return Ok(());
        }
        if wc.status != WcStatus::Success {
            return Err(InitiatorError::Completion {
                what: "response receive",
                status: wc.status,
            });
        }
        debug_assert_eq!(wc.opcode, WcOpcode::Recv);
        let mut b = [0u8; CQE_LEN];
        self.ctx
            .mr_read(self.resp_mr.id, u64::from(index) * CQE_LEN as u64, &mut b)?;
        self.post_recv(index)?;
        if wc.byte_len as usize != CQE_LEN {
            return Err(InitiatorError::Protocol(format!(
                "response of {} bytes, expected {CQE_LEN}",
                wc.byte_len
            )));
        }
        let cqe = CqeRepr::parse_bytes(&b)?;
        self.check_cqe(&cqe)?;
        self.arrived
            .entry(cqe.cid)
            .or_default()
            .push_back(Response {
                cqe,
                invalidated_rkey: wc.invalidated_rkey,
            });
        Ok(())
    }

    /// Sets how strictly responses' SQ Head Pointer is checked.
    pub fn set_sqhd_check(&mut self, check: SqhdCheck) {
        self.sqhd = check;
    }

    /// Checks the fields of a response that do not depend on the command, as every target
    /// must fill them (NVMe base spec, Completion Queue Entry; NVMe-oF, Response Capsule):
    /// SQ Identifier = this queue's QID; Phase Tag 0 (reserved over fabrics); SQ Head
    /// Pointer inside the queue (below SQSIZE + 1) and, when the host can tell, between the
    /// head the command's own capsule made (it was consumed before it was answered) and
    /// the host's tail now (the target cannot have consumed what was not sent). A response
    /// that breaks one is a protocol error naming the field, expected and observed.
    fn check_cqe(&mut self, cqe: &CqeRepr) -> Result<()> {
        let qid = self.spec.qid;
        let entries = u64::from(self.spec.depth);
        let what = |field: &str, expected: String, got: String| {
            Err(InitiatorError::Protocol(format!(
                "response to CID {} on queue {qid}: {field}: expected {expected}, got {got}",
                cqe.cid
            )))
        };
        if cqe.sq_id != qid {
            return what(
                "SQ Identifier",
                format!("the queue's QID {qid}"),
                cqe.sq_id.to_string(),
            );
        }
        if cqe.phase {
            return what("Phase Tag", "0 (reserved over fabrics)".into(), "1".into());
        }
        if u64::from(cqe.sq_head) >= entries {
            return what(
                "SQ Head Pointer",
                format!("below the queue's {entries} entries"),
                cqe.sq_head.to_string(),
            );
        }
        let sent_at = self.sent_at.get_mut(&cqe.cid).and_then(VecDeque::pop_front);
        if let (Some(at), SqhdCheck::Exact) = (sent_at, self.sqhd) {
            let since = self.sent - at;
            if since < entries {
                let lo = at % entries;
                let ahead = (u64::from(cqe.sq_head) + entries - lo) % entries;
                if ahead > since {
                    return what(
                        "SQ Head Pointer",
                        format!(
                            "{lo}..={} (the command's capsule consumed, at most the {} sent)",
                            (lo + since) % entries,
                            self.sent
                        ),
                        cqe.sq_head.to_string(),
                    );
                }
            }
        }
        Ok(())
    }

    /// Waits (bounded by `bound`) for the response to `cid` and takes it.
    pub async fn wait_response(&mut self, cid: u16, bound: Duration) -> Result<Response> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            self.poll()?;
            if let Some(r) = self.take_arrived(cid) {
                return Ok(r);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(InitiatorError::TimedOut {
                    what: "command response",
                    bound,
                });
            }
            match wait::completion(self.ctx.as_ref(), self.cq, left).await {
                Ok(wc) => self.process(wc)?,
                Err(wait::WaitError::TimedOut(_)) => {
                    return Err(InitiatorError::TimedOut {
                        what: "command response",
                        bound,
                    })
                }
                Err(e) => return Err(InitiatorError::from_wait(e, "command response")),
            }
        }
    }

    fn take_arrived(&mut self, cid: u16) -> Option<Response> {
        let q = self.arrived.get_mut(&cid)?;
        let r = q.pop_front();
        if q.is_empty() {
            self.arrived.remove(&cid);
        }
        if r.is_some() {
            self.outstanding.remove(&cid);
        }
        r
    }

    /// Takes any response that arrived and was not waited for (lowest CID first),
    /// e.g. one for a CID the host never sent.
    pub fn take_any_response(&mut self) -> Result<Option<Response>> {
        self.poll()?;
        let Some(cid) = self.arrived.keys().min().copied() else {
            return Ok(None);
        };
        Ok(self.take_arrived(cid))
    }

    /// Responses that arrived for CIDs nobody waited for yet (e.g. unsolicited ones).
    pub fn arrived_cids(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.arrived.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Sends `cmd` with its data as `mode` asks and waits for the response (bounded by
    /// the queue's command bound). A keyed transfer registers a fresh region for the
    /// command and deregisters it afterwards. NVMe errors are not turned into `Err`:
    /// the status is in the returned CQE.
    pub async fn execute(
        &mut self,
        cmd: &Command,
        transfer: Transfer<'_>,
        mode: DataMode,
    ) -> Result<Completion> {
        let (sgl, in_capsule, mr): (SglRepr, &[u8], Option<MrInfo>) = match (transfer, mode) {
            (Transfer::None, _) => (SglRepr::keyed(0, 0, 0), &[], None),
            (Transfer::ToTarget(d), DataMode::InCapsule) => {
                (SglRepr::in_capsule(0, d.len() as u32), d, None)
            }
            (Transfer::FromTarget(_), DataMode::InCapsule) => {
                return Err(InitiatorError::Invalid(
                    "in-capsule data is host-to-target only".into(),
                ))
            }
            (Transfer::ToTarget(d), m) => {
                let mr = self.ctx.reg_mr(
                    self.pd,
                    d.len().max(1) as u64,
                    Access::LOCAL_WRITE | Access::REMOTE_READ,
                )?;
                self.ctx.mr_write(mr.id, 0, d)?;
                (keyed(m, mr.addr, d.len() as u32, mr.rkey), &[], Some(mr))
            }
            (Transfer::FromTarget(n), m) => {
                let mr = self.ctx.reg_mr(
                    self.pd,
                    u64::from(n.max(1)),
                    Access::LOCAL_WRITE | Access::REMOTE_WRITE,
                )?;
                (keyed(m, mr.addr, n, mr.rkey), &[], Some(mr))
            }
        };
        let result = self.execute_sgl(cmd, sgl, in_capsule).await;
        let mut data = Vec::new();
        if let (Ok(_), Some(mr), Transfer::FromTarget(n)) = (&result, mr, transfer) {
            data = vec![0u8; n as usize];
            self.ctx.mr_read(mr.id, 0, &mut data)?;
        }
        if let Some(mr) = mr {
            self.ctx.dereg_mr(mr.id)?;
        }
        let r = result?;
        Ok(Completion {
            cqe: r.cqe,
            data,
            rkey: mr.map(|m| m.rkey),
            invalidated_rkey: r.invalidated_rkey,
        })
    }

    /// Sends `cmd` with an explicit SGL1 and in-capsule bytes; waits for its response.
    pub async fn execute_sgl(
        &mut self,
        cmd: &Command,
        sgl1: SglRepr,
        in_capsule: &[u8],
    ) -> Result<Response> {
        let cid = self.submit(cmd, sgl1, in_capsule)?;
        let bound = self.command_bound;
        self.wait_response(cid, bound).await
    }

    /// Disconnects through the CM (DREQ), waits (bounded) for `Disconnected`, then frees
    /// everything.
    pub async fn disconnect(self, bound: Duration) -> Result<()> {
        self.disconnect_when(bound, async {}).await
    }

    /// [`HostQueue::disconnect`], awaiting `ready` between sending the DREQ and looking for
    /// `Disconnected` (say, until the target has torn the queue down, so that the two sides'
    /// work reaches a trace in one order whatever their timing); what `ready` gave.
    pub async fn disconnect_when<F: std::future::Future>(
        self,
        bound: Duration,
        ready: F,
    ) -> Result<F::Output> {
        let Some(conn) = self.conn else {
            let out = ready.await;
            self.free()?;
            return Ok(out);
        };
        self.ctx.cm_disconnect(conn)?;
        let out = ready.await;
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match wait::cm_event(self.ctx.as_ref(), left).await {
                Ok(ev) if ev.conn == conn => {
                    if matches!(ev.kind, crate::fabric::CmEventKind::Disconnected) {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(InitiatorError::from_wait(e, "CM Disconnected")),
            }
        }
        self.ctx.cm_destroy(conn)?;
        self.free()?;
        Ok(out)
    }

    /// Frees the verbs objects without any CM exchange: the peer is not told (an abrupt
    /// host loss, as a misbehaviour).
    pub fn abort(self) -> Result<()> {
        self.free()
    }

    fn free(self) -> Result<()> {
        self.ctx.destroy_qp(self.qp.id)?;
        self.ctx.destroy_cq(self.cq)?;
        self.ctx.dereg_mr(self.capsule_mr.id)?;
        self.ctx.dereg_mr(self.resp_mr.id)?;
        Ok(())
    }
}

fn keyed(mode: DataMode, addr: u64, len: u32, rkey: u32) -> SglRepr {
    if mode == DataMode::KeyedInvalidate {
        SglRepr::keyed_invalidate(addr, len, rkey)
    } else {
        SglRepr::keyed(addr, len, rkey)
    }
}
