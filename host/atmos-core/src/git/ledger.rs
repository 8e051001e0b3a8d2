//! The archive ledger: history folded out of tags so that a repository does not carry one ref
//! per rollout forever. `refs/atmos/ledger/<deployment>` is an append-only chain of commits;
//! each tree holds `<target>/<component>/<YYYY-MM>.jsonl`, one archived record per line:
//! `{"tag": <tag name>, "oid": <tag object id>, "object": <the tag object, byte for byte>}`.
//! Keeping the whole object (not a summary) means an archived record reads, verifies and
//! checks its signature exactly as the tag did, and its id proves the line was not edited:
//! git's hash of `object` as a tag must equal `oid`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use git2::{ObjectType, Oid};
use serde::{Deserialize, Serialize};

use super::tags::{TagEntry, Unparseable};
use super::{Author, GitError, GitRepo, Libgit2, oid};
use crate::contracts::layout::ledger_ref;

/// One line of a ledger file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    tag: String,
    oid: String,
    object: String,
}

/// Tree entry modes (git's): a folder, a file, an executable file.
const TREE_MODE: i32 = 0o040000;
const FILE_MODE: i32 = 0o100644;
const EXECUTABLE_MODE: i32 = 0o100755;

/// How many of the records a ledger commit absorbs its message names.
const MESSAGE_NAMES: usize = 20;

/// The month file a record is filed in.
fn month_of(entry: &TagEntry) -> String {
    entry.at.strftime("%Y-%m").to_string()
}

/// What [`GitRepo::ledger_changes`] found: the records of the files that differ.
#[derive(Debug, Default)]
pub struct LedgerChanges {
    /// The records those files held before.
    pub before: Vec<TagEntry>,
    /// The records they hold after.
    pub after: Vec<TagEntry>,
    /// What cannot be used in the files after.
    pub odd: Vec<Unparseable>,
}

impl LedgerChanges {
    /// A record the changed files held before and no longer hold (name and object), if any:
    /// the ledger only grows.
    pub fn dropped(&self) -> Option<&TagEntry> {
        let now: std::collections::HashSet<(&str, &str)> = self
            .after
            .iter()
            .map(|e| (e.name.as_str(), e.oid.as_str()))
            .collect();
        self.before
            .iter()
            .find(|e| !now.contains(&(e.name.as_str(), e.oid.as_str())))
    }
}

/// A record is in the ledger once: a second copy is reported, never counted.
fn once(entries: &mut Vec<TagEntry>, bad: &mut Vec<Unparseable>) {
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| {
        let first = seen.insert(e.name.clone());
        if !first {
            bad.push(Unparseable {
                tag: format!("ledger:{}", e.name),
                reason: format!("{} appears more than once in the ledger", e.name),
            });
        }
        first
    });
}

impl GitRepo {
    /// The whole history of `deployment` (one target, or all), sorted oldest first: its live
    /// tags and the records archived in its ledger, as one list (a record both archived and
    /// still a tag here counts once); and the entries that cannot be used.
    pub fn history_tags(
        &self,
        deployment: &str,
        target: Option<&str>,
    ) -> Result<(Vec<TagEntry>, Vec<Unparseable>), GitError> {
        let (live, mut odd) = self.live_tags(deployment, target)?;
        let (archived, odd_archived) = self.ledger_entries(deployment, target)?;
        odd.extend(odd_archived);
        if archived.is_empty() {
            return Ok((live, odd));
        }
        let by_name: std::collections::HashMap<&str, &str> = archived
            .iter()
            .map(|e| (e.name.as_str(), e.oid.as_str()))
            .collect();
        let mut all = Vec::with_capacity(live.len() + archived.len());
        for e in &live {
            match by_name.get(e.name.as_str()) {
                None => all.push(e.clone()),
                Some(oid) if *oid == e.oid => {}
                Some(oid) => odd.push(Unparseable {
                    tag: e.name.clone(),
                    reason: format!(
                        "the archive ledger holds another record under this name ({}); the archived one counts",
                        super::short(oid)
                    ),
                }),
            }
        }
        all.extend(archived);
        all.sort_by_key(TagEntry::key);
        Ok((all, odd))
    }

