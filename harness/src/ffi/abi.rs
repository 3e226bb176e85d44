//! `#[repr(C)]` mirrors of `include/nvmf_offload.h`, field for field (the layout test
//! `harness/tests/plugin_abi_layout.rs` compiles the header and compares every size and
//! offset). Function pointers are `Option<unsafe extern "C" fn ..>` (nullable, pointer
//! sized); calling them is the business of [`super::bridge`].

use std::ffi::{c_char, c_int, c_void};

/// `NVMF_OFFLOAD_ABI_VERSION`.
pub const NVMF_OFFLOAD_ABI_VERSION: u32 = 2;
/// `NVMF_OFFLOAD_ABI_VERSION_MIN`: the oldest plugin ABI the host still loads.
pub const NVMF_OFFLOAD_ABI_VERSION_MIN: u32 = 1;
/// `NVMF_DEVICE_NAME_MAX`.
pub const NVMF_DEVICE_NAME_MAX: usize = 64;
/// `NVMF_MAX_GIDS`.
pub const NVMF_MAX_GIDS: usize = 4;
/// `NVMF_CM_PRIVATE_DATA_MAX`.
pub const NVMF_CM_PRIVATE_DATA_MAX: usize = 256;
/// `NVMF_MAX_LBA_DATA_SIZES`.
pub const NVMF_MAX_LBA_DATA_SIZES: usize = 32;

/// `NVMF_PORT_DOWN` (ibv_port_state).
pub const NVMF_PORT_DOWN: u8 = 1;
/// `NVMF_PORT_ACTIVE` (ibv_port_state).
pub const NVMF_PORT_ACTIVE: u8 = 4;

/// `enum nvmf_send_opcode`: SEND.
pub const NVMF_SEND: u32 = 0;
/// SEND with invalidate.
pub const NVMF_SEND_WITH_INV: u32 = 1;
/// RDMA WRITE.
pub const NVMF_RDMA_WRITE: u32 = 2;
/// RDMA READ.
pub const NVMF_RDMA_READ: u32 = 3;

/// `enum nvmf_wc_opcode`: SEND.
pub const NVMF_WC_SEND: u32 = 0;
/// RDMA WRITE.
pub const NVMF_WC_RDMA_WRITE: u32 = 1;
/// RDMA READ.
pub const NVMF_WC_RDMA_READ: u32 = 2;
/// RECV.
pub const NVMF_WC_RECV: u32 = 128;
/// `NVMF_WC_WITH_INV`: `invalidated_rkey` is valid.
pub const NVMF_WC_WITH_INV: u32 = 1;

/// `NVMF_QP_ATTR_PORT`.
pub const NVMF_QP_ATTR_PORT: u32 = 1 << 0;
/// `NVMF_QP_ATTR_ACCESS`.
pub const NVMF_QP_ATTR_ACCESS: u32 = 1 << 1;
/// `NVMF_QP_ATTR_DEST`.
pub const NVMF_QP_ATTR_DEST: u32 = 1 << 2;

/// `enum nvmf_event_type` values (ibv_event_type numbering, offload events from 0x100).
pub mod event {
    /// CQ_ERR.
    pub const CQ_ERR: u32 = 0;
    /// QP_FATAL.
    pub const QP_FATAL: u32 = 1;
    /// QP_REQ_ERR.
    pub const QP_REQ_ERR: u32 = 2;
    /// QP_ACCESS_ERR.
    pub const QP_ACCESS_ERR: u32 = 3;
    /// COMM_EST.
    pub const COMM_EST: u32 = 4;
    /// SQ_DRAINED.
    pub const SQ_DRAINED: u32 = 5;
    /// DEVICE_FATAL.
    pub const DEVICE_FATAL: u32 = 8;
    /// PORT_ACTIVE.
    pub const PORT_ACTIVE: u32 = 9;
    /// PORT_ERR.
    pub const PORT_ERR: u32 = 10;
    /// SRQ_ERR.
    pub const SRQ_ERR: u32 = 14;
    /// SRQ_LIMIT_REACHED.
    pub const SRQ_LIMIT_REACHED: u32 = 15;
    /// QP_LAST_WQE_REACHED.
    pub const QP_LAST_WQE_REACHED: u32 = 16;
    /// NVME_PCI_ERR (element: controller).
    pub const NVME_PCI_ERR: u32 = 0x100;
    /// NVME_TIMEOUT (element: controller).
    pub const NVME_TIMEOUT: u32 = 0x101;
    /// UNSUPPORTED_NVMF_OP (element: QP).
    pub const UNSUPPORTED_NVMF_OP: u32 = 0x102;
    /// QP_LAST_NVME_CQE_REACHED (element: QP).
    pub const QP_LAST_NVME_CQE_REACHED: u32 = 0x103;
}

