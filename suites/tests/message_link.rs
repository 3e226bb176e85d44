//! The whole catalog against the reference target whose device context, offload provider
//! and emulated backends are reached only by messages (`Options::message_link`: two-host
//! mode's calls through `harness::remote::LocalLink` and `JsonBackendLink`, each written as
//! JSON and parsed back): every case
//! ends with the verdict of a direct run, and its trace still matches its snapshot (the
//! snapshot comparison is part of a pass). Issue 19's proof that the messages carry all a
//! case needs, before they cross a wire.

use harness::runner::Verdict;
use suites::catalog;
use suites::run::{run, Options};

fn verdicts(message_link: bool, profile: &str) -> Vec<(String, Verdict)> {
    let opts = Options {
        profile: harness::api::Profile::builtin(profile).unwrap(),
        snapshots: Some(suites::snapshot::default_dir()),
        message_link,
        ..Options::default()
    };
    let result = run(&catalog::all(), &opts, |_| {});
    result
        .cases
        .into_iter()
        .map(|c| (c.id, c.verdict))
        .collect()
}

#[test]
fn every_case_ends_the_same_through_messages() {
    for profile in ["full", "tight"] {
        let direct = verdicts(false, profile);
        let linked = verdicts(true, profile);
        assert_eq!(direct.len(), linked.len());
        let differ: Vec<String> = direct
            .iter()
            .zip(&linked)
            .filter(|(d, l)| format!("{:?}", d.1) != format!("{:?}", l.1))
            .map(|(d, l)| format!("{}: {:?} directly, {:?} through messages", d.0, d.1, l.1))
            .collect();
        assert!(differ.is_empty(), "{profile}:\n{}", differ.join("\n"));
        let passed = linked
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Pass))
            .count();
        assert!(passed > 300, "{profile}: only {passed} passed");
    }
}
