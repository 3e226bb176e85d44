//! Capability profiles: a named [`NvmfCaps`] in a TOML file (`fixtures/profiles/*.toml`).
//!
//! ```toml
//! name = "tight"
//! description = "small limits on every bound"
//! [caps]
//! offload_type_rc = "READ_WRITE_FLUSH"
//! max_io_sz = 8192
//! # ... every NvmfCaps field
//! [device]            # optional: verbs device limits the reference device reports
//! max_srq = 4
//! ```
//!
//! Unknown keys are refused, and a profile must pass [`NvmfCaps::validate`]; every error
//! names the file and the field.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::caps::{CapsProblem, NvmfCaps};

/// A named set of capabilities the reference target can present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name, e.g. `full`.
    pub name: String,
    /// One line: what the profile is for.
    pub description: String,
    /// The capabilities.
    pub caps: NvmfCaps,
    /// Verbs device limits the reference device reports and enforces, below the fabric's.
    #[serde(default)]
    pub device: DeviceLimits,
}

/// Verbs device attributes a profile may lower (section `[device]`), so that a limit the
/// catalog exhausts is reached with few objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceLimits {
    /// Most SRQs (plain and NVMe-oF) the device holds at once (`ibv_device_attr.max_srq`).
    pub max_srq: Option<u32>,
}

/// A profile that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, or a field is unknown, missing or of the wrong type.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, which names the key and the line.
        message: String,
    },
    /// The capabilities contradict each other (e.g. a min above its max).
    #[error("{path}: inconsistent caps: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Inconsistent {
        /// The file.
        path: String,
        /// Every problem found.
        problems: Vec<CapsProblem>,
    },
    /// No built-in profile has that name.
    #[error("no profile named `{0}` (built-in: full, minimal, tight)")]
    Unknown(String),
}

/// The profiles shipped in `fixtures/profiles/`, by name.
pub const BUILTIN: [(&str, &str); 3] = [
    ("full", include_str!("../../../fixtures/profiles/full.toml")),
    (
        "minimal",
        include_str!("../../../fixtures/profiles/minimal.toml"),
    ),
    (
        "tight",
        include_str!("../../../fixtures/profiles/tight.toml"),
    ),
];

impl Profile {
    /// Parses profile text; `origin` names it in errors (a path, or `builtin:NAME`).
    pub fn parse(origin: &str, text: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        profile
            .caps
            .validate()
            .map_err(|problems| ProfileError::Inconsistent {
                path: origin.to_string(),
                problems,
            })?;
        Ok(profile)
    }

    /// Reads and parses a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: origin.clone(),
            source,
        })?;
        Profile::parse(&origin, &text)
    }

    /// A built-in profile by name (`full`, `minimal`, `tight`).
    pub fn builtin(name: &str) -> Result<Profile, ProfileError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ProfileError::Unknown(name.to_string()))?;
        Profile::parse(&format!("builtin:{name}"), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::OffloadOps;

    #[test]
    fn every_builtin_loads_and_is_named_after_itself() {
        for (name, _) in BUILTIN {
            let p = Profile::builtin(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.name, name);
        }
    }

    #[test]
    fn profiles_differ_where_they_should() {
        let full = Profile::builtin("full").unwrap().caps;
        let minimal = Profile::builtin("minimal").unwrap().caps;
        let tight = Profile::builtin("tight").unwrap().caps;
        assert!(full.supports_non_offloaded_ops && !minimal.supports_non_offloaded_ops);
        assert!(full.offload_ops_allowed(OffloadOps::READ | OffloadOps::WRITE | OffloadOps::FLUSH));
        assert!(full.offload_ops_allowed(OffloadOps::WRITE_ZEROES | OffloadOps::DATASET_MGMT));
        assert!(minimal.offload_ops_allowed(OffloadOps::WRITE));
        assert!(!minimal.offload_ops_allowed(OffloadOps::READ));
        assert!(tight.max_srq_backend_ctrls < full.max_srq_backend_ctrls);
        assert!(tight.max_io_sz < full.max_io_sz);
    }

    #[test]
    fn unknown_field_is_named() {
        let text = BUILTIN[0].1.replace("max_io_sz", "max_io_size");
        let e = Profile::parse("p.toml", &text).unwrap_err().to_string();
        assert!(e.starts_with("p.toml:") && e.contains("max_io_size"), "{e}");
    }

    #[test]
    fn wrong_type_is_named() {
        let text = BUILTIN[0]
            .1
            .replace("max_io_sz = 131072", "max_io_sz = \"big\"");
        let e = Profile::parse("p.toml", &text).unwrap_err().to_string();
        assert!(e.contains("max_io_sz"), "{e}");
    }

    #[test]
    fn inconsistent_caps_are_refused_with_the_fields() {
        let text = BUILTIN[0]
            .1
            .replace("min_nvme_queue_depth = 2", "min_nvme_queue_depth = 2048");
        let e = Profile::parse("p.toml", &text).unwrap_err();
        assert!(matches!(e, ProfileError::Inconsistent { .. }));
        assert!(e.to_string().contains("min_nvme_queue_depth"), "{e}");
    }

    #[test]
    fn missing_file_and_unknown_name() {
        let e = Profile::load(Path::new("/nonexistent/profile.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/profile.toml"));
        let e = Profile::builtin("fastest").unwrap_err();
        assert!(e.to_string().contains("fastest"));
    }
}
