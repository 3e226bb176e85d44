//! Per-case seeds: derived from the run's seed and the case id, so adding, removing or
//! filtering cases never changes another case's seed (and `replay` needs only the id).

/// The seed of case `id` in a run seeded with `base` (FNV-1a of the id, mixed with `base`).
pub fn case_seed(base: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser over the combination
    let mut z = h ^ base.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::case_seed;

    #[test]
    fn stable_and_distinct() {
        assert_eq!(case_seed(1, "a.b"), case_seed(1, "a.b"));
        assert_ne!(case_seed(1, "a.b"), case_seed(2, "a.b"));
        assert_ne!(case_seed(1, "a.b"), case_seed(1, "a.c"));
    }

    #[test]
    fn pinned_value() {
        // Recorded runs are replayed with this function: it must never change.
        assert_eq!(
            case_seed(42, "fabric.qp.state.reset-to-rts"),
            0xb7816f6d9939e412
        );
    }
}
