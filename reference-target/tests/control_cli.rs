//! The `nvmf-reference-target` command: quirk listing, usage errors, the sim self-test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nvmf-reference-target"))
}

fn reference() -> PathBuf {
    fixture("reference.toml")
}

/// The fixture config `fixtures/configs/NAME`.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/configs")
        .join(name)
}

/// Runs the binary with `args` then `--config config`.
fn with_config(args: &[&str], config: impl AsRef<Path>) -> Output {
    bin()
        .args(args)
        .arg("--config")
        .arg(config.as_ref())
        .output()
        .unwrap()
}

/// The standard output of `out`, after checking the binary exited with `code`.
fn stdout_of(out: &Output, code: i32) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(code), "{text}");
    text
}

#[test]
fn list_quirks_names_each_with_a_description() {
    let out = bin().arg("--list-quirks").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 12, "{text}");
    assert_eq!(lines.len(), reference_target::quirks::Quirk::ALL.len());
    assert!(lines.iter().any(|l| l.starts_with("allow-any-host ")));
    assert!(
        lines.iter().all(|l| l.split_whitespace().count() >= 3),
        "{text}"
    );
}

#[test]
fn bad_config_names_the_field_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("nvmf-rt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.toml");
    let text = std::fs::read_to_string(reference())
        .unwrap()
        .replace("lba_format = \"4096+64\"", "lba_format = \"4096+65\"");
    std::fs::write(&p, text).unwrap();
    let out = bin().arg("--config").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("subsystem.namespace.lba_format"), "{err}");
    assert!(err.contains("bad.toml:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2() {
    let out = with_config(&["--fabric", "verbs"], reference());
    let err = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "verbs") {
        // Built with verbs, on a machine without RDMA: nothing to serve on (125), and why.
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.contains("no RDMA device"), "{err}");
    } else {
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("not built in this build"), "{err}");
    }
    let out = with_config(&["--fabric", "infiniband"], reference());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown fabric"));
    // --listen replaces the address of the config's one port; with two it cannot choose.
    let two = fixture("software-only.toml");
    let out = with_config(&["--listen", "127.0.10.1:4500"], two);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs exactly one"));
    let out = with_config(&["--quirk", "be-nice"], reference());
    assert_eq!(out.status.code(), Some(2));
    let out = bin().output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--config is required");
}

