//! Loading a plugin fails with a precise error, never a panic: a missing file, a file that
//! is no shared library, a library that is no plugin, another ABI version, an open that
//! fails with an errno (and the plugin's reason). The libraries are small C files compiled
//! here with the system's `cc`.

use std::path::PathBuf;
use std::sync::Arc;

use harness::backend::{PciFunction, PciHost, PciStatus};
use harness::fabric::sim::SimFabric;
use harness::fabric::{Fabric, MrId};
use harness::plugin::{Plugin, PluginError, ABI_VERSION, ABI_VERSION_MIN};
use nix::errno::Errno;

mod common;
use common::cc;

fn dir() -> PathBuf {
    cc::tmp_dir("plugin_load")
}

/// Compiles `src` into `lib<name>.so` against include/nvmf_offload.h.
fn shared_lib(name: &str, src: &str) -> PathBuf {
    let d = dir();
    let c = d.join(format!("{name}.c"));
    let so = d.join(format!("lib{name}.so"));
    std::fs::write(&c, src).unwrap();
    let flags = [&cc::SHARED[..], &["-std=c11", "-Wall", "-Werror"]].concat();
    cc::compile(&flags, &c, &so, &[]);
    so
}

/// A C plugin whose entry points all exist: `version` and `open_rc` chosen by the test.
fn stub_plugin(name: &str, version: &str, open_rc: &str) -> PathBuf {
    shared_lib(
        name,
        &format!(
            r#"#include <errno.h>
#include "nvmf_offload.h"
uint32_t nvmf_offload_abi_version(void) {{ return {version}; }}
int nvmf_offload_open(const struct nvmf_host_env *env, struct nvmf_offload_dev **out) {{
	(void)env; (void)out; return ({open_rc});
}}
void nvmf_offload_close(struct nvmf_offload_dev *dev) {{ (void)dev; }}
int nvmf_offload_verbs(struct nvmf_offload_dev *d, const struct nvmf_verbs_ops **o, void **c) {{
	(void)d; (void)o; (void)c; return -ENOTSUP;
}}
int nvmf_offload_get_ops(struct nvmf_offload_dev *d, const struct nvmf_offload_ops **o, void **c) {{
	(void)d; (void)o; (void)c; return -ENOTSUP;
}}
int nvmf_offload_progress(struct nvmf_offload_dev *d, uint64_t now) {{ (void)d; (void)now; return 0; }}
const char *nvmf_offload_open_error(void) {{ return "no such card in this machine"; }}
"#
        ),
    )
}

struct NoBus;

impl PciHost for NoBus {
    fn find(&self, _mr: MrId, _addr: u64) -> Option<PciFunction> {
        None
    }
    fn ring_sq(&self, _id: u64, _sq: u32, _tail: u16) -> Result<(), Errno> {
        Err(Errno::ENODEV)
    }
    fn ring_cq(&self, _id: u64, _head: u16) -> Result<(), Errno> {
        Err(Errno::ENODEV)
    }
    fn status(&self, _id: u64) -> Result<PciStatus, Errno> {
        Err(Errno::ENODEV)
    }
}

#[test]
fn missing_file() {
    let p = dir().join("nope.so");
    let e = Plugin::load(&p).unwrap_err();
    assert_eq!(e, PluginError::NotFound { path: p.clone() });
    assert!(e.to_string().contains("no such file"), "{e}");
}

#[test]
fn a_text_file_is_not_loadable() {
    let p = dir().join("notes.so");
    std::fs::write(&p, "not an ELF file\n").unwrap();
    match Plugin::load(&p).unwrap_err() {
        PluginError::NotLoadable { path, reason } => {
            assert_eq!(path, p);
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_library_without_the_entry_points_is_not_a_plugin() {
    let p = shared_lib("plain", "int plain_function(void) { return 42; }\n");
    let e = Plugin::load(&p).unwrap_err();
    assert_eq!(
        e,
        PluginError::NotAPlugin {
            path: p,
            symbol: "nvmf_offload_abi_version"
        }
    );
    assert!(e.to_string().contains("not an nvmf-offload plugin"), "{e}");
}

#[test]
fn another_abi_version_is_refused() {
    for (name, version, got) in [
        ("future", "NVMF_OFFLOAD_ABI_VERSION + 41", ABI_VERSION + 41),
        ("ancient", "0", 0),
    ] {
        let p = stub_plugin(name, version, "-EINVAL");
        let e = Plugin::load(&p).unwrap_err();
        assert_eq!(
            e,
            PluginError::AbiMismatch {
                path: p,
                plugin: got,
                min: ABI_VERSION_MIN,
                host: ABI_VERSION
            }
        );
        let text = e.to_string();
        assert!(text.contains(&format!("ABI version {got}")), "{text}");
        assert!(
            text.contains(&format!("versions {ABI_VERSION_MIN} to {ABI_VERSION}")),
            "{text}"
        );
    }
}

/// A plugin of ABI 1 still loads, and is told the host speaks version 1 to it.
#[tokio::test(start_paused = true)]
async fn a_version_1_plugin_loads_and_is_spoken_to_in_version_1() {
    let p = stub_plugin("v1", "1", "env->abi_version == 1 ? -ENODEV : -EPROTO");
    let plugin = Plugin::load(&p).unwrap();
    assert_eq!(plugin.abi_version(), 1);
    let fabric = SimFabric::new(1);
    let e = plugin
        .open(fabric.open("sim0").unwrap(), Arc::new(NoBus), "")
        .err()
        .expect("the stub's open fails");
    assert_eq!(
        e.errno(),
        Some(Errno::ENODEV),
        "env.abi_version was not 1: {e}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_open_gives_its_errno_and_reason() {
    let p = stub_plugin("nocard", "NVMF_OFFLOAD_ABI_VERSION", "-ENODEV");
    let plugin = Plugin::load(&p).unwrap();
    assert_eq!(plugin.path(), p.as_path());
    let fabric = SimFabric::new(1);
    let lower = fabric.open("sim0").unwrap();
    let e = plugin
        .open(lower, Arc::new(NoBus), "anything")
        .err()
        .expect("open fails");
    assert_eq!(
        e,
        PluginError::OpenFailed {
            path: p,
            errno: Errno::ENODEV,
            reason: Some("no such card in this machine".into())
        }
    );
    assert_eq!(e.errno(), Some(Errno::ENODEV));
    assert!(e.to_string().contains("no such card"), "{e}");
}

#[tokio::test(start_paused = true)]
async fn an_open_without_vtables_is_an_error() {
    let p = stub_plugin(
        "hollow",
        "NVMF_OFFLOAD_ABI_VERSION",
        "(*out = (struct nvmf_offload_dev *)1, 0)",
    );
    let plugin = Plugin::load(&p).unwrap();
    let fabric = SimFabric::new(1);
    let e = plugin
        .open(fabric.open("sim0").unwrap(), Arc::new(NoBus), "")
        .err()
        .expect("open fails");
    assert_eq!(e.errno(), Some(Errno::EOPNOTSUPP), "{e}");
}

#[test]
fn open_outside_a_runtime_is_an_error() {
    let p = stub_plugin("norun", "NVMF_OFFLOAD_ABI_VERSION", "-ENODEV");
    let plugin = Plugin::load(&p).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let lower = rt.block_on(async { SimFabric::new(1).open("sim0").unwrap() });
    let e = plugin
        .open(lower, Arc::new(NoBus), "")
        .err()
        .expect("fails");
    assert!(matches!(e, PluginError::NoRuntime { .. }), "{e:?}");
}
