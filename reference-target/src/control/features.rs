//! Set / Get Features on the admin queue (NVM Express Base Specification 2.0, "Set
//! Features" and "Feature Values"), consistent with what Identify says of the controller.
//!
//! | FID | feature | Get | Set |
//! |---|---|---|---|
//! | 01h | Arbitration | the value set (AB 111b, no limit, at first) | kept |
//! | 02h | Power Management | PS 0 (NPSS is 0), the workload hint set | PS above NPSS → Invalid Field |
//! | 04h | Temperature Threshold | the Composite Temperature's over (343 K at first) or under (0 K) threshold | kept for TMPSEL Composite or all sensors; another sensor, or THSEL 10b / 11b → Invalid Field |
//! | 05h | Error Recovery | TLER set, DULBE 0 | DULBE 1 → Invalid Field (deallocated blocks read as zeroes, never as an error) |
//! | 06h | Volatile Write Cache | WCE (1 at first: Identify's VWC reports a cache) | kept |
//! | 07h | Number of Queues | the grant (NSQA = NCQA, up to 64) | grants min(NSQR, NCQR) + 1, at most 64; FFFFh → Invalid Field; I/O controllers only |
//! | 0Ah | Write Atomicity Normal | DN set | kept |
//! | 0Bh | Asynchronous Event Configuration | the value set | kept |
//! | 0Fh | Keep Alive Timer | KATO in ms (Connect's, or the one set) | KATO rounded up to KAS (1 s) and the timer restarted; 0 turns it off |
//!
//! Any other FID (Interrupt Coalescing and Interrupt Vector Configuration are PCIe only) →
//! Invalid Field. Set Features with SV (save) → Feature Identifier Not Saveable: nothing is
//! saved across resets. A discovery controller has Asynchronous Event Configuration and
//! Keep Alive Timer only. Every error status has DNR set.

use std::time::Duration;

use harness::wire::{
    feature_flag, fid, ArbitrationRepr, ErrorRecoveryRepr, NumberOfQueuesRepr, PowerManagementRepr,
    Status, TemperatureThresholdRepr, THSEL_OVER, THSEL_UNDER, TMPSEL_ALL, TMPSEL_COMPOSITE,
};

use super::identity::{KAS, MAX_IO_QUEUES, NPSS};
use super::keepalive;
use super::queue::Queue;

fn invalid() -> (Status, u64) {
    (Status::INVALID_FIELD.with_dnr(), 0)
}

fn ok(v: u32) -> (Status, u64) {
    (Status::SUCCESS, u64::from(v))
}

/// KATO as the controller keeps it: `ms` rounded up to the KAS granularity.
fn kato_of(ms: u32) -> Duration {
    let unit = u64::from(KAS) * 100;
    Duration::from_millis(u64::from(ms).div_ceil(unit) * unit)
}

