/*
 * nvmf_offload.h — the nvmf-conform vendor plugin ABI.
 *
 * A plugin is a shared library that IS the device under test: nvmf-conform gives it the
 * host's lower verbs device and the host's PCI side (backend NVMe controllers), and the
 * plugin returns the verbs device software must use plus the NVMe-oF target offload
 * operations of the RFC ("ibv_create_srq_ex with NVMe-oF attributes",
 * "ibv_srq_create_nvme_ctrl", "ibv_map_nvmf_nsid", "ibv_qp_set_nvmf", ...).
 *
 *   nvmf-conform run --target plugin:/path/to/libvendor_nvmf.so
 *
 * Conventions
 *  - Every call returns 0 or a negative errno (-EINVAL, -EEXIST, -ENOENT, -EOPNOTSUPP
 *    (= -ENOTSUP on Linux), -EBUSY, -ENOMEM, -ENOSPC, ...), as the RFC's man pages state.
 *    "poll" calls return -EAGAIN when there is nothing to take.
 *  - After a failing call, last_error(ctx) may give a short fixed text naming the field or
 *    rule (NULL or "" if none); the pointer stays valid until the next call on that ctx.
 *  - Handles (PD, MR, CQ, SRQ, QP, listener, CM id, NVMe-oF SRQ, controller) are uint32_t,
 *    valid only on the context that made them.
 *  - Everything is synchronous and single-threaded: the host never calls two functions of
 *    one plugin at the same time, but a plugin's call into the host may call back into the
 *    plugin (re-entrancy on a different function: never hold a lock across a host call).
 *  - Time: the host owns the clock. It calls nvmf_offload_progress(dev, now_ns) every
 *    millisecond of its (possibly virtual) time; the plugin does its background work
 *    (completion routing, timeouts...) there and only there. Waits are polls.
 *  - Memory references use the address form of ibv_mr_sg: {mr, addr, len} where addr is
 *    the virtual address of the first byte inside region mr (as in an SGE).
 *  - Numbering: completion statuses follow enum ibv_wc_status, async events enum
 *    ibv_event_type, QP states enum ibv_qp_state, access flags enum ibv_access_flags.
 */
