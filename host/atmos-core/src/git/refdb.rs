//! Listing the refs under one prefix without scanning every ref of the repository.
//!
//! libgit2's `references_glob` walks all refs (about a second at 300k refs), and a deployment
//! repository accumulates hundreds of thousands of history tags. Git keeps refs in two
//! places: `packed-refs`, a text file sorted by name, and loose files under `refs/`. This
//! module binary-searches `packed-refs` for the prefix and walks only the loose folder of that
//! prefix, which is what `git for-each-ref <prefix>` does. Repositories using the reftable
//! backend are read through `git for-each-ref` instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::GitError;

/// One ref: its full name, the object it points at, and for annotated tags the peeled
/// commit when `packed-refs` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefEntry {
    /// Full ref name.
    pub name: String,
    /// Object id (hex).
    pub oid: String,
    /// The commit an annotated tag points at, when known without reading the tag.
    pub peeled: Option<String>,
}

/// The refs of one repository, with `packed-refs` read once and kept for every query of a
/// command (`status` of every deployment asks for hundreds of prefixes).
#[derive(Debug)]
pub struct RefDb {
    git_dir: PathBuf,
    common_dir: PathBuf,
    packed: std::sync::OnceLock<Result<PackedRefs, String>>,
}

#[derive(Debug)]
struct PackedRefs {
    body: Vec<u8>,
    sorted: bool,
}

impl RefDb {
    /// Refs of the repository at `git_dir` (`common_dir` differs in linked worktrees).
    pub fn new(git_dir: &Path, common_dir: &Path) -> RefDb {
        RefDb {
            git_dir: git_dir.to_owned(),
            common_dir: common_dir.to_owned(),
            packed: std::sync::OnceLock::new(),
        }
    }

    /// Every ref whose name starts with `prefix` (which should end in `/`), sorted by name.
    pub fn list(&self, prefix: &str) -> Result<Vec<RefEntry>, GitError> {
        if self.common_dir.join("reftable").is_dir() {
            return list_with_git(&self.git_dir, prefix);
        }
        let packed = self
            .packed
            .get_or_init(|| read_packed(&self.common_dir.join("packed-refs")))
            .as_ref()
            .map_err(|e| {
                GitError::Git(git2::Error::from_str(&format!(
                    "cannot read packed-refs: {e}"
                )))
            })?;
        let mut out: BTreeMap<String, RefEntry> = BTreeMap::new();
        for e in packed.under(prefix) {
            out.insert(e.name.clone(), e);
        }
        loose(&self.common_dir, prefix, &mut out)?;
        Ok(out.into_values().collect())
    }
}

impl RefDb {
    /// One ref by its full name.
    pub fn find(&self, name: &str) -> Result<Option<RefEntry>, GitError> {
        let path = self.common_dir.join(name);
        if let Ok(content) = std::fs::read_to_string(&path) {
            let oid = content.trim();
            if oid.len() >= 40 && oid.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(Some(RefEntry {
                    name: name.to_owned(),
                    oid: oid.to_owned(),
                    peeled: None,
                }));
            }
        }
        if self.common_dir.join("reftable").is_dir() {
            return Ok(list_with_git(&self.git_dir, name)?
                .into_iter()
                .find(|e| e.name == name));
        }
        let packed = self
            .packed
            .get_or_init(|| read_packed(&self.common_dir.join("packed-refs")))
            .as_ref()
            .map_err(|e| {
                GitError::Git(git2::Error::from_str(&format!(
                    "cannot read packed-refs: {e}"
                )))
            })?;
        Ok(packed.under(name).into_iter().find(|e| e.name == name))
    }
}

/// One-shot listing (tests and single queries).
pub fn list(git_dir: &Path, common_dir: &Path, prefix: &str) -> Result<Vec<RefEntry>, GitError> {
    RefDb::new(git_dir, common_dir).list(prefix)
}

/// Loose refs under `prefix` override packed ones of the same name.
fn loose(
    common_dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, RefEntry>,
) -> Result<(), GitError> {
    let mut stack: Vec<PathBuf> = vec![common_dir.join(prefix)];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
            Err(source) => return Err(GitError::Io { path: dir, source }),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let Some(name) = path
                .strip_prefix(common_dir)
                .ok()
                .and_then(|p| p.to_str())
                .map(str::to_owned)
            else {
                continue;
            };
            if name.ends_with(".lock") {
                continue;
            }
            let Ok(content) = std::fs::read_to_string(&path) else {
                continue;
            };
            let oid = content.trim();
            if oid.len() >= 40 && oid.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.insert(
                    name.clone(),
                    RefEntry {
                        name,
                        oid: oid.to_owned(),
                        peeled: None,
                    },
                );
            }
        }
    }
    Ok(())
}

fn read_packed(path: &Path) -> Result<PackedRefs, String> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let header_end = if data.starts_with(b"# pack-refs") {
        data.iter()
            .position(|b| *b == b'\n')
            .map_or(data.len(), |i| i + 1)
    } else {
        0
    };
    let header = &data[..header_end];
    let sorted = header.windows(8).any(|w| w == b" sorted ") || header.ends_with(b" sorted\n");
    Ok(PackedRefs {
        body: data[header_end..].to_vec(),
        sorted,
    })
}

impl PackedRefs {
    fn under(&self, prefix: &str) -> Vec<RefEntry> {
        packed_under(&self.body, self.sorted, prefix)
    }
}

