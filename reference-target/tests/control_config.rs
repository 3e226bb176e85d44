//! The configuration file: every shipped fixture parses; every error names the field (and
//! the line when there is one).

use std::path::Path;

use harness::backend::emulated::LbaFormat;
use reference_target::control::{Backing, Config, ConfigError};
use reference_target::quirks::Quirk;
use rstest::rstest;

fn configs_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/configs")
}

#[test]
fn every_fixture_config_parses() {
    let mut n = 0;
    for entry in std::fs::read_dir(configs_dir()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            let c = Config::load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(!c.ports.is_empty(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 2, "fixtures found: {n}");
}

#[test]
fn reference_fixture_has_every_lba_format() {
    let c = Config::load(&configs_dir().join("reference.toml")).unwrap();
    assert_eq!(c.profile.name, "full");
    assert_eq!(c.subsystems.len(), 1);
    let s = &c.subsystems[0];
    assert_eq!(s.staging_buf, Some(4 << 20));
    assert_eq!(s.queue_depth, 128);
    assert!(s.offload);
    let formats: Vec<LbaFormat> = s.namespaces.iter().map(|n| n.lba_format).collect();
    assert_eq!(formats, LbaFormat::SUPPORTED.to_vec());
    assert!(s.namespaces.iter().all(|n| n.backing == Backing::Ram));
    assert_eq!(s.namespaces[0].blocks(), 16 * 1024 * 1024 / 512);
}

const BASE: &str = r#"
profile = "full"
quirks = ["allow-any-host"]

[[port]]
addr = "127.0.10.1:4420"
subsystem = "nqn.x:a"

[[subsystem]]
nqn = "nqn.x:a"
hosts = ["nqn.h:1"]

[[subsystem.namespace]]
nsid = 1
backing = "file:/tmp/ns1.img"
size = 1048576
lba_format = "4096+8"
"#;

fn err(text: &str) -> ConfigError {
    Config::parse("t.toml", text).unwrap_err()
}

#[test]
fn base_parses() {
    let c = Config::parse("t.toml", BASE).unwrap();
    assert!(c.quirks.has(Quirk::AllowAnyHost));
    let n = &c.subsystems[0].namespaces[0];
    assert_eq!(n.backing, Backing::File("/tmp/ns1.img".into()));
    assert_eq!(n.size, 1 << 20);
    assert_eq!(n.lba_format, LbaFormat::L4096_8);
    assert_eq!(c.subsystems[0].queue_depth, 128, "default");
    assert_eq!(
        c.subsystems[0].cntlids,
        1..=0xFFEF,
        "default controller IDs"
    );
}

#[test]
fn controller_id_range() {
    let with = |lines: &str| BASE.replace("hosts = [", &format!("{lines}\nhosts = ["));
    let c = Config::parse("t.toml", &with("cntlid_min = 10\ncntlid_max = 12")).unwrap();
    assert_eq!(c.subsystems[0].cntlids, 10..=12);
    let c = Config::parse("t.toml", &with("cntlid_min = 65519")).unwrap();
    assert_eq!(c.subsystems[0].cntlids, 0xFFEF..=0xFFEF, "one ID");
    let c = Config::parse("t.toml", &with("cntlid_max = 1")).unwrap();
    assert_eq!(c.subsystems[0].cntlids, 1..=1, "one ID");
    for (lines, field, line) in [
        ("cntlid_min = 0", "subsystem.cntlid_min", 11),
        ("cntlid_max = 65520", "subsystem.cntlid_max", 11),
        ("cntlid_max = 70000", "subsystem.cntlid_max", 11),
        ("cntlid_min = 5\ncntlid_max = 4", "subsystem.cntlid_min", 11),
    ] {
        let e = err(&with(lines));
        assert_eq!(e.field, field, "{lines}: {e}");
        assert_eq!(e.line, Some(line), "{lines}: {e}");
        assert!(e.message.contains("nqn.x:a"), "{lines}: {e}");
    }
    let e = err(&with("cntlid_min = -1"));
    assert!(e.to_string().contains("cntlid_min"), "{e}");
}

#[test]
fn maximum_data_transfer_size() {
    let with = |lines: &str| BASE.replace("hosts = [", &format!("{lines}\nhosts = ["));
    let c = Config::parse("t.toml", BASE).unwrap();
    assert_eq!(c.subsystems[0].mdts, 1 << 20, "default 1 MiB");
    for (v, want) in [
        ("\"4KiB\"", 4096),
        ("\"256KiB\"", 256 << 10),
        ("16777216", 16 << 20),
    ] {
        let c = Config::parse("t.toml", &with(&format!("mdts = {v}"))).unwrap();
        assert_eq!(c.subsystems[0].mdts, want, "{v}");
    }
    for v in ["8", "\"2KiB\"", "\"96KiB\"", "\"32MiB\"", "0", "\"big\""] {
        let e = err(&with(&format!("mdts = {v}")));
        assert_eq!(e.field, "subsystem.mdts", "{v}: {e}");
        assert_eq!(e.line, Some(11), "{v}: {e}");
    }
    let e = err(&with("mdts = 8"));
    assert!(
        e.message.contains("in bytes") && e.message.contains("nqn.x:a"),
        "{e}"
    );
}

#[test]
fn errors_name_the_field_and_line() {
    let e = err(&BASE.replace("\"4096+8\"", "\"1024\""));
    assert_eq!(e.field, "subsystem.namespace.lba_format");
    assert_eq!(e.line, Some(17));
    assert!(
        e.to_string()
            .starts_with("t.toml:17: subsystem.namespace.lba_format:"),
        "{e}"
    );

    let dup = BASE.to_string() + "[[subsystem.namespace]]\nnsid = 1\nsize = \"1MiB\"\n";
    let e = err(&dup);
    assert_eq!(e.field, "subsystem.namespace.nsid");
    assert!(e.message.contains("duplicate nsid 1"), "{e}");
    assert_eq!(e.line, Some(19));

    let e = err(&BASE.replace("subsystem = \"nqn.x:a\"", "subsystem = \"nqn.x:b\""));
    assert_eq!(e.field, "port.subsystem");
    assert!(e.message.contains("nqn.x:b"), "{e}");
    assert_eq!(e.line, Some(7));

    let e = err(&BASE.replace("size = 1048576", "size = \"lots\""));
    assert_eq!(e.field, "subsystem.namespace.size");
    let e = err(&BASE.replace("size = 1048576", "size = \"12345\""));
    assert_eq!(e.field, "subsystem.namespace.size", "not whole blocks");

    let e = err(&BASE.replace("hosts = [", "colour = \"blue\"\nhosts = ["));
    assert_eq!(e.field, "colour", "{e}");
    assert!(e.message.contains("unknown field"), "{e}");
    assert_eq!(e.line, Some(11));

    let e = err(&BASE.replace("\"allow-any-host\"", "\"be-nice\""));
    assert_eq!(e.field, "quirks");
    assert!(e.message.contains("be-nice"));

    let e = err(&BASE.replace("profile = \"full\"", "profile = \"huge\""));
    assert_eq!(e.field, "profile");

    let e = err(&BASE.replace("backing = \"file:/tmp/ns1.img\"", "backing = \"tape\""));
    assert_eq!(e.field, "subsystem.namespace.backing");

    let e = err(&BASE.replace("127.0.10.1:4420", "here"));
    assert_eq!(e.field, "port.addr");

    let e = err(&BASE.replace("nsid = 1", "nsid = 0"));
    assert_eq!(e.field, "subsystem.namespace.nsid");

    let e = err(&BASE.replace("nsid = 1", "nsid = \"one\""));
    assert!(e.line.is_some(), "{e}");
    assert!(e.to_string().contains("nsid"), "{e}");

    let e = err(&(BASE.to_string() + "[[subsystem]]\nnqn = \"nqn.x:a\"\n"));
    assert_eq!(e.field, "subsystem.nqn");
    assert!(e.message.contains("duplicate"));
}

#[test]
fn profile_by_path() {
    let text = BASE.replace(
        "profile = \"full\"",
        &format!(
            "profile = \"{}\"",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/profiles/tight.toml")
                .display()
        ),
    );
    let c = Config::parse("t.toml", &text).unwrap();
    assert_eq!(c.profile.name, "tight");
    let e = err(&BASE.replace("profile = \"full\"", "profile = \"/nonexistent/p.toml\""));
    assert_eq!(e.field, "profile");
}

/// A subsystem served from a real controller: `[subsystem.backend]` with `kind = "vfio"`.
const VFIO: &str = r#"
[[port]]
addr = "127.0.10.1:4420"
subsystem = "nqn.x:a"

[[subsystem]]
nqn = "nqn.x:a"
allow_any_host = true

[subsystem.backend]
kind = "vfio"
pci = "0000:01:00.0"
"#;

#[test]
fn a_vfio_backend_names_its_controller_and_takes_no_namespaces() {
    use reference_target::control::BackendConfig;
    let c = Config::parse("t.toml", VFIO).unwrap();
    let s = &c.subsystems[0];
    assert_eq!(
        s.backend,
        BackendConfig::Vfio {
            pci: "0000:01:00.0".parse().unwrap()
        }
    );
    assert!(s.namespaces.is_empty(), "they come from Identify at start");
    let plain =
        Config::parse("t.toml", &BASE.replace("quirks = [\"allow-any-host\"]", "")).unwrap();
    assert_eq!(plain.subsystems[0].backend, BackendConfig::Emulated);
}

/// Each wrong vfio backend is refused with an error naming the field and the line.
#[rstest]
#[case::no_pci(VFIO.replace("pci = \"0000:01:00.0\"\n", ""), "subsystem.backend.pci", "needs the controller's PCI address")]
#[case::short_pci(VFIO.replace("0000:01:00.0", "0000:01:00"), "subsystem.backend.pci", "0000:01:00")]
#[case::bad_device(VFIO.replace("0000:01:00.0", "0000:01:20.0"), "subsystem.backend.pci", "device")]
#[case::unknown_kind(VFIO.replace("\"vfio\"", "\"spdk\""), "subsystem.backend.kind", "`spdk`")]
#[case::pci_on_emulated(VFIO.replace("\"vfio\"", "\"emulated\""), "subsystem.backend.pci", "only a \"vfio\" backend")]
#[case::namespace(VFIO.to_string() + "\n[[subsystem.namespace]]\nnsid = 1\nsize = 4096\n", "subsystem.namespace", "come from the controller's Identify")]
fn a_wrong_vfio_backend_names_field_and_line(
    #[case] text: String,
    #[case] field: &str,
    #[case] words: &str,
) {
    let e = err(&text);
    assert_eq!(e.field, field, "{e}");
    assert!(e.message.contains(words), "{e}");
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn a_controller_backs_one_subsystem_and_backend_keys_are_known() {
    let twice = VFIO.to_string()
        + "\n[[subsystem]]\nnqn = \"nqn.x:b\"\nallow_any_host = true\n[subsystem.backend]\nkind = \"vfio\"\npci = \"0000:01:00.0\"\n";
    let e = err(&twice);
    assert_eq!(e.field, "subsystem.backend.pci");
    assert!(e.message.contains("already backs another subsystem"), "{e}");
    let e = err(&VFIO.replace("pci =", "bus = 1\npci ="));
    assert_eq!(e.field, "bus", "{e}");
}
