//! The catalog: every case nvmf-conform knows, with its metadata, in a stable order.

use harness::fabric::contract::{self, ContractCase};

use crate::offload;

/// What runs when a catalog entry runs.
#[derive(Debug, Clone)]
pub enum Body {
    /// A fabric contract case: exercises the RDMA fabric itself.
    Fabric(&'static ContractCase),
    /// An offload conformance case: exercises the device under test.
    Offload(offload::Case),
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
    let offload = offload::cases().into_iter().map(|c| Entry {
        id: c.id.clone(),
        area: c.area.to_string(),
        description: c.description.clone(),
        requirement: Some(c.requirement),
        tags: c.tags(),
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
}
