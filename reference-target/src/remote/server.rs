//! The target's end of the control channel: serves one runner at a time (another is told
//! who holds it); each `start`
//! opens the device afresh and builds engine, traced device and control plane, as the
//! catalog does in one process; `stop`, or the runner's disconnect, tears them down.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use harness::api::{OffloadProvider, Profile};
use harness::fabric::{DeviceContext, Fabric};
use harness::trace::{Names, Recorder, TracedContext, TracedProvider};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};

use super::auth::{Binding, Security, Side};
use super::channel::{Acceptor, Established, HANDSHAKE_BOUND};
use super::device::{DeviceSession, LendsReal};
use super::proto::{
    parse_request, read_line, read_line_into, write_msg, LentReal, LineError, Reply, Request,
    MAX_BLOCK_BYTES, MAX_WAIT, PROTOCOL,
};
use super::served::{Faces, Served};
use crate::control::config::{default_staging_len, device_ip};
use crate::control::{Config, Target};
use crate::quirks::Quirks;
use harness::backend::emulated::BackendController;
use harness::backend::emulated::PciBus;

/// A runner silent this long is dropped (and its target stopped).
pub const IDLE_BOUND: Duration = Duration::from_secs(900);

/// How long a runner that connects while another is served waits for that one to leave
/// before it is told the target is busy.
pub const KNOCK_GRACE: Duration = Duration::from_secs(5);

/// How long the target waits before it closes a connection whose proof failed (a guess
/// costs this much).
pub const DENIED_PAUSE: Duration = Duration::from_secs(1);

/// A freshly opened device, and the fabric that must outlive it.
pub struct Opened {
    /// The device context the target serves on.
    pub ctx: Arc<dyn DeviceContext>,
    /// Kept alive as long as the device (a simulated fabric).
    pub fabric: Option<Arc<dyn Fabric>>,
}

/// Opens the device for each `start`; the error is the reason, shown to the runner.
pub type OpenDevice = Arc<dyn Fn() -> Result<Opened, String> + Send + Sync>;

/// Why a real controller's request is refused by a target host that lends none.
const NO_REAL: &str = "this target host lends no real controller (start nvmf-reference-target \
     --control with --backend vfio:PCI --allow-destructive PCI)";

/// The control channel's listening end.
pub struct ControlServer {
    listener: TcpListener,
    acceptor: Arc<Acceptor>,
    open: OpenDevice,
    fabric: String,
    device: String,
    served: Served,
    /// The real controller it lends as backend controllers, if any.
    real: Option<LendsReal>,
}

/// A target started by a runner, and what its trace needs.
struct Running {
    // fields drop in this order: the target stops first, then the bus lets go
    target: Target,
    rec: Recorder,
    raw_provider: Arc<dyn OffloadProvider>,
    _bus: Released,
    _device: Opened,
}

/// Once the target has stopped, the bus lets go of the device it holds for memory
/// doorbells (a plugin's device holds the bus too, so neither would ever be freed).
struct Released(Arc<PciBus>);

impl Drop for Released {
    fn drop(&mut self) {
        drop(self.0.release());
    }
}

impl ControlServer {
    /// Listens on `addr` (port 0: any free port, see [`ControlServer::local_addr`]),
    /// admitting runners as `security` says; `fabric` and `device` name what `open` opens,
    /// for `hello`.
    pub async fn bind(
        addr: SocketAddr,
        security: Security,
        open: OpenDevice,
        fabric: &str,
        device: &str,
    ) -> std::io::Result<ControlServer> {
        let acceptor = Acceptor::new(security).map_err(std::io::Error::other)?;
        Ok(ControlServer {
            listener: TcpListener::bind(addr).await?,
            acceptor,
            open,
            fabric: fabric.into(),
            device: device.into(),
            served: Served::Reference,
            real: None,
        })
    }

