//! The runner's end of the control channel: typed calls, each bounded in time.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use harness::api::{NsCounters, Profile};
use tokio::io::{BufReader, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::auth::{Security, Side};
use super::channel::{self, Established, Stream};
use super::proto::{read_line, write_msg, LineError, Reply, Request, PROTOCOL};
use crate::quirks::Quirks;
use harness::backend::emulated::{Counters, Fault};
use harness::backend::vfio::broker::RealFault;

/// Longest wait for any reply (beyond a `wait-event`'s own bound), before
/// [`RemoteTarget::scaled`].
pub const REPLY_BOUND: Duration = Duration::from_secs(30);

/// Why a call to the remote target failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The channel could not be opened or broke.
    #[error("control channel {addr}: {message}")]
    Channel {
        /// The target's control address.
        addr: SocketAddr,
        /// What happened.
        message: String,
    },
    /// No reply within the bound: the target hangs or the link is down.
    #[error("control channel {addr}: no reply to `{op}` within {} s", bound.as_secs())]
    Timeout {
        /// The target's control address.
        addr: SocketAddr,
        /// The request.
        op: &'static str,
        /// The bound.
        bound: Duration,
    },
    /// The target refused the request (its message names the field or object).
    #[error("the remote target refused `{op}`: {message}")]
    Refused {
        /// The request.
        op: &'static str,
        /// Its reason.
        message: String,
    },
    /// The reply is not the one the request calls for.
    #[error("the remote target answered `{op}` with {reply}")]
    Unexpected {
        /// The request.
        op: &'static str,
        /// What came back.
        reply: String,
    },
}

/// What the target said of itself in `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteInfo {
    /// Its program version.
    pub version: String,
    /// Its fabric.
    pub fabric: String,
    /// Its device.
    pub device: String,
    /// What it serves there: `reference`, or `plugin:FILE`.
    pub target: String,
    /// A plugin's caps (none for the reference engine: its caps are the runner's profile).
    pub caps: Option<harness::api::NvmfCaps>,
    /// The real controller it lends as backend controllers (none: emulated ones).
    pub real: Option<super::proto::LentReal>,
    /// The SHA-256 fingerprint of its TLS certificate (none on an `--insecure` channel).
    pub fingerprint: Option<String>,
}

/// A connection to a remote `nvmf-reference-target --control`. The connection lives on a
/// thread of its own (`nvmf-control`), which carries the requests one at a time: calls made
/// from synchronous code (a remote device's context, [`super::link`]) wait for it without
/// stopping it, and a caller that gives up waiting leaves the exchange to finish, so the
/// next reply read is always the next request's.
pub struct RemoteTarget {
    addr: SocketAddr,
    jobs: mpsc::UnboundedSender<Job>,
    info: RemoteInfo,
    /// Longest wait for a reply: [`REPLY_BOUND`], scaled.
    reply_bound: Duration,
    /// Says (by closing) that the connection's thread has ended, its socket closed.
    ended: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

/// How long dropping a [`RemoteTarget`] waits for its connection to close (so that the
/// next runner, often the next case, finds the target free; the target waits
/// [`super::server::KNOCK_GRACE`] for that).
pub const CLOSE_BOUND: Duration = Duration::from_secs(2);

impl Drop for RemoteTarget {
    /// Ends the connection: its thread finishes the exchange in flight (if any), closes the
    /// socket and ends; waited for at most [`CLOSE_BOUND`].
    fn drop(&mut self) {
        let (none, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.jobs, none));
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        let _ = ended.recv_timeout(CLOSE_BOUND);
    }
}

/// What is done with a request's outcome.
pub(super) type Done = Box<dyn FnOnce(Result<Reply, RemoteError>) + Send>;

/// A request for the connection's thread: what to send, how long to wait for the reply,
/// and what to do with it.
struct Job {
    req: Request,
    bound: Duration,
    done: Done,
}

type Io = (BufReader<ReadHalf<Stream>>, WriteHalf<Stream>);

impl std::fmt::Debug for RemoteTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTarget")
            .field("addr", &self.addr)
            .field("info", &self.info)
            .finish()
    }
}

