//! `--fabric`: the simulated fabric gives its two devices and virtual time; the verbs
//! fabric says why it cannot run where there is no RDMA (or that a build without it lacks
//! it). An integration test, so that CI's `--features verbs` build checks it without
//! compiling the suites crate a second time for its unit tests.

use suites::fabric::FabricChoice;

#[test]
fn sim_gives_the_two_sim_devices_and_virtual_time() {
    let c = FabricChoice::Sim;
    assert!(c.is_sim());
    assert_eq!(c.name(), "sim");
    let rt = c.runtime().unwrap();
    let (target, host, kind) = rt.block_on(async {
        let f = c.for_case(7).unwrap();
        assert!(f.sim.is_some());
        (f.target_device, f.host_device, f.fabric.kind())
    });
    assert_eq!(
        (target.as_str(), host.as_str(), kind),
        ("sim0", "sim1", "sim")
    );
    // A paused clock: an hour of sleep takes no time.
    let t = std::time::Instant::now();
    rt.block_on(async { tokio::time::sleep(std::time::Duration::from_secs(3600)).await });
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(c.check(), Ok(()));
}

#[test]
fn verbs_says_why_it_cannot_run_here() {
    let c = FabricChoice::Verbs {
        device: "rxe0".into(),
    };
    assert!(!c.is_sim());
    assert_eq!(c.name(), "verbs");
    let why = match c.check() {
        // This machine has an rxe0 that opens (only a verbs build can say so).
        Ok(()) if cfg!(feature = "verbs") => return,
        Ok(()) => panic!("a build without verbs opened rxe0"),
        Err(why) => why,
    };
    if cfg!(feature = "verbs") {
        assert!(why.contains("RDMA device") || why.contains("rxe0"), "{why}");
    } else {
        assert!(why.contains("not built"), "{why}");
        assert!(c.for_case(1).err().unwrap().contains("not built"));
    }
}
