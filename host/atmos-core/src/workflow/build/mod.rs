//! `build`: build each component of a commit once — in a private export of the commit's
//! tree — ask the engine for each image's digest, record what was built in the commit's
//! builds note, and regenerate the commit's CycloneDX SBOM from every recorded build; both
//! notes are pushed to the shared remote when there is one. Rollouts deploy these artifacts
//! and never build again (an entry target builds first when its commit is not built).
//! [`plan`] decides the commands.

pub mod plan;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use super::error::WorkflowError;
use super::events::{Event, Observer};
use super::inputs::resolve_target;
use crate::artifacts;
use crate::config::{LoadedDeployment, Project, Vars};
use crate::contracts::BuildRecord;
use crate::contracts::layout::notes_ref;
use crate::executor::run::{Outcome, run_blocking};
use crate::git::remote::Remote;
use crate::git::{Author, GitRepo};
use crate::sbom;

pub use plan::{BuildItem, BuildPlan, Builder};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The deployment.
    pub deployment: String,
    /// The target whose vars the build gets (default: `context.default_target`).
    pub target: Option<String>,
    /// The commit to build (default: HEAD), from a private export of its tree.
    pub git_sha: Option<String>,
    /// Only these components (names or `type/name`); empty for all.
    pub components: Vec<String>,
    /// Show the commands; build nothing, record nothing.
    pub plan_only: bool,
    /// Build but do not push images.
    pub skip_push: bool,
    /// Build again components already built for the commit.
    pub force: bool,
    /// A scanner report whose findings go into the SBOM.
    pub vulnerabilities: Option<PathBuf>,
    /// Images built at once.
    pub parallelism: usize,
    /// `--context key=value` overrides of the merged vars.
    pub context: Vars,
    /// Who builds.
    pub actor: String,
    /// CI build identifier.
    pub build_id: Option<String>,
    /// The SSH key that signs the build records (the builder's), when one is configured.
    pub signing_key: Option<crate::signing::Key>,
}

/// One component's build.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Built {
    /// Component.
    pub component: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The image reference built.
    pub image: Option<String>,
    /// Its digest, when the engine told it.
    pub digest: Option<String>,
    /// Whether it was pushed to its registry.
    pub pushed: bool,
    /// True when its signed provenance was recorded.
    pub provenance: bool,
    /// The digest of its signed provenance's OCI artifact in the registry, when attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Wall time.
    pub duration_ms: u64,
}

/// What a build did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BuildReport {
    /// The plan it followed.
    pub plan: BuildPlan,
    /// Each component built now.
    pub built: Vec<Built>,
    /// Components already built for this commit, not built again (`--force` rebuilds).
    pub already_built: Vec<BuildRecord>,
    /// The SBOM generated, when every build succeeded.
    pub sbom: Option<sbom::Generated>,
    /// The notes ref the SBOM is attached to.
    pub sbom_note: Option<String>,
    /// The notes ref the builds are recorded in.
    pub builds_note: String,
    /// True when every build succeeded and the SBOM was recorded.
    pub success: bool,
    /// Things worth a warning (skipped lockfiles, a very large SBOM).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// How a build ended.
#[derive(Debug, Clone)]
pub enum BuildOutcome {
    /// Plan only: the commands it would run.
    Planned(BuildPlan),
    /// The builders ran (or had nothing to do).
    Finished(Box<BuildReport>),
}

crate::document!(BuildPlan => "BuildPlan", BuildReport => "BuildReport");

/// The deployment as of `commit`, from its own tree (exported privately).
fn at_commit(
    git: &GitRepo,
    project: &Project,
    deployment: &str,
    commit: &str,
) -> Result<(plan::Tree, LoadedDeployment), WorkflowError> {
    let rel = crate::workflow::trust::project_in_repo(git, &project.root);
    let tree = plan::Tree::export(git, commit, &rel)?;
    let there = Project::open(tree.root.clone())?;
    let loaded = match there.load(deployment) {
        Ok(l) => l,
        Err(crate::config::ProjectError::UnknownDeployment { .. }) => {
            return Err(WorkflowError::NotInCommit {
                deployment: deployment.to_owned(),
                commit: commit.to_owned(),
                path: rel.join("deployments").join(format!("{deployment}.yaml")),
            });
        }
        Err(e) => return Err(e.into()),
    };
    Ok((tree, loaded))
}

