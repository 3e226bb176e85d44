//! The requirements: each a rule the device (or the reference target's control plane)
//! must follow, with its source and whom it binds. Cases name the
//! requirement they check; `docs/requirements.md` is generated from this list and the
//! cases (`nvmf-conform requirements`), and a test fails when the committed file is stale.

use harness::runner::Subject;

/// One requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// Stable ID, e.g. `MAP-EEXIST-SHARED-SRQ`.
    pub id: &'static str,
    /// The rule, in one sentence.
    pub rule: &'static str,
    /// Where it comes from: the RFC thread, the shipped implementation, the NVMe-oF spec,
    /// or this project's decision where they are silent.
    pub source: &'static str,
    /// Whom it binds: the device under test, or the reference target's control plane
    /// (software running over the device: reports keep their findings apart).
    pub about: Subject,
}

const DEVICE: Subject = Subject::Device;
const CONTROL_PLANE: Subject = Subject::ControlPlane;

const RFC: &str = "RFC (seed thread)";
const SHIPPED: &str = "shipped implementation";
const RULE_BOOK: &str = "project decision (harness::api::check)";

/// Every requirement, grouped by area.
pub const REQUIREMENTS: &[Requirement] = &[
    // caps
    Requirement { id: "CAPS-CONSISTENT", about: DEVICE, rule: "query_device_ex reports caps with every minimum ≤ its maximum, per-SRQ limits ≤ device limits, and no unknown offload type bits", source: RFC },
    Requirement { id: "CAPS-IOCCSZ-SQE", about: DEVICE, rule: "min_ioccsz is at least 4 (one 64-byte SQE)", source: "NVMe-oF" },
    Requirement { id: "CAPS-LBA-SIZES", about: DEVICE, rule: "a device that offloads lists at least one supported LBA data size, none below 512", source: RFC },
    // srq
    Requirement { id: "SRQ-CREATE-VALID", about: DEVICE, rule: "create_srq with attributes inside the caps succeeds and destroy_srq of an idle SRQ succeeds", source: RFC },
    Requirement { id: "SRQ-ATTR-BOUNDS", about: DEVICE, rule: "create_srq accepts every attribute at its caps bound and fails with EINVAL one step outside it", source: RFC },
    Requirement { id: "SRQ-STAGING", about: DEVICE, rule: "create_srq fails with EINVAL when the staging buffer is not a registered, locally writable region that contains it", source: RFC },
    Requirement { id: "SRQ-OFFLOAD-OPS", about: DEVICE, rule: "create_srq fails with EINVAL for empty or unknown offload ops, or ops the caps do not allow", source: SHIPPED },
    Requirement { id: "SRQ-DESTROY-BUSY", about: DEVICE, rule: "destroy_srq fails with EBUSY while backend controllers or QPs exist on the SRQ, through the offload API and through the device context's ibv_destroy_srq", source: RULE_BOOK },
    Requirement { id: "SRQ-LIMIT-DEVICE", about: DEVICE, rule: "the device's max_srq NVMe-oF SRQs can exist at once; one more fails with ENOMEM, and destroying one makes room again", source: SHIPPED },
    Requirement { id: "SRQ-UNKNOWN", about: DEVICE, rule: "calls naming an SRQ that is not a live NVMe-oF SRQ fail with EINVAL", source: SHIPPED },
    Requirement { id: "SRQ-QP-EVENTS", about: DEVICE, rule: "a QP of an NVMe-oF SRQ that goes to error is reported to software on the device's context: QP_FATAL naming the QP, then LAST_WQE_REACHED for it (two-phase teardown)", source: RFC },
    // ctrl
    Requirement { id: "CTRL-CREATE-REMOVE", about: DEVICE, rule: "create_nvme_ctrl with valid queues succeeds and remove_nvme_ctrl of a controller without namespaces succeeds", source: RFC },
    Requirement { id: "CTRL-REMOVE-BUSY", about: DEVICE, rule: "remove_nvme_ctrl fails with EBUSY while namespaces are mapped on the controller", source: SHIPPED },
    Requirement { id: "CTRL-OTHER-SRQ", about: DEVICE, rule: "remove_nvme_ctrl with a controller of another SRQ fails with EINVAL", source: RULE_BOOK },
    Requirement { id: "CTRL-LIMIT-SRQ", about: DEVICE, rule: "max_srq_backend_ctrls controllers can be created on one SRQ; one more fails with ENOSPC", source: RULE_BOOK },
    Requirement { id: "CTRL-LIMIT-TOTAL", about: DEVICE, rule: "max_backend_ctrls_total controllers can be created on the device; one more fails with ENOMEM", source: RULE_BOOK },
    Requirement { id: "CTRL-ATTR-BOUNDS", about: DEVICE, rule: "create_nvme_ctrl fails with EINVAL for rings shorter than the queue depth, doorbells that are not 4 aligned bytes, initial doorbell values not below the depth, timeouts outside the caps, or more extra SQs than max_extra_sqs", source: RFC },
    // mapping
    Requirement { id: "MAP-OK", about: DEVICE, rule: "map_nsid of a free fe_nsid with a supported LBA data size succeeds, and unmap_nsid of it succeeds", source: RFC },
    Requirement { id: "MAP-EEXIST", about: DEVICE, rule: "map_nsid of an fe_nsid already mapped on the same controller fails with EEXIST", source: RFC },
    Requirement { id: "MAP-EEXIST-SHARED-SRQ", about: DEVICE, rule: "map_nsid of an fe_nsid mapped on another controller of the same SRQ fails with EEXIST: controllers of one SRQ share one number space", source: RFC },
    Requirement { id: "MAP-OTHER-SRQ-INDEPENDENT", about: DEVICE, rule: "an fe_nsid mapped on one SRQ can be mapped on another SRQ", source: RFC },
    Requirement { id: "MAP-ENOENT", about: DEVICE, rule: "unmap_nsid of an fe_nsid not mapped on that controller fails with ENOENT", source: RFC },
    Requirement { id: "MAP-LBA-SIZE", about: DEVICE, rule: "map_nsid succeeds for every LBA data size the caps list and fails with ENOTSUP for any other", source: RFC },
    Requirement { id: "MAP-EINVAL-NSID", about: DEVICE, rule: "map_nsid fails with EINVAL for fe_nsid 0, 0xFFFFFFFF, above max_frontend_nsid, or nvme_nsid 0 / 0xFFFFFFFF", source: RULE_BOOK },
    Requirement { id: "MAP-LIMIT-SRQ", about: DEVICE, rule: "the SRQ's max_namespaces mappings succeed; one more fails with ENOSPC", source: RULE_BOOK },
    Requirement { id: "MAP-LIMIT-TOTAL", about: DEVICE, rule: "max_namespaces mappings succeed on the device; one more fails with ENOMEM", source: RULE_BOOK },
    Requirement { id: "MAP-UNMAP-STOPS-OFFLOAD", about: DEVICE, rule: "after unmap_nsid the device no longer serves I/O to that nsid: it goes to software (which answers Invalid Namespace)", source: RFC },
    Requirement { id: "MAP-UNKNOWN-CTRL", about: DEVICE, rule: "map_nsid and unmap_nsid naming no live controller fail with EINVAL", source: SHIPPED },
    // datapath
    Requirement { id: "DP-OFFLOAD-RW", about: DEVICE, rule: "on a QP with offload enabled, writes and reads of a mapped namespace with keyed SGLs are served by the device: data read back equals data written, no capsule reaches software, the namespace counters count them", source: RFC },
    Requirement { id: "DP-SEND-INV", about: DEVICE, rule: "a command with a keyed SGL with invalidate (0x4F) is answered with SEND with invalidate of the host's key", source: "NVMe-oF RDMA" },
    Requirement { id: "DP-IN-CAPSULE", about: DEVICE, rule: "a write with in-capsule data within the SRQ's IOCCSZ is offloaded", source: RFC },
    Requirement { id: "DP-IN-CAPSULE-LINUX", about: DEVICE, rule: "an in-capsule write whose Data Block descriptor has nonzero reserved bytes 14:12 is served: Linux nvme-rdma leaves an earlier key there and Linux nvmet ignores them", source: "Linux nvme-rdma / nvmet (interoperability)" },
    Requirement { id: "DP-BACKEND-RINGS", about: DEVICE, rule: "the device submits to the extra SQs of a backend controller as to its first, and starts every backend ring at the initial doorbell value it was given (sqdb_ini, each extra SQ's, cqdb_ini), through any number of wraps", source: RFC },
    Requirement { id: "DP-OFFLOAD-FLUSH", about: DEVICE, rule: "a flush on an SRQ offloading flush is served by the device and counted", source: RFC },
    Requirement { id: "DP-OFFLOAD-WZ", about: DEVICE, rule: "a write zeroes on an SRQ offloading it leaves the blocks reading as zeroes", source: RFC },
    Requirement { id: "DP-OFFLOAD-DSM", about: DEVICE, rule: "a dataset management deallocate on an SRQ offloading it leaves the range reading as zeroes", source: RFC },
    Requirement { id: "DP-MAX-IO", about: DEVICE, rule: "a command of exactly max_io_sz is offloaded; one block more is not (software receives it)", source: SHIPPED },
    Requirement { id: "DP-QUEUE-DEPTH", about: DEVICE, rule: "a full queue of commands in flight is answered, every one", source: RFC },
    Requirement { id: "DP-STAGING", about: DEVICE, rule: "when offloaded commands in flight need more staging space than the buffer has, they wait for it: every one completes with its own data", source: RFC },
    Requirement { id: "DP-STAGING-BOUNDS", about: DEVICE, rule: "the device stages data only inside the staging buffer it was given, wherever that lies in its memory region: offloaded I/O keeps its data, and the region's bytes around the buffer are never written", source: RULE_BOOK },
    Requirement { id: "DP-QUEUE-WRAP", about: DEVICE, rule: "offloaded commands keep being served after the backend queues wrap (phase tags followed)", source: "NVMe" },
    Requirement { id: "DP-ACK-AFTER-BACKEND", about: DEVICE, rule: "an offloaded write is acknowledged with success only after the backend completed it", source: RULE_BOOK },
    Requirement { id: "DP-BACKEND-STATUS", about: DEVICE, rule: "an offloaded command the backend completes with an error is answered with that status unchanged (status code type, status code, DNR) and, for a read, no data; no event is raised (the controller did not fail) and the queue keeps serving", source: RULE_BOOK },
    Requirement { id: "DP-ERROR-COUNTED", about: DEVICE, rule: "every offloaded command answered with an error is counted in its namespace's error commands, and in its backend-error commands when its backend failed it, timed out or failed; no other counter moves for it but the served commands and blocks of its kind", source: RFC },
    Requirement { id: "DP-RESPONSE", about: DEVICE, rule: "every response carries its command's CID, the queue's QID as SQ Identifier, an SQ Head Pointer inside the queue and past the command's own capsule, and Phase Tag 0, on both the offloaded and the software path", source: "NVMe-oF" },
    Requirement { id: "DP-QP-TEARDOWN", about: DEVICE, rule: "destroying a QP with offloaded commands in flight gives back what the device held for them (staging, response buffers), and the SRQ's other QPs keep being served, their commands in flight included", source: "verbs (ibv_destroy_qp releases what the QP held)" },
    Requirement { id: "DP-BACKEND-ONCE", about: DEVICE, rule: "each offloaded command reaches its backend controller once: the controller fetches one command per offloaded I/O (none duplicated, none resubmitted after an error or a timeout), and the device never rings a backend doorbell past the queue's end", source: RULE_BOOK },
    Requirement { id: "DP-ANSWERED", about: DEVICE, rule: "every command the host sends on an offloaded queue is answered: none is dropped", source: "NVMe-oF" },
    // software path
    Requirement { id: "SW-NOT-ENABLED", about: DEVICE, rule: "on a QP of an NVMe-oF SRQ without offload enabled, every capsule reaches software as an SRQ receive, byte for byte", source: RFC },
    Requirement { id: "SW-SRQ-LIMIT", about: DEVICE, rule: "software's receives on an NVMe-oF SRQ honour its limit: armed, the SRQ raises SRQ_LIMIT_REACHED naming it once when they fall below the limit", source: "verbs (ibv_modify_srq)" },
    Requirement { id: "SW-SRQ-VERBS", about: DEVICE, rule: "software's verbs on an NVMe-oF SRQ keep the rules of any SRQ: max_wr and max_sge bound its receives (ENOMEM, EINVAL) and query_srq counts them, a limit above max_wr is EINVAL, a QP on it may ask for up to max_qp_wr send requests (EINVAL above), and a receive too small for its capsule completes with LOC_LEN_ERR and moves the QP to ERR", source: "verbs (ibv_post_srq_recv, ibv_modify_srq, ibv_query_srq, ibv_create_qp)" },
    Requirement { id: "SW-NOT-OFFLOADED", about: DEVICE, rule: "with non-offloaded ops supported, a capsule the device does not offload (op, nsid, SGL, length, malformed) reaches software as an SRQ receive on its QP", source: RFC },
    // unsupported
    Requirement { id: "UNSUP-EVENT", about: DEVICE, rule: "without non-offloaded op support, a capsule the device cannot serve on an offloaded QP raises UNSUPPORTED_NVMF_OP with the QP and opcode, and the QP goes to error", source: RFC },
    Requirement { id: "UNSUP-ISOLATED", about: DEVICE, rule: "a QP put in error by an unsupported op does not affect the other QPs of its SRQ", source: RULE_BOOK },
    // pci-error, timeout
    Requirement { id: "PCI-EVENT", about: DEVICE, rule: "a backend controller PCI error raises NVME_PCI_ERR naming that controller", source: RFC },
    Requirement { id: "PCI-INFLIGHT-ANSWERED", about: DEVICE, rule: "every command in flight on, or later sent to, a controller that hit a PCI error is answered with an error status: none is dropped, and one sent later is answered at once, not after the command timeout", source: RULE_BOOK },
    Requirement { id: "PCI-ISOLATED", about: DEVICE, rule: "a PCI error on one controller leaves the other controllers of the SRQ serving", source: RULE_BOOK },
    Requirement { id: "PCI-NO-ACKED-WRITE-LOST", about: DEVICE, rule: "a write acknowledged with success before a PCI error is on the media: it reads back once the namespace is served again", source: RULE_BOOK },
    Requirement { id: "PCI-RECOVER", about: DEVICE, rule: "after software removes the failed controller and creates a new one, I/O to its namespaces works", source: SHIPPED },
    Requirement { id: "TMO-EVENT", about: DEVICE, rule: "a backend command not completed within the controller's timeout raises NVME_TIMEOUT naming the controller, and the command is answered with an error", source: RFC },
    Requirement { id: "TMO-ANSWERED", about: DEVICE, rule: "a stuck command is not answered before the controller's command timeout", source: RULE_BOOK },
    Requirement { id: "TMO-RECOVER", about: DEVICE, rule: "a command that completes after its timeout is answered only once, and the queue keeps serving", source: RULE_BOOK },
    // recovery (the control plane)
    Requirement { id: "RCV-PCI-OFFLINE", about: CONTROL_PLANE, rule: "after NVME_PCI_ERR the target stops offloading to the failed controller: I/O to its namespaces is answered Namespace Not Ready (0/82h, DNR) by software, none dropped", source: SHIPPED },
    Requirement { id: "RCV-TIMEOUT-RECREATE", about: CONTROL_PLANE, rule: "after NVME_TIMEOUT the target re-creates the backend controller: the stuck command is answered with an error and the namespace serves again, its data kept", source: SHIPPED },
    // connect
    Requirement { id: "CONN-BEFORE-CONNECT", about: DEVICE, rule: "a capsule on a queue that has not completed its Fabrics Connect is not served by the device: software answers Command Sequence Error (0/0Ch, DNR) and nothing reaches the backend", source: SHIPPED },
    Requirement { id: "CONN-OFFLOAD-AFTER-CONNECT", about: DEVICE, rule: "offload is enabled on an I/O queue while its Connect is processed: from its Connect response on, its I/O is served by the device", source: SHIPPED },
    Requirement { id: "CONN-ADMIN-NOT-OFFLOADED", about: DEVICE, rule: "the admin queue is never offloaded: NVM I/O capsules on it are answered by software, as the admin commands their opcodes name, and the device serves none", source: SHIPPED },
    Requirement { id: "CONN-SUCCESS", about: CONTROL_PLANE, rule: "a good admin Connect returns a new controller ID (not FFFFh) in DW0; a good I/O Connect returns its controller's ID", source: "NVMe-oF" },
    Requirement { id: "CONN-CNTLID", about: CONTROL_PLANE, rule: "the reference target hands out the controller IDs of a subsystem's configured range (cntlid_min..=cntlid_max) in turn, wrapping; with every ID in use an admin Connect is Controller Busy (1/81h, DNR) and makes no controller", source: "NVMe-oF (Controller Busy), project decision (docs/target.md: the ID range and order)" },
    Requirement { id: "CONN-DATA-IN-CAPSULE", about: CONTROL_PLANE, rule: "a Connect may carry its 1024 bytes of Connect data in the capsule (SGL 01h) as well as through a keyed SGL; in-capsule Connect data of any other length is Data SGL Length Invalid (0/0Fh, DNR)", source: "NVMe-oF" },
    Requirement { id: "CONN-RECFMT", about: CONTROL_PLANE, rule: "a Connect with RECFMT other than 0 is answered Incompatible Format (1/80h, DNR)", source: "NVMe-oF" },
    Requirement { id: "CONN-ADMIN-CNTLID", about: CONTROL_PLANE, rule: "an admin Connect whose CNTLID is not FFFFh is answered Connect Invalid Parameters (1/82h) with IPO of CNTLID in the Connect data", source: "NVMe-oF" },
    Requirement { id: "CONN-SUBNQN", about: CONTROL_PLANE, rule: "a Connect naming a subsystem the port does not serve is answered Connect Invalid Parameters with IPO of SUBNQN in the Connect data", source: "NVMe-oF" },
    Requirement { id: "CONN-HOST", about: CONTROL_PLANE, rule: "an admin Connect from a host the subsystem does not allow is answered Connect Invalid Host (1/84h, DNR)", source: "NVMe-oF" },
    Requirement { id: "CONN-SQSIZE", about: CONTROL_PLANE, rule: "a Connect with SQSIZE 0, above 31 on the admin queue, or above CAP.MQES on an I/O queue is answered Connect Invalid Parameters with IPO of SQSIZE", source: "NVMe-oF" },
    Requirement { id: "CONN-TWICE", about: CONTROL_PLANE, rule: "a Connect on a queue already connected, or for an I/O QID already connected, is answered Command Sequence Error (0/0Ch, DNR)", source: "NVMe-oF" },
    Requirement { id: "CONN-IO-CNTLID", about: CONTROL_PLANE, rule: "an I/O Connect naming no controller of that host is answered Connect Invalid Parameters with IPO of CNTLID in the Connect data", source: "NVMe-oF" },
    Requirement { id: "CONN-IO-QID", about: CONTROL_PLANE, rule: "an I/O Connect whose QID is above the granted queue count or differs from its CM request's QID is answered Connect Invalid Parameters with IPO of QID", source: "project decision (docs/target.md)" },
    Requirement { id: "CONN-IO-NOT-ENABLED", about: CONTROL_PLANE, rule: "an I/O Connect to a controller not enabled (CSTS.RDY 0) is answered Command Sequence Error (0/0Ch, DNR)", source: "project decision (docs/target.md)" },
    Requirement { id: "CONN-CM-REQUEST", about: CONTROL_PLANE, rule: "an RDMA CM request is rejected with the NVMe-oF status of its first bad field: length 01h, RECFMT 02h, QID 03h, HSQSIZE 04h, HRQSIZE 05h", source: "NVMe-oF RDMA" },
    Requirement { id: "CONN-KATO", about: CONTROL_PLANE, rule: "a controller that receives no Keep Alive within KATO is torn down (queues disconnected, controller forgotten), and not while Keep Alives arrive in time", source: "NVMe-oF" },
    // admin
    Requirement { id: "ADM-IDENTIFY-CTRL", about: CONTROL_PLANE, rule: "Identify Controller (CNS 01h) of an I/O controller reports the connected CNTLID, CNTRLTYPE 1, VER 1.3, SQES 66h and CQES 44h, MAXCMD the queue depth, NN the highest nsid, IOCCSZ / IORCSZ / ICDOFF of the offloaded capsules, MDTS the subsystem's maximum data transfer size, keyed SGLs, AERL, KAS and the subsystem NQN", source: "NVMe base, NVMe-oF" },
    Requirement { id: "ADM-IDENTIFY-NS", about: CONTROL_PLANE, rule: "Identify Namespace (CNS 00h) reports the namespace's size, capacity and use in blocks, its LBA format (data and metadata size, FLBAS, MC), NMIC and an NGUID; an nsid the subsystem lacks is Invalid Namespace (0/0Bh, DNR)", source: "NVMe NVM command set" },
    Requirement { id: "ADM-NS-LIST", about: CONTROL_PLANE, rule: "the Active Namespace ID list (CNS 02h) lists the nsids above the one given, ascending, then zeroes; FFFFFFFEh and FFFFFFFFh are Invalid Namespace (0/0Bh, DNR)", source: "NVMe base" },
    Requirement { id: "ADM-NS-IDS", about: CONTROL_PLANE, rule: "the Namespace Identification Descriptors (CNS 03h) hold an NGUID equal to Identify Namespace's and an RFC 9562 UUID, stable across reads and unique per namespace", source: "NVMe base" },
    Requirement { id: "ADM-PROPERTIES", about: CONTROL_PLANE, rule: "Property Get returns CAP (8 bytes), VS, CC as last written and CSTS; CC.EN 0→1 sets CSTS.RDY, 1→0 clears CSTS, CC.SHN sets CSTS.SHST complete; any other offset or size is Invalid Field (0/02h, DNR) and changes nothing", source: "NVMe-oF" },
    Requirement { id: "ADM-ENABLED", about: CONTROL_PLANE, rule: "admin commands other than Fabrics commands are Command Sequence Error (0/0Ch, DNR) while CSTS.RDY is 0, and are served once it is 1", source: "Linux nvmet (interoperability)" },
    Requirement { id: "ADM-FEATURES", about: CONTROL_PLANE, rule: "Number of Queues grants min(NSQR, NCQR) + 1, at most the target's maximum, refuses FFFFh and reads back the grant; Asynchronous Event Configuration reads back what was set; Keep Alive Timer reads the KATO of Connect; a Set Features with SV is Feature Identifier Not Saveable (1/0Dh, DNR); unknown and PCIe-only features are Invalid Field (0/02h, DNR)", source: "NVMe base" },
    Requirement { id: "ADM-FEATURES-MANDATORY", about: CONTROL_PLANE, rule: "every feature the spec makes mandatory for an I/O controller answers Get Features and keeps what Set Features gives it, consistent with Identify (Volatile Write Cache enabled when VWC reports one; no power state above NPSS); a value outside what the controller supports is Invalid Field (0/02h, DNR) and changes nothing", source: "NVMe base" },
    Requirement { id: "ADM-FEATURES-KATO", about: CONTROL_PLANE, rule: "Set Features Keep Alive Timer changes KATO (rounded up to the KAS granularity, read back by Get Features) and restarts the timer: a controller then gets no Keep Alive within the new KATO is torn down, one whose KATO is set to 0 is never", source: "NVMe-oF" },
    Requirement { id: "ADM-NS-IDS-CONFIG", about: CONTROL_PLANE, rule: "a namespace reports the UUID, NGUID and EUI-64 its configuration gives it, in Identify Namespace and in the Namespace Identification Descriptor list (NIDT ascending); without them, its derived NGUID and UUID and no EUI-64", source: "NVMe base" },
    Requirement { id: "ADM-LOG-PAGES", about: CONTROL_PLANE, rule: "Get Log Page returns the Error Information, SMART / Health and Firmware Slot logs from any dword-aligned offset within them, zeroes past their end; a misaligned or too large offset, a length above the data buffer or another log is Invalid Field (0/02h, DNR)", source: "NVMe base" },
    Requirement { id: "ADM-AER", about: CONTROL_PLANE, rule: "up to AERL + 1 Asynchronous Event Requests are held until an event; one more is Asynchronous Event Request Limit Exceeded (1/05h, DNR)", source: "NVMe base" },
    Requirement { id: "ADM-INVALID", about: CONTROL_PLANE, rule: "an admin opcode or Fabrics command type the target lacks is Invalid Opcode (0/01h, DNR), an Identify CNS it lacks Invalid Field, Identify data into a buffer that is not 4096 bytes Data SGL Length Invalid (0/0Fh, DNR), in the capsule Invalid Field", source: "NVMe base, NVMe-oF" },
    Requirement { id: "ADM-DISCOVERY-CTRL", about: CONTROL_PLANE, rule: "the discovery controller identifies as CNTRLTYPE 2 with the discovery NQN and extended log page data, has no namespaces, queues or I/O logs (Invalid Field, DNR), and keeps KATO and Asynchronous Event Configuration", source: "NVMe-oF" },
    // target-io
    Requirement { id: "TIO-DATA", about: CONTROL_PLANE, rule: "I/O the target serves in software (not offloaded) gives the device's answers: keyed and in-capsule reads and writes, SEND with invalidate for 4Fh, Write Zeroes of NLB + 1 blocks, Dataset Management (Deallocate zeroes its ranges), Flush of one and of every namespace", source: "NVMe NVM command set, NVMe-oF RDMA" },
    Requirement { id: "TIO-ERRORS", about: CONTROL_PLANE, rule: "I/O the target serves in software that cannot be served is refused with the status the NVMe specifications give it and DNR, and writes nothing", source: "NVMe base, NVMe-oF" },
    Requirement { id: "TIO-MDTS", about: CONTROL_PLANE, rule: "a subsystem's maximum data transfer size (mdts, 1 MiB by default) is what Identify Controller's MDTS reports and what the target serves: a read or write of exactly that size is served whole, in software above the device's max_io_sz when the device hands such commands to software; one block more is Invalid Field in Command (0/02h) with DNR and moves no data", source: "NVMe base (MDTS)" },
    Requirement { id: "TIO-MEDIA-ERROR", about: CONTROL_PLANE, rule: "a software read over a bad block of the backend is Unrecovered Read Error (2/81h) without DNR and moves no data", source: "NVMe NVM command set" },
    // security
    Requirement { id: "SEC-DISCOVERY", about: CONTROL_PLANE, rule: "the discovery log page (70h) lists, for a host the port's subsystem allows, that subsystem with the port's transport address, service ID, RDMA TSAS and dynamic CNTLID; for a host it does not allow, nothing; GENCTR holds while the configuration does not change", source: "NVMe-oF" },
    Requirement { id: "SEC-HOST-ALLOWLIST", about: CONTROL_PLANE, rule: "a host not in the subsystem's allow-list gets no controller (Connect Invalid Host)", source: "NVMe-oF" },
    Requirement { id: "SEC-CTRL-HOST-BOUND", about: CONTROL_PLANE, rule: "an I/O queue can only join a controller of the same host NQN", source: "NVMe-oF" },
    Requirement { id: "SEC-PORT-SUBSYSTEM", about: CONTROL_PLANE, rule: "a port serves only its own subsystem (its NVMe-oF SRQ): a Connect naming another subsystem is refused", source: "project decision (docs/target.md)" },
    Requirement { id: "SEC-RKEY", about: DEVICE, rule: "a keyed SGL naming memory the host did not open to that connection (another PD's key, past the region) fails at the host's NIC: the command never completes with success, a write writes nothing, other queues keep serving", source: "RDMA (IB spec remote access checks)" },
    Requirement { id: "SEC-NS-ISOLATION", about: DEVICE, rule: "I/O on a queue of one subsystem to an nsid only another subsystem has is answered Invalid Namespace (0/0Bh) and never served from the other subsystem's backend", source: RFC },
];

