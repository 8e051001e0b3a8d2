//! `build`: run the builders of a commit's components, ask the engine for each image's
//! digest, generate the commit's CycloneDX SBOM and attach it as a note, pushed to the shared
//! remote when there is one. [`plan`] decides the commands.

pub mod plan;

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use super::error::WorkflowError;
use super::events::{Event, Observer};
use super::inputs::resolve_target;
use crate::config::{LoadedDeployment, Project};
use crate::contracts::layout::notes_ref;
use crate::executor::run::{Outcome, run_blocking};
use crate::git::remote::Remote;
use crate::git::{Author, GitRepo};
use crate::sbom;

pub use plan::{BuildItem, BuildPlan, Builder};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The target whose vars the build gets (default: `context.default_target`).
    pub target: Option<String>,
    /// Only these components (names or `type/name`); empty for all.
    pub components: Vec<String>,
    /// Show the commands; build nothing, record nothing.
    pub plan_only: bool,
    /// Build but do not push images.
    pub skip_push: bool,
    /// Replace the commit's existing SBOM.
    pub force: bool,
    /// A scanner report whose findings go into the SBOM.
    pub vulnerabilities: Option<PathBuf>,
    /// Images built at once.
    pub parallelism: usize,
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
    /// Wall time.
    pub duration_ms: u64,
}

/// What a build did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BuildReport {
    /// The plan it followed.
    pub plan: BuildPlan,
    /// Each buildable component.
    pub built: Vec<Built>,
    /// The SBOM generated, when every build succeeded.
    pub sbom: Option<sbom::Generated>,
    /// The notes ref the SBOM is attached to.
    pub sbom_note: Option<String>,
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
    /// The builders ran.
    Finished(Box<BuildReport>),
}

crate::document!(BuildPlan => "BuildPlan", BuildReport => "BuildReport");

/// Plan, run the builders, generate and store the SBOM.
pub fn build(
    project: &Project,
    loaded: &LoadedDeployment,
    remote: Option<&Remote>,
    request: &BuildRequest,
    observer: &dyn Observer,
) -> Result<BuildOutcome, WorkflowError> {
    let target = resolve_target(&loaded.deployment, request.target.as_deref(), "build")?;
    let git = GitRepo::discover(&project.root)?;
    let env = crate::identity::process_env;
    let plan = plan::plan(
        loaded,
        &project.root,
        &git,
        &target,
        &request.components,
        request.skip_push,
        &env,
    )?;
    if request.plan_only {
        return Ok(BuildOutcome::Planned(plan));
    }
    observer.event(&Event::BuildPlanned(&plan));
    if !request.force && sbom::load(&git, &plan.deployment, &plan.commit)?.is_some() {
        return Err(sbom::SbomError::Exists {
            deployment: plan.deployment.clone(),
            commit: plan.commit.clone(),
        }
        .into());
    }
    let log_dir = git
        .git_dir()
        .join("atmos/logs")
        .join(&plan.deployment)
        .join("build")
        .join(&plan.commit[..plan.commit.len().min(12)]);
    let prepared = plan::prepare(&plan, loaded, log_dir)?;
    let runs = run_blocking(&prepared, request.parallelism, &mut |e| {
        observer.event(&Event::Executor(e))
    })
    .map_err(|source| WorkflowError::Io {
        path: "the async runtime".into(),
        source,
    })?;
    let mut built = Vec::new();
    let mut digests = Vec::new();
    for item in &plan.items {
        let run = runs.iter().find(|r| r.name == item.name);
        let outcome = run.map_or(
            Outcome::Skipped {
                reason: "not run".into(),
            },
            |r| r.outcome.clone(),
        );
        let digest = match (&outcome, &item.inspect) {
            (Outcome::Succeeded, Some(inspect)) => plan::digest(inspect),
            _ => None,
        };
        digests.push((item.name.clone(), digest.clone()));
        built.push(Built {
            component: item.name.clone(),
            outcome,
            image: item.image.clone(),
            digest,
            duration_ms: run.map_or(0, |r| r.duration_ms),
        });
    }
    if built.iter().any(|b| b.outcome != Outcome::Succeeded) {
        return Ok(BuildOutcome::Finished(Box::new(BuildReport {
            plan,
            built,
            sbom: None,
            sbom_note: None,
            success: false,
            warnings: Vec::new(),
        })));
    }
    let inputs = plan::with_images(&plan, &digests);
    let generated = sbom::generate(
        &plan.deployment,
        &plan.commit,
        &inputs,
        &plan.root,
        request.vulnerabilities.as_deref(),
    )?;
    let mut warnings: Vec<String> = generated
        .errors
        .iter()
        .map(|e| format!("lockfile skipped: {e}"))
        .collect();
    let author = Author::of(
        &git,
        &git.config_string("user.email")
            .unwrap_or_else(|| "atmos".into()),
    );
    let big = sbom::store(
        &git,
        &plan.deployment,
        &plan.commit,
        &generated.json,
        request.force,
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
        sbom: Some(generated),
        sbom_note: Some(note),
        success: true,
        warnings,
    })))
}