/// `NVMF_EVENT_HAS_SQID`.
pub const NVMF_EVENT_HAS_SQID: u32 = 1 << 0;
/// `NVMF_EVENT_HAS_CID`.
pub const NVMF_EVENT_HAS_CID: u32 = 1 << 1;

/// `enum nvmf_cm_event_kind`: CONNECT_REQUEST.
pub const NVMF_CM_CONNECT_REQUEST: u32 = 0;
/// ESTABLISHED.
pub const NVMF_CM_ESTABLISHED: u32 = 1;
/// REJECTED.
pub const NVMF_CM_REJECTED: u32 = 2;
/// UNREACHABLE.
pub const NVMF_CM_UNREACHABLE: u32 = 3;
/// DISCONNECTED.
pub const NVMF_CM_DISCONNECTED: u32 = 4;

/// `NVMF_PCI_RUNNING`.
pub const NVMF_PCI_RUNNING: u32 = 0;
/// `NVMF_PCI_ERROR`.
pub const NVMF_PCI_ERROR: u32 = 1;
/// `NVMF_DOORBELLS_CALL` (enum nvmf_doorbell_mode).
pub const NVMF_DOORBELLS_CALL: u32 = 0;
/// `NVMF_DOORBELLS_MEMORY`.
pub const NVMF_DOORBELLS_MEMORY: u32 = 1;
/// `NVMF_PRP_WINDOW` (nvmf_backend_access.flags): the PRP window fields are valid.
pub const NVMF_PRP_WINDOW: u32 = 1 << 0;

/// `struct nvmf_device_attr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfDeviceAttr {
    pub name: [c_char; NVMF_DEVICE_NAME_MAX],
    pub phys_port_cnt: u8,
    pub reserved: [u8; 3],
    pub max_qp: u32,
    pub max_qp_wr: u32,
    pub max_sge: u32,
    pub max_cq: u32,
    pub max_cqe: u32,
    pub max_mr: u32,
    pub max_pd: u32,
    pub max_mr_size: u64,
    pub max_srq: u32,
    pub max_srq_wr: u32,
    pub max_qp_rd_atom: u32,
    pub reserved2: u32,
}

/// `struct nvmf_port_attr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfPortAttr {
    pub port: u8,
    pub state: u8,
    pub reserved: [u8; 2],
    pub active_mtu: u32,
    pub addr: [u8; 4],
    pub num_gids: u32,
    pub gids: [[u8; 16]; NVMF_MAX_GIDS],
}

/// `struct nvmf_mr_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfMrInfo {
    pub id: u32,
    pub lkey: u32,
    pub rkey: u32,
    pub access: u32,
    pub addr: u64,
    pub len: u64,
}

/// `struct nvmf_sge`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfSge {
    pub addr: u64,
    pub length: u32,
    pub lkey: u32,
}

/// `struct nvmf_send_wr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfSendWr {
    pub wr_id: u64,
    pub opcode: u32,
    pub signaled: u32,
    pub remote_addr: u64,
    pub rkey: u32,
    pub num_sge: u32,
    pub sg_list: *const NvmfSge,
}

