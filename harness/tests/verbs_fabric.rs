//! The verbs fabric where this machine may have no RDMA at all (CI's machines, the
//! development machine): discovery names its reason, and what the fabric cannot do is
//! refused with its errno. An integration test, so that a `--features verbs` build checks
//! it without compiling the harness a second time for its unit tests. On a machine with
//! RDMA devices (the soft-RoCE VM), every device opens.
#![cfg(feature = "verbs")]

use harness::fabric::verbs::{is_no_rdma_device, VerbsFabric};
use harness::fabric::{Fabric, Fault};
use nix::errno::Errno;

/// On a machine without RDMA, discovery fails with the reason and `open_default` says so;
/// on one with devices, every device opens.
#[tokio::test]
async fn discovery_names_the_reason_or_opens() {
    match VerbsFabric::open_default() {
        Err(e) => {
            assert!(is_no_rdma_device(&e), "{e}");
            assert_eq!(e.errno(), Errno::ENODEV);
            assert!(e.to_string().contains("no RDMA device: "), "{e}");
            let f = VerbsFabric::new();
            assert!(f.devices().is_err());
            assert!(f.open("rxe0").is_err());
        }
        Ok(f) => {
            for d in f.devices().expect("devices") {
                let ctx = f.open(&d).expect("open");
                assert_eq!(ctx.device_attr().name, d);
            }
        }
    }
}

#[test]
fn inject_is_not_supported() {
    let f = VerbsFabric::new();
    let e = f
        .inject(Fault::Delay(std::time::Duration::ZERO))
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EOPNOTSUPP);
}