/// `--context` as a build records it (strings as they are, other values as JSON).
fn recorded_context(request: &BuildRequest) -> indexmap::IndexMap<String, String> {
    request
        .context
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect()
}

/// The record of `item`'s build (its duration and signatures are set by the caller).
fn new_record(
    plan: &BuildPlan,
    item: &BuildItem,
    commit: &str,
    target: &str,
    request: &BuildRequest,
    digest: Option<String>,
) -> BuildRecord {
    BuildRecord {
        deployment: plan.deployment.clone(),
        component: item.name.clone(),
        git_sha: commit.to_owned(),
        image: item.image.clone(),
        digest,
        builder: item
            .builder
            .map_or("script", plan::Builder::name)
            .to_owned(),
        pushed: item.image.is_some() && !request.skip_push,
        built_by: request.actor.clone(),
        built_at: crate::contracts::layout::rfc3339(jiff::Timestamp::now()),
        duration_ms: 0,
        target: target.to_owned(),
        context: recorded_context(request),
        build_id: request.build_id.clone(),
        provenance: None,
        signature: None,
    }
}

/// The provenance statement of `image` (served as `digest`) built for `item`.
fn statement_of(
    plan: &BuildPlan,
    item: &BuildItem,
    record: &BuildRecord,
    image: &str,
    digest: &str,
    git: &GitRepo,
) -> serde_json::Value {
    let source_dir = plan
        .sbom_components
        .iter()
        .find(|c| c.name == item.name)
        .and_then(|c| c.source_dir.clone());
    let shown = |p: &std::path::Path| {
        p.strip_prefix(&plan.root)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let materials = source_dir
        .map(|d| crate::provenance::materials(&d, &shown))
        .unwrap_or_default();
    let finished = jiff::Timestamp::now();
    let started = finished
        .checked_sub(jiff::SignedDuration::from_millis(
            i64::try_from(record.duration_ms).unwrap_or(i64::MAX),
        ))
        .unwrap_or(finished);
    let repository = git
        .config_string("remote.origin.url")
        .map(|u| without_credentials(&u));
    crate::provenance::statement(&crate::provenance::Facts {
        deployment: &record.deployment,
        component: &record.component,
        target: &record.target,
        commit: &record.git_sha,
        image,
        digest,
        builder: &record.built_by,
        engine: &record.builder,
        commands: &item.command_lines,
        materials: &materials,
        repository: repository.as_deref(),
        build_id: record.build_id.as_deref(),
        started_on: &crate::contracts::layout::rfc3339(started),
        finished_on: &crate::contracts::layout::rfc3339(finished),
    })
}

/// The signed provenance of `image` (pushed, served as `digest`) built for `item`.
fn provenance_of(
    plan: &BuildPlan,
    item: &BuildItem,
    record: &BuildRecord,
    image: &str,
    digest: &str,
    git: &GitRepo,
    key: &crate::signing::Key,
) -> Result<crate::contracts::provenance::Envelope, String> {
    let statement = statement_of(plan, item, record, image, digest, git);
    crate::provenance::seal(&statement, key).map_err(|e| e.to_string())
}

/// Each build's line in the builds note, as it will be written (a digest, the provenance and
/// the signatures at their sizes), must fit in a note line: checked before anything is built,
/// so that no image is pushed whose record could not be kept.
fn check_line_sizes(
    plan: &BuildPlan,
    commit: &str,
    target: &str,
    request: &BuildRequest,
    git: &GitRepo,
) -> Result<(), WorkflowError> {
    use base64::Engine as _;
    // An armored SSH signature of an Ed25519 key, and a DSSE signature with its key id.
    const SSH_SIGNATURE: usize = 400;
    const DSSE_SIGNATURE: usize = 200;
    let max = crate::contracts::limits::NOTE_LINE_MAX;
    let digest = format!("sha256:{}", "0".repeat(64));
    for item in &plan.items {
        let mut record = new_record(plan, item, commit, target, request, Some(digest.clone()));
        record.duration_ms = u64::MAX;
        let mut size = serde_json::to_string(&record).map_or(0, |l| l.len());
        if request.signing_key.is_some() {
            size += SSH_SIGNATURE;
            if let Some(image) = &item.image {
                let statement = statement_of(plan, item, &record, image, &digest, git);
                let body = serde_json::to_vec(&statement).unwrap_or_default();
                size += base64::engine::general_purpose::STANDARD
                    .encode(&body)
                    .len()
                    + DSSE_SIGNATURE;
            }
        }
        if size > max {
            return Err(WorkflowError::BuildRecordTooLarge {
                component: item.name.clone(),
                size,
                max,
            });
        }
    }
    Ok(())
}

/// Attach `envelope` to `image@digest` in its registry; the artifact's digest.
fn attach(
    image: &str,
    digest: &str,
    envelope: &crate::contracts::provenance::Envelope,
) -> Result<String, String> {
    use crate::contracts::provenance::{ENVELOPE_MEDIA_TYPE, PAYLOAD_TYPE};
    let subject = crate::registry::Reference::parse(image)
        .map_err(|e| e.to_string())?
        .pinned(digest);
    let bytes = serde_json::to_vec(envelope).map_err(|e| e.to_string())?;
    crate::registry::Client::from_env()
        .attach(&subject, PAYLOAD_TYPE, ENVELOPE_MEDIA_TYPE, &bytes)
        .map_err(|e| e.to_string())
}

/// A remote's URL without the user and password it may carry (`https://token@host/…`).
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}/{path}")
        }
        None => url.to_owned(),
    }
}

