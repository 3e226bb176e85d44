//! Tests that are tables documented row by row in `docs/`: the check that keeps the two from
//! drifting.

use std::path::Path;

/// Panics naming every row of `names` without its line `| `NAME` |` in `docs/<doc>`.
pub fn assert_documented<'a>(doc: &str, names: impl IntoIterator<Item = &'a str>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(doc);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let missing: Vec<&str> = names
        .into_iter()
        .filter(|n| !text.contains(&format!("| `{n}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "rows missing from docs/{doc}: {missing:?}"
    );
}
