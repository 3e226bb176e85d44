//! Connecting a queue: the RDMA CM exchange, then the Fabrics Connect command.
//!
//! As the Linux host does: the CM request carries the NVMe-oF private data (RECFMT 0,
//! QID, HRQSIZE, HSQSIZE), IRD is the device's `max_qp_rd_atom` and the RNR retry count
//! 7 (forever); once established, the host posts its response receives and sends Connect
//! with the 1024-byte Connect data behind a keyed SGL (the target RDMA-READs it), or
//! in the capsule when asked.

use std::net::SocketAddr;
use std::time::Duration;

use super::error::{InitiatorError, Result};
use super::queue::{Command, DataMode, HostQueue, Transfer};
use crate::fabric::wait;
use crate::fabric::{CmEventKind, ConnParam};
use crate::wire::{
    CmAcceptRepr, CmRejectRepr, ConnectDataRepr, ConnectRepr, ConnectResponse, ConnectSuccess,
    CqeRepr, FabricsRepr, Psdt, SglRepr, Status, CONNECT_DATA_LEN,
};

/// The CM parameters of a connect request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmOptions {
    /// The private data, as bytes (normally a [`crate::wire::CmRequestRepr`]).
    pub private_data: Vec<u8>,
    /// IRD: RDMA READs the target may issue to this host at once.
    pub responder_resources: u8,
    /// ORD: RDMA READs this host issues (none).
    pub initiator_depth: u8,
    /// RNR retry count (7 = forever).
    pub rnr_retry_count: u8,
}

impl CmOptions {
    /// What a well-behaved host sends for `queue`.
    pub fn for_queue(queue: &HostQueue) -> CmOptions {
        let ird = queue.ctx().device_attr().max_qp_rd_atom.min(255) as u8;
        CmOptions {
            private_data: queue.spec().cm_request().to_bytes().to_vec(),
            responder_resources: ird,
            initiator_depth: 0,
            rnr_retry_count: 7,
        }
    }
}

/// Connects `queue` to `addr` through the CM and waits (bounded) for the outcome.
/// `Established` posts the response receives and returns the parsed accept (or `None`
/// if the accept private data does not parse); `Rejected` becomes
/// [`InitiatorError::Rejected`]; `Unreachable` [`InitiatorError::Unreachable`].
pub async fn cm_establish(
    queue: &mut HostQueue,
    addr: SocketAddr,
    opts: &CmOptions,
    bound: Duration,
) -> Result<Option<CmAcceptRepr>> {
    let ctx = queue.ctx().clone();
    let conn = ctx.cm_connect(
        addr,
        queue.qp().id,
        &ConnParam {
            private_data: opts.private_data.clone(),
            responder_resources: opts.responder_resources,
            initiator_depth: opts.initiator_depth,
            rnr_retry_count: opts.rnr_retry_count,
        },
    )?;
    queue.set_conn(conn);
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = match wait::cm_event(ctx.as_ref(), left).await {
            Ok(ev) => ev,
            Err(e) => {
                // As rdma_destroy_id after a connect timeout: the request is withdrawn.
                let _ = ctx.cm_destroy(conn);
                return Err(InitiatorError::from_wait(e, "CM connect outcome"));
            }
        };
        if ev.conn != conn {
            tracing::debug!(
                ?ev,
                "CM event for another identifier ignored while connecting"
            );
            continue;
        }
        match ev.kind {
            CmEventKind::Established { private_data } => {
                let accept = CmAcceptRepr::parse_bytes(&private_data).ok();
                queue.set_connected(conn, accept);
                queue.post_receives()?;
                return Ok(accept);
            }
            CmEventKind::Rejected {
                status,
                private_data,
            } => {
                let _ = ctx.cm_destroy(conn);
                return Err(InitiatorError::Rejected {
                    cm_status: status,
                    status: CmRejectRepr::parse_bytes(&private_data)
                        .ok()
                        .map(|r| r.status),
                    private_data,
                });
            }
            CmEventKind::Unreachable => {
                let _ = ctx.cm_destroy(conn);
                return Err(InitiatorError::Unreachable);
            }
            CmEventKind::Disconnected => {
                return Err(InitiatorError::Disconnected("CM connect outcome"))
            }
            CmEventKind::ConnectRequest { .. } => {}
        }
    }
}

