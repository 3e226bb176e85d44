//! Checks on a namespace's counters: that they moved by exactly what a case sent.

use harness::api::NsCounters;
use harness::backend::emulated::Counters;

use crate::framework::blame;
use crate::framework::failure::Failure;
use crate::{check, check_eq};

/// One-block commands a case sent between two readings of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sent {
    /// Reads sent.
    pub reads: u64,
    /// Writes sent (none in-capsule).
    pub writes: u64,
    /// How many of them failed (each counts as an error and a backend error).
    pub errors: u64,
}

/// The counters moved by exactly the commands `sent`: every failed one counted as an error
/// and as a backend error, nothing else counted. A failed command may or may not count as
/// served (`read_cmds`, `write_cmds`; the API leaves it open), so either is taken, with its
/// one block. Checked under `DP-ERROR-COUNTED`.
pub fn moved(before: &NsCounters, after: &NsCounters, sent: Sent) -> Result<(), Failure> {
    let _rule = blame::under("DP-ERROR-COUNTED");
    let d = |a: u64, b: u64| a.wrapping_sub(b);
    let errors = sent.errors;
    #[rustfmt::skip]
    let errors_moved: [Move<NsCounters>; 2] = [
        (|c| c.error_cmds, errors, "error commands counted"),
        (|c| c.backend_error_cmds, errors, "backend-error commands counted"),
    ];
    moved_by(before, after, &errors_moved)?;
    // Served commands of each kind, with their blocks: (kind, commands, blocks, sent).
    #[rustfmt::skip]
    let served = [
        ("read", d(after.read_cmds, before.read_cmds), d(after.read_blocks, before.read_blocks), sent.reads),
        ("write", d(after.write_cmds, before.write_cmds), d(after.write_blocks, before.write_blocks), sent.writes),
    ];
    for (what, cmds, blocks, sent) in served {
        check!(
            cmds <= sent && cmds + errors >= sent,
            "{what} commands counted: {cmds}, for {sent} sent of which {errors} failed"
        );
        check_eq!(
            blocks,
            cmds,
            "{what} blocks counted (one block per command)"
        );
    }
    #[rustfmt::skip]
    let unmoved: [Move<NsCounters>; 3] = [
        (|c| c.flush_cmds, 0, "flush commands counted"),
        (|c| c.write_inline_cmds, 0, "in-capsule writes counted"),
        (|c| c.write_inline_blocks, 0, "in-capsule blocks counted"),
    ];
    moved_by(before, after, &unmoved)
}

/// What one backend controller did between two readings of its counters
/// ([`backend_moved`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendDid {
    /// Commands it fetched.
    pub commands: u64,
    /// Of those, how many it completed with an error status.
    pub errors: u64,
    /// Of those, how many had their data transfer fail (an injected DMA fault).
    pub dma_faults: u64,
    /// Of those, how many it never completed (an injected stall).
    pub dropped: u64,
}

/// The backend controller's counters moved by exactly `did`: each offloaded command reached
/// it once (none duplicated, none resubmitted after an error or a timeout), every one it
/// fetched was completed unless stalled, the device never rang a doorbell past the
/// queue's end, and a device in memory-doorbell mode never called to ring one. Checked
/// under `DP-BACKEND-ONCE`.
pub fn backend_moved(before: &Counters, after: &Counters, did: BackendDid) -> Result<(), Failure> {
    let _rule = blame::under("DP-BACKEND-ONCE");
    // One row a counter: (counter, by how much it moved, what it counts).
    #[rustfmt::skip]
    let moves: [Move<Counters>; 7] = [
        (|c| c.commands, did.commands, "commands the backend fetched (one per offloaded command)"),
        (|c| c.completions, did.commands - did.dropped, "completions the backend posted"),
        (|c| c.errors, did.errors, "backend completions with an error status"),
        (|c| c.dma_faults, did.dma_faults, "backend commands whose data transfer failed"),
        (|c| c.dropped, did.dropped, "backend commands never completed"),
        (|c| c.bad_doorbells, 0, "doorbell writes at or past the end of a backend queue"),
        (|c| c.doorbell_calls, 0, "doorbell or status calls for a controller whose doorbells are memory (refused \
         EPERM: the device said it writes them)"),
    ];
    moved_by(before, after, &moves)
}

/// A counter (read by its accessor), by how much it must have moved, and what it counts.
type Move<T> = (fn(&T) -> u64, u64, &'static str);

/// Each counter (read by its accessor) moved from `before` to `after` by exactly what is
/// expected: `(counter, expected, what)`, checked in order.
fn moved_by<T>(before: &T, after: &T, moves: &[Move<T>]) -> Result<(), Failure> {
    for &(counter, expected, what) in moves {
        check_eq!(
            counter(after).wrapping_sub(counter(before)),
            expected,
            "{what}"
        );
    }
    Ok(())
}
