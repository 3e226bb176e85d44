//! Tests of the fabric contract's case model.

use super::*;
use crate::case::id_is_well_formed;

#[test]
fn ids_are_well_formed_and_unique() {
    let mut seen = std::collections::HashSet::new();
    for c in cases() {
        assert!(id_is_well_formed(&c.id), "{}", c.id);
        assert!(c.id.starts_with(&format!("{}.", c.area)), "{}", c.id);
        assert!(seen.insert(&c.id), "duplicate {}", c.id);
    }
}

#[test]
fn private_data_check() {
    assert!(check_private_data(&[1, 2, 0, 0], &[1, 2], 56, "x").is_ok());
    assert!(check_private_data(&[1, 2, 0, 1], &[1, 2], 56, "x").is_err());
    assert!(check_private_data(&[1], &[1, 2], 56, "x").is_err());
}
