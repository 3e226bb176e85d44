//! The target's configuration file: TOML people can read and write.
//!
//! ```toml
//! profile = "full"              # a built-in profile name, or a path to a profile TOML
//! quirks = []                   # names from --list-quirks
//!
//! [[port]]
//! addr = "127.0.10.1:4420"
//! subsystem = "nqn.2026-11.io.nvmf-conform:sub0"
//!
//! [[subsystem]]
//! nqn = "nqn.2026-11.io.nvmf-conform:sub0"
//! allow_any_host = false
//! hosts = ["nqn.2014-08.org.nvmexpress:uuid:..."]
//! staging_buf = "4MiB"          # optional; default: the profile's minimum (at least 1 MiB)
//! queue_depth = 128             # backend queue depth = the SRQ's nvme_queue_depth
//! cmd_timeout_ms = 0            # optional; backend command timeout, 0 = device default
//! mdts = "1MiB"                 # optional; maximum data transfer size in bytes (reported
//!                                # as MDTS), a power of two in 4KiB..=16MiB; default 1MiB
//! offload = true                # optional; false: I/O queues are never offloaded
//! cntlid_min = 1                # optional; the controller IDs this subsystem hands out,
//! cntlid_max = 65519            # cntlid_min..=cntlid_max (1..=65519 = FFEFh by default)
//!
//! [[subsystem.namespace]]
//! nsid = 1
//! backing = "ram"               # or "file:/path"
//! size = "64MiB"
//! lba_format = "4096"           # 512, 4096, 512+8, 4096+8, 4096+64
//! uuid = "0f4c2a1e-9b3d-4c5e-8a7f-1b2c3d4e5f60"   # optional; nguid = 32 hex digits and
//!                                # eui64 = 16 likewise; each names one namespace only
//! ```
//!
//! A subsystem's backend controller is emulated by default. A real NVMe controller driven
//! through VFIO takes its place with a backend table; its namespaces then come from the
//! controller's Identify data (no `[[subsystem.namespace]]`), front-facing nsid = the
//! controller's nsid:
//!
//! ```toml
//! [subsystem.backend]
//! kind = "vfio"                 # or "emulated" (the default)
//! pci = "0000:01:00.0"          # bound to vfio-pci, in a viable IOMMU group
//! ```
//!
//! Unknown keys are refused. Every error names the file, the line when known, and the
//! field ([`ConfigError`]). One port serves exactly one subsystem (the offloaded
//! subsystem is the port's NVMe-oF SRQ); a subsystem may be served by several ports.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use harness::api::Profile;
use serde::Deserialize;
use toml::Spanned;

use crate::quirks::{Quirk, Quirks};
use harness::backend::emulated::LbaFormat;

/// A configuration that could not be loaded; names the file, the line and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {field}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file (or `<string>`).
    pub origin: String,
    /// 1-based line of the offending value, when known.
    pub line: Option<usize>,
    /// The field, e.g. `subsystem.namespace.lba_format`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Where a namespace keeps its blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// In memory (lost when the target stops).
    Ram,
    /// In a file (created if absent, sized to the namespace).
    File(PathBuf),
    /// On the subsystem's real controller (its size and format read from Identify).
    Controller,
}

/// The controller behind a subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// Emulated by the project, holding the configured namespaces.
    Emulated,
    /// A real NVMe controller at this PCI address, driven through VFIO.
    Vfio {
        /// Its address.
        pci: harness::backend::vfio::PciAddress,
    },
}

/// One namespace of a subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceConfig {
    /// Front-facing nsid (also the backend nsid).
    pub nsid: u32,
    /// Where the blocks live.
    pub backing: Backing,
    /// Capacity in bytes of data (a whole number of blocks of `lba_format.data` bytes).
    pub size: u64,
    /// The LBA format.
    pub lba_format: LbaFormat,
    /// The identifiers it is given (`uuid`, `nguid`, `eui64`; the others derived).
    pub ids: super::ns_ids::NamespaceIds,
}

impl NamespaceConfig {
    /// Capacity in blocks.
    pub fn blocks(&self) -> u64 {
        self.size / u64::from(self.lba_format.data.max(1))
    }
}

