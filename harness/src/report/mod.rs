//! Reports written from a [`RunResult`]: JUnit XML for CI, `summary.md` for people (the
//! certification view), `results.json` for tools; reading `results.json` back
//! ([`read_results`]) and merging the results of a run's shards into one ([`merge`],
//! [`merge_dirs`]).

pub mod findings;
pub mod junit;
mod merge;
pub mod mermaid;
pub mod summary;

use std::path::Path;

pub use merge::{merge, merge_dirs, merge_labelled, MergeError};

use crate::api::NvmfCaps;
use crate::runner::RunResult;

/// Error writing or reading a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not the JSON of a run (malformed, or a field missing or of the wrong
    /// type).
    #[error("{path}:{line}:{column}: not the results of a run: {message}")]
    Json {
        /// The file.
        path: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The parser's message (names the field when one is missing or wrong).
        message: String,
    },
    /// The JUnit library refused the content.
    #[error("cannot build JUnit XML: {0}")]
    Junit(String),
    /// The runs given to merge are not the shards of one run.
    #[error(transparent)]
    Merge(#[from] MergeError),
}

/// Writes `junit.xml`, `summary.md` and `results.json` into `dir` (created if missing).
pub fn write_all(run: &RunResult, dir: &Path) -> Result<(), ReportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let junit = dir.join("junit.xml");
    std::fs::write(&junit, junit::to_xml(run)?).map_err(io(&junit))?;
    let summary = dir.join("summary.md");
    std::fs::write(&summary, summary::to_markdown(run)).map_err(io(&summary))?;
    let json = dir.join("results.json");
    std::fs::write(&json, to_json(run)).map_err(io(&json))?;
    Ok(())
}

/// `n` and the noun in the number `n` takes: `1 case`, `2 cases`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Checks, before a run, that [`write_all`] will be able to write into `dir`: creates it
/// and each report file (empty) there, so a typo or a read-only place is refused before
/// any case runs rather than after the whole run.
pub fn check_writable(dir: &Path) -> Result<(), ReportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    for name in ["junit.xml", "summary.md", "results.json"] {
        let file = dir.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .map_err(io(&file))?;
    }
    Ok(())
}

/// The text of `results.json`: pretty-printed JSON and a final newline.
pub fn to_json(run: &RunResult) -> String {
    serde_json::to_string_pretty(run).expect("run results serialize") + "\n"
}

/// Reads a `results.json` back. Errors name the file and, for bad JSON, the line and column.
pub fn read_results(path: &Path) -> Result<RunResult, ReportError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: shown.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ReportError::Json {
        path: shown,
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })
}

/// serde_json ends its messages with ` at line L column C`; the error says it first.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// A device's capabilities as (field, value) pairs in the order [`NvmfCaps`] declares its
/// fields, each value as text: numbers in decimal, flags as their names joined by ` | `
/// (`-` when empty), sets as comma-separated lists, booleans as `true` / `false`.
pub fn caps_fields(caps: &NvmfCaps) -> Vec<(String, String)> {
    // Through JSON text, so that the order of the fields survives (serde_json's map sorts).
    let text = serde_json::to_string(caps).expect("caps serialize");
    let Ok(Ordered(pairs)) = serde_json::from_str::<Ordered>(&text) else {
        return Vec::new();
    };
    pairs
        .into_iter()
        .map(|(k, v)| (k, value_text(&v)))
        .collect()
}

/// A JSON object's members in the order written.
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    out.push(pair);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) if s.is_empty() => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if items.is_empty() => "-".into(),
        serde_json::Value::Array(items) => {
            items.iter().map(value_text).collect::<Vec<_>>().join(", ")
        }
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The run description the report tests share: the reference target's full profile on
/// the simulated fabric, two caps.
#[cfg(test)]
fn sample_meta(version: &str) -> crate::runner::RunMeta {
    crate::runner::RunMeta {
        target: "reference:full".into(),
        profile: "full".into(),
        caps: [("offload_type_rc", "READ | WRITE"), ("max_io_sz", "131072")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec(),
        fabric: "sim".into(),
        version: version.into(),
        ..crate::runner::RunMeta::default()
    }
}

/// Asserts that `text` (a rendered report) contains `part`, showing `text` when not.
#[cfg(test)]
#[track_caller]
fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Profile;

    #[test]
    fn caps_fields_keep_declaration_order_and_read_as_text() {
        let caps = Profile::builtin("full").unwrap().caps;
        let fields = caps_fields(&caps);
        assert_eq!(fields[0], ("offload_type_dc".into(), "-".into()));
        assert_eq!(fields[1].0, "offload_type_rc");
        assert!(fields[1].1.contains("READ_WRITE_FLUSH"), "{fields:?}");
        let get = |k: &str| &fields.iter().find(|(f, _)| f == k).unwrap().1;
        assert_eq!(get("max_io_sz"), "131072");
        assert_eq!(get("lba_data_sizes"), "512, 520, 4096, 4104, 4160");
        assert_eq!(get("supports_non_offloaded_ops"), "true");
        assert_eq!(fields.last().unwrap().0, "qp_last_nvme_cqe_reached");
    }

    #[test]
    fn unreadable_results_name_the_file_line_and_column() {
        let dir = std::env::temp_dir().join(format!("nvmf-conform-rr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("results.json");
        std::fs::write(&bad, "{\n  \"meta\": {\n    \"target\": 3\n  }\n}\n").unwrap();
        let e = read_results(&bad).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:3:", bad.display())), "{e}");
        assert!(e.contains("invalid type"), "{e}");
        let missing = dir.join("nope.json");
        let e = read_results(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with("cannot read") && e.contains("nope.json"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