/// Answers Set Features (`set`, with SV `save`) or Get Features of `fid` with CDW11
/// `cdw11`: the status and completion dword 0.
pub(crate) fn features(
    q: &Queue,
    set: bool,
    save: bool,
    fid: u8,
    cdw11: u32,
    discovery: bool,
) -> (Status, u64) {
    let restart_kato = set && fid == fid::KEEP_ALIVE_TIMER;
    let r = {
        let mut st = q.sh.lock();
        let Some(c) = q.cntlid.and_then(|id| st.ctrls.get_mut(&(q.sub, id))) else {
            return (Status::COMMAND_SEQUENCE_ERROR.with_dnr(), 0);
        };
        let on_discovery = matches!(fid, fid::ASYNC_EVENT_CONFIGURATION | fid::KEEP_ALIVE_TIMER);
        if discovery && !on_discovery {
            return invalid();
        }
        if set && save {
            return (Status::FEATURE_NOT_SAVEABLE.with_dnr(), 0);
        }
        let f = &mut c.features;
        match (fid, set) {
            (fid::ARBITRATION, true) => {
                f.arbitration = ArbitrationRepr::parse(cdw11);
                ok(0)
            }
            (fid::ARBITRATION, false) => ok(f.arbitration.emit()),
            (fid::POWER_MANAGEMENT, true) => {
                let p = PowerManagementRepr::parse(cdw11);
                if p.ps > NPSS {
                    return invalid();
                }
                f.power = p;
                ok(0)
            }
            (fid::POWER_MANAGEMENT, false) => ok(f.power.emit()),
            (fid::TEMPERATURE_THRESHOLD, _) => {
                let t = TemperatureThresholdRepr::parse(cdw11);
                let sensor = match set {
                    true => matches!(t.tmpsel, TMPSEL_COMPOSITE | TMPSEL_ALL),
                    false => t.tmpsel == TMPSEL_COMPOSITE,
                };
                let slot = match t.thsel {
                    THSEL_OVER => &mut f.temp_over,
                    THSEL_UNDER => &mut f.temp_under,
                    _ => return invalid(),
                };
                if !sensor {
                    return invalid();
                }
                if set {
                    *slot = t.tmpth;
                    ok(0)
                } else {
                    ok(u32::from(*slot))
                }
            }
            (fid::ERROR_RECOVERY, true) => {
                let e = ErrorRecoveryRepr::parse(cdw11);
                if e.dulbe {
                    return invalid();
                }
                f.error_recovery = e;
                ok(0)
            }
            (fid::ERROR_RECOVERY, false) => ok(f.error_recovery.emit()),
            (fid::VOLATILE_WRITE_CACHE, true) => {
                f.write_cache = feature_flag(cdw11);
                ok(0)
            }
            (fid::VOLATILE_WRITE_CACHE, false) => ok(f.write_cache.into()),
            (fid::WRITE_ATOMICITY_NORMAL, true) => {
                f.atomicity_dn = feature_flag(cdw11);
                ok(0)
            }
            (fid::WRITE_ATOMICITY_NORMAL, false) => ok(f.atomicity_dn.into()),
            (fid::NUMBER_OF_QUEUES, true) => {
                let want = NumberOfQueuesRepr::parse(cdw11);
                if want.nsq == u16::MAX || want.ncq == u16::MAX {
                    return invalid();
                }
                let n = (want.nsq.min(want.ncq) + 1).min(MAX_IO_QUEUES);
                c.granted = Some(n);
                ok(NumberOfQueuesRepr {
                    nsq: n - 1,
                    ncq: n - 1,
                }
                .emit())
            }
            (fid::NUMBER_OF_QUEUES, false) => {
                let n = c.granted.unwrap_or(MAX_IO_QUEUES) - 1;
                ok(NumberOfQueuesRepr { nsq: n, ncq: n }.emit())
            }
            (fid::ASYNC_EVENT_CONFIGURATION, true) => {
                c.aec = cdw11;
                ok(0)
            }
            (fid::ASYNC_EVENT_CONFIGURATION, false) => ok(c.aec),
            (fid::KEEP_ALIVE_TIMER, true) => {
                c.kato = kato_of(cdw11);
                ok(0)
            }
            (fid::KEEP_ALIVE_TIMER, false) => {
                ok(u32::try_from(c.kato.as_millis()).unwrap_or(u32::MAX))
            }
            _ => invalid(),
        }
    };
    if restart_kato && r.0.is_success() {
        if let Some(id) = q.cntlid {
            keepalive::start(&q.sh, q.sub, id);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::state::{FeatureValues, TEMP_OVER};

    #[test]
    fn kato_rounds_up_to_the_granularity() {
        assert_eq!(kato_of(0), Duration::ZERO);
        assert_eq!(kato_of(1), Duration::from_secs(1));
        assert_eq!(kato_of(1000), Duration::from_secs(1));
        assert_eq!(kato_of(1001), Duration::from_secs(2));
        assert_eq!(kato_of(u32::MAX), Duration::from_millis(4_294_968_000));
    }

    #[test]
    fn values_start_as_identify_says() {
        let f = FeatureValues::default();
        assert_eq!(f.arbitration.emit(), 0b111);
        assert!(
            f.write_cache,
            "Identify reports a volatile write cache (VWC 1)"
        );
        assert_eq!((f.temp_over, f.temp_under), (TEMP_OVER, 0));
    }
}
