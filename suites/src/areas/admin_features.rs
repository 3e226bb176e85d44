//! Area `admin`, the features a Linux host and nvme-cli use beyond the ones `admin.rs`
//! checks: every feature the spec makes mandatory for an I/O controller, consistent with
//! Identify, and the Keep Alive Timer changed by Set Features.

use std::time::Duration;

use harness::initiator::{Completion, Controller};
use harness::wire::{
    fid, ArbitrationRepr, ErrorRecoveryRepr, IdentifyControllerRepr, PowerManagementRepr, Status,
    TemperatureThresholdRepr, THSEL_OVER, THSEL_UNDER, TMPSEL_ALL, TMPSEL_COMPOSITE,
};

use super::admin::{enabled, expect_ok, features, identify};
use crate::framework::target::{expect_status, host_config, TargetRig, PORT_A, SUB_A};
use crate::framework::{wait, Case, Dut, Failure, Need};
use crate::{check, check_eq};

const AREA: &str = "admin";
const CP: &[Need] = &[Need::ControlPlane];

/// Get Features of `fid` with CDW11 `cdw11` must succeed with dword 0 `want`.
async fn get_is(
    c: &mut Controller,
    fid: u8,
    cdw11: u32,
    want: u32,
    what: &str,
) -> Result<(), Failure> {
    let r = features(c, false, fid.into(), cdw11).await?;
    check_eq!(
        (r.cqe.status, r.cqe.result),
        (Status::SUCCESS, u64::from(want)),
        "Get Features {what}"
    );
    Ok(())
}

/// Set Features of `fid` with `cdw11`: its completion.
async fn set(c: &mut Controller, fid: u8, cdw11: u32) -> Result<Completion, Failure> {
    features(c, true, fid.into(), cdw11).await
}

/// Set Features of `fid` with `cdw11` must succeed.
async fn set_ok(c: &mut Controller, fid: u8, cdw11: u32, what: &str) -> Result<(), Failure> {
    let r = set(c, fid, cdw11).await?;
    expect_ok(&r, &format!("Set Features {what}"))
}

/// Set Features of `fid` with `cdw11` must be Invalid Field with DNR.
async fn set_refused(c: &mut Controller, fid: u8, cdw11: u32, what: &str) -> Result<(), Failure> {
    let r = set(c, fid, cdw11).await?;
    expect_status(
        &r.cqe,
        Status::INVALID_FIELD,
        &format!("Set Features {what}"),
    )
}

/// A controller of `SUB_A` connected with KATO `connect_kato_ms` whose Keep Alive Timer
/// Set Features sets to `to` and Get Features then reads as `reads` (each with what the
/// messages call it).
async fn kato_set(
    t: &TargetRig,
    connect_kato_ms: u32,
    (to, to_what): (u32, &str),
    (reads, reads_what): (u32, &str),
) -> Result<Controller, Failure> {
    let mut cfg = host_config(SUB_A);
    cfg.kato_ms = connect_kato_ms;
    let mut c = t.controller(PORT_A, cfg).await?;
    let kat = fid::KEEP_ALIVE_TIMER;
    set_ok(&mut c, kat, to, &format!("Keep Alive Timer {to_what}")).await?;
    get_is(
        &mut c,
        kat,
        0,
        reads,
        &format!("Keep Alive Timer {reads_what}"),
    )
    .await?;
    Ok(c)
}

