//! Deploy only what the registry serves: before any executor runs (and before the intent is
//! recorded), each image the rollout deploys is resolved in its registry by the digest its
//! build recorded. An image the registry does not serve stops the rollout, naming the image,
//! the registry's answer and the fix; a registry that cannot be asked stops it too (fail
//! closed). An image with no registry digest (built with `--skip-push`), and every image of
//! an `--offline` rollout, is deployed unchecked — and the rollout says so.
//!
//! A target with its own registry (`targets.<t>.registry`) deploys copies: each image is
//! [`relocate`]d to `<registry>/<last segment of its repository>[:tag]` when planned, and
//! copied there by digest (manifest bytes unchanged, every blob checked) before anything
//! runs; the copy is checked by asking the destination for that digest. A copy that cannot
//! be made or checked stops the rollout.

use super::model::Artifact;
use super::model::RolloutPlan;
use crate::registry::copy::Copied;
use crate::registry::{Manifest, Reference, RegistryError};
use crate::workflow::WorkflowError;

/// Asks a registry for a manifest, and copies images (the real client, or a table in tests).
pub trait Resolver {
    /// What the registry serves for `r`.
    fn manifest(&self, r: &Reference) -> Result<Manifest, RegistryError>;

    /// Copy `from` (pinned) to `to`, checked.
    fn copy(&self, from: &Reference, to: &Reference) -> Result<Copied, RegistryError>;
}

impl Resolver for crate::registry::Client {
    fn manifest(&self, r: &Reference) -> Result<Manifest, RegistryError> {
        crate::registry::Client::manifest(self, r)
    }

    fn copy(&self, from: &Reference, to: &Reference) -> Result<Copied, RegistryError> {
        crate::registry::Client::copy(self, from, to)
    }
}

/// `artifact` as deployed by a target whose images come from `registry`
/// (`host[:port][/prefix]`): its image becomes `<registry>/<last segment of its
/// repository>[:tag]`, copied from where it is now. An image already there is unchanged.
pub fn relocate(artifact: &Artifact, registry: &str) -> Result<Artifact, WorkflowError> {
    let Some(image) = &artifact.image else {
        return Ok(artifact.clone());
    };
    let source = Reference::parse(image).map_err(WorkflowError::Registry)?;
    let registry = registry.trim_end_matches('/');
    let host = registry.split('/').next().unwrap_or_default();
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(WorkflowError::Registry(RegistryError::BadReference {
            reference: registry.to_owned(),
            why: format!(
                "`{host}` is not a registry host (a domain with a dot, host:port, or localhost): an image named so would be Docker Hub's"
            ),
        }));
    }
    let last = source
        .repository
        .rsplit('/')
        .next()
        .unwrap_or(&source.repository);
    let mut text = format!("{registry}/{last}");
    if let Some(tag) = &source.tag {
        text = format!("{text}:{tag}");
    }
    let dest = Reference::parse(&text).map_err(WorkflowError::Registry)?;
    if dest.name() == source.name() {
        return Ok(artifact.clone());
    }
    let mut shown = source.clone();
    shown.digest = None;
    Ok(Artifact {
        image: Some(dest.to_string()),
        copy_from: Some(match &artifact.digest {
            Some(d) => shown.pinned(d).to_string(),
            None => shown.to_string(),
        }),
        ..artifact.clone()
    })
}

/// Two components whose copies would land in one repository of the target's registry (their
/// images' last path segments are the same): `(repository, components)`.
pub fn collisions(
    artifacts: &std::collections::BTreeMap<String, Artifact>,
) -> Option<(String, Vec<String>)> {
    let mut by_dest: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    for (name, a) in artifacts {
        let (Some(image), Some(from)) = (&a.image, &a.copy_from) else {
            continue;
        };
        let (Ok(dest), Ok(source)) = (Reference::parse(image), Reference::parse(from)) else {
            continue;
        };
        by_dest
            .entry(dest.name())
            .or_default()
            .push((name.clone(), source.name()));
    }
    by_dest.into_iter().find_map(|(dest, list)| {
        let first = list[0].1.clone();
        list.iter()
            .any(|(_, source)| *source != first)
            .then(|| (dest, list.into_iter().map(|(c, _)| c).collect()))
    })
}

/// What copying put where (said on the rollout's progress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyDone {
    /// The component.
    pub component: String,
    /// From.
    pub from: String,
    /// To, pinned.
    pub to: String,
    /// What moved.
    pub copied: Copied,
}

