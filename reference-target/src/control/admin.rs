//! The admin queue, served by software (it is never offloaded).
//!
//! - Property Get (4 bytes: VS, CC, CSTS; 8 bytes: CAP) and Property Set (4 bytes: CC);
//!   any other offset or size → 0/02h Invalid Field. CAP: MQES = the subsystem's queue
//!   depth − 1, CQR 1, TO 15 s (30 × 500 ms), CSS NVM. VS 1.3. CC.EN 0→1 sets CSTS.RDY,
//!   1→0 clears it (and SHST); CC.SHN ≠ 0 sets CSTS.SHST = complete.
//! - Identify CNS 01h (controller), 00h (namespace, with its NGUID), 02h (active namespace
//!   list), 03h (namespace identification descriptors: NGUID and UUID, derived from the
//!   subsystem NQN and nsid so they are stable across runs); 4096 bytes RDMA-WRITten to
//!   the host's keyed SGL (exactly 4096 bytes, else 0/0Fh), then the response. Other CNS →
//!   Invalid Field.
//! - Get Log Page: 01h Error Information (no errors recorded), 02h SMART / Health
//!   (nominal), 03h Firmware Slot (slot 1 active); 70h on a discovery controller
//!   (`control/discovery.rs`). NUMD (NUMDL, NUMDU) dwords from byte offset LPO: the SGL
//!   must be exactly that long (else 0/0Fh); LPO not dword aligned or past the log's end,
//!   a length above the queue's data buffer, or another log → 0/02h. Bytes past the log's
//!   end read as zero.
//! - Set / Get Features: `control/features.rs` (every mandatory feature of a Fabrics I/O
//!   controller, consistent with Identify; the others → Invalid Field).
//! - Asynchronous Event Request (0Ch): held open, never answered (the target raises no
//!   events); more than [`AERL`] + 1 at once → 1/05h.
//! - Keep Alive (18h) restarts the KATO timer.
//! - Any other opcode → 0/01h Invalid Opcode. Every error status has DNR set.
//! - Every admin command other than a Fabrics command needs the controller enabled
//!   (CSTS.RDY = 1), as in Linux nvmet; otherwise 0/0Ch Command Sequence Error.
//!
//! These are the commands the Linux host (`nvme connect`, `nvme discover`) sends while it
//! brings a controller up and keeps it alive.

use harness::wire::{
    AdminCommand, CapRepr, CcRepr, CstsRepr, FabricsRepr, GetLogPageRepr, PropertySize,
    SglAddressing, SglRepr, SqeRepr, Status, WireError, PROP_CAP, PROP_CC, PROP_CSTS, PROP_VS,
    SHN_NONE, SHST_COMPLETE,
};
use tokio::time::Instant;

use super::discovery;
use super::features;
use super::identity::{self, AERL, VS};
use super::queue::{Capsule, DataRef, Queue};

/// Most bytes one Get Log Page may return from the error information log (64 entries).
const ERROR_LOG_LEN: usize = 64 * 64;

/// A Fabrics command other than Connect on the admin queue.
pub(crate) async fn on_fabrics(q: &mut Queue, c: &Capsule<'_>) {
    let cid = c.cid();
    let (status, result) = match FabricsRepr::parse_bytes(c.sqe_bytes()) {
        Err(WireError::BadValue { field, .. }) if field.contains("fctype") => {
            (Status::INVALID_OPCODE.with_dnr(), 0)
        }
        Err(_) => (Status::INVALID_FIELD.with_dnr(), 0),
        Ok(FabricsRepr::PropertyGet(p)) => property_get(q, p.offset, p.size),
        Ok(FabricsRepr::PropertySet(p)) => property_set(q, p.offset, p.size, p.value),
        Ok(FabricsRepr::Connect(_)) => (Status::COMMAND_SEQUENCE_ERROR.with_dnr(), 0),
    };
    q.respond(cid, status, result, None).await;
}

/// CAP: MQES the subsystem's queue depth - 1, CQR, TO 15 s (30 x 500 ms), CSS NVM.
fn cap(q: &Queue) -> u64 {
    CapRepr {
        mqes: q.sh.subs[q.sub].depth.saturating_sub(1),
        cqr: true,
        to: 30,
        css: 1,
        ..CapRepr::default()
    }
    .emit()
}

