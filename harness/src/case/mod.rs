//! The case model the fabric contract and the offload catalog share (Test262 style): a
//! case is a named async function over what it runs against (`In`: the contract's
//! [`crate::fabric::contract::Env`], the catalog's device under test), with its metadata
//! ([`CaseMeta`]: id, area, requirement, one-line description, [`Need`]s). A body returns
//! `Err(`[`Failure`]`)` with what was expected and what happened, blamed on the
//! requirement of the check that failed ([`blame`]); it never panics for a mismatch.
//!
//! One set of checks serves both: `check!`, `check_eq!`, `fail!`, [`Context::ctx`] and
//! [`expect_errno`].

pub mod blame;
mod failure;
mod need;

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use futures::future::BoxFuture;

pub use failure::{expect_errno, CaseResult, Context, Failure, WithErrno};
pub use need::{DutFacts, Facts, FaultKind, Need, RealBackendFacts, FOREIGN_ADDR};

/// What describes a case, apart from its code: the one source of the catalog, the docs'
/// requirement table and the reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseMeta {
    /// Unique id, `area.subject.expectation`, lowercase with `-` inside words.
    pub id: String,
    /// The area (the id's first segment), e.g. `qp` or `mapping`.
    pub area: &'static str,
    /// The requirement it checks (offload cases; the fabric contract names none).
    pub requirement: Option<&'static str>,
    /// One line: what the case checks.
    pub description: String,
    /// What the fabric and the device must offer for the case to run.
    pub needs: Vec<Need>,
    /// Why the case's trace depends on timing when the device keeps its own time (a real
    /// fabric, a plugin), if it does: its target and backend lines are then not compared
    /// with the snapshot, and the report says why ([`Case::racy`]).
    pub race: Option<&'static str>,
}

impl CaseMeta {
    /// Why the case cannot run with these facts (a skip reason), or `None` when it can.
    pub fn unmet(&self, facts: &Facts<'_>) -> Option<String> {
        facts.unmet(&self.needs)
    }
}

/// The code of a case over `In`.
pub type Body<In> = Arc<dyn Fn(In) -> BoxFuture<'static, CaseResult> + Send + Sync>;

/// One case over `In`: its metadata (reachable through `Deref`) and its body.
pub struct Case<In> {
    /// The metadata.
    pub meta: CaseMeta,
    /// The code.
    pub body: Body<In>,
}

impl<In> Clone for Case<In> {
    fn clone(&self) -> Self {
        Case {
            meta: self.meta.clone(),
            body: self.body.clone(),
        }
    }
}

impl<In> Deref for Case<In> {
    type Target = CaseMeta;

    fn deref(&self) -> &CaseMeta {
        &self.meta
    }
}

impl<In> fmt::Debug for Case<In> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.meta.id)
            .field("requirement", &self.meta.requirement)
            .field("needs", &self.meta.needs)
            .finish_non_exhaustive()
    }
}

impl<In: 'static> Case<In> {
    /// A case with id `<area>.<id>`, checking `requirement` (a requirement id, or `None`);
    /// `body` is an async fn of `In`.
    pub fn new<F, Fut>(
        area: &'static str,
        id: impl fmt::Display,
        requirement: impl Into<Option<&'static str>>,
        description: impl Into<String>,
        needs: &[Need],
        body: F,
    ) -> Case<In>
    where
        F: Fn(In) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Case {
            meta: CaseMeta {
                id: format!("{area}.{id}"),
                area,
                requirement: requirement.into(),
                description: description.into(),
                needs: needs.to_vec(),
                race: None,
            },
            body: Arc::new(move |input| Box::pin(body(input))),
        }
    }

    /// The case, declaring that when the device keeps its own time its trace depends on
    /// timing, for the reason `why` (e.g. which of a destroyed QP's commands reached the
    /// backend): only its host and device lines are compared then.
    pub fn racy(mut self, why: &'static str) -> Case<In> {
        self.meta.race = Some(why);
        self
    }
}

/// Whether an id is well formed: at least two `.`-separated segments of `[a-z0-9-]`,
/// none empty and none starting or ending with `-`.
pub fn id_is_well_formed(id: &str) -> bool {
    let segs: Vec<&str> = id.split('.').collect();
    segs.len() >= 2
        && segs.iter().all(|s| {
            !s.is_empty()
                && !s.starts_with('-')
                && !s.ends_with('-')
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The text of a panic's payload.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_area_dot_name() {
        let c: Case<u32> = Case::new("qp", "state.reset", None, "d", &[], |n| async move {
            crate::check!(n == 1, "n is {n}");
            Ok(())
        });
        assert_eq!(c.id, "qp.state.reset");
        assert!(id_is_well_formed(&c.id));
        assert!(!id_is_well_formed("qp"));
        assert!(!id_is_well_formed("qp..x"));
        assert!(!id_is_well_formed("qp.-x"));
        assert!(!id_is_well_formed("qp.x-"));
        assert!(!id_is_well_formed("qp.State"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on((c.body)(1)), Ok(()));
        assert_eq!(rt.block_on((c.body)(2)).unwrap_err().message, "n is 2");
    }
}
