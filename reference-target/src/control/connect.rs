//! Connecting a queue, once its CM request was accepted (`control/accept.rs`): the Fabrics
//! Connect command.
//!
//! **Fabrics Connect**, in this order (every failure with DNR): a second Connect on a
//! connected queue → 0/0Ch; RECFMT ≠ 0 → 1/80h; the Connect data (1024 bytes, keyed: RDMA
//! READ from the host, or in-capsule) with a bad SGL → 0/11h type, 0/0Fh length, 0/16h
//! offset; QID ≠ the CM QID → 1/82h IPO QID. Admin queue: CNTLID ≠ FFFFh → 1/82h IPO
//! CNTLID (IATTR 1); SUBNQN neither this port's subsystem nor the discovery NQN → 1/82h IPO
//! SUBNQN (IATTR 1), the discovery NQN making a discovery controller any host may reach; host not
//! allowed → 1/84h (the `allow-any-host` quirk or `allow_any_host` skips it); SQSIZE 0 or
//! above 31 → 1/82h IPO SQSIZE. I/O queue: SUBNQN not this port's subsystem (the discovery
//! NQN too: a discovery controller has no I/O queues) → 1/82h IPO SUBNQN; no controller with that
//! CNTLID for this host → 1/82h IPO CNTLID (IATTR 1); controller not enabled → 0/0Ch; QID
//! above the granted queues → 1/82h IPO QID; QID already connected → 0/0Ch; SQSIZE 0 or
//! above MQES → 1/82h IPO SQSIZE. Success: DW0 = CNTLID; on an I/O queue of an offloaded
//! subsystem, `qp_set_nvmf(ENABLE)` is called **before** the response is sent.

use std::collections::BTreeSet;

use harness::api::QpNvmfFlags;
use harness::wire::{
    connect_data_field, fabrics_field, ConnectData, FabricsCmd, InvalidParam, Status,
    CNTLID_DYNAMIC, CONNECT_DATA_LEN, NQN_FIELD_LEN,
};
use tokio::time::Instant;

use super::identity::{ADMIN_DEPTH_MAX, DISCOVERY_NQN, MAX_IO_QUEUES};
use super::keepalive;
use super::queue::{Capsule, DataRef, Queue};
use super::state::NvmfCtrl;
use crate::quirks::Quirk;

/// Reads an NQN field: the bytes up to the first NUL, as UTF-8.
fn nqn(field: &[u8]) -> Option<String> {
    let end = field.iter().position(|b| *b == 0)?;
    if end > harness::wire::NQN_MAX_LEN {
        return None;
    }
    String::from_utf8(field[..end].to_vec()).ok()
}

fn invalid(p: InvalidParam) -> (Status, u64) {
    (
        Status::CONNECT_INVALID_PARAMETERS.with_dnr(),
        u64::from(p.dw0()),
    )
}

/// A Fabrics Connect capsule on `q`.
pub(crate) async fn on_connect(q: &mut Queue, c: &Capsule<'_>) {
    let cid = c.cid();
    let (status, result, inval) = connect_status(q, c).await;
    if q.dead {
        return;
    }
    q.respond(cid, status, result, inval).await;
}

