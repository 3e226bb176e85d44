//! The byte stream under the control channel's JSON lines: TLS 1.3 with the lab secret
//! ([`super::auth`]), or plain TCP with `--insecure`; the target's accepting end and the
//! runner's opening end, each bounded in time, each saying precisely why a peer of the
//! other kind is turned away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::auth::{self, AuthError, Binding, Security};
use super::proto::{read_line, write_msg, Reply};

/// Longest a TLS handshake (or a first byte) may take.
pub const HANDSHAKE_BOUND: Duration = Duration::from_secs(10);

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// What the target answers a runner that speaks plain text to its TLS channel.
pub const NEEDS_TLS: &str = "this control channel is TLS 1.3 with a lab secret, and this \
     runner spoke plain text: start nvmf-conform with --control-secret FILE (the same secret \
     file as the target's)";

/// A byte stream both ways.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// The control channel's stream, TLS or plain.
pub type Stream = Box<dyn Duplex>;

/// A connection as one end set it up: the stream, and (over TLS) the session's binding that
/// proofs are made over.
pub struct Established {
    /// The stream the JSON lines go over.
    pub stream: Stream,
    /// The exported binding; `None` on a plain channel.
    pub binding: Option<Binding>,
    /// The target's certificate fingerprint (the runner's end, over TLS).
    pub fingerprint: Option<String>,
}

/// The target's end: accepts runners as its [`Security`] says.
pub struct Acceptor {
    security: Security,
    tls: Option<TlsAcceptor>,
    fingerprint: Option<String>,
}

impl Acceptor {
    /// An acceptor; with a secret, it makes the TLS certificate it will serve.
    pub fn new(security: Security) -> Result<Arc<Acceptor>, AuthError> {
        let (tls, fingerprint) = match &security {
            Security::Insecure => (None, None),
            Security::Secret(_) => {
                let (config, fp) = auth::server_config()?;
                (Some(TlsAcceptor::from(config)), Some(fp))
            }
        };
        Ok(Arc::new(Acceptor {
            security,
            tls,
            fingerprint,
        }))
    }

    /// The SHA-256 fingerprint of the certificate served (none when insecure).
    pub fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// How this end protects itself.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// Sets a runner's connection up; `Err` says why it was turned away (it has been told,
    /// where it can be).
    pub async fn accept(&self, tcp: TcpStream) -> Result<Established, String> {
        let _ = tcp.set_nodelay(true);
        let mut first = [0u8; 1];
        let peeked = tokio::time::timeout(HANDSHAKE_BOUND, tcp.peek(&mut first)).await;
        match peeked {
            Err(_) => return Err(format!("sent nothing in {} s", HANDSHAKE_BOUND.as_secs())),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(0)) => return Err("closed before its first byte".into()),
            Ok(Ok(_)) => {}
        }
        let tls_hello = first[0] == TLS_HANDSHAKE;
        match (&self.tls, tls_hello) {
            (None, false) => Ok(Established {
                stream: Box::new(tcp),
                binding: None,
                fingerprint: None,
            }),
            (None, true) => Err(
                "began a TLS handshake, and this target runs --insecure (plain \
                 text): closed"
                    .into(),
            ),
            (Some(_), false) => {
                let (r, mut w) = tcp.into_split();
                let mut r = BufReader::new(r);
                let _ = tokio::time::timeout(HANDSHAKE_BOUND, read_line(&mut r)).await;
                let refusal = Reply::Error {
                    message: NEEDS_TLS.into(),
                };
                let _ = write_msg(&mut w, &refusal).await;
                Err("spoke plain text to the TLS channel: told so".into())
            }
            (Some(tls), true) => {
                let tls = tokio::time::timeout(HANDSHAKE_BOUND, tls.accept(tcp))
                    .await
                    .map_err(|_| {
                        format!("no TLS handshake within {} s", HANDSHAKE_BOUND.as_secs())
                    })?
                    .map_err(|e| format!("TLS handshake: {e}"))?;
                let binding = Binding::of(tls.get_ref().1).map_err(|e| e.to_string())?;
                Ok(Established {
                    stream: Box::new(tls),
                    binding: Some(binding),
                    fingerprint: self.fingerprint.clone(),
                })
            }
        }
    }
}

/// The runner's end: connects to `addr` and sets the channel up as `security` says, within
/// `bound`; `Err` is why not.
pub async fn open(
    addr: SocketAddr,
    security: &Security,
    bound: Duration,
) -> Result<Established, String> {
    let tcp = match tokio::time::timeout(bound, TcpStream::connect(addr)).await {
        Err(_) => return Err(format!("no connection within {} s", bound.as_secs())),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    match security {
        Security::Insecure => Ok(Established {
            stream: Box::new(tcp),
            binding: None,
            fingerprint: None,
        }),
        Security::Secret(_) => {
            let config = auth::client_config().map_err(|e| e.to_string())?;
            let tls = tokio::time::timeout(
                bound,
                TlsConnector::from(config).connect(auth::server_name(), tcp),
            )
            .await
            .map_err(|_| format!("no TLS handshake within {} s", bound.as_secs()))?
            .map_err(|e| {
                format!(
                    "TLS handshake: {e} (a target started with --insecure speaks plain text: \
                     start both ends with a --control-secret file, or both with --insecure)"
                )
            })?;
            let conn = tls.get_ref().1;
            let binding = Binding::of(conn).map_err(|e| e.to_string())?;
            let fingerprint = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(auth::fingerprint);
            Ok(Established {
                stream: Box::new(tls),
                binding: Some(binding),
                fingerprint,
            })
        }
    }
}
