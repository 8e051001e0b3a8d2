//! The provenance verdict: each image a rollout deploys is checked against the signed
//! provenance its builds carry (see [`crate::provenance`]) — what the gates see as
//! `components[].provenance` — and, where the target requires it
//! (`promotion.provenance.required`), an image whose provenance does not verify is refused.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::ProvenanceRules;
use crate::contracts::provenance::ProvenanceCheck;
use crate::contracts::{BuildRecord, Decision, Verdict};
use crate::git::short;
use crate::workflow::error::WorkflowError;
use crate::workflow::rollout::model::{ARTIFACT_GATE, Artifact, PlannedComponent};
use crate::workflow::rollout::plan::artifacts::from;

/// What the provenance verdict is asked.
pub struct Question<'a> {
    /// The deployment.
    pub deployment: &'a str,
    /// The target rolled out to.
    pub target: &'a str,
    /// Every selected component.
    pub components: &'a [PlannedComponent],
    /// The artifacts decided.
    pub artifacts: &'a BTreeMap<String, Artifact>,
    /// The target's rules, when it has any.
    pub rules: Option<&'a ProvenanceRules>,
    /// The trusted `allowed_signers` file.
    pub signers: Option<&'a Path>,
    /// Approver groups (for `from_groups`).
    pub groups: &'a indexmap::IndexMap<String, Vec<String>>,
}

/// Whether `who` may build what runs in a target with `rules`.
pub fn allowed_builder(
    rules: Option<&ProvenanceRules>,
    groups: &indexmap::IndexMap<String, Vec<String>>,
    who: &str,
) -> bool {
    let Some(r) = rules else { return true };
    if r.builders.is_empty() && r.from_groups.is_empty() {
        return true;
    }
    crate::identity::listed(&r.builders, who)
        || r.from_groups.iter().any(|g| {
            groups
                .get(g)
                .is_some_and(|m| crate::identity::listed(m, who))
        })
}

/// The check of each running image component with an artifact, and a denial where the
/// target requires provenance and one does not verify. `builds` gives a commit's builds.
pub fn verdict(
    q: &Question<'_>,
    builds: &dyn Fn(&str) -> Result<Vec<BuildRecord>, WorkflowError>,
) -> Result<(BTreeMap<String, ProvenanceCheck>, Option<Decision>), WorkflowError> {
    let mut out = BTreeMap::new();
    let allowed = |who: &str| allowed_builder(q.rules, q.groups, who);
    for c in q.components.iter().filter(|c| c.run) {
        let Some(a) = q.artifacts.get(&c.name) else {
            continue;
        };
        if a.image.is_none() && a.from != from::TO_BUILD {
            continue;
        }
        let check = match (&a.digest, a.from.as_str()) {
            (_, from::TO_BUILD) => ProvenanceCheck {
                reason: Some(format!(
                    "{} is not built yet: a build in this rollout has no provenance checked before it runs",
                    short(&c.new)
                )),
                ..ProvenanceCheck::default()
            },
            (None, _) => ProvenanceCheck {
                reason: Some(
                    "no registry digest was recorded (built with --skip-push, or the engine did not say): nothing to prove".into(),
                ),
                ..ProvenanceCheck::default()
            },
            (Some(digest), _) => crate::provenance::of_builds(
                &builds(&c.new)?,
                &c.name,
                &crate::provenance::Expect {
                    deployment: q.deployment,
                    component: &c.name,
                    commit: &c.new,
                    digest,
                    signers: q.signers,
                    allowed_builder: &allowed,
                },
            ),
        };
        out.insert(c.name.clone(), check);
    }
    let required = q.rules.is_some_and(|r| r.required);
    let failing: Vec<String> = out
        .iter()
        .filter(|(_, c)| !c.verified)
        .map(|(name, c)| {
            format!(
                "{name}: {}",
                c.reason
                    .as_deref()
                    .unwrap_or("its provenance does not verify")
            )
        })
        .collect();
    let decision = if !required || out.is_empty() {
        None
    } else if failing.is_empty() {
        Some(Decision::new(
            ARTIFACT_GATE,
            "provenance",
            Verdict::Allow,
            format!(
                "every image deployed to {} has a signed provenance that verifies",
                q.target
            ),
        ))
    } else {
        let mut d = Decision::new(
            ARTIFACT_GATE,
            "provenance",
            Verdict::Deny,
            format!(
                "{} deploys only images whose signed provenance verifies; {}",
                q.target,
                failing.join("; ")
            ),
        );
        d.fix = Some(
            "build the commit with the builder's key (atmos deployment build <deployment> --force --signing-key <key>, pushed to a registry), by an allowed builder (promotion.provenance), then roll out again".into(),
        );
        Some(d)
    };
    Ok((out, decision))
}
