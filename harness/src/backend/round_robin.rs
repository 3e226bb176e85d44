//! Round-robin order over queues, for the engine choosing a backend SQ and the emulated
//! SSD choosing which SQ to fetch from.
//!
//! Which queue goes first is a free choice: no rule of the offload API or of NVMe fixes it
//! and every order serves every command, so no case can tell one order from another.
//! It is kept apart so that mutation testing leaves it out (docs/mutation.md).

/// The `n` queue indexes in turn, starting at `start` (which may be `n`, meaning 0).
pub fn order(start: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (start + k) % n)
}

/// Where the next round starts once queue `i` of `n` has had its turn.
pub fn after(i: usize, n: usize) -> usize {
    (i + 1) % n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_every_queue_once_from_start() {
        assert_eq!(order(2, 4).collect::<Vec<_>>(), [2, 3, 0, 1]);
        assert_eq!(order(0, 1).collect::<Vec<_>>(), [0]);
        assert_eq!(after(3, 4), 0);
        assert_eq!(after(1, 4), 2);
    }
}
