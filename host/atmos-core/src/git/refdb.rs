//! Listing the refs under one prefix without scanning every ref of the repository.
//!
//! libgit2's `references_glob` walks all refs (about a second at 300k refs), and a deployment
//! repository accumulates hundreds of thousands of history tags. Git keeps refs in two
//! places: `packed-refs`, a text file sorted by name, and loose files under `refs/`. This
//! module binary-searches `packed-refs` for the prefix with positioned reads (touching a few
//! pages, not the whole file), reads just the matching range, and walks only the loose folder
//! of that prefix — what `git for-each-ref <prefix>` does. Repositories using the reftable
//! backend are read through `git for-each-ref` instead.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::GitError;

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

/// The refs of one repository, with `packed-refs` opened once for every query of a command
/// (`status` of every deployment asks for hundreds of prefixes) — and again when git has
/// replaced the file since (a `pack-refs`, a deletion of a packed ref, by this process or
/// another), which a handle that lives across fetches must see.
#[derive(Debug)]
pub struct RefDb {
    git_dir: PathBuf,
    common_dir: PathBuf,
    packed: std::sync::Mutex<Option<(Option<FileId>, std::sync::Arc<PackedRefs>)>>,
    /// Values that replace the repository's (`None`: the ref is deleted): a push a server is
    /// asked to accept, read as if it were accepted.
    overlay: BTreeMap<String, Option<String>>,
}

#[derive(Debug)]
enum PackedRefs {
    Missing,
    /// Sorted file: searched in place.
    Sorted {
        file: File,
        len: u64,
        body_start: u64,
    },
    /// Unsorted (old git): read whole.
    Unsorted(Vec<u8>),
}

/// What tells one `packed-refs` file from the next: git replaces it by renaming a new one
/// over it (inode, size, modification time).
type FileId = (u64, u64, i64, i64);

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

fn git_error(e: &str) -> GitError {
    GitError::Git {
        message: format!("cannot read packed-refs: {e}"),
    }
}

impl RefDb {
    /// Refs of the repository at `git_dir` (`common_dir` differs in linked worktrees).
    pub fn new(git_dir: &Path, common_dir: &Path) -> RefDb {
        RefDb {
            git_dir: git_dir.to_owned(),
            common_dir: common_dir.to_owned(),
            packed: std::sync::Mutex::new(None),
            overlay: BTreeMap::new(),
        }
    }

    /// Read every ref as if `updates` were applied (`None`: deleted).
    pub fn set_overlay(&mut self, updates: BTreeMap<String, Option<String>>) {
        self.overlay = updates;
    }

    /// `entries` (every ref under `prefix`, sorted) with the overlay applied.
    fn overlaid(&self, prefix: &str, entries: Vec<RefEntry>) -> Vec<RefEntry> {
        if self.overlay.keys().all(|k| !k.starts_with(prefix)) {
            return entries;
        }
        let mut out: BTreeMap<String, RefEntry> =
            entries.into_iter().map(|e| (e.name.clone(), e)).collect();
        for (name, value) in self.overlay.range(prefix.to_owned()..) {
            if !name.starts_with(prefix) {
                break;
            }
            match value {
                Some(oid) => {
                    out.insert(
                        name.clone(),
                        RefEntry {
                            name: name.clone(),
                            oid: oid.clone(),
                            peeled: None,
                        },
                    );
                }
                None => {
                    out.remove(name);
                }
            }
        }
        out.into_values().collect()
    }

    fn packed(&self) -> Result<std::sync::Arc<PackedRefs>, GitError> {
        let path = self.common_dir.join("packed-refs");
        let id = file_id(&path);
        let mut slot = self
            .packed
            .lock()
            .map_err(|_| git_error("a reader panicked holding it"))?;
        if let Some((seen, open)) = slot.as_ref()
            && *seen == id
        {
            return Ok(open.clone());
        }
        // Replaced between the stat and the open: the next query sees another id and
        // opens it again.
        let open = std::sync::Arc::new(PackedRefs::open(&path).map_err(|e| git_error(&e))?);
        *slot = Some((id, open.clone()));
        Ok(open)
    }

    /// Every ref whose name starts with `prefix` (which should end in `/`), sorted by name.
    pub fn list(&self, prefix: &str) -> Result<Vec<RefEntry>, GitError> {
        let base = self.list_stored(prefix)?;
        Ok(self.overlaid(prefix, base))
    }