/// Copy each image `plan` deploys from another registry (its artifact's `copy_from`) to the
/// target's, by digest. Offline, or with no digest to copy, nothing can be copied: refused.
pub fn copy(
    plan: &RolloutPlan,
    offline: bool,
    registry: &dyn Resolver,
) -> Result<Vec<CopyDone>, WorkflowError> {
    let mut out = Vec::new();
    for c in plan.components.iter().filter(|c| c.run) {
        let Some(artifact) = plan.artifacts.get(&c.name) else {
            continue;
        };
        let (Some(image), Some(from)) = (&artifact.image, &artifact.copy_from) else {
            continue;
        };
        let refuse = |why: String| WorkflowError::ImageNotCopied {
            component: c.name.clone(),
            from: from.clone(),
            to: image.clone(),
            why,
        };
        let Some(digest) = &artifact.digest else {
            return Err(refuse(
                "no registry digest was recorded for it (built with --skip-push, or the engine did not say), so no copy could be checked".into(),
            ));
        };
        if offline {
            return Err(refuse(
                "--offline: the registries cannot be asked, so nothing can be copied".into(),
            ));
        }
        let source = Reference::parse(from).map_err(WorkflowError::Registry)?;
        let dest = Reference::parse(image).map_err(WorkflowError::Registry)?;
        let copied = registry
            .copy(&source.pinned(digest), &dest)
            .map_err(|e| refuse(e.to_string()))?;
        out.push(CopyDone {
            component: c.name.clone(),
            from: from.clone(),
            to: dest.pinned(digest).to_string(),
            copied,
        });
    }
    Ok(out)
}

/// An image deployed without asking its registry, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    /// The component.
    pub component: String,
    /// The image.
    pub image: String,
    /// Why it was not checked.
    pub why: String,
}

