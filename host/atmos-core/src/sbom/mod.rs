//! SBOMs: one CycloneDX 1.5 JSON document per deployment and commit, with a component per
//! deployment component (its image and digest when built) and the dependencies found in its
//! lockfiles nested under it; stored as the note `refs/notes/atmos/<deployment>/sbom` on the
//! commit, summarised for people and for gates (`input.sbom`).
//!
//! The document model and its validation come from `cyclonedx-bom` (the CycloneDX project's
//! own Rust library); scanner findings (`--vulnerabilities`) are merged into the JSON.

pub mod lockfiles;

use std::path::{Path, PathBuf};

use cyclonedx_bom::external_models::normalized_string::NormalizedString;
use cyclonedx_bom::external_models::uri::Purl;
use cyclonedx_bom::models::bom::{Bom, SpecVersion};
use cyclonedx_bom::models::component::{Classification, Component, Components};
use cyclonedx_bom::models::dependency::{Dependencies, Dependency};
use cyclonedx_bom::models::hash::{Hash, HashAlgorithm, HashValue, Hashes};
use cyclonedx_bom::models::metadata::Metadata;
use cyclonedx_bom::models::property::{Properties, Property};
use cyclonedx_bom::models::tool::{Tool, Tools};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::contracts::layout::notes_ref;
use crate::git::{GitError, GitRepo};
use lockfiles::{LockfileError, Package};

/// Above this, storing an SBOM warns.
pub const WARN_BYTES: usize = 10 * 1024 * 1024;
/// Above this, storing an SBOM is refused.
pub const MAX_BYTES: usize = 50 * 1024 * 1024;

/// A built image.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Image {
    /// `registry/name:tag`.
    pub reference: String,
    /// `sha256:…`, when known.
    pub digest: Option<String>,
}

/// One deployment component going into the SBOM.
#[derive(Debug, Clone)]
pub struct ComponentInput {
    /// Component name.
    pub name: String,
    /// Executor type.
    pub kind: crate::config::ComponentType,
    /// Folder whose lockfiles describe it.
    pub source_dir: Option<PathBuf>,
    /// Its image, when built.
    pub image: Option<Image>,
}

/// Why an SBOM could not be made, stored or read.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// The CycloneDX model refused the document.
    #[error("the SBOM is not valid CycloneDX 1.5: {0}")]
    Invalid(String),
    /// Too big for a note.
    #[error("the SBOM is {size} bytes, over the {max}-byte limit for a git note")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// One exists and --force was not given.
    #[error("commit {commit} already has an SBOM for {deployment}")]
    Exists {
        /// Deployment.
        deployment: String,
        /// Commit.
        commit: String,
    },
    /// A scanner report that is neither CycloneDX nor SARIF.
    #[error("{file}: {message}")]
    Findings {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Git failure.
    #[error(transparent)]
    Git(#[from] GitError),
}

impl crate::error::Actionable for SbomError {
    /// Too large, already there or a bad report is the user's to fix (2); else a failure (1).
    fn exit(&self) -> crate::exit::Exit {
        match self {
            SbomError::TooLarge { .. } | SbomError::Exists { .. } | SbomError::Findings { .. } => {
                crate::exit::Exit::Usage
            }
            SbomError::Git(e) => e.exit(),
            SbomError::Invalid(_) => crate::exit::Exit::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            SbomError::TooLarge { .. } => Some(
                "trim the lockfiles scanned (settings.<type>.source) or the scanner report".into(),
            ),
            SbomError::Exists { .. } => Some("pass --force to build again and replace it".into()),
            SbomError::Findings { .. } => {
                Some("pass a CycloneDX JSON or SARIF 2.1.0 report".into())
            }
            SbomError::Git(e) => e.hint(),
            SbomError::Invalid(_) => None,
        }
    }
}

/// What generation found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Generated {
    /// The CycloneDX JSON.
    #[serde(skip)]
    pub json: String,
    /// Packages per component.
    pub packages: Vec<(String, usize)>,
    /// Lockfiles that could not be read.
    pub errors: Vec<LockfileError>,
    /// Findings merged from a scanner report.
    pub vulnerabilities: Option<usize>,
    /// Lockfile entries (or fields of them) left out because CycloneDX cannot represent
    /// them: `file: package@version: what and why`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
}

