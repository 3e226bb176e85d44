//! Names for values that differ between runs and fabrics: each object gets a name in
//! creation order, and its numbers (QPN, keys, addresses) print as that name.

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

    /// A QP number as a name (`qp1`), or `qpn?` when unknown.
    pub fn qpn(&self, qpn: u32) -> String {
        self.table()
            .qpns
            .get(&qpn)
            .cloned()
            .unwrap_or_else(|| "qpn?".into())
    }

    /// A key as a name (`mr1.rkey`), or `key?` when unknown (never the raw value).
    pub fn key(&self, key: u32) -> String {
        if key == 0 {
            return "0".into();
        }
        self.table()
            .keys
            .get(&key)
            .cloned()
            .unwrap_or_else(|| "key?".into())
    }

    /// An address as `region+offset`, or `addr?` when in no known region.
    pub fn addr(&self, addr: u64) -> String {
        if addr == 0 {
            return "0".into();
        }
        let t = self.table();
        t.regions
            .iter()
            .find(|(a, l, _)| addr >= *a && addr < a + l.max(&1))
            .map(|(a, _, n)| format!("{n}+{:#x}", addr - a))
            .unwrap_or_else(|| "addr?".into())
    }
}

fn actor_hash(actor: &str) -> u64 {
    actor
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        & 0xff_ffff
}