/// The fields of a Fabrics Connect command (CID and SGL1 are set when sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// RECFMT (0).
    pub recfmt: u16,
    /// QID (normally the queue's).
    pub qid: u16,
    /// SQSIZE, 0's based (normally the queue's depth - 1).
    pub sqsize: u16,
    /// CATTR.
    pub cattr: u8,
    /// KATO in milliseconds (admin queue only; 0 on I/O queues).
    pub kato: u32,
    /// Send the Connect data in the capsule (SGL 01h) instead of keyed (40h).
    pub data_in_capsule: bool,
}

impl ConnectOptions {
    /// What a well-behaved host sends on `queue` (KATO only on the admin queue).
    pub fn for_queue(queue: &HostQueue, kato: u32, data_in_capsule: bool) -> ConnectOptions {
        ConnectOptions {
            recfmt: 0,
            qid: queue.qid(),
            sqsize: queue.sqsize(),
            cattr: 0,
            kato: if queue.qid() == 0 { kato } else { 0 },
            data_in_capsule,
        }
    }

    /// The Connect command (with CID 0 and an SGL1 to be replaced when sent).
    pub fn command(&self) -> FabricsRepr {
        FabricsRepr::Connect(ConnectRepr {
            psdt: Psdt::SglMptrContiguous,
            cid: 0,
            sgl1: SglRepr::in_capsule(0, CONNECT_DATA_LEN as u32),
            recfmt: self.recfmt,
            qid: self.qid,
            sqsize: self.sqsize,
            cattr: self.cattr,
            kato: self.kato,
        })
    }
}

/// Sends Connect with `data` (keyed unless `opts.data_in_capsule`) on a CM-connected
/// queue and waits for its response; returns the response's CQE, whatever its status.
/// A response that never comes is named as the Connect's ([`InitiatorError::for_connect`]).
pub async fn send_connect(
    queue: &mut HostQueue,
    data: &ConnectDataRepr,
    opts: &ConnectOptions,
) -> Result<CqeRepr> {
    let bytes = data.to_bytes()?;
    let mode = if opts.data_in_capsule {
        DataMode::InCapsule
    } else {
        DataMode::Keyed
    };
    let c = queue
        .execute(
            &Command::Fabrics(opts.command()),
            Transfer::ToTarget(&bytes),
            mode,
        )
        .await
        .map_err(InitiatorError::for_connect)?;
    Ok(c.cqe)
}

/// Sends Connect with `data` on a CM-connected queue and waits for its response.
/// Success returns DW0 decoded (the controller ID); any other status is
/// [`InitiatorError::Nvme`] with the whole CQE (decode it with [`connect_response`]).
pub async fn fabrics_connect(
    queue: &mut HostQueue,
    data: &ConnectDataRepr,
    opts: &ConnectOptions,
) -> Result<ConnectSuccess> {
    let cqe = send_connect(queue, data, opts).await?;
    match connect_response(&cqe)? {
        ConnectResponse::Success(s) => Ok(s),
        _ => Err(InitiatorError::Nvme {
            what: "Connect",
            status: cqe.status,
            cqe,
        }),
    }
}

/// Decodes a Connect response (success: CNTLID; invalid parameters: IATTR/IPO).
pub fn connect_response(cqe: &CqeRepr) -> Result<ConnectResponse> {
    Ok(ConnectResponse::decode(cqe.status, cqe.dw0())?)
}

/// Whether `status` is Connect Invalid Parameters.
pub fn is_invalid_parameters(status: Status) -> bool {
    status.same_code(Status::CONNECT_INVALID_PARAMETERS)
}
