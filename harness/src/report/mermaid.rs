//! Traces as mermaid sequence diagrams, for `summary.md`'s failure sections.
//!
//! The participants are always `host` (the NVMe-oF initiator), `target` (the target's
//! software), `device` (the offloading NIC, i.e. the offload API and the device context
//! software uses) and `backend` (the NVMe controllers behind it). A trace line `actor kind
//! text` becomes:
//!
//! | line | diagram |
//! |---|---|
//! | `host call …`, `target call …` (verbs calls) | a note over the caller |
//! | `device call …` (an offload API call) | `target ->> device` |
//! | `host capsule -> …` | `host ->> target` (the command capsule) |
//! | `host resp <- …` | `target -->> host` (the response capsule) |
//! | `target capsule <- …` | `device ->> target`: a capsule the device handed to software |
//! | `target resp -> …`, `target post …` | `target ->> device` |
//! | `target wc …` | `device -->> target` |
//! | `device event …`, `target event …` | `device -) target` |
//! | `host cm …` / `target cm …` | `target -) host` / `host -) target` |
//! | `host post/wc/event/note …` | a note over `host` (its own NIC) |
//! | anything else of a known actor | a note over that actor |
//! | a line of another actor (the fabric contract's free-form lines) | a note across all |
//!
//! A trace longer than the limit keeps its first third and its end, with a note saying how
//! many lines were left out. Message text is escaped ([`escape`]) so that no trace line can
//! break the diagram.

use std::fmt::Write;

/// Most messages a diagram shows (the elision note aside).
pub const MAX_MESSAGES: usize = 60;

/// Longest message text, in characters; longer ones end with `…`.
pub const MAX_TEXT: usize = 110;

const PARTICIPANTS: [&str; 4] = ["host", "target", "device", "backend"];

/// The body of a ```` ```mermaid ```` block drawing `trace` (see the module docs), showing
/// at most `max_messages` of its lines.
pub fn sequence_diagram<S: AsRef<str>>(trace: &[S], max_messages: usize) -> String {
    let mut s = String::from("sequenceDiagram\n");
    for p in PARTICIPANTS {
        let _ = writeln!(s, "    participant {p}");
    }
    let lines: Vec<&str> = trace
        .iter()
        .map(|l| l.as_ref().trim())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        s.push_str("    Note over host,backend: (empty trace)\n");
        return s;
    }
    let max = max_messages.max(2);
    if lines.len() <= max {
        for l in &lines {
            message(&mut s, l);
        }
    } else {
        let head = max / 3;
        let tail = max - head;
        for l in &lines[..head] {
            message(&mut s, l);
        }
        let _ = writeln!(
            s,
            "    Note over host,backend: … {} more lines, not drawn (the whole trace is in results.json) …",
            lines.len() - max
        );
        for l in &lines[lines.len() - tail..] {
            message(&mut s, l);
        }
    }
    s
}

/// Appends the diagram statement of one trace line.
fn message(s: &mut String, line: &str) {
    let mut words = line.split_whitespace();
    let actor = words.next().unwrap_or("");
    let kind = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    let dir = rest.first().copied().filter(|w| *w == "->" || *w == "<-");
    let text = if dir.is_some() {
        rest[1..].join(" ")
    } else {
        rest.join(" ")
    };
    let text = |prefix: &str| {
        let t = if prefix.is_empty() {
            text.clone()
        } else if text.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix} {text}")
        };
        escape(&shorten(if t.is_empty() { "(empty)" } else { &t }))
    };
    let stmt = match (actor, kind, dir) {
        ("host" | "target", "call", _) => format!("Note over {actor}: {}", text("")),
        ("device", "call", _) => format!("target->>device: {}", text("")),
        ("host", "capsule", _) => format!("host->>target: {}", text("")),
        ("host", "resp", _) => format!("target-->>host: {}", text("")),
        ("target", "capsule", _) => format!("device->>target: {}", text("capsule")),
        ("target", "resp", _) => format!("target->>device: {}", text("resp")),
        ("target", "post", _) => format!("target->>device: {}", text("post")),
        ("target", "wc", _) => format!("device-->>target: {}", text("wc")),
        ("device" | "target", "event", _) => format!("device-)target: {}", text("event")),
        ("host", "cm", _) => format!("target-)host: {}", text("cm")),
        ("target", "cm", _) => format!("host-)target: {}", text("cm")),
        (a, k, _) if PARTICIPANTS.contains(&a) => {
            let k = match dir {
                Some(d) => format!("{k} {d}"),
                None => k.to_string(),
            };
            format!("Note over {a}: {}", text(&k))
        }
        _ => format!("Note over host,backend: {}", escape(&shorten(line))),
    };
    s.push_str("    ");
    s.push_str(&stmt);
    s.push('\n');
}

