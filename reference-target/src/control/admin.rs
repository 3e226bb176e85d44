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
//! - Set / Get Features: Number of Queues (07h: grants up to [`MAX_IO_QUEUES`]; I/O
//!   controllers only), Asynchronous Event Configuration (0Bh, kept), Keep Alive Timer
//!   (0Fh, Get only). Other FIDs → Invalid Field.
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
    FabricsRepr, PropertySize, SglAddressing, SglRepr, SqeRepr, Status, WireError,
};
use tokio::time::Instant;

use super::connect::MAX_IO_QUEUES;
use super::queue::{DataRef, Queue};

/// Vendor ID reported in Identify Controller (PCI-SIG's "no vendor" is not allowed; this
/// value is the project's placeholder).
pub const VID: u16 = 0x1de5;
/// Model number reported in Identify Controller.
pub const MODEL: &str = "nvmf-conform reference target";
/// Firmware revision reported in Identify Controller.
pub const FIRMWARE: &str = "0.1.0";
/// Version (VS property and Identify Controller VER): NVMe 1.3.
pub const VS: u32 = 0x0001_0300;
/// Keep Alive Support granularity (KAS), 100 ms units.
pub const KAS: u16 = 10;
/// Asynchronous Event Request Limit (0's based): at most this + 1 requests held at once.
pub const AERL: u8 = 3;
/// Most bytes one Get Log Page may return from the error information log (64 entries).
const ERROR_LOG_LEN: usize = 64 * 64;

