//! How the source is laid out (issue 14's measures): no source file over 800 lines, and the
//! files of `suites/src/` and of the reference target's control plane import one another
//! without a cycle. A file's imports are its `use crate::…` / `use super::…` items and the
//! inline `crate::…` / `super::…` paths of its code (test modules left out), each resolved
//! to the file that holds the module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["framework", "dut"]`) → file, for every `.rs` file under `root`.
fn modules(root: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        out.insert(parts, f);
    }
    out
}

/// The longest prefix of `path` that is a module with a file.
fn resolve(mods: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<Vec<String>> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| mods.contains_key(p))
}

/// The text of a file without its comments and its `#[cfg(test)] mod tests { … }`.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::b::{c, d::e}` → `[a::b::c, a::b::d::e]` (one level of braces is enough here).
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    match (tree.find('{'), tree.rfind('}')) {
        (Some(open), Some(close)) => {
            let base = &tree[..open];
            let mut out = Vec::new();
            let mut depth = 0;
            let mut item = String::new();
            for ch in tree[open + 1..close].chars() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.extend(expand(&format!("{base}{item}")));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(ch);
            }
            if !item.is_empty() {
                out.extend(expand(&format!("{base}{item}")));
            }
            out
        }
        _ => vec![tree],
    }
}

/// The module a path written in module `at` (whose file is a `mod.rs` when `dir`) names.
fn absolute(at: &[String], dir: bool, path: &str) -> Option<Vec<String>> {
    let segs: Vec<&str> = path.split("::").collect();
    let (mut base, rest) = match segs.first()? {
        &"crate" => (Vec::new(), &segs[1..]),
        &"super" | &"self" => {
            let mut base = at.to_vec();
            if !dir {
                base.pop();
            }
            let mut i = 0;
            while let Some(&s) = segs.get(i) {
                match s {
                    "super" if i > 0 || dir => {
                        base.pop();
                    }
                    "super" | "self" => {}
                    _ => break,
                }
                i += 1;
            }
            (base, &segs[i..])
        }
        _ => return None,
    };
    for s in rest {
        let s = s.split(" as ").next().unwrap_or(s);
        if s == "self" || s == "*" || s.is_empty() {
            continue;
        }
        base.push(s.to_string());
    }
    Some(base)
}

/// Every import edge between the files of `root`.
fn edges(root: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mods = modules(root);
    let mut out = BTreeMap::new();
    for (at, file) in &mods {
        let dir = file
            .file_stem()
            .is_some_and(|s| s == "mod" || s == "lib" || s == "main");
        let text = code(file);
        let mut paths = Vec::new();
        for stmt in text.split(';') {
            let t = stmt.trim_start();
            let t = t.strip_prefix("pub ").unwrap_or(t);
            let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
            if let Some(tree) = t.strip_prefix("use ") {
                paths.extend(expand(tree));
            }
        }
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("crate::") || word.starts_with("super::") {
                paths.push(word.trim_end_matches("::").to_string());
            }
        }
        let set: BTreeSet<Vec<String>> = paths
            .iter()
            .filter_map(|p| absolute(at, dir, p))
            .filter_map(|p| resolve(&mods, &p))
            .filter(|p| p != at)
            .collect();
        out.insert(at.clone(), set);
    }
    out
}

/// A cycle among the modules under `prefix`, if there is one.
fn cycle(
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
    prefix: &[&str],
) -> Option<Vec<String>> {
    let inside = |m: &Vec<String>| m.len() >= prefix.len() && m[..prefix.len()] == *prefix;
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        inside: &dyn Fn(&Vec<String>) -> bool,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == m) {
            return Some(stack[i..].iter().map(|s| s.join("/")).collect());
        }
        if !done.insert(m.clone()) {
            return None;
        }
        stack.push(m.clone());
        for n in edges.get(m).into_iter().flatten().filter(|n| inside(n)) {
            if let Some(c) = visit(n, edges, inside, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .filter(|m| inside(m))
        .find_map(|m| visit(m, edges, &inside, &mut Vec::new(), &mut done))
}

#[test]
fn suites_files_import_one_another_without_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let e = edges(&root);
    assert!(e[&vec!["areas".to_string(), "admin".into()]].contains(&vec!["framework".to_string()]));
    assert_eq!(cycle(&e, &[]), None);
}

#[test]
fn the_control_planes_files_import_one_another_without_a_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reference-target/src");
    let e = edges(&root);
    let serve = vec!["control".to_string(), "serve".into()];
    assert!(e[&serve].contains(&vec!["control".to_string(), "admin".into()]));
    assert_eq!(cycle(&e, &["control"]), None);
}

#[test]
fn a_cycle_is_found() {
    let m = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
    let mut e = BTreeMap::new();
    e.insert(m("a/x"), BTreeSet::from([m("a/y")]));
    e.insert(m("a/y"), BTreeSet::from([m("a/z")]));
    e.insert(m("a/z"), BTreeSet::from([m("a/x")]));
    e.insert(m("b"), BTreeSet::from([m("a/x")]));
    assert_eq!(cycle(&e, &["a"]).map(|c| c.len()), Some(3));
    e.get_mut(&m("a/z")).unwrap().clear();
    assert_eq!(cycle(&e, &["a"]), None);
}

/// No source file of the three crates is over 800 lines (unit-test modules in their own
/// `tests.rs` aside): a file holds one idea (issue 14's measure).
#[test]
fn no_source_file_is_over_800_lines() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut long = Vec::new();
    for krate in [
        "harness/src",
        "reference-target/src",
        "reference-target/plugin/src",
        "suites/src",
    ] {
        for (_, file) in modules(&top.join(krate)) {
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > 800 {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "split these: {long:?}");
}