    /// The ledger commit of `deployment` here, if it has one.
    pub fn ledger_head(&self, deployment: &str) -> Result<Option<String>, GitError> {
        Ok(self.refs().find(&ledger_ref(deployment))?.map(|e| e.oid))
    }

    /// The records archived in `deployment`'s ledger (one target, or all), in no particular
    /// order, and the lines that cannot be used.
    pub fn ledger_entries(
        &self,
        deployment: &str,
        target: Option<&str>,
    ) -> Result<(Vec<TagEntry>, Vec<Unparseable>), GitError> {
        match self.ledger_head(deployment)? {
            Some(head) => self.ledger_entries_at(&head, deployment, target),
            None => Ok((Vec::new(), Vec::new())),
        }
    }

    /// The records of the ledger commit `commit` (a ref's value or one a push proposes).
    /// Read once per repository handle: every line is parsed and hash-checked, and a
    /// command that walks several histories asks for the same ledger each time.
    pub fn ledger_entries_at(
        &self,
        commit: &str,
        deployment: &str,
        target: Option<&str>,
    ) -> Result<(Vec<TagEntry>, Vec<Unparseable>), GitError> {
        type Read = (Vec<TagEntry>, Vec<Unparseable>);
        let key = format!("ledger\0{commit}\0{deployment}\0{}", target.unwrap_or("\0"));
        if let Some(hit) = self.memo::<Read>(&key) {
            return Ok((hit.0.clone(), hit.1.clone()));
        }
        let read = self.read_ledger(commit, deployment, target)?;
        let out = (read.0.clone(), read.1.clone());
        self.remember(key, Arc::new(read));
        Ok(out)
    }

    fn read_ledger(
        &self,
        commit: &str,
        deployment: &str,
        target: Option<&str>,
    ) -> Result<(Vec<TagEntry>, Vec<Unparseable>), GitError> {
        let odd = |place: String, reason: String| Unparseable { tag: place, reason };
        let mut entries = Vec::new();
        let mut bad = Vec::new();
        let commit_obj = match self.raw().find_commit(oid(commit)?) {
            Ok(c) => c,
            Err(_) => {
                bad.push(odd(
                    ledger_ref(deployment),
                    format!("{} is not a commit", super::short(commit)),
                ));
                return Ok((entries, bad));
            }
        };
        let root = commit_obj.tree().git()?;
        // `<target>/<component…>/<YYYY-MM>.jsonl`; a component name may hold `/`.
        // Folders and files by their entry's mode, as git (and the guard's tree diff) reads
        // them: a submodule or symlink entry is no ledger file, whatever object it names.
        let mut stack: Vec<(Vec<String>, git2::Oid, i32)> = Vec::new();
        for t in root.iter() {
            let t_name = String::from_utf8_lossy(t.name_bytes()).into_owned();
            if target.is_none_or(|want| want == t_name) {
                stack.push((vec![t_name], t.id(), t.filemode()));
            }
        }
        while let Some((path, id, mode)) = stack.pop() {
            match mode {
                TREE_MODE => match self.raw().find_tree(id) {
                    Ok(tree) => {
                        for e in tree.iter() {
                            let mut sub = path.clone();
                            sub.push(String::from_utf8_lossy(e.name_bytes()).into_owned());
                            stack.push((sub, e.id(), e.filemode()));
                        }
                    }
                    // Missing from a partial clone, or not a tree: said as such.
                    Err(_) => self.ledger_file(&path, id, deployment, &mut entries, &mut bad),
                },
                FILE_MODE | EXECUTABLE_MODE => {
                    self.ledger_file(&path, id, deployment, &mut entries, &mut bad)
                }
                _ => bad.push(odd(
                    format!("ledger:{}", path.join("/")),
                    "not a <target>/<component>/<month>.jsonl file".into(),
                )),
            }
        }
        once(&mut entries, &mut bad);
        Ok((entries, bad))
    }