/// A Fabrics command other than Connect on the admin queue.
pub(crate) async fn on_fabrics(q: &mut Queue, bytes: &[u8]) {
    let cid = u16::from_le_bytes([bytes[2], bytes[3]]);
    let (status, result) = match FabricsRepr::parse_bytes(&bytes[..64]) {
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

fn cap(q: &Queue) -> u64 {
    let mqes = u64::from(q.sh.subs[q.sub].depth.saturating_sub(1));
    mqes | 1 << 16 | 30 << 24 | 1 << 37
}

fn property_get(q: &Queue, offset: u32, size: PropertySize) -> (Status, u64) {
    let st = q.sh.lock();
    let Some(c) = q.cntlid.and_then(|id| st.ctrls.get(&(q.sub, id))) else {
        return (Status::COMMAND_SEQUENCE_ERROR.with_dnr(), 0);
    };
    match (size, offset) {
        (PropertySize::Eight, 0x00) => (Status::SUCCESS, cap(q)),
        (PropertySize::Four, 0x08) => (Status::SUCCESS, u64::from(VS)),
        (PropertySize::Four, 0x14) => (Status::SUCCESS, u64::from(c.cc)),
        (PropertySize::Four, 0x1c) => (Status::SUCCESS, u64::from(c.csts)),
        _ => (Status::INVALID_FIELD.with_dnr(), 0),
    }
}

/// CSTS.SHST, the shutdown status field (bits 3:2) ...
const CSTS_SHST: u32 = 0b11 << 2;
/// ... and its value 10b, shutdown processing complete.
const CSTS_SHST_COMPLETE: u32 = 0b10 << 2;

fn property_set(q: &Queue, offset: u32, size: PropertySize, value: u64) -> (Status, u64) {
    let mut st = q.sh.lock();
    let Some(c) = q.cntlid.and_then(|id| st.ctrls.get_mut(&(q.sub, id))) else {
        return (Status::COMMAND_SEQUENCE_ERROR.with_dnr(), 0);
    };
    if size != PropertySize::Four || offset != 0x14 {
        return (Status::INVALID_FIELD.with_dnr(), 0);
    }
    let new = value as u32;
    let (old_en, en) = (c.cc & 1 != 0, new & 1 != 0);
    c.cc = new;
    if en && !old_en {
        c.csts = 1;
    } else if !en && old_en {
        c.csts = 0;
    }
    if (new >> 14) & 0b11 != 0 {
        c.csts = (c.csts & !CSTS_SHST) | CSTS_SHST_COMPLETE;
    }
    (Status::SUCCESS, 0)
}

/// An admin command (not Fabrics) on the admin queue.
pub(crate) async fn on_admin(q: &mut Queue, bytes: &[u8]) {
    let cid = u16::from_le_bytes([bytes[2], bytes[3]]);
    let sqe =
        match harness::wire::Sqe::new_checked(&bytes[..64]).and_then(|v| SqeRepr::parse_raw(&v)) {
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
    match bytes[0] {
        0x02 => get_log_page(q, bytes, cdw, discovery).await,
        0x06 => identify(q, bytes, sqe.nsid, cdw[0] & 0xff, discovery).await,
        0x09 | 0x0a => {
            let (s, r) = features(q, bytes[0] == 0x09, cdw[0] & 0xff, cdw[1], discovery);
            q.respond(cid, s, r, None).await;
        }
        0x0c => async_event_request(q, cid).await,
        0x18 => {
            if let Some(id) = q.cntlid {
                if let Some(c) = q.sh.lock().ctrls.get_mut(&(q.sub, id)) {
                    c.last_ka = Instant::now();
                }
            }
            q.respond(cid, Status::SUCCESS, 0, None).await;
        }
        op => {
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

fn features(q: &Queue, set: bool, fid: u32, cdw11: u32, discovery: bool) -> (Status, u64) {
    let mut st = q.sh.lock();
    let Some(c) = q.cntlid.and_then(|id| st.ctrls.get_mut(&(q.sub, id))) else {
        return (Status::COMMAND_SEQUENCE_ERROR.with_dnr(), 0);
    };
    match (fid, set) {
        (0x07, _) if discovery => (Status::INVALID_FIELD.with_dnr(), 0),
        (0x0b, true) => {
            c.aec = cdw11;
            (Status::SUCCESS, 0)
        }
        (0x0b, false) => (Status::SUCCESS, u64::from(c.aec)),
        (0x07, true) => {
            let (nsqr, ncqr) = (cdw11 & 0xffff, cdw11 >> 16);
            if nsqr == 0xffff || ncqr == 0xffff {
                return (Status::INVALID_FIELD.with_dnr(), 0);
            }
            let n = (nsqr.min(ncqr) + 1).min(u32::from(MAX_IO_QUEUES)) as u16;
            c.granted = Some(n);
            let v = u64::from(n - 1);
            (Status::SUCCESS, v | v << 16)
        }
        (0x07, false) => {
            let v = u64::from(c.granted.unwrap_or(MAX_IO_QUEUES) - 1);
            (Status::SUCCESS, v | v << 16)
        }
        (0x0f, false) => (Status::SUCCESS, c.kato.as_millis() as u64),
        _ => (Status::INVALID_FIELD.with_dnr(), 0),
    }
}

pub(crate) fn put(buf: &mut [u8], off: usize, v: &[u8]) {
    buf[off..off + v.len()].copy_from_slice(v);
}

fn ascii(buf: &mut [u8], off: usize, len: usize, s: &str) {
    let b = &mut buf[off..off + len];
    b.fill(b' ');
    let n = s.len().min(len);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// The 4096 bytes of an Identify Controller structure with what every controller of the
/// target shares filled in: VID, SSVID, serial number `serial`, model, firmware revision.
pub(crate) fn controller_identity(serial: &str) -> Vec<u8> {
    let mut d = vec![0u8; 4096];
    put(&mut d, 0, &VID.to_le_bytes());
    put(&mut d, 2, &VID.to_le_bytes());
    ascii(&mut d, 4, 20, serial);
    ascii(&mut d, 24, 40, MODEL);
    ascii(&mut d, 64, 8, FIRMWARE);
    d
}

/// Identify Controller (CNS 01h).
pub(crate) fn identify_controller(q: &Queue) -> Vec<u8> {
    let sh = &q.sh;
    let sub = &sh.subs[q.sub];
    let mut d = controller_identity(&format!("NVMFCONFORM{:04}", q.sub));
    d[72] = 6; // RAB
    let max_io = u64::from(sub.attrs.max_io_sz.max(4096));
    d[77] = (63 - (max_io / 4096).leading_zeros()) as u8; // MDTS from max_io_sz
    put(&mut d, 78, &q.cntlid.unwrap_or(0).to_le_bytes());
    put(&mut d, 80, &VS.to_le_bytes());
    d[76] = 1 << 1; // CMIC: the subsystem may hold two or more controllers (one per host)
    d[111] = 1; // CNTRLTYPE: I/O controller
    d[259] = AERL;
    d[260] = 0b11; // FRMW: one slot, slot 1 read-only
    put(&mut d, 320, &KAS.to_le_bytes());
    d[512] = 0x66; // SQES
    d[513] = 0x44; // CQES
    put(&mut d, 514, &sub.depth.to_le_bytes()); // MAXCMD
    let nn = sub.cfg.namespaces.iter().map(|n| n.nsid).max().unwrap_or(0);
    put(&mut d, 516, &nn.to_le_bytes());
    put(&mut d, 520, &((1u16 << 2) | (1 << 3)).to_le_bytes()); // ONCS: DSM, Write Zeroes
    d[525] = 1; // VWC present (Flush)
    let sgls: u32 = 1 | (1 << 2) | (1 << 20);
    put(&mut d, 536, &sgls.to_le_bytes());
    let n = sub.cfg.nqn.len().min(255);
    put(&mut d, 768, &sub.cfg.nqn.as_bytes()[..n]);
    put(&mut d, 1792, &sub.attrs.ioccsz.to_le_bytes());
    put(&mut d, 1796, &1u32.to_le_bytes()); // IORCSZ
    put(&mut d, 1800, &sub.attrs.icdoff.to_le_bytes());
    d[1803] = 1; // MSDBD
    d
}

/// Identify Namespace (CNS 00h); `None` for an nsid the subsystem does not have.
pub(crate) fn identify_namespace(q: &Queue, nsid: u32) -> Option<Vec<u8>> {
    let n = q.sh.subs[q.sub]
        .cfg
        .namespaces
        .iter()
        .find(|n| n.nsid == nsid)?;
    let mut d = vec![0u8; 4096];
    let blocks = n.blocks();
    put(&mut d, 0, &blocks.to_le_bytes());
    put(&mut d, 8, &blocks.to_le_bytes());
    put(&mut d, 16, &blocks.to_le_bytes());
    d[25] = 0; // NLBAF: one format
    let meta = n.lba_format.meta;
    d[26] = if meta > 0 { 0x10 } else { 0 }; // FLBAS: format 0, metadata extended
    d[27] = if meta > 0 { 1 } else { 0 }; // MC: extended LBA
    put(&mut d, 128, &(meta as u16).to_le_bytes());
    d[130] = n.lba_format.data.trailing_zeros() as u8;
    d[30] = 1; // NMIC: may be attached to two or more controllers (every host's)
    put(
        &mut d,
        104,
        &namespace_ids(&q.sh.subs[q.sub].cfg.nqn, nsid).0,
    );
    Some(d)
}

/// The NGUID and UUID of namespace `nsid` of subsystem `nqn`: FNV-1a of both, so they are
/// the same on every run and differ between namespaces and subsystems. The UUID is a
/// version 8 (custom) UUID.
pub(crate) fn namespace_ids(nqn: &str, nsid: u32) -> ([u8; 16], [u8; 16]) {
    let fnv = |basis: u64| {
        let mut h = basis;
        for b in nqn.bytes().chain(nsid.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let mut nguid = [0u8; 16];
    nguid[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    nguid[8..].copy_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&fnv(0x8422_2325_cbf2_9ce4).to_be_bytes());
    uuid[8..].copy_from_slice(&fnv(0x07bb_0142_6c62_272e).to_be_bytes());
    uuid[6] = (uuid[6] & 0x0f) | 0x80;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    (nguid, uuid)
}

/// Namespace Identification Descriptor list (CNS 03h): NGUID (NIDT 2), UUID (NIDT 3).
fn ns_descriptors(q: &Queue, nsid: u32) -> Option<Vec<u8>> {
    let nqn = &q.sh.subs[q.sub].cfg.nqn;
    q.sh.subs[q.sub]
        .cfg
        .namespaces
        .iter()
        .find(|n| n.nsid == nsid)?;
    let (nguid, uuid) = namespace_ids(nqn, nsid);
    let mut d = vec![0u8; 4096];
    d[0] = 2;
    d[1] = 16;
    put(&mut d, 4, &nguid);
    d[20] = 3;
    d[21] = 16;
    put(&mut d, 24, &uuid);
    Some(d)
}

async fn identify(q: &mut Queue, bytes: &[u8], nsid: u32, cns: u32, discovery: bool) {
    let cid = u16::from_le_bytes([bytes[2], bytes[3]]);
    let data = match cns {
        0x01 if discovery => Ok(super::discovery::identify_controller(q)),
        _ if discovery => Err(Status::INVALID_FIELD),
        0x01 => Ok(identify_controller(q)),
        0x00 => identify_namespace(q, nsid).ok_or(Status::INVALID_NAMESPACE),
        0x03 => ns_descriptors(q, nsid).ok_or(Status::INVALID_NAMESPACE),
        0x02 => {
            let mut d = vec![0u8; 4096];
            let mut ids: Vec<u32> = q.sh.subs[q.sub]
                .cfg
                .namespaces
                .iter()
                .map(|n| n.nsid)
                .filter(|id| *id > nsid)
                .collect();
            ids.sort_unstable();
            for (i, id) in ids.iter().take(1024).enumerate() {
                put(&mut d, 4 * i, &id.to_le_bytes());
            }
            if nsid >= 0xffff_fffe {
                Err(Status::INVALID_NAMESPACE)
            } else {
                Ok(d)
            }
        }
        _ => Err(Status::INVALID_FIELD),
    };
    match data {
        Ok(d) => send_data(q, bytes, cid, &d).await,
        Err(s) => q.respond(cid, s.with_dnr(), 0, None).await,
    }
}

/// Get Log Page (see the module docs).
async fn get_log_page(q: &mut Queue, bytes: &[u8], cdw: [u32; 6], discovery: bool) {
    let cid = u16::from_le_bytes([bytes[2], bytes[3]]);
    let lid = (cdw[0] & 0xff) as u8;
    let numd = u64::from(cdw[0] >> 16) | u64::from(cdw[1] & 0xffff) << 16;
    let len = (numd + 1) * 4;
    let lpo = u64::from(cdw[2]) | u64::from(cdw[3]) << 32;
    let log = match (lid, discovery) {
        (0x70, true) => {
            let host = q.cntlid.and_then(|id| {
                q.sh.lock()
                    .ctrls
                    .get(&(q.sub, id))
                    .map(|c| c.hostnqn.clone())
            });
            super::discovery::log(q, host.as_deref().unwrap_or_default()).to_bytes()
        }
        (0x01, false) => Ok(vec![0u8; ERROR_LOG_LEN]),
        (0x02, false) => Ok(smart_log()),
        (0x03, false) => Ok(firmware_slot_log()),
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
    send_data(q, bytes, cid, &data).await;
}

/// SMART / Health Information (02h), 512 bytes: no warnings, 25 °C, spare 100 % (threshold
/// 10 %), nothing used up.
fn smart_log() -> Vec<u8> {
    let mut d = vec![0u8; 512];
    put(&mut d, 1, &298u16.to_le_bytes()); // composite temperature, kelvin
    d[3] = 100; // available spare
    d[4] = 10; // available spare threshold
    d
}

/// Firmware Slot Information (03h), 512 bytes: slot 1 active, holding [`FIRMWARE`].
fn firmware_slot_log() -> Vec<u8> {
    let mut d = vec![0u8; 512];
    d[0] = 1; // AFI: slot 1 active
    ascii(&mut d, 8, 8, FIRMWARE);
    d
}

/// Sends `data` to the host through the command's keyed SGL (exactly `data.len()` bytes,
/// else 0/0Fh; in-capsule → 0/02h: data to the host cannot travel in the capsule), then
/// the response.
async fn send_data(q: &mut Queue, bytes: &[u8], cid: u16, data: &[u8]) {
    if let Ok(SglRepr::DataBlock {
        addressing: SglAddressing::Offset,
        ..
    }) = SglRepr::parse_bytes(&bytes[24..40])
    {
        return q
            .respond(cid, Status::INVALID_FIELD.with_dnr(), 0, None)
            .await;
    }
    match q.data_ref(bytes, 0) {
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
