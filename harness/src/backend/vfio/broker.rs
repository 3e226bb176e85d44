//! The guest's side of the fault broker: asks the host to inject a real fault into the
//! NVMe controller (QEMU's monitor, `ci/softroce/fault-broker.py`) and waits for its
//! answer. The two talk through a directory both see (the VM's results share): a request
//! is a file `requests/NAME` holding the fault's name, the answer a file `acks/NAME`
//! holding `ok …` or `error: …`. `NVMF_FAULT_BROKER` names the directory; without it there
//! is no broker, and the checks that need one are skipped with that reason.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::VfioError;

/// The environment variable naming the broker's directory.
pub const ENV: &str = "NVMF_FAULT_BROKER";

/// A fault the broker injects into the real controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RealFault {
    /// A breakpoint on the backing store's reads: the next read command stalls (blkdebug
    /// breakpoints are one-shot), CSTS stays ready. Reads only: QEMU 7.2's monitor hung
    /// resuming a write held the same way.
    Stall,
    /// Lifts [`RealFault::Stall`] and [`RealFault::Slow`]: the stalled commands complete,
    /// the drive serves at full speed again.
    Resume,
    /// The drive behind the controller serves 50 commands a second (QEMU's I/O throttling):
    /// every command waits its turn, about 20 ms apart, until [`RealFault::Resume`].
    Slow,
    /// An uncorrectable PCIe error (AER) on the controller's port.
    PciError,
    /// The controller is unplugged (the kernel asks VFIO for it back).
    Unplug,
    /// Where reads fail with a media error: blkdebug's rules are fixed when the drive opens,
    /// so the broker only answers with the sector it was started with (`sector=N`, in
    /// 512-byte units; [`media_error_sector`] reads it).
    MediaError,
    /// The controller [`RealFault::Unplug`] removed is plugged back: the same root port,
    /// serial and backing store, found by the guest's PCIe hotplug.
    Replug,
}

impl RealFault {
    /// The name the broker knows it by.
    pub fn name(self) -> &'static str {
        match self {
            RealFault::Stall => "stall",
            RealFault::Resume => "resume",
            RealFault::Slow => "slow",
            RealFault::PciError => "pci-error",
            RealFault::Unplug => "unplug",
            RealFault::MediaError => "media-error",
            RealFault::Replug => "replug",
        }
    }
}

/// The sector (512-byte units) a [`RealFault::MediaError`] answer names.
pub fn media_error_sector(answer: &str) -> Result<u64, VfioError> {
    answer
        .split_whitespace()
        .find_map(|w| w.strip_prefix("sector="))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            VfioError::Broker(format!(
                "media-error: the answer {answer:?} names no sector (sector=N)"
            ))
        })
}

/// A connection to the broker.
#[derive(Debug)]
pub struct Broker {
    dir: PathBuf,
    next: u32,
}

impl Broker {
    /// The broker `NVMF_FAULT_BROKER` names, if any.
    pub fn from_env() -> Option<Broker> {
        std::env::var_os(ENV).map(|d| Broker::new(Path::new(&d)))
    }

    /// The broker answering in `dir`.
    pub fn new(dir: &Path) -> Broker {
        Broker {
            dir: dir.to_path_buf(),
            next: 0,
        }
    }

    /// Asks for `fault` and waits, at most `bound`, for the broker's answer: what the
    /// monitor printed.
    pub fn inject(&mut self, fault: RealFault, bound: Duration) -> Result<String, VfioError> {
        let name = format!("{}-{}", std::process::id(), self.next);
        self.next += 1;
        let io = |path: &Path, e: std::io::Error| VfioError::Io {
            path: path.to_path_buf(),
            errno: e
                .raw_os_error()
                .map_or(nix::errno::Errno::EIO, nix::errno::Errno::from_raw),
        };
        let requests = self.dir.join("requests");
        std::fs::create_dir_all(&requests).map_err(|e| io(&requests, e))?;
        let tmp = requests.join(format!(".{name}"));
        std::fs::write(&tmp, format!("{}\n", fault.name())).map_err(|e| io(&tmp, e))?;
        let request = requests.join(&name);
        std::fs::rename(&tmp, &request).map_err(|e| io(&request, e))?;
        let ack = self.dir.join("acks").join(&name);
        let start = Instant::now();
        loop {
            match std::fs::read_to_string(&ack) {
                Ok(text) => {
                    let text = text.trim();
                    return match text.strip_prefix("ok") {
                        Some(answer) => Ok(answer.trim().to_string()),
                        None => Err(VfioError::Broker(format!("{}: {text}", fault.name()))),
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&ack, e)),
            }
            if start.elapsed() >= bound {
                return Err(VfioError::Broker(format!(
                    "{}: no answer within {} s (is the broker running? {})",
                    fault.name(),
                    bound.as_secs(),
                    self.dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nvmf-broker-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_request_is_answered_by_the_broker() {
        let dir = scratch("answered");
        let host = dir.clone();
        // The host's side, as fault-broker.py plays it.
        let broker = std::thread::spawn(move || {
            let requests = host.join("requests");
            let acks = host.join("acks");
            let start = Instant::now();
            let mut answered = 0;
            while answered < 2 && start.elapsed() < Duration::from_secs(10) {
                if let Ok(entries) = std::fs::read_dir(&requests) {
                    for e in entries.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name.starts_with('.') {
                            continue;
                        }
                        let fault = std::fs::read_to_string(e.path()).unwrap();
                        std::fs::create_dir_all(&acks).unwrap();
                        let answer = match fault.trim() {
                            "stall" => "ok armed".to_string(),
                            other => format!("error: unknown fault '{other}'"),
                        };
                        std::fs::write(acks.join(&name), answer).unwrap();
                        std::fs::remove_file(e.path()).unwrap();
                        answered += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let mut b = Broker::new(&dir);
        assert_eq!(
            b.inject(RealFault::Stall, Duration::from_secs(5)).unwrap(),
            "armed"
        );
        let e = b
            .inject(RealFault::Unplug, Duration::from_secs(5))
            .unwrap_err();
        assert!(e.to_string().contains("unknown fault 'unplug'"), "{e}");
        broker.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_answer_is_bounded() {
        let dir = scratch("silent");
        let e = Broker::new(&dir)
            .inject(RealFault::PciError, Duration::from_millis(100))
            .unwrap_err();
        assert!(e.to_string().contains("no answer within"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_media_error_answer_names_its_sector() {
        assert_eq!(media_error_sector("sector=264192").unwrap(), 264192);
        assert_eq!(media_error_sector(" sector=7 extra").unwrap(), 7);
        for bad in ["", "sector=", "sector=x", "lba=5", "sector=-1"] {
            let e = media_error_sector(bad).unwrap_err();
            assert!(e.to_string().contains("names no sector"), "{bad:?}: {e}");
        }
    }
}
