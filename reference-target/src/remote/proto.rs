//! The messages of the control channel: one JSON object per line, a [`Request`] from the
//! runner, then exactly one [`Reply`] from the target.

use std::net::Ipv4Addr;
use std::time::Duration;

use harness::api::{NsCounters, NvmfCaps, Profile};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::quirks::Quirks;
use harness::backend::emulated::{Counters, Fault};
use harness::backend::vfio::broker::RealFault;
use harness::case::RealBackendFacts;
use harness::remote::{BackendCall, BackendReply, CtxCall, CtxReply, CtxWait};
use harness::remote::{OffloadCall, OffloadReply};

/// The protocol version; both ends say theirs in `hello` and refuse another (2: TLS and
/// proofs of the lab secret, [`super::auth`]; 3: the device itself served, `open-device`;
/// 4: `hello` says what device the target serves, a vendor plugin's among them; 5: a
/// backend's `create` carries the rings' region, registered by the runner; 6: a real
/// controller lent by the target host, its faults through that host's broker).
pub const PROTOCOL: u32 = 6;
/// Longest line either end accepts, bytes (a longer one ends the connection).
pub const MAX_LINE: usize = 4 << 20;
/// Longest `wait-event` bound the target accepts.
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// Most bytes one `backend-blocks` request may read.
pub const MAX_BLOCK_BYTES: u64 = 1 << 20;
/// Longest a `ctx-wait` or `offload-event` request waits on the target (the runner waits
/// longer by asking again).
pub const MAX_DEVICE_WAIT: Duration = Duration::from_secs(1);

/// What the runner asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// First message: the runner's protocol version.
    Hello {
        /// [`PROTOCOL`] of the runner.
        protocol: u32,
        /// Over TLS: the runner's proof that it holds the lab secret, bound to this session
        /// ([`super::auth::Secret::prove`], hex).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<String>,
    },
    /// Starts a target on a freshly opened device: a configuration's TOML text (ports
    /// written with `sim0`'s address listen on the device's), with this profile and quirks.
    Start {
        /// The configuration text (`docs/target.md`).
        config: String,
        /// The capabilities the engine presents.
        profile: Profile,
        /// Deliberate violations to commit.
        quirks: Quirks,
    },
    /// Stops the running target; the reply carries its trace and event log.
    Stop {},
    /// The live controllers of a subsystem.
    Controllers {
        /// Subsystem NQN.
        subnqn: String,
    },
    /// I/O commands software served for a subsystem.
    SoftwareIo {
        /// Subsystem NQN.
        subnqn: String,
    },
    /// The engine's counters of a namespace (zero when not offloaded).
    NsCounters {
        /// Subsystem NQN.
        subnqn: String,
        /// Namespace ID.
        nsid: u32,
    },
    /// The counters of the emulated backend controller behind a namespace.
    BackendCounters {
        /// Subsystem NQN.
        subnqn: String,
        /// Namespace ID.
        nsid: u32,
    },
    /// Blocks of a namespace as the backend holds them.
    BackendBlocks {
        /// Subsystem NQN.
        subnqn: String,
        /// Namespace ID.
        nsid: u32,
        /// First block.
        slba: u64,
        /// Number of blocks.
        count: u64,
    },
    /// Injects a fault into the backend controller behind a namespace.
    Inject {
        /// Subsystem NQN.
        subnqn: String,
        /// Namespace ID.
        nsid: u32,
        /// The fault.
        fault: Fault,
    },
    /// The target's event log so far.
    Events {},
    /// Waits (at most `bound_ms`, capped at [`MAX_WAIT`]) for an event log line
    /// containing `needle`.
    WaitEvent {
        /// Text the line must contain.
        needle: String,
        /// Bound, milliseconds.
        bound_ms: u64,
    },
    /// The target's trace so far (lines of actors `target`, `device`).
    Trace {},
    /// Opens the device and builds the reference engine on it with this profile and quirks,
    /// for the runner to use the device itself: its context (`ctx`, `ctx-wait`), its
    /// offload API (`offload`, `offload-event`) and emulated backend controllers
    /// (`backend`), until `close-device`.
    OpenDevice {
        /// The capabilities the engine presents.
        profile: Profile,
        /// Deliberate violations the engine commits.
        quirks: Quirks,
    },
    /// A device context call that answers at once.
    Ctx {
        /// The call.
        call: CtxCall,
    },
    /// Waits on the device context, at most `bound_ms` (capped at [`MAX_DEVICE_WAIT`]).
    CtxWait {
        /// What to wait for.
        wait: CtxWait,
        /// Bound, milliseconds.
        bound_ms: u64,
    },
    /// An offload API call that answers at once.
    Offload {
        /// The call.
        call: OffloadCall,
    },
    /// Waits for the next offload event, at most `bound_ms` (capped at [`MAX_DEVICE_WAIT`]).
    OffloadEvent {
        /// Bound, milliseconds.
        bound_ms: u64,
    },
    /// A call on the emulated backend controllers of the open device.
    Backend {
        /// The call.
        call: BackendCall,
    },
    /// Releases the open device (its backend controllers first); the reply carries the
    /// trace its backend controllers wrote.
    CloseDevice {},
    /// Asks the target host's fault broker for `fault` on the real controller it lends (for
    /// a control-plane case, whose target opens that controller itself).
    RealFault {
        /// The fault.
        fault: RealFault,
    },
    /// Lifts a stall or a slow drive left in force on the real controller.
    RealLiftStall {},
}