#ifndef NVMF_OFFLOAD_H
#define NVMF_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Bumped on every change; nvmf_offload_abi_version() returns the version the plugin was
 * built for. The host loads plugins from NVMF_OFFLOAD_ABI_VERSION_MIN up to its own version
 * and passes the version it speaks to that plugin in nvmf_host_env.abi_version (the
 * plugin's own). Version 2 only appends: struct nvmf_backend_access and two entries at the
 * end of struct nvmf_offload_ops (read only from a version-2 plugin), struct
 * nvmf_pci_doorbells and one entry at the end of struct nvmf_pci_ops (given only to a
 * version-2 plugin). A version-1 plugin runs as before, its doorbells rung by calls.
 */
#define NVMF_OFFLOAD_ABI_VERSION 2
#define NVMF_OFFLOAD_ABI_VERSION_MIN 1

#define NVMF_DEVICE_NAME_MAX 64
#define NVMF_MAX_GIDS 4
#define NVMF_CM_PRIVATE_DATA_MAX 256
#define NVMF_MAX_LBA_DATA_SIZES 32

/* ------------------------------------------------------------------ verbs ---- */

struct nvmf_device_attr {
	char name[NVMF_DEVICE_NAME_MAX]; /* NUL-terminated */
	uint8_t phys_port_cnt;
	uint8_t reserved[3];
	uint32_t max_qp;
	uint32_t max_qp_wr;
	uint32_t max_sge;
	uint32_t max_cq;
	uint32_t max_cqe;
	uint32_t max_mr;
	uint32_t max_pd;
	uint64_t max_mr_size;
	uint32_t max_srq;
	uint32_t max_srq_wr;
	uint32_t max_qp_rd_atom;
	uint32_t reserved2;
};

enum nvmf_port_state { NVMF_PORT_DOWN = 1, NVMF_PORT_ACTIVE = 4 }; /* ibv_port_state */

struct nvmf_port_attr {
	uint8_t port;
	uint8_t state;          /* enum nvmf_port_state */
	uint8_t reserved[2];
	uint32_t active_mtu;    /* bytes */
	uint8_t addr[4];        /* IPv4, network order */
	uint32_t num_gids;
	uint8_t gids[NVMF_MAX_GIDS][16];
};

enum nvmf_access { /* ibv_access_flags */
	NVMF_ACCESS_LOCAL_WRITE = 1 << 0,
	NVMF_ACCESS_REMOTE_WRITE = 1 << 1,
	NVMF_ACCESS_REMOTE_READ = 1 << 2,
	NVMF_ACCESS_REMOTE_ATOMIC = 1 << 3,
};

struct nvmf_mr_info {
	uint32_t id;
	uint32_t lkey;
	uint32_t rkey;
	uint32_t access; /* enum nvmf_access */
	uint64_t addr;
	uint64_t len;
};

struct nvmf_sge {
	uint64_t addr;
	uint32_t length;
	uint32_t lkey;
};

enum nvmf_send_opcode {
	NVMF_SEND = 0,
	NVMF_SEND_WITH_INV = 1,
	NVMF_RDMA_WRITE = 2,
	NVMF_RDMA_READ = 3,
};

struct nvmf_send_wr {
	uint64_t wr_id;
	uint32_t opcode;      /* enum nvmf_send_opcode */
	uint32_t signaled;    /* 0 or 1 */
	uint64_t remote_addr; /* RDMA READ / WRITE */
	uint32_t rkey;        /* RDMA READ / WRITE; SEND_WITH_INV: the rkey to invalidate */
	uint32_t num_sge;
	const struct nvmf_sge *sg_list;
};

struct nvmf_recv_wr {
	uint64_t wr_id;
	uint32_t num_sge;
	uint32_t reserved;
	const struct nvmf_sge *sg_list;
};

enum nvmf_wc_opcode { /* ibv_wc_opcode */
	NVMF_WC_SEND = 0,
	NVMF_WC_RDMA_WRITE = 1,
	NVMF_WC_RDMA_READ = 2,
	NVMF_WC_RECV = 128,
};

#define NVMF_WC_WITH_INV (1u << 0) /* invalidated_rkey is valid */

struct nvmf_wc {
	uint64_t wr_id;
	uint32_t status;  /* enum ibv_wc_status numbering */
	uint32_t opcode;  /* enum nvmf_wc_opcode */
	uint32_t byte_len;
	uint32_t qp;      /* handle */
	uint32_t qp_num;
	uint32_t src_qp;
	uint32_t invalidated_rkey;
	uint32_t wc_flags; /* NVMF_WC_WITH_INV */
};

struct nvmf_qp_cap {
	uint32_t max_send_wr;
	uint32_t max_recv_wr;
	uint32_t max_send_sge;
	uint32_t max_recv_sge;
};

struct nvmf_qp_init {
	uint32_t send_cq;
	uint32_t recv_cq;
	uint32_t srq;     /* when has_srq */
	uint32_t has_srq; /* 0 or 1 */
	struct nvmf_qp_cap cap;
};

struct nvmf_qp_info {
	uint32_t id;
	uint32_t qpn;
};

enum nvmf_qp_state { /* ibv_qp_state */
	NVMF_QPS_RESET = 0,
	NVMF_QPS_INIT = 1,
	NVMF_QPS_RTR = 2,
	NVMF_QPS_RTS = 3,
	NVMF_QPS_SQD = 4,
	NVMF_QPS_SQE = 5,
	NVMF_QPS_ERR = 6,
};

#define NVMF_QP_ATTR_PORT (1u << 0)
#define NVMF_QP_ATTR_ACCESS (1u << 1)
#define NVMF_QP_ATTR_DEST (1u << 2)

struct nvmf_qp_attr {
	uint32_t state;     /* enum nvmf_qp_state */
	uint32_t attr_mask; /* NVMF_QP_ATTR_* : which optional fields are set */
	uint32_t access;    /* enum nvmf_access */
	uint32_t dest_qpn;
	uint8_t dest_gid[16];
	uint8_t port;
	uint8_t retry_cnt;
	uint8_t rnr_retry;
	uint8_t reserved;
};

struct nvmf_srq_init {
	uint32_t max_wr;
	uint32_t max_sge;
	uint32_t srq_limit;
};

struct nvmf_srq_attr {
	uint32_t max_wr;
	uint32_t posted;
	uint32_t srq_limit;
};

/* Async events: type numbered as enum ibv_event_type; element is the CQ, QP or SRQ handle
 * or the port number (0 for DEVICE_FATAL). */
enum nvmf_event_type {
	NVMF_EVENT_CQ_ERR = 0,
	NVMF_EVENT_QP_FATAL = 1,
	NVMF_EVENT_QP_REQ_ERR = 2,
	NVMF_EVENT_QP_ACCESS_ERR = 3,
	NVMF_EVENT_COMM_EST = 4,
	NVMF_EVENT_SQ_DRAINED = 5,
	NVMF_EVENT_DEVICE_FATAL = 8,
	NVMF_EVENT_PORT_ACTIVE = 9,
	NVMF_EVENT_PORT_ERR = 10,
	NVMF_EVENT_SRQ_ERR = 14,
	NVMF_EVENT_SRQ_LIMIT_REACHED = 15,
	NVMF_EVENT_QP_LAST_WQE_REACHED = 16,
	/* offload events (struct nvmf_offload_event only) */
	NVMF_EVENT_NVME_PCI_ERR = 0x100,          /* element: controller */
	NVMF_EVENT_NVME_TIMEOUT = 0x101,          /* element: controller; sqid, cid */
	NVMF_EVENT_UNSUPPORTED_NVMF_OP = 0x102,   /* element: QP; opcode */
	NVMF_EVENT_QP_LAST_NVME_CQE_REACHED = 0x103, /* element: QP */
};

struct nvmf_async_event {
	uint32_t type; /* enum nvmf_event_type */
	uint32_t element;
};

struct nvmf_sockaddr {
	uint16_t family; /* 4 or 6 */
	uint16_t port;   /* host order */
	uint32_t reserved;
	uint8_t addr[16]; /* IPv4: the first 4 bytes, network order */
};

struct nvmf_conn_param {
	const uint8_t *private_data;
	uint32_t private_data_len;
	uint8_t responder_resources;
	uint8_t initiator_depth;
	uint8_t rnr_retry_count;
	uint8_t reserved;
};

enum nvmf_cm_event_kind {
	NVMF_CM_CONNECT_REQUEST = 0,
	NVMF_CM_ESTABLISHED = 1,
	NVMF_CM_REJECTED = 2,
	NVMF_CM_UNREACHABLE = 3,
	NVMF_CM_DISCONNECTED = 4,
};

struct nvmf_cm_event {
	uint32_t conn;
	uint32_t kind;     /* enum nvmf_cm_event_kind */
	uint32_t listener; /* CONNECT_REQUEST */
	uint32_t status;   /* REJECTED */
	struct nvmf_sockaddr peer; /* CONNECT_REQUEST */
	uint8_t responder_resources; /* CONNECT_REQUEST */
	uint8_t initiator_depth;
	uint8_t rnr_retry_count;
	uint8_t reserved;
	uint32_t private_data_len; /* CONNECT_REQUEST, ESTABLISHED, REJECTED */
	uint8_t private_data[NVMF_CM_PRIVATE_DATA_MAX];
};

/*
 * One verbs device: the equivalent of an ibv_context plus an rdma_event_channel.
 * The same table is used both ways: the host gives the plugin its lower device
 * (nvmf_host_env.lower_ops/lower_ctx; a hardware plugin may ignore it and open its own),
 * and the plugin returns the device software must use (nvmf_offload_verbs).
 */
struct nvmf_verbs_ops {
	int (*query_device)(void *ctx, struct nvmf_device_attr *out);
	int (*query_port)(void *ctx, uint8_t port, struct nvmf_port_attr *out);
	int (*alloc_pd)(void *ctx, uint32_t *pd);
	int (*dealloc_pd)(void *ctx, uint32_t pd);
	/* allocates len zeroed bytes and registers them */
	int (*reg_mr)(void *ctx, uint32_t pd, uint64_t len, uint32_t access, struct nvmf_mr_info *out);
	int (*dereg_mr)(void *ctx, uint32_t mr);
	/* CPU access to a region */
	int (*mr_write)(void *ctx, uint32_t mr, uint64_t offset, const void *data, size_t len);
	int (*mr_read)(void *ctx, uint32_t mr, uint64_t offset, void *buf, size_t len);
	int (*create_cq)(void *ctx, uint32_t cqe, uint32_t *cq);
	int (*destroy_cq)(void *ctx, uint32_t cq);
	/* takes up to max completions; *n tells how many */
	int (*poll_cq)(void *ctx, uint32_t cq, struct nvmf_wc *wc, uint32_t max, uint32_t *n);
	/* 0 when the CQ holds at least one completion (takes none), -EAGAIN when empty */
	int (*cq_ready)(void *ctx, uint32_t cq);
	int (*create_srq)(void *ctx, uint32_t pd, const struct nvmf_srq_init *init, uint32_t *srq);
	int (*arm_srq)(void *ctx, uint32_t srq, uint32_t limit);
	int (*query_srq)(void *ctx, uint32_t srq, struct nvmf_srq_attr *out);
	int (*destroy_srq)(void *ctx, uint32_t srq);
	int (*post_srq_recv)(void *ctx, uint32_t srq, const struct nvmf_recv_wr *wr);
	int (*create_qp)(void *ctx, uint32_t pd, const struct nvmf_qp_init *init, struct nvmf_qp_info *out);
	int (*modify_qp)(void *ctx, uint32_t qp, const struct nvmf_qp_attr *attr);
	int (*query_qp)(void *ctx, uint32_t qp, uint32_t *state);
	int (*destroy_qp)(void *ctx, uint32_t qp);
	int (*post_send)(void *ctx, uint32_t qp, const struct nvmf_send_wr *wr);
	int (*post_recv)(void *ctx, uint32_t qp, const struct nvmf_recv_wr *wr);
	/* 0 and *out filled, or -EAGAIN */
	int (*poll_async_event)(void *ctx, struct nvmf_async_event *out);
	int (*cm_listen)(void *ctx, const struct nvmf_sockaddr *addr, uint32_t *listener);
	int (*cm_close_listener)(void *ctx, uint32_t listener);
	int (*cm_connect)(void *ctx, const struct nvmf_sockaddr *addr, uint32_t qp,
			  const struct nvmf_conn_param *param, uint32_t *conn);
	int (*cm_accept)(void *ctx, uint32_t conn, uint32_t qp, const struct nvmf_conn_param *param);
	int (*cm_reject)(void *ctx, uint32_t conn, const uint8_t *private_data, uint32_t len);
	int (*cm_disconnect)(void *ctx, uint32_t conn);
	int (*cm_destroy)(void *ctx, uint32_t conn);
	/* 0 and *out filled, or -EAGAIN */
	int (*poll_cm_event)(void *ctx, struct nvmf_cm_event *out);
	const char *(*last_error)(void *ctx);
};

/* ---------------------------------------------------------------- offload ---- */

/* IBV_NVMF_*_OFFLOAD capability bits (offload_type_rc / offload_type_dc) */
#define NVMF_WRITE_OFFLOAD (1u << 0)
#define NVMF_READ_OFFLOAD (1u << 1)
#define NVMF_READ_WRITE_OFFLOAD (1u << 2)
#define NVMF_READ_WRITE_FLUSH_OFFLOAD (1u << 3)
#define NVMF_WRITE_ZEROES_OFFLOAD (1u << 4) /* project extension */
#define NVMF_DATASET_MGMT_OFFLOAD (1u << 5) /* project extension */

/* enum ibv_nvmf_offload_ops (nvmf_srq_attrs.offload_ops) */
#define NVMF_OPS_WRITE (1u << 0)
#define NVMF_OPS_READ (1u << 1)
#define NVMF_OPS_FLUSH (1u << 2)
#define NVMF_OPS_WRITE_ZEROES (1u << 3)
#define NVMF_OPS_DATASET_MGMT (1u << 4)

#define NVMF_QP_ATTR_FLAG_ENABLE (1u << 0) /* qp_set_nvmf */

/* {mr, addr, len}: the address form of struct ibv_mr_sg */
struct nvmf_mr_sg {
	uint32_t mr;
	uint32_t reserved;
	uint64_t addr;
	uint64_t len;
};

/* Real values everywhere: never log2, a queue depth of 65536 is 65536. 0 = no limit for
 * max_staging_buf_size, max_cmd_timeout_us, max_frontend_nsid. */
struct nvmf_caps {
	uint32_t offload_type_dc;
	uint32_t offload_type_rc;
	uint32_t max_backend_ctrls_total;
	uint32_t max_srq_backend_ctrls;
	uint32_t max_srq_namespaces;
	uint32_t max_namespaces;
	uint64_t min_staging_buf_size;
	uint64_t max_staging_buf_size;
	uint32_t max_io_sz;
	uint32_t max_nvme_queue_depth;
	uint32_t min_nvme_queue_depth;
	uint32_t max_ioccsz;
	uint32_t min_ioccsz;
	uint16_t max_icdoff;
	uint8_t supports_non_offloaded_ops;
	uint8_t qp_last_nvme_cqe_reached;
	uint32_t min_cmd_timeout_us;
	uint32_t max_cmd_timeout_us;
	uint32_t max_frontend_nsid;
	uint32_t max_extra_sqs;
	uint32_t num_lba_data_sizes;
	uint32_t lba_data_sizes[NVMF_MAX_LBA_DATA_SIZES];
};

struct nvmf_srq_attrs {
	struct nvmf_srq_init rq; /* the receive queue it still has */
	uint32_t offload_ops;    /* NVMF_OPS_* */
	uint32_t max_namespaces;
	uint32_t ioccsz;         /* 16-byte units */
	uint32_t max_io_sz;
	uint32_t nvme_queue_depth;
	uint16_t icdoff;         /* 16-byte units */
	uint8_t nvme_log_page_sz;
	uint8_t reserved;
	struct nvmf_mr_sg staging_buf;
};

struct nvmf_srq {
	uint32_t handle; /* for the offload calls */
	uint32_t srq;    /* verbs SRQ handle QPs attach to (nvmf_qp_init.srq) */
};

struct nvmf_backend_sq {
	struct nvmf_mr_sg buf;
	struct nvmf_mr_sg db;
	uint16_t db_ini;
	uint16_t reserved[3];
};

#define NVMF_CTRL_ATTR_CMD_TIMEOUT (1u << 0)
#define NVMF_CTRL_ATTR_EXTRA_SQS (1u << 1)

struct nvmf_nvme_ctrl_attrs {
	struct nvmf_mr_sg sq_buf; /* 64-byte entries, nvme_queue_depth of them */
	struct nvmf_mr_sg cq_buf; /* 16-byte entries */
	struct nvmf_mr_sg sqdb;   /* 4 bytes */
	struct nvmf_mr_sg cqdb;   /* 4 bytes */
	uint16_t sqdb_ini;
	uint16_t cqdb_ini;
	uint32_t cmd_timeout_us;  /* 0 = device default */
	uint32_t comp_mask;       /* NVMF_CTRL_ATTR_* */
	uint32_t num_extra_sqs;
	const struct nvmf_backend_sq *extra_sqs;
};

struct nvmf_ns_mapping {
	uint32_t fe_nsid;
	uint32_t nvme_nsid;
	uint32_t lba_data_size; /* data + metadata bytes per block */
};

struct nvmf_ns_counters {
	uint64_t read_cmds;
	uint64_t read_blocks;
	uint64_t write_cmds;
	uint64_t write_blocks;
	uint64_t write_inline_cmds;
	uint64_t write_inline_blocks;
	uint64_t flush_cmds;
	uint64_t error_cmds;
	uint64_t backend_error_cmds;
};

struct nvmf_srq_counters {
	uint64_t unknown_ns_cmds;
};

#define NVMF_EVENT_HAS_SQID (1u << 0)
#define NVMF_EVENT_HAS_CID (1u << 1)

struct nvmf_offload_event {
	uint32_t type;    /* enum nvmf_event_type */
	uint32_t element; /* controller, QP, SRQ, CQ handle or port, by type */
	uint32_t flags;   /* NVMF_EVENT_HAS_* */
	uint16_t sqid;    /* NVME_TIMEOUT */
	uint16_t cid;     /* NVME_TIMEOUT */
	uint8_t opcode;   /* UNSUPPORTED_NVMF_OP */
	uint8_t reserved[3];
};

/*
 * ABI 2: how the device reaches backend controllers (nvmf_offload_ops.backend_access).
 *  - doorbells: NVMF_DOORBELLS_CALL, the device rings through nvmf_pci_ops.ring_sq /
 *    ring_cq and polls nvmf_pci_ops.status (software devices); NVMF_DOORBELLS_MEMORY, the
 *    device writes the 4-byte doorbell words of nvmf_nvme_ctrl_attrs itself (as a NIC's
 *    posted writes), sees completions by the CQ's phase tags and a PCI error by CSTS in
 *    the register block nvmf_pci_ops.doorbells names, and never calls ring_sq, ring_cq or
 *    status (the host answers them -EPERM). The host then lays each emulated controller's
 *    doorbells out as a PCIe BAR with doorbell stride 0 in a region of the device's PD:
 *    registers at 0 (CAP 00h, VS 08h, CC 14h, CSTS 1Ch), sqdb at 1000h and cqdb at 1004h
 *    (one 64-byte-aligned chunk), extra SQ i's doorbell at 1000h + 8 i; it polls them
 *    every millisecond of its clock.
 *  - PRP addresses: without NVMF_PRP_WINDOW, the PRP entries the device writes into
 *    backend SQEs are virtual addresses inside the staging buffer (as in memory
 *    references). With it, they are bus addresses: [prp_bus, prp_bus + prp_len) stands
 *    for the virtual addresses [prp_va, prp_va + prp_len), and the host's controllers DMA
 *    through that window.
 */
enum nvmf_doorbell_mode { NVMF_DOORBELLS_CALL = 0, NVMF_DOORBELLS_MEMORY = 1 };

#define NVMF_PRP_WINDOW (1u << 0)

struct nvmf_backend_access {
	uint32_t doorbells; /* enum nvmf_doorbell_mode */
	uint32_t flags;     /* NVMF_PRP_WINDOW */
	uint64_t prp_bus;
	uint64_t prp_va;
	uint64_t prp_len;
};

struct nvmf_offload_ops {
	int (*query_caps)(void *dev, struct nvmf_caps *out);
	int (*create_srq)(void *dev, uint32_t pd, const struct nvmf_srq_attrs *attrs, struct nvmf_srq *out);
	int (*destroy_srq)(void *dev, uint32_t srq);
	int (*create_nvme_ctrl)(void *dev, uint32_t srq, const struct nvmf_nvme_ctrl_attrs *attrs,
				uint32_t *ctrl);
	int (*remove_nvme_ctrl)(void *dev, uint32_t srq, uint32_t ctrl);
	int (*map_nsid)(void *dev, uint32_t ctrl, const struct nvmf_ns_mapping *m);
	int (*unmap_nsid)(void *dev, uint32_t ctrl, uint32_t fe_nsid);
	int (*qp_set_nvmf)(void *dev, uint32_t qp, uint32_t flags);
	int (*ns_counters)(void *dev, uint32_t ctrl, uint32_t fe_nsid, struct nvmf_ns_counters *out);
	int (*srq_counters)(void *dev, uint32_t srq, struct nvmf_srq_counters *out);
	/* 0 and *out filled, or -EAGAIN */
	int (*poll_event)(void *dev, struct nvmf_offload_event *out);
	const char *(*last_error)(void *dev);
	/* ---- ABI 2 (read only from a plugin whose nvmf_offload_abi_version() is >= 2) ---- */
	/* how the device reaches backends; NULL = calls, virtual PRPs */
	int (*backend_access)(void *dev, struct nvmf_backend_access *out);
	/*
	 * optional (NULL or -EOPNOTSUPP: the device cannot): the device makes its own link to
	 * controller ctrl fail as a backend PCI error would (a NIC that can inject a fault on
	 * its PCIe path to the SSD), and reports it as a PCI error of that controller
	 * (NVMF_EVENT_NVME_PCI_ERR). 0, -EINVAL (unknown ctrl).
	 */
	int (*inject_pci_error)(void *dev, uint32_t ctrl);
};

/* -------------------------------------------------------------------- PCI ---- */

/* A byte range of a region of the verbs device the plugin returned, by offset. */
struct nvmf_pci_span {
	uint32_t mr;
	uint32_t reserved;
	uint64_t offset;
	uint64_t len;
};

struct nvmf_pci_queue {
	struct nvmf_pci_span ring;     /* SQ: 64-byte entries; CQ: 16-byte entries */
	struct nvmf_pci_span doorbell; /* 4 bytes, little-endian */
	uint16_t initial;              /* first tail (SQ) or head (CQ) */
	uint16_t reserved[3];
};

/* A backend NVMe controller on the host's PCI side (its BAR, as the NIC sees it). */
struct nvmf_pci_ctrl {
	uint64_t id;
	uint32_t depth;  /* entries of every queue */
	uint32_t num_sqs;
	struct nvmf_pci_queue cq;
};

enum nvmf_pci_state { NVMF_PCI_RUNNING = 0, NVMF_PCI_ERROR = 1 };

struct nvmf_pci_status {
	uint32_t state;   /* enum nvmf_pci_state */
	uint32_t reserved;
	uint64_t completions; /* CQEs posted so far: a change means "look at the CQ" */
};

/* ABI 2: how a controller's doorbells are rung (nvmf_pci_ops.doorbells) */
struct nvmf_pci_doorbells {
	uint32_t mode;    /* enum nvmf_doorbell_mode */
	uint32_t reserved;
	struct nvmf_pci_span regs; /* MEMORY: the register block (CAP..CSTS), 32 bytes */
};

/*
 * The host's PCI side: how the plugin (the NIC) reaches backend NVMe controllers.
 * The rings live in memory regions of the verbs device the plugin returned: the plugin
 * writes SQEs and reads CQEs (phase tags) itself, and rings the doorbells here, or, for a
 * device whose backend_access says NVMF_DOORBELLS_MEMORY, in memory (find, sq_info and
 * doorbells are control-path calls a device's driver makes; ring_sq, ring_cq and status
 * are refused -EPERM for such a controller).
 */
struct nvmf_pci_ops {
	/* the controller whose first SQ-tail doorbell is at {mr, addr}: 0, or -ENODEV */
	int (*find)(void *pci, uint32_t doorbell_mr, uint64_t doorbell_addr, struct nvmf_pci_ctrl *out);
	int (*sq_info)(void *pci, uint64_t id, uint32_t sq, struct nvmf_pci_queue *out);
	int (*ring_sq)(void *pci, uint64_t id, uint32_t sq, uint16_t tail);
	int (*ring_cq)(void *pci, uint64_t id, uint16_t head);
	int (*status)(void *pci, uint64_t id, struct nvmf_pci_status *out);
	/* ---- ABI 2 (given only to a plugin whose version is >= 2) ---- */
	int (*doorbells)(void *pci, uint64_t id, struct nvmf_pci_doorbells *out);
};

/* ------------------------------------------------------------ entry points ---- */

struct nvmf_host_env {
	uint32_t abi_version; /* the version the host speaks to this plugin: the plugin's own */
	uint32_t reserved;
	const struct nvmf_verbs_ops *lower_ops; /* the host's lower verbs device */
	void *lower_ctx;
	const struct nvmf_pci_ops *pci_ops;     /* the host's backend controllers */
	void *pci_ctx;
	const char *config; /* NUL-terminated, plugin-defined (reference: "profile=full;quirks=a,b") */
};

struct nvmf_offload_dev; /* opaque */

typedef uint32_t (*nvmf_offload_abi_version_fn)(void);
typedef int (*nvmf_offload_open_fn)(const struct nvmf_host_env *env, struct nvmf_offload_dev **out);
typedef void (*nvmf_offload_close_fn)(struct nvmf_offload_dev *dev);
typedef int (*nvmf_offload_verbs_fn)(struct nvmf_offload_dev *dev,
				     const struct nvmf_verbs_ops **ops, void **ctx);
typedef int (*nvmf_offload_get_ops_fn)(struct nvmf_offload_dev *dev,
				       const struct nvmf_offload_ops **ops, void **ctx);
typedef int (*nvmf_offload_progress_fn)(struct nvmf_offload_dev *dev, uint64_t now_ns);
typedef const char *(*nvmf_offload_open_error_fn)(void);

/* NVMF_OFFLOAD_ABI_VERSION of the plugin */
uint32_t nvmf_offload_abi_version(void);
/* -EPROTO on an ABI version it does not speak, -EINVAL on a bad config */
int nvmf_offload_open(const struct nvmf_host_env *env, struct nvmf_offload_dev **out);
void nvmf_offload_close(struct nvmf_offload_dev *dev);
/* the verbs device software must use (its handles are the ones offload calls take) */
int nvmf_offload_verbs(struct nvmf_offload_dev *dev, const struct nvmf_verbs_ops **ops, void **ctx);
int nvmf_offload_get_ops(struct nvmf_offload_dev *dev, const struct nvmf_offload_ops **ops, void **ctx);
/* the host's clock is now_ns (ns since open, monotonic): do the work due until then */
int nvmf_offload_progress(struct nvmf_offload_dev *dev, uint64_t now_ns);
/* optional: why the last nvmf_offload_open failed (NULL if unknown) */
const char *nvmf_offload_open_error(void);

#ifdef __cplusplus
}
#endif

#endif /* NVMF_OFFLOAD_H */
