//! Where configuration files are read from. Every loader — the work tree, a trusted ref, the
//! commit being deployed, the two commits `diff` compares — reads a deployment file *and
//! everything it imports or includes* through one [`FileSource`], so a deployment never mixes
//! an imported file from the work tree with a file from a commit.

use std::path::{Component, Path, PathBuf};

/// The largest file a deployment may be made of (the deployment file, an import, an
/// include): configuration, not data.
pub const MAX_FILE: u64 = 4 << 20;

/// Why `path` is refused: it is `what` (a symbolic link, a FIFO) rather than a regular file.
/// Links are refused in the work tree and in commits alike, so what `validate` reads is what a
/// rollout of the commit reads.
pub fn not_regular(path: &Path, what: &str) -> String {
    format!(
        "{} is {what}, not a regular file: deployment files, imports and includes must be regular files (copy the file instead of linking it)",
        path.display()
    )
}

/// Refuse a file larger than [`MAX_FILE`].
pub fn too_big(path: &Path, size: u64) -> Result<(), String> {
    if size > MAX_FILE {
        return Err(format!(
            "{} is {} KiB; files a deployment is made of may be at most {} KiB",
            path.display(),
            size / 1024,
            MAX_FILE / 1024
        ));
    }
    Ok(())
}

/// A path inside git's own folder: never configuration (it holds credentials).
pub fn in_git_dir(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == ".git")
}

/// A read-only view of the project's files: the work tree, or one commit.
pub trait FileSource: Send + Sync {
    /// The bytes of `path` (relative to the project root), or `None` when there is no such
    /// file. `Err` says why reading failed.
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, String>;

    /// True when `path` names something (a file, or anything `read` would refuse with a
    /// reason); cheaper than reading it where the source can tell.
    fn exists(&self, path: &Path) -> bool {
        !matches!(self.read(path), Ok(None))
    }

    /// The entries of the folder `dir` (relative to the project root): `(name, is_dir)`,
    /// sorted by name; empty when the folder does not exist.
    fn list(&self, dir: &Path) -> Result<Vec<(String, bool)>, String>;

    /// The commit these files are from (`!git.sha`), or why there is none.
    fn commit(&self) -> Result<String, String>;

    /// How `path` is shown in messages (`deployments/svc.yaml`, `deployments/svc.yaml@1a2b3c4`).
    fn shown(&self, path: &Path) -> PathBuf;
}

impl std::fmt::Debug for dyn FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.shown(Path::new("")).display())
    }
}

/// The project's work tree on disk.
#[derive(Debug, Clone)]
pub struct WorkTree {
    root: PathBuf,
    /// The repository's own folders (wherever `--separate-git-dir` put them), found once.
    git_dirs: std::sync::OnceLock<Vec<PathBuf>>,
}

impl WorkTree {
    /// The work tree rooted at the project root `root`.
    pub fn new(root: &Path) -> WorkTree {
        WorkTree {
            root: root.to_owned(),
            git_dirs: std::sync::OnceLock::new(),
        }
    }

    /// The git folder and common folder of the repository holding the project.
    fn git_dirs(&self) -> &[PathBuf] {
        self.git_dirs.get_or_init(|| {
            let Ok(repo) = git2::Repository::discover(&self.root) else {
                return Vec::new();
            };
            [repo.path(), repo.commondir()]
                .into_iter()
                .filter_map(|p| p.canonicalize().ok())
                .collect()
        })
    }