/// One offloaded subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsystemConfig {
    /// Subsystem NQN.
    pub nqn: String,
    /// Any host may connect.
    pub allow_any_host: bool,
    /// Host NQNs allowed to connect (when not `allow_any_host`).
    pub hosts: Vec<String>,
    /// Staging buffer bytes; `None` = the profile's minimum (at least 1 MiB).
    pub staging_buf: Option<u64>,
    /// Backend queue depth (= the SRQ's `nvme_queue_depth`), clamped to the caps.
    pub queue_depth: u32,
    /// Maximum data transfer size of one command, bytes ([`MDTS_DEFAULT`] unless set).
    pub mdts: u64,
    /// Backend command timeout in ms; 0 = the device default.
    pub cmd_timeout_ms: u32,
    /// Whether I/O queues get offload (`qp_set_nvmf`); false: software serves all I/O.
    pub offload: bool,
    /// The controller IDs handed out: `cntlid_min..=cntlid_max`, within 1..=FFEFh (as
    /// Linux nvmet's `attr_cntlid_min` / `attr_cntlid_max`).
    pub cntlids: std::ops::RangeInclusive<u16>,
    /// The namespaces (for a real controller, filled from its Identify data at start).
    pub namespaces: Vec<NamespaceConfig>,
    /// The controller behind the subsystem.
    pub backend: BackendConfig,
}

/// One listening port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Address to listen on (RDMA CM).
    pub addr: SocketAddr,
    /// NQN of the subsystem it serves.
    pub subsystem: String,
}

/// A loaded, checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The device profile (capabilities) the engine presents.
    pub profile: Profile,
    /// Deliberate violations to commit.
    pub quirks: Quirks,
    /// Listening ports.
    pub ports: Vec<PortConfig>,
    /// Subsystems.
    pub subsystems: Vec<SubsystemConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_profile")]
    profile: Spanned<String>,
    #[serde(default)]
    quirks: Vec<Spanned<String>>,
    #[serde(default)]
    port: Vec<RawPort>,
    #[serde(default)]
    subsystem: Vec<RawSubsystem>,
}