/// The packed refs under `prefix`. Uses binary search when the file declares itself sorted.
fn packed_under(body: &[u8], sorted: bool, prefix: &str) -> Vec<RefEntry> {
    let start = if sorted {
        lower_bound(body, prefix.as_bytes())
    } else {
        0
    };
    let mut out: Vec<RefEntry> = Vec::new();
    let mut previous_matched = false;
    for line in body[start..].split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if line[0] == b'^' {
            // A peel line belongs to the ref line just above it.
            if previous_matched && let Some(last) = out.last_mut() {
                last.peeled = std::str::from_utf8(&line[1..]).ok().map(str::to_owned);
            }
            continue;
        }
        let Some(space) = line.iter().position(|b| *b == b' ') else {
            previous_matched = false;
            continue;
        };
        let name = &line[space + 1..];
        if !name.starts_with(prefix.as_bytes()) {
            previous_matched = false;
            if sorted && name > prefix.as_bytes() {
                break;
            }
            continue;
        }
        let (Ok(oid), Ok(name)) = (
            std::str::from_utf8(&line[..space]),
            std::str::from_utf8(name),
        ) else {
            previous_matched = false;
            continue;
        };
        out.push(RefEntry {
            name: name.to_owned(),
            oid: oid.to_owned(),
            peeled: None,
        });
        previous_matched = true;
    }
    out
}

/// Byte offset of the first line (not a `^` peel line) whose ref name is ≥ `prefix`.
fn lower_bound(body: &[u8], prefix: &[u8]) -> usize {
    let line_start = |mut i: usize| {
        while i > 0 && body[i - 1] != b'\n' {
            i -= 1;
        }
        i
    };
    let name_at = |start: usize| -> Option<&[u8]> {
        let end = body[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |e| start + e);
        let line = &body[start..end];
        let space = line.iter().position(|b| *b == b' ')?;
        Some(&line[space + 1..])
    };
    let (mut lo, mut hi) = (0usize, body.len());
    while lo < hi {
        let mid = line_start(lo + (hi - lo) / 2);
        // Skip peel lines: step to the next ref line.
        let mut probe = mid;
        while probe < body.len() && body[probe] == b'^' {
            probe = body[probe..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(body.len(), |e| probe + e + 1);
        }
        if probe >= hi {
            hi = mid;
            continue;
        }
        match name_at(probe) {
            Some(name) if name < prefix => {
                lo = body[probe..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(body.len(), |e| probe + e + 1);
            }
            _ => hi = mid,
        }
    }
    lo
}

fn list_with_git(git_dir: &Path, prefix: &str) -> Result<Vec<RefEntry>, GitError> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args([
            "for-each-ref",
            "--format=%(refname) %(objectname) %(*objectname)",
            prefix,
        ])
        .output()
        .map_err(|source| GitError::Io {
            path: git_dir.to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(GitError::Git(git2::Error::from_str(&format!(
            "git for-each-ref failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let name = parts.next()?.to_owned();
            let oid = parts.next()?.to_owned();
            let peeled = parts.next().filter(|p| !p.is_empty()).map(str::to_owned);
            Some(RefEntry { name, oid, peeled })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const C: &str = "3333333333333333333333333333333333333333";

    fn packed_file(dir: &Path, lines: &[String]) {
        let mut text = "# pack-refs with: peeled fully-peeled sorted \n".to_owned();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(dir.join("packed-refs"), text).expect("write");
    }

    #[test]
    fn binary_search_finds_exactly_the_prefix_with_peels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lines = Vec::new();
        for i in 0..500 {
            lines.push(format!("{A} refs/tags/a/{i:04}"));
            lines.push(format!("^{B}"));
        }
        lines.push(format!(
            "{A} refs/tags/atmos/deployments/d/t/c/2025-01-01T00-00-00Z"
        ));
        lines.push(format!("^{B}"));
        lines.push(format!(
            "{C} refs/tags/atmos/deployments/d/t/c/2025-01-02T00-00-00Z"
        ));
        lines.push(format!(
            "{A} refs/tags/atmos/deployments/d/t2/c/2025-01-01T00-00-00Z"
        ));
        for i in 0..500 {
            lines.push(format!("{A} refs/tags/z/{i:04}"));
        }
        packed_file(dir.path(), &lines);
        let got = list(dir.path(), dir.path(), "refs/tags/atmos/deployments/d/t/").expect("list");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].peeled.as_deref(), Some(B));
        assert_eq!(got[1].oid, C);
        assert_eq!(got[1].peeled, None);
        assert!(
            list(dir.path(), dir.path(), "refs/tags/nothing/")
                .expect("list")
                .is_empty()
        );
        assert_eq!(
            list(dir.path(), dir.path(), "refs/tags/a/")
                .expect("list")
                .len(),
            500
        );
    }

    #[test]
    fn loose_refs_override_and_join_packed_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        packed_file(
            dir.path(),
            &[
                format!("{A} refs/atmos/deployments/d/t/api"),
                format!("{A} refs/atmos/deployments/d/t/db"),
            ],
        );
        let loose = dir.path().join("refs/atmos/deployments/d/t");
        std::fs::create_dir_all(loose.join("ecs")).expect("mkdir");
        std::fs::write(loose.join("api"), format!("{B}\n")).expect("write");
        std::fs::write(loose.join("ecs/web"), format!("{C}\n")).expect("write");
        std::fs::write(loose.join("db.lock"), format!("{C}\n")).expect("write");
        let got = list(dir.path(), dir.path(), "refs/atmos/deployments/d/t/").expect("list");
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|e| (e.name.as_str(), e.oid.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("refs/atmos/deployments/d/t/api", B),
                ("refs/atmos/deployments/d/t/db", A),
                ("refs/atmos/deployments/d/t/ecs/web", C),
            ]
        );
    }
}
