//! The control channel's malformed inputs, one table row each with its exact answer, against
//! `nvmf-reference-target --control` processes on loopback: one with a lab secret (TLS), one
//! `--insecure` (so that rows can write raw lines). Each row opens a runner's session of its
//! own, brings it to the row's stage (connected, greeted, a target started), sends the input
//! and compares the answer: an error naming the field or object with the session still
//! answering, or an error and the session closed. After every row the channel serves a
//! well-behaved runner: it connects, starts a target and stops it.
//!
//! `docs/malformed-inputs.md` (section "Control channel") holds the same table;
//! `every_control_row_is_documented` keeps the two from drifting.

mod control_rig;

use std::time::Duration;

use reference_target::quirks::Quirks;
use reference_target::remote::auth::{Binding, Side};
use reference_target::remote::channel::{self, NEEDS_TLS};
use reference_target::remote::proto::{read_line, Reply, Request, MAX_LINE, PROTOCOL};
use reference_target::remote::Security;
use tokio::io::{AsyncWriteExt, BufReader};

use control_rig::{
    config, full, runner, spawn_target, start_and_stop, LabSecret, TargetProcess, BOUND,
};

/// How far a row's session gets before its input.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Connected (over TLS on the TLS channel), nothing said.
    Connected,
    /// `hello` answered.
    Greeted,
    /// A target started.
    Started,
}

/// What a row sends.
enum Input {
    /// One line (a newline is added).
    Line(String),
    /// Bytes as they are.
    Bytes(Vec<u8>),
    /// `hello` with this proof, made by a function of the session.
    Hello(Proof),
    /// Plain text to the TLS channel.
    PlainToTls,
    /// A second runner, with the secret, while this session is served.
    SecondRunner,
}

/// The proof a `hello` row carries.
#[derive(Clone, Copy)]
enum Proof {
    None,
    /// Not hex.
    Garbled,
    /// Of another secret.
    OtherSecret,
    /// Of another (earlier) session of the right secret.
    Replayed,
    /// The target's own label, not the runner's.
    TargetSide,
}

