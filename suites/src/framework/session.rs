//! A connected, offloaded host queue on the device under test, set up the way a target's
//! control plane would: an NVMe-oF SRQ, a backend controller with a namespace mapped, a QP
//! of that SRQ accepted for the host, the host's Fabrics Connect received through the
//! device and answered by software, then (unless told otherwise) `qp_set_nvmf(ENABLE)` —
//! the RFC's order ("once a CONNECT command was received, software can modify the QP").
//! The device learns the queue's QID and size from that Connect, as it passes through it.
//! The data-path areas start from here.

use std::net::SocketAddr;

use std::time::Duration;

use harness::api::{
    CtrlHandle, MemRef, NsMapping, NvmeCtrlAttrs, NvmfSrq, NvmfSrqAttrs, QpNvmfFlags,
};
use harness::backend::emulated::LbaFormat;
use harness::fabric::{
    wait, Access, CmEventKind, ConnParam, CqId, MrInfo, PdId, QpId, QpInfo, QpInit, RecvWr,
};
use harness::initiator::connect::{cm_establish, fabrics_connect, CmOptions, ConnectOptions};
use harness::initiator::software::{answer_connect, SoftwareRecvs, HAND_BUILT_NQN};
use harness::initiator::{DataMode, HostQueue, IoQueue, QueueSpec};
use harness::wire::{CmAcceptRepr, Status};

use super::backends::BackendRef;
use super::dut::Dut;
use super::failure::Failure;
use crate::{check, check_eq};

/// Bound of every wait while setting up (virtual time on sim).
pub const SETUP_BOUND: Duration = Duration::from_secs(5);
/// The front-facing nsid sessions map their namespace under.
pub const FE_NSID: u32 = 1;

/// How to set a session up.
#[derive(Debug, Clone)]
pub struct SessionOpts {
    /// LBA format of the backend namespace.
    pub format: LbaFormat,
    /// Whether to enable offload on the target QP.
    pub offload: bool,
    /// In-capsule data bytes the host may send (the SRQ's ioccsz is sized for it).
    pub in_capsule: u32,
    /// Host queue depth.
    pub depth: u16,
    /// Depth of the SRQ's backend queues (`nvme_queue_depth`); 0: the host queue depth.
    pub backend_depth: u16,
    /// Backend command timeout, µs (0 = device default).
    pub cmd_timeout_us: u32,
    /// Software receives to post on the NVMe-oF SRQ (for commands not offloaded).
    pub sw_recvs: u32,
    /// The SRQ's in-capsule data offset (`icdoff`), 16-byte units: capsules are sized for
    /// this much padding after the SQE, then `in_capsule` bytes of data.
    pub icdoff: u16,
    /// Extra SQs of the backend controller (beside its first).
    pub extra_sqs: u16,
    /// Initial value of every backend SQ's tail doorbell (below the backend queue depth).
    pub sq_doorbell_ini: u16,
    /// Initial value of the backend CQ's head doorbell (below the backend queue depth).
    pub cq_doorbell_ini: u16,
    /// Where the staging buffer starts in its memory region: the region is this many bytes
    /// longer at each end (0: the buffer is the whole region).
    pub staging_offset: u64,
}

impl Default for SessionOpts {
    fn default() -> Self {
        SessionOpts {
            format: LbaFormat::L4096,
            offload: true,
            in_capsule: 0,
            depth: 32,
            backend_depth: 0,
            cmd_timeout_us: 0,
            sw_recvs: 16,
            icdoff: 0,
            extra_sqs: 0,
            sq_doorbell_ini: 0,
            cq_doorbell_ini: 0,
            staging_offset: 0,
        }
    }
}

/// A connected host queue and the target objects behind it.
pub struct Session {
    /// The host's I/O queue (nsid [`FE_NSID`]).
    pub io: IoQueue,
    /// The target QP (engine context handle).
    pub qp: QpId,
    /// Its QP number on the device (for fabric faults aimed at it).
    pub qpn: u32,
    /// The target QP's CQ (software completions).
    pub cq: CqId,
    /// The NVMe-oF SRQ.
    pub srq: NvmfSrq,
    /// Its attributes.
    pub attrs: NvmfSrqAttrs,
    /// The backend controller handle.
    pub ctrl: CtrlHandle,
    /// The backend controller (media behind the device's back, faults).
    pub backend: BackendRef,
    /// Its attributes.
    pub ctrl_attrs: NvmeCtrlAttrs,
    /// The target PD.
    pub pd: PdId,
    /// The staging buffer's region.
    pub staging: MrInfo,
    /// Software's receive buffers on the NVMe-oF SRQ (one capsule-sized slot per receive).
    pub sw_buf: MrInfo,
    /// Software's receives on the SRQ, as [`Dut::connect_queue`] needs them.
    pub sw: SwRecvs,
}

