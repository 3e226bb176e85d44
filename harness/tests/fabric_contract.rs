//! The fabric contract: every case of `harness::fabric::contract` as its own test.
//!
//! The fabric is chosen with `NVMF_CONFORM_FABRIC` (default `sim`; `verbs` for real
//! libibverbs / librdmacm devices, with the harness's `verbs` feature) and the seed with
//! `NVMF_CONFORM_SEED` (decimal or `0x` hex); `NVMF_CONFORM_TRACE=1` prints what each case
//! observed. On `sim` every case gets a fresh network on a
//! current-thread runtime with a paused clock (bounded waits cost virtual time only); on
//! `verbs` a current-thread runtime on wall time, with the host's devices (the first one
//! plays both sides when there is only one, as rxe0 does). A fabric this binary does not
//! have, or a host without an RDMA device, is a skip with the reason, printed, not a
//! failure.
//!
//! Adding a case: add it to its area file in `harness/src/fabric/contract/` and one line
//! `name => "id",` to [`contract_tests!`] below; `catalog_is_listed` fails until you do.

use std::collections::BTreeSet;
use std::sync::Arc;

use harness::fabric::contract::{self, Env, FabricFactory, Outcome};
use harness::fabric::sim::SimFabric;
#[cfg(feature = "verbs")]
use harness::fabric::verbs::VerbsFabric;
use harness::fabric::Fabric;
use rstest::rstest;

/// Seed used when `NVMF_CONFORM_SEED` is not set.
const DEFAULT_SEED: u64 = 0x6e76_6d66_2d63_6f6e;

/// A fabric this test binary can run the cases on.
enum Target {
    /// The in-process simulated fabric.
    Sim,
    /// The host's RDMA devices (libibverbs, librdmacm).
    #[cfg(feature = "verbs")]
    Verbs,
}

impl Target {
    /// The fabric named by `NVMF_CONFORM_FABRIC`, or why it cannot run here.
    fn from_env() -> Result<Target, String> {
        match std::env::var("NVMF_CONFORM_FABRIC").ok().as_deref() {
            None | Some("") | Some("sim") => Ok(Target::Sim),
            #[cfg(feature = "verbs")]
            Some("verbs") => match VerbsFabric::open_default() {
                Ok(_) => Ok(Target::Verbs),
                Err(e) => Err(format!("NVMF_CONFORM_FABRIC=verbs: {e}")),
            },
            #[cfg(not(feature = "verbs"))]
            Some("verbs") => Err(
                "NVMF_CONFORM_FABRIC=verbs: harness built without the verbs feature \
                 (cargo test -p harness --features verbs)"
                    .into(),
            ),
            Some(other) => Err(format!(
                "NVMF_CONFORM_FABRIC={other}: unknown fabric (sim, verbs)"
            )),
        }
    }

    /// The runtime a case runs on: virtual time for sim, real time otherwise.
    fn runtime(&self) -> tokio::runtime::Runtime {
        match self {
            Target::Sim => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .expect("tokio runtime"),
            #[cfg(feature = "verbs")]
            Target::Verbs => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
        }
    }

    /// Builds a fabric for a seed (called inside the runtime).
    fn factory(&self) -> FabricFactory {
        match self {
            Target::Sim => Arc::new(|seed| SimFabric::new(seed) as Arc<dyn Fabric>),
            #[cfg(feature = "verbs")]
            Target::Verbs => Arc::new(|_seed| VerbsFabric::new() as Arc<dyn Fabric>),
        }
    }
}