/// The requirement with this ID.
pub fn requirement(id: &str) -> Option<&'static Requirement> {
    REQUIREMENTS.iter().find(|r| r.id == id)
}

/// `docs/requirements.md`: every requirement with its rule, source and the cases that
/// check it (generated; `nvmf-conform requirements > docs/requirements.md`).
pub fn markdown() -> String {
    use std::fmt::Write;
    let cases = crate::areas::cases();
    let mut s = String::from(
        "# Requirements\n\n\
         Generated by `nvmf-conform requirements` from the case metadata \
         (`suites/src/framework/requirements.rs` and `suites/src/areas/`); a test fails when this \
         file is out of date. Each requirement is a rule that the device under test must \
         follow (`device`), or that the reference target's own control plane, software \
         running over the device, must follow (`control-plane`: reports keep those findings \
         apart, so that a vendor knows which are about the device); the cases listed check \
         it.\n\n\
         | requirement | binds | rule | source | cases |\n|---|---|---|---|---|\n",
    );
    for r in REQUIREMENTS {
        let ids: Vec<String> = cases
            .iter()
            .filter(|c| c.requirement == Some(r.id))
            .map(|c| format!("`{}`", c.id))
            .collect();
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} |",
            r.id,
            r.about.name(),
            r.rule.replace('|', "\\|"),
            r.source,
            ids.join("<br>")
        );
    }
    let _ = writeln!(
        s,
        "\n{} requirements, {} cases.",
        REQUIREMENTS.len(),
        cases.len()
    );
    s
}