/// Build what is not built yet for the commit, record each build in the builds note, and
/// regenerate the commit's SBOM from every build recorded; push both notes.
pub fn build(
    project: &Project,
    remote: Option<&Remote>,
    request: &BuildRequest,
    observer: &dyn Observer,
) -> Result<BuildOutcome, WorkflowError> {
    crate::identity::check(&crate::identity::Actor {
        id: request.actor.clone(),
        source: "the builder's identity".into(),
    })
    .map_err(|problem| WorkflowError::BadActor { problem })?;
    let git = GitRepo::discover(&project.root)?;
    let commit = git.resolve_commit(request.git_sha.as_deref().unwrap_or("HEAD"))?;
    let (tree, loaded) = at_commit(&git, project, &request.deployment, &commit)?;
    let target = resolve_target(&loaded.deployment, request.target.as_deref(), "build")?;
    let env = crate::identity::process_env;
    let mut plan = plan::plan(
        &loaded,
        &tree,
        &target,
        &request.components,
        request.skip_push,
        &env,
    )?;
    let existing = artifacts::latest(&git, &plan.deployment, &commit)?;
    let mut already_built = Vec::new();
    if !request.force {
        // A build with other `--context` values is another build: it runs (and its record
        // becomes the commit's newest); the same context is already built.
        let context = recorded_context(request);
        plan.items.retain(|i| match existing.get(&i.name) {
            Some(record) if record.context == context => {
                already_built.push(record.clone());
                false
            }
            _ => true,
        });
    }
    plan.already_built = already_built.iter().map(|r| r.component.clone()).collect();
    if request.plan_only {
        return Ok(BuildOutcome::Planned(plan));
    }
    check_line_sizes(&plan, &commit, &target, request, &git)?;
    observer.event(&Event::BuildPlanned(&plan));
    let log_dir = git
        .git_dir()
        .join("atmos/logs")
        .join(&plan.deployment)
        .join("build")
        .join(&commit[..commit.len().min(12)]);
    let prepared = plan::prepare(&plan, &loaded, &request.context, log_dir)?;
    let runs = run_blocking(&prepared, request.parallelism, &mut |e| {
        observer.event(&Event::Executor(e))
    })
    .map_err(|source| WorkflowError::Io {
        path: "the async runtime".into(),
        source,
    })?;
    let author = Author::of(
        &git,
        &git.config_string("user.email")
            .unwrap_or_else(|| request.actor.clone()),
    );
    let mut built = Vec::new();
    let mut warnings = Vec::new();
    let mut referrers: Vec<(String, String)> = Vec::new();
    for item in &plan.items {
        let run = runs.iter().find(|r| r.name == item.name);
        let outcome = run.map_or(
            Outcome::Skipped {
                reason: "not run".into(),
            },
            |r| r.outcome.clone(),
        );
        let digest = match &outcome {
            Outcome::Succeeded => plan::digest(&item.digest_from),
            _ => None,
        };
        let duration_ms = run.map_or(0, |r| r.duration_ms);
        let mut provenance = false;
        if outcome == Outcome::Succeeded {
            // Each success is recorded at once: a retry after a partial failure builds only
            // what failed.
            let mut record = new_record(&plan, item, &commit, &target, request, digest.clone());
            record.duration_ms = duration_ms;
            // A pushed image's provenance, signed by its builder: targets that require
            // provenance deploy only digests whose provenance verifies.
            if let (Some(key), Some(image), Some(d)) = (&request.signing_key, &item.image, &digest)
            {
                match provenance_of(&plan, item, &record, image, d, &git, key) {
                    Ok(envelope) => record.provenance = Some(envelope),
                    Err(why) => {
                        warnings.push(format!("{}: no provenance was signed: {why}", item.name))
                    }
                }
            }
            // The builder signs what it built: where a target requires signatures, only
            // signed builds are deployed there.
            if let Some(key) = &request.signing_key {
                record.signature = Some(
                    artifacts::sign(&record, key)
                        .map_err(|e| WorkflowError::Signing(e.to_string()))?,
                );
            }
            if let (Some(envelope), Some(image), Some(d)) =
                (&record.provenance, &item.image, &digest)
            {
                // Beside the image too, where the registry takes it: the note is what
                // decides, the referrer lets registry tools find it.
                match attach(image, d, envelope) {
                    Ok(referrer) => referrers.push((item.name.clone(), referrer)),
                    Err(why) => warnings.push(format!(
                        "{}: the provenance is recorded in git but was not attached to {image} in its registry: {why}",
                        item.name
                    )),
                }
            }
            provenance = record.provenance.is_some();
            artifacts::append(&git, &record, &author)?;
        }
        built.push(Built {
            component: item.name.clone(),
            provenance,
            referrer: referrers
                .iter()
                .find(|(n, _)| *n == item.name)
                .map(|(_, r)| r.clone()),
            outcome,
            image: item.image.clone(),
            pushed: item.image.is_some() && !request.skip_push,
            digest,
            duration_ms,
        });
    }
    let builds_note = artifacts::builds_ref(&plan.deployment);
    if let Some(r) = remote
        && !built.is_empty()
    {
        r.push_notes(&builds_note)?;
    }
    if built.iter().any(|b| b.outcome != Outcome::Succeeded) {
        return Ok(BuildOutcome::Finished(Box::new(BuildReport {
            plan,
            built,
            already_built,
            sbom: None,
            sbom_note: None,
            builds_note,
            success: false,
            warnings,
        })));
    }
    // The SBOM of the commit, from every build recorded for it (not only this run's), keeping
    // the findings of an earlier scan unless a new report is given.
    let previous = sbom::load(&git, &plan.deployment, &commit)?;
    if built.is_empty() && request.vulnerabilities.is_none() && previous.is_some() {
        return Ok(BuildOutcome::Finished(Box::new(BuildReport {
            plan,
            built,
            already_built,
            sbom: None,
            sbom_note: None,
            builds_note,
            success: true,
            warnings,
        })));
    }
    let builds = artifacts::latest(&git, &plan.deployment, &commit)?;
    let inputs = plan::with_builds(&plan, &builds);
    let generated = sbom::generate(
        &plan.deployment,
        &commit,
        &inputs,
        &plan.root,
        request.vulnerabilities.as_deref(),
        previous.as_deref(),
    )?;
    warnings.extend(
        generated
            .errors
            .iter()
            .map(|e| format!("lockfile skipped: {e}")),
    );
    warnings.extend(generated.dropped.iter().cloned());
    let big = sbom::store(
        &git,
        &plan.deployment,
        &commit,
        &generated.json,
        true,
        &author,
    )?;
    let note = notes_ref(&plan.deployment, "sbom");
    if let Some(r) = remote {
        r.push_notes(&note)?;
    }
    if big {
        warnings.push(format!(
            "the SBOM is {} bytes, over 10 MB; notes this size slow down fetches",
            generated.json.len()
        ));
    }
    Ok(BuildOutcome::Finished(Box::new(BuildReport {
        plan,
        built,
        already_built,
        sbom: Some(generated),
        sbom_note: Some(note),
        builds_note,
        success: true,
        warnings,
    })))
}