pub(super) fn op_name(r: &Request) -> &'static str {
    match r {
        Request::Hello { .. } => "hello",
        Request::Start { .. } => "start",
        Request::Stop {} => "stop",
        Request::Controllers { .. } => "controllers",
        Request::SoftwareIo { .. } => "software-io",
        Request::NsCounters { .. } => "ns-counters",
        Request::BackendCounters { .. } => "backend-counters",
        Request::BackendBlocks { .. } => "backend-blocks",
        Request::Inject { .. } => "inject",
        Request::Events {} => "events",
        Request::WaitEvent { .. } => "wait-event",
        Request::Trace {} => "trace",
        Request::OpenDevice { .. } => "open-device",
        Request::Ctx { .. } => "ctx",
        Request::CtxWait { .. } => "ctx-wait",
        Request::Offload { .. } => "offload",
        Request::OffloadEvent { .. } => "offload-event",
        Request::Backend { .. } => "backend",
        Request::CloseDevice {} => "close-device",
        Request::RealFault { .. } => "real-fault",
        Request::RealLiftStall {} => "real-lift-stall",
    }
}

/// Sends request `$req` on `$target` and waits (at most `$bound`) for the one reply it
/// calls for, `$reply`, giving `$out`; any other reply is [`RemoteError::Unexpected`].
macro_rules! ask {
    ($target:expr, $req:expr, $bound:expr, $reply:pat => $out:expr) => {{
        let req = $req;
        let op = op_name(&req);
        match $target.call(req, $bound).await? {
            $reply => Ok($out),
            other => Err(unexpected(op, other)),
        }
    }};
}

