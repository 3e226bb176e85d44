//! The vendor plugin path end to end: the whole catalog through the reference engine built
//! as a plugin (`libnvmf_reference_plugin.so`, loaded through `include/nvmf_offload.h`)
//! gives the same verdicts as the embedded reference target, and a quirk passed through
//! the plugin's configuration is caught as it is in process.

use harness::plugin::Plugin;
use harness::runner::{RunResult, Verdict};
use suites::catalog;
use suites::run::{self, Options, PluginTarget};

fn plugin() -> Plugin {
    let path = nvmf_reference_plugin::library_path()
        .expect("cargo builds libnvmf_reference_plugin.so for this test (a dev-dependency)");
    Plugin::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn through(config: &str, entries: &[catalog::Entry]) -> RunResult {
    let opts = Options {
        snapshots: Some(suites::snapshot::default_dir()),
        plugin: Some(PluginTarget {
            plugin: plugin(),
            config: config.into(),
        }),
        ..Options::default()
    };
    run::run(entries, &opts, |_| {})
}

#[test]
fn the_catalog_through_the_plugin_matches_the_embedded_target() {
    let entries: Vec<_> = catalog::all()
        .into_iter()
        .filter(|e| !e.id.starts_with("fabric."))
        .collect();
    let embedded = run::run(
        &entries,
        &Options {
            snapshots: Some(suites::snapshot::default_dir()),
            ..Options::default()
        },
        |_| {},
    );
    let plugged = through("profile=full", &entries);
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
