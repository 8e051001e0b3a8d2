//! The published JSON Schemas in `docs/schema/` are generated from the Rust types; this test
//! fails when a committed file is stale, missing or left over. To regenerate them after
//! changing a type:
//!
//! ```sh
//! ATMOS_BLESS=1 cargo test -p atmos-core --test contracts
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema")
}

fn committed(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = format!("{prefix}{}", e.file_name().to_string_lossy());
        if e.path().is_dir() {
            committed(&e.path(), &format!("{name}/"), out);
        } else if name.ends_with(".schema.json") {
            out.insert(name);
        }
    }
}

#[test]
fn published_schemas_are_generated_from_the_types() {
    let dir = schema_dir();
    let bless = std::env::var_os("ATMOS_BLESS").is_some();
    let mut stale = Vec::new();
    let mut expected = BTreeSet::new();
    for p in atmos_core::published::all() {
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&p.schema).expect("schema serialises")
        );
        let path = dir.join(&p.file);
        expected.insert(p.file.clone());
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        if bless {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write schema");
        } else {
            stale.push(p.file);
        }
    }
    let mut found = BTreeSet::new();
    committed(&dir, "", &mut found);
    for extra in found.difference(&expected) {
        if bless {
            std::fs::remove_file(dir.join(extra)).expect("remove stale schema");
        } else {
            stale.push(format!("{extra} (no type produces it)"));
        }
    }
    assert!(
        stale.is_empty(),
        "docs/schema is stale: {}\nregenerate with: ATMOS_BLESS=1 cargo test -p atmos-core --test contracts",
        stale.join(", ")
    );
}
