//! The result of one run: a record per case and the metadata that makes it reproducible.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ExitCode, Subject};

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
///
/// `results.json` holds everything but [`CaseRecord::wall`], so that two runs with the same
/// seed write byte-identical files; read back, `wall` is zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// Case identifier (stable; used by `--filter` and `replay`).
    pub id: String,
    /// Area (JUnit suite / classname).
    pub area: String,
    /// One-line description.
    pub description: String,
    /// The requirement the case checks, e.g. `MAP-EEXIST-SAME-CTRL` (see
    /// `docs/requirements.md`); `None` for the fabric contract's cases, which check the
    /// fabric rather than a requirement of the offload API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For a case that failed or errored and has a reviewed trace snapshot: the snapshot's
    /// lines, the trace a conforming device produces (`summary.md` draws it next to the
    /// observed one). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Vec<String>>,
    /// Where `expected` came from: the reviewed snapshot of a built-in profile with the
    /// device's caps, or the reference target run with them (the "Expected" diagram says
    /// so). Absent when `expected` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_from: Option<String>,
    /// For a case that failed: how many of its trace lines were recorded when the failing
    /// check ran (the lines after it are the case's teardown). The JUnit failure text
    /// shows the lines around it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<usize>,
    /// For a case that failed or errored: the requirement of the check that failed (a case
    /// may check several; see `harness::case::blame`). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blamed: Option<String>,
    /// The checks that ran, per requirement, in order of first use (empty for the fabric
    /// contract's cases and skipped ones). Written as an object.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "ordered_map")]
    pub checks: Vec<(String, u32)>,
}

impl CaseRecord {
    /// A record of case `id` in `area` with `verdict` and nothing else yet: no requirement,
    /// no trace, no time, no note, no expected trace, no blame, no checks.
    pub fn new(id: &str, area: &str, description: &str, verdict: Verdict) -> CaseRecord {
        CaseRecord {
            id: id.into(),
            area: area.into(),
            description: description.into(),
            requirement: None,
            verdict,
            wall: Duration::ZERO,
            trace: Vec::new(),
            note: None,
            expected: None,
            expected_from: None,
            failed_at: None,
            blamed: None,
            checks: Vec::new(),
        }
    }

    /// The requirement a failure of this case is attributed to: the failed check's, else
    /// the case's own.
    pub fn blamed_requirement(&self) -> Option<&str> {
        self.blamed.as_deref().or(self.requirement.as_deref())
    }
}

/// What was tested, how, and with which seed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Device under test, e.g. `reference:full` or `fabric:sim`.
    pub target: String,
    /// Name of the capability profile the device under test was run with, e.g. `full`.
    #[serde(default)]
    pub profile: String,
    /// The device under test's capabilities, field → value, in the order `NvmfCaps`
    /// declares them (see [`crate::report::caps_fields`]); empty when the run had no
    /// offload case (only the fabric contract ran, no device was tested). Written to
    /// `results.json` as an object.
    #[serde(default, with = "ordered_map")]
    pub caps: Vec<(String, String)>,
    /// Fabric kind: `sim` or `verbs`.
    pub fabric: String,
    /// Base seed; each case derives its own from it and its id.
    pub seed: u64,
    /// `i/n` when sharded.
    pub shard: Option<String>,
    /// nvmf-conform version.
    pub version: String,
    /// The options of `nvmf-conform replay CASE` that reproduce one of this run's cases
    /// exactly: the seed and every option that changes behaviour (target, profile, quirks,
    /// plugin config, fabric and device, time bounds, snapshot directory). Empty in
    /// results written before it existed; [`RunMeta::replay_line`] then falls back to the
    /// seed alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replay: Vec<String>,
    /// The requirements that bind the reference target's control plane rather than the
    /// device ([`Subject::ControlPlane`]); every other requirement is the device's. Empty
    /// in results written before it existed (every requirement is then the device's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control_plane: Vec<String>,
}

impl RunMeta {
    /// What a requirement is about; `None` (a fabric contract case has no requirement) is
    /// the fabric.
    pub fn subject_of(&self, requirement: Option<&str>) -> Subject {
        match requirement {
            None => Subject::Fabric,
            Some(r) if self.control_plane.iter().any(|c| c == r) => Subject::ControlPlane,
            Some(_) => Subject::Device,
        }
    }

    /// The command that replays case `id` of this run, quoted for a POSIX shell.
    pub fn replay_line(&self, id: &str) -> String {
        let mut args = vec!["nvmf-conform".to_string(), "replay".into(), id.into()];
        if self.replay.is_empty() {
            args.extend(["--seed".into(), self.seed.to_string()]);
        } else {
            args.extend(self.replay.iter().cloned());
        }
        shell_words::join(args)
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    /// Puts the cases in the order of `ids` (the catalog's, say: after a merge of shards);
    /// cases whose id is not listed come after, in their present order.
    pub fn order_by<S: AsRef<str>>(&mut self, ids: &[S]) {
        let rank: std::collections::HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_ref(), i))
            .collect();
        self.cases
            .sort_by_key(|c| rank.get(c.id.as_str()).copied().unwrap_or(usize::MAX));
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

/// `Vec<(String, V)>` as a JSON object whose keys keep their order (serde_json's own
/// map would sort them).
mod ordered_map {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<V: Serialize, S: Serializer>(
        pairs: &[(String, V)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(pairs.len()))?;
        for (k, v) in pairs {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }

    pub fn deserialize<'de, V: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, V)>, D::Error> {
        struct Pairs<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Pairs<V> {
            type Value = Vec<(String, V)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = map.next_entry::<String, V>()? {
                    out.push(pair);
                }
                Ok(out)
            }
        }
        d.deserialize_map(Pairs(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, area: &str, verdict: Verdict) -> CaseRecord {
        CaseRecord::new(id, area, "d", verdict)
    }

    fn run(cases: Vec<CaseRecord>) -> RunResult {
        RunResult {
            meta: RunMeta {
                target: "t".into(),
                profile: "full".into(),
                fabric: "sim".into(),
                seed: 1,
                version: "0".into(),
                ..RunMeta::default()
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

    #[test]
    fn a_run_reads_back_as_written_and_caps_keep_their_order() {
        let mut r = run(vec![
            rec("a", "x", Verdict::Pass),
            rec("b", "x", Verdict::Fail("f\ng".into())),
        ]);
        r.meta.caps = vec![
            ("z".into(), "1".into()),
            ("a".into(), "READ | WRITE".into()),
        ];
        r.cases[1].requirement = Some("MAP-EEXIST".into());
        r.cases[1].expected = Some(vec!["host call x".into()]);
        let text = serde_json::to_string_pretty(&r).unwrap();
        assert!(text.find("\"z\"").unwrap() < text.find("\"a\": \"READ").unwrap());
        assert!(!text.contains("wall"));
        let back: RunResult = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_replay_line_quotes_what_a_shell_would_split() {
        let mut r = run(vec![]);
        assert_eq!(
            r.meta.replay_line("a.b"),
            "nvmf-conform replay a.b --seed 1"
        );
        r.meta.replay = vec![
            "--seed".into(),
            "1".into(),
            "--plugin-config".into(),
            "profile=full;quirks=a,b".into(),
        ];
        let line = r.meta.replay_line("a.b");
        assert_eq!(
            line,
            "nvmf-conform replay a.b --seed 1 --plugin-config 'profile=full;quirks=a,b'"
        );
        assert_eq!(
            shell_words::split(&line).unwrap()[6],
            "profile=full;quirks=a,b"
        );
    }
}