/// Check every image `plan` deploys (components that run); the ones not checked, and why.
pub fn check(
    plan: &RolloutPlan,
    offline: bool,
    registry: &dyn Resolver,
) -> Result<Vec<Unchecked>, WorkflowError> {
    let mut unchecked = Vec::new();
    for c in plan.components.iter().filter(|c| c.run) {
        let Some(artifact) = plan.artifacts.get(&c.name) else {
            continue;
        };
        let Some(image) = &artifact.image else {
            continue;
        };
        let Some(digest) = &artifact.digest else {
            unchecked.push(Unchecked {
                component: c.name.clone(),
                image: image.clone(),
                why: "no registry digest was recorded for it (built with --skip-push, or the engine did not say): whatever the tag names now is deployed".into(),
            });
            continue;
        };
        if offline {
            unchecked.push(Unchecked {
                component: c.name.clone(),
                image: format!("{image}@{digest}"),
                why: "--offline: its registry was not asked whether it serves that digest".into(),
            });
            continue;
        }
        let reference = Reference::parse(image)
            .map_err(WorkflowError::Registry)?
            .pinned(digest);
        match registry
            .manifest(&reference)
            .map_err(WorkflowError::Registry)?
        {
            Manifest::Found { .. } => {}
            Manifest::Missing { detail } => {
                return Err(WorkflowError::ImageMissing {
                    component: c.name.clone(),
                    image: reference.to_string(),
                    answer: detail,
                });
            }
        }
    }
    Ok(unchecked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::rollout::model::{Change, PlannedComponent};

    struct Table(Vec<(String, Result<Manifest, RegistryError>)>);

    impl Resolver for Table {
        fn manifest(&self, r: &Reference) -> Result<Manifest, RegistryError> {
            self.0
                .iter()
                .find(|(k, _)| *k == r.to_string())
                .map(|(_, v)| v.clone())
                .unwrap_or(Ok(Manifest::Missing {
                    detail: "MANIFEST_UNKNOWN".into(),
                }))
        }

        fn copy(&self, from: &Reference, _to: &Reference) -> Result<Copied, RegistryError> {
            match self.manifest(from)? {
                Manifest::Found { .. } => Ok(Copied::default()),
                Manifest::Missing { detail } => Err(RegistryError::Refused {
                    registry: from.registry.clone(),
                    status: 404,
                    what: from.to_string(),
                    detail,
                }),
            }
        }
    }

    fn plan(images: &[(&str, Option<&str>, Option<&str>, bool)]) -> RolloutPlan {
        let mut plan = RolloutPlan::for_tests("svc", "dev");
        for (name, image, digest, run) in images {
            plan.components.push(PlannedComponent {
                name: (*name).to_owned(),
                kind: crate::config::model::ComponentType::Nixpack,
                depends_on: Vec::new(),
                current: None,
                new: "c".repeat(40),
                change: Change::New,
                run: *run,
                source_record: None,
            });
            plan.artifacts.insert(
                (*name).to_owned(),
                Artifact {
                    image: image.map(str::to_owned),
                    digest: digest.map(str::to_owned),
                    from: "build".into(),
                    ..Artifact::default()
                },
            );
        }
        plan
    }

    #[test]
    fn a_target_registry_is_a_registry_and_its_copies_never_share_a_repository() {
        let d = format!("sha256:{}", "a".repeat(64));
        let artifact = |image: &str| Artifact {
            image: Some(image.to_owned()),
            digest: Some(d.clone()),
            from: "build".into(),
            ..Artifact::default()
        };
        let moved = relocate(&artifact("ghcr.io/acme/shop/api:v1"), "ghcr.io/acme-prod")
            .expect("relocated");
        assert_eq!(moved.image.as_deref(), Some("ghcr.io/acme-prod/api:v1"));
        assert_eq!(
            moved.copy_from.as_deref(),
            Some(format!("ghcr.io/acme/shop/api:v1@{d}").as_str())
        );
        // Already there: nothing to copy.
        let there = relocate(&artifact("ghcr.io/acme-prod/api:v1"), "ghcr.io/acme-prod/")
            .expect("relocated");
        assert_eq!(there.copy_from, None);
        for ok in ["localhost/prod", "localhost:5000", "reg:5000/prod", "a.b"] {
            assert!(
                relocate(&artifact("ghcr.io/acme/api:v1"), ok).is_ok(),
                "{ok}"
            );
        }
        // A single word would be a Docker Hub account.
        match relocate(&artifact("ghcr.io/acme/api:v1"), "myregistry/prod") {
            Err(WorkflowError::Registry(RegistryError::BadReference { why, .. })) => {
                assert!(why.contains("would be Docker Hub's"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // Two images ending in the same name would land in one repository.
        let mut all = std::collections::BTreeMap::new();
        all.insert(
            "api".to_owned(),
            relocate(&artifact("reg.example.com/shop/api:v1"), "prod.example.com").expect("ok"),
        );
        assert_eq!(collisions(&all), None);
        all.insert(
            "billing".to_owned(),
            relocate(
                &artifact("reg.example.com/billing/api:v1"),
                "prod.example.com",
            )
            .expect("ok"),
        );
        assert_eq!(
            collisions(&all),
            Some((
                "prod.example.com/api".to_owned(),
                vec!["api".to_owned(), "billing".to_owned()]
            ))
        );
    }

    #[test]
    fn only_what_the_registry_serves_is_deployed() {
        let d = format!("sha256:{}", "a".repeat(64));
        let gone = format!("sha256:{}", "b".repeat(64));
        let served = format!("reg.example.com/app:v1@{d}");
        let table = Table(vec![(
            served.clone(),
            Ok(Manifest::Found {
                digest: d.clone(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            }),
        )]);
        // Served: nothing to say.
        let p = plan(&[("api", Some("reg.example.com/app:v1"), Some(&d), true)]);
        assert_eq!(check(&p, false, &table).expect("served"), []);
        // Not served: the rollout stops, naming the image and the registry's answer.
        let p = plan(&[("api", Some("reg.example.com/app:v1"), Some(&gone), true)]);
        match check(&p, false, &table) {
            Err(WorkflowError::ImageMissing {
                component,
                image,
                answer,
            }) => {
                assert_eq!(component, "api");
                assert_eq!(image, format!("reg.example.com/app:v1@{gone}"));
                assert_eq!(answer, "MANIFEST_UNKNOWN");
            }
            other => panic!("{other:?}"),
        }
        // A registry that cannot be asked stops it too.
        let down = Table(vec![(
            served.clone(),
            Err(RegistryError::Unreachable {
                registry: "reg.example.com".into(),
                detail: "connection refused".into(),
            }),
        )]);
        let p = plan(&[("api", Some("reg.example.com/app:v1"), Some(&d), true)]);
        assert!(matches!(
            check(&p, false, &down),
            Err(WorkflowError::Registry(RegistryError::Unreachable { .. }))
        ));
        // Offline, no digest, or not running: not asked — and the first two are said.
        let p = plan(&[
            ("api", Some("reg.example.com/app:v1"), Some(&gone), true),
            ("worker", Some("reg.example.com/w:v1"), None, true),
            ("idle", Some("reg.example.com/i:v1"), Some(&gone), false),
        ]);
        let said = check(&p, true, &table).expect("offline");
        assert_eq!(
            said.iter()
                .map(|u| u.component.as_str())
                .collect::<Vec<_>>(),
            ["api", "worker"]
        );
        let online = check(
            &plan(&[("worker", Some("reg.example.com/w:v1"), None, true)]),
            false,
            &table,
        )
        .expect("no digest");
        assert!(online[0].why.contains("--skip-push"));
    }
}