/// `text` cut to [`MAX_TEXT`] characters, with blanks collapsed.
fn shorten(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= MAX_TEXT {
        return text;
    }
    let mut t: String = text.chars().take(MAX_TEXT - 1).collect();
    t.push('…');
    t
}

/// Message text made safe for mermaid: characters that end a statement (`;`, a newline),
/// start an entity or a comment (`#`, `%`), or could be read as markup (`<`, `>`, `&`,
/// `"`, `` ` ``, `{`, `}`) become mermaid entity codes (`#59;` …), which it draws as the
/// character itself.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' | ';' | '<' | '>' | '&' | '%' | '"' | '`' | '{' | '}' | '\\' => {
                let _ = write!(out, "#{};", c as u32);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_map_to_participants_by_actor_and_kind() {
        let d = sequence_diagram(
            &[
                "target   call    alloc_pd -> pd1",
                "device   call    map_nsid ctrl1 fe_nsid=1 nvme_nsid=1 lba_data_size=4096 -> EEXIST",
                "host     capsule -> read slba=0 nlb=0 cid=0 nsid=1 data=keyed(mr6+0x0 len=4096 key=mr6.rkey)",
                "host     resp    <- cid=0 status=SCT0/SC0x06 Internal Error dw0=0x0",
                "target   capsule <- connect cid=0 qid=0",
                "target   wc      qp2 RdmaRead SUCCESS wr=1",
                "device   event   NVME_PCI_ERR ctrl1",
                "target   cm      conn2 connect-request recfmt=0",
                "host     cm      conn1 established",
                "host     wc      qp1 Recv SUCCESS wr=8 len=16 from=qp2",
                "server wc WorkCompletion { status: Success }",
            ],
            MAX_MESSAGES,
        );
        let want = "sequenceDiagram
    participant host
    participant target
    participant device
    participant backend
    Note over target: alloc_pd -#62; pd1
    target->>device: map_nsid ctrl1 fe_nsid=1 nvme_nsid=1 lba_data_size=4096 -#62; EEXIST
    host->>target: read slba=0 nlb=0 cid=0 nsid=1 data=keyed(mr6+0x0 len=4096 key=mr6.rkey)
    target-->>host: cid=0 status=SCT0/SC0x06 Internal Error dw0=0x0
    device->>target: capsule connect cid=0 qid=0
    device-->>target: wc qp2 RdmaRead SUCCESS wr=1
    device-)target: event NVME_PCI_ERR ctrl1
    host-)target: cm conn2 connect-request recfmt=0
    target-)host: cm conn1 established
    Note over host: wc qp1 Recv SUCCESS wr=8 len=16 from=qp2
    Note over host,backend: server wc WorkCompletion #123; status: Success #125;
";
        assert_eq!(d, want);
    }

    #[test]
    fn text_that_would_break_mermaid_is_escaped() {
        assert_eq!(
            escape("a;b #1 <x> & 100% \"q\" `c`"),
            "a#59;b #35;1 #60;x#62; #38; 100#37; #34;q#34; #96;c#96;"
        );
        let d = sequence_diagram(&["host note end; %% x\nsequenceDiagram"], 10);
        let last = d.lines().last().unwrap();
        assert_eq!(
            last,
            "    Note over host: note end#59; #37;#37; x sequenceDiagram"
        );
        // every statement is one line, and no message text holds a raw `;` or `#…` that
        // is not one of our entity codes
        for l in d.lines().skip(5) {
            let text = &l[l.find(':').unwrap() + 1..];
            assert!(
                !text.contains(';')
                    || text.split('#').skip(1).all(|p| p
                        .split_once(';')
                        .is_some_and(|(n, _)| n.parse::<u32>().is_ok())),
                "{l}"
            );
        }
    }

    #[test]
    fn long_traces_are_elided_with_a_note() {
        let trace: Vec<String> = (0..100).map(|i| format!("host call op{i} -> ok")).collect();
        let d = sequence_diagram(&trace, 60);
        let messages = d.lines().filter(|l| l.contains("op")).count();
        assert_eq!(messages, 60);
        assert!(d.contains("… 40 more lines, not drawn"), "{d}");
        assert!(d.contains("op0 ") && d.contains("op19 ") && !d.contains("op20 "));
        assert!(d.contains("op60 ") && d.contains("op99 ") && !d.contains("op59 "));
        let long = format!("host call {}", "x".repeat(300));
        let d = sequence_diagram(&[long], 60);
        assert!(d.lines().last().unwrap().ends_with('…'));
    }
}
