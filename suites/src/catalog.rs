//! The catalog: every case nvmf-conform knows, with its metadata, in a stable order.

use harness::fabric::contract::{self, ContractCase};

use crate::framework;

/// What runs when a catalog entry runs.
#[derive(Debug, Clone)]
pub enum Body {
    /// A fabric contract case: exercises the RDMA fabric itself.
    Fabric(&'static ContractCase),
    /// An offload conformance case: exercises the device under test.
    Offload(framework::Case),
}

/// One case of the catalog.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Stable identifier, `<suite>.<case>`, e.g. `fabric.qp.state.reset-to-rts`.
    pub id: String,
    /// Area: the JUnit suite it is reported in.
    pub area: String,
    /// One-line description.
    pub description: String,
    /// The requirement it checks (offload cases).
    pub requirement: Option<&'static str>,
    /// Tags (offload cases: group, `limits`, needs; fabric cases: `fabric`).
    pub tags: Vec<&'static str>,
    /// The code.
    pub body: Body,
}

/// Every case, in catalog order: the offload conformance cases, then the fabric contract.
pub fn all() -> Vec<Entry> {
    let offload = crate::areas::cases().into_iter().map(|c| Entry {
        id: c.id.clone(),
        area: c.area.to_string(),
        description: c.description.clone(),
        requirement: c.requirement,
        tags: framework::case::tags(&c),
        body: Body::Offload(c),
    });
    let fabric = contract::cases().iter().map(|c| Entry {
        id: format!("fabric.{}", c.id),
        area: format!("fabric.{}", c.area),
        description: c.description.to_string(),
        requirement: None,
        tags: vec!["fabric"],
        body: Body::Fabric(c),
    });
    offload.chain(fabric).collect()
}

impl Entry {
    /// The race an offload case declares (`Case::racy`), if any.
    pub fn race(&self) -> Option<&'static str> {
        match &self.body {
            Body::Offload(c) => c.race,
            _ => None,
        }
    }
}

/// The offload conformance cases of [`all`], in catalog order (no fabric contract).
pub fn offload() -> Vec<Entry> {
    all()
        .into_iter()
        .filter(|e| matches!(e.body, Body::Offload(_)))
        .collect()
}

/// Does `entry` match one filter? A filter selects an exact id, an area, every id that
/// starts with it followed by a dot (`fabric.qp` selects `fabric.qp.*`), a requirement
/// (`req:MAP-EEXIST`) or a tag (`tag:limits`).
pub fn matches(entry: &Entry, filter: &str) -> bool {
    if let Some(req) = filter.strip_prefix("req:") {
        return entry.requirement == Some(req);
    }
    if let Some(tag) = filter.strip_prefix("tag:") {
        return entry.tags.contains(&tag);
    }
    entry.id == filter
        || entry.area == filter
        || entry
            .id
            .strip_prefix(filter)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The entries matching any of `filters` (all of them when `filters` is empty).
pub fn select(filters: &[String]) -> Vec<Entry> {
    all()
        .into_iter()
        .filter(|e| filters.is_empty() || filters.iter().any(|f| matches(e, f)))
        .collect()
}

/// Which part of a run one machine takes: shard `index` of `count` (1-based), written `i/n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 1..=count.
    pub index: u32,
    /// How many shards split the run.
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}`: expected i/n with 1 <= i <= n, e.g. 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Does `id` belong to this shard? A case's shard depends on its id alone (FNV-1a
    /// hash), so the partition is the same on every machine and adding a case moves no
    /// other case.
    pub fn holds(&self, id: &str) -> bool {
        let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        h % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The entries of `entries` this shard runs, in their order.
    pub fn select(&self, entries: Vec<Entry>) -> Vec<Entry> {
        entries.into_iter().filter(|e| self.holds(&e.id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_unique_and_areas_prefix_ids() {
        let all = all();
        let mut ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate case ids");
        assert!(all
            .iter()
            .all(|e| e.id.starts_with(&format!("{}.", e.area)) || e.id.starts_with("fabric.")));
    }

    #[test]
    fn filters_select_by_id_area_and_prefix() {
        let all = all();
        let first = &all[0];
        assert_eq!(select(std::slice::from_ref(&first.id)).len(), 1);
        let by_area = select(std::slice::from_ref(&first.area));
        assert!(by_area.iter().all(|e| e.area == first.area) && !by_area.is_empty());
        let fabric = all.iter().filter(|e| e.id.starts_with("fabric.")).count();
        assert_eq!(select(&["fabric".to_string()]).len(), fabric);
        assert!(select(&["no-such-case".to_string()]).is_empty());
        // a prefix must end at a dot: "fabric.q" selects nothing
        assert!(select(&["fabric.q".to_string()]).is_empty());
        let eexist = select(&["req:MAP-EEXIST-SHARED-SRQ".to_string()]);
        assert!(
            !eexist.is_empty()
                && eexist
                    .iter()
                    .all(|e| e.requirement == Some("MAP-EEXIST-SHARED-SRQ"))
        );
        let limits = select(&["tag:limits".to_string()]);
        assert!(!limits.is_empty() && limits.iter().all(|e| e.tags.contains(&"limits")));
        assert_eq!(select(&["tag:fabric".to_string()]).len(), fabric);
    }

    #[test]
    fn shards_partition_the_catalog() {
        let every = all();
        let n = 4;
        let mut seen = Vec::new();
        for i in 1..=n {
            let shard: Shard = format!("{i}/{n}").parse().unwrap();
            let part = shard.select(every.clone());
            assert!(!part.is_empty(), "shard {shard} is empty");
            seen.extend(part.into_iter().map(|e| e.id));
        }
        seen.sort_unstable();
        let mut ids: Vec<String> = every.into_iter().map(|e| e.id).collect();
        ids.sort_unstable();
        assert_eq!(seen, ids, "every case in exactly one shard");
        for bad in ["0/2", "3/2", "1/0", "x/2", "1", "1/2/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(
            "1/1".parse::<Shard>().unwrap().select(all()).len(),
            ids.len()
        );
    }
}