impl RemoteTarget {
    /// Connects to `addr` as `security` says and says hello, within `bound`; over TLS the
    /// runner proves the lab secret, and the target must prove it back.
    pub async fn connect(
        addr: SocketAddr,
        security: &Security,
        bound: Duration,
    ) -> Result<RemoteTarget, RemoteError> {
        let channel = move |message: String| RemoteError::Channel { addr, message };
        let (ready, connected) = oneshot::channel();
        let (jobs, queue) = mpsc::unbounded_channel();
        let security = security.clone();
        let (end, ended) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("nvmf-control".into())
            .spawn(move || {
                // dropped when the thread ends: after its runtime, its socket
                let _end = end;
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(channel(format!("its thread's runtime: {e}"))));
                        return;
                    }
                };
                rt.block_on(async move {
                    match open(addr, &security, bound).await {
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                        Ok((io, info)) => {
                            if ready.send(Ok(info)).is_ok() {
                                carry(addr, io, queue).await;
                            }
                        }
                    }
                });
            })
            .map_err(|e| channel(format!("its thread: {e}")))?;
        let info = connected
            .await
            .map_err(|_| channel("its thread ended before connecting".into()))??;
        Ok(RemoteTarget {
            addr,
            jobs,
            info,
            reply_bound: REPLY_BOUND,
            ended: std::sync::Mutex::new(ended),
        })
    }

    /// The target's address on the control channel.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same channel with every reply's bound scaled by `factor` (a run's
    /// `--timeout-scale`: a loaded lab host answers later).
    pub fn scaled(mut self, factor: f64) -> RemoteTarget {
        self.reply_bound = REPLY_BOUND.mul_f64(factor.max(1.0));
        self
    }

    /// Longest wait for a reply (beyond a `wait-event`'s own bound).
    pub fn reply_bound(&self) -> Duration {
        self.reply_bound
    }

    /// What the target said of itself.
    pub fn info(&self) -> &RemoteInfo {
        &self.info
    }

    /// Hands `req` to the connection's thread, which waits at most `bound` for its reply
    /// and gives the outcome to `done`.
    pub(super) fn submit(&self, req: Request, bound: Duration, done: Done) {
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(Job { req, bound, done }) {
            let message = format!(
                "`{}` not sent: the channel's thread ended",
                op_name(&job.req)
            );
            (job.done)(Err(RemoteError::Channel {
                addr: self.addr,
                message,
            }));
        }
    }

    /// Sends `req` and waits (at most `bound`) for its reply; a `Reply::Error` is
    /// [`RemoteError::Refused`]. A caller that stops waiting leaves the exchange to finish.
    pub(super) async fn call(&self, req: Request, bound: Duration) -> Result<Reply, RemoteError> {
        self.call_keeping(req, bound, |_| {}).await
    }

    /// [`RemoteTarget::call`]; a reply that comes after the caller stopped waiting goes to
    /// `orphan` (a remote event must not be lost).
    pub(super) async fn call_keeping(
        &self,
        req: Request,
        bound: Duration,
        orphan: impl FnOnce(Reply) + Send + 'static,
    ) -> Result<Reply, RemoteError> {
        let addr = self.addr;
        let (tx, rx) = oneshot::channel();
        self.submit(
            req,
            bound,
            Box::new(move |r| {
                if let Err(Ok(reply)) = tx.send(r) {
                    orphan(reply);
                }
            }),
        );
        rx.await.unwrap_or_else(|_| {
            Err(RemoteError::Channel {
                addr,
                message: "the channel's thread ended".into(),
            })
        })
    }

    /// [`RemoteTarget::call`] from synchronous code: blocks this thread (never the
    /// connection's) until the reply, which the connection's thread bounds by `bound`.
    pub(super) fn call_blocking(
        &self,
        req: Request,
        bound: Duration,
    ) -> Result<Reply, RemoteError> {
        let addr = self.addr;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(
            req,
            bound,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().unwrap_or_else(|_| {
            Err(RemoteError::Channel {
                addr,
                message: "the channel's thread ended".into(),
            })
        })
    }

    /// Starts a target from `config` (TOML text) with `profile` and `quirks`; the address
    /// it listens on.
    pub async fn start(
        &self,
        config: &str,
        profile: &Profile,
        quirks: &Quirks,
    ) -> Result<Ipv4Addr, RemoteError> {
        let req = Request::Start {
            config: config.into(),
            profile: profile.clone(),
            quirks: quirks.clone(),
        };
        ask!(self, req, self.reply_bound, Reply::Started { ip } => ip)
    }

    /// Stops the running target: its trace and its event log.
    pub async fn stop(&self) -> Result<(Vec<String>, Vec<String>), RemoteError> {
        let req = Request::Stop {};
        ask!(self, req, self.reply_bound, Reply::Stopped { trace, events } => (trace, events))
    }

    /// The live controllers of `subnqn`.
    pub async fn controllers(&self, subnqn: &str) -> Result<Vec<u16>, RemoteError> {
        let req = Request::Controllers {
            subnqn: subnqn.into(),
        };
        ask!(self, req, self.reply_bound, Reply::Controllers { cntlids } => cntlids)
    }

    /// I/O commands software served for `subnqn`.
    pub async fn software_io_commands(&self, subnqn: &str) -> Result<u64, RemoteError> {
        let req = Request::SoftwareIo {
            subnqn: subnqn.into(),
        };
        ask!(self, req, self.reply_bound, Reply::Count { n } => n)
    }

    /// The engine's counters of `nsid` of `subnqn`.
    pub async fn ns_counters(&self, subnqn: &str, nsid: u32) -> Result<NsCounters, RemoteError> {
        let req = Request::NsCounters {
            subnqn: subnqn.into(),
            nsid,
        };
        ask!(self, req, self.reply_bound, Reply::NsCounters { counters } => counters)
    }

    /// The counters of the backend controller behind `nsid` of `subnqn`.
    pub async fn backend_counters(&self, subnqn: &str, nsid: u32) -> Result<Counters, RemoteError> {
        let req = Request::BackendCounters {
            subnqn: subnqn.into(),
            nsid,
        };
        ask!(self, req, self.reply_bound, Reply::BackendCounters { counters } => counters)
    }

    /// `count` blocks from `slba` of namespace `nsid` of `subnqn`, as the backend holds them.
    pub async fn backend_blocks(
        &self,
        subnqn: &str,
        nsid: u32,
        slba: u64,
        count: u64,
    ) -> Result<Vec<u8>, RemoteError> {
        let req = Request::BackendBlocks {
            subnqn: subnqn.into(),
            nsid,
            slba,
            count,
        };
        ask!(self, req, self.reply_bound, Reply::Blocks { data } => data)
    }

    /// Injects `fault` into the backend controller behind `nsid` of `subnqn`.
    pub async fn inject(&self, subnqn: &str, nsid: u32, fault: Fault) -> Result<(), RemoteError> {
        let req = Request::Inject {
            subnqn: subnqn.into(),
            nsid,
            fault,
        };
        ask!(self, req, self.reply_bound, Reply::Done => ())
    }

    /// Asks the target host's fault broker for `fault` on the real controller it lends.
    pub async fn real_fault(&self, fault: RealFault) -> Result<(), RemoteError> {
        let req = Request::RealFault { fault };
        ask!(self, req, self.reply_bound, Reply::Done => ())
    }

    /// Lifts a stall or a slow drive left in force on the target host's real controller,
    /// blocking this thread (never the connection's) for the answer.
    pub fn real_lift_stall_blocking(&self) -> Result<(), RemoteError> {
        match self.call_blocking(Request::RealLiftStall {}, self.reply_bound)? {
            Reply::Done => Ok(()),
            other => Err(unexpected("real-lift-stall", other)),
        }
    }

    /// The target's event log so far.
    pub async fn events(&self) -> Result<Vec<String>, RemoteError> {
        ask!(self, Request::Events {}, self.reply_bound, Reply::Events { lines } => lines)
    }

    /// The first event log line containing `needle` within `bound`.
    pub async fn wait_event(
        &self,
        needle: &str,
        bound: Duration,
    ) -> Result<Option<String>, RemoteError> {
        let req = Request::WaitEvent {
            needle: needle.into(),
            bound_ms: u64::try_from(bound.as_millis()).unwrap_or(u64::MAX),
        };
        ask!(self, req, bound + self.reply_bound, Reply::Event { line } => line)
    }

    /// The target's trace so far.
    pub async fn trace(&self) -> Result<Vec<String>, RemoteError> {
        ask!(self, Request::Trace {}, self.reply_bound, Reply::Trace { lines } => lines)
    }
}

