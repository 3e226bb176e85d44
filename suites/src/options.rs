//! How a run is configured ([`Options`]): seed, bounds, profile, quirks, snapshots,
//! isolation, the device under test (the embedded reference target, a plugin, or a remote
//! target) and the fabric.

use std::path::PathBuf;
use std::time::Duration;

use harness::api::Profile;
use harness::plugin::Plugin;
use reference_target::quirks::Quirks;

use crate::catalog::Shard;
use crate::fabric::FabricChoice;
use crate::isolate::Isolation;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The run's seed.
    pub seed: u64,
    /// Longest a case may take (virtual time on `sim`).
    pub case_bound: Duration,
    /// The reference target's capability profile.
    pub profile: Profile,
    /// Deliberate violations the reference target commits.
    pub quirks: Quirks,
    /// Where the trace snapshots are ([`crate::snapshot::default_dir`] for the command); `None`
    /// compares no trace (the default here, so that library users such as the kill matrix
    /// judge by assertions alone).
    pub snapshots: Option<PathBuf>,
    /// Where cases run: in this process, or in forked children ([`Isolation`]).
    pub isolation: Isolation,
    /// Real time a forked child may go without delivering a case's record before it is
    /// killed and the case is an error (isolated runs only).
    pub watchdog: Duration,
    /// The shard this run is (`i/n`), recorded in the reports' metadata.
    pub shard: Option<Shard>,
    /// A vendor plugin to test instead of the embedded reference target.
    pub plugin: Option<PluginTarget>,
    /// The fabric cases run on.
    pub fabric: FabricChoice,
    /// The factor of the waits inside cases on a real fabric (`--timeout-scale`; the
    /// simulated fabric's clock is virtual, so there they are never scaled).
    pub wait_scale: f64,
    /// Two-host mode: the control channel of a remote `nvmf-reference-target --control`
    /// (the target runs there; this process runs the hosts, on `fabric`).
    pub connect: Option<Connect>,
    /// The backend controllers cases create: emulated, or queue pairs of a real controller.
    pub backend: BackendChoice,
    /// The embedded reference target's device context, offload provider and emulated
    /// backends reached only by messages in this process (two-host mode's calls, each
    /// written as JSON and parsed back: `harness::remote::LocalLink`, `JsonBackendLink`),
    /// to show the messages carry everything a case
    /// needs (the verdicts must be those of a direct run).
    pub message_link: bool,
    /// The options of `nvmf-conform replay CASE` that reproduce one of this run's cases,
    /// recorded in the reports ([`harness::runner::RunMeta::replay`]); the command line sets them.
    pub replay: Vec<String>,
}

/// Two-host mode's control channel: where the target listens, and how the channel is
/// protected (the lab secret, or `--insecure`).
#[derive(Debug, Clone)]
pub struct Connect {
    /// The target's control address.
    pub addr: std::net::SocketAddr,
    /// TLS with the lab secret, or plain TCP.
    pub security: reference_target::remote::Security,
}

/// The backend NVMe controllers the cases create for the device under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The project's emulated controllers (in-process, fault injection, counters).
    #[default]
    Emulated,
    /// Queue pairs of the real NVMe controller at this PCI address, bound to vfio-pci;
    /// faults through the host's fault broker (`NVMF_FAULT_BROKER`).
    Vfio(harness::backend::vfio::PciAddress),
}

impl BackendChoice {
    /// Whether the backend is a real controller.
    pub fn is_real(self) -> bool {
        matches!(self, BackendChoice::Vfio(_))
    }

