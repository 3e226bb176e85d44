//! Tests of the fabric contract's case model.

use super::*;

#[test]
fn ids_are_well_formed_and_unique() {
    let mut seen = std::collections::HashSet::new();
    for c in cases() {
        assert!(id_is_well_formed(c.id), "{}", c.id);
        assert!(c.id.starts_with(&format!("{}.", c.area)), "{}", c.id);
        assert!(seen.insert(c.id), "duplicate {}", c.id);
    }
}

#[test]
fn well_formed_ids() {
    assert!(id_is_well_formed("qp.state.reset-to-rts"));
    assert!(!id_is_well_formed("qp"));
    assert!(!id_is_well_formed("qp..x"));
    assert!(!id_is_well_formed("qp.State"));
    assert!(!id_is_well_formed("qp.-x"));
}

#[test]
fn private_data_check() {
    assert!(check_private_data(&[1, 2, 0, 0], &[1, 2], 56, "x").is_ok());
    assert!(check_private_data(&[1, 2, 0, 1], &[1, 2], 56, "x").is_err());
    assert!(check_private_data(&[1], &[1, 2], 56, "x").is_err());
}
