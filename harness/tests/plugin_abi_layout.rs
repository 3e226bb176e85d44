//! `include/nvmf_offload.h` and its Rust mirrors (`harness::ffi::abi`) agree: a C program
//! compiled with the system's `cc` prints the size and alignment of every struct and the
//! offset and size of every field, and each must equal Rust's.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

use harness::ffi::abi::*;

mod common;
use common::cc;

fn field_size<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// (C struct, C field or "" for the struct itself) → (size, offset or alignment).
type Table = BTreeMap<(String, String), (usize, usize)>;

macro_rules! layouts {
    ($( $c:literal => $t:ty { $($f:ident),* $(,)? } )*) => {{
        let mut rust = Table::new();
        let mut prog = String::new();
        $(
            rust.insert(($c.to_string(), String::new()), (size_of::<$t>(), align_of::<$t>()));
            prog.push_str(&format!(
                "  printf(\"%s||%zu|%zu\\n\", \"{c}\", sizeof(struct {c}), _Alignof(struct {c}));\n",
                c = $c
            ));
            $(
                let cf = stringify!($f).trim_start_matches("r#");
                rust.insert(
                    ($c.to_string(), cf.to_string()),
                    (field_size(|s: &$t| &s.$f), offset_of!($t, $f)),
                );
                prog.push_str(&format!(
                    "  printf(\"%s|%s|%zu|%zu\\n\", \"{c}\", \"{f}\", sizeof(((struct {c} *)0)->{f}), offsetof(struct {c}, {f}));\n",
                    c = $c,
                    f = cf
                ));
            )*
        )*
        (rust, prog)
    }};
}

