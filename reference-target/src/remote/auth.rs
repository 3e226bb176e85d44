//! Who may use the control channel: TLS 1.3 (rustls) and a **lab secret** both ends hold.
//!
//! The target serves TLS with a certificate of its own (made at start; its SHA-256
//! fingerprint is printed). After the handshake each end proves it holds the secret: the
//! runner in `hello`, the target in its answer, each an HMAC-SHA256 keyed by the secret over
//! a value exported from *this* TLS session (RFC 5705/8446 exporter) and a label naming the
//! side. A proof is therefore worthless on any other connection: it cannot be replayed, and
//! a machine in the middle (two TLS sessions, two exported values) can forward neither. The
//! certificate itself is not what is trusted, so nothing needs a CA or a pinned file; the
//! proof is checked in constant time (`aws_lc_rs::hmac::verify`). `docs/two-host.md` says why a
//! lab gets this rather than a bare token or client certificates.
//!
//! [`Security::Insecure`] (`--insecure`) is plain TCP without either, said at every start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::hmac;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

/// Fewest bytes a secret file holds (after trimming surrounding whitespace).
pub const SECRET_MIN: usize = 32;
/// Most bytes read from a secret file.
pub const SECRET_MAX: usize = 4096;
/// The exporter label both ends derive the session's binding with.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-nvmf-conform-control-v2";
/// Bytes of the exported binding.
const BINDING_LEN: usize = 32;
/// The name the runner asks for in TLS (the certificate is not checked against it).
pub const SERVER_NAME: &str = "nvmf-reference-target";

/// Why a secret or a TLS setup is not usable.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The secret file cannot be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Which end a proof is of (each has its own label, so one end's proof is never the other's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `nvmf-conform` (`hello`).
    Runner,
    /// `nvmf-reference-target --control` (its answer to `hello`).
    Target,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Runner => b"nvmf-conform runner proof v2\0",
            Side::Target => b"nvmf-conform target proof v2\0",
        }
    }
}

/// The lab secret, read from a file only its owner can read.
pub struct Secret {
    key: hmac::Key,
    path: PathBuf,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the key
        f.debug_struct("Secret").field("path", &self.path).finish()
    }
}