/// `struct nvmf_recv_wr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfRecvWr {
    pub wr_id: u64,
    pub num_sge: u32,
    pub reserved: u32,
    pub sg_list: *const NvmfSge,
}

/// `struct nvmf_wc`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfWc {
    pub wr_id: u64,
    pub status: u32,
    pub opcode: u32,
    pub byte_len: u32,
    pub qp: u32,
    pub qp_num: u32,
    pub src_qp: u32,
    pub invalidated_rkey: u32,
    pub wc_flags: u32,
}

/// `struct nvmf_qp_cap`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfQpCap {
    pub max_send_wr: u32,
    pub max_recv_wr: u32,
    pub max_send_sge: u32,
    pub max_recv_sge: u32,
}

/// `struct nvmf_qp_init`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfQpInit {
    pub send_cq: u32,
    pub recv_cq: u32,
    pub srq: u32,
    pub has_srq: u32,
    pub cap: NvmfQpCap,
}

/// `struct nvmf_qp_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfQpInfo {
    pub id: u32,
    pub qpn: u32,
}

/// `struct nvmf_qp_attr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfQpAttr {
    pub state: u32,
    pub attr_mask: u32,
    pub access: u32,
    pub dest_qpn: u32,
    pub dest_gid: [u8; 16],
    pub port: u8,
    pub retry_cnt: u8,
    pub rnr_retry: u8,
    pub reserved: u8,
}

/// `struct nvmf_srq_init`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfSrqInit {
    pub max_wr: u32,
    pub max_sge: u32,
    pub srq_limit: u32,
}

/// `struct nvmf_srq_attr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfSrqAttr {
    pub max_wr: u32,
    pub posted: u32,
    pub srq_limit: u32,
}

/// `struct nvmf_async_event`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfAsyncEvent {
    pub r#type: u32,
    pub element: u32,
}

/// `struct nvmf_sockaddr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfSockaddr {
    pub family: u16,
    pub port: u16,
    pub reserved: u32,
    pub addr: [u8; 16],
}

/// `struct nvmf_conn_param`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfConnParam {
    pub private_data: *const u8,
    pub private_data_len: u32,
    pub responder_resources: u8,
    pub initiator_depth: u8,
    pub rnr_retry_count: u8,
    pub reserved: u8,
}

/// `struct nvmf_cm_event`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfCmEvent {
    pub conn: u32,
    pub kind: u32,
    pub listener: u32,
    pub status: u32,
    pub peer: NvmfSockaddr,
    pub responder_resources: u8,
    pub initiator_depth: u8,
    pub rnr_retry_count: u8,
    pub reserved: u8,
    pub private_data_len: u32,
    pub private_data: [u8; NVMF_CM_PRIVATE_DATA_MAX],
}

/// An `int (*)(void *ctx, ...)` returning 0 or a negative errno.
type Ctx = *mut c_void;