#[test]
fn a_real_controller_needs_consent_and_a_device() {
    let vfio = fixture("vfio.toml");
    let out = bin().arg("--config").arg(&vfio).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--allow-destructive 0000:01:00.0"), "{err}");
    let out = with_config(&["--allow-destructive", "0000:02:00.0"], &vfio);
    assert_eq!(out.status.code(), Some(2), "another device is no consent");
    // Consent given, on a machine where the device is not there: the start fails and says
    // which controller and why, without a panic.
    let out = with_config(&["--allow-destructive", "0000:01:00.0"], &vfio);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("vfio 0000:01:00.0, subsystem.backend.pci"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn self_test_on_sim_passes() {
    let out = with_config(&["--fabric", "sim", "--self-test"], reference());
    let text = stdout_of(&out, 0);
    assert!(text.contains("self-test: PASSED"), "{text}");
    assert_eq!(text.matches("read back OK").count(), 5, "{text}");
}

#[test]
fn listen_moves_the_port_and_the_self_test_follows() {
    let out = with_config(&["--self-test", "--listen", "127.0.10.1:4999"], reference());
    let text = stdout_of(&out, 0);
    assert!(text.contains("self-test 127.0.10.1:4999"), "{text}");
    assert!(text.contains("self-test: PASSED"), "{text}");
}

#[test]
fn self_test_failure_exits_1() {
    // The quirk leaves the first offloaded read unanswered: the self-test must fail.
    let out = with_config(&["--self-test", "--quirk", "hang-one-command"], reference());
    let text = stdout_of(&out, 1);
    assert!(text.contains("self-test: FAILED"), "{text}");
}

#[test]
fn software_only_fixture_self_test() {
    let cfg = fixture("software-only.toml");
    let out = with_config(&["--self-test", "--seed", "5"], cfg);
    let text = stdout_of(&out, 0);
    assert!(
        text.contains("write_cmds=0 read_cmds=0"),
        "the software-only subsystem: {text}"
    );
    assert!(
        text.contains("write_cmds=1 read_cmds=1"),
        "the offloaded one: {text}"
    );
}

#[test]
fn control_mode_refuses_what_it_cannot_combine() {
    for extra in [
        &["--config", "x.toml"][..],
        &["--listen", "127.0.0.1:4420"],
        &["--self-test"],
    ] {
        let out = bin()
            .args(["--control", "127.0.0.1:0", "--insecure"])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains("cannot be used with"), "{extra:?}: {err}");
    }
    // what the channel serves: the reference engine or a plugin, named precisely
    let refusals: [(&[&str], &str); 4] = [
        (
            &["--target", "bogus"],
            "--target bogus: expected reference or plugin:PATH",
        ),
        (
            &["--target", "plugin:"],
            "expected reference or plugin:PATH",
        ),
        (
            &["--target", "plugin:/nowhere/libvendor.so"],
            "/nowhere/libvendor.so",
        ),
        (
            &["--plugin-config", "profile=full"],
            "--plugin-config configures a --target plugin",
        ),
    ];
    refused(
        &["--control", "127.0.0.1:0", "--insecure", "--duration", "1"],
        &refusals,
    );
    // a real controller lent to runners: named as vfio:PCI, with consent naming it
    let lend: [(&[&str], &str); 4] = [
        (
            &["--backend", "emulated"],
            "--backend emulated: expected vfio:PCI",
        ),
        (
            &["--backend", "vfio:01:00"],
            "--backend vfio:01:00: PCI address",
        ),
        (
            &["--backend", "vfio:0000:01:00.0"],
            "add --allow-destructive 0000:01:00.0 to consent",
        ),
        (
            &[
                "--backend",
                "vfio:0000:01:00.0",
                "--allow-destructive",
                "0000:02:00.0",
            ],
            "add --allow-destructive 0000:01:00.0 to consent",
        ),
    ];
    refused(
        &["--control", "127.0.0.1:0", "--insecure", "--duration", "1"],
        &lend,
    );
    // consent given, on a machine without that controller: 125, naming it, no panic
    let out = bin()
        .args(["--control", "127.0.0.1:0", "--insecure", "--duration", "1"])
        .args(["--backend", "vfio:0000:01:00.0"])
        .args(["--allow-destructive", "0000:01:00.0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("--backend vfio:0000:01:00.0: real controller 0000:01:00.0:"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // and --backend says what a control channel lends: not without one
    let out = with_config(&["--backend", "vfio:0000:01:00.0"], reference());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--backend says what a control channel lends"),
        "{out:?}"
    );
    // a plugin is served on a control channel only
    let out = with_config(&["--target", "plugin:/x.so"], reference());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--control"),
        "{out:?}"
    );
    // neither a configuration nor a control channel: nothing to serve
    let out = bin().output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--config"), "{err}");
    // an address it cannot listen on, named
    let out = bin()
        .args([
            "--control",
            "192.0.2.1:4800",
            "--insecure",
            "--duration",
            "1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--control 192.0.2.1:4800"), "{err}");
}

#[test]
fn control_mode_serves_until_its_duration() {
    let dir = tmp_dir("duration");
    let secret = dir.join("lab.secret");
    let out = bin().arg("--new-secret").arg(&secret).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = bin()
        .args([
            "--control",
            "127.0.0.1:0",
            "--duration",
            "1",
            "--control-secret",
        ])
        .arg(&secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("control channel on 127.0.0.1:"), "{text}");
    assert!(text.contains("TLS 1.3"), "{text}");
    assert!(text.contains("certificate SHA-256 "), "{text}");
    assert!(text.contains("--duration elapsed: stopping"), "{text}");
    // --insecure says so at every start
    let out = bin()
        .args(["--control", "127.0.0.1:0", "--duration", "1", "--insecure"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("WARNING: control channel INSECURE (--insecure): no authentication"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Checks that `args` followed by each row's extra arguments is a usage error (2) whose
/// message says the row's text.
fn refused(args: &[&str], rows: &[(&[&str], &str)]) {
    for (extra, says) in rows {
        let out = bin().args(args).args(*extra).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nvmf-control-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn control_mode_needs_a_lab_secret_or_insecure() {
    let dir = tmp_dir("secret");
    let secret = dir.join("lab.secret");
    let out = bin().arg("--new-secret").arg(&secret).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("copy it (mode 600)"), "{text}");
    // never overwritten
    let out = bin().arg("--new-secret").arg(&secret).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("never overwritten"), "{err}");
    let loose = dir.join("loose.secret");
    std::fs::write(&loose, "0123456789abcdef0123456789abcdef\n").unwrap();
    let secret = secret.display().to_string();
    let loose = loose.display().to_string();
    let refusals: [(&[&str], &str); 5] = [
        (&[], "--control needs --control-secret FILE"),
        (
            &["--control-secret", "/nowhere/lab.secret"],
            "/nowhere/lab.secret",
        ),
        (&["--control-secret", &loose], "chmod 600"),
        (
            &["--control-secret", &secret, "--insecure"],
            "cannot be used with",
        ),
        (
            &["--control-secret", &secret, "--config", "x.toml"],
            "cannot be used with",
        ),
    ];
    refused(&["--control", "127.0.0.1:0", "--duration", "1"], &refusals);
    // a secret or --insecure without a control channel: nothing they apply to
    for extra in [&["--insecure"][..], &["--control-secret", &secret]] {
        let out = bin()
            .args(["--config", "x.toml"])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains("--control"), "{extra:?}: {err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