/// The answer a row expects.
enum Expect {
    /// An error containing this, the session still answering.
    Error(&'static str),
    /// An error containing this, then the connection closed.
    ErrorThenClosed(&'static str),
}

struct Row {
    name: &'static str,
    tls: bool,
    stage: Stage,
    input: Input,
    expect: Expect,
}

fn row(name: &'static str, tls: bool, stage: Stage, input: Input, expect: Expect) -> Row {
    Row {
        name,
        tls,
        stage,
        input,
        expect,
    }
}

fn line(s: impl Into<String>) -> Input {
    Input::Line(s.into())
}

fn table() -> Vec<Row> {
    use Expect::*;
    use Stage::*;
    let start = |config: String, profile: serde_json::Value| {
        serde_json::json!({"op": "start", "config": config, "profile": profile, "quirks": []})
            .to_string()
    };
    let profile = serde_json::to_value(full()).unwrap();
    let mut bad_caps = full();
    bad_caps.caps.min_ioccsz = bad_caps.caps.max_ioccsz + 1;
    let bad_caps = serde_json::to_value(bad_caps).unwrap();
    let deep = format!(
        r#"{{"x":{}{},"op":"stop"}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    vec![
        row(
            "ctl-not-json",
            false,
            Connected,
            line("not json"),
            Error("malformed request"),
        ),
        row(
            "ctl-not-utf8",
            false,
            Connected,
            Input::Bytes(b"{\"op\":\"st\xffop\"}\n".to_vec()),
            Error("malformed request"),
        ),
        row(
            "ctl-deep-nesting",
            false,
            Connected,
            line(deep),
            Error("recursion limit"),
        ),
        row(
            "ctl-before-hello",
            false,
            Connected,
            line(r#"{"op":"events"}"#),
            Error("say hello first"),
        ),
        row(
            "ctl-protocol-mismatch",
            false,
            Connected,
            line(r#"{"op":"hello","protocol":999}"#),
            Error("protocol 999 is not this target's (6)"),
        ),
        row(
            "ctl-unknown-op",
            false,
            Greeted,
            line(r#"{"op":"reboot"}"#),
            Error("unknown variant `reboot`"),
        ),
        row(
            "ctl-unknown-field",
            false,
            Greeted,
            line(r#"{"op":"stop","now":true}"#),
            Error("unknown field `now`"),
        ),
        row(
            "ctl-missing-field",
            false,
            Greeted,
            line(r#"{"op":"controllers"}"#),
            Error("missing field `subnqn`"),
        ),
        row(
            "ctl-wrong-type",
            false,
            Greeted,
            line(r#"{"op":"ns-counters","subnqn":"x","nsid":"one"}"#),
            Error("invalid type: string \"one\""),
        ),
        row(
            "ctl-out-of-range",
            false,
            Greeted,
            line(r#"{"op":"ns-counters","subnqn":"x","nsid":4294967296}"#),
            Error("invalid value: integer `4294967296`"),
        ),
        row(
            "ctl-unknown-fault",
            false,
            Started,
            line(r#"{"op":"inject","subnqn":"a","nsid":1,"fault":"melt"}"#),
            Error("unknown variant `melt`"),
        ),
        row(
            "ctl-no-target",
            false,
            Greeted,
            line(r#"{"op":"controllers","subnqn":"x"}"#),
            Error("no target is running: start one first"),
        ),
        row(
            "ctl-stop-no-target",
            false,
            Greeted,
            line(r#"{"op":"stop"}"#),
            Error("no target is running"),
        ),
        row(
            "ctl-bad-config",
            false,
            Greeted,
            line(start(
                "[[port]]\naddr = \"nowhere\"\nsubsystem = \"x\"\n".into(),
                profile.clone(),
            )),
            Error("port.addr"),
        ),
        row(
            "ctl-inconsistent-caps",
            false,
            Greeted,
            line(start(config(), bad_caps)),
            Error("profile: inconsistent caps"),
        ),
        row(
            "ctl-second-start",
            false,
            Started,
            line(start(config(), profile)),
            Error("a target is running: stop it first"),
        ),
        row(
            "ctl-unknown-subsystem",
            false,
            Started,
            line(r#"{"op":"backend-counters","subnqn":"nqn.nobody","nsid":1}"#),
            Error("subnqn/nsid: no backend for nqn.nobody nsid 1"),
        ),
        row(
            "ctl-too-many-blocks",
            false,
            Started,
            line(format!(
                r#"{{"op":"backend-blocks","subnqn":"{}","nsid":1,"slba":0,"count":1048576}}"#,
                control_rig::SUB
            )),
            Error("count: 1048576 blocks are"),
        ),
        row(
            "ctl-device-not-open",
            false,
            Greeted,
            line(r#"{"op":"ctx","call":{"call":"alloc-pd"}}"#),
            Error("no device is open: open-device first"),
        ),
        row(
            "ctl-unknown-device-call",
            false,
            Greeted,
            line(r#"{"op":"ctx","call":{"call":"format-disk"}}"#),
            Error("unknown variant `format-disk`"),
        ),
        row(
            "ctl-close-no-device",
            false,
            Greeted,
            line(r#"{"op":"close-device"}"#),
            Error("no device is open"),
        ),
        row(
            "ctl-real-fault-not-lent",
            false,
            Greeted,
            line(r#"{"op":"real-fault","fault":"pci-error"}"#),
            Error("this target host lends no real controller (start nvmf-reference-target --control with --backend vfio:PCI --allow-destructive PCI)"),
        ),
        row(
            "ctl-unknown-real-fault",
            false,
            Greeted,
            line(r#"{"op":"real-fault","fault":"melt"}"#),
            Error("unknown variant `melt`"),
        ),
        row(
            "ctl-device-while-started",
            false,
            Started,
            line(
                serde_json::json!({"op": "open-device", "profile": full(), "quirks": []})
                    .to_string(),
            ),
            Error("a target is running: stop it first"),
        ),
        row(
            "ctl-line-too-long",
            false,
            Greeted,
            Input::Bytes(vec![b'x'; MAX_LINE + 2]),
            ErrorThenClosed("line longer than 4194304 bytes: closing"),
        ),
        row(
            "ctl-plain-to-tls",
            true,
            Connected,
            Input::PlainToTls,
            ErrorThenClosed(NEEDS_TLS),
        ),
        row(
            "ctl-no-proof",
            true,
            Connected,
            Input::Hello(Proof::None),
            ErrorThenClosed("hello carries no proof of the lab secret"),
        ),
        row(
            "ctl-proof-not-hex",
            true,
            Connected,
            Input::Hello(Proof::Garbled),
            ErrorThenClosed("authentication failed"),
        ),
        row(
            "ctl-proof-other-secret",
            true,
            Connected,
            Input::Hello(Proof::OtherSecret),
            ErrorThenClosed("authentication failed"),
        ),
        row(
            "ctl-proof-replayed",
            true,
            Connected,
            Input::Hello(Proof::Replayed),
            ErrorThenClosed("authentication failed"),
        ),
        row(
            "ctl-proof-target-side",
            true,
            Connected,
            Input::Hello(Proof::TargetSide),
            ErrorThenClosed("authentication failed"),
        ),
        row(
            "ctl-before-proof",
            true,
            Connected,
            line(r#"{"op":"events"}"#),
            Error("say hello first"),
        ),
        row(
            "ctl-second-runner",
            true,
            Greeted,
            Input::SecondRunner,
            Error("busy: runner 127.0.0.1:"),
        ),
    ]
}

/// One runner's session, raw.
struct Session {
    io: BufReader<channel::Stream>,
    binding: Option<Binding>,
}

impl Session {
    async fn open(p: &TargetProcess, security: &Security) -> Session {
        let e = channel::open(p.addr, security, BOUND)
            .await
            .expect("a session");
        Session {
            io: BufReader::new(e.stream),
            binding: e.binding,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        // the target may close while a long line is still being written
        let _ = self.io.get_mut().write_all(bytes).await;
        let _ = self.io.get_mut().flush().await;
    }

    async fn ask(&mut self, req: &Request) -> Reply {
        let mut l = serde_json::to_vec(req).unwrap();
        l.push(b'\n');
        self.send(&l).await;
        self.reply().await.expect("a reply")
    }

    /// The next reply, or `None` when the target closed.
    async fn reply(&mut self) -> Option<Reply> {
        let l = tokio::time::timeout(BOUND, read_line(&mut self.io))
            .await
            .expect("an answer within the bound")
            .ok()?;
        Some(serde_json::from_str(&l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
    }

    /// The runner's proof of `lab` for this session.
    fn proof(&self, lab: &LabSecret) -> Option<String> {
        prove(lab, Side::Runner, self.binding.as_ref()?)
    }
}

/// `side`'s proof of `lab`'s secret over `binding`.
fn prove(lab: &LabSecret, side: Side, binding: &Binding) -> Option<String> {
    match lab.security() {
        Security::Secret(s) => Some(s.prove(side, binding)),
        Security::Insecure => None,
    }
}

/// The channels of the table, and the secrets rows need.
struct Channels {
    plain: TargetProcess,
    tls: TargetProcess,
    lab: LabSecret,
    other: LabSecret,
}

impl Channels {
    fn security(&self, tls: bool) -> Security {
        if tls {
            self.lab.security()
        } else {
            Security::Insecure
        }
    }

    fn target(&self, tls: bool) -> &TargetProcess {
        if tls {
            &self.tls
        } else {
            &self.plain
        }
    }
}

/// Runs one row; `Err` says how the answer differs.
async fn run_row(c: &Channels, r: &Row) -> Result<(), String> {
    let p = c.target(r.tls);
    if let Input::PlainToTls = r.input {
        let mut s = Session::open(p, &Security::Insecure).await;
        s.send(format!("{{\"op\":\"hello\",\"protocol\":{PROTOCOL}}}\n").as_bytes())
            .await;
        return check(&mut s, r).await;
    }
    let mut s = Session::open(p, &c.security(r.tls)).await;
    if r.stage != Stage::Connected {
        let hello = Request::Hello {
            protocol: PROTOCOL,
            proof: s.proof(&c.lab).filter(|_| r.tls),
        };
        match s.ask(&hello).await {
            Reply::Hello { .. } => {}
            other => return Err(format!("hello: {other:?}")),
        }
    }
    if r.stage == Stage::Started {
        let start = Request::Start {
            config: config(),
            profile: full(),
            quirks: Quirks::none(),
        };
        match s.ask(&start).await {
            Reply::Started { .. } => {}
            other => return Err(format!("start: {other:?}")),
        }
    }
    match &r.input {
        Input::Line(l) => s.send(format!("{l}\n").as_bytes()).await,
        Input::Bytes(b) => s.send(b).await,
        Input::Hello(proof) => {
            let proof = match proof {
                Proof::None => None,
                Proof::Garbled => Some("zz".repeat(32)),
                Proof::OtherSecret => s.proof(&c.other),
                Proof::Replayed => Session::open(p, &c.security(true)).await.proof(&c.lab),
                Proof::TargetSide => prove(&c.lab, Side::Target, s.binding.as_ref().unwrap()),
            };
            let mut l = serde_json::to_vec(&Request::Hello {
                protocol: PROTOCOL,
                proof,
            })
            .unwrap();
            l.push(b'\n');
            s.send(&l).await;
        }
        Input::SecondRunner => {
            let mut second = Session::open(p, &c.security(true)).await;
            let hello = Request::Hello {
                protocol: PROTOCOL,
                proof: second.proof(&c.lab),
            };
            let got = second.ask(&hello).await;
            expect_error(Some(got), r)?;
            // and this session is still served
            return still_answers(&mut s).await;
        }
        Input::PlainToTls => unreachable!(),
    }
    check(&mut s, r).await
}

fn expect_error(got: Option<Reply>, r: &Row) -> Result<(), String> {
    let needle = match r.expect {
        Expect::Error(n) | Expect::ErrorThenClosed(n) => n,
    };
    match got {
        Some(Reply::Error { message }) if message.contains(needle) => Ok(()),
        other => Err(format!(
            "expected an error containing {needle:?}, got {other:?}"
        )),
    }
}

async fn check(s: &mut Session, r: &Row) -> Result<(), String> {
    let got = s.reply().await;
    expect_error(got, r)?;
    match r.expect {
        Expect::Error(_) => still_answers(s).await,
        Expect::ErrorThenClosed(_) => match s.reply().await {
            None => Ok(()),
            Some(more) => Err(format!("the session was not closed: {more:?}")),
        },
    }
}

/// The session answers a well-formed request: `hello` (the protocol check comes first, so
/// it answers whatever the stage) is enough to show the line reader is in step.
async fn still_answers(s: &mut Session) -> Result<(), String> {
    let req = Request::Hello {
        protocol: PROTOCOL + 1,
        proof: None,
    };
    match s.ask(&req).await {
        Reply::Error { message } if message.contains("is not this target's") => Ok(()),
        other => Err(format!("the session no longer answers in step: {other:?}")),
    }
}

/// After a row: a well-behaved runner is served on the row's channel.
async fn channel_serves(c: &Channels, tls: bool) -> Result<(), String> {
    let t = runner(c.target(tls), &c.security(tls))
        .await
        .map_err(|e| format!("a runner after the row: {e}"))?;
    start_and_stop(&t).await
}

#[tokio::test]
async fn malformed_control_inputs_are_answered_precisely() {
    let lab = LabSecret::new("table");
    let c = Channels {
        plain: spawn_target(None),
        tls: spawn_target(Some(&lab)),
        other: LabSecret::new("table-other"),
        lab,
    };
    let mut failures = Vec::new();
    for r in table() {
        if let Err(e) = run_row(&c, &r).await {
            failures.push(format!("{}: {e}", r.name));
        }
        // a refused proof keeps the target busy for its pause before it closes
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let Err(e) = channel_serves(&c, r.tls).await {
            failures.push(format!("{}: {e}", r.name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn control_row_names_are_unique() {
    let mut names: Vec<&str> = table().iter().map(|r| r.name).collect();
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate row names");
}

#[test]
fn every_control_row_is_documented() {
    let rows = table();
    reference_target::testing::tables::assert_documented(
        "malformed-inputs.md",
        rows.iter().map(|r| r.name),
    );
}
