//! Two-host mode's control channel, with two processes on loopback: the runner's client
//! (this test) against `nvmf-reference-target --control 127.0.0.1:0 --fabric sim`.
//! Starting and stopping targets (the same port again and again), what only the target
//! sees, fault injection and the event it raises, the trace, and every refusal: the
//! target keeps serving after each.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harness::api::Profile;
use harness::backend::emulated::Fault;
use reference_target::quirks::Quirks;
use reference_target::remote::proto::{Reply, PROTOCOL};
use reference_target::remote::{RemoteError, RemoteTarget};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const SUB: &str = "nqn.2026-11.io.nvmf-conform:sub0";
const BOUND: Duration = Duration::from_secs(20);

fn config() -> String {
    format!(
        "[[port]]\naddr = \"127.0.10.1:4420\"\nsubsystem = \"{SUB}\"\n\n\
         [[subsystem]]\nnqn = \"{SUB}\"\nallow_any_host = true\n\n\
         [[subsystem.namespace]]\nnsid = 1\nsize = \"1MiB\"\nlba_format = \"4096\"\n"
    )
}

/// The target process; killed when dropped.
struct TargetProcess {
    child: Child,
    addr: SocketAddr,
}

impl Drop for TargetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_target() -> TargetProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nvmf-reference-target"))
        .args([
            "--fabric",
            "sim",
            "--control",
            "127.0.0.1:0",
            "--duration",
            "300",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nvmf-reference-target starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split_whitespace()
        .find_map(|w| w.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    TargetProcess { child, addr }
}

fn full() -> Profile {
    Profile::builtin("full").unwrap()
}

fn refused(r: Result<impl std::fmt::Debug, RemoteError>, needle: &str) {
    match r {
        Err(RemoteError::Refused { message, .. }) => {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}")
        }
        other => panic!("expected a refusal naming {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_runner_drives_targets_over_the_channel() {
    let p = spawn_target();
    let t = RemoteTarget::connect(p.addr, BOUND).await.expect("hello");
    assert_eq!(t.info().fabric, "sim");
    assert_eq!(t.info().device, "sim0");

    refused(t.controllers(SUB).await, "no target is running");
    // one runner at a time: a second one is told who holds the target
    match RemoteTarget::connect(p.addr, BOUND).await {
        Err(RemoteError::Refused {
            op: "hello",
            message,
        }) => {
            assert!(message.contains("busy: runner 127.0.0.1:"), "{message}")
        }
        other => panic!("a second runner was not refused: {other:?}"),
    }
    for round in 0..3 {
        // the same port every time: a stopped target has let go of its device
        let ip = t
            .start(&config(), &full(), &Quirks::none())
            .await
            .expect("start");
        assert_eq!(ip.to_string(), "127.0.10.1", "round {round}");
        refused(
            t.start(&config(), &full(), &Quirks::none()).await,
            "a target is running",
        );
        assert_eq!(t.controllers(SUB).await.unwrap(), Vec::<u16>::new());
        assert_eq!(t.software_io_commands(SUB).await.unwrap(), 0);
        assert_eq!(t.backend_counters(SUB, 1).await.unwrap().commands, 0);
        assert_eq!(
            t.backend_blocks(SUB, 1, 0, 2).await.unwrap(),
            vec![0u8; 8192]
        );
        refused(t.backend_counters(SUB, 9).await, "nsid 9");
        refused(t.backend_blocks(SUB, 1, 0, 1 << 20).await, "count");

        // a backend PCI error: the device raises NVME_PCI_ERR, the control plane reacts
        t.inject(SUB, 1, Fault::PciError).await.expect("inject");
        let ev = t.wait_event("NVME_PCI_ERR", BOUND).await.unwrap();
        assert!(ev.is_some(), "no NVME_PCI_ERR event within {BOUND:?}");
        assert_eq!(
            t.wait_event("never-logged", Duration::from_millis(50))
                .await
                .unwrap(),
            None
        );
        refused(
            t.inject("nqn.nobody", 1, Fault::PciError).await,
            "nqn.nobody",
        );

        let live = t.trace().await.unwrap();
        let (trace, events) = t.stop().await.expect("stop");
        assert!(trace.len() >= live.len());
        assert!(
            trace
                .iter()
                .any(|l| l.starts_with("device") && l.contains("create_srq")),
            "{trace:#?}"
        );
        assert!(
            events.iter().any(|l| l.contains("NVME_PCI_ERR")),
            "{events:#?}"
        );
        refused(t.stop().await, "no target is running");
    }

    // a configuration the target cannot take: the message names the field
    refused(
        t.start(
            "[[port]]\naddr = \"nowhere\"\nsubsystem = \"x\"\n",
            &full(),
            &Quirks::none(),
        )
        .await,
        "port.addr",
    );
    // a profile whose caps contradict each other
    let mut bad = full();
    bad.caps.min_ioccsz = bad.caps.max_ioccsz + 1;
    refused(
        t.start(&config(), &bad, &Quirks::none()).await,
        "inconsistent caps",
    );
    // and the channel still serves
    t.start(&config(), &full(), &Quirks::none())
        .await
        .expect("start after refusals");
    t.stop().await.expect("stop");
}

/// Raw lines: malformed requests and a protocol mismatch are answered with an error and
/// the channel keeps serving; a runner that leaves mid-target leaves the port free.
#[tokio::test]
async fn bad_requests_are_answered_and_the_channel_keeps_serving() {
    let p = spawn_target();
    let mut s = tokio::io::BufReader::new(tokio::net::TcpStream::connect(p.addr).await.unwrap());
    async fn ask(s: &mut tokio::io::BufReader<tokio::net::TcpStream>, line: &str) -> Reply {
        s.get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let mut reply = String::new();
        tokio::time::timeout(BOUND, s.read_line(&mut reply))
            .await
            .unwrap()
            .unwrap();
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{reply:?}: {e}"))
    }
    let error = |r: Reply, needle: &str| match r {
        Reply::Error { message } => assert!(message.contains(needle), "{message}"),
        other => panic!("expected an error naming {needle:?}, got {other:?}"),
    };
    error(ask(&mut s, "not json").await, "malformed request");
    error(ask(&mut s, r#"{"op":"events"}"#).await, "hello first");
    error(
        ask(&mut s, r#"{"op":"hello","protocol":999}"#).await,
        "protocol 999",
    );
    error(ask(&mut s, r#"{"op":"reboot"}"#).await, "malformed request");
    let hello = format!(r#"{{"op":"hello","protocol":{PROTOCOL}}}"#);
    assert!(matches!(ask(&mut s, &hello).await, Reply::Hello { .. }));
    error(
        ask(&mut s, r#"{"op":"stop","now":true}"#).await,
        "unknown field",
    );
    // a runner that goes away with a target running
    let start = serde_json::json!({
        "op": "start", "config": config(), "profile": full(), "quirks": []
    });
    assert!(matches!(
        ask(&mut s, &start.to_string()).await,
        Reply::Started { .. }
    ));
    drop(s);
    // the next runner gets the same port
    let t = RemoteTarget::connect(p.addr, BOUND).await.expect("hello");
    t.start(&config(), &full(), &Quirks::none())
        .await
        .expect("the port of the abandoned target is free again");
    t.stop().await.unwrap();
}

/// Runners one after another, each connecting the moment the previous one hangs up (as the
/// children of `nvmf-conform run --isolate case` do): every one is served, none told the
/// target is busy.
#[tokio::test]
async fn back_to_back_runners_are_all_served() {
    let p = spawn_target();
    for i in 0..20 {
        let t = RemoteTarget::connect(p.addr, BOUND)
            .await
            .unwrap_or_else(|e| panic!("runner {i}: {e}"));
        t.start(&config(), &full(), &Quirks::none())
            .await
            .unwrap_or_else(|e| panic!("runner {i}: {e}"));
        // half of them leave with their target running
        if i % 2 == 0 {
            t.stop().await.unwrap();
        }
    }
}
