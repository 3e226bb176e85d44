//! Quirks: deliberate violations the reference target can be told to commit, one rule each,
//! so that the suite proves it can fail (the kill matrix). Off by default.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One deliberate violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quirk {
    /// Offload is active from QP creation: I/O capsules before CONNECT are served.
    OffloadAtQpCreation,
    /// EEXIST is checked per controller instead of per SRQ.
    EexistPerCtrl,
    /// Unmapping an fe_nsid that is not mapped returns 0 instead of ENOENT.
    UnmapMissingOk,
    /// An unsupported LBA data size is accepted (ENOTSUP not enforced).
    LbaSizeUnchecked,
    /// A command the device cannot serve is dropped silently: no event, QP stays up.
    UnsupportedOpSilent,
    /// A backend PCI error raises no NVME_PCI_ERR event.
    NoPciErrEvent,
    /// A backend timeout is never reported (no NVME_TIMEOUT, command never answered).
    NoTimeoutEvent,
    /// Commands in flight on a controller that hits a PCI error are never answered.
    LoseInflightOnPciErr,
    /// A write is acknowledged to the host before the backend completed it.
    EarlyWriteAck,
    /// The engine does not flip its expected backend CQ phase after a wrap (it stalls).
    CqPhaseStuck,
    /// The host allow-list is ignored: any host may connect.
    AllowAnyHost,
    /// The keyed SGL length is not checked against the command's data length.
    SglLengthUnchecked,
    /// The first offloaded read is never answered (a hang).
    HangOneCommand,
}

impl Quirk {
    /// Every quirk, in a stable order.
    pub const ALL: [Quirk; 13] = [
        Quirk::OffloadAtQpCreation,
        Quirk::EexistPerCtrl,
        Quirk::UnmapMissingOk,
        Quirk::LbaSizeUnchecked,
        Quirk::UnsupportedOpSilent,
        Quirk::NoPciErrEvent,
        Quirk::NoTimeoutEvent,
        Quirk::LoseInflightOnPciErr,
        Quirk::EarlyWriteAck,
        Quirk::CqPhaseStuck,
        Quirk::AllowAnyHost,
        Quirk::SglLengthUnchecked,
        Quirk::HangOneCommand,
    ];

    /// The name used on command lines and in config files.
    pub fn name(self) -> &'static str {
        match self {
            Quirk::OffloadAtQpCreation => "offload-at-qp-creation",
            Quirk::EexistPerCtrl => "eexist-per-ctrl",
            Quirk::UnmapMissingOk => "unmap-missing-ok",
            Quirk::LbaSizeUnchecked => "lba-size-unchecked",
            Quirk::UnsupportedOpSilent => "unsupported-op-silent",
            Quirk::NoPciErrEvent => "no-pci-err-event",
            Quirk::NoTimeoutEvent => "no-timeout-event",
            Quirk::LoseInflightOnPciErr => "lose-inflight-on-pci-err",
            Quirk::EarlyWriteAck => "early-write-ack",
            Quirk::CqPhaseStuck => "cq-phase-stuck",
            Quirk::AllowAnyHost => "allow-any-host",
            Quirk::SglLengthUnchecked => "sgl-length-unchecked",
            Quirk::HangOneCommand => "hang-one-command",
        }
    }

    /// One line: the rule it breaks.
    pub fn description(self) -> &'static str {
        match self {
            Quirk::OffloadAtQpCreation => {
                "offload enabled at QP creation: I/O capsules before CONNECT are served"
            }
            Quirk::EexistPerCtrl => "EEXIST checked per controller instead of per SRQ",
            Quirk::UnmapMissingOk => "unmapping an fe_nsid that is not mapped returns 0",
            Quirk::LbaSizeUnchecked => "unsupported LBA data sizes accepted (no ENOTSUP)",
            Quirk::UnsupportedOpSilent => "unsupported op dropped without event or QP error",
            Quirk::NoPciErrEvent => "backend PCI error raises no NVME_PCI_ERR event",
            Quirk::NoTimeoutEvent => "backend timeout never reported, command never answered",
            Quirk::LoseInflightOnPciErr => "commands in flight on a PCI error are never answered",
            Quirk::EarlyWriteAck => "writes acknowledged before the backend completed them",
            Quirk::CqPhaseStuck => "backend CQ phase not flipped after wrap (engine stalls)",
            Quirk::AllowAnyHost => "host allow-list ignored",
            Quirk::SglLengthUnchecked => "keyed SGL length not checked against the data length",
            Quirk::HangOneCommand => "the first offloaded read is never answered",
        }
    }
}