fn default_profile() -> Spanned<String> {
    Spanned::new(0..0, "full".to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    addr: Spanned<String>,
    subsystem: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubsystem {
    nqn: Spanned<String>,
    #[serde(default)]
    allow_any_host: bool,
    #[serde(default)]
    hosts: Vec<String>,
    staging_buf: Option<Spanned<SizeValue>>,
    #[serde(default = "default_depth")]
    queue_depth: u32,
    mdts: Option<Spanned<SizeValue>>,
    #[serde(default)]
    cmd_timeout_ms: u32,
    #[serde(default = "default_true")]
    offload: bool,
    cntlid_min: Option<Spanned<u32>>,
    cntlid_max: Option<Spanned<u32>>,
    #[serde(default)]
    namespace: Vec<RawNamespace>,
    backend: Option<RawBackend>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    kind: Spanned<String>,
    pci: Option<Spanned<String>>,
}

fn default_depth() -> u32 {
    128
}

fn default_true() -> bool {
    true
}

/// A subsystem's maximum data transfer size unless its `mdts` says otherwise: 1 MiB, as
/// the Linux target's, and what a Linux host's passthrough I/O expects.
pub const MDTS_DEFAULT: u64 = 1 << 20;
/// The largest `mdts` a subsystem may set (each queue holds a buffer of that size).
pub const MDTS_MAX: u64 = 16 << 20;

/// The lowest controller ID a subsystem hands out by default (0 is not a valid one).
pub const CNTLID_MIN: u16 = 1;
/// The highest controller ID a subsystem hands out by default: FFF0h and above are
/// reserved (FFFFh asks for a dynamic controller in Connect).
pub const CNTLID_MAX: u16 = 0xFFEF;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamespace {
    nsid: Spanned<u32>,
    #[serde(default = "default_backing")]
    backing: Spanned<String>,
    size: Spanned<SizeValue>,
    #[serde(default = "default_format")]
    lba_format: Spanned<String>,
    #[serde(default)]
    uuid: Option<Spanned<String>>,
    #[serde(default)]
    nguid: Option<Spanned<String>>,
    #[serde(default)]
    eui64: Option<Spanned<String>>,
}

fn default_backing() -> Spanned<String> {
    Spanned::new(0..0, "ram".to_string())
}

fn default_format() -> Spanned<String> {
    Spanned::new(0..0, "512".to_string())
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum SizeValue {
    Int(u64),
    Str(String),
}

/// Parses a size: bytes as an integer, or a number with a unit `B`, `K`/`KiB`, `M`/`MiB`,
/// `G`/`GiB` (binary units; `KB`/`MB`/`GB` are accepted as the same binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("`{s}` is not a size (e.g. 4096, \"64MiB\")"));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: number too large"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "KB" | "k" => 1 << 10,
        "M" | "MiB" | "MB" => 1 << 20,
        "G" | "GiB" | "GB" => 1 << 30,
        u => return Err(format!("`{s}`: unknown unit `{u}` (B, KiB, MiB, GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}`: size overflows"))
}

/// Parses an LBA format name: `512`, `4096`, `512+8`, `4096+8`, `4096+64`.
pub fn parse_lba_format(s: &str) -> Result<LbaFormat, String> {
    let (d, m) = match s.trim().split_once('+') {
        Some((d, m)) => (d.trim(), m.trim()),
        None => (s.trim(), "0"),
    };
    let f = match (d.parse::<u32>(), m.parse::<u32>()) {
        (Ok(d), Ok(m)) => LbaFormat::new(d, m),
        _ => return Err(format!("`{s}` is not an LBA format ({})", format_names())),
    };
    if f.is_supported() {
        Ok(f)
    } else {
        Err(format!("unsupported LBA format `{s}` ({})", format_names()))
    }
}

fn format_names() -> String {
    LbaFormat::SUPPORTED
        .iter()
        .map(|f| {
            if f.meta == 0 {
                f.data.to_string()
            } else {
                f.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn line_of(text: &str, offset: usize) -> usize {
    let b = text.as_bytes();
    b[..offset.min(b.len())]
        .iter()
        .filter(|c| **c == b'\n')
        .count()
        + 1
}

/// A staging buffer length `caps` accept that holds two largest I/Os: what subsystems get
/// when their configuration gives no `staging_buf` and the device decides (the catalog).
pub fn default_staging_len(caps: &harness::api::NvmfCaps) -> u64 {
    let want = caps.min_staging_buf_size.max(2 * u64::from(caps.max_io_sz));
    match caps.max_staging_buf_size {
        0 => want,
        max => want.min(max),
    }
}

/// The address a target on `ctx` listens on: its port 1's IPv4 address (what RDMA CM
/// listens on), `sim0`'s when the device does not say.
pub fn device_ip(ctx: &dyn harness::fabric::DeviceContext) -> std::net::Ipv4Addr {
    match ctx.port_attr(1) {
        Ok(p) if !p.addr.is_unspecified() => p.addr,
        _ => harness::fabric::sim::SIM0_ADDR,
    }
}

impl Config {
    /// Puts a configuration written for any device on one: ports written with the
    /// simulated target device's address (`sim0`'s, as the catalog writes them) listen on
    /// `ip`, the device's own; subsystems without `staging_buf` get `staging` bytes.
    pub fn place(&mut self, ip: std::net::Ipv4Addr, staging: u64) {
        for s in &mut self.subsystems {
            s.staging_buf.get_or_insert(staging);
        }
        for p in &mut self.ports {
            if p.addr.ip() == std::net::IpAddr::from(harness::fabric::sim::SIM0_ADDR) {
                p.addr.set_ip(ip.into());
            }
        }
    }

    /// Loads a configuration file; a profile path in it is relative to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            line: None,
            field: "file".into(),
            message: e.to_string(),
        })?;
        Config::parse_in(&origin, &text, path.parent())
    }

    /// Parses configuration text; `origin` names it in errors. Profile paths are relative
    /// to the current directory.
    pub fn parse(origin: &str, text: &str) -> Result<Config, ConfigError> {
        Config::parse_in(origin, text, None)
    }

    fn parse_in(origin: &str, text: &str, dir: Option<&Path>) -> Result<Config, ConfigError> {
        let err =
            |span: Option<std::ops::Range<usize>>, field: &str, message: String| ConfigError {
                origin: origin.to_string(),
                line: span.filter(|s| s.end > 0).map(|s| line_of(text, s.start)),
                field: field.to_string(),
                message,
            };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span();
            let msg = e.message().to_string();
            // Only these messages quote a key; others quote the token they expected.
            let names_key = ["unknown field", "missing field", "duplicate key"]
                .iter()
                .any(|p| msg.starts_with(p));
            let field = names_key
                .then(|| backticked(&msg))
                .flatten()
                .unwrap_or_else(|| {
                    span.clone()
                        .map(|s| key_at(text, s.start))
                        .unwrap_or_else(|| "toml".into())
                });
            err(span, &field, msg)
        })?;

        // Profile.
        let pname = raw.profile.get_ref();
        let profile = if Profile::builtin(pname).is_ok() {
            Profile::builtin(pname)
                .map_err(|e| err(Some(raw.profile.span()), "profile", e.to_string()))?
        } else if pname.ends_with(".toml") || pname.contains('/') {
            let p = match dir {
                Some(d) if Path::new(pname).is_relative() => d.join(pname),
                _ => PathBuf::from(pname),
            };
            Profile::load(&p)
                .map_err(|e| err(Some(raw.profile.span()), "profile", e.to_string()))?
        } else {
            return Err(err(
                Some(raw.profile.span()),
                "profile",
                format!("unknown profile `{pname}` (full, minimal, tight, or a path to a .toml)"),
            ));
        };

        // Quirks.
        let mut quirks = Quirks::none();
        for q in &raw.quirks {
            let quirk: Quirk = q
                .get_ref()
                .parse()
                .map_err(|e: crate::quirks::UnknownQuirk| {
                    err(Some(q.span()), "quirks", e.to_string())
                })?;
            quirks.insert(quirk);
        }

        // Subsystems.
        let mut subsystems = Vec::new();
        let mut nqns = BTreeSet::new();
        // Namespace identifiers given so far, by kind: each must name one namespace.
        let mut ids_seen: BTreeSet<(&str, Vec<u8>)> = BTreeSet::new();
        let mut namespace_ids = |n: &RawNamespace| {
            use super::ns_ids::{parse_eui64, parse_nguid, parse_uuid};
            let mut ids = super::ns_ids::NamespaceIds::default();
            let fields: [(&str, &Option<Spanned<String>>); 3] =
                [("uuid", &n.uuid), ("nguid", &n.nguid), ("eui64", &n.eui64)];
            for (key, value) in fields {
                let Some(v) = value else { continue };
                let field = format!("subsystem.namespace.{key}");
                let at = |m: String| err(Some(v.span()), &field, m);
                let text = v.get_ref().as_str();
                let bytes = match key {
                    "uuid" => parse_uuid(text).map(|u| {
                        ids.uuid = Some(u);
                        u.to_vec()
                    }),
                    "nguid" => parse_nguid(text).map(|g| {
                        ids.nguid = Some(g);
                        g.to_vec()
                    }),
                    _ => parse_eui64(text).map(|e| {
                        ids.eui64 = Some(e);
                        e.to_vec()
                    }),
                }
                .map_err(&at)?;
                if !ids_seen.insert((key, bytes)) {
                    return Err(at(format!("{text} is given to another namespace too")));
                }
            }
            Ok(ids)
        };
        for s in &raw.subsystem {
            let nqn = s.nqn.get_ref().clone();
            if nqn.is_empty() || nqn.len() > harness::wire::NQN_MAX_LEN || nqn.contains('\0') {
                return Err(err(
                    Some(s.nqn.span()),
                    "subsystem.nqn",
                    format!("`{nqn}` is not a valid NQN (1..=223 bytes, no NUL)"),
                ));
            }
            if !nqns.insert(nqn.clone()) {
                return Err(err(
                    Some(s.nqn.span()),
                    "subsystem.nqn",
                    format!("duplicate subsystem `{nqn}`"),
                ));
            }
            let staging_buf = match &s.staging_buf {
                None => None,
                Some(v) => Some(
                    size_of(v.get_ref())
                        .map_err(|m| err(Some(v.span()), "subsystem.staging_buf", m))?,
                ),
            };
            let mdts = match &s.mdts {
                None => MDTS_DEFAULT,
                Some(v) => size_of(v.get_ref())
                    .and_then(|n| {
                        (n.is_power_of_two() && (4096..=MDTS_MAX).contains(&n))
                            .then_some(n)
                            .ok_or_else(|| {
                                format!(
                                    "{n} bytes: the maximum data transfer size is in bytes, a \
                                     power of two from 4KiB to 16MiB (subsystem `{nqn}`)"
                                )
                            })
                    })
                    .map_err(|m| err(Some(v.span()), "subsystem.mdts", m))?,
            };
            if s.queue_depth < 2 || s.queue_depth > 65536 {
                return Err(err(
                    None,
                    "subsystem.queue_depth",
                    format!("{} is not in 2..=65536 (subsystem `{nqn}`)", s.queue_depth),
                ));
            }
            let mut cntlids = [CNTLID_MIN, CNTLID_MAX];
            for (i, (raw, field)) in [(&s.cntlid_min, "cntlid_min"), (&s.cntlid_max, "cntlid_max")]
                .into_iter()
                .enumerate()
            {
                let Some(v) = raw else { continue };
                cntlids[i] = u16::try_from(*v.get_ref())
                    .ok()
                    .filter(|id| (CNTLID_MIN..=CNTLID_MAX).contains(id))
                    .ok_or_else(|| {
                        err(
                            Some(v.span()),
                            &format!("subsystem.{field}"),
                            format!(
                                "{} is not a controller ID in 1..=65519 (FFEFh) (subsystem `{nqn}`)",
                                v.get_ref()
                            ),
                        )
                    })?;
            }
            if cntlids[0] > cntlids[1] {
                return Err(err(
                    s.cntlid_min.as_ref().map(|v| v.span()),
                    "subsystem.cntlid_min",
                    format!(
                        "{} is above cntlid_max {} (subsystem `{nqn}`)",
                        cntlids[0], cntlids[1]
                    ),
                ));
            }
            let mut namespaces = Vec::new();
            let mut nsids = BTreeSet::new();
            for n in &s.namespace {
                let nsid = *n.nsid.get_ref();
                if nsid == 0 || nsid == u32::MAX {
                    return Err(err(
                        Some(n.nsid.span()),
                        "subsystem.namespace.nsid",
                        format!("{nsid} is not a valid nsid"),
                    ));
                }
                if !nsids.insert(nsid) {
                    return Err(err(
                        Some(n.nsid.span()),
                        "subsystem.namespace.nsid",
                        format!("duplicate nsid {nsid} in subsystem `{nqn}`"),
                    ));
                }
                let lba_format = parse_lba_format(n.lba_format.get_ref()).map_err(|m| {
                    err(
                        Some(n.lba_format.span()),
                        "subsystem.namespace.lba_format",
                        m,
                    )
                })?;
                let size = size_of(n.size.get_ref())
                    .map_err(|m| err(Some(n.size.span()), "subsystem.namespace.size", m))?;
                if size < u64::from(lba_format.data) || size % u64::from(lba_format.data) != 0 {
                    return Err(err(
                        Some(n.size.span()),
                        "subsystem.namespace.size",
                        format!(
                            "{size} bytes is not a positive whole number of {}-byte blocks",
                            lba_format.data
                        ),
                    ));
                }
                let b = n.backing.get_ref();
                let backing = if b == "ram" {
                    Backing::Ram
                } else if let Some(p) = b.strip_prefix("file:").filter(|p| !p.is_empty()) {
                    Backing::File(PathBuf::from(p))
                } else {
                    return Err(err(
                        Some(n.backing.span()),
                        "subsystem.namespace.backing",
                        format!("`{b}`: expected \"ram\" or \"file:/path\""),
                    ));
                };
                let ids = namespace_ids(n)?;
                namespaces.push(NamespaceConfig {
                    nsid,
                    backing,
                    size,
                    lba_format,
                    ids,
                });
            }
            let backend = match &s.backend {
                None => BackendConfig::Emulated,
                Some(b) => match b.kind.get_ref().as_str() {
                    "emulated" => {
                        if let Some(p) = &b.pci {
                            return Err(err(
                                Some(p.span()),
                                "subsystem.backend.pci",
                                "only a \"vfio\" backend has a PCI address".into(),
                            ));
                        }
                        BackendConfig::Emulated
                    }
                    "vfio" => {
                        let Some(p) = &b.pci else {
                            return Err(err(
                                Some(b.kind.span()),
                                "subsystem.backend.pci",
                                format!("a \"vfio\" backend needs the controller's PCI address, e.g. pci = \"0000:01:00.0\" (subsystem `{nqn}`)"),
                            ));
                        };
                        let pci = p.get_ref().parse().map_err(
                            |e: harness::backend::vfio::VfioError| {
                                err(Some(p.span()), "subsystem.backend.pci", e.to_string())
                            },
                        )?;
                        if let Some(n) = s.namespace.first() {
                            return Err(err(
                                Some(n.nsid.span()),
                                "subsystem.namespace",
                                format!("subsystem `{nqn}` has a \"vfio\" backend: its namespaces come from the controller's Identify data; remove the [[subsystem.namespace]] tables"),
                            ));
                        }
                        if subsystems
                            .iter()
                            .any(|o: &SubsystemConfig| o.backend == BackendConfig::Vfio { pci })
                        {
                            return Err(err(
                                Some(p.span()),
                                "subsystem.backend.pci",
                                format!("{pci} already backs another subsystem"),
                            ));
                        }
                        BackendConfig::Vfio { pci }
                    }
                    k => {
                        return Err(err(
                            Some(b.kind.span()),
                            "subsystem.backend.kind",
                            format!("`{k}`: expected \"emulated\" or \"vfio\""),
                        ))
                    }
                },
            };
            subsystems.push(SubsystemConfig {
                nqn,
                allow_any_host: s.allow_any_host,
                hosts: s.hosts.clone(),
                staging_buf,
                queue_depth: s.queue_depth,
                mdts,
                cmd_timeout_ms: s.cmd_timeout_ms,
                offload: s.offload,
                cntlids: cntlids[0]..=cntlids[1],
                namespaces,
                backend,
            });
        }

        // Ports.
        let mut ports = Vec::new();
        let mut addrs = BTreeSet::new();
        for p in &raw.port {
            let addr: SocketAddr = p.addr.get_ref().parse().map_err(|_| {
                err(
                    Some(p.addr.span()),
                    "port.addr",
                    format!("`{}` is not an address:port", p.addr.get_ref()),
                )
            })?;
            if !addrs.insert(addr) {
                return Err(err(
                    Some(p.addr.span()),
                    "port.addr",
                    format!("duplicate port {addr}"),
                ));
            }
            let sub = p.subsystem.get_ref();
            if !nqns.contains(sub) {
                return Err(err(
                    Some(p.subsystem.span()),
                    "port.subsystem",
                    format!("unknown subsystem `{sub}` (no [[subsystem]] has this nqn)"),
                ));
            }
            ports.push(PortConfig {
                addr,
                subsystem: sub.clone(),
            });
        }
        Ok(Config {
            profile,
            quirks,
            ports,
            subsystems,
        })
    }
}

fn size_of(v: &SizeValue) -> Result<u64, String> {
    match v {
        SizeValue::Int(n) => Ok(*n),
        SizeValue::Str(s) => parse_size(s),
    }
}

/// The first `name` between backticks in a parser message (`unknown field `x``).
fn backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

/// The key on the line holding `offset` (`key = value`), or `toml`.
fn key_at(text: &str, offset: usize) -> String {
    let b = text.as_bytes();
    let start = b[..offset.min(b.len())]
        .iter()
        .rposition(|c| *c == b'\n')
        .map_or(0, |i| i + 1);
    let line = text
        .get(start..)
        .and_then(|t| t.lines().next())
        .unwrap_or("");
    match line.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() => k.trim().to_string(),
        _ => "toml".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_formats() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("4XB").is_err());
        assert_eq!(parse_lba_format("4096+64"), Ok(LbaFormat::L4096_64));
        assert_eq!(parse_lba_format("512"), Ok(LbaFormat::L512));
        assert!(parse_lba_format("1024").is_err());
    }
}