/// `struct nvmf_verbs_ops`: one verbs device.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfVerbsOps {
    pub query_device: Option<unsafe extern "C" fn(Ctx, *mut NvmfDeviceAttr) -> c_int>,
    pub query_port: Option<unsafe extern "C" fn(Ctx, u8, *mut NvmfPortAttr) -> c_int>,
    pub alloc_pd: Option<unsafe extern "C" fn(Ctx, *mut u32) -> c_int>,
    pub dealloc_pd: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub reg_mr: Option<unsafe extern "C" fn(Ctx, u32, u64, u32, *mut NvmfMrInfo) -> c_int>,
    pub dereg_mr: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub mr_write: Option<unsafe extern "C" fn(Ctx, u32, u64, *const c_void, usize) -> c_int>,
    pub mr_read: Option<unsafe extern "C" fn(Ctx, u32, u64, *mut c_void, usize) -> c_int>,
    pub create_cq: Option<unsafe extern "C" fn(Ctx, u32, *mut u32) -> c_int>,
    pub destroy_cq: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub poll_cq: Option<unsafe extern "C" fn(Ctx, u32, *mut NvmfWc, u32, *mut u32) -> c_int>,
    pub cq_ready: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub create_srq: Option<unsafe extern "C" fn(Ctx, u32, *const NvmfSrqInit, *mut u32) -> c_int>,
    pub arm_srq: Option<unsafe extern "C" fn(Ctx, u32, u32) -> c_int>,
    pub query_srq: Option<unsafe extern "C" fn(Ctx, u32, *mut NvmfSrqAttr) -> c_int>,
    pub destroy_srq: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub post_srq_recv: Option<unsafe extern "C" fn(Ctx, u32, *const NvmfRecvWr) -> c_int>,
    pub create_qp:
        Option<unsafe extern "C" fn(Ctx, u32, *const NvmfQpInit, *mut NvmfQpInfo) -> c_int>,
    pub modify_qp: Option<unsafe extern "C" fn(Ctx, u32, *const NvmfQpAttr) -> c_int>,
    pub query_qp: Option<unsafe extern "C" fn(Ctx, u32, *mut u32) -> c_int>,
    pub destroy_qp: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub post_send: Option<unsafe extern "C" fn(Ctx, u32, *const NvmfSendWr) -> c_int>,
    pub post_recv: Option<unsafe extern "C" fn(Ctx, u32, *const NvmfRecvWr) -> c_int>,
    pub poll_async_event: Option<unsafe extern "C" fn(Ctx, *mut NvmfAsyncEvent) -> c_int>,
    pub cm_listen: Option<unsafe extern "C" fn(Ctx, *const NvmfSockaddr, *mut u32) -> c_int>,
    pub cm_close_listener: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub cm_connect: Option<
        unsafe extern "C" fn(
            Ctx,
            *const NvmfSockaddr,
            u32,
            *const NvmfConnParam,
            *mut u32,
        ) -> c_int,
    >,
    pub cm_accept: Option<unsafe extern "C" fn(Ctx, u32, u32, *const NvmfConnParam) -> c_int>,
    pub cm_reject: Option<unsafe extern "C" fn(Ctx, u32, *const u8, u32) -> c_int>,
    pub cm_disconnect: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub cm_destroy: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub poll_cm_event: Option<unsafe extern "C" fn(Ctx, *mut NvmfCmEvent) -> c_int>,
    pub last_error: Option<unsafe extern "C" fn(Ctx) -> *const c_char>,
}

/// `struct nvmf_mr_sg` (address form).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct NvmfMrSg {
    pub mr: u32,
    pub reserved: u32,
    pub addr: u64,
    pub len: u64,
}

/// `struct nvmf_caps`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfCapsC {
    pub offload_type_dc: u32,
    pub offload_type_rc: u32,
    pub max_backend_ctrls_total: u32,
    pub max_srq_backend_ctrls: u32,
    pub max_srq_namespaces: u32,
    pub max_namespaces: u32,
    pub min_staging_buf_size: u64,
    pub max_staging_buf_size: u64,
    pub max_io_sz: u32,
    pub max_nvme_queue_depth: u32,
    pub min_nvme_queue_depth: u32,
    pub max_ioccsz: u32,
    pub min_ioccsz: u32,
    pub max_icdoff: u16,
    pub supports_non_offloaded_ops: u8,
    pub qp_last_nvme_cqe_reached: u8,
    pub min_cmd_timeout_us: u32,
    pub max_cmd_timeout_us: u32,
    pub max_frontend_nsid: u32,
    pub max_extra_sqs: u32,
    pub num_lba_data_sizes: u32,
    pub lba_data_sizes: [u32; NVMF_MAX_LBA_DATA_SIZES],
}

/// `struct nvmf_srq_attrs`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfSrqAttrsC {
    pub rq: NvmfSrqInit,
    pub offload_ops: u32,
    pub max_namespaces: u32,
    pub ioccsz: u32,
    pub max_io_sz: u32,
    pub nvme_queue_depth: u32,
    pub icdoff: u16,
    pub nvme_log_page_sz: u8,
    pub reserved: u8,
    pub staging_buf: NvmfMrSg,
}