impl Session {
    /// The counters of the session's namespace ([`FE_NSID`] on its controller).
    pub fn counters(&self, d: &Dut) -> Result<harness::api::NsCounters, Failure> {
        Ok(d.provider.ns_counters(self.ctrl, FE_NSID)?)
    }
}

/// Software's receives on an NVMe-oF SRQ: receive `SW_WR_BASE + i` scatters into slot `i`
/// of `buf`, each `slot` bytes long.
#[derive(Debug, Clone, Copy)]
pub struct SwRecvs {
    /// The buffer.
    pub buf: MrInfo,
    /// Bytes per slot (the SRQ's IOCCSZ × 16).
    pub slot: u64,
}

/// The work request ID of software's first receive on the SRQ.
pub const SW_WR_BASE: u64 = 1000;

/// The controller ID software gives sessions' I/O queues in its Connect response.
pub const SESSION_CNTLID: u16 = 1;

impl Dut {
    /// A session with the default options and the DUT's namespace format.
    pub async fn default_session(&self, port: u16) -> Result<Session, Failure> {
        let opts = SessionOpts {
            format: self.ns_format(),
            ..Default::default()
        };
        self.session(&opts, port).await
    }

    /// Sets up a session (see the module docs) listening on `port`.
    pub async fn session(&self, opts: &SessionOpts, port: u16) -> Result<Session, Failure> {
        let pd = self.pd()?;
        let staging_len = self.staging_len();
        let staging_mr = self.staging(pd, staging_len + 2 * opts.staging_offset)?;
        let mut attrs = self.srq_attrs(&staging_mr);
        attrs.staging_buf = MemRef::of(&staging_mr, opts.staging_offset, staging_len);
        attrs.icdoff = opts.icdoff;
        let want_ioccsz = (64 + u32::from(opts.icdoff) * 16 + opts.in_capsule).div_ceil(16);
        attrs.ioccsz = want_ioccsz.clamp(self.caps.min_ioccsz.max(4), self.caps.max_ioccsz);
        let backend_depth = if opts.backend_depth == 0 {
            opts.depth
        } else {
            opts.backend_depth
        };
        attrs.nvme_queue_depth = u32::from(backend_depth).clamp(
            self.caps.min_nvme_queue_depth,
            self.caps.max_nvme_queue_depth,
        );
        let srq = self.provider.create_srq(pd, &attrs)?;
        let backends = self.backends()?;
        let mut ctrl_attrs = backends.create_rings(
            pd,
            &attrs,
            &staging_mr,
            1 + usize::from(opts.extra_sqs),
            (opts.sq_doorbell_ini, opts.cq_doorbell_ini),
            &[(1, opts.format)],
        )?;
        ctrl_attrs.cmd_timeout_us = opts.cmd_timeout_us;
        let backend = backends
            .backend_of(&ctrl_attrs)
            .ok_or_else(|| Failure::new("backend not on the bus"))?;
        let ctrl = self.provider.create_nvme_ctrl(srq.handle, &ctrl_attrs)?;
        self.provider.map_nsid(
            ctrl,
            &NsMapping {
                fe_nsid: FE_NSID,
                nvme_nsid: 1,
                lba_data_size: opts.format.lba_data_size(),
            },
        )?;
        // Software's receives on the SRQ, for whatever is not offloaded.
        let slot = u64::from(attrs.ioccsz) * 16;
        let sw_buf = self.ctx.reg_mr(
            pd,
            slot * u64::from(opts.sw_recvs.max(1)),
            Access::LOCAL_WRITE,
        )?;
        for i in 0..opts.sw_recvs.max(1) {
            self.ctx.post_srq_recv(
                srq.srq,
                &RecvWr {
                    wr_id: SW_WR_BASE + u64::from(i),
                    sg_list: vec![sw_buf.sge(u64::from(i) * slot, slot as u32)],
                },
            )?;
        }
        let sw = SwRecvs { buf: sw_buf, slot };
        let (io, qp, cq) = self.connect_queue(&srq, pd, sw, opts, port).await?;
        Ok(Session {
            io,
            qp: qp.id,
            qpn: qp.qpn,
            cq,
            srq,
            attrs,
            ctrl,
            backend,
            ctrl_attrs,
            pd,
            staging: staging_mr,
            sw_buf,
            sw,
        })
    }

