//! How long a case waits for something that should happen: scaled on a real fabric.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The factor every case's waits are scaled by ([`wait`]), as `f64` bits.
static WAIT_SCALE: AtomicU64 = AtomicU64::new(1.0f64.to_bits());

/// Sets the factor of [`wait`] for the cases this process runs: `--timeout-scale` on a real
/// fabric (real time), 1 on the simulated one (virtual time costs nothing to wait).
pub fn set_wait_scale(factor: f64) {
    WAIT_SCALE.store(factor.to_bits(), Ordering::Relaxed);
}

/// `d` as a case waits for something that should happen (an event, a completion, a
/// connection): scaled by [`set_wait_scale`]'s factor. Never for a duration a case
/// checks (a timeout that must not fire early, a KATO, a deliberate delay).
pub fn wait(d: Duration) -> Duration {
    d.mul_f64(f64::from_bits(WAIT_SCALE.load(Ordering::Relaxed)))
}