/// The real controller a target host lends (`nvmf-reference-target --control … --backend
/// vfio:PCI`), as `hello` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LentReal {
    /// Its PCI address on the target host.
    pub address: String,
    /// Its namespace 1's format and size, and whether the target host's broker answers.
    pub facts: RealBackendFacts,
}

/// What the target answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Reply {
    /// Answer to `hello`.
    Hello {
        /// The target's [`PROTOCOL`].
        protocol: u32,
        /// The target program's version.
        version: String,
        /// Its fabric (`sim`, `verbs`).
        fabric: String,
        /// Its device (e.g. `rxe0`).
        device: String,
        /// What it serves on that device: `reference` (the reference engine, with the
        /// profile each runner asks for) or `plugin:FILE` (a vendor plugin's device).
        target: String,
        /// A plugin's caps (read when the target started): the runner's cases use these;
        /// none for the reference engine, whose caps are the runner's profile.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caps: Option<NvmfCaps>,
        /// The real controller it lends as backend controllers (none: emulated ones).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        real: Option<LentReal>,
        /// Over TLS: the target's proof that it holds the lab secret, bound to this session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<String>,
    },
    /// The target runs and listens on `ip`.
    Started {
        /// The device's IPv4 address.
        ip: Ipv4Addr,
    },
    /// The target stopped.
    Stopped {
        /// Its trace, one line each.
        trace: Vec<String>,
        /// Its event log.
        events: Vec<String>,
    },
    /// Controller IDs.
    Controllers {
        /// CNTLIDs.
        cntlids: Vec<u16>,
    },
    /// A count.
    Count {
        /// The value.
        n: u64,
    },
    /// Namespace counters.
    NsCounters {
        /// The counters.
        counters: NsCounters,
    },
    /// Backend controller counters.
    BackendCounters {
        /// The counters.
        counters: Counters,
    },
    /// Block contents.
    Blocks {
        /// The bytes.
        data: Vec<u8>,
    },
    /// Done.
    Done,
    /// Event log lines.
    Events {
        /// The lines.
        lines: Vec<String>,
    },
    /// The awaited event, or none within the bound.
    Event {
        /// The line.
        line: Option<String>,
    },
    /// Trace lines.
    Trace {
        /// The lines.
        lines: Vec<String>,
    },
    /// The device is open; the address it has.
    DeviceOpened {
        /// The device's IPv4 address.
        ip: Ipv4Addr,
    },
    /// A device context call's answer; `null` for a wait that ended at its bound.
    Ctx {
        /// The answer.
        answer: Option<CtxReply>,
    },
    /// An offload call's answer (an `offload-event` that ended at its bound:
    /// `{"reply":"event","value":null}`).
    Offload {
        /// The answer.
        answer: OffloadReply,
    },
    /// A backend call's answer.
    Backend {
        /// The answer.
        answer: BackendReply,
    },
    /// The device was released.
    DeviceClosed {
        /// Its backend controllers' trace lines.
        trace: Vec<String>,
    },
    /// The request could not be carried out; the connection stays usable.
    Error {
        /// Why, naming the field or object.
        message: String,
    },
}

/// Parses one request line; `Err` is the target's answer to it, naming what is wrong.
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line).map_err(|e| format!("malformed request: {e}"))
}

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The peer closed the connection.
    #[error("the connection was closed")]
    Closed,
    /// The line is longer than [`MAX_LINE`].
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads one line (without its newline), refusing more than [`MAX_LINE`] bytes.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<String, LineError> {
    read_line_into(r, &mut Vec::new()).await
}

