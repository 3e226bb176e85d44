//! The recorder: an ordered, shareable list of trace lines.

use std::fmt;
use std::sync::{Arc, Mutex};

/// One line of a trace: who, what kind of thing, and the details.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceLine {
    /// The actor: `host`, `target`, `device` (the offload API), `backend`…
    pub actor: String,
    /// The kind: `call`, `post`, `wc`, `event`, `cm`, `capsule`, `resp`, `note`.
    pub kind: &'static str,
    /// The details, already normalised.
    pub text: String,
}

impl fmt::Display for TraceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<8} {:<7} {}", self.actor, self.kind, self.text)
    }
}

/// Collects trace lines from every wrapped object of a case, in the order they happen.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    lines: Arc<Mutex<Vec<TraceLine>>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Appends a line.
    pub fn push(&self, actor: &str, kind: &'static str, text: impl Into<String>) {
        let line = TraceLine {
            actor: actor.to_string(),
            kind,
            text: text.into(),
        };
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// A copy of the lines so far.
    pub fn lines(&self) -> Vec<TraceLine> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The trace as text, one line per entry (the snapshot format).
    pub fn text(&self) -> String {
        let mut s = String::new();
        for l in self.lines() {
            s.push_str(&l.to_string());
            s.push('\n');
        }
        s
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the lines so far (long-running loads such as benchmarks keep memory flat).
    pub fn clear(&self) {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
