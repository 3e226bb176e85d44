//! The views two-host mode compares a trace on ([`super::Timing::Remote`],
//! [`super::Timing::RemoteDevice`] and their racy forms): each host's lines in their own
//! order, object names renumbered in order of first appearance.

use super::relax_backend;

/// The host's lines of `text`, as two-host mode compares them: every object name
/// renumbered in order of first appearance (the other process's objects are not numbered
/// here), and `from=` (the sender's QP, the target's) dropped.
pub fn host_view(text: &str) -> String {
    renumbered(text.lines().filter(|l| l.starts_with("host ")))
}

/// What a two-host case that drives the device through the channel is compared on: the
/// host's lines with the device's, then the target's with the device's, each sequence in
/// its own order (where the target's lines fall among the host's is timing across two
/// hosts), renumbered together as [`host_view`] does.
pub fn remote_device_view(text: &str) -> String {
    let with_device = |actor: &'static str| {
        text.lines()
            .filter(move |l| l.starts_with(actor) || l.starts_with("device "))
    };
    let backend = relax_backend(text);
    let backend = backend.lines().filter(|l| l.starts_with("backend "));
    renumbered(
        with_device("host ")
            .chain(with_device("target "))
            .chain(backend),
    )
}

/// What a two-host control-plane case is compared on: the host's lines, then the target
/// host's (its target's and its device's) each in their own order (where they fall among
/// the host's is timing across two hosts), then the backend's relaxed, renumbered together
/// as [`host_view`] does.
pub fn remote_control_view(text: &str) -> String {
    let (host, there, backend) = remote_control_parts(text);
    host + &there.concat() + &backend
}

/// [`remote_control_view`]'s three parts: the host's lines, the target host's (one string
/// a line), the backend's.
fn remote_control_parts(text: &str) -> (String, Vec<String>, String) {
    static REMOTE: std::sync::OnceLock<[regex::Regex; 2]> = std::sync::OnceLock::new();
    let [addr, key] = REMOTE.get_or_init(|| {
        [
            regex::Regex::new(r"\b(mr[0-9]+\+0x[0-9a-f]+|unknown-addr[0-9]+)").expect("valid"),
            regex::Regex::new(r"\b(mr[0-9]+\.rkey|unknown-key[0-9]+)").expect("valid"),
        ]
    });
    let host = renumbered(text.lines().filter(|l| l.starts_with("host ")));
    // the other host's lines, numbered on their own; the host's memory they name (an
    // address and key a capsule carries) is the host's, which the target host cannot name
    let there: Vec<String> = (text.lines())
        .filter(|l| l.starts_with("target ") || l.starts_with("device "))
        .map(|l| {
            key.replace_all(&addr.replace_all(l, "host-addr"), "host-key")
                .into_owned()
        })
        .collect();
    let there = renumbered(there.iter().map(String::as_str));
    let backend = relax_backend(text);
    let backend = renumbered(backend.lines().filter(|l| l.starts_with("backend ")));
    (
        host,
        there.lines().map(|l| format!("{l}\n")).collect(),
        backend,
    )
}

/// The expected and actual views of a two-host control-plane case: the target host's
/// lines of `actual` up to as many as `expected` has (it goes on in real time once the
/// case is over, tearing down the connections the case's host let go: those lines are
/// not the case's).
pub(super) fn remote_control_views(expected: &str, actual: &str) -> (String, String) {
    let (eh, et, eb) = remote_control_parts(expected);
    let (ah, mut at, ab) = remote_control_parts(actual);
    at.truncate(et.len());
    (eh + &et.concat() + &eb, ah + &at.concat() + &ab)
}

/// `lines` with every object name renumbered in order of first appearance and `from=`
/// dropped.
pub(super) fn renumbered<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    static NAME: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let name = NAME.get_or_init(|| {
        regex::Regex::new(
            r"\b(unknown-qpn|unknown-key|unknown-addr|nvmf-srq|srq|conn|ctrl|pd|qp|cq|mr)([0-9]+)\b",
        )
        .expect("a valid pattern")
    });
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut out = String::new();
    for l in lines {
        let kept: Vec<&str> = l.split(' ').filter(|w| !w.starts_with("from=")).collect();
        let joined = kept.join(" ");
        let line = name.replace_all(&joined, |c: &regex::Captures<'_>| {
            let n = seen.entry(c[0].to_string()).or_insert_with(|| {
                let k = counts.entry(c[1].to_string()).or_insert(0);
                *k += 1;
                *k
            });
            format!("{}#{n}", &c[1])
        });
        out.push_str(&line);
        out.push('\n');
    }
    out
}