fn property(name: &str, value: &str) -> Property {
    Property::new(name, value)
}

/// Build the SBOM of `deployment` at `commit`.
///
/// `previous` is the commit's SBOM before this one: without a new scanner report, its
/// findings are kept (a rebuild of one component does not forget the scan).
pub fn generate(
    deployment: &str,
    commit: &str,
    components: &[ComponentInput],
    root: &Path,
    findings: Option<&Path>,
    previous: Option<&str>,
) -> Result<Generated, SbomError> {
    let carried: Option<Value> = match (findings, previous) {
        (None, Some(text)) => serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("vulnerabilities").cloned())
            .filter(Value::is_array),
        _ => None,
    };
    let scanned = findings.is_some() || carried.is_some();
    let mut dropped = Vec::new();
    let shown = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut bom = Bom {
        spec_version: SpecVersion::V1_5,
        ..Bom::default()
    };
    let mut metadata = Metadata::new().map_err(|e| SbomError::Invalid(e.to_string()))?;
    metadata.tools = Some(Tools::List(vec![Tool::new(
        "atmos",
        "atmos",
        env!("CARGO_PKG_VERSION"),
    )]));
    let mut root_component = Component::new(
        Classification::Application,
        deployment,
        commit,
        Some(format!("deployment:{deployment}")),
    );
    root_component.description = Some(NormalizedString::new(&format!(
        "deployment {deployment} at commit {commit}"
    )));
    metadata.component = Some(root_component);
    metadata.properties = Some(Properties(vec![
        property("atmos:git_sha", commit),
        property(
            "atmos:vulnerabilities_scanned",
            if scanned { "true" } else { "false" },
        ),
    ]));
    bom.metadata = Some(metadata);

    let mut all = Vec::new();
    let mut dependencies = vec![Dependency {
        dependency_ref: format!("deployment:{deployment}"),
        dependencies: components
            .iter()
            .map(|c| format!("component:{}", c.name))
            .collect(),
    }];
    let mut counts = Vec::new();
    let mut errors = Vec::new();
    let mut purl_refs: Vec<(String, String)> = Vec::new();
    for c in components {
        let kind = if c.image.is_some() {
            Classification::Container
        } else {
            Classification::Application
        };
        let bom_ref = format!("component:{}", c.name);
        let version = c
            .image
            .as_ref()
            .and_then(|i| i.reference.rsplit_once(':').map(|(_, t)| t.to_owned()))
            .unwrap_or_else(|| commit[..commit.len().min(12)].to_owned());
        let mut comp = Component::new(kind, &c.name, &version, Some(bom_ref.clone()));
        let mut props = vec![property("atmos:component_type", c.kind.as_str())];
        if let Some(image) = &c.image {
            props.push(property("atmos:image", &image.reference));
            if let Some(digest) = &image.digest {
                props.push(property("atmos:image_digest", digest));
                if let Some(hex) = digest.strip_prefix("sha256:") {
                    comp.hashes = Some(Hashes(vec![Hash {
                        alg: HashAlgorithm::SHA_256,
                        content: HashValue(hex.to_owned()),
                    }]));
                }
            }
        }
        let mut packages: Vec<Package> = match &c.source_dir {
            Some(dir) => {
                props.push(property("atmos:source", &shown(dir)));
                let (found, errs) = lockfiles::scan(dir, &shown);
                errors.extend(errs);
                found
            }
            None => Vec::new(),
        };
        // One folder may hold two lockfiles of one ecosystem (requirements.txt exported from
        // poetry.lock): each package once.
        packages.sort_by(|a, b| a.purl.cmp(&b.purl));
        packages.dedup_by(|a, b| a.purl == b.purl);
        comp.properties = Some(Properties(props));
        let mut nested = Vec::new();
        let mut deps = Vec::new();
        for p in &packages {
            let pref = format!("{}:{}", c.name, p.purl);
            let mut lib = Component::new(
                Classification::Library,
                &p.name,
                &p.version,
                Some(pref.clone()),
            );
            lib.purl = p.purl.parse::<Purl>().ok();
            if let Some((alg, hex)) = &p.hash {
                let alg = match *alg {
                    "SHA-512" => Some(HashAlgorithm::SHA_512),
                    "SHA-256" => Some(HashAlgorithm::SHA_256),
                    "SHA-1" => Some(HashAlgorithm::SHA1),
                    _ => None,
                };
                if let Some(alg) = alg {
                    lib.hashes = Some(Hashes(vec![Hash {
                        alg,
                        content: HashValue(hex.clone()),
                    }]));
                }
            }
            lib.properties = Some(Properties(vec![property("atmos:lockfile", &p.source)]));
            // A lockfile entry CycloneDX cannot represent (a truncated integrity, a name no
            // package URL can carry) loses that field, or is left out, with a warning — one
            // bad line never costs the whole SBOM.
            let entry = format!("{}: {}@{}", p.source, p.name, p.version);
            let problems = |lib: &Component| {
                let v =
                    cyclonedx_bom::validation::Validate::validate_version(lib, SpecVersion::V1_5);
                v.has_errors().then(|| describe(v).join("; "))
            };
            if let Some(why) = problems(&lib) {
                if lib.hashes.take().is_some() && problems(&lib).is_none() {
                    dropped.push(format!("{entry}: its hash was left out ({why})"));
                } else if lib.purl.take().is_some() && problems(&lib).is_none() {
                    dropped.push(format!("{entry}: its package URL was left out ({why})"));
                } else {
                    dropped.push(format!("{entry}: left out of the SBOM ({why})"));
                    continue;
                }
            }
            purl_refs.push((p.purl.clone(), pref.clone()));
            deps.push(pref.clone());
            nested.push(lib);
            dependencies.push(Dependency {
                dependency_ref: pref,
                dependencies: Vec::new(),
            });
        }
        counts.push((c.name.clone(), nested.len()));
        if !nested.is_empty() {
            comp.components = Some(Components(nested));
        }
        dependencies.push(Dependency {
            dependency_ref: bom_ref,
            dependencies: deps,
        });
        all.push(comp);
    }
    bom.components = Some(Components(all));
    bom.dependencies = Some(Dependencies(dependencies));

    let validation = cyclonedx_bom::validation::Validate::validate_version(&bom, SpecVersion::V1_5);
    if validation.has_errors() {
        return Err(SbomError::Invalid(describe(validation).join("; ")));
    }
    let mut bytes = Vec::new();
    bom.output_as_json_v1_5(&mut bytes)
        .map_err(|e| SbomError::Invalid(e.to_string()))?;
    let mut json: Value =
        serde_json::from_slice(&bytes).map_err(|e| SbomError::Invalid(e.to_string()))?;
    let mut merged = None;
    if let Some(file) = findings {
        let vulns = read_findings(file, &purl_refs, &shown(file))?;
        merged = Some(vulns.len());
        json["vulnerabilities"] = Value::Array(vulns);
    } else if let Some(vulns) = carried {
        merged = vulns.as_array().map(Vec::len);
        json["vulnerabilities"] = vulns;
    }
    Ok(Generated {
        json: serde_json::to_string_pretty(&json).unwrap_or_default(),
        packages: counts,
        errors,
        vulnerabilities: merged,
        dropped,
    })
}