    /// The records of the ledger files that differ between ledger commits `old` (none: the
    /// empty ledger) and `new`: each side's lines of exactly those files, and what cannot be
    /// used in `new`'s. An append changes only the month files it adds to, so this reads what
    /// a push adds, not the whole archived history (a line is filed by its own name, so a
    /// second copy of a record is always in a changed file).
    pub fn ledger_changes(
        &self,
        old: Option<&str>,
        new: &str,
        deployment: &str,
    ) -> Result<LedgerChanges, GitError> {
        let repo = self.raw();
        let tree_of = |c: &str| -> Result<Option<git2::Tree<'_>>, GitError> {
            Ok(repo.find_commit(oid(c)?).and_then(|c| c.tree()).ok())
        };
        let mut out = LedgerChanges::default();
        let Some(new_tree) = tree_of(new)? else {
            out.odd.push(Unparseable {
                tag: ledger_ref(deployment),
                reason: format!("{} is not a commit", super::short(new)),
            });
            return Ok(out);
        };
        let old_tree = old.map(tree_of).transpose()?.flatten();
        let diff = repo
            .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), None)
            .git()?;
        let mut ignored = Vec::new();
        let path_of = |f: &git2::DiffFile<'_>| {
            f.path_bytes()
                .map(|p| {
                    String::from_utf8_lossy(p)
                        .split('/')
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        for delta in diff.deltas() {
            let (before, after) = (delta.old_file(), delta.new_file());
            if !before.id().is_zero() {
                let path = path_of(&before);
                self.ledger_file(
                    &path,
                    before.id(),
                    deployment,
                    &mut out.before,
                    &mut ignored,
                );
            }
            if !after.id().is_zero() {
                let path = path_of(&after);
                if after.mode() == git2::FileMode::Commit {
                    out.odd.push(Unparseable {
                        tag: format!("ledger:{}", path.join("/")),
                        reason: "not a <target>/<component>/<month>.jsonl file".into(),
                    });
                    continue;
                }
                // The tree must name this file once, by this path: a tree with an entry named
                // twice (or a name git would refuse) could file a record where the diff does
                // not look.
                let named = new_tree
                    .get_path(std::path::Path::new(&path.join("/")))
                    .is_ok_and(|e| e.id() == after.id());
                if !named || path.iter().any(|p| p.is_empty()) {
                    out.odd.push(Unparseable {
                        tag: format!("ledger:{}", path.join("/")),
                        reason: "the ledger's tree names this file more than once, or by a name git does not write".into(),
                    });
                    continue;
                }
                self.ledger_file(&path, after.id(), deployment, &mut out.after, &mut out.odd);
            }
        }
        once(&mut out.after, &mut out.odd);
        Ok(out)
    }

    /// Read one ledger file (`path` from the ledger's root) into `entries`, or say in `bad`
    /// why it, or a line of it, cannot be used.
    fn ledger_file(
        &self,
        path: &[String],
        id: Oid,
        deployment: &str,
        entries: &mut Vec<TagEntry>,
        bad: &mut Vec<Unparseable>,
    ) {
        let odd = |place: String, reason: String| Unparseable { tag: place, reason };
        let place = format!("ledger:{}", path.join("/"));
        // An object the clone lacks is missing, not malformed: a partial clone
        // (`--filter=blob:none`) holds the ledger's trees without their contents.
        if !self.raw().odb().is_ok_and(|db| db.exists(id)) {
            bad.push(odd(
                place,
                format!(
                    "{} object {id} (a partial clone fetched the ledger without its contents), so its records were not read; run `atmos deployment fetch {deployment}`",
                    Unparseable::MISSING
                ),
            ));
            return;
        }
        let (Ok(blob), [t, component @ .., file]) = (self.raw().find_blob(id), path) else {
            bad.push(odd(
                place,
                "not a <target>/<component>/<month>.jsonl file".into(),
            ));
            return;
        };
        if component.is_empty() || !file.ends_with(".jsonl") {
            bad.push(odd(
                place,
                "not a <target>/<component>/<month>.jsonl file".into(),
            ));
            return;
        }
        let Ok(text) = std::str::from_utf8(blob.content()) else {
            bad.push(odd(place, "not UTF-8".into()));
            return;
        };
        let component = component.join("/");
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let here = format!("{place}:{}", n + 1);
            match parse_line(line, deployment, t, &component) {
                Ok(e) if format!("{}.jsonl", month_of(&e)) != *file => bad.push(odd(
                    here,
                    format!("{} is filed in {file}, not its month's file", e.name),
                )),
                Ok(e) => entries.push(e),
                Err(why) => bad.push(odd(here, why)),
            }
        }
    }

    /// Write (without moving any ref) the ledger commit that adds `records` — entries whose
    /// `archived` content is set — on top of `parent`. Its message names every record it
    /// absorbed.
    pub fn write_ledger(
        &self,
        deployment: &str,
        parent: Option<&str>,
        records: &[TagEntry],
        author: &Author,
    ) -> Result<String, GitError> {
        let repo = self.raw();
        let parent_commit = parent
            .map(|p| repo.find_commit(oid(p)?).git())
            .transpose()?;
        let base = parent_commit.as_ref().map(|c| c.tree()).transpose().git()?;
        // target → component → month → new lines.
        let mut files: BTreeMap<(String, String, String), Vec<&TagEntry>> = BTreeMap::new();
        for r in records {
            files
                .entry((r.target.clone(), r.component.clone(), month_of(r)))
                .or_default()
                .push(r);
        }
        let mut root = base.as_ref().map(|t| t.id());
        for ((t, c, month), add) in files {
            let file = format!("{month}.jsonl");
            let path = format!("{t}/{c}/{file}");
            let mut lines: Vec<(TagEntry, String)> = Vec::new();
            if let Some(tree) = root.map(|id| repo.find_tree(id)).transpose().git()?
                && let Ok(e) = tree.get_path(std::path::Path::new(&path))
            {
                let blob = repo.find_blob(e.id()).git()?;
                for line in String::from_utf8_lossy(blob.content()).lines() {
                    if let Ok(entry) = parse_line(line, deployment, &t, &c) {
                        lines.push((entry, line.to_owned()));
                    }
                }
            }
            for r in add {
                let Some(object) = &r.archived else { continue };
                let line = serde_json::to_string(&Line {
                    tag: r.name.clone(),
                    oid: r.oid.clone(),
                    object: object.to_string(),
                })
                .map_err(|e| GitError::Git {
                    message: e.to_string(),
                })?;
                lines.push(((*r).clone(), line));
            }
            lines.sort_by_key(|(e, _)| e.key());
            lines.dedup_by(|a, b| a.0.name == b.0.name);
            let mut text = String::new();
            for (_, l) in &lines {
                text.push_str(l);
                text.push('\n');
            }
            let blob = repo.blob(text.as_bytes()).git()?;
            let mut at: Vec<&str> = vec![&t];
            at.extend(c.split('/'));
            at.push(&file);
            root = Some(self.put_path(root, &at, blob)?);
        }
        let tree = match root {
            Some(id) => repo.find_tree(id).git()?,
            None => repo
                .find_tree(repo.treebuilder(None).git()?.write().git()?)
                .git()?,
        };
        let mut message = format!(
            "Archive {} record{} of {deployment}\n\n",
            records.len(),
            crate::plural::s(records.len())
        );
        // A bounded message: every push to the store parses the ledgers' tip commits (git's
        // connectivity check), so a message naming 20,000 tags costs each push 2 MB to
        // inflate. The tree names every record.
        for r in records.iter().take(MESSAGE_NAMES) {
            message.push_str(&format!("{} {}\n", r.oid, r.name));
        }
        if records.len() > MESSAGE_NAMES {
            message.push_str(&format!(
                "… and {} more (the tree holds every record)\n",
                records.len() - MESSAGE_NAMES
            ));
        }
        let sig = author.signature()?;
        let parents: Vec<&git2::Commit> = parent_commit.iter().collect();
        let id = repo
            .commit(None, &sig, &sig, &message, &tree, &parents)
            .git()?;
        Ok(id.to_string())
    }

    /// The tree `base` with the blob at `path` (folders created as needed).
    fn put_path(&self, base: Option<Oid>, path: &[&str], blob: Oid) -> Result<Oid, GitError> {
        let repo = self.raw();
        let base_tree = base.map(|id| repo.find_tree(id)).transpose().git()?;
        let mut builder = repo.treebuilder(base_tree.as_ref()).git()?;
        match path {
            [file] => {
                builder.insert(file, blob, 0o100644).git()?;
            }
            [dir, rest @ ..] => {
                let sub = base_tree
                    .as_ref()
                    .and_then(|t| t.get_name(dir))
                    .filter(|e| e.kind() == Some(ObjectType::Tree))
                    .map(|e| e.id());
                let sub = self.put_path(sub, rest, blob)?;
                builder.insert(dir, sub, 0o040000).git()?;
            }
            [] => {}
        }
        builder.write().git()
    }

    /// Move `deployment`'s ledger ref from `old` (`None`: absent) to `new`, failing when it
    /// holds something else.
    pub fn set_ledger(
        &self,
        deployment: &str,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), GitError> {
        let name = ledger_ref(deployment);
        let log = format!("atmos: archive into {name}");
        match old {
            Some(o) => self
                .raw()
                .reference_matching(&name, oid(new)?, true, oid(o)?, &log)
                .map(|_| ()),
            None => self
                .raw()
                .reference(&name, oid(new)?, false, &log)
                .map(|_| ()),
        }
        .map_err(|e| GitError::Git {
            message: format!("cannot move {name}: {}", e.message()),
        })
    }

    /// Delete the history tags `entries` here, each only if it still holds the same object,
    /// in one transaction (all or nothing; packed-refs rewritten once).
    pub fn delete_tags(&self, entries: &[TagEntry]) -> Result<(), GitError> {
        if entries.is_empty() {
            return Ok(());
        }
        let failed = |message: String| GitError::Git { message };
        let mut child = Command::new("git")
            .env_remove(crate::signing::KEY_ENV)
            .arg("--git-dir")
            .arg(self.git_dir())
            .args(["update-ref", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot run git update-ref: {e}")))?;
        let mut input = String::from("start\n");
        for e in entries {
            input.push_str(&format!("delete refs/tags/{} {}\n", e.name, e.oid));
        }
        input.push_str("prepare\ncommit\n");
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| failed(format!("cannot write to git update-ref: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| failed(format!("git update-ref: {e}")))?;
        if !out.status.success() {
            return Err(failed(format!(
                "git update-ref could not delete the archived tags: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

/// One ledger line of `deployment`, filed under `target`/`component`.
fn parse_line(
    line: &str,
    deployment: &str,
    target: &str,
    component: &str,
) -> Result<TagEntry, String> {
    let parsed: Line = serde_json::from_str(line).map_err(|e| format!("not a ledger line: {e}"))?;
    let hashed = Oid::hash_object(ObjectType::Tag, parsed.object.as_bytes())
        .map_err(|e| e.message().to_owned())?;
    if hashed.to_string() != parsed.oid {
        return Err(format!(
            "the archived object of {} hashes to {}, not the {} it claims: the line was edited",
            parsed.tag,
            super::short(&hashed.to_string()),
            super::short(&parsed.oid)
        ));
    }
    let mut entry = TagEntry::parse(
        &format!("refs/tags/{}", parsed.tag),
        &parsed.oid,
        deployment,
    )
    .ok_or_else(|| format!("{} is not a history tag name of {deployment}", parsed.tag))?;
    if entry.target != target || entry.component != component {
        return Err(format!(
            "{} is filed under {target}/{component}, not its own place",
            parsed.tag
        ));
    }
    entry.archived = Some(Arc::from(parsed.object));
    Ok(entry)
}