    /// `path` under the root, refusing anything that leads outside it or into `.git`, and any
    /// folder on the way that is a symbolic link (a commit would hold the link, not the folder).
    fn inside(&self, path: &Path) -> Result<PathBuf, String> {
        let full = self.root.join(path);
        let mut walked = self.root.clone();
        let parents: Vec<_> = path.components().collect();
        for c in parents.iter().take(parents.len().saturating_sub(1)) {
            walked.push(c);
            if std::fs::symlink_metadata(&walked).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(not_regular(
                    walked.strip_prefix(&self.root).unwrap_or(&walked),
                    "a symbolic link to a folder",
                ));
            }
        }
        if let (Ok(real), Ok(root)) = (full.canonicalize(), self.root.canonicalize()) {
            if !real.starts_with(&root) {
                return Err(format!(
                    "{} resolves to {}, outside the project",
                    path.display(),
                    real.display()
                ));
            }
            if in_git_dir(real.strip_prefix(&root).unwrap_or(&real))
                || self.git_dirs().iter().any(|g| real.starts_with(g))
            {
                return Err(format!("{} is inside git's own folder", path.display()));
            }
        }
        Ok(full)
    }
}

impl FileSource for WorkTree {
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
        if in_git_dir(path) {
            return Err(format!("{} is inside git's own folder", path.display()));
        }
        let full = self.inside(path)?;
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            return Err(format!("{} is a folder", path.display()));
        }
        if kind.is_symlink() {
            return Err(not_regular(path, "a symbolic link"));
        }
        if !kind.is_file() {
            return Err(not_regular(
                path,
                "a special file (a FIFO, socket or device)",
            ));
        }
        too_big(path, meta.len())?;
        match std::fs::read(&full) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(self.root.join(path)).is_ok()
    }

    fn list(&self, dir: &Path) -> Result<Vec<(String, bool)>, String> {
        let full = self.inside(dir)?;
        let entries = match std::fs::read_dir(&full) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
        };
        let mut out: Vec<(String, bool)> = entries
            .filter_map(Result::ok)
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.path().is_dir(),
                )
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn commit(&self) -> Result<String, String> {
        let repo = git2::Repository::discover(&self.root)
            .map_err(|_| "the project is not in a git repository".to_owned())?;
        let head = repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(|_| "the repository has no commit yet".to_owned())?;
        Ok(head.id().to_string())
    }

    fn shown(&self, path: &Path) -> PathBuf {
        path.to_owned()
    }
}

/// One file given as bytes (a deployment file parsed on its own: nothing else can be read).
#[derive(Debug, Clone)]
pub struct SingleFile {
    /// Its path.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl FileSource for SingleFile {
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
        Ok((path == self.path).then(|| self.bytes.clone()))
    }

    fn list(&self, _dir: &Path) -> Result<Vec<(String, bool)>, String> {
        Ok(Vec::new())
    }

    fn commit(&self) -> Result<String, String> {
        Err("the file was read on its own, outside any commit".into())
    }

    fn shown(&self, path: &Path) -> PathBuf {
        path.to_owned()
    }
}

/// `path` joined onto `base` with `.` and `..` resolved lexically; `None` when it is absolute
/// or climbs above `base`'s root.
pub fn join_inside(base: &Path, path: &str) -> Option<PathBuf> {
    let mut out: Vec<String> = Vec::new();
    for c in base.components().chain(Path::new(path).components()) {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out.iter().collect())
}

/// Does `name` match the glob segment `pattern` (`*` any run of characters, `?` one)?
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_segments() {
        assert!(glob_match("*.yaml", "chain.yaml"));
        assert!(glob_match("c?ain*", "chain.yaml"));
        assert!(!glob_match("*.yaml", "chain.yml"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "ac"));
    }

    #[test]
    fn joins_stay_inside() {
        assert_eq!(
            join_inside(Path::new("deployments"), "_defaults/./chain.yaml"),
            Some(PathBuf::from("deployments/_defaults/chain.yaml"))
        );
        assert_eq!(
            join_inside(Path::new("deployments"), "../atmos.yaml"),
            Some(PathBuf::from("atmos.yaml"))
        );
        assert_eq!(join_inside(Path::new("deployments"), "../../x"), None);
        assert_eq!(join_inside(Path::new("deployments"), "/etc/passwd"), None);
    }
}