    /// Lends `real` to its runners: every backend controller of an open device is a queue
    /// pair of it, a control-plane case's target may name it in its configuration, and
    /// its faults come from this host's broker.
    pub fn lending(mut self, real: LendsReal) -> ControlServer {
        self.real = Some(real);
        self
    }

    /// Serves `served` on the device instead of the reference engine (a vendor plugin's).
    pub fn serving(mut self, served: Served) -> ControlServer {
        self.served = served;
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The SHA-256 fingerprint of the TLS certificate it serves (none when insecure).
    pub fn fingerprint(&self) -> Option<&str> {
        self.acceptor.fingerprint()
    }

    /// Serves runners, one at a time, until the task is dropped.
    pub async fn serve(self) {
        let mut next = None;
        loop {
            let (stream, peer) = match next.take() {
                Some(x) => x,
                None => match self.listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("control channel: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            tracing::info!("control channel: runner {peer} connected");
            let (why, waiting) = self.session(stream, peer).await;
            tracing::info!("control channel: runner {peer} gone: {why}");
            next = waiting;
        }
    }

    /// One runner's requests, until it leaves; returns why it ended, and a runner that
    /// came in its last [`KNOCK_GRACE`] (served next). Another runner that connects while
    /// this one stays is told who holds the target, and let go.
    async fn session(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> (String, Option<(TcpStream, SocketAddr)>) {
        let Established {
            stream, binding, ..
        } = match self.acceptor.accept(stream).await {
            Ok(e) => e,
            Err(why) => return (why, None),
        };
        let (r, mut w) = tokio::io::split(stream);
        let mut r = BufReader::new(r);
        let mut running: Option<Running> = None;
        let mut device: Option<DeviceSession> = None;
        let mut greeted = false;
        // a line half read when another runner knocks is finished on the next turn
        let mut pending = Vec::new();
        // A runner that connects now may be the next case of the same run, come just as
        // this one's process ended: it waits [`KNOCK_GRACE`] for this session to end.
        let mut knocking: Option<(TcpStream, SocketAddr, tokio::time::Instant)> = None;
        let why = loop {
            let deadline = knocking.as_ref().map(|(_, _, d)| *d);
            // a runner that has not said hello yet gets as long as a handshake
            let silence = if greeted { IDLE_BOUND } else { HANDSHAKE_BOUND };
            // biased: the served runner's line (or its hang-up) first, so that a knock whose
            // grace ran out while this task waited for the CPU is not refused when the runner
            // it waited for has already gone
            let next = tokio::select! {
                biased;
                l = tokio::time::timeout(silence, read_line_into(&mut r, &mut pending)) => l,
                other = self.listener.accept(), if knocking.is_none() => {
                    if let Ok((s, addr)) = other {
                        knocking = Some((s, addr, tokio::time::Instant::now() + KNOCK_GRACE));
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    if let Some((s, addr, _)) = knocking.take() {
                        tracing::info!("control channel: runner {addr} refused: {peer} is connected");
                        tokio::spawn(refuse(self.acceptor.clone(), s, peer));
                    }
                    continue;
                }
            };
            let line = match next {
                Err(_) => break format!("silent for {} s", silence.as_secs()),
                Ok(Err(LineError::Closed)) => break "disconnected".into(),
                // a runner that exits without closing TLS (close_notify): gone all the same
                Ok(Err(LineError::Io(e))) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    break "disconnected".into()
                }
                Ok(Err(e)) => {
                    let _ = write_msg(&mut w, &error(format!("{e}: closing"))).await;
                    break e.to_string();
                }
                Ok(Ok(l)) => l,
            };
            let reply = match parse_request(&line) {
                Err(m) => error(m),
                Ok(Request::Hello { protocol, proof }) => {
                    let security = self.acceptor.security();
                    match greeting(security, protocol, proof.as_deref(), binding.as_ref()) {
                        Greeting::Welcome(proof) => {
                            greeted = true;
                            Reply::Hello {
                                protocol: PROTOCOL,
                                version: env!("CARGO_PKG_VERSION").into(),
                                fabric: self.fabric.clone(),
                                device: self.device.clone(),
                                target: self.served.name(),
                                caps: self.served.caps(),
                                real: self.real.as_ref().map(|r| LentReal {
                                    address: r.address.to_string(),
                                    facts: r.facts,
                                }),
                                proof,
                            }
                        }
                        Greeting::Again(message) => error(message),
                        Greeting::Denied(message) => {
                            let _ = write_msg(&mut w, &error(message.clone())).await;
                            tokio::time::sleep(DENIED_PAUSE).await;
                            break format!("refused: {message}");
                        }
                    }
                }
                Ok(_) if !greeted => error("say hello first (protocol version)".into()),
                Ok(req) => self.handle(req, &mut running, &mut device).await,
            };
            if let Err(e) = write_msg(&mut w, &reply).await {
                break format!("writing a reply: {e}");
            }
        };
        drop(running);
        drop(device);
        (why, knocking.map(|(s, addr, _)| (s, addr)))
    }

    async fn handle(
        &self,
        req: Request,
        running: &mut Option<Running>,
        device: &mut Option<DeviceSession>,
    ) -> Reply {
        match req {
            Request::OpenDevice { profile, quirks } => {
                if let Err(m) = idle(running, device).and_then(|()| consistent(&profile)) {
                    return error(m);
                }
                let opened = match (self.open)() {
                    Ok(o) => o,
                    Err(e) => return error(format!("the device did not open: {e}")),
                };
                let real = self.real.as_ref();
                match DeviceSession::open(opened, &self.served, (&profile, &quirks), real) {
                    Ok(d) => Reply::DeviceOpened {
                        ip: device.insert(d).ip(),
                    },
                    Err(m) => error(m),
                }
            }
            Request::RealFault { fault } => match &self.real {
                None => error(NO_REAL.into()),
                Some(r) => match r.faults.inject(fault).await {
                    Ok(()) => Reply::Done,
                    Err(f) => error(f.message),
                },
            },
            Request::RealLiftStall {} => {
                if let Some(r) = &self.real {
                    let faults = r.faults.clone();
                    let _ = tokio::task::spawn_blocking(move || faults.lift_stall()).await;
                }
                Reply::Done
            }
            Request::CloseDevice {} => match device.take() {
                None => error("no device is open".into()),
                Some(d) => Reply::DeviceClosed { trace: d.close() },
            },
            req @ (Request::Ctx { .. }
            | Request::CtxWait { .. }
            | Request::Offload { .. }
            | Request::OffloadEvent { .. }
            | Request::Backend { .. }) => match device {
                None => error("no device is open: open-device first".into()),
                Some(d) => d.handle(req).await,
            },
            Request::Start {
                config,
                profile,
                quirks,
            } => {
                if let Err(m) = idle(running, device) {
                    return error(m);
                }
                match self.start(&config, profile, quirks) {
                    Ok((r, ip)) => {
                        *running = Some(r);
                        Reply::Started { ip }
                    }
                    Err(m) => error(m),
                }
            }
            Request::Stop {} => match running.take() {
                None => error("no target is running".into()),
                Some(r) => {
                    let events = r.target.events();
                    let rec = r.rec.clone();
                    drop(r);
                    Reply::Stopped {
                        trace: lines(&rec),
                        events,
                    }
                }
            },
            req => match running {
                None => error("no target is running: start one first".into()),
                Some(r) => query(r, req).await,
            },
        }
    }

    /// Opens the device and starts the target as `config` says.
    fn start(
        &self,
        config: &str,
        profile: Profile,
        quirks: Quirks,
    ) -> Result<(Running, Ipv4Addr), String> {
        consistent(&profile)?;
        let mut cfg = Config::parse("<runner's config>", config).map_err(|e| e.to_string())?;
        for sub in &cfg.subsystems {
            if let crate::control::BackendConfig::Vfio { pci } = sub.backend {
                match &self.real {
                    Some(r) if r.address == pci => {}
                    Some(r) => {
                        return Err(format!(
                            "subsystem `{}`: backend vfio:{pci}: this target host lends only \
                             vfio:{} (its --backend)",
                            sub.nqn, r.address
                        ))
                    }
                    None => {
                        return Err(format!(
                            "subsystem `{}`: backend vfio:{pci}: {NO_REAL}",
                            sub.nqn
                        ))
                    }
                }
            }
        }
        let device = (self.open)().map_err(|e| format!("the device did not open: {e}"))?;
        let ip = device_ip(device.ctx.as_ref());
        let bus = PciBus::new();
        let Faces {
            engine,
            ctx,
            provider: raw_provider,
        } = self
            .served
            .open(device.ctx.clone(), &bus, &profile, &quirks)?;
        cfg.place(ip, default_staging_len(&raw_provider.caps()));
        cfg.quirks = quirks;
        let rec = Recorder::new();
        let names = Names::new();
        let ctx = TracedContext::new(ctx, "target", rec.clone(), names.clone());
        let provider =
            TracedProvider::new(raw_provider.clone(), "device", "target", rec.clone(), names);
        let target = match engine {
            Some(engine) => Target::start_on(engine, bus.clone(), ctx, provider, cfg),
            None => Target::start_on_device(bus.clone(), ctx, provider, cfg),
        }
        .map_err(|e| format!("the target did not start: {e}"))?;
        Ok((
            Running {
                target,
                rec,
                raw_provider,
                _bus: Released(bus),
                _device: device,
            },
            ip,
        ))
    }
}

/// How a `hello` is answered.
enum Greeting {
    /// The runner is in; over TLS, the target's own proof goes back with the answer.
    Welcome(Option<String>),
    /// Refused, and the channel stays open (another protocol version).
    Again(String),
    /// The runner did not prove the secret: told this, then closed.
    Denied(String),
}

/// Answers a `hello` of `protocol` with `proof` on a channel of `security` whose session has
/// `binding`: the protocol version first, then (over TLS) the runner's proof of the lab secret.
fn greeting(
    security: &Security,
    protocol: u32,
    proof: Option<&str>,
    binding: Option<&Binding>,
) -> Greeting {
    if protocol != PROTOCOL {
        return Greeting::Again(format!(
            "protocol {protocol} is not this target's ({PROTOCOL}): use matching versions of \
             nvmf-conform and nvmf-reference-target"
        ));
    }
    let (Security::Secret(secret), Some(binding)) = (security, binding) else {
        return Greeting::Welcome(None);
    };
    let Some(proof) = proof else {
        return Greeting::Denied("authentication: hello carries no proof of the lab secret".into());
    };
    if !secret.verify(Side::Runner, binding, proof) {
        return Greeting::Denied(
            "authentication failed: the runner's proof is not of this target's secret (start \
             nvmf-conform with --control-secret naming the target's secret file)"
                .into(),
        );
    }
    Greeting::Welcome(Some(secret.prove(Side::Target, binding)))
}

/// Answers the `hello` of a runner that came while `holder` is connected, then closes: a
/// runner that proves the secret is told the target is busy; any other, why it is refused.
async fn refuse(acceptor: Arc<Acceptor>, stream: TcpStream, holder: SocketAddr) {
    let Ok(Established {
        stream, binding, ..
    }) = acceptor.accept(stream).await
    else {
        return;
    };
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let line = tokio::time::timeout(Duration::from_secs(10), read_line(&mut r)).await;
    let busy =
        format!("busy: runner {holder} is connected, and the target serves one runner at a time");
    let why = match line.ok().and_then(Result::ok).map(|l| parse_request(&l)) {
        Some(Ok(Request::Hello { protocol, proof })) => {
            match greeting(
                acceptor.security(),
                protocol,
                proof.as_deref(),
                binding.as_ref(),
            ) {
                Greeting::Welcome(_) => busy,
                Greeting::Again(message) | Greeting::Denied(message) => message,
            }
        }
        Some(Err(m)) => m,
        _ => busy,
    };
    let _ = write_msg(&mut w, &error(why)).await;
}

/// Answers a request about the running target.
async fn query(r: &Running, req: Request) -> Reply {
    let t = &r.target;
    match req {
        Request::Controllers { subnqn } => Reply::Controllers {
            cntlids: t.controllers(&subnqn),
        },
        Request::SoftwareIo { subnqn } => Reply::Count {
            n: t.software_io_commands(&subnqn),
        },
        Request::NsCounters { subnqn, nsid } => Reply::NsCounters {
            counters: t
                .ctrl_of(&subnqn, nsid)
                .and_then(|c| r.raw_provider.ns_counters(c, nsid).ok())
                .unwrap_or_default(),
        },
        Request::BackendCounters { subnqn, nsid } => match backend(t, &subnqn, nsid) {
            Ok(b) => Reply::BackendCounters {
                counters: b.counters(),
            },
            Err(m) => error(m),
        },
        Request::BackendBlocks {
            subnqn,
            nsid,
            slba,
            count,
        } => {
            let b = match backend(t, &subnqn, nsid) {
                Ok(b) => b,
                Err(m) => return error(m),
            };
            let read = b.with_namespace(nsid, |n| {
                let bytes = count.saturating_mul(u64::from(n.format().data));
                if bytes > MAX_BLOCK_BYTES {
                    return Err(format!(
                        "count: {count} blocks are {bytes} bytes, more than {MAX_BLOCK_BYTES} \
                         per request"
                    ));
                }
                n.read_blocks(slba, count)
                    .map_err(|e| format!("backend read: {e}"))
            });
            match read {
                None => error(format!("nsid: the backend has no namespace {nsid}")),
                Some(Err(m)) => error(m),
                Some(Ok(data)) => Reply::Blocks { data },
            }
        }
        Request::Inject {
            subnqn,
            nsid,
            fault,
        } => match t.inject(&subnqn, nsid, fault) {
            Ok(()) => Reply::Done,
            Err(e) => error(e.to_string()),
        },
        Request::Events {} => Reply::Events { lines: t.events() },
        Request::WaitEvent { needle, bound_ms } => {
            let bound = Duration::from_millis(bound_ms).min(MAX_WAIT);
            Reply::Event {
                line: t.wait_event(&needle, bound).await,
            }
        }
        Request::Trace {} => Reply::Trace {
            lines: lines(&r.rec),
        },
        _ => error("unexpected request".into()),
    }
}

fn backend(t: &Target, subnqn: &str, nsid: u32) -> Result<Arc<BackendController>, String> {
    t.backend_of(subnqn, nsid)
        .ok_or_else(|| format!("subnqn/nsid: no backend for {subnqn} nsid {nsid}"))
}

/// `Ok` when the device is free: no target running, no device open.
fn idle(running: &Option<Running>, device: &Option<DeviceSession>) -> Result<(), String> {
    if running.is_some() {
        return Err("a target is running: stop it first".into());
    }
    if device.is_some() {
        return Err("the device is open: close it first".into());
    }
    Ok(())
}

/// `Ok` when `profile`'s caps are consistent (checked before a device is opened).
fn consistent(profile: &Profile) -> Result<(), String> {
    profile.caps.validate().map_err(|problems| {
        let p: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("profile: inconsistent caps: {}", p.join("; "))
    })
}

/// A recorder's lines as text.
pub(super) fn lines(rec: &Recorder) -> Vec<String> {
    rec.lines().iter().map(ToString::to_string).collect()
}

fn error(message: String) -> Reply {
    Reply::Error { message }
}
