//! Devices and ports: listing, opening, port attributes, per-context handles.

use nix::errno::Errno;

use super::{contract_case, expect_errno, CaseResult, Context, ContractCase, Env};
use crate::fabric::{Access, Gid, PdId, PortState};
use crate::{check, check_eq};

pub(super) fn cases() -> Vec<ContractCase> {
    vec![
        contract_case!(
            "device.list.open-each",
            "device",
            &[],
            "devices() is non-empty with unique names; each opens and reports its own name",
            list_open_each
        ),
        contract_case!(
            "device.open.unknown-enodev",
            "device",
            &[],
            "opening a device name that is not listed fails with ENODEV",
            open_unknown
        ),
        contract_case!(
            "device.port.active-ipv4-gid",
            "device",
            &[],
            "port 1 is Active with a valid MTU and the IPv4-mapped GID of its address at index 1",
            port_active
        ),
        contract_case!(
            "device.port.out-of-range-einval",
            "device",
            &[],
            "port_attr of port 0 and of phys_port_cnt + 1 fails with EINVAL",
            port_out_of_range
        ),
        contract_case!(
            "device.handle.foreign-context-enoent",
            "device",
            &[],
            "a PD handle of one context is ENOENT on another context",
            foreign_handle
        ),
    ]
}

async fn list_open_each(env: Env) -> CaseResult {
    let devices = env.devices()?;
    let mut seen = std::collections::HashSet::new();
    for name in &devices {
        check!(
            !name.is_empty(),
            "devices(): empty device name in {devices:?}"
        );
        check!(
            seen.insert(name),
            "devices(): {name} listed twice in {devices:?}"
        );
        let ctx = env.fabric.open(name).ctx(format!("open({name})"))?;
        let attr = ctx.device_attr();
        check_eq!(
            attr.name,
            *name,
            "device_attr().name of the device opened as {name}"
        );
        check!(
            attr.phys_port_cnt >= 1,
            "{name}: phys_port_cnt is {}, expected at least 1",
            attr.phys_port_cnt
        );
        env.record(format!("device {name} ports {}", attr.phys_port_cnt));
    }
    Ok(())
}

async fn open_unknown(env: Env) -> CaseResult {
    let devices = env.devices()?;
    let name = "nvmf-conform-no-such-device";
    check!(
        !devices.iter().any(|d| d == name),
        "{name} is actually listed"
    );
    expect_errno(
        env.fabric.open(name).map(|_| ()),
        Errno::ENODEV,
        format!("open({name})"),
    )
}

async fn port_active(env: Env) -> CaseResult {
    for (i, name) in env.devices()?.iter().enumerate() {
        let dev = env.open("a", i)?;
        let p = &dev.port;
        check_eq!(p.port, 1, "{name}: port_attr(1).port");
        check_eq!(p.state, PortState::Active, "{name}: port 1 state");
        check!(
            (256..=4096).contains(&p.active_mtu) && p.active_mtu.is_power_of_two(),
            "{name}: active_mtu {} is not one of 256, 512, 1024, 2048, 4096",
            p.active_mtu
        );
        check_eq!(
            p.gids[1],
            Gid::from_ipv4(p.addr),
            "{name}: GID index 1 of port 1 (address {})",
            p.addr
        );
        check_eq!(
            p.gids[1].to_ipv4(),
            Some(p.addr),
            "{name}: GID index 1 as IPv4"
        );
        env.record(format!("{name} port 1 {} mtu {}", p.addr, p.active_mtu));
    }
    Ok(())
}

async fn port_out_of_range(env: Env) -> CaseResult {
    let dev = env.open("a", 0)?;
    let cnt = dev.ctx.device_attr().phys_port_cnt;
    expect_errno(dev.ctx.port_attr(0), Errno::EINVAL, "port_attr(0)")?;
    expect_errno(
        dev.ctx.port_attr(cnt.saturating_add(1)),
        Errno::EINVAL,
        format!(
            "port_attr({}) with phys_port_cnt {cnt}",
            cnt.saturating_add(1)
        ),
    )?;
    Ok(())
}

async fn foreign_handle(env: Env) -> CaseResult {
    let a = env.open("a", 0)?;
    let b = env.open("b", 0)?;
    let pd = a.pd()?;
    // b allocated nothing, so no handle number can be valid on it.
    expect_errno(
        b.ctx.reg_mr(pd, 4096, Access::LOCAL_WRITE),
        Errno::ENOENT,
        format!("reg_mr on a second context with the first context's {pd}"),
    )?;
    expect_errno(
        b.ctx.dealloc_pd(pd),
        Errno::ENOENT,
        format!("dealloc_pd on a second context of the first context's {pd}"),
    )?;
    expect_errno(
        b.ctx.dealloc_pd(PdId(0x7fff_fff0)),
        Errno::ENOENT,
        "dealloc_pd of a handle never allocated",
    )?;
    a.ctx.dealloc_pd(pd).ctx("dealloc_pd on its own context")?;
    Ok(())
}