    fn list_stored(&self, prefix: &str) -> Result<Vec<RefEntry>, GitError> {
        if self.common_dir.join("reftable").is_dir() {
            return list_with_git(&self.git_dir, prefix);
        }
        let mut packed = self.packed()?.under(prefix).map_err(|e| git_error(&e))?;
        let mut loose_refs: BTreeMap<String, RefEntry> = BTreeMap::new();
        loose(&self.common_dir, prefix, &mut loose_refs)?;
        // After `git gc` nothing is loose: the packed entries, already in order, are the
        // answer (a sort of sorted input is one pass).
        packed.sort_by(|a, b| a.name.cmp(&b.name));
        packed.dedup_by(|a, b| a.name == b.name);
        if loose_refs.is_empty() {
            return Ok(packed);
        }
        let mut out: BTreeMap<String, RefEntry> =
            packed.into_iter().map(|e| (e.name.clone(), e)).collect();
        // Loose refs override packed ones of the same name.
        out.extend(loose_refs);
        Ok(out.into_values().collect())
    }

    /// One ref by its full name.
    pub fn find(&self, name: &str) -> Result<Option<RefEntry>, GitError> {
        if let Some(value) = self.overlay.get(name) {
            return Ok(value.as_ref().map(|oid| RefEntry {
                name: name.to_owned(),
                oid: oid.clone(),
                peeled: None,
            }));
        }
        if let Some(oid) = read_loose(&self.common_dir.join(name)) {
            return Ok(Some(RefEntry {
                name: name.to_owned(),
                oid,
                peeled: None,
            }));
        }
        if self.common_dir.join("reftable").is_dir() {
            return Ok(list_with_git(&self.git_dir, name)?
                .into_iter()
                .find(|e| e.name == name));
        }
        Ok(self
            .packed()?
            .under(name)
            .map_err(|e| git_error(&e))?
            .into_iter()
            .find(|e| e.name == name))
    }
}

/// One-shot listing (tests and single queries).
pub fn list(git_dir: &Path, common_dir: &Path, prefix: &str) -> Result<Vec<RefEntry>, GitError> {
    RefDb::new(git_dir, common_dir).list(prefix)
}

fn read_loose(path: &Path) -> Option<String> {
    let content = std::fs::read_to_string(path).ok()?;
    let oid = content.trim();
    (oid.len() >= 40 && oid.bytes().all(|b| b.is_ascii_hexdigit())).then(|| oid.to_owned())
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
            if let Some(oid) = read_loose(&path) {
                out.insert(
                    name.clone(),
                    RefEntry {
                        name,
                        oid,
                        peeled: None,
                    },
                );
            }
        }
    }
    Ok(())
}

impl PackedRefs {
    fn open(path: &Path) -> Result<PackedRefs, String> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PackedRefs::Missing),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut head = vec![0u8; 256.min(len as usize)];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| e.to_string())?;
        let (body_start, sorted) = if head.starts_with(b"# pack-refs") {
            match head.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    let header = &head[..=i];
                    let sorted = header.windows(8).any(|w| w == b" sorted ")
                        || header.ends_with(b" sorted\n");
                    ((i + 1) as u64, sorted)
                }
                None => return Err("the header line is too long".into()),
            }
        } else {
            (0, false)
        };
        if sorted {
            Ok(PackedRefs::Sorted {
                file,
                len,
                body_start,
            })
        } else {
            let mut body = vec![0u8; (len - body_start) as usize];
            file.read_exact_at(&mut body, body_start)
                .map_err(|e| e.to_string())?;
            Ok(PackedRefs::Unsorted(body))
        }
    }

    fn under(&self, prefix: &str) -> Result<Vec<RefEntry>, String> {
        match self {
            PackedRefs::Missing => Ok(Vec::new()),
            PackedRefs::Unsorted(body) => Ok(scan(body, prefix)),
            PackedRefs::Sorted {
                file,
                len,
                body_start,
            } => {
                let reader = Reader { file, len: *len };
                let start = reader
                    .lower_bound(*body_start, prefix.as_bytes())
                    .map_err(|e| e.to_string())?;
                // Read the matching range in growing chunks until past the prefix.
                let mut out: Vec<RefEntry> = Vec::new();
                let mut pos = start;
                let mut chunk = 64 * 1024u64;
                let mut carry: Vec<u8> = Vec::new();
                let mut matched = false;
                while pos < *len {
                    let n = chunk.min(*len - pos) as usize;
                    let mut buf = vec![0u8; n];
                    file.read_exact_at(&mut buf, pos)
                        .map_err(|e| e.to_string())?;
                    pos += n as u64;
                    carry.extend_from_slice(&buf);
                    let complete = match carry.iter().rposition(|b| *b == b'\n') {
                        Some(i) if pos < *len => i + 1,
                        _ => carry.len(),
                    };
                    let step = scan_until(&carry[..complete], prefix, matched);
                    if let (Some(peel), Some(last)) = (step.leading_peel, out.last_mut()) {
                        last.peeled = Some(peel);
                    }
                    matched = step.last_matched;
                    out.extend(step.entries);
                    if step.done {
                        return Ok(out);
                    }
                    carry.drain(..complete);
                    chunk = (chunk * 2).min(4 * 1024 * 1024);
                }
                Ok(out)
            }
        }
    }
}

