//! The artifact verdict: build once, promote the artifact. Each running image component
//! deploys what its source ran (a promotion), what this target ran before (a rollback or a
//! re-run), else the commit's recorded build; an entry target builds a commit not built
//! yet; a promoted target never builds, and is refused when there is nothing built.

use std::collections::BTreeMap;

use crate::config::ComponentType;
use crate::contracts::{Decision, Verdict};
use crate::git::short;
use crate::workflow::error::WorkflowError;
use crate::workflow::rollout::model::{ARTIFACT_GATE, Artifact, PlannedComponent};
use crate::workflow::rollout::records::Records;

/// Where [`Artifact::from`] says an artifact was found.
pub mod from {
    /// This target ran the commit before.
    pub const TARGET: &str = "target";
    /// The commit's builds note.
    pub const BUILD: &str = "build";
    /// Not built yet: an entry target builds it before deploying.
    pub const TO_BUILD: &str = "to_build";
    /// The prefix of the record of the target promoted from (`source:<target>`).
    pub const SOURCE: &str = "source:";
}

/// What the artifact verdict is asked.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// Deployment (for the commands offered).
    pub deployment: &'a str,
    /// The target rolled out to.
    pub target: &'a str,
    /// The target the code comes from, for a promotion.
    pub source: Option<&'a str>,
    /// Whether the target is an entry point (may build).
    pub entry: bool,
    /// Every selected component.
    pub components: &'a [PlannedComponent],
}

