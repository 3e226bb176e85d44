//! What a run found, requirement by requirement. A case checks its main requirement and
//! possibly others (its record's `checks`); a failure is attributed to the requirement of
//! the check that failed (`blamed`), so one broken rule is reported once. Each case that
//! touched a requirement gets a verdict *for that requirement*:
//!
//! - `pass` — the case passed, or failed on another requirement after this one's checks
//!   held;
//! - `fail` / `error` — the failure (or the hang) is blamed on this requirement;
//! - `skip` — the case was skipped (the device lacks what it needs);
//! - `not reached` — the case failed on another requirement before any check of this one.

use crate::runner::{CaseRecord, RunResult, Verdict};

/// A case's verdict for one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForRequirement<'a> {
    /// Its checks of the requirement held (`n` of them).
    Pass(u32),
    /// A check of the requirement failed.
    Fail,
    /// The case could not reach a verdict while checking the requirement.
    Error,
    /// The case was skipped.
    Skip,
    /// The case failed on requirement `.0` before checking this one.
    NotReached(&'a str),
}

/// What a requirement's cases found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// Every case's checks held.
    Conforms,
    /// Some cases' checks held, the others were skipped or not reached.
    ConformsAsTested,
    /// A check failed.
    DoesNotConform,
    /// No check failed, but a case errored while checking it, or none reached it.
    Undetermined,
    /// Every case was skipped.
    NotTested,
}

/// One requirement, the cases that touched it and what each found for it.
#[derive(Debug, Clone)]
pub struct RequirementFindings<'a> {
    /// The requirement's ID.
    pub id: &'a str,
    /// Its cases in run order, each with its verdict for this requirement.
    pub cases: Vec<(&'a CaseRecord, ForRequirement<'a>)>,
}

impl<'a> RequirementFindings<'a> {
    /// The finding over the cases.
    pub fn finding(&self) -> Finding {
        let any = |f: fn(&ForRequirement<'a>) -> bool| self.cases.iter().any(|(_, v)| f(v));
        if any(|v| *v == ForRequirement::Fail) {
            Finding::DoesNotConform
        } else if any(|v| *v == ForRequirement::Error) {
            Finding::Undetermined
        } else if !any(|v| matches!(v, ForRequirement::Pass(_))) {
            if any(|v| matches!(v, ForRequirement::NotReached(_))) {
                Finding::Undetermined
            } else {
                Finding::NotTested
            }
        } else if any(|v| matches!(v, ForRequirement::Skip | ForRequirement::NotReached(_))) {
            Finding::ConformsAsTested
        } else {
            Finding::Conforms
        }
    }

    /// Checks of the requirement that ran and held, over all its cases.
    pub fn checks(&self) -> u32 {
        self.cases
            .iter()
            .map(|(c, _)| check_count(c, self.id))
            .sum()
    }

    /// The finding in words.
    pub fn text(&self) -> String {
        let n = self.cases.len();
        let count =
            |f: fn(&ForRequirement<'a>) -> bool| self.cases.iter().filter(|(_, v)| f(v)).count();
        match self.finding() {
            Finding::Conforms => "conforms".into(),
            Finding::ConformsAsTested => {
                let skipped = count(|v| *v == ForRequirement::Skip);
                let unreached = count(|v| matches!(v, ForRequirement::NotReached(_)));
                let mut parts = Vec::new();
                if skipped > 0 {
                    parts.push(format!("{skipped} of {n} cases skipped"));
                }
                if unreached > 0 {
                    parts.push(format!("{unreached} of {n} not reached"));
                }
                format!("conforms ({})", parts.join(", "))
            }
            Finding::DoesNotConform => "**does not conform**".into(),
            Finding::Undetermined if count(|v| *v == ForRequirement::Error) > 0 => {
                "**undetermined** (a case errored)".into()
            }
            Finding::Undetermined => {
                "**undetermined** (its cases failed on other requirements first)".into()
            }
            Finding::NotTested => "not tested (every case skipped)".into(),
        }
    }
}

/// The checks of `requirement` the case ran and that held.
fn check_count(c: &CaseRecord, requirement: &str) -> u32 {
    c.checks
        .iter()
        .find(|(r, _)| r == requirement)
        .map_or(0, |(_, n)| *n)
}

/// The requirements in order of first appearance (a case's main one, then those its
/// checks and its failure name), each with the cases that touched it.
pub fn by_requirement(run: &RunResult) -> Vec<RequirementFindings<'_>> {
    let mut out: Vec<RequirementFindings<'_>> = Vec::new();
    for c in &run.cases {
        let Some(main) = c.requirement.as_deref() else {
            continue;
        };
        let mut touched: Vec<&str> = vec![main];
        for r in c
            .checks
            .iter()
            .map(|(r, _)| r.as_str())
            .chain(c.blamed.as_deref())
        {
            if !touched.contains(&r) {
                touched.push(r);
            }
        }
        for r in touched {
            let v = for_requirement(c, r);
            match out.iter_mut().find(|f| f.id == r) {
                Some(f) => f.cases.push((c, v)),
                None => out.push(RequirementFindings {
                    id: r,
                    cases: vec![(c, v)],
                }),
            }
        }
    }
    out
}

/// The case's verdict for `requirement`.
fn for_requirement<'a>(c: &'a CaseRecord, requirement: &str) -> ForRequirement<'a> {
    let blamed = c.blamed_requirement().unwrap_or("");
    match &c.verdict {
        Verdict::Pass => ForRequirement::Pass(check_count(c, requirement)),
        Verdict::Skip(_) => ForRequirement::Skip,
        Verdict::Fail(_) if blamed == requirement => ForRequirement::Fail,
        Verdict::Error(_) if blamed == requirement => ForRequirement::Error,
        Verdict::Fail(_) | Verdict::Error(_) => match check_count(c, requirement) {
            0 => ForRequirement::NotReached(blamed),
            n => ForRequirement::Pass(n),
        },
    }
}