/// The cases of this file.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(AREA, "features.mandatory", "ADM-FEATURES-MANDATORY", "the mandatory features answer and keep what is set, consistent with Identify: Arbitration (no burst limit at first), Power Management (state 0; a state above NPSS refused), Temperature Threshold (the Composite Temperature's over and under thresholds; another sensor or THSEL refused), Error Recovery (DULBE refused), Volatile Write Cache (enabled, as Identify's VWC says there is one; disabled and enabled again), Write Atomicity Normal; a refused Set changes nothing", CP, |d: Dut| async move {
            let (_t, mut c) = enabled(&d).await?;
            let id = IdentifyControllerRepr::parse(&identify(&mut c, 1, 0).await?).map_err(Failure::from)?;
            check_eq!(id.vwc & 1, 1, "Identify Controller VWC: a volatile write cache");
            get_is(&mut c, fid::VOLATILE_WRITE_CACHE, 0, 1, "Volatile Write Cache (WCE, as VWC says)").await?;
            set_ok(&mut c, fid::VOLATILE_WRITE_CACHE, 0, "Volatile Write Cache off").await?;
            get_is(&mut c, fid::VOLATILE_WRITE_CACHE, 0, 0, "Volatile Write Cache after it was turned off").await?;
            set_ok(&mut c, fid::VOLATILE_WRITE_CACHE, 1, "Volatile Write Cache on").await?;
            get_is(&mut c, fid::VOLATILE_WRITE_CACHE, 0, 1, "Volatile Write Cache after it was turned on").await?;

            let no_limit = ArbitrationRepr { ab: 0b111, ..ArbitrationRepr::default() };
            get_is(&mut c, fid::ARBITRATION, 0, no_limit.emit(), "Arbitration at first (AB 111b)").await?;
            let arb = ArbitrationRepr { ab: 3, lpw: 1, mpw: 2, hpw: 4 };
            set_ok(&mut c, fid::ARBITRATION, arb.emit() | 0xf8, "Arbitration (reserved bits set)").await?;
            get_is(&mut c, fid::ARBITRATION, 0, arb.emit(), "Arbitration after Set (reserved bits dropped)").await?;

            get_is(&mut c, fid::POWER_MANAGEMENT, 0, 0, "Power Management at first").await?;
            set_refused(&mut c, fid::POWER_MANAGEMENT, PowerManagementRepr { ps: 1, wh: 0 }.emit(), "Power Management state 1 (NPSS is 0)").await?;
            let hinted = PowerManagementRepr { ps: 0, wh: 2 };
            set_ok(&mut c, fid::POWER_MANAGEMENT, hinted.emit(), "Power Management state 0, workload hint 2").await?;
            get_is(&mut c, fid::POWER_MANAGEMENT, 0, hinted.emit(), "Power Management after Set").await?;

            let th = |tmpth, tmpsel, thsel| TemperatureThresholdRepr { tmpth, tmpsel, thsel }.emit();
            get_is(&mut c, fid::TEMPERATURE_THRESHOLD, th(0, TMPSEL_COMPOSITE, THSEL_OVER), 343, "Temperature Threshold, Composite over, at first").await?;
            get_is(&mut c, fid::TEMPERATURE_THRESHOLD, th(0, TMPSEL_COMPOSITE, THSEL_UNDER), 0, "Temperature Threshold, Composite under, at first").await?;
            set_ok(&mut c, fid::TEMPERATURE_THRESHOLD, th(350, TMPSEL_COMPOSITE, THSEL_OVER), "Temperature Threshold, Composite over 350 K").await?;
            set_ok(&mut c, fid::TEMPERATURE_THRESHOLD, th(273, TMPSEL_ALL, THSEL_UNDER), "Temperature Threshold, every sensor under 273 K").await?;
            set_refused(&mut c, fid::TEMPERATURE_THRESHOLD, th(300, TMPSEL_COMPOSITE, 0b10), "Temperature Threshold with THSEL 10b").await?;
            let r = features(&mut c, false, fid::TEMPERATURE_THRESHOLD.into(), th(0, 1, THSEL_OVER)).await?;
            expect_status(&r.cqe, Status::INVALID_FIELD, "Get Features Temperature Threshold of sensor 1 (the target has the Composite Temperature only)")?;
            get_is(&mut c, fid::TEMPERATURE_THRESHOLD, th(0, TMPSEL_COMPOSITE, THSEL_OVER), 350, "Temperature Threshold, Composite over, after Set").await?;
            get_is(&mut c, fid::TEMPERATURE_THRESHOLD, th(0, TMPSEL_COMPOSITE, THSEL_UNDER), 273, "Temperature Threshold, Composite under, after Set").await?;

            get_is(&mut c, fid::ERROR_RECOVERY, 0, 0, "Error Recovery at first").await?;
            let tler = ErrorRecoveryRepr { tler: 5, dulbe: false };
            set_ok(&mut c, fid::ERROR_RECOVERY, tler.emit(), "Error Recovery TLER 500 ms").await?;
            set_refused(&mut c, fid::ERROR_RECOVERY, ErrorRecoveryRepr { tler: 9, dulbe: true }.emit(), "Error Recovery with DULBE (deallocated blocks read as zeroes, never as an error)").await?;
            get_is(&mut c, fid::ERROR_RECOVERY, 0, tler.emit(), "Error Recovery after the refused Set").await?;

            get_is(&mut c, fid::WRITE_ATOMICITY_NORMAL, 0, 0, "Write Atomicity Normal at first").await?;
            set_ok(&mut c, fid::WRITE_ATOMICITY_NORMAL, 1, "Write Atomicity Normal DN").await?;
            get_is(&mut c, fid::WRITE_ATOMICITY_NORMAL, 0, 1, "Write Atomicity Normal after Set").await?;
            Ok(())
        }),
        Case::new(AREA, "features.keep-alive-timer", "ADM-FEATURES-KATO", "Set Features Keep Alive Timer changes KATO, rounded up to the KAS granularity (1500 ms reads back as 2000) and restarts the timer: without Keep Alive the controller is torn down after the new KATO, not the KATO of Connect; a controller whose KATO is set to 0 is not torn down", CP, |d: Dut| async move {
            let t = d.target_one().await?;
            let mut c = kato_set(&t, 60_000, (1500, "1500 ms"), (2000, "after Set (KAS is 1 s)")).await?;
            tokio::time::sleep(Duration::from_millis(1000)).await;
            check_eq!(t.controllers(SUB_A).await?.len(), 1, "controllers halfway through the new KATO");
            check!(t.wait_event("kato-expired", wait(Duration::from_secs(10))).await?.is_some(), "no KATO expiry within 10 s of a KATO set to 2 s (Connect's was 60 s)");
            check!(t.controllers(SUB_A).await?.is_empty(), "the controller outlived the KATO it was set");
            check!(c.keep_alive().await.is_err(), "the admin queue still answers after the teardown");

            let _c = kato_set(&t, 2000, (0, "0 (off)"), (0, "after it was turned off")).await?;
            tokio::time::sleep(Duration::from_millis(5000)).await;
            check_eq!(t.controllers(SUB_A).await?.len(), 1, "controllers 5 s after KATO was turned off (Connect's was 2 s)");
            Ok(())
        }),
    ]
}