/// `struct nvmf_srq`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfSrqC {
    pub handle: u32,
    pub srq: u32,
}

/// `struct nvmf_backend_sq`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfBackendSq {
    pub buf: NvmfMrSg,
    pub db: NvmfMrSg,
    pub db_ini: u16,
    pub reserved: [u16; 3],
}

/// `struct nvmf_nvme_ctrl_attrs`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfNvmeCtrlAttrsC {
    pub sq_buf: NvmfMrSg,
    pub cq_buf: NvmfMrSg,
    pub sqdb: NvmfMrSg,
    pub cqdb: NvmfMrSg,
    pub sqdb_ini: u16,
    pub cqdb_ini: u16,
    pub cmd_timeout_us: u32,
    pub comp_mask: u32,
    pub num_extra_sqs: u32,
    pub extra_sqs: *const NvmfBackendSq,
}

/// `struct nvmf_ns_mapping`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfNsMappingC {
    pub fe_nsid: u32,
    pub nvme_nsid: u32,
    pub lba_data_size: u32,
}

/// `struct nvmf_ns_counters`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfNsCountersC {
    pub read_cmds: u64,
    pub read_blocks: u64,
    pub write_cmds: u64,
    pub write_blocks: u64,
    pub write_inline_cmds: u64,
    pub write_inline_blocks: u64,
    pub flush_cmds: u64,
    pub error_cmds: u64,
    pub backend_error_cmds: u64,
}

/// `struct nvmf_srq_counters`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfSrqCountersC {
    pub unknown_ns_cmds: u64,
}

/// `struct nvmf_offload_event`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfOffloadEventC {
    pub r#type: u32,
    pub element: u32,
    pub flags: u32,
    pub sqid: u16,
    pub cid: u16,
    pub opcode: u8,
    pub reserved: [u8; 3],
}

/// `struct nvmf_offload_ops`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfOffloadOps {
    pub query_caps: Option<unsafe extern "C" fn(Ctx, *mut NvmfCapsC) -> c_int>,
    pub create_srq:
        Option<unsafe extern "C" fn(Ctx, u32, *const NvmfSrqAttrsC, *mut NvmfSrqC) -> c_int>,
    pub destroy_srq: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
    pub create_nvme_ctrl:
        Option<unsafe extern "C" fn(Ctx, u32, *const NvmfNvmeCtrlAttrsC, *mut u32) -> c_int>,
    pub remove_nvme_ctrl: Option<unsafe extern "C" fn(Ctx, u32, u32) -> c_int>,
    pub map_nsid: Option<unsafe extern "C" fn(Ctx, u32, *const NvmfNsMappingC) -> c_int>,
    pub unmap_nsid: Option<unsafe extern "C" fn(Ctx, u32, u32) -> c_int>,
    pub qp_set_nvmf: Option<unsafe extern "C" fn(Ctx, u32, u32) -> c_int>,
    pub ns_counters: Option<unsafe extern "C" fn(Ctx, u32, u32, *mut NvmfNsCountersC) -> c_int>,
    pub srq_counters: Option<unsafe extern "C" fn(Ctx, u32, *mut NvmfSrqCountersC) -> c_int>,
    pub poll_event: Option<unsafe extern "C" fn(Ctx, *mut NvmfOffloadEventC) -> c_int>,
    pub last_error: Option<unsafe extern "C" fn(Ctx) -> *const c_char>,
    // ABI 2
    pub backend_access: Option<unsafe extern "C" fn(Ctx, *mut NvmfBackendAccess) -> c_int>,
    pub inject_pci_error: Option<unsafe extern "C" fn(Ctx, u32) -> c_int>,
}

/// Bytes of an ABI 1 `struct nvmf_offload_ops` (the fields before `backend_access`).
pub const OFFLOAD_OPS_V1_LEN: usize = std::mem::offset_of!(NvmfOffloadOps, backend_access);

