//! The result of one run: a record per case and the metadata that makes it reproducible.

use std::time::Duration;

use serde::Serialize;

use super::ExitCode;

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "message", rename_all = "lowercase")]
pub enum Verdict {
    /// Every expectation held.
    Pass,
    /// An expectation did not hold; the message says which.
    Fail(String),
    /// The case could not run to a verdict (crash, timeout); the message says why.
    Error(String),
    /// The case was not run; the message gives the reason (e.g. a capability is absent).
    Skip(String),
}

impl Verdict {
    /// Short name: pass, fail, error, skip.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Error(_) => "error",
            Verdict::Skip(_) => "skip",
        }
    }
}

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRecord {
    /// Case identifier (stable; used by `--filter` and `replay`).
    pub id: String,
    /// Area (JUnit suite / classname).
    pub area: String,
    /// One-line description.
    pub description: String,
    /// Verdict (serialised as `verdict` and `message`).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Wall-clock time the case took (not part of determinism checks).
    #[serde(skip)]
    pub wall: Duration,
    /// The observed trace lines, in order.
    pub trace: Vec<String>,
    /// Something the reader should know that is not the verdict, e.g. that the trace was
    /// not compared with its snapshot and why. Absent from `results.json` when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What was tested, how, and with which seed.
#[derive(Debug, Clone, Serialize)]
pub struct RunMeta {
    /// Device under test, e.g. `reference:full` or `fabric:sim`.
    pub target: String,
    /// Fabric kind: `sim` or `verbs`.
    pub fabric: String,
    /// Base seed; each case derives its own from it and its id.
    pub seed: u64,
    /// `i/n` when sharded.
    pub shard: Option<String>,
    /// nvmf-conform version.
    pub version: String,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// Metadata.
    pub meta: RunMeta,
    /// Records in catalog order.
    pub cases: Vec<CaseRecord>,
}

impl RunResult {
    /// Count of records with this verdict name.
    pub fn count(&self, verdict: &str) -> usize {
        self.cases
            .iter()
            .filter(|c| c.verdict.name() == verdict)
            .count()
    }

    /// The exit code this run deserves.
    pub fn exit_code(&self) -> ExitCode {
        if self.count("fail") + self.count("error") > 0 {
            ExitCode::Failed
        } else if !self.cases.is_empty() && self.count("skip") == self.cases.len() {
            ExitCode::Untestable
        } else {
            ExitCode::Passed
        }
    }

    /// The areas, in order of first appearance.
    pub fn areas(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in &self.cases {
            if !out.contains(&c.area.as_str()) {
                out.push(&c.area);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, area: &str, verdict: Verdict) -> CaseRecord {
        CaseRecord {
            id: id.into(),
            area: area.into(),
            description: "d".into(),
            verdict,
            wall: Duration::ZERO,
            trace: vec![],
            note: None,
        }
    }

    fn run(cases: Vec<CaseRecord>) -> RunResult {
        RunResult {
            meta: RunMeta {
                target: "t".into(),
                fabric: "sim".into(),
                seed: 1,
                shard: None,
                version: "0".into(),
            },
            cases,
        }
    }

    #[test]
    fn exit_code_follows_the_worst_verdict() {
        let pass = || rec("a", "x", Verdict::Pass);
        let skip = || rec("b", "x", Verdict::Skip("no device".into()));
        assert_eq!(run(vec![pass(), skip()]).exit_code(), ExitCode::Passed);
        assert_eq!(run(vec![skip(), skip()]).exit_code(), ExitCode::Untestable);
        let fail = rec("c", "x", Verdict::Fail("f".into()));
        assert_eq!(run(vec![pass(), fail]).exit_code(), ExitCode::Failed);
        let err = rec("d", "x", Verdict::Error("hung".into()));
        assert_eq!(run(vec![skip(), err]).exit_code(), ExitCode::Failed);
        assert_eq!(ExitCode::Untestable.code(), 125);
    }

    #[test]
    fn areas_keep_first_appearance_order() {
        let r = run(vec![
            rec("a", "z", Verdict::Pass),
            rec("b", "y", Verdict::Pass),
            rec("c", "z", Verdict::Pass),
        ]);
        assert_eq!(r.areas(), vec!["z", "y"]);
    }

    #[test]
    fn verdict_serialises_flat() {
        let j = serde_json::to_value(rec("a", "x", Verdict::Skip("why".into()))).unwrap();
        assert_eq!(j["verdict"], "skip");
        assert_eq!(j["message"], "why");
    }
}