/// A validation result as `path: message` lines a person can act on.
fn describe(result: cyclonedx_bom::validation::ValidationResult) -> Vec<String> {
    use cyclonedx_bom::validation::ValidationErrorsKind as Kind;
    fn walk(
        prefix: &str,
        result: cyclonedx_bom::validation::ValidationResult,
        out: &mut Vec<String>,
    ) {
        for (name, kind) in result.errors() {
            let path = if prefix.is_empty() {
                name
            } else if name.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{name}")
            };
            match kind {
                Kind::Struct(inner) => walk(&path, inner, out),
                Kind::List(items) => {
                    for (i, inner) in items {
                        walk(&format!("{path}[{i}]"), inner, out);
                    }
                }
                Kind::Field(errors) | Kind::Custom(errors) => {
                    out.extend(errors.into_iter().map(|e| format!("{path}: {}", e.message)));
                }
                Kind::Enum(e) => out.push(format!("{path}: {}", e.message)),
            }
        }
    }
    let mut out = Vec::new();
    walk("", result, &mut out);
    out
}

/// Scanner findings as CycloneDX vulnerabilities, pointed at our components by purl.
fn read_findings(
    file: &Path,
    purl_refs: &[(String, String)],
    shown: &str,
) -> Result<Vec<Value>, SbomError> {
    let err = |message: String| SbomError::Findings {
        file: shown.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(file).map_err(|e| err(e.to_string()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
    let affects_for = |purl: &str| -> Vec<Value> {
        let base = purl.split(['?', '#']).next().unwrap_or(purl);
        purl_refs
            .iter()
            .filter(|(p, _)| p.split(['?', '#']).next() == Some(base))
            .map(|(_, r)| serde_json::json!({"ref": r}))
            .collect()
    };
    if doc.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        // The scanner's bom-refs are its own: re-point affects at ours through purls found in
        // its components.
        let mut their_refs: Vec<(String, String)> = Vec::new();
        let mut stack: Vec<&Value> = doc
            .get("components")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        while let Some(c) = stack.pop() {
            if let (Some(r), Some(p)) = (
                c.get("bom-ref").and_then(Value::as_str),
                c.get("purl").and_then(Value::as_str),
            ) {
                their_refs.push((r.to_owned(), p.to_owned()));
            }
            if let Some(nested) = c.get("components").and_then(Value::as_array) {
                stack.extend(nested);
            }
        }
        let vulns = doc
            .get("vulnerabilities")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        return Ok(vulns
            .into_iter()
            .map(|mut v| {
                let mut affects = Vec::new();
                for a in v
                    .get("affects")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let r = a.get("ref").and_then(Value::as_str).unwrap_or_default();
                    let purl = their_refs
                        .iter()
                        .find(|(tr, _)| tr == r)
                        .map(|(_, p)| p.as_str())
                        .unwrap_or(r);
                    affects.extend(affects_for(purl));
                }
                if let Some(obj) = v.as_object_mut() {
                    obj.remove("bom-ref");
                    if affects.is_empty() {
                        obj.remove("affects");
                    } else {
                        obj.insert("affects".into(), Value::Array(affects));
                    }
                }
                v
            })
            .collect());
    }
    if doc.get("runs").and_then(Value::as_array).is_some() {
        // SARIF 2.1.0: one vulnerability per result, severity from the rule's
        // security-severity (CVSS) or the result level.
        let mut out = Vec::new();
        for run in doc["runs"].as_array().into_iter().flatten() {
            let rules = run
                .pointer("/tool/driver/rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for result in run
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = result
                    .get("ruleId")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                let rule = rules
                    .iter()
                    .find(|r| r.get("id").and_then(Value::as_str) == Some(id));
                let score = rule
                    .and_then(|r| r.pointer("/properties/security-severity"))
                    .and_then(|s| {
                        s.as_str()
                            .and_then(|x| x.parse::<f64>().ok())
                            .or_else(|| s.as_f64())
                    });
                let severity = match (score, result.get("level").and_then(Value::as_str)) {
                    (Some(s), _) if s >= 9.0 => "critical",
                    (Some(s), _) if s >= 7.0 => "high",
                    (Some(s), _) if s >= 4.0 => "medium",
                    (Some(s), _) if s > 0.0 => "low",
                    (_, Some("error")) => "high",
                    (_, Some("warning")) => "medium",
                    (_, Some("note")) => "low",
                    _ => "unknown",
                };
                let purl = result
                    .pointer("/properties/purl")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let mut v = serde_json::json!({
                    "id": id,
                    "ratings": [{"severity": severity}],
                    "description": result.pointer("/message/text").and_then(Value::as_str).unwrap_or_default(),
                });
                if let Some(s) = score {
                    v["ratings"][0]["score"] = serde_json::json!(s);
                }
                let affects = affects_for(purl);
                if !affects.is_empty() {
                    v["affects"] = Value::Array(affects);
                }
                out.push(v);
            }
        }
        return Ok(out);
    }
    Err(err("neither a CycloneDX document nor a SARIF log".into()))
}

/// Store `json` as the SBOM note of `commit`; refuse over [`MAX_BYTES`], and replace an
/// existing one only with `force`. Returns true when it is over [`WARN_BYTES`].
pub fn store(
    git: &GitRepo,
    deployment: &str,
    commit: &str,
    json: &str,
    force: bool,
    author: &crate::git::Author,
) -> Result<bool, SbomError> {
    if json.len() > MAX_BYTES {
        return Err(SbomError::TooLarge {
            size: json.len(),
            max: MAX_BYTES,
        });
    }
    let notes = notes_ref(deployment, "sbom");
    if !force && git.read_note(&notes, commit)?.is_some() {
        return Err(SbomError::Exists {
            deployment: deployment.to_owned(),
            commit: commit.to_owned(),
        });
    }
    git.write_note(&notes, commit, json, author)?;
    Ok(json.len() > WARN_BYTES)
}

/// The stored SBOM of `commit`, if any.
pub fn load(git: &GitRepo, deployment: &str, commit: &str) -> Result<Option<String>, GitError> {
    git.read_note(&notes_ref(deployment, "sbom"), commit)
}

/// Vulnerability counts by severity.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq, JsonSchema)]
pub struct Severities {
    /// Critical.
    pub critical: usize,
    /// High.
    pub high: usize,
    /// Medium.
    pub medium: usize,
    /// Low.
    pub low: usize,
    /// Info, none, or unknown.
    pub other: usize,
}

/// What the SBOM says, for `sbom --summary` and `input.sbom`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, JsonSchema)]
pub struct Summary {
    /// The commit it describes.
    pub commit: String,
    /// When it was generated.
    pub generated: Option<String>,
    /// `CycloneDX 1.5 (JSON)`.
    pub format: String,
    /// Deployment components with their kind and image.
    pub components: Vec<SummaryComponent>,
    /// Dependencies across components (distinct purls).
    pub dependencies: usize,
    /// The dependencies most components share, then by name (at most 10).
    pub top_dependencies: Vec<String>,
    /// Counts by severity; `null` when no scanner report was merged ("not scanned").
    pub vulnerabilities: Option<Severities>,
    /// Size of the stored document.
    pub size_bytes: usize,
}

/// One component in the summary.
#[derive(Debug, Clone, Serialize, serde::Deserialize, JsonSchema)]
pub struct SummaryComponent {
    /// Name.
    pub name: String,
    /// `container` or `application`.
    pub kind: String,
    /// Image reference, when built.
    pub image: Option<String>,
    /// Image digest, when known.
    pub digest: Option<String>,
    /// Dependencies under it.
    pub dependencies: usize,
}

/// Summarise a stored SBOM.
pub fn summarize(json: &str) -> Result<Summary, SbomError> {
    let doc: Value = serde_json::from_str(json).map_err(|e| SbomError::Invalid(e.to_string()))?;
    let props = |v: &Value| -> Vec<(String, String)> {
        v.get("properties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p.get("name")?.as_str()?.to_owned(),
                    p.get("value")?.as_str()?.to_owned(),
                ))
            })
            .collect()
    };
    let meta = doc.get("metadata").cloned().unwrap_or_default();
    let meta_props = props(&meta);
    let prop = |list: &[(String, String)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut components = Vec::new();
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for c in doc
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let p = props(c);
        let nested: Vec<&Value> = c
            .get("components")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        for n in &nested {
            let name = format!(
                "{} {}",
                n.get("name").and_then(Value::as_str).unwrap_or_default(),
                n.get("version").and_then(Value::as_str).unwrap_or_default()
            );
            *counts.entry(name).or_default() += 1;
        }
        components.push(SummaryComponent {
            name: c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            kind: c
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            image: prop(&p, "atmos:image"),
            digest: prop(&p, "atmos:image_digest"),
            dependencies: nested.len(),
        });
    }
    let mut top: Vec<(String, usize)> = counts.clone().into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let scanned = prop(&meta_props, "atmos:vulnerabilities_scanned").as_deref() == Some("true");
    let vulnerabilities = scanned.then(|| {
        let mut s = Severities::default();
        for v in doc
            .get("vulnerabilities")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let severity = v
                .get("ratings")
                .and_then(Value::as_array)
                .and_then(|r| r.first())
                .and_then(|r| r.get("severity"))
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            match severity {
                "critical" => s.critical += 1,
                "high" => s.high += 1,
                "medium" => s.medium += 1,
                "low" => s.low += 1,
                _ => s.other += 1,
            }
        }
        s
    });
    Ok(Summary {
        commit: prop(&meta_props, "atmos:git_sha").unwrap_or_default(),
        generated: meta
            .get("timestamp")
            .and_then(Value::as_str)
            .map(str::to_owned),
        format: format!(
            "CycloneDX {} (JSON)",
            doc.get("specVersion")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ),
        components,
        dependencies: counts.len(),
        top_dependencies: top.into_iter().take(10).map(|(n, _)| n).collect(),
        vulnerabilities,
        size_bytes: json.len(),
    })
}