/// The artifact of each running image component, and the decision about them (none when no
/// image component runs).
pub fn verdict(
    q: &Question<'_>,
    records: &dyn Records,
) -> Result<(BTreeMap<String, Artifact>, Option<Decision>), WorkflowError> {
    let target = q.target;
    let mut out = BTreeMap::new();
    let mut missing: Vec<&PlannedComponent> = Vec::new();
    let mut to_build = Vec::new();
    for c in q
        .components
        .iter()
        .filter(|c| c.run && c.kind == ComponentType::Nixpack)
    {
        let recorded = |t: &str| -> Result<Option<Artifact>, WorkflowError> {
            Ok(records
                .deployed_record(t, &c.name, &c.new)?
                .filter(|r| r.record.image_digest.is_some())
                .map(|r| Artifact {
                    image: r.record.image,
                    digest: r.record.image_digest,
                    from: if t == target {
                        from::TARGET.to_owned()
                    } else {
                        format!("{}{t}", from::SOURCE)
                    },
                    ..Artifact::default()
                }))
        };
        let built = || -> Result<Option<Artifact>, WorkflowError> {
            Ok(records.build(&c.name, &c.new)?.map(|b| Artifact {
                image: b.image,
                digest: b.digest,
                from: from::BUILD.to_owned(),
                ..Artifact::default()
            }))
        };
        // A promotion deploys what its source ran; an entry target the commit's newest
        // build (a rebuild with --force is deployed there first); a promoted target
        // rolled back or re-run what it ran before.
        let found = match (q.source, q.entry) {
            (Some(s), _) => recorded(s)?,
            (None, true) => built()?,
            (None, false) => recorded(target)?,
        };
        let found = match found {
            Some(a) => Some(a),
            None if q.entry => recorded(target)?,
            None => built()?,
        };
        match found {
            Some(a) => {
                out.insert(c.name.clone(), a);
            }
            None if q.entry => {
                to_build.push(format!("{} ({})", c.name, short(&c.new)));
                out.insert(
                    c.name.clone(),
                    Artifact {
                        image: None,
                        digest: None,
                        from: from::TO_BUILD.to_owned(),
                        ..Artifact::default()
                    },
                );
            }
            None => missing.push(c),
        }
    }
    let decision =
        |result, message: String| Decision::new(ARTIFACT_GATE, "artifacts", result, message);
    if !missing.is_empty() {
        let mut shas: Vec<&str> = missing.iter().map(|c| c.new.as_str()).collect();
        shas.sort_unstable();
        shas.dedup();
        let names: Vec<String> = missing
            .iter()
            .map(|c| format!("{} ({})", c.name, short(&c.new)))
            .collect();
        let mut d = decision(
            Verdict::Deny,
            format!(
                "nothing built to deploy for {}: {target} takes artifacts, it does not build them",
                names.join(", ")
            ),
        );
        d.fix = Some(
            shas.iter()
                .map(|sha| format!("atmos deployment build {} --git-sha {sha}", q.deployment))
                .collect::<Vec<_>>()
                .join(", then "),
        );
        return Ok((out, Some(d)));
    }
    if !to_build.is_empty() {
        let d = decision(
            Verdict::Allow,
            format!(
                "{} not built yet: built once before deploying, and later targets deploy that image",
                to_build.join(", ")
            ),
        );
        return Ok((out, Some(d)));
    }
    if out.is_empty() {
        return Ok((out, None));
    }
    let mut whence: Vec<String> = out.values().map(|a| a.from.clone()).collect();
    whence.sort();
    whence.dedup();
    let d = decision(
        Verdict::Allow,
        format!(
            "deploys the recorded image{} ({}), no rebuild",
            crate::plural::s(out.len()),
            whence
                .iter()
                .map(|w| match w.strip_prefix(from::SOURCE) {
                    Some(t) => format!("as run in {t}"),
                    None if w == from::TARGET => format!("as run in {target} before"),
                    None => "as built for the commit".to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    Ok((out, Some(d)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::rollout::model::Change;
    use crate::workflow::rollout::records::Fake;

    const C1: &str = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";

    fn image(name: &str) -> PlannedComponent {
        PlannedComponent {
            source_record: None,
            name: name.into(),
            kind: ComponentType::Nixpack,
            depends_on: Vec::new(),
            current: None,
            new: C1.into(),
            change: Change::New,
            run: true,
        }
    }

    fn ask<'a>(
        target: &'a str,
        source: Option<&'a str>,
        entry: bool,
        components: &'a [PlannedComponent],
    ) -> Question<'a> {
        Question {
            deployment: "svc",
            target,
            source,
            entry,
            components,
        }
    }

    #[test]
    fn artifacts_are_built_once_and_followed_from_target_to_target() {
        let api = [image("api")];
        // An entry target deploys the commit's build, or builds it first.
        let built = Fake::default().built("api", C1, "sha256:b1");
        let (found, d) = verdict(&ask("dev", None, true, &api), &built).expect("fake");
        assert_eq!(found["api"].from, from::BUILD);
        assert_eq!(found["api"].digest.as_deref(), Some("sha256:b1"));
        assert_eq!(d.expect("decision").result, Verdict::Allow);
        let (found, d) = verdict(&ask("dev", None, true, &api), &Fake::default()).expect("fake");
        assert_eq!(found["api"].from, from::TO_BUILD);
        assert!(d.expect("decision").message.contains("not built yet"));

        // A promotion deploys what its source ran, even when a newer build exists.
        let ran = Fake::default()
            .ran_there("dev", "api", C1, Some("sha256:ran"))
            .built("api", C1, "sha256:rebuilt");
        let (found, _) = verdict(&ask("staging", Some("dev"), false, &api), &ran).expect("fake");
        assert_eq!(found["api"].digest.as_deref(), Some("sha256:ran"));
        assert_eq!(found["api"].from, "source:dev");

        // A promoted target never builds: nothing recorded and nothing built is refused.
        let (found, d) =
            verdict(&ask("prod", Some("staging"), false, &api), &Fake::default()).expect("fake");
        assert!(found.is_empty());
        let d = d.expect("decision");
        assert_eq!(d.result, Verdict::Deny);
        assert_eq!(
            d.fix.as_deref(),
            Some(format!("atmos deployment build svc --git-sha {C1}").as_str())
        );

        // A re-run of a promoted target deploys what it ran before.
        let before = Fake::default().ran_there("prod", "api", C1, Some("sha256:prod"));
        let (found, _) = verdict(&ask("prod", None, false, &api), &before).expect("fake");
        assert_eq!(found["api"].from, from::TARGET);

        // Components that are not images have no artifact.
        let mut script = image("job");
        script.kind = ComponentType::Script;
        let (found, d) =
            verdict(&ask("prod", None, false, &[script]), &Fake::default()).expect("fake");
        assert!(found.is_empty() && d.is_none());
    }
}
