//! Private temporary folders for a run (exported trees, vars files, rules): readable by the
//! owner only, and swept when the run that made them died without cleaning up (SIGKILL, a
//! crash): each holds the process id that owns it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The file inside each folder naming the process that owns it.
const OWNER: &str = ".atmos-owner";

/// A fresh private folder (`0700`) named `<prefix>XXXXXX` in the system temporary folder.
pub fn dir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    sweep_once();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()?;
    std::fs::write(dir.path().join(OWNER), std::process::id().to_string())?;
    Ok(dir)
}

/// Remove folders of runs whose process is gone (once per process).
fn sweep_once() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| sweep(&std::env::temp_dir()));
}

/// Remove `atmos-*` folders under `root` whose owner process no longer exists.
pub fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("atmos-") {
            continue;
        }
        let path = entry.path();
        let Some(pid) = std::fs::read_to_string(path.join(OWNER))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_private_and_those_of_dead_runs_are_swept() {
        let d = dir("atmos-test-").expect("dir");
        let mode = std::fs::metadata(d.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // A folder left by a process that is gone (pid far beyond any pid_max).
        let root = tempfile::tempdir().expect("root");
        let dead = root.path().join("atmos-rollout-dead");
        std::fs::create_dir_all(&dead).expect("mkdir");
        std::fs::write(dead.join(OWNER), "4194305").expect("write");
        let alive = root.path().join("atmos-rollout-alive");
        std::fs::create_dir_all(&alive).expect("mkdir");
        std::fs::write(alive.join(OWNER), std::process::id().to_string()).expect("write");
        let other = root.path().join("someone-else");
        std::fs::create_dir_all(&other).expect("mkdir");
        sweep(root.path());
        assert!(!dead.exists());
        assert!(alive.exists() && other.exists());
    }
}