fn property_get(q: &Queue, offset: u32, size: PropertySize) -> (Status, u64) {
    let st = q.sh.lock();
    let Some(c) = q.cntlid.and_then(|id| st.ctrls.get(&(q.sub, id))) else {
        return (Status::COMMAND_SEQUENCE_ERROR.with_dnr(), 0);
    };
    match (size, offset) {
        (PropertySize::Eight, PROP_CAP) => (Status::SUCCESS, cap(q)),
        (PropertySize::Four, PROP_VS) => (Status::SUCCESS, u64::from(VS)),
        (PropertySize::Four, PROP_CC) => (Status::SUCCESS, u64::from(c.cc)),
        (PropertySize::Four, PROP_CSTS) => (Status::SUCCESS, u64::from(c.csts)),
        _ => (Status::INVALID_FIELD.with_dnr(), 0),
    }
}

fn property_set(q: &Queue, offset: u32, size: PropertySize, value: u64) -> (Status, u64) {
    let mut st = q.sh.lock();
    let Some(c) = q.cntlid.and_then(|id| st.ctrls.get_mut(&(q.sub, id))) else {
        return (Status::COMMAND_SEQUENCE_ERROR.with_dnr(), 0);
    };
    if size != PropertySize::Four || offset != PROP_CC {
        return (Status::INVALID_FIELD.with_dnr(), 0);
    }
    let new = value as u32;
    let (old, cc) = (CcRepr::parse(c.cc), CcRepr::parse(new));
    c.cc = new;
    let mut csts = CstsRepr::parse(c.csts);
    if cc.en && !old.en {
        csts = CstsRepr {
            rdy: true,
            ..CstsRepr::default()
        };
    } else if !cc.en && old.en {
        csts = CstsRepr::default();
    }
    if cc.shn != SHN_NONE {
        csts.shst = SHST_COMPLETE;
    }
    c.csts = csts.emit();
    (Status::SUCCESS, 0)
}

/// An admin command (not Fabrics) on the admin queue.
pub(crate) async fn on_admin(q: &mut Queue, c: &Capsule<'_>) {
    let cid = c.cid();
    let sqe = match SqeRepr::parse_raw(&c.sqe) {
        Ok(s) => s,
        Err(_) => {
            q.respond(cid, Status::INVALID_FIELD.with_dnr(), 0, None)
                .await;
            return;
        }
    };
    let ready = q.cntlid.is_some_and(|id| {
        q.sh.lock()
            .ctrls
            .get(&(q.sub, id))
            .is_some_and(|c| c.csts & 1 != 0)
    });
    if !ready {
        // As Linux nvmet: admin commands need CSTS.RDY (Fabrics commands do not).
        q.respond(cid, Status::COMMAND_SEQUENCE_ERROR.with_dnr(), 0, None)
            .await;
        return;
    }
    let cdw = match sqe.command {
        harness::wire::SqeCommand::Other { cdw, .. } => cdw,
        _ => [0; 6],
    };
    let discovery = q.cntlid.is_some_and(|id| {
        q.sh.lock()
            .ctrls
            .get(&(q.sub, id))
            .is_some_and(|c| c.discovery)
    });
    match AdminCommand::parse(c.sqe.opcode(), cdw) {
        AdminCommand::GetLogPage(r) => get_log_page(q, c, r, discovery).await,
        AdminCommand::Identify { cns, .. } => identify(q, c, sqe.nsid, cns, discovery).await,
        AdminCommand::SetFeatures { fid, save, value } => {
            let (s, r) = features::features(q, true, save, fid, value, discovery);
            q.respond(cid, s, r, None).await;
        }
        AdminCommand::GetFeatures { fid, value, .. } => {
            let (s, r) = features::features(q, false, false, fid, value, discovery);
            q.respond(cid, s, r, None).await;
        }
        AdminCommand::AsyncEventRequest => async_event_request(q, cid).await,
        AdminCommand::KeepAlive => {
            if let Some(id) = q.cntlid {
                if let Some(c) = q.sh.lock().ctrls.get_mut(&(q.sub, id)) {
                    c.last_ka = Instant::now();
                }
            }
            q.respond(cid, Status::SUCCESS, 0, None).await;
        }
        other => {
            let op = other.opcode();
            q.sh.log(format!("admin-invalid-opcode opcode={op:#04x}"));
            q.respond(cid, Status::INVALID_OPCODE.with_dnr(), 0, None)
                .await;
        }
    }
}

/// Asynchronous Event Request: held (the answer would carry an event; the target raises
/// none), or 1/05h past the limit.
async fn async_event_request(q: &mut Queue, cid: u16) {
    let held = {
        let mut st = q.sh.lock();
        match q.cntlid.and_then(|id| st.ctrls.get_mut(&(q.sub, id))) {
            Some(c) if c.aers.len() <= usize::from(AERL) => {
                c.aers.push(cid);
                true
            }
            _ => false,
        }
    };
    if !held {
        q.respond(
            cid,
            Status::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED.with_dnr(),
            0,
            None,
        )
        .await;
    }
}