impl Secret {
    /// Reads the secret in `path`: a regular file, readable by its owner only (as ssh asks of
    /// a private key), holding at least [`SECRET_MIN`] bytes (surrounding whitespace aside).
    pub fn load(path: &Path) -> Result<Secret, AuthError> {
        let fail = |message: String| AuthError::File {
            path: path.to_path_buf(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
        if !meta.is_file() {
            return Err(fail("not a regular file".into()));
        }
        check_mode(&meta).map_err(fail)?;
        if meta.len() > SECRET_MAX as u64 {
            return Err(fail(format!(
                "{} bytes: a secret file holds at most {SECRET_MAX}",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let text = bytes.trim_ascii();
        if text.len() < SECRET_MIN {
            return Err(fail(format!(
                "{} bytes of secret: at least {SECRET_MIN} are needed (make one with \
                 `nvmf-reference-target --new-secret FILE`)",
                text.len()
            )));
        }
        Ok(Secret {
            key: hmac::Key::new(hmac::HMAC_SHA256, text),
            path: path.to_path_buf(),
        })
    }

    /// Writes a new secret (32 random bytes, in hex) to `path`, which must not exist,
    /// readable by its owner only.
    pub fn generate(path: &Path) -> Result<(), AuthError> {
        use aws_lc_rs::rand::SecureRandom;
        let fail = |message: String| AuthError::File {
            path: path.to_path_buf(),
            message,
        };
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| fail("the system's random source failed".into()))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                fail("exists already: a secret is never overwritten".into())
            }
            _ => fail(e.to_string()),
        })?;
        writeln!(f, "{}", hex(&raw)).map_err(|e| fail(e.to_string()))
    }

    /// The file the secret was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `side`'s proof for a session with exported `binding`, in hex.
    pub fn prove(&self, side: Side, binding: &Binding) -> String {
        hex(hmac::sign(&self.key, &message(side, binding)).as_ref())
    }

    /// Whether `proof` is `side`'s proof for `binding`; compared in constant time.
    pub fn verify(&self, side: Side, binding: &Binding, proof: &str) -> bool {
        let Some(tag) = unhex(proof) else {
            return false;
        };
        hmac::verify(&self.key, &message(side, binding), &tag).is_ok()
    }
}

fn message(side: Side, binding: &Binding) -> Vec<u8> {
    let mut m = side.label().to_vec();
    m.extend_from_slice(&binding.0);
    m
}

#[cfg(unix)]
fn check_mode(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "readable or writable by others (mode {mode:03o}): the lab secret must be the \
             owner's only (chmod 600)"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// A value exported from one TLS session, that both its ends (and only they) know.
#[derive(Clone, PartialEq, Eq)]
pub struct Binding([u8; BINDING_LEN]);

impl Binding {
    /// The binding of an established TLS connection (either end).
    pub fn of<D>(conn: &rustls::ConnectionCommon<D>) -> Result<Binding, AuthError> {
        let mut out = [0u8; BINDING_LEN];
        conn.export_keying_material(&mut out, EXPORTER_LABEL, None)
            .map_err(|e| AuthError::Tls(format!("exporting the session's binding: {e}")))?;
        Ok(Binding(out))
    }
}

/// How a control channel end protects itself.
#[derive(Debug, Clone)]
pub enum Security {
    /// TLS 1.3 and proofs of this secret (the default: a secret file is required).
    Secret(Arc<Secret>),
    /// Plain TCP, no authentication (`--insecure`).
    Insecure,
}

impl Security {
    /// What a start line says of this channel.
    pub fn describe(&self) -> String {
        match self {
            Security::Secret(s) => format!(
                "TLS 1.3, ends proving the lab secret of {}",
                s.path().display()
            ),
            Security::Insecure => INSECURE_WARNING.into(),
        }
    }
}

/// What every start of an `--insecure` end says.
pub const INSECURE_WARNING: &str = "INSECURE (--insecure): no authentication and no \
     encryption; anyone who reaches this port can start targets and inject faults";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The target's TLS configuration with a fresh self-signed certificate, and that
/// certificate's SHA-256 fingerprint (`AB:CD:…`).
pub fn server_config() -> Result<(Arc<ServerConfig>, String), AuthError> {
    let made = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
        .map_err(|e| AuthError::Tls(format!("making a certificate: {e}")))?;
    let cert = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let fingerprint = fingerprint(&cert);
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| AuthError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| AuthError::Tls(e.to_string()))?;
    Ok((Arc::new(config), fingerprint))
}

/// The runner's TLS configuration: any certificate whose key signs the handshake is
/// accepted, as the secret's proofs (not the certificate) authenticate the target.
pub fn client_config() -> Result<Arc<ClientConfig>, AuthError> {
    let provider = provider();
    let verifier = Arc::new(ProofVerifies {
        provider: provider.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| AuthError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name the runner's TLS asks for.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("a valid DNS name")
}

/// SHA-256 of a certificate, as colon-separated hex pairs.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.as_ref());
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Accepts the target's certificate as it is, but checks that the handshake is signed by
/// its key; the target is authenticated afterwards by its proof of the secret.
#[derive(Debug)]
struct ProofVerifies {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ProofVerifies {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "the control channel speaks TLS 1.3 only".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 2 * 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn tmpdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "nvmf-auth-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn proofs_are_bound_to_side_session_and_secret() {
        let d = tmpdir();
        let a = Secret::load(&secret_file(&d, "a", &"a".repeat(40), 0o600)).unwrap();
        let b = Secret::load(&secret_file(&d, "b", &"b".repeat(40), 0o600)).unwrap();
        let s1 = Binding([1; BINDING_LEN]);
        let s2 = Binding([2; BINDING_LEN]);
        let p = a.prove(Side::Runner, &s1);
        assert_eq!(p.len(), 64);
        assert!(a.verify(Side::Runner, &s1, &p));
        assert!(!a.verify(Side::Target, &s1, &p), "the other side's label");
        assert!(!a.verify(Side::Runner, &s2, &p), "another session");
        assert!(!b.verify(Side::Runner, &s1, &p), "another secret");
        for bad in ["", "zz", &p[..63], &p[..62], &format!("{p}00")] {
            assert!(!a.verify(Side::Runner, &s1, bad), "{bad:?}");
        }
        // surrounding whitespace is not part of the secret
        let a2 = Secret::load(&secret_file(
            &d,
            "a2",
            &format!(" {}\n", "a".repeat(40)),
            0o400,
        ));
        assert!(a2.unwrap().verify(Side::Runner, &s1, &p));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn bad_secret_files_are_refused_naming_why() {
        let d = tmpdir();
        let cases = [
            (secret_file(&d, "short", "abc\n", 0o600), "at least 32"),
            (secret_file(&d, "open", &"x".repeat(40), 0o644), "mode 644"),
            (
                secret_file(&d, "group", &"x".repeat(40), 0o640),
                "chmod 600",
            ),
            (
                secret_file(&d, "huge", &"x".repeat(SECRET_MAX + 1), 0o600),
                "at most 4096",
            ),
            (d.join("absent"), "No such file"),
            (d.clone(), "not a regular file"),
        ];
        for (path, why) in cases {
            let e = Secret::load(&path).unwrap_err().to_string();
            assert!(e.contains(why), "{}: {e}", path.display());
            assert!(e.contains(&path.display().to_string()), "{e}");
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn generated_secrets_are_private_fresh_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let d = tmpdir();
        let (p1, p2) = (d.join("one"), d.join("two"));
        Secret::generate(&p1).unwrap();
        Secret::generate(&p2).unwrap();
        let mode = std::fs::metadata(&p1).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (t1, t2) = (
            std::fs::read_to_string(&p1).unwrap(),
            std::fs::read_to_string(&p2).unwrap(),
        );
        assert_eq!(t1.trim().len(), 64);
        assert_ne!(t1, t2);
        Secret::load(&p1).unwrap();
        let e = Secret::generate(&p1).unwrap_err().to_string();
        assert!(e.contains("never overwritten"), "{e}");
        assert_eq!(std::fs::read_to_string(&p1).unwrap(), t1);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn certificates_are_fresh_and_fingerprinted() {
        let (_, f1) = server_config().unwrap();
        let (_, f2) = server_config().unwrap();
        assert_eq!(f1.len(), 32 * 3 - 1);
        assert_ne!(f1, f2);
        client_config().unwrap();
    }
}
