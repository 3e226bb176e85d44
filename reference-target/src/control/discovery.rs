//! The discovery controller: what a host reaches by connecting an admin queue to the
//! well-known discovery NQN on any of the target's ports (NVMe-oF 1.1, "Discovery
//! Service"; `nvme discover` does exactly that).
//!
//! - Identify Controller (CNS 01h) answers CNTRLTYPE 2 (discovery), SUBNQN the discovery
//!   NQN, LPA bit 2 (extended Get Log Page data), no namespaces; other CNS → 0/02h.
//! - Get Log Page 70h is the discovery log: one entry per subsystem the connecting host
//!   may reach **through this port** (as Linux nvmet: a port lists its own subsystems),
//!   RDMA, reliable connected QPs, RDMA CM, dynamic controller, admin queue depth 32.
//! - Keep Alive, Asynchronous Event Requests (held), Get/Set Features KATO and Async Event
//!   Configuration are shared with I/O controllers (`control/admin.rs`); any other
//!   opcode → 0/01h. A discovery controller has no I/O queues.

use harness::wire::{
    DiscoveryEntryRepr, DiscoveryLogHeaderRepr, DiscoveryLogRepr, RdmaTsas, ADRFAM_IPV4,
    ADRFAM_IPV6, CMS_RDMA_CM, CNTLID_DYNAMIC, PRTYPE_NONE, QPTYPE_RC, SUBTYPE_NVME, TRTYPE_RDMA,
};

use super::identity::ADMIN_DEPTH_MAX;
use super::queue::Queue;
use crate::quirks::Quirk;

/// Generation counter of the discovery log: the ports and subsystems are fixed while the
/// target runs, so it never changes.
pub const GENCTR: u64 = 1;

/// Whether `hostnqn` may connect to the subsystem of port `port`.
fn host_allowed(q: &Queue, port: usize, hostnqn: &str) -> bool {
    let s = &q.sh.subs[q.sh.ports[port].sub].cfg;
    s.allow_any_host || q.sh.quirks.has(Quirk::AllowAnyHost) || s.hosts.iter().any(|h| h == hostnqn)
}

/// The discovery log as `hostnqn`, connected through `q`'s port, sees it.
pub(crate) fn log(q: &Queue, hostnqn: &str) -> DiscoveryLogRepr {
    let port = &q.sh.ports[q.port];
    let entries: Vec<DiscoveryEntryRepr> = if host_allowed(q, q.port, hostnqn) {
        vec![DiscoveryEntryRepr {
            trtype: TRTYPE_RDMA,
            adrfam: if port.addr.is_ipv4() {
                ADRFAM_IPV4
            } else {
                ADRFAM_IPV6
            },
            subtype: SUBTYPE_NVME,
            treq: 0,
            portid: q.port as u16 + 1,
            cntlid: CNTLID_DYNAMIC,
            asqsz: ADMIN_DEPTH_MAX as u16,
            eflags: 0,
            trsvcid: port.addr.port().to_string(),
            subnqn: q.sh.subs[port.sub].cfg.nqn.clone(),
            traddr: port.addr.ip().to_string(),
            rdma: Some(RdmaTsas {
                qptype: QPTYPE_RC,
                prtype: PRTYPE_NONE,
                cms: CMS_RDMA_CM,
                pkey: 0,
            }),
        }]
    } else {
        vec![]
    };
    DiscoveryLogRepr {
        header: DiscoveryLogHeaderRepr {
            genctr: GENCTR,
            numrec: entries.len() as u64,
            recfmt: 0,
        },
        entries,
    }
}