async fn identify(q: &mut Queue, c: &Capsule<'_>, nsid: u32, cns: u8, discovery: bool) {
    let cid = c.cid();
    let data = match cns {
        0x01 if discovery => Ok(identity::discovery_controller(q)),
        _ if discovery => Err(Status::INVALID_FIELD),
        0x01 => Ok(identity::io_controller(q)),
        0x00 => identity::namespace(q, nsid).ok_or(Status::INVALID_NAMESPACE),
        0x03 => identity::ns_descriptors(q, nsid).ok_or(Status::INVALID_NAMESPACE),
        0x02 if nsid >= 0xffff_fffe => Err(Status::INVALID_NAMESPACE),
        0x02 => {
            let mut ids: Vec<u32> = q.sh.subs[q.sub]
                .cfg
                .namespaces
                .iter()
                .map(|n| n.nsid)
                .filter(|id| *id > nsid)
                .collect();
            ids.sort_unstable();
            ids.truncate(1024);
            Ok(harness::wire::emit_nsid_list(&ids))
        }
        _ => Err(Status::INVALID_FIELD),
    };
    // A structure that does not emit is the target's own fault.
    let data = data.and_then(|d| d.map_err(|_| Status::INTERNAL_ERROR));
    match data {
        Ok(d) => send_data(q, c, cid, &d).await,
        Err(s) => q.respond(cid, s.with_dnr(), 0, None).await,
    }
}

/// Get Log Page (see the module docs).
async fn get_log_page(q: &mut Queue, c: &Capsule<'_>, cmd: GetLogPageRepr, discovery: bool) {
    let cid = c.cid();
    let (lid, len, lpo) = (cmd.lid, cmd.bytes(), cmd.lpo);
    let log = match (lid, discovery) {
        (0x70, true) => {
            let host = q.cntlid.and_then(|id| {
                q.sh.lock()
                    .ctrls
                    .get(&(q.sub, id))
                    .map(|c| c.hostnqn.clone())
            });
            discovery::log(q, host.as_deref().unwrap_or_default())
                .to_bytes()
                .map_err(|_| ())
        }
        (0x01, false) => Ok(vec![0u8; ERROR_LOG_LEN]),
        (0x02, false) => Ok(identity::smart_log()),
        (0x03, false) => identity::firmware_slot_log().map_err(|_| ()),
        _ => {
            q.sh.log(format!("get-log-page-unsupported lid={lid:#04x}"));
            return q
                .respond(cid, Status::INVALID_FIELD.with_dnr(), 0, None)
                .await;
        }
    };
    let Ok(log) = log else {
        return q
            .respond(cid, Status::INTERNAL_ERROR.with_dnr(), 0, None)
            .await;
    };
    if lpo % 4 != 0 || lpo > log.len() as u64 || len > q.data_mr.len {
        return q
            .respond(cid, Status::INVALID_FIELD.with_dnr(), 0, None)
            .await;
    }
    let mut data = vec![0u8; len as usize];
    let from = &log[lpo as usize..];
    let n = from.len().min(data.len());
    data[..n].copy_from_slice(&from[..n]);
    send_data(q, c, cid, &data).await;
}

/// Sends `data` to the host through the command's keyed SGL (exactly `data.len()` bytes,
/// else 0/0Fh; in-capsule → 0/02h: data to the host cannot travel in the capsule), then
/// the response.
async fn send_data(q: &mut Queue, c: &Capsule<'_>, cid: u16, data: &[u8]) {
    if let Ok(SglRepr::DataBlock {
        addressing: SglAddressing::Offset,
        ..
    }) = SglRepr::parse(&c.sqe.sgl1())
    {
        return q
            .respond(cid, Status::INVALID_FIELD.with_dnr(), 0, None)
            .await;
    }
    match q.data_ref(c, 0) {
        Err(s) => q.respond(cid, s, 0, None).await,
        Ok(Some(DataRef::Keyed {
            addr,
            key,
            len,
            invalidate,
        })) => {
            if len as usize != data.len() {
                return q
                    .respond(cid, Status::DATA_SGL_LENGTH_INVALID.with_dnr(), 0, None)
                    .await;
            }
            if !q.rdma_write(addr, key, data).await {
                return;
            }
            q.respond(cid, Status::SUCCESS, 0, invalidate.then_some(key))
                .await;
        }
        Ok(_) => {
            q.respond(cid, Status::INVALID_FIELD.with_dnr(), 0, None)
                .await
        }
    }
}