/// Opens the channel to `addr` and says hello (within `bound`): the stream and what the
/// target said of itself.
async fn open(
    addr: SocketAddr,
    security: &Security,
    bound: Duration,
) -> Result<(Io, RemoteInfo), RemoteError> {
    let channel = |message: String| RemoteError::Channel { addr, message };
    let Established {
        stream,
        binding,
        fingerprint,
    } = channel::open(addr, security, bound)
        .await
        .map_err(channel)?;
    let (r, w) = tokio::io::split(stream);
    let mut io = (BufReader::new(r), w);
    let secret = match security {
        Security::Secret(s) => binding.as_ref().map(|b| (s, b)),
        Security::Insecure => None,
    };
    let req = Request::Hello {
        protocol: PROTOCOL,
        proof: secret.map(|(s, b)| s.prove(Side::Runner, b)),
    };
    let (info, proof) = match exchange(addr, &mut io, &req, bound).await? {
        Reply::Hello {
            version,
            fabric,
            device,
            target,
            caps,
            real,
            proof,
            ..
        } => (
            RemoteInfo {
                version,
                fabric,
                device,
                target,
                caps,
                real,
                fingerprint,
            },
            proof,
        ),
        other => return Err(unexpected("hello", other)),
    };
    if let Some((s, b)) = secret {
        let proven = proof.is_some_and(|p| s.verify(Side::Target, b, &p));
        if !proven {
            return Err(channel(
                "the target did not prove it holds the lab secret: it has another secret \
                 file, or something between the hosts answered in its place"
                    .into(),
            ));
        }
    }
    Ok((io, info))
}

/// The connection's thread: carries each job's request and hands its outcome on, until
/// the [`RemoteTarget`] is dropped. After a timeout or a broken stream nothing more is
/// sent (a late reply would be read as the next request's): every later job fails, saying
/// why.
async fn carry(addr: SocketAddr, mut io: Io, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut broken: Option<String> = None;
    while let Some(job) = queue.recv().await {
        let op = op_name(&job.req);
        let outcome = match &broken {
            Some(why) => Err(RemoteError::Channel {
                addr,
                message: format!("`{op}` not sent: {why}"),
            }),
            None => exchange(addr, &mut io, &job.req, job.bound).await,
        };
        match &outcome {
            Err(e @ RemoteError::Timeout { .. }) => broken = Some(format!("earlier, {e}")),
            Err(RemoteError::Channel { message, .. }) if broken.is_none() => {
                broken = Some(format!("the channel broke: {message}"))
            }
            _ => {}
        }
        (job.done)(outcome);
    }
}

/// Sends `req` and waits (at most `bound`) for its reply; a `Reply::Error` is
/// [`RemoteError::Refused`].
async fn exchange(
    addr: SocketAddr,
    (r, w): &mut Io,
    req: &Request,
    bound: Duration,
) -> Result<Reply, RemoteError> {
    let op = op_name(req);
    let channel = |message: String| RemoteError::Channel { addr, message };
    let exchange = async {
        write_msg(w, req)
            .await
            .map_err(|e| channel(format!("sending `{op}`: {e}")))?;
        let line = read_line(r).await.map_err(|e| match e {
            LineError::Closed => channel(format!("closed before answering `{op}`")),
            e => channel(format!("reading the reply to `{op}`: {e}")),
        })?;
        serde_json::from_str::<Reply>(&line)
            .map_err(|e| channel(format!("malformed reply to `{op}`: {e}")))
    };
    match tokio::time::timeout(bound, exchange).await {
        Err(_) => Err(RemoteError::Timeout { addr, op, bound }),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Reply::Error { message })) => Err(RemoteError::Refused { op, message }),
        Ok(Ok(reply)) => Ok(reply),
    }
}

pub(super) fn unexpected(op: &'static str, reply: Reply) -> RemoteError {
    RemoteError::Unexpected {
        op,
        reply: format!("{reply:?}"),
    }
}