    /// Connects one more host queue to a new QP on `srq` (offloaded when `opts.offload`),
    /// listening on `port`.
    pub async fn connect_queue(
        &self,
        srq: &NvmfSrq,
        pd: PdId,
        sw: SwRecvs,
        opts: &SessionOpts,
        port: u16,
    ) -> Result<(IoQueue, QpInfo, CqId), Failure> {
        let addr = SocketAddr::new(self.target_ip.into(), port);
        self.ctx.cm_listen(addr)?;
        let host = self.traced_as(self.fabric.open(&self.host_device)?, "host");
        let hpd = host.alloc_pd()?;
        let spec = QueueSpec::io(1, opts.depth, u32::from(opts.icdoff) * 16 + opts.in_capsule);
        let mut queue = HostQueue::create(host, hpd, spec, super::wait::wait(SETUP_BOUND))?;
        let cm_opts = CmOptions::for_queue(&queue);
        let connecting = cm_establish(&mut queue, addr, &cm_opts, super::wait::wait(SETUP_BOUND));
        let accepting = async {
            // Events of earlier connections (their ESTABLISHED) may come first.
            let deadline = tokio::time::Instant::now() + super::wait::wait(SETUP_BOUND);
            let ev = loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let ev = wait::cm_event(self.ctx.as_ref(), left).await?;
                if matches!(ev.kind, CmEventKind::ConnectRequest { .. }) {
                    break ev;
                }
            };
            let cq = self.ctx.create_cq(256)?;
            let qp = self.ctx.create_qp(pd, QpInit::on_cq(cq, Some(srq.srq)))?;
            let accept = CmAcceptRepr {
                recfmt: 0,
                crqsize: opts.depth,
            };
            let param = ConnParam {
                private_data: accept.to_bytes().to_vec(),
                responder_resources: 0,
                initiator_depth: 16,
                rnr_retry_count: 7,
            };
            self.ctx.cm_accept(ev.conn, qp.id, &param)?;
            Ok::<_, Failure>((qp, cq))
        };
        let (connected, accepted) = tokio::join!(connecting, accepting);
        let (qp, cq) = accepted?;
        connected?;
        // The host's Connect passes through the device to software, which answers it.
        let host_cfg = harness::initiator::HostConfig::new(HAND_BUILT_NQN);
        let connect_opts = ConnectOptions::for_queue(&queue, 0, false);
        let data = host_cfg.connect_data(SESSION_CNTLID);
        let software = SoftwareRecvs {
            srq: srq.srq,
            buf: sw.buf,
            slot: sw.slot,
            wr_base: SW_WR_BASE,
            repost: true,
        };
        let (hosted, answered) = tokio::join!(
            fabrics_connect(&mut queue, &data, &connect_opts),
            answer_connect(
                &self.ctx,
                (qp.id, cq, pd),
                software,
                &connect_opts,
                SESSION_CNTLID,
                super::wait::wait(SETUP_BOUND)
            )
        );
        answered?;
        let granted = hosted.map_err(|e| Failure::from(e).context("the host's Connect"))?;
        crate::check_eq!(
            granted.cntlid,
            SESSION_CNTLID,
            "the Connect response's CNTLID"
        );
        if opts.offload {
            self.provider.qp_set_nvmf(qp.id, QpNvmfFlags::ENABLE)?;
        }
        Ok((
            IoQueue::new(queue, FE_NSID, opts.format.lba_data_size()),
            qp,
            cq,
        ))
    }
}

/// A deterministic data pattern.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Block `slba` holds `data`: read back through the device when it offloads reads
/// (`reads`), else found on `backend`'s media. `what` names the block in the messages.
pub async fn block_holds(
    io: &mut IoQueue,
    backend: &BackendRef,
    reads: bool,
    (slba, data): (u64, &[u8]),
    what: &str,
) -> Result<(), Failure> {
    if reads {
        let r = io.read(slba, 1, DataMode::Keyed).await?;
        check_eq!(r.cqe.status, Status::SUCCESS, "{what}: the read's status");
        check!(
            r.data == data,
            "{what}: the block read back differs from the one written"
        );
    } else {
        check!(
            backend.read_block(slba)? == data,
            "{what}: the backend's media differs from the block written"
        );
    }
    Ok(())
}