    /// Whether this choice agrees with what a two-host target host lends (`lent`, from its
    /// `hello`): the same real controller named on both hosts, or emulated controllers on
    /// both (a real controller's cases reset it and write its namespace, so the runner
    /// must name it too). `Err`: why not, for the user.
    pub fn agrees_with(
        self,
        lent: Option<&reference_target::remote::LentReal>,
    ) -> Result<(), String> {
        match (self, lent) {
            (BackendChoice::Emulated, None) => Ok(()),
            (BackendChoice::Vfio(pci), Some(l)) if pci.to_string() == l.address => Ok(()),
            (BackendChoice::Vfio(pci), Some(l)) => Err(format!(
                "--backend vfio:{pci}: the target host lends vfio:{}, not vfio:{pci}",
                l.address
            )),
            (BackendChoice::Vfio(pci), None) => Err(format!(
                "--backend vfio:{pci}: the target host lends no real controller (start \
                 nvmf-reference-target --control there with --backend vfio:{pci} \
                 --allow-destructive {pci})"
            )),
            (BackendChoice::Emulated, Some(l)) => Err(format!(
                "the target host lends the real controller vfio:{0}: name it with --backend \
                 vfio:{0} --allow-destructive {0} (its cases reset it and write its namespace)",
                l.address
            )),
        }
    }
}

/// A vendor plugin under test and the configuration string it is opened with.
#[derive(Debug, Clone)]
pub struct PluginTarget {
    /// The loaded library.
    pub plugin: Plugin,
    /// Its configuration (the reference plugin reads `profile=NAME;quirks=a,b`).
    pub config: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            case_bound: Duration::from_secs(600),
            profile: Profile::builtin("full").expect("the full profile ships with the code"),
            quirks: Quirks::none(),
            snapshots: None,
            isolation: Isolation::None,
            watchdog: Duration::from_secs(120),
            shard: None,
            plugin: None,
            fabric: FabricChoice::Sim,
            wait_scale: 1.0,
            connect: None,
            backend: BackendChoice::Emulated,
            message_link: false,
            replay: Vec::new(),
        }
    }
}

impl Options {
    /// How the device under test is named in reports: `reference:PROFILE[+quirk…]`,
    /// `remote:ADDR:PROFILE[+quirk…]` in two-host mode, or `plugin:PATH[+quirk…]`.
    pub fn target_name(&self) -> String {
        let mut s = match (&self.plugin, &self.connect) {
            (Some(p), _) => format!("plugin:{}", p.plugin.path().display()),
            (None, Some(c)) => format!("remote:{}:{}", c.addr, self.profile.name),
            (None, None) => format!("reference:{}", self.profile.name),
        };
        for q in self.quirks.iter() {
            s.push('+');
            s.push_str(q.name());
        }
        if let BackendChoice::Vfio(pci) = self.backend {
            s.push_str(&format!("@vfio:{pci}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::BackendChoice;
    use harness::backend::emulated::LbaFormat;
    use harness::case::RealBackendFacts;
    use reference_target::remote::LentReal;

    #[test]
    fn a_runner_and_a_target_host_must_name_the_same_real_controller() {
        let pci = "0000:00:04.0".parse().unwrap();
        let lent = LentReal {
            address: "0000:00:04.0".into(),
            facts: RealBackendFacts {
                format: LbaFormat::L512,
                blocks: 1 << 19,
                broker: true,
            },
        };
        let other = LentReal {
            address: "0000:00:05.0".into(),
            ..lent.clone()
        };
        assert_eq!(BackendChoice::Emulated.agrees_with(None), Ok(()));
        assert_eq!(BackendChoice::Vfio(pci).agrees_with(Some(&lent)), Ok(()));
        let e = BackendChoice::Vfio(pci)
            .agrees_with(Some(&other))
            .unwrap_err();
        assert!(
            e.contains("lends vfio:0000:00:05.0, not vfio:0000:00:04.0"),
            "{e}"
        );
        let e = BackendChoice::Vfio(pci).agrees_with(None).unwrap_err();
        assert!(
            e.contains("lends no real controller") && e.contains("--backend vfio:0000:00:04.0"),
            "{e}"
        );
        let e = BackendChoice::Emulated
            .agrees_with(Some(&lent))
            .unwrap_err();
        assert!(
            e.contains("name it with --backend vfio:0000:00:04.0 --allow-destructive"),
            "{e}"
        );
    }
}