/// Positioned reads over a sorted `packed-refs`.
struct Reader<'a> {
    file: &'a File,
    len: u64,
}

impl Reader<'_> {
    /// The line starting at `start` (without its newline) and where the next line starts.
    fn line_at(&self, start: u64) -> std::io::Result<(Vec<u8>, u64)> {
        let mut line = Vec::new();
        let mut pos = start;
        let mut buf = [0u8; 256];
        while pos < self.len {
            let n = (self.len - pos).min(buf.len() as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], pos)?;
            if let Some(i) = buf[..n].iter().position(|b| *b == b'\n') {
                line.extend_from_slice(&buf[..i]);
                return Ok((line, pos + i as u64 + 1));
            }
            line.extend_from_slice(&buf[..n]);
            pos += n as u64;
        }
        Ok((line, self.len))
    }

    /// The first line start at or after `pos` (`pos` itself when a line starts there).
    fn line_start_from(&self, body_start: u64, pos: u64) -> std::io::Result<u64> {
        if pos <= body_start {
            return Ok(body_start);
        }
        // A line starts at `pos` when the byte before it is a newline.
        let (_, next) = self.line_at(pos - 1)?;
        Ok(next)
    }

    /// Offset of the first ref line whose name is ≥ `prefix` (or of a peel line just
    /// before it, which the scan skips).
    fn lower_bound(&self, body_start: u64, prefix: &[u8]) -> std::io::Result<u64> {
        // Invariant: every ref line starting before `lo` is < prefix; the answer is ≤ `hi`.
        let (mut lo, mut hi) = (body_start, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let mut s = self.line_start_from(body_start, mid)?;
            if s >= hi {
                // No line starts in [mid, hi): decide on the line at `lo`.
                s = lo;
            }
            let (mut line, mut next) = self.line_at(s)?;
            if line.first() == Some(&b'^') {
                // A peel line belongs to the ref above it: compare the ref below it instead,
                // keeping the peel line (and so the ref above) inside the range.
                (line, next) = self.line_at(next)?;
            }
            let below = match ref_name(&line) {
                Some(name) => name < prefix,
                None => false,
            };
            if below {
                lo = next;
            } else {
                hi = s;
            }
        }
        Ok(lo)
    }
}

fn ref_name(line: &[u8]) -> Option<&[u8]> {
    if line.first() == Some(&b'^') {
        return None;
    }
    let space = line.iter().position(|b| *b == b' ')?;
    Some(&line[space + 1..])
}

/// What one chunk of a sorted scan found.
struct Step {
    entries: Vec<RefEntry>,
    /// The scan passed the prefix: stop.
    done: bool,
    /// A peel line at the start of the chunk, for the previous chunk's last entry.
    leading_peel: Option<String>,
    /// Whether the chunk's last ref line matched (for a peel line in the next chunk).
    last_matched: bool,
}

/// Entries under `prefix` in `text` (whole lines) of a sorted file. `matched` says whether
/// the last ref line before this chunk matched.
fn scan_until(text: &[u8], prefix: &str, matched: bool) -> Step {
    let mut step = Step {
        entries: Vec::new(),
        done: false,
        leading_peel: None,
        last_matched: matched,
    };
    for line in text.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if line[0] == b'^' {
            if step.last_matched {
                let peeled = std::str::from_utf8(&line[1..]).ok().map(str::to_owned);
                match step.entries.last_mut() {
                    Some(last) => last.peeled = peeled,
                    None => step.leading_peel = peeled,
                }
            }
            continue;
        }
        step.last_matched = false;
        let Some(name) = ref_name(line) else { continue };
        if !name.starts_with(prefix.as_bytes()) {
            if name > prefix.as_bytes() {
                step.done = true;
                return step;
            }
            continue;
        }
        let space = line.len() - name.len() - 1;
        if let (Ok(oid), Ok(name)) = (
            std::str::from_utf8(&line[..space]),
            std::str::from_utf8(name),
        ) {
            step.entries.push(RefEntry {
                name: name.to_owned(),
                oid: oid.to_owned(),
                peeled: None,
            });
            step.last_matched = true;
        }
    }
    step
}

