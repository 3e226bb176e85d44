//! `nvmf-conform soak` against the reference target: clean on every built-in profile, and
//! a divergence, shrunk and replayable, for every quirk.

use std::time::Duration;

use harness::api::Profile;
use reference_target::quirks::{Quirk, Quirks};
use suites::run::Options;
use suites::soak::{self, FaultKind, SoakOptions, SoakResult};

fn options(profile: &str, quirks: Quirks, seed: u64) -> Options {
    Options {
        seed,
        profile: Profile::builtin(profile).expect("built-in profile"),
        quirks,
        ..Options::default()
    }
}

fn episodes(n: u64) -> SoakOptions {
    SoakOptions {
        duration: Duration::from_secs(3600),
        episodes: Some(n),
        ..SoakOptions::default()
    }
}

fn run(opts: &Options, s: &SoakOptions) -> SoakResult {
    soak::soak(opts, s, |_| {})
}

#[test]
fn the_reference_target_never_diverges_on_any_builtin_profile() {
    for profile in ["full", "minimal", "tight"] {
        let r = run(&options(profile, Quirks::none(), 3), &episodes(4));
        assert_eq!(r.untestable, None, "{profile}");
        assert_eq!(r.divergence, None, "{profile}");
        assert_eq!(r.progress.episodes, 4, "{profile}");
        let cov = &r.progress.coverage;
        assert!(cov.steps >= 4 * 99, "{profile}: {} steps", cov.steps);
        // `minimal` offloads writes alone and has no software path: it is sent nothing else.
        let kinds: &[&str] = if profile == "minimal" {
            &["write"]
        } else {
            &["read", "write"]
        };
        for kind in kinds {
            assert!(
                cov.answers.contains_key(&(*kind, "success")),
                "{profile}: no successful {kind}: {:?}",
                cov.answers
            );
        }
        assert!(!cov.faults.is_empty(), "{profile}: no fault injected");
    }
}

#[test]
fn every_command_kind_and_fault_is_covered_on_full() {
    let r = run(&options("full", Quirks::none(), 0), &episodes(12));
    assert_eq!(r.divergence, None);
    let cov = &r.progress.coverage;
    for (kind, outcome) in [
        ("read", "success"),
        ("write", "success"),
        ("flush", "success"),
        ("write-zeroes", "success"),
        ("deallocate", "success"),
        ("short-sgl-read", "refused"),
        ("read", "unrecovered-read-error"),
        ("read", "namespace-not-ready"),
        ("connect-not-allowed", "connect-invalid-host"),
        ("write-before-connect", "command-sequence-error"),
        ("api:create-srq", "ok"),
        ("api:destroy-srq", "ok"),
        ("api:destroy-srq", "EBUSY"),
        ("api:create-ctrl", "ok"),
        ("api:map", "ok"),
        ("api:map", "EEXIST"),
        ("api:map", "EOPNOTSUPP"),
        ("api:unmap", "ENOENT"),
    ] {
        assert!(
            cov.answers.contains_key(&(kind, outcome)),
            "{kind}/{outcome} not covered: {:?}",
            cov.answers
        );
    }
    for f in FaultKind::ALL {
        assert!(cov.faults.contains_key(f.name()), "{f} never injected");
    }
}

/// The profile a quirk shows on: `unsupported-op-silent` needs a device without a
/// software path, which `minimal` is.
fn profile_for(q: Quirk) -> &'static str {
    if q == Quirk::UnsupportedOpSilent {
        "minimal"
    } else {
        "full"
    }
}

#[test]
fn a_short_soak_finds_every_quirk_and_replays_it() {
    for q in Quirk::ALL {
        let opts = options(profile_for(q), Quirks::one(q), 0);
        let r = run(&opts, &episodes(40));
        let d = r
            .divergence
            .unwrap_or_else(|| panic!("quirk {} not found in 40 episodes", q.name()));
        assert!(
            !d.steps.is_empty() && d.steps.len() <= 20,
            "{}: {d:?}",
            q.name()
        );
        // The shrunk steps, replayed by seed and index, diverge the same way.
        let replay = SoakOptions {
            episode: Some(d.episode),
            only: Some(d.steps.clone()),
            ..SoakOptions::default()
        };
        let again = run(&opts, &replay)
            .divergence
            .unwrap_or_else(|| panic!("{}: the replay did not diverge", q.name()));
        assert_eq!(again.message, d.message, "{}", q.name());
        assert_eq!(again.steps, d.steps, "{}", q.name());
    }
}

#[test]
fn the_report_says_what_diverged_and_how_to_replay_it() {
    let opts = options("full", Quirks::one(Quirk::AllowAnyHost), 5);
    let r = run(&opts, &episodes(10));
    let d = r.divergence.clone().expect("a divergence");
    let run = soak::to_run(&opts, &r, "--target reference:full --faults all");
    assert_eq!(run.cases.len(), 1);
    let rec = &run.cases[0];
    assert_eq!(rec.id, "soak.seed-5");
    let harness::runner::Verdict::Fail(m) = &rec.verdict else {
        panic!("{:?}", rec.verdict);
    };
    assert!(m.contains("allow-list"), "{m}");
    let cmd = soak::replay_command(5, &d, "--target reference:full --faults all");
    assert!(m.contains(&cmd), "{m}");
    assert!(cmd.starts_with(&format!(
        "nvmf-conform soak --seed 5 --episode {} --only ",
        d.episode
    )));
    assert_eq!(run.exit_code(), harness::runner::ExitCode::Failed);
}

#[test]
fn fault_lists_parse_and_refuse_unknown_names() {
    assert_eq!(soak::parse_faults("none").unwrap(), vec![]);
    assert_eq!(soak::parse_faults("all").unwrap(), FaultKind::ALL.to_vec());
    assert_eq!(
        soak::parse_faults("media-error,timeout,timeout").unwrap(),
        vec![FaultKind::Timeout, FaultKind::MediaError]
    );
    let e = soak::parse_faults("timeout,link-flap").unwrap_err();
    assert!(e.contains("link-flap") && e.contains("pci-error"), "{e}");
}

#[test]
fn a_plugin_device_soaks_clean_and_its_quirk_is_found() {
    use harness::plugin::Plugin;
    use suites::run::PluginTarget;
    let path = nvmf_reference_plugin::library_path()
        .expect("cargo builds libnvmf_reference_plugin.so for this test (a dev-dependency)");
    let through = |config: &str| Options {
        plugin: Some(PluginTarget {
            plugin: Plugin::load(&path).unwrap_or_else(|e| panic!("{e}")),
            config: config.into(),
        }),
        ..Options::default()
    };
    for config in ["profile=full", "profile=full;doorbells=memory"] {
        let r = run(&through(config), &episodes(3));
        assert_eq!(r.untestable, None, "{config}");
        assert_eq!(r.divergence, None, "{config}");
        assert!(r.progress.coverage.steps >= 3 * 99, "{config}");
    }
    let r = run(
        &through("profile=full;quirks=early-write-ack"),
        &episodes(40),
    );
    let d = r
        .divergence
        .expect("early-write-ack through the plugin is found");
    // A write that met a timeout or a PCI error was acknowledged with success all the same.
    assert!(
        d.message.contains("write") && d.message.contains("got Successful Completion"),
        "{}",
        d.message
    );
}
