//! Area `caps`: the device's capabilities are present and consistent.

use harness::api::caps::MIN_IOCCSZ;

use crate::framework::{Case, Failure};
use crate::{check, check_eq};

/// The cases of this area.
pub fn cases() -> Vec<Case> {
    let mut v = vec![
        Case::new(
            "caps",
            "consistent",
            "CAPS-CONSISTENT",
            "the caps pass the consistency check",
            &[],
            |d| async move {
                d.caps.validate().map_err(|p| {
                    Failure::new(
                        p.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                })
            },
        ),
        Case::new(
            "caps",
            "offload-type-bits",
            "CAPS-CONSISTENT",
            "offload_type_rc and offload_type_dc have no unknown bits",
            &[],
            |d| async move {
                check_eq!(
                    d.caps.offload_type_rc.unknown_bits(),
                    0,
                    "offload_type_rc unknown bits"
                );
                check_eq!(
                    d.caps.offload_type_dc.unknown_bits(),
                    0,
                    "offload_type_dc unknown bits"
                );
                Ok(())
            },
        ),
        Case::new(
            "caps",
            "rc-offload-present",
            "CAPS-CONSISTENT",
            "the device offloads something on RC QPs",
            &[],
            |d| async move {
                check!(
                    d.caps.offload_supported(),
                    "offload_type_rc names no offload type"
                );
                Ok(())
            },
        ),
        Case::new(
            "caps",
            "ioccsz-holds-sqe",
            "CAPS-IOCCSZ-SQE",
            "min_ioccsz is at least 4 (64 bytes)",
            &[],
            |d| async move {
                check!(
                    d.caps.min_ioccsz >= MIN_IOCCSZ,
                    "min_ioccsz {} below {MIN_IOCCSZ}",
                    d.caps.min_ioccsz
                );
                Ok(())
            },
        ),
        Case::new(
            "caps",
            "lba-sizes",
            "CAPS-LBA-SIZES",
            "at least one LBA data size is listed, none below 512",
            &[],
            |d| async move {
                check!(!d.caps.lba_data_sizes.is_empty(), "no LBA data size listed");
                check!(
                    d.caps.lba_data_sizes.iter().all(|s| *s >= 512),
                    "a size below 512: {:?}",
                    d.caps.lba_data_sizes
                );
                Ok(())
            },
        ),
        Case::new(
            "caps",
            "max-io-sz",
            "CAPS-CONSISTENT",
            "max_io_sz is non-zero",
            &[],
            |d| async move {
                check!(d.caps.max_io_sz > 0, "max_io_sz is 0");
                Ok(())
            },
        ),
    ];
    type Pair = (&'static str, fn(&harness::api::NvmfCaps) -> (u64, u64));
    let pairs: [Pair; 6] = [
        ("queue-depth", |c| {
            (c.min_nvme_queue_depth.into(), c.max_nvme_queue_depth.into())
        }),
        ("ioccsz", |c| (c.min_ioccsz.into(), c.max_ioccsz.into())),
        ("staging", |c| {
            (
                c.min_staging_buf_size,
                if c.max_staging_buf_size == 0 {
                    u64::MAX
                } else {
                    c.max_staging_buf_size
                },
            )
        }),
        ("cmd-timeout", |c| {
            (
                c.min_cmd_timeout_us.into(),
                if c.max_cmd_timeout_us == 0 {
                    u64::MAX
                } else {
                    c.max_cmd_timeout_us.into()
                },
            )
        }),
        ("srq-ctrls-le-total", |c| {
            (
                c.max_srq_backend_ctrls.into(),
                c.max_backend_ctrls_total.into(),
            )
        }),
        ("srq-namespaces-le-total", |c| {
            (c.max_srq_namespaces.into(), c.max_namespaces.into())
        }),
    ];
    for (name, f) in pairs {
        v.push(Case::new(
            "caps",
            format!("min-le-max.{name}"),
            "CAPS-CONSISTENT",
            format!("{name}: the lower bound does not exceed the upper bound"),
            &[],
            move |d| async move {
                let (lo, hi) = f(&d.caps);
                check!(lo <= hi, "{name}: {lo} > {hi}");
                Ok(())
            },
        ));
    }
    v
}