async fn connect_status(q: &mut Queue, c: &Capsule<'_>) -> (Status, u64, Option<u32>) {
    let sh = q.sh.clone();
    let sub = &sh.subs[q.sub];
    let fail = |s: Status| (s.with_dnr(), 0u64, None);
    if q.cntlid.is_some() {
        return fail(Status::COMMAND_SEQUENCE_ERROR);
    }
    let v = FabricsCmd::new_unchecked(c.sqe_bytes());
    let (recfmt, qid, sqsize, kato) = (v.recfmt(), v.qid(), v.sqsize(), v.kato());
    if recfmt != 0 {
        return fail(Status::CONNECT_INCOMPATIBLE_FORMAT);
    }
    // The Connect data.
    let data = match q.data_ref(c, 0) {
        Err(s) => return (s, 0, None),
        Ok(None) => return fail(Status::DATA_SGL_LENGTH_INVALID),
        Ok(Some(d)) => d,
    };
    let (data, inval) = match data {
        DataRef::Keyed {
            addr,
            key,
            len,
            invalidate,
        } => {
            if len as usize != CONNECT_DATA_LEN {
                return fail(Status::DATA_SGL_LENGTH_INVALID);
            }
            match q.rdma_read(addr, key, len).await {
                Some(d) => (d, invalidate.then_some(key)),
                None => return fail(Status::DATA_TRANSFER_ERROR),
            }
        }
        DataRef::InCapsule { start, len } => {
            if len as usize != CONNECT_DATA_LEN {
                return fail(Status::DATA_SGL_LENGTH_INVALID);
            }
            (c.bytes[start..start + CONNECT_DATA_LEN].to_vec(), None)
        }
    };
    let with = |(s, r): (Status, u64)| (s, r, inval);
    if qid != q.cm_qid {
        return with(invalid(InvalidParam::sqe(fabrics_field::CONNECT_QID.start)));
    }
    let cd = ConnectData::new_unchecked(&data[..]);
    let cntlid = cd.cntlid();
    let subnqn = nqn(&cd.subnqn_field()[..NQN_FIELD_LEN]);
    let hostnqn = nqn(&cd.hostnqn_field()[..NQN_FIELD_LEN]);
    let sub_ok = subnqn.as_deref() == Some(sub.cfg.nqn.as_str());
    let discovery = subnqn.as_deref() == Some(DISCOVERY_NQN);
    let ipo_sub = InvalidParam::data(connect_data_field::SUBNQN.start);
    let ipo_cntlid = InvalidParam::data(connect_data_field::CNTLID.start);
    let ipo_sqsize = InvalidParam::sqe(fabrics_field::CONNECT_SQSIZE.start);
    let Some(hostnqn) = hostnqn else {
        return with(invalid(InvalidParam::data(
            connect_data_field::HOSTNQN.start,
        )));
    };
    if qid == 0 {
        if cntlid != CNTLID_DYNAMIC {
            return with(invalid(ipo_cntlid));
        }
        if !sub_ok && !discovery {
            return with(invalid(ipo_sub));
        }
        // Any host may reach the discovery controller; its log lists what it may connect to.
        let allowed = discovery
            || sub.cfg.allow_any_host
            || sh.quirks.has(Quirk::AllowAnyHost)
            || sub.cfg.hosts.contains(&hostnqn);
        if !allowed {
            sh.log(format!(
                "connect-host-refused subsystem={} host={hostnqn}",
                sub.cfg.nqn
            ));
            return (Status::CONNECT_INVALID_HOST.with_dnr(), 0, inval);
        }
        if sqsize == 0 || u32::from(sqsize) + 1 > ADMIN_DEPTH_MAX {
            return with(invalid(ipo_sqsize));
        }
        let id = {
            let mut st = sh.lock();
            // The subsystem's IDs in turn from the one after the last handed out,
            // wrapping from cntlid_max to cntlid_min; a free one or Controller Busy.
            let (min, max) = (*sub.cfg.cntlids.start(), *sub.cfg.cntlids.end());
            let start = st.next_cntlid.get(&q.sub).copied().unwrap_or(min);
            let free = (start..=max)
                .chain(min..start)
                .find(|id| !st.ctrls.contains_key(&(q.sub, *id)));
            let Some(id) = free else {
                drop(st);
                sh.log(format!(
                    "connect-no-cntlid subsystem={} cntlids={min}..={max}",
                    sub.cfg.nqn
                ));
                return (Status::CONNECT_CONTROLLER_BUSY.with_dnr(), 0, inval);
            };
            st.next_cntlid
                .insert(q.sub, if id == max { min } else { id + 1 });
            st.ctrls.insert(
                (q.sub, id),
                NvmfCtrl {
                    hostnqn: hostnqn.clone(),
                    discovery,
                    aers: Vec::new(),
                    aec: 0,
                    kato: std::time::Duration::from_millis(kato.into()),
                    kato_gen: 0,
                    last_ka: Instant::now(),
                    features: Default::default(),
                    cc: 0,
                    csts: 0,
                    granted: None,
                    io_qids: BTreeSet::new(),
                    admin_conn: q.conn,
                    io_conns: BTreeSet::new(),
                },
            );
            id
        };
        q.cntlid = Some(id);
        q.qid = 0;
        if discovery {
            sh.log(format!(
                "discovery-ctrl-created port={} cntlid={id} host={hostnqn} kato_ms={kato}",
                sh.ports[q.port].addr
            ));
        } else {
            sh.log(format!(
                "ctrl-created subsystem={} cntlid={id} host={hostnqn} kato_ms={kato}",
                sub.cfg.nqn
            ));
        }
        keepalive::start(&sh, q.sub, id);
        return (Status::SUCCESS, u64::from(id), inval);
    }
    if !sub_ok {
        return with(invalid(ipo_sub));
    }
    {
        let mut st = sh.lock();
        let Some(ctrl) = st
            .ctrls
            .get_mut(&(q.sub, cntlid))
            .filter(|c| c.hostnqn == hostnqn)
        else {
            return with(invalid(ipo_cntlid));
        };
        if ctrl.csts & 1 == 0 {
            return fail(Status::COMMAND_SEQUENCE_ERROR);
        }
        if qid > ctrl.granted.unwrap_or(MAX_IO_QUEUES) {
            return with(invalid(InvalidParam::sqe(fabrics_field::CONNECT_QID.start)));
        }
        if ctrl.io_qids.contains(&qid) {
            return fail(Status::COMMAND_SEQUENCE_ERROR);
        }
        if sqsize == 0 || sqsize >= sub.depth {
            return with(invalid(ipo_sqsize));
        }
        ctrl.io_qids.insert(qid);
        ctrl.io_conns.insert(q.conn);
    }
    q.cntlid = Some(cntlid);
    q.qid = qid;
    if sub.cfg.offload {
        // The shipped kernel's order: offload on, then the Connect response.
        if let Err(e) = sh.provider.qp_set_nvmf(q.qp, QpNvmfFlags::ENABLE) {
            sh.log(format!("qp-set-nvmf-failed qid={qid} errno={}", e.errno()));
        }
    }
    sh.log(format!(
        "io-queue-connected subsystem={} cntlid={cntlid} qid={qid} offload={}",
        sub.cfg.nqn, sub.cfg.offload
    ));
    (Status::SUCCESS, u64::from(cntlid), inval)
}