/// Every entry under `prefix` of an unsorted file.
fn scan(body: &[u8], prefix: &str) -> Vec<RefEntry> {
    let mut out: Vec<RefEntry> = Vec::new();
    let mut previous_matched = false;
    for line in body.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if line[0] == b'^' {
            if previous_matched && let Some(last) = out.last_mut() {
                last.peeled = std::str::from_utf8(&line[1..]).ok().map(str::to_owned);
            }
            continue;
        }
        match ref_name(line) {
            Some(name) if name.starts_with(prefix.as_bytes()) => {
                let space = line.len() - name.len() - 1;
                if let (Ok(oid), Ok(name)) = (
                    std::str::from_utf8(&line[..space]),
                    std::str::from_utf8(name),
                ) {
                    out.push(RefEntry {
                        name: name.to_owned(),
                        oid: oid.to_owned(),
                        peeled: None,
                    });
                    previous_matched = true;
                    continue;
                }
                previous_matched = false;
            }
            _ => previous_matched = false,
        }
    }
    out
}

fn list_with_git(git_dir: &Path, prefix: &str) -> Result<Vec<RefEntry>, GitError> {
    let out = Command::new("git")
        .env_remove(crate::signing::KEY_ENV)
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
        return Err(GitError::Git {
            message: format!(
                "git for-each-ref failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
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

    fn packed_file(dir: &Path, lines: &[String], sorted: bool) {
        let mut text = if sorted {
            "# pack-refs with: peeled fully-peeled sorted \n".to_owned()
        } else {
            "# pack-refs with: peeled \n".to_owned()
        };
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(dir.join("packed-refs"), text).expect("write");
    }

    fn many() -> Vec<String> {
        let mut lines = Vec::new();
        for i in 0..3000 {
            lines.push(format!("{A} refs/tags/a/{i:05}"));
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
        for i in 0..3000 {
            lines.push(format!("{A} refs/tags/z/{i:05}"));
        }
        lines
    }

    #[test]
    fn binary_search_finds_exactly_the_prefix_with_peels() {
        for sorted in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            packed_file(dir.path(), &many(), sorted);
            let db = RefDb::new(dir.path(), dir.path());
            let got = db.list("refs/tags/atmos/deployments/d/t/").expect("list");
            assert_eq!(got.len(), 2, "sorted={sorted}");
            assert_eq!(got[0].peeled.as_deref(), Some(B));
            assert_eq!(got[1].oid, C);
            assert_eq!(got[1].peeled, None);
            assert!(db.list("refs/tags/nothing/").expect("list").is_empty());
            assert!(db.list("refs/tags/zz/").expect("list").is_empty());
            assert!(db.list("refs/").expect("list").len() == 6003);
            let a = db.list("refs/tags/a/").expect("list");
            assert_eq!(a.len(), 3000);
            assert!(
                a.iter().all(|e| e.peeled.as_deref() == Some(B)),
                "every peel kept"
            );
            assert_eq!(db.list("refs/tags/z/").expect("list").len(), 3000);
            let one = db
                .find("refs/tags/atmos/deployments/d/t2/c/2025-01-01T00-00-00Z")
                .expect("find");
            assert_eq!(one.map(|e| e.oid).as_deref(), Some(A));
            assert_eq!(db.find("refs/tags/a/0").expect("find"), None);
        }
    }

    /// A handle that outlives a `pack-refs` or the deletion of a packed ref (git renames a
    /// new file over the old) reads the new file, not the one it opened first.
    #[test]
    fn a_replaced_packed_refs_file_is_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = "refs/atmos/locks/d/t";
        packed_file(dir.path(), &[format!("{A} {lock}")], true);
        let db = RefDb::new(dir.path(), dir.path());
        assert_eq!(
            db.find(lock).expect("find").map(|e| e.oid).as_deref(),
            Some(A)
        );
        // Released elsewhere: git writes packed-refs.new without it and renames it over.
        let next = dir.path().join("packed-refs.new");
        std::fs::write(&next, "# pack-refs with: peeled fully-peeled sorted \n").expect("write");
        std::fs::rename(&next, dir.path().join("packed-refs")).expect("rename");
        assert_eq!(
            db.find(lock).expect("find"),
            None,
            "the released lock is gone"
        );
        std::fs::remove_file(dir.path().join("packed-refs")).expect("rm");
        assert_eq!(db.find(lock).expect("find"), None);
    }

    #[test]
    fn every_prefix_of_a_sorted_file_matches_a_full_scan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lines = many();
        packed_file(dir.path(), &lines, true);
        let body = std::fs::read(dir.path().join("packed-refs")).expect("read");
        let db = RefDb::new(dir.path(), dir.path());
        for prefix in [
            "refs/tags/a/00",
            "refs/tags/a/02999",
            "refs/tags/atmos/",
            "refs/tags/z/0299",
            "refs/tags/b",
            "refs/heads/",
        ] {
            let want: Vec<RefEntry> = scan(&body, prefix);
            let got: Vec<RefEntry> = db.list(prefix).expect("list");
            assert!(
                got == want,
                "{prefix}: {} entries, expected {}",
                got.len(),
                want.len()
            );
        }
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
            true,
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