/// The SBOM summary of `commit` for the gate input, or null.
pub fn gate_summary(git: &GitRepo, deployment: &str, commit: &str) -> Value {
    load(git, deployment, commit)
        .ok()
        .flatten()
        .and_then(|json| summarize(&json).ok())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null)
}

crate::document!(Summary => "SbomSummary");

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, GitRepo, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = git2::Repository::init(dir.path()).expect("init");
        let sig = git2::Signature::now("t", "t@example.com").expect("sig");
        let tree = raw
            .find_tree(raw.index().expect("index").write_tree().expect("tree"))
            .expect("tree");
        let oid = raw
            .commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .expect("commit");
        drop(tree);
        let git = GitRepo::discover(dir.path()).expect("open");
        (dir, git, oid.to_string())
    }

    #[test]
    fn notes_over_the_limit_are_refused_and_over_the_warning_size_flagged() {
        let (_dir, git, sha) = repo();
        let sig = crate::git::Author {
            name: "t".into(),
            email: "t@example.com".into(),
        };
        let huge = "x".repeat(MAX_BYTES + 1);
        assert!(matches!(
            store(&git, "d", &sha, &huge, false, &sig),
            Err(SbomError::TooLarge { .. })
        ));
        assert!(
            load(&git, "d", &sha).expect("read").is_none(),
            "nothing stored"
        );
        let big = "y".repeat(WARN_BYTES + 1);
        assert!(store(&git, "d", &sha, &big, false, &sig).expect("stored"));
        assert!(matches!(
            store(&git, "d", &sha, "{}", false, &sig),
            Err(SbomError::Exists { .. })
        ));
        assert!(!store(&git, "d", &sha, "{}", true, &sig).expect("replaced"));
        assert_eq!(load(&git, "d", &sha).expect("read").as_deref(), Some("{}"));
    }
}