#[test]
fn header_and_rust_mirrors_have_one_layout() {
    let (rust, body) = layouts! {
        "nvmf_device_attr" => NvmfDeviceAttr { name, phys_port_cnt, reserved, max_qp, max_qp_wr, max_sge, max_cq, max_cqe, max_mr, max_pd, max_mr_size, max_srq, max_srq_wr, max_qp_rd_atom, reserved2 }
        "nvmf_port_attr" => NvmfPortAttr { port, state, reserved, active_mtu, addr, num_gids, gids }
        "nvmf_mr_info" => NvmfMrInfo { id, lkey, rkey, access, addr, len }
        "nvmf_sge" => NvmfSge { addr, length, lkey }
        "nvmf_send_wr" => NvmfSendWr { wr_id, opcode, signaled, remote_addr, rkey, num_sge, sg_list }
        "nvmf_recv_wr" => NvmfRecvWr { wr_id, num_sge, reserved, sg_list }
        "nvmf_wc" => NvmfWc { wr_id, status, opcode, byte_len, qp, qp_num, src_qp, invalidated_rkey, wc_flags }
        "nvmf_qp_cap" => NvmfQpCap { max_send_wr, max_recv_wr, max_send_sge, max_recv_sge }
        "nvmf_qp_init" => NvmfQpInit { send_cq, recv_cq, srq, has_srq, cap }
        "nvmf_qp_info" => NvmfQpInfo { id, qpn }
        "nvmf_qp_attr" => NvmfQpAttr { state, attr_mask, access, dest_qpn, dest_gid, port, retry_cnt, rnr_retry, reserved }
        "nvmf_srq_init" => NvmfSrqInit { max_wr, max_sge, srq_limit }
        "nvmf_srq_attr" => NvmfSrqAttr { max_wr, posted, srq_limit }
        "nvmf_async_event" => NvmfAsyncEvent { r#type, element }
        "nvmf_sockaddr" => NvmfSockaddr { family, port, reserved, addr }
        "nvmf_conn_param" => NvmfConnParam { private_data, private_data_len, responder_resources, initiator_depth, rnr_retry_count, reserved }
        "nvmf_cm_event" => NvmfCmEvent { conn, kind, listener, status, peer, responder_resources, initiator_depth, rnr_retry_count, reserved, private_data_len, private_data }
        "nvmf_verbs_ops" => NvmfVerbsOps { query_device, query_port, alloc_pd, dealloc_pd, reg_mr, dereg_mr, mr_write, mr_read, create_cq, destroy_cq, poll_cq, cq_ready, create_srq, arm_srq, query_srq, destroy_srq, post_srq_recv, create_qp, modify_qp, query_qp, destroy_qp, post_send, post_recv, poll_async_event, cm_listen, cm_close_listener, cm_connect, cm_accept, cm_reject, cm_disconnect, cm_destroy, poll_cm_event, last_error }
        "nvmf_mr_sg" => NvmfMrSg { mr, reserved, addr, len }
        "nvmf_caps" => NvmfCapsC { offload_type_dc, offload_type_rc, max_backend_ctrls_total, max_srq_backend_ctrls, max_srq_namespaces, max_namespaces, min_staging_buf_size, max_staging_buf_size, max_io_sz, max_nvme_queue_depth, min_nvme_queue_depth, max_ioccsz, min_ioccsz, max_icdoff, supports_non_offloaded_ops, qp_last_nvme_cqe_reached, min_cmd_timeout_us, max_cmd_timeout_us, max_frontend_nsid, max_extra_sqs, num_lba_data_sizes, lba_data_sizes }
        "nvmf_srq_attrs" => NvmfSrqAttrsC { rq, offload_ops, max_namespaces, ioccsz, max_io_sz, nvme_queue_depth, icdoff, nvme_log_page_sz, reserved, staging_buf }
        "nvmf_srq" => NvmfSrqC { handle, srq }
        "nvmf_backend_sq" => NvmfBackendSq { buf, db, db_ini, reserved }
        "nvmf_nvme_ctrl_attrs" => NvmfNvmeCtrlAttrsC { sq_buf, cq_buf, sqdb, cqdb, sqdb_ini, cqdb_ini, cmd_timeout_us, comp_mask, num_extra_sqs, extra_sqs }
        "nvmf_ns_mapping" => NvmfNsMappingC { fe_nsid, nvme_nsid, lba_data_size }
        "nvmf_ns_counters" => NvmfNsCountersC { read_cmds, read_blocks, write_cmds, write_blocks, write_inline_cmds, write_inline_blocks, flush_cmds, error_cmds, backend_error_cmds }
        "nvmf_srq_counters" => NvmfSrqCountersC { unknown_ns_cmds }
        "nvmf_offload_event" => NvmfOffloadEventC { r#type, element, flags, sqid, cid, opcode, reserved }
        "nvmf_offload_ops" => NvmfOffloadOps { query_caps, create_srq, destroy_srq, create_nvme_ctrl, remove_nvme_ctrl, map_nsid, unmap_nsid, qp_set_nvmf, ns_counters, srq_counters, poll_event, last_error, backend_access, inject_pci_error }
        "nvmf_backend_access" => NvmfBackendAccess { doorbells, flags, prp_bus, prp_va, prp_len }
        "nvmf_pci_span" => NvmfPciSpan { mr, reserved, offset, len }
        "nvmf_pci_queue" => NvmfPciQueue { ring, doorbell, initial, reserved }
        "nvmf_pci_ctrl" => NvmfPciCtrl { id, depth, num_sqs, cq }
        "nvmf_pci_status" => NvmfPciStatus { state, reserved, completions }
        "nvmf_pci_doorbells" => NvmfPciDoorbells { mode, reserved, regs }
        "nvmf_pci_ops" => NvmfPciOps { find, sq_info, ring_sq, ring_cq, status, doorbells }
        "nvmf_host_env" => NvmfHostEnv { abi_version, reserved, lower_ops, lower_ctx, pci_ops, pci_ctx, config }
    };

    let dir = cc::tmp_dir("abi_layout");
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    let consts = "  printf(\"#|ABI|%d|0\\n\", NVMF_OFFLOAD_ABI_VERSION);\n\
         printf(\"#|ABI_MIN|%d|0\\n\", NVMF_OFFLOAD_ABI_VERSION_MIN);\n\
         printf(\"#|DB_CALL|%d|0\\n\", NVMF_DOORBELLS_CALL);\n\
         printf(\"#|DB_MEMORY|%d|0\\n\", NVMF_DOORBELLS_MEMORY);\n\
         printf(\"#|PRP_WINDOW|%u|0\\n\", NVMF_PRP_WINDOW);\n\
         printf(\"#|PCI_ERR|%d|0\\n\", NVMF_EVENT_NVME_PCI_ERR);\n\
         printf(\"#|PD_MAX|%d|0\\n\", NVMF_CM_PRIVATE_DATA_MAX);\n\
         printf(\"#|LBA_MAX|%d|0\\n\", NVMF_MAX_LBA_DATA_SIZES);\n";
    std::fs::write(
        &src,
        format!(
            "#include <stddef.h>\n#include <stdio.h>\n#include \"nvmf_offload.h\"\nint main(void) {{\n{body}{consts}  return 0;\n}}\n"
        ),
    )
    .unwrap();
    cc::compile(
        &["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"],
        &src,
        &exe,
        &[],
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    let mut c = Table::new();
    let mut consts = BTreeMap::new();
    for line in text.lines() {
        let p: Vec<&str> = line.split('|').collect();
        let (a, b): (usize, usize) = (p[2].parse().unwrap(), p[3].parse().unwrap());
        if p[0] == "#" {
            consts.insert(p[1].to_string(), a);
        } else {
            c.insert((p[0].to_string(), p[1].to_string()), (a, b));
        }
    }
    let mut diffs = Vec::new();
    for (k, v) in &rust {
        match c.get(k) {
            Some(cv) if cv == v => {}
            other => diffs.push(format!("{k:?}: rust {v:?}, C {other:?}")),
        }
    }
    assert!(
        diffs.is_empty(),
        "layout differences:\n{}",
        diffs.join("\n")
    );
    assert_eq!(rust.len(), c.len());
    assert_eq!(consts["ABI"], NVMF_OFFLOAD_ABI_VERSION as usize);
    assert_eq!(consts["ABI_MIN"], NVMF_OFFLOAD_ABI_VERSION_MIN as usize);
    assert_eq!(consts["DB_CALL"], NVMF_DOORBELLS_CALL as usize);
    assert_eq!(consts["DB_MEMORY"], NVMF_DOORBELLS_MEMORY as usize);
    assert_eq!(consts["PRP_WINDOW"], NVMF_PRP_WINDOW as usize);
    assert_eq!(consts["PCI_ERR"], event::NVME_PCI_ERR as usize);
    assert_eq!(consts["PD_MAX"], NVMF_CM_PRIVATE_DATA_MAX);
    assert_eq!(consts["LBA_MAX"], NVMF_MAX_LBA_DATA_SIZES);
}
