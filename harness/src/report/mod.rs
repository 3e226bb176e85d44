//! Reports written from a [`RunResult`]: JUnit XML for CI,
//! `summary.md` for people, `results.json` for tools.

pub mod junit;
pub mod summary;

use std::path::Path;

use crate::runner::RunResult;

/// Error writing a report.
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
    /// The JUnit library refused the content.
    #[error("cannot build JUnit XML: {0}")]
    Junit(String),
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
    let text = serde_json::to_string_pretty(run).expect("run results serialize");
    std::fs::write(&json, text + "\n").map_err(io(&json))?;
    Ok(())
}
