//! Names for values that differ between runs and fabrics: each object gets a name in
//! creation order, and its numbers (QPN, keys, addresses) print as that name.
//!
//! A QPN, key or address that belongs to no object the trace saw created (a bogus key a
//! case puts in a capsule on purpose, say) is never printed raw either: it gets a name of
//! its own in order of first appearance, `unknown-key1`, `unknown-addr1`, `unknown-qpn1`,
//! so the same value prints the same way throughout the trace and from run to run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::fabric::MrInfo;

#[derive(Debug, Default)]
struct Table {
    counters: BTreeMap<&'static str, u32>,
    /// (kind, raw id) → name, e.g. ("qp", 7) → "qp1".
    handles: BTreeMap<(&'static str, u64), String>,
    qpns: BTreeMap<u32, String>,
    keys: BTreeMap<u32, String>,
    regions: Vec<(u64, u64, String)>,
    /// (kind, raw value) → name for values that belong to no known object.
    unknown: BTreeMap<(&'static str, u64), String>,
}

impl Table {
    /// The stable name of a value of `kind` that belongs to no known object.
    fn unknown(&mut self, kind: &'static str, raw: u64) -> String {
        if let Some(n) = self.unknown.get(&(kind, raw)) {
            return n.clone();
        }
        let n = 1 + self.unknown.keys().filter(|(k, _)| *k == kind).count();
        let name = format!("unknown-{kind}{n}");
        self.unknown.insert((kind, raw), name.clone());
        name
    }
}

/// The naming table shared by every traced object of one case (host and target alike, so
/// a key the host hands out prints the same in the target's lines).
#[derive(Debug, Clone, Default)]
pub struct Names(Arc<Mutex<Table>>);

impl Names {
    /// An empty table.
    pub fn new() -> Names {
        Names::default()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names a new handle of `kind` (`qp`, `cq`, `mr`, `srq`, `pd`, `conn`, …) for `actor`.
    pub fn add(&self, actor: &str, kind: &'static str, raw: u64) -> String {
        let mut t = self.table();
        let key = (kind, raw ^ (actor_hash(actor) << 40));
        if let Some(n) = t.handles.get(&key) {
            return n.clone();
        }
        let c = t.counters.entry(kind).or_insert(0);
        *c += 1;
        let name = format!("{kind}{c}");
        t.handles.insert(key, name.clone());
        name
    }

    /// The name of a handle, or `kind?raw` when it was never named.
    pub fn of(&self, actor: &str, kind: &'static str, raw: u64) -> String {
        let t = self.table();
        t.handles
            .get(&(kind, raw ^ (actor_hash(actor) << 40)))
            .cloned()
            .unwrap_or_else(|| format!("{kind}?{raw}"))
    }

    /// Records a QP number under a QP's name.
    pub fn add_qpn(&self, qpn: u32, name: &str) {
        self.table().qpns.insert(qpn, name.to_string());
    }

    /// Records a region's keys and address range under its name.
    pub fn add_mr(&self, mr: &MrInfo, name: &str) {
        let mut t = self.table();
        t.keys.insert(mr.lkey, format!("{name}.lkey"));
        t.keys.insert(mr.rkey, format!("{name}.rkey"));
        t.regions.push((mr.addr, mr.len, name.to_string()));
    }

    /// Forgets a region (its keys may be reused).
    pub fn remove_mr(&self, mr: &MrInfo) {
        let mut t = self.table();
        t.keys.remove(&mr.lkey);
        t.keys.remove(&mr.rkey);
        t.regions.retain(|(a, _, _)| *a != mr.addr);
    }

    /// A QP number as a name (`qp1`), or `unknown-qpnN` when it belongs to no QP the
    /// trace saw created (never the raw value).
    pub fn qpn(&self, qpn: u32) -> String {
        let mut t = self.table();
        match t.qpns.get(&qpn) {
            Some(n) => n.clone(),
            None => t.unknown("qpn", u64::from(qpn)),
        }
    }

    /// A key as a name (`mr1.rkey`), or `unknown-keyN` when it belongs to no region the
    /// trace saw registered (never the raw value).
    pub fn key(&self, key: u32) -> String {
        if key == 0 {
            return "0".into();
        }
        let mut t = self.table();
        match t.keys.get(&key) {
            Some(n) => n.clone(),
            None => t.unknown("key", u64::from(key)),
        }
    }

    /// An address as `region+offset`, or `unknown-addrN` when in no known region (never
    /// the raw value).
    pub fn addr(&self, addr: u64) -> String {
        if addr == 0 {
            return "0".into();
        }
        let mut t = self.table();
        let known = t
            .regions
            .iter()
            .find(|(a, l, _)| addr >= *a && addr < a + l.max(&1))
            .map(|(a, _, n)| format!("{n}+{:#x}", addr - a));
        match known {
            Some(n) => n,
            None => t.unknown("addr", addr),
        }
    }
}

fn actor_hash(actor: &str) -> u64 {
    actor
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        & 0xff_ffff
}
