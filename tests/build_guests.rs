//! Builds `guests/` from source (release, `wasm32-wasip2`) into `<root>/target/guests`, the
//! same command `.ci/run` and the demo use, so cargo makes it a no-op when they already did.
//! Shared by the end-to-end tests and the benchmarks through `#[path]`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Build every guest; returns the folder holding the `.wasm` files. Panics with cargo's
/// output when the build fails.
pub fn build_guests(root: &Path) -> PathBuf {
    let target = root.join("target/guests");
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("guests/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo build for guests/");
    assert!(
        out.status.success(),
        "building guests/ failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("wasm32-wasip2/release")
}