fn seed() -> u64 {
    match std::env::var("NVMF_CONFORM_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("NVMF_CONFORM_SEED={s}: {e}"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

/// Runs case `id` on a fresh fabric of `target`: its outcome and what it observed.
fn run(target: &Target, id: &str, seed: u64) -> (Outcome, Vec<String>) {
    let case = contract::case(id).unwrap_or_else(|| panic!("no contract case {id}"));
    let rt = target.runtime();
    let factory = target.factory();
    rt.block_on(async move {
        let env = Env::new(factory(seed), seed).with_factory(factory.clone());
        let trace = env.trace.clone();
        let outcome = contract::execute(case, env).await;
        (outcome, trace.snapshot())
    })
}

/// One test per case; also the list of ids, checked against the catalog.
macro_rules! contract_tests {
    ($($name:ident => $id:literal,)*) => {
        const LISTED: &[&str] = &[$($id),*];

        #[rstest]
        $(#[case::$name($id)])*
        fn contract_case(#[case] id: &str) {
            let target = match Target::from_env() {
                Ok(t) => t,
                Err(reason) => {
                    eprintln!("SKIP {id}: {reason}");
                    return;
                }
            };
            let seed = seed();
            let (outcome, trace) = run(&target, id, seed);
            if std::env::var_os("NVMF_CONFORM_TRACE").is_some() {
                for line in &trace {
                    eprintln!("{id}: {line}");
                }
            }
            match outcome {
                Outcome::Passed => {}
                Outcome::Skipped(reason) => eprintln!("SKIP {id}: {reason}"),
                Outcome::Failed(msg) => panic!("{id} (seed {seed:#x}): {msg}"),
            }
        }
    };
}

contract_tests! {
    device_list_open_each => "device.list.open-each",
    device_open_unknown_enodev => "device.open.unknown-enodev",
    device_port_active_ipv4_gid => "device.port.active-ipv4-gid",
    device_port_out_of_range_einval => "device.port.out-of-range-einval",
    device_handle_foreign_context_enoent => "device.handle.foreign-context-enoent",
    pd_alloc_dealloc => "pd.alloc.dealloc",
    pd_dealloc_in_use_ebusy => "pd.dealloc.in-use-ebusy",
    mr_reg_distinct_keys => "mr.reg.distinct-keys",
    mr_reg_zero_len_einval => "mr.reg.zero-len-einval",
    mr_reg_remote_write_needs_local_write => "mr.reg.remote-write-needs-local-write",
    mr_reg_remote_atomic_needs_local_write => "mr.reg.remote-atomic-needs-local-write",
    mr_reg_too_large_einval => "mr.reg.too-large-einval",
    mr_cpu_round_trip => "mr.cpu.round-trip",
    mr_cpu_out_of_bounds_einval => "mr.cpu.out-of-bounds-einval",
    mr_dereg_remote_access_fails => "mr.dereg.remote-access-fails",
    cq_create_bad_size_einval => "cq.create.bad-size-einval",
    cq_poll_empty => "cq.poll.empty",
    cq_destroy_in_use_ebusy => "cq.destroy.in-use-ebusy",
    cq_split_send_and_receive => "cq.split.send-and-receive",
    cq_overflow_cq_err_event => "cq.overflow.cq-err-event",
    qp_state_reset_to_rts => "qp.state.reset-to-rts",
    qp_state_reset_to_rtr_einval => "qp.state.reset-to-rtr-einval",
    qp_state_reset_to_rts_einval => "qp.state.reset-to-rts-einval",
    qp_state_init_to_rts_einval => "qp.state.init-to-rts-einval",
    qp_state_backwards_einval => "qp.state.backwards-einval",
    qp_state_init_missing_attrs_einval => "qp.state.init-missing-attrs-einval",
    qp_state_rtr_missing_dest_einval => "qp.state.rtr-missing-dest-einval",
    qp_state_any_to_err_to_reset => "qp.state.any-to-err-to-reset",
    qp_create_bad_args_einval => "qp.create.bad-args-einval",
    qp_post_send_not_rts_einval => "qp.post-send.not-rts-einval",
    qp_post_recv_reset_einval => "qp.post-recv.reset-einval",
    qp_post_recv_srq_attached_einval => "qp.post-recv.srq-attached-einval",
    qp_post_send_too_many_sge_einval => "qp.post-send.too-many-sge-einval",
    qp_post_queue_full_enomem => "qp.post.queue-full-enomem",
    qp_err_flushes_outstanding => "qp.err.flushes-outstanding",
    qp_err_post_flushes => "qp.err.post-flushes",
    qp_state_rtr_receives => "qp.state.rtr-receives",
    qp_state_reset_reuse_clears_queues => "qp.state.reset-reuse-clears-queues",
    qp_err_peer_sends_retry_exc_err => "qp.err.peer-sends-retry-exc-err",
    qp_destroy_any_state => "qp.destroy.any-state",
    send_recv_data_integrity => "send.recv.data-integrity",
    send_recv_multi_sge => "send.recv.multi-sge",
    send_recv_zero_length => "send.recv.zero-length",
    send_recv_in_order => "send.recv.in-order",
    send_recv_too_small_loc_len_err => "send.recv.too-small-loc-len-err",
    send_unsignaled_no_success_completion => "send.unsignaled.no-success-completion",
    send_unsignaled_error_still_completes => "send.unsignaled.error-still-completes",
    send_sge_bad_lkey_loc_prot_err => "send.sge.bad-lkey-loc-prot-err",
    send_sge_out_of_bounds_loc_prot_err => "send.sge.out-of-bounds-loc-prot-err",
    send_inv_invalidates_rkey => "send.inv.invalidates-rkey",
    rnr_retry_exhausted => "rnr.retry.exhausted",
    rnr_retry_infinite_then_recv => "rnr.retry.infinite-then-recv",
    rdma_write_data_integrity => "rdma.write.data-integrity",
    rdma_read_data_integrity => "rdma.read.data-integrity",
    rdma_bounds_exact_ok => "rdma.bounds.exact-ok",
    rdma_write_past_bounds_rem_access_err => "rdma.write.past-bounds-rem-access-err",
    rdma_read_past_bounds_rem_access_err => "rdma.read.past-bounds-rem-access-err",
    rdma_write_wrong_rkey_rem_access_err => "rdma.write.wrong-rkey-rem-access-err",
    rdma_write_no_remote_write_rem_access_err => "rdma.write.no-remote-write-rem-access-err",
    rdma_read_no_remote_read_rem_access_err => "rdma.read.no-remote-read-rem-access-err",
    rdma_zero_length_rkey_not_checked => "rdma.zero-length.rkey-not-checked",
    rdma_read_local_without_local_write_loc_prot_err => "rdma.read.local-without-local-write-loc-prot-err",
    rdma_write_qp_access_denied => "rdma.write.qp-access-denied",
    srq_recv_shared_by_two_qps => "srq.recv.shared-by-two-qps",
    srq_create_bad_args_einval => "srq.create.bad-args-einval",
    srq_limit_event_once => "srq.limit.event-once",
    srq_post_full_enomem => "srq.post.full-enomem",
    srq_destroy_in_use_ebusy => "srq.destroy.in-use-ebusy",
    srq_qp_err_last_wqe_reached => "srq.qp-err.last-wqe-reached",
    events_idle_none => "events.idle.none",
    events_modify_err_no_fatal => "events.modify-err.no-fatal",
    events_access_err_owner_only => "events.access-err.owner-only",
    cm_listen_twice_eaddrinuse => "cm.listen.twice-eaddrinuse",
    cm_listen_foreign_addr_eaddrnotavail => "cm.listen.foreign-addr-eaddrnotavail",
    cm_listen_close_reuse => "cm.listen.close-reuse",
    cm_listen_wildcard => "cm.listen.wildcard",
    cm_connect_private_data_in_request => "cm.connect.private-data-in-request",
    cm_poll_queued_request => "cm.poll.queued-request",
    cm_connect_private_data_too_long_einval => "cm.connect.private-data-too-long-einval",
    cm_connect_qp_not_reset_einval => "cm.connect.qp-not-reset-einval",
    cm_connect_no_listener => "cm.connect.no-listener",
    cm_accept_private_data_established => "cm.accept.private-data-established",
    cm_accept_private_data_too_long_einval => "cm.accept.private-data-too-long-einval",
    cm_accept_twice_einval => "cm.accept.twice-einval",
    cm_established_qps_rts => "cm.established.qps-rts",
    cm_reject_private_data => "cm.reject.private-data",
    cm_disconnect_both_sides => "cm.disconnect.both-sides",
    cm_destroy_connected_disconnects => "cm.destroy.connected-disconnects",
    cm_destroy_qp_connected_ok => "cm.destroy-qp.connected-ok",
    cm_data_send_and_rdma => "cm.data.send-and-rdma",
    fault_link_down_up_events => "fault.link.down-up-events",
    fault_link_down_sends_retry_exc_err => "fault.link.down-sends-retry-exc-err",
    fault_qp_error_fatal_and_flush => "fault.qp-error.fatal-and-flush",
    fault_drop_connection_retry_exc_err => "fault.drop-connection.retry-exc-err",
    fault_drop_connection_retry_cnt_7_finite => "fault.drop-connection.retry-cnt-7-finite",
    fault_link_down_connect_unreachable => "fault.link.down-connect-unreachable",
    fault_delay_completes_later => "fault.delay.completes-later",
    determinism_same_seed_same_objects => "determinism.same-seed.same-objects",
}

#[test]
fn catalog_is_well_formed() {
    let cases = contract::cases();
    assert!(
        cases.len() >= 45,
        "only {} contract cases, expected at least 45",
        cases.len()
    );
    let mut ids = BTreeSet::new();
    for c in cases {
        assert!(
            harness::case::id_is_well_formed(&c.id),
            "malformed case id {:?}",
            c.id
        );
        assert!(
            c.id.starts_with(&format!("{}.", c.area)),
            "case {} is in area {:?}: ids start with their area",
            c.id,
            c.area
        );
        assert!(ids.insert(c.id.as_str()), "duplicate case id {}", c.id);
        assert!(
            !c.description.is_empty() && !c.description.contains('\n'),
            "case {} needs a one-line description",
            c.id
        );
        assert!(
            std::ptr::eq(contract::case(&c.id).unwrap(), c),
            "case({}) finds another case",
            c.id
        );
    }
    assert!(contract::case("no.such-case").is_none());
}

#[test]
fn catalog_is_listed() {
    let listed: BTreeSet<&str> = LISTED.iter().copied().collect();
    assert_eq!(
        listed.len(),
        LISTED.len(),
        "an id is listed twice in contract_tests!"
    );
    let catalog: BTreeSet<&str> = contract::cases().iter().map(|c| c.id.as_str()).collect();
    let missing: Vec<_> = catalog.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&catalog).collect();
    assert!(
        missing.is_empty(),
        "cases missing from contract_tests!: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "contract_tests! lists unknown cases: {unknown:?}"
    );
}

#[test]
fn sim_runs_are_deterministic() {
    let target = Target::Sim;
    let seed = seed();
    let mut differing = Vec::new();
    for c in contract::cases() {
        let first = run(&target, &c.id, seed);
        let second = run(&target, &c.id, seed);
        if first != second {
            let at = first.1.iter().zip(&second.1).position(|(x, y)| x != y);
            differing.push(format!(
                "{}: outcome {:?} vs {:?}; traces {} vs {} lines, first difference at {:?}: {:?} vs {:?}",
                c.id,
                first.0,
                second.0,
                first.1.len(),
                second.1.len(),
                at,
                at.map(|i| &first.1[i]),
                at.map(|i| &second.1[i]),
            ));
        }
    }
    assert!(
        differing.is_empty(),
        "{} cases observed different results with the same seed {seed:#x}:\n{}",
        differing.len(),
        differing.join("\n")
    );
}