impl Quirk {
    /// The requirements (IDs of the suite's requirement table) this quirk breaks: exactly
    /// those a run with it must report as not conforming, under some profile.
    pub fn breaks(self) -> &'static [&'static str] {
        match self {
            Quirk::OffloadAtQpCreation => &[
                "SW-NOT-ENABLED",
                "CONN-BEFORE-CONNECT",
                "CONN-ADMIN-NOT-OFFLOADED",
            ],
            Quirk::EexistPerCtrl => &["MAP-EEXIST-SHARED-SRQ"],
            Quirk::UnmapMissingOk => &["MAP-ENOENT"],
            Quirk::LbaSizeUnchecked => &["MAP-LBA-SIZE"],
            Quirk::UnsupportedOpSilent => &["UNSUP-EVENT"],
            Quirk::NoPciErrEvent => &["PCI-EVENT"],
            Quirk::NoTimeoutEvent => &["TMO-EVENT"],
            Quirk::LoseInflightOnPciErr => &["PCI-INFLIGHT-ANSWERED"],
            Quirk::EarlyWriteAck => &["DP-ACK-AFTER-BACKEND"],
            Quirk::CqPhaseStuck => &["DP-QUEUE-WRAP"],
            Quirk::AllowAnyHost => &["CONN-HOST", "SEC-HOST-ALLOWLIST", "SEC-DISCOVERY"],
            Quirk::SglLengthUnchecked => &["SW-NOT-OFFLOADED", "UNSUP-EVENT"],
            Quirk::HangOneCommand => &["DP-ANSWERED"],
        }
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no quirk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown quirk `{0}` (see --list-quirks)")]
pub struct UnknownQuirk(pub String);

impl FromStr for Quirk {
    type Err = UnknownQuirk;
    fn from_str(s: &str) -> Result<Quirk, UnknownQuirk> {
        Quirk::ALL
            .into_iter()
            .find(|q| q.name() == s)
            .ok_or_else(|| UnknownQuirk(s.to_string()))
    }
}

/// The set of quirks a target runs with (empty: conforming).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quirks(BTreeSet<Quirk>);

impl Quirks {
    /// No quirk: the conforming reference.
    pub fn none() -> Quirks {
        Quirks::default()
    }

    /// Exactly one quirk.
    pub fn one(q: Quirk) -> Quirks {
        Quirks([q].into_iter().collect())
    }

    /// Whether `q` is on.
    pub fn has(&self, q: Quirk) -> bool {
        self.0.contains(&q)
    }

    /// Turns `q` on.
    pub fn insert(&mut self, q: Quirk) {
        self.0.insert(q);
    }

    /// The quirks that are on.
    pub fn iter(&self) -> impl Iterator<Item = Quirk> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Quirk::ALL.iter().map(|q| q.name()).collect();
        for q in Quirk::ALL {
            assert_eq!(q.name().parse::<Quirk>(), Ok(q));
            assert!(!q.description().is_empty());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Quirk::ALL.len());
        assert!(Quirk::ALL.len() >= 12);
    }

    #[test]
    fn unknown_name_is_an_error_naming_it() {
        let e = "fast-path".parse::<Quirk>().unwrap_err();
        assert!(e.to_string().contains("fast-path"));
    }

    #[test]
    fn serde_uses_the_same_names() {
        let q: Quirks = serde_json::from_str(r#"["hang-one-command"]"#).unwrap();
        assert!(q.has(Quirk::HangOneCommand));
        assert_eq!(
            serde_json::to_string(&Quirks::one(Quirk::AllowAnyHost)).unwrap(),
            r#"["allow-any-host"]"#
        );
    }
}
