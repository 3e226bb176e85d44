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
    check_eq!(
        d(after.error_cmds, before.error_cmds),
        errors,
        "error commands counted"
    );
    check_eq!(
        d(after.backend_error_cmds, before.backend_error_cmds),
        errors,
        "backend-error commands counted"
    );
    let served = |what: &str, cmds: u64, blocks: u64, sent: u64| -> Result<(), Failure> {
        check!(
            cmds <= sent && cmds + errors >= sent,
            "{what} commands counted: {cmds}, for {sent} sent of which {errors} failed"
        );
        check_eq!(
            blocks,
            cmds,
            "{what} blocks counted (one block per command)"
        );
        Ok(())
    };
    served(
        "read",
        d(after.read_cmds, before.read_cmds),
        d(after.read_blocks, before.read_blocks),
        sent.reads,
    )?;
    served(
        "write",
        d(after.write_cmds, before.write_cmds),
        d(after.write_blocks, before.write_blocks),
        sent.writes,
    )?;
    check_eq!(
        d(after.flush_cmds, before.flush_cmds),
        0,
        "flush commands counted"
    );
    check_eq!(
        d(after.write_inline_cmds, before.write_inline_cmds),
        0,
        "in-capsule writes counted"
    );
    check_eq!(
        d(after.write_inline_blocks, before.write_inline_blocks),
        0,
        "in-capsule blocks counted"
    );
    Ok(())
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
    let d = |a: u64, b: u64| a.wrapping_sub(b);
    check_eq!(
        d(after.commands, before.commands),
        did.commands,
        "commands the backend fetched (one per offloaded command)"
    );
    check_eq!(
        d(after.completions, before.completions),
        did.commands - did.dropped,
        "completions the backend posted"
    );
    check_eq!(
        d(after.errors, before.errors),
        did.errors,
        "backend completions with an error status"
    );
    check_eq!(
        d(after.dma_faults, before.dma_faults),
        did.dma_faults,
        "backend commands whose data transfer failed"
    );
    check_eq!(
        d(after.dropped, before.dropped),
        did.dropped,
        "backend commands never completed"
    );
    check_eq!(
        d(after.bad_doorbells, before.bad_doorbells),
        0,
        "doorbell writes at or past the end of a backend queue"
    );
    check_eq!(
        d(after.doorbell_calls, before.doorbell_calls),
        0,
        "doorbell or status calls for a controller whose doorbells are memory (refused \
         EPERM: the device said it writes them)"
    );
    Ok(())
}