/// [`read_line`], cancel-safe: the bytes of an unfinished line wait in `buf`, and the next
/// call goes on from them (for `tokio::select!`).
pub async fn read_line_into<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> Result<String, LineError> {
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Err(LineError::Closed);
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        buf.extend_from_slice(&chunk[..take]);
        r.consume(take);
        if buf.len() > MAX_LINE + 1 {
            return Err(LineError::TooLong);
        }
        if done {
            let mut line = std::mem::take(buf);
            line.pop();
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

/// Writes `msg` as one JSON line.
pub async fn write_msg<W: AsyncWrite + Unpin, M: Serialize>(
    w: &mut W,
    msg: &M,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::backend::emulated::CmdMatch;

    #[test]
    fn requests_round_trip() {
        let reqs = [
            Request::Hello {
                protocol: PROTOCOL,
                proof: None,
            },
            Request::Hello {
                protocol: PROTOCOL,
                proof: Some("00ff".into()),
            },
            Request::Start {
                config: "[[port]]".into(),
                profile: Profile::builtin("tight").unwrap(),
                quirks: Quirks::none(),
            },
            Request::Stop {},
            Request::Inject {
                subnqn: "nqn.x".into(),
                nsid: 1,
                fault: Fault::Timeout {
                    on: CmdMatch::Nth(2),
                    delay: Some(Duration::from_millis(1500)),
                },
            },
            Request::WaitEvent {
                needle: "kato".into(),
                bound_ms: 5000,
            },
            Request::OpenDevice {
                profile: Profile::builtin("minimal").unwrap(),
                quirks: Quirks::none(),
            },
            Request::Ctx {
                call: CtxCall::RegMr {
                    pd: harness::fabric::PdId(3),
                    len: 4096,
                    access: harness::fabric::Access::LOCAL_WRITE,
                },
            },
            Request::CtxWait {
                wait: CtxWait::CmEvent,
                bound_ms: 50,
            },
            Request::Offload {
                call: OffloadCall::PollEvent,
            },
            Request::OffloadEvent { bound_ms: 50 },
            Request::Backend {
                call: BackendCall::Counters { backend: 7 },
            },
            Request::CloseDevice {},
        ];
        for r in reqs {
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r, "{text}");
        }
    }

    #[test]
    fn device_replies_round_trip() {
        let replies = [
            Reply::DeviceOpened {
                ip: Ipv4Addr::new(192, 0, 2, 1),
            },
            Reply::Ctx {
                answer: Some(CtxReply::Pd(harness::fabric::PdId(1))),
            },
            Reply::Ctx { answer: None },
            Reply::Offload {
                answer: OffloadReply::Event(None),
            },
            Reply::Backend {
                answer: BackendReply::Failed("backend: no controller 9".into()),
            },
            Reply::DeviceClosed {
                trace: vec!["backend fetched".into()],
            },
        ];
        for r in replies {
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), r, "{text}");
        }
    }

    #[test]
    fn unknown_fields_and_ops_are_refused() {
        for bad in [
            r#"{"op":"stop","extra":1}"#,
            r#"{"op":"reboot"}"#,
            r#"{"op":"controllers"}"#,
            r#"{"op":"inject","subnqn":"a","nsid":1,"fault":"melt"}"#,
            r#"{"op":"ctx","call":{"call":"format-disk"}}"#,
            r#"{"op":"ctx-wait","wait":{"wait":"cq"},"bound_ms":5}"#,
            r#"{"op":"open-device","profile":"full"}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_line_survives_a_cancelled_read() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut r = tokio::io::BufReader::new(rx);
        let mut pending = Vec::new();
        tx.write_all(b"{\"op\":").await.unwrap();
        let cut = tokio::time::timeout(
            Duration::from_millis(20),
            read_line_into(&mut r, &mut pending),
        )
        .await;
        assert!(cut.is_err(), "no line yet");
        tx.write_all(b"\"stop\"}\n").await.unwrap();
        let line = read_line_into(&mut r, &mut pending).await.unwrap();
        assert_eq!(line, "{\"op\":\"stop\"}");
        assert!(pending.is_empty());
    }

    #[tokio::test]
    async fn lines_are_bounded() {
        let mut ok: &[u8] = b"{\"op\":\"stop\"}\nrest";
        assert_eq!(read_line(&mut ok).await.unwrap(), "{\"op\":\"stop\"}");
        let long = vec![b'x'; MAX_LINE + 10];
        let mut r: &[u8] = &long;
        assert!(matches!(read_line(&mut r).await, Err(LineError::TooLong)));
        let mut empty: &[u8] = b"";
        assert!(matches!(
            read_line(&mut empty).await,
            Err(LineError::Closed)
        ));
    }
}
