//! The requirement table and the case metadata agree, and docs/requirements.md is current.

use std::collections::BTreeSet;

use suites::areas::cases;
use suites::framework::requirements::{markdown, requirement, REQUIREMENTS};

#[test]
fn committed_requirement_table_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/requirements.md");
    let committed = std::fs::read_to_string(path).expect("docs/requirements.md exists");
    assert!(
        committed == markdown(),
        "docs/requirements.md is out of date: run `cargo conform requirements > docs/requirements.md`"
    );
}

#[test]
fn every_case_names_a_known_requirement_and_every_requirement_has_a_case() {
    let cases = cases();
    for c in &cases {
        let named = c
            .requirement
            .unwrap_or_else(|| panic!("{}: names no requirement", c.id));
        assert!(
            requirement(named).is_some(),
            "{}: unknown requirement {named}",
            c.id
        );
    }
    let used: BTreeSet<&str> = cases.iter().filter_map(|c| c.requirement).collect();
    for r in REQUIREMENTS {
        assert!(used.contains(r.id), "requirement {} has no case", r.id);
    }
}

#[test]
fn case_metadata_is_well_formed() {
    let cases = cases();
    let mut ids = BTreeSet::new();
    for c in &cases {
        assert!(ids.insert(c.id.clone()), "duplicate id {}", c.id);
        assert!(
            c.id.starts_with(&format!("{}.", c.area)),
            "{} not in its area {}",
            c.id,
            c.area
        );
        assert!(
            c.id.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ".-".contains(ch)),
            "{}: ids are lowercase, digits, dots and dashes",
            c.id
        );
        assert!(
            !c.description.is_empty() && !c.description.contains('\n'),
            "{}: one-line description",
            c.id
        );
    }
    let reqs: BTreeSet<&str> = REQUIREMENTS.iter().map(|r| r.id).collect();
    assert_eq!(reqs.len(), REQUIREMENTS.len(), "duplicate requirement ids");
}

/// The soft-RoCE stage runs "every offload area" from a list in its script: a new area must
/// be added there, or it silently never meets real verbs.
#[test]
fn the_soft_roce_stage_lists_every_offload_area() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ci/softroce/in-vm/stages.sh"
    );
    let script = std::fs::read_to_string(path).expect("ci/softroce/in-vm/stages.sh exists");
    let listed: BTreeSet<&str> = script
        .lines()
        .find_map(|l| l.strip_prefix("OFFLOAD_AREAS="))
        .expect("stages.sh sets OFFLOAD_AREAS")
        .split(',')
        .collect();
    let areas: BTreeSet<String> = cases().iter().map(|c| c.area.to_string()).collect();
    let missing: Vec<&String> = areas
        .iter()
        .filter(|a| !listed.contains(a.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "ci/softroce/in-vm/stages.sh's OFFLOAD_AREAS lacks {missing:?}"
    );
}

/// The areas that check the device's offload API only: none of their cases may check a
/// rule of the reference target's control plane, and the areas that check only the
/// control plane no rule of the device (a mislabelled requirement would move a finding
/// about the device out of the vendor's view, or blame the device for the target).
#[test]
fn requirements_bind_the_subject_their_areas_check() {
    use harness::runner::Subject;
    const DEVICE_ONLY: &[&str] = &[
        "caps",
        "srq",
        "ctrl",
        "mapping",
        "datapath",
        "software",
        "srq-verbs",
        "unsupported",
        "pci-error",
        "timeout",
        "backend-error",
    ];
    const CONTROL_PLANE_ONLY: &[&str] = &["admin", "target-io", "recovery"];
    let mut seen = BTreeSet::new();
    for c in cases() {
        let about = requirement(c.requirement.expect("named"))
            .expect("known")
            .about;
        seen.insert(about);
        if DEVICE_ONLY.contains(&c.area) {
            assert_eq!(about, Subject::Device, "{} ({:?})", c.id, c.requirement);
        }
        if CONTROL_PLANE_ONLY.contains(&c.area) {
            assert_eq!(
                about,
                Subject::ControlPlane,
                "{} ({:?})",
                c.id,
                c.requirement
            );
        }
    }
    assert!(seen.contains(&Subject::Device) && seen.contains(&Subject::ControlPlane));
    assert!(
        !seen.contains(&Subject::Fabric),
        "offload requirements bind device or target"
    );
}
