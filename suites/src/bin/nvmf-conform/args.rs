//! The command line: subcommands and their options (clap), and how they become run
//! `Options`.

use super::*;

/// Conformance and fault-injection suite for the NVMe-oF target offload verbs API.
///
/// `nvmf-conform run` with no arguments runs the whole catalog against the embedded
/// reference target on the simulated fabric and writes reports/junit.xml, summary.md and
/// results.json.
///
/// Exit codes (for CI and `git bisect run`): 0 every case that ran passed, 1 a case failed
/// or errored, 2 usage error, 125 nothing could be tested (every case skipped, or the
/// target could not be loaded): `git bisect run` skips such a commit.
#[derive(Parser, Debug)]
#[command(name = "nvmf-conform", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run the catalog (or the cases selected by --filter) and write reports.
    Run(RunArgs),
    /// List the catalog (or the cases selected by --filter): id, requirement, description, tags.
    List {
        /// Select cases as for `run`.
        #[arg(long)]
        filter: Vec<String>,
        /// Only this shard's cases (`i/n`), as for `run`.
        #[arg(long)]
        shard: Option<Shard>,
    },
    /// Print the requirement table (the content of docs/requirements.md).
    Requirements,
    /// Run the offload catalog against the reference target once per quirk and print the
    /// kill matrix (the content of docs/kill-matrix.md); exit 1 if a quirk goes uncaught.
    KillMatrix,
    /// Random workloads with faults against the device under test, every answer and
    /// every block checked against a model; stops at a divergence with the fewest steps
    /// that show it and the command that replays them.
    ///
    /// Prints a progress line every second, writes junit.xml, summary.md and results.json.
    /// Exit codes as `run`: 0 no divergence, 1 a divergence, 2 usage error, 125 nothing
    /// could be tested. See docs/soak.md.
    Soak(SoakArgs),
    /// Run one case again with the seed a run reported for it, printing its trace.
    Replay {
        /// The case id.
        case: String,
        /// The run's base seed (as printed in the report's metadata).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write the case's fabric traffic to FILE as a pcap of RoCEv2 frames.
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        fabric: FabricArgs,
        /// Multiply the case's time bound, and on a real fabric the bounds of its waits for
        /// events, completions and connections, by this factor (slow devices, emulated
        /// machines).
        #[arg(long, default_value_t = 1.0, value_parser = positive_factor)]
        timeout_scale: f64,
        /// Longest the case may take, in seconds (virtual time on sim), before
        /// --timeout-scale.
        #[arg(long, default_value_t = DEFAULT_CASE_TIMEOUT, value_parser = case_timeout)]
        case_timeout: u64,
    },
    /// Work with reports already written.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Make a fault on a real SSD from this host, hold it, then undo it: a lab's fault
    /// injection while an offload NIC serves that SSD (docs/vendor-guide.md). The SSD must
    /// be bound to vfio-pci and back no mounted filesystem or swap. Prints a JSON report
    /// (before, during, after, what undoing did). Exit 0: done and undone; 1: it could not
    /// be undone (the report says why); 2: refused; 125: this machine cannot do it.
    Inject {
        /// The SSD's PCI address (DDDD:BB:DD.F, as `lspci -D` prints it).
        #[arg(long, value_name = "PCI")]
        device: String,
        /// Consent: must name the same address. Never name a system disk.
        #[arg(long, value_name = "PCI")]
        allow_destructive: Vec<String>,
        /// The fault, safest first: bus-master-off (no DMA: commands time out), memory-off
        /// (doorbell writes dropped), reset (the kernel's function reset), bus-reset (a
        /// secondary bus reset of its port), remove (removed, then rescanned and bound to
        /// vfio-pci again).
        #[arg(long, value_parser = |s: &str| s.parse::<harness::backend::lab::Action>())]
        action: harness::backend::lab::Action,
        /// Seconds the fault holds before it is undone (0 to 600; SIGINT or SIGTERM end it
        /// early, and it is undone all the same).
        #[arg(long, default_value_t = 5.0, value_parser = super::inject::hold_secs)]
        hold: f64,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ReportCommand {
    /// Merge the results of the shards of one run (each a report directory holding the
    /// results.json of `run --shard i/n`) into one junit.xml, summary.md and results.json.
    Merge {
        /// Directory to write the merged reports into.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// The shards' report directories.
        #[arg(required = true, value_name = "SHARD_DIR")]
        shards: Vec<PathBuf>,
    },
}

#[cfg(feature = "verbs")]
pub(crate) const FABRIC_HELP: &str =
    "Fabric to run on: `sim` (embedded, deterministic: virtual time, \
fault injection, captures) or `verbs` (a real RDMA device, hardware or soft-RoCE, named by \
--device; real time, so give emulated machines a --timeout-scale).";
#[cfg(not(feature = "verbs"))]
pub(crate) const FABRIC_HELP: &str =
    "Fabric to run on: `sim` (embedded, deterministic). `verbs` is not \
built in this build (build with `--features verbs`).";

#[derive(clap::Args, Debug)]
pub(crate) struct FabricArgs {
    #[arg(long, default_value = "sim", help = FABRIC_HELP)]
    pub(crate) fabric: String,
    /// The RDMA device of --fabric verbs (default: the first one, e.g. rxe0). The target
    /// and the hosts both open it; the target listens on its IPv4 address.
    #[arg(long, value_name = "NAME")]
    pub(crate) device: Option<String>,
}

impl FabricArgs {
    /// The fabric these arguments name, checked: a usage error (unknown, not built, a
    /// device without verbs) or an untestable machine (no RDMA device, or not that one).
    pub(crate) fn choice(&self) -> Result<FabricChoice, Refusal> {
        let choice = match (self.fabric.as_str(), &self.device) {
            ("sim", None) => return Ok(FabricChoice::Sim),
            ("sim", Some(d)) => {
                return Err(Refusal::Usage(format!(
                    "--device {d} needs --fabric verbs (the simulated fabric has its own devices)"
                )))
            }
            ("verbs", _) if !cfg!(feature = "verbs") => {
                return Err(Refusal::Usage(
                    "--fabric verbs: the verbs fabric is not built in this build (build with \
                     `--features verbs`, or use --fabric sim)"
                        .into(),
                ))
            }
            ("verbs", Some(d)) => FabricChoice::Verbs { device: d.clone() },
            ("verbs", None) => FabricChoice::Verbs {
                device: suites::fabric::first_verbs_device().map_err(Refusal::Untestable)?,
            },
            (other, _) => {
                return Err(Refusal::Usage(format!(
                    "--fabric {other}: unknown fabric (sim, verbs)"
                )))
            }
        };
        choice.check().map_err(Refusal::Untestable)?;
        Ok(choice)
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) fabric: FabricArgs,
    /// Base seed; each case derives its own seed from it and its id.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Select cases by exact id, area, id prefix ending at a dot, `req:ID` or `tag:NAME`;
    /// repeatable (a case runs if it matches any).
    #[arg(long)]
    pub(crate) filter: Vec<String>,
    /// Run only shard i of n (`i/n`, 1-based). A case's shard depends on its id alone, so
    /// n machines running 1/n .. n/n split the run; `report merge` joins their reports.
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<Shard>,
    /// Directory for junit.xml, summary.md and results.json.
    #[arg(long, default_value = "reports")]
    pub(crate) report_dir: PathBuf,
    /// Longest one case may take, in seconds (virtual time on sim), before --timeout-scale.
    #[arg(long, default_value_t = DEFAULT_CASE_TIMEOUT, value_parser = case_timeout)]
    pub(crate) case_timeout: u64,
    /// Multiply every time bound (the case bound, the watchdog and, on a real fabric, the
    /// bounds of the cases' waits for events, completions and connections) by this
    /// factor, for slow devices or emulated machines. Durations a case checks (a command
    /// timeout, a KATO) are never scaled.
    #[arg(long, default_value_t = 1.0, value_parser = positive_factor)]
    pub(crate) timeout_scale: f64,
    /// Run cases in forked children: `case` (one child per case), `suite` (one per area)
    /// or `none`. A crashing or hanging child becomes an error verdict naming the signal
    /// or the bound, and the run goes on. Default: `case` for a plugin target and on
    /// `--fabric verbs` (the kernel frees a case's RDMA resources, listening ports
    /// included, when its child exits), `none` for the reference target on `sim` (whose
    /// hangs the virtual clock already bounds).
    #[arg(long, value_enum)]
    pub(crate) isolate: Option<Isolation>,
    /// With --isolate: real seconds a child may go without finishing a case before it is
    /// killed (before --timeout-scale).
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub(crate) watchdog: u64,
    /// Write the run's fabric traffic to FILE as a pcap of RoCEv2 frames (Wireshark's
    /// nvme-rdma dissector decodes it); cases follow one another, 1 s of virtual time apart.
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

/// `--case-timeout`'s default, in seconds.
pub(crate) const DEFAULT_CASE_TIMEOUT: u64 = 600;

/// Parses a case time bound: whole seconds, at least 1 (a bound of 0 would make every
/// case an error before it starts).
pub(crate) fn case_timeout(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if (1..=86_400).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}`: expected whole seconds from 1 to 86400 (a case needs time to run)"
        )),
    }
}

/// Parses a positive, finite scale factor.
pub(crate) fn positive_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= 1000.0 => Ok(f),
        _ => Err(format!("`{s}`: expected a number above 0 and at most 1000")),
    }
}

/// How the device under test is chosen and set up, and what its traces are compared with.
#[derive(clap::Args, Debug)]
pub(crate) struct TargetArgs {
    /// Device under test: `reference` (the embedded reference target), `reference:PROFILE`
    /// (the same with a capability profile), or `plugin:PATH` (a vendor library
    /// implementing include/nvmf_offload.h).
    #[arg(long, default_value = "reference")]
    pub(crate) target: String,
    /// Capability profile of the reference target: full, minimal, tight, or a TOML file.
    /// Same as --target reference:PROFILE.
    #[arg(long)]
    pub(crate) profile: Option<String>,
    /// Make the reference target break one rule (repeatable); see
    /// `nvmf-reference-target --list-quirks`. With a plugin target, the control plane's
    /// quirks apply to the control plane and all are passed to the reference plugin.
    #[arg(long = "quirk")]
    pub(crate) quirks: Vec<String>,
    /// Configuration string a plugin target is opened with. Default, for the reference
    /// plugin: `profile=PROFILE;quirks=Q1,Q2` from --profile and --quirk.
    #[arg(long, value_name = "STRING")]
    pub(crate) plugin_config: Option<String>,
    /// Two-host mode: the reference target runs on another host under
    /// `nvmf-reference-target --control ADDR:PORT`; this process runs the hosts on
    /// --fabric verbs and reaches the target over RDMA, and its controls (start, faults,
    /// counters, trace) over TLS. Every case runs: control-plane cases start a target there,
    /// the others use its device (context, offload API, backends) through the channel.
    /// Needs --control-secret (or --insecure). See docs/two-host.md.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) connect: Option<std::net::SocketAddr>,
    /// With --connect: the lab secret file (a copy of the target's --control-secret; mode
    /// 600): the channel is TLS 1.3 and each end proves the secret, bound to the session.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub(crate) control_secret: Option<PathBuf>,
    /// With --connect: a control channel in plain TCP without authentication (the target
    /// started with --insecure too). Said at every start.
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Backend NVMe controllers the cases create: `emulated` (the project's, with fault
    /// injection and counters) or `vfio:PCI` (queue pairs of a real controller bound to
    /// vfio-pci, e.g. vfio:0000:01:00.0; each case resets it). With a real controller,
    /// areas datapath, pci-error, timeout, recovery and backend-error run on it, faults
    /// through the host's fault broker (NVMF_FAULT_BROKER); cases that need what only
    /// emulated controllers have skip, saying why. Needs --fabric verbs and --allow-destructive naming the same
    /// device. See docs/target.md.
    #[arg(long, default_value = "emulated", value_name = "KIND")]
    pub(crate) backend: String,
    /// Consent to reset (and inject faults into) the controller --backend vfio:PCI names:
    /// must name the same PCI address. Never name a system disk.
    #[arg(long, value_name = "PCI")]
    pub(crate) allow_destructive: Vec<String>,
    /// Directory of the reviewed trace snapshots (`<case id>.snap`) that passing offload
    /// cases are compared with when the device has the full profile's caps. Default: the
    /// suites/snapshots directory of the source tree this binary was built from.
    #[arg(long, value_name = "DIR")]
    pub(crate) snapshots: Option<PathBuf>,
}

/// Why a run cannot start: a usage error (exit 2) or a target that cannot be tested (125).
pub(crate) enum Refusal {
    Usage(String),
    Untestable(String),
}

impl Refusal {
    pub(crate) fn report(self) -> ExitCode {
        match self {
            Refusal::Usage(m) => usage(&m),
            Refusal::Untestable(m) => {
                eprintln!("nvmf-conform: {m}");
                ExitCode::Untestable
            }
        }
    }
}

/// Why `--connect` and `--target plugin:…` do not go together.
const PLUGIN_ACROSS: &str = "--connect drives the device the remote target serves; to \
certify a plugin across the wire, serve it there (nvmf-reference-target --control ADDR \
--target plugin:PATH) and leave --target out here";

impl TargetArgs {
    /// The run options these arguments ask for.
    pub(crate) fn options(&self, seed: u64, case_bound: Duration) -> Result<Options, Refusal> {
        let backend = self.backend_choice()?;
        self.device_options(seed, case_bound)
            .map(|o| Options { backend, ..o })
    }

    /// The backend --backend names, checked: a PCI address whose fields parse, consent
    /// given for it, and a device under test that can use it.
    fn backend_choice(&self) -> Result<BackendChoice, Refusal> {
        let choice = match self.backend.split_once(':') {
            None if self.backend == "emulated" => BackendChoice::Emulated,
            Some(("vfio", pci)) => BackendChoice::Vfio(
                pci.parse::<PciAddress>()
                    .map_err(|e| Refusal::Usage(format!("--backend vfio:{pci}: {e}")))?,
            ),
            _ => {
                return Err(Refusal::Usage(format!(
                    "--backend {}: expected emulated or vfio:PCI (e.g. vfio:0000:01:00.0)",
                    self.backend
                )))
            }
        };
        let consents = self
            .allow_destructive
            .iter()
            .map(|given| {
                given
                    .parse::<PciAddress>()
                    .map_err(|e| Refusal::Usage(format!("--allow-destructive {given}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let BackendChoice::Vfio(pci) = choice {
            if !consents.contains(&pci) {
                return Err(Refusal::Usage(format!(
                    "--backend vfio:{pci} resets that controller for every case and may inject \
                     faults into it: pass --allow-destructive {pci} to consent"
                )));
            }
            if self.target.starts_with("plugin:") {
                return Err(Refusal::Usage(format!(
                    "--backend vfio:{pci} serves the embedded reference target's backend \
                     controllers, or those of a remote target that lends it (--connect), not \
                     a plugin's"
                )));
            }
        }
        Ok(choice)
    }

    /// The options for the device under test, before the backend is chosen.
    fn device_options(&self, seed: u64, case_bound: Duration) -> Result<Options, Refusal> {
        let profile_name = match self.target.split_once(':') {
            None if self.target == "reference" => self.profile.clone().unwrap_or("full".into()),
            Some(("reference", p)) => match &self.profile {
                Some(q) if q != p => {
                    return Err(Refusal::Usage(format!(
                        "--target {} and --profile {q} name different profiles",
                        self.target
                    )))
                }
                _ => p.to_string(),
            },
            Some(("plugin", _)) if self.connect.is_some() => {
                return Err(Refusal::Usage(PLUGIN_ACROSS.into()))
            }
            Some(("plugin", path)) => {
                let plugin = Plugin::load(path)
                    .map_err(|e| Refusal::Untestable(format!("--target plugin:{path}: {e}")))?;
                let profile = self.profile.clone().unwrap_or("full".into());
                let config = self.plugin_config.clone().unwrap_or_else(|| {
                    let mut c = format!("profile={profile}");
                    if !self.quirks.is_empty() {
                        c.push_str(&format!(";quirks={}", self.quirks.join(",")));
                    }
                    c
                });
                return self
                    .reference_options(seed, case_bound, &profile)
                    .map(|o| Options {
                        plugin: Some(PluginTarget { plugin, config }),
                        ..o
                    });
            }
            _ => {
                return Err(Refusal::Usage(format!(
                    "--target {}: expected reference, reference:PROFILE or plugin:PATH",
                    self.target
                )))
            }
        };
        self.reference_options(seed, case_bound, &profile_name)
    }

    /// The options for the reference target with `profile_name` (and the quirks and
    /// snapshots asked for).
    pub(crate) fn reference_options(
        &self,
        seed: u64,
        case_bound: Duration,
        profile_name: &str,
    ) -> Result<Options, Refusal> {
        let looks_like_a_file = profile_name.contains('/') || profile_name.ends_with(".toml");
        let profile = match Profile::builtin(profile_name) {
            Ok(p) => p,
            Err(_) if Path::new(profile_name).exists() => Profile::load(Path::new(profile_name))
                .map_err(|e| Refusal::Usage(format!("--profile: {e}")))?,
            Err(_) if looks_like_a_file => {
                return Err(Refusal::Usage(format!(
                    "--profile {profile_name}: no such file (a profile is a built-in name, \
                     full, minimal or tight, or a TOML file)"
                )))
            }
            Err(e) => return Err(Refusal::Usage(format!("--profile: {e}"))),
        };
        let mut quirks = Quirks::none();
        for q in &self.quirks {
            quirks.insert(
                q.parse::<Quirk>()
                    .map_err(|e| Refusal::Usage(format!("--quirk: {e}")))?,
            );
        }
        // A typo must not silently compare nothing: a directory given must exist.
        if let Some(dir) = self.snapshots.as_ref().filter(|d| !d.is_dir()) {
            return Err(Refusal::Usage(format!(
                "--snapshots {}: not a directory",
                dir.display()
            )));
        }
        Ok(Options {
            seed,
            case_bound,
            profile,
            quirks,
            connect: self.connect_options()?,
            snapshots: Some(
                self.snapshots
                    .clone()
                    .unwrap_or_else(suites::snapshot::default_dir),
            ),
            ..Options::default()
        })
    }
}

impl TargetArgs {
    /// Two-host mode's channel as --connect, --control-secret and --insecure ask: a secret
    /// that does not load is a usage error naming the file; neither is one too.
    fn connect_options(&self) -> Result<Option<Connect>, Refusal> {
        let Some(addr) = self.connect else {
            if self.insecure || self.control_secret.is_some() {
                return Err(Refusal::Usage(
                    "--control-secret and --insecure protect a control channel: they need \
                     --connect"
                        .into(),
                ));
            }
            return Ok(None);
        };
        let security = match (&self.control_secret, self.insecure) {
            (Some(path), _) => Security::Secret(std::sync::Arc::new(
                Secret::load(path).map_err(|e| Refusal::Usage(format!("--control-secret {e}")))?,
            )),
            (None, true) => {
                eprintln!("nvmf-conform: WARNING: control channel {INSECURE_WARNING}");
                Security::Insecure
            }
            (None, false) => {
                return Err(Refusal::Usage(format!(
                    "--connect {addr} needs --control-secret FILE (a copy of the target's lab \
                     secret) or, for a target started with --insecure, --insecure"
                )))
            }
        };
        Ok(Some(Connect { addr, security }))
    }
}

/// `--faults`' value: the fault kinds it names.
#[derive(Debug, Clone)]
pub(crate) struct FaultList(pub(crate) Vec<suites::soak::FaultKind>);

fn fault_list(s: &str) -> Result<FaultList, String> {
    suites::soak::parse_faults(s).map(FaultList)
}

/// Random sequences of connects, disconnects, reads, writes, flushes, write-zeroes and
/// deallocates at random queue depths, with backend faults, against the device under test;
/// every status and every block read is checked against a model.
///
/// Prints a progress line (steps and commands per second, what has been covered) every
/// second, writes junit.xml, summary.md and results.json, and on a divergence stops with
/// the fewest steps it shrank it to and the exact command that replays them. Exit codes as
/// `run`: 0 no divergence, 1 a divergence, 2 usage error, 125 nothing could be tested.
#[derive(clap::Args, Debug)]
pub(crate) struct SoakArgs {
    /// Seconds of wall time to keep starting episodes for.
    #[arg(long, default_value_t = 60, value_parser = duration_secs)]
    pub(crate) duration: u64,
    /// Base seed: episode E's steps are a function of it and E alone.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Faults to inject, comma-separated: timeout, pci-error, media-error, link-drop (simulated
    /// fabric only), restart (the target stops in order and a new one starts on the same
    /// device and media; in-process targets only); or `all`, or `none`.
    #[arg(long, default_value = "all", value_parser = fault_list)]
    pub(crate) faults: FaultList,
    /// Stop after this many episodes (or --duration, whichever comes first): with a seed, a
    /// run that is the same on any machine.
    #[arg(long, value_name = "N")]
    pub(crate) episodes: Option<u64>,
    /// Run only episode E (a replay; --duration does not apply).
    #[arg(long, value_name = "E")]
    pub(crate) episode: Option<u64>,
    /// With --episode: only these steps of it, e.g. `0,3,17` (what a divergence shrank to).
    #[arg(
        long,
        value_name = "I,J,...",
        value_delimiter = ',',
        requires = "episode"
    )]
    pub(crate) only: Option<Vec<usize>>,
    /// Steps per episode.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) steps: u64,
    #[command(flatten)]
    pub(crate) fabric: FabricArgs,
    /// Directory for junit.xml, summary.md and results.json.
    #[arg(long, default_value = "reports")]
    pub(crate) report_dir: PathBuf,
    /// Multiply every time bound by this factor (slow devices, emulated machines).
    #[arg(long, default_value_t = 1.0, value_parser = positive_factor)]
    pub(crate) timeout_scale: f64,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

/// Parses `--duration`: whole seconds, 1 to a week.
fn duration_secs(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if (1..=604_800).contains(&n) => Ok(n),
        _ => Err(format!("`{s}`: expected whole seconds from 1 to 604800")),
    }
}
