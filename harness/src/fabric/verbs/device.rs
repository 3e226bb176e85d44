//! Device discovery and open; device and port attributes; the port's RoCEv2 GID.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use tokio::sync::Notify;

use super::{os, raw, State, VerbsContext};
use crate::fabric::{DeviceAttr, FabricError, Gid, PortAttr, PortState, Result};

/// Prefix of the [`FabricError::NoDevice`] text meaning "this host has no RDMA device".
const NO_RDMA: &str = "no RDMA device: ";

fn no_rdma(reason: impl std::fmt::Display) -> FabricError {
    FabricError::NoDevice(format!("{NO_RDMA}{reason}"))
}

/// Whether an error says the host has no RDMA device at all (a skip, not a failure).
pub fn is_no_rdma_device(e: &FabricError) -> bool {
    matches!(e, FabricError::NoDevice(s) if s.starts_with(NO_RDMA))
}

/// The device names, or `no RDMA device: <reason>`.
pub(super) fn list() -> Result<Vec<String>> {
    match raw::device_names() {
        Err(Errno::ENOSYS) => Err(no_rdma(
            "ibv_get_device_list failed with ENOSYS: the kernel has no RDMA support \
             (no /sys/class/infiniband_verbs)",
        )),
        Err(e) => Err(no_rdma(format_args!("ibv_get_device_list failed: {e}"))),
        Ok(v) if v.is_empty() => Err(no_rdma(
            "ibv_get_device_list found none (load a driver, e.g. `modprobe rdma_rxe; \
             rdma link add rxe0 type rxe netdev eth0`)",
        )),
        Ok(v) => Ok(v),
    }
}

/// Port 1 as read at open: its GIDs (index 1 = the IPv4-mapped RoCEv2 GID) and where that
/// GID is in the device's own table.
pub(super) struct PortInfo {
    pub gids: Vec<Gid>,
    pub addr: Ipv4Addr,
    pub sgid_index: u8,
    pub mtu_enum: u32,
    pub active_mtu: u32,
}

/// Whether sysfs calls GID `index` of the port a RoCE v2 GID (`None`: unknown).
fn is_roce_v2(dev: &str, port: u8, index: usize) -> Option<bool> {
    let path = format!("/sys/class/infiniband/{dev}/ports/{port}/gid_attrs/types/{index}");
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().eq_ignore_ascii_case("RoCE v2"))
}

fn read_port(ctx: &raw::Context, dev: &str, port: u8) -> Result<PortInfo> {
    let raw = ctx.query_port(port).map_err(|e| os("ibv_query_port", e))?;
    // rxe's table has 1024 entries, filled from the start: read the populated head.
    let len = usize::try_from(raw.gid_tbl_len).unwrap_or(0).min(32);
    let mut table = Vec::new();
    for i in 0..len {
        let Ok(g) = ctx.query_gid(port, i32::try_from(i).unwrap_or(0)) else {
            break;
        };
        if i > 0 && g == [0; 16] {
            break;
        }
        table.push(Gid(g));
    }
    let mapped: Vec<usize> = (0..table.len())
        .filter(|i| table[*i].to_ipv4().is_some())
        .collect();
    let chosen = mapped
        .iter()
        .copied()
        .find(|i| is_roce_v2(dev, port, *i) == Some(true))
        // Without sysfs types: rxe lists each address as RoCE v1, then v2.
        .or_else(|| mapped.get(1).or(mapped.first()).copied());
    let (sgid_index, addr) = match chosen {
        Some(i) => (i, table[i].to_ipv4().unwrap_or(Ipv4Addr::UNSPECIFIED)),
        None => (1.min(table.len().saturating_sub(1)), Ipv4Addr::UNSPECIFIED),
    };
    // The trait's table has the RoCEv2 GID at index 1 wherever the device keeps it.
    let mut gids = table.clone();
    if let Some(i) = chosen {
        if i != 1 {
            if gids.len() < 2 {
                gids.resize(2, Gid([0; 16]));
            }
            gids[1] = table[i];
        }
    }
    Ok(PortInfo {
        gids,
        addr,
        sgid_index: u8::try_from(sgid_index).unwrap_or(1),
        mtu_enum: raw.mtu_enum,
        active_mtu: raw.active_mtu,
    })
}

