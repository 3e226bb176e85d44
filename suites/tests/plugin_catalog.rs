//! The vendor plugin path end to end: the whole catalog through the reference engine built
//! as a plugin (`libnvmf_reference_plugin.so`, loaded through `include/nvmf_offload.h`)
//! gives the same verdicts as the embedded reference target, with its doorbells rung by
//! calls and, as a NIC rings them, written in memory (ABI 2, `doorbells=memory`, with PRPs
//! translated through a bus-address window), each case in its own child; and a quirk
//! passed through the plugin's configuration is caught as it is in process.

use harness::plugin::Plugin;
use harness::runner::{RunResult, Verdict};
use suites::catalog;
use suites::isolate::Isolation;
use suites::run::{self, Options, PluginTarget};

#[path = "../../harness/tests/common/cc.rs"]
mod cc;

fn plugin() -> Plugin {
    let path = nvmf_reference_plugin::library_path()
        .expect("cargo builds libnvmf_reference_plugin.so for this test (a dev-dependency)");
    Plugin::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn through(config: &str, entries: &[catalog::Entry]) -> RunResult {
    through_isolated(config, entries, Isolation::None)
}

fn through_isolated(config: &str, entries: &[catalog::Entry], isolation: Isolation) -> RunResult {
    let opts = Options {
        snapshots: Some(suites::snapshot::default_dir()),
        plugin: Some(PluginTarget {
            plugin: plugin(),
            config: config.into(),
        }),
        isolation,
        ..Options::default()
    };
    run::run(entries, &opts, |_| {})
}

#[test]
fn the_catalog_through_the_plugin_matches_the_embedded_target() {
    same_verdicts_as_embedded(|entries| through("profile=full", entries));
}

/// The reference plugin as a NIC: doorbells written in memory (never a `ring_sq`,
/// `ring_cq` or `status` call: the host refuses them for these controllers, and every
/// backend counter check asserts none was made), completions and PCI errors seen in
/// memory, PRPs as bus addresses through a window, each case in its own child process.
/// The pci-error, timeout and recovery areas run and pass.
#[test]
fn the_catalog_through_the_plugin_with_memory_doorbells_matches_the_embedded_target() {
    let r = same_verdicts_as_embedded(|entries| {
        through_isolated(
            "profile=full;doorbells=memory;prp-window=0x100000000000000",
            entries,
            Isolation::Case,
        )
    });
    for area in ["pci-error", "timeout", "recovery", "backend-error"] {
        let ran = r
            .cases
            .iter()
            .filter(|c| c.id.starts_with(&format!("{area}.")))
            .filter(|c| c.verdict == Verdict::Pass)
            .count();
        assert!(ran > 0, "area {area}: no case passed in memory mode");
    }
}

/// Runs the catalog (fabric cases aside) embedded and through `plugged`; every verdict must
/// be the same and none a failure. Returns the plugged run.
fn same_verdicts_as_embedded(plugged: impl FnOnce(&[catalog::Entry]) -> RunResult) -> RunResult {
    same_verdicts_as_embedded_except(&[], plugged)
}

/// [`same_verdicts_as_embedded`] without the cases `except`.
fn same_verdicts_as_embedded_except(
    except: &[&str],
    plugged: impl FnOnce(&[catalog::Entry]) -> RunResult,
) -> RunResult {
    let entries: Vec<_> = catalog::all()
        .into_iter()
        .filter(|e| !e.id.starts_with("fabric.") && !except.contains(&e.id.as_str()))
        .collect();
    let embedded = run::run(
        &entries,
        &Options {
            snapshots: Some(suites::snapshot::default_dir()),
            ..Options::default()
        },
        |_| {},
    );
    let plugged = plugged(&entries);
    assert!(plugged.meta.target.starts_with("plugin:"));
    assert!(
        !plugged.meta.caps.is_empty(),
        "the plugin's caps are reported"
    );
    let mut differ = Vec::new();
    for (a, b) in embedded.cases.iter().zip(&plugged.cases) {
        assert_eq!(a.id, b.id);
        if a.verdict != b.verdict {
            differ.push(format!(
                "{}: embedded {:?}, plugin {:?}",
                a.id, a.verdict, b.verdict
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} cases differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    assert_eq!(plugged.count("fail") + plugged.count("error"), 0);
    plugged
}

#[test]
fn a_quirk_through_the_plugin_is_caught() {
    let entries = catalog::select(&["mapping.eexist.other-ctrl-same-srq".to_string()]);
    let r = through("profile=full;quirks=eexist-per-ctrl", &entries);
    assert!(
        matches!(r.cases[0].verdict, Verdict::Fail(_)),
        "{:?}",
        r.cases[0].verdict
    );
    let r = through("profile=full", &entries);
    assert_eq!(r.cases[0].verdict, Verdict::Pass);
}

/// Compiles `fixtures/plugins/nic_shim.c` (with `defines`) into `lib<name>.so`.
fn nic_shim(name: &str, defines: &[&str]) -> std::path::PathBuf {
    let so = cc::tmp_dir("nic_shim").join(format!("lib{name}.so"));
    let flags = [
        &cc::SHARED[..],
        &["-std=c11", "-Wall", "-Wextra", "-Werror"],
        defines,
    ]
    .concat();
    let src = cc::repo_root().join("fixtures/plugins/nic_shim.c");
    cc::compile(&flags, &src, &so, &["-ldl"]);
    so
}

fn through_shim(shim: &std::path::Path, config: &str, entries: &[catalog::Entry]) -> RunResult {
    let inner = nvmf_reference_plugin::library_path().expect("the reference plugin is built");
    let opts = Options {
        snapshots: Some(suites::snapshot::default_dir()),
        plugin: Some(PluginTarget {
            plugin: Plugin::load(shim).unwrap_or_else(|e| panic!("{e}")),
            config: format!("inner={};{config}", inner.display()),
        }),
        isolation: Isolation::Case,
        ..Options::default()
    };
    run::run(entries, &opts, |_| {})
}

/// A NIC written in C against the header (`fixtures/plugins/nic_shim.c`): it serves the
/// engine's doorbell and status calls from memory, as a NIC's hardware does, and tells the
/// host it writes its doorbells. The whole catalog passes through it.
#[test]
fn the_catalog_through_a_c_nic_with_memory_doorbells_matches_the_embedded_target() {
    let shim = nic_shim("nic_shim", &[]);
    let r = same_verdicts_as_embedded(|entries| {
        through_shim(&shim, "doorbells=memory;profile=full", entries)
    });
    assert_eq!(Plugin::load(&shim).unwrap().abi_version(), 2);
    assert!(r.count("pass") > 0);
}

/// The same C plugin built for ABI version 1 still loads and runs the catalog with its
/// doorbells rung by calls; asked for memory doorbells, which version 1 does not have, it
/// refuses to open and says why.
#[test]
fn a_version_1_plugin_runs_as_before() {
    let shim = nic_shim("nic_shim_v1", &["-DSHIM_ABI=1"]);
    assert_eq!(Plugin::load(&shim).unwrap().abi_version(), 1);
    // Everything but the device's own PCI-error hook, which version 1 does not have.
    const HOOK: &str = "pci-error.device-injected";
    same_verdicts_as_embedded_except(&[HOOK], |entries| {
        through_shim(&shim, "doorbells=call;profile=full", entries)
    });
    let hook = catalog::select(&[HOOK.to_string()]);
    let r = through_shim(&shim, "doorbells=call;profile=full", &hook);
    match &r.cases[0].verdict {
        Verdict::Skip(why) => assert!(why.contains("inject_pci_error"), "{why}"),
        v => panic!("{HOOK} through a version-1 plugin: {v:?}"),
    }
    let entries = catalog::select(&["datapath.write-read.lba-4096".to_string()]);
    let r = through_shim(&shim, "doorbells=memory;profile=full", &entries);
    match &r.cases[0].verdict {
        Verdict::Error(m) | Verdict::Fail(m) => {
            assert!(m.contains("doorbells=memory needs ABI version 2"), "{m}")
        }
        v => panic!("{v:?}"),
    }
}