/// `struct nvmf_backend_access` (ABI 2).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfBackendAccess {
    pub doorbells: u32,
    pub flags: u32,
    pub prp_bus: u64,
    pub prp_va: u64,
    pub prp_len: u64,
}

/// `struct nvmf_pci_doorbells` (ABI 2).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfPciDoorbells {
    pub mode: u32,
    pub reserved: u32,
    pub regs: NvmfPciSpan,
}

/// `struct nvmf_pci_span`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfPciSpan {
    pub mr: u32,
    pub reserved: u32,
    pub offset: u64,
    pub len: u64,
}

/// `struct nvmf_pci_queue`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfPciQueue {
    pub ring: NvmfPciSpan,
    pub doorbell: NvmfPciSpan,
    pub initial: u16,
    pub reserved: [u16; 3],
}

/// `struct nvmf_pci_ctrl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfPciCtrl {
    pub id: u64,
    pub depth: u32,
    pub num_sqs: u32,
    pub cq: NvmfPciQueue,
}

/// `struct nvmf_pci_status`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct NvmfPciStatus {
    pub state: u32,
    pub reserved: u32,
    pub completions: u64,
}

/// `struct nvmf_pci_ops`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfPciOps {
    pub find: Option<unsafe extern "C" fn(Ctx, u32, u64, *mut NvmfPciCtrl) -> c_int>,
    pub sq_info: Option<unsafe extern "C" fn(Ctx, u64, u32, *mut NvmfPciQueue) -> c_int>,
    pub ring_sq: Option<unsafe extern "C" fn(Ctx, u64, u32, u16) -> c_int>,
    pub ring_cq: Option<unsafe extern "C" fn(Ctx, u64, u16) -> c_int>,
    pub status: Option<unsafe extern "C" fn(Ctx, u64, *mut NvmfPciStatus) -> c_int>,
    // ABI 2
    pub doorbells: Option<unsafe extern "C" fn(Ctx, u64, *mut NvmfPciDoorbells) -> c_int>,
}

/// Bytes of an ABI 1 `struct nvmf_pci_ops` (the fields before `doorbells`).
pub const PCI_OPS_V1_LEN: usize = std::mem::offset_of!(NvmfPciOps, doorbells);

/// `struct nvmf_host_env`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct NvmfHostEnv {
    pub abi_version: u32,
    pub reserved: u32,
    pub lower_ops: *const NvmfVerbsOps,
    pub lower_ctx: *mut c_void,
    pub pci_ops: *const NvmfPciOps,
    pub pci_ctx: *mut c_void,
    pub config: *const c_char,
}

/// `struct nvmf_offload_dev` (opaque).
#[repr(C)]
#[allow(missing_docs)]
pub struct NvmfOffloadDev {
    _private: [u8; 0],
}

/// `nvmf_offload_abi_version`.
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// `nvmf_offload_open`.
pub type OpenFn = unsafe extern "C" fn(*const NvmfHostEnv, *mut *mut NvmfOffloadDev) -> c_int;
/// `nvmf_offload_close`.
pub type CloseFn = unsafe extern "C" fn(*mut NvmfOffloadDev);
/// `nvmf_offload_verbs`.
pub type VerbsFn =
    unsafe extern "C" fn(*mut NvmfOffloadDev, *mut *const NvmfVerbsOps, *mut *mut c_void) -> c_int;
/// `nvmf_offload_get_ops`.
pub type GetOpsFn = unsafe extern "C" fn(
    *mut NvmfOffloadDev,
    *mut *const NvmfOffloadOps,
    *mut *mut c_void,
) -> c_int;
/// `nvmf_offload_progress`.
pub type ProgressFn = unsafe extern "C" fn(*mut NvmfOffloadDev, u64) -> c_int;
/// `nvmf_offload_open_error`.
pub type OpenErrorFn = unsafe extern "C" fn() -> *const c_char;