fn clamp(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

impl VerbsContext {
    /// Opens `name`: its context, CM channel, async-event watch and CM driver task.
    pub(super) fn open(name: &str) -> Result<Arc<VerbsContext>> {
        let names = list()?;
        if !names.iter().any(|n| n == name) {
            return Err(FabricError::NoDevice(format!(
                "{name}: no such RDMA device (have {})",
                names.join(", ")
            )));
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            FabricError::NotSupported("verbs: open needs a tokio runtime with I/O enabled")
        })?;
        let ctx = raw::Context::open(name).map_err(|e| match e {
            Errno::ENODEV => FabricError::NoDevice(name.to_string()),
            e => os("ibv_open_device", e),
        })?;
        let a = ctx.query_device().map_err(|e| os("ibv_query_device", e))?;
        let attr = DeviceAttr {
            name: name.to_string(),
            phys_port_cnt: a.phys_port_cnt,
            max_qp: clamp(a.max_qp),
            max_qp_wr: clamp(a.max_qp_wr),
            max_sge: clamp(a.max_sge),
            max_cq: clamp(a.max_cq),
            max_cqe: clamp(a.max_cqe),
            max_mr: clamp(a.max_mr),
            max_mr_size: a.max_mr_size,
            max_pd: clamp(a.max_pd),
            max_srq: clamp(a.max_srq),
            max_srq_wr: clamp(a.max_srq_wr),
            max_qp_rd_atom: clamp(a.max_qp_rd_atom),
        };
        let port = read_port(&ctx, name, 1)?;
        let channel =
            raw::EventChannel::create().map_err(|e| os("rdma_create_event_channel", e))?;
        let async_fd = {
            let _guard = handle.enter();
            raw::watch(ctx.async_fd()).map_err(|e| os("AsyncFd(async_fd)", io(e)))?
        };
        let cm_fd = {
            let _guard = handle.enter();
            raw::watch(channel.fd()).map_err(|e| os("AsyncFd(cm channel)", io(e)))?
        };
        let me = Arc::new(VerbsContext {
            name: name.to_string(),
            attr,
            port,
            state: Mutex::new(State::default()),
            async_fd,
            cm_events: Mutex::new(VecDeque::new()),
            cm_notify: Notify::new(),
            cm_task: Mutex::new(None),
            channel,
            ctx,
        });
        let task = handle.spawn(super::cm::drive(Arc::downgrade(&me), cm_fd));
        *me.cm_task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
        Ok(me)
    }

    pub(super) fn port_attr_impl(&self, port: u8) -> Result<PortAttr> {
        if port == 0 || port > self.attr.phys_port_cnt {
            return Err(FabricError::Invalid("port_attr: port number out of range"));
        }
        let (state, mtu, gids, addr) = if port == 1 {
            let raw = self
                .ctx
                .query_port(1)
                .map_err(|e| os("ibv_query_port", e))?;
            (
                raw.active,
                raw.active_mtu,
                self.port.gids.clone(),
                self.port.addr,
            )
        } else {
            let p = read_port(&self.ctx, &self.name, port)?;
            let raw = self
                .ctx
                .query_port(port)
                .map_err(|e| os("ibv_query_port", e))?;
            (raw.active, p.active_mtu, p.gids, p.addr)
        };
        Ok(PortAttr {
            port,
            state: if state {
                PortState::Active
            } else {
                PortState::Down
            },
            active_mtu: mtu,
            addr,
            gids,
        })
    }
}

fn io(e: std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}
