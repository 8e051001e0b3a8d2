//! Semantic checks of a deployment that the schema cannot express: names usable as git refs,
//! promotion sources that exist and do not loop, `depends_on` entries that exist and do not
//! loop. Every finding is located in the file.

use std::collections::HashMap;

use super::load::LoadedDeployment;
use super::model::ComponentType;
use super::source_map::pointer;
use crate::dag::{self, Edges};
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::names::{self, NameKind};

/// Every semantic problem of `loaded`, in file order.
pub fn check(loaded: &LoadedDeployment) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    check_names(loaded, &mut out);
    check_components(loaded, &mut out);
    check_promotions(loaded, &mut out);
    check_dependencies(loaded, &mut out);
    check_strategies(loaded, &mut out);
    out.sort_by_key(|d| d.span.map(|s| (s.line, s.column)));
    out
}

/// The `depends_on` graph: component id → the ids it depends on.
pub fn dependency_edges(loaded: &LoadedDeployment) -> Edges {
    loaded
        .deployment
        .components
        .iter()
        .map(|c| (c.id(), c.component.metadata.depends_on.clone()))
        .collect()
}

/// The promotion graph: target → its sources.
pub fn promotion_edges(loaded: &LoadedDeployment) -> Edges {
    loaded
        .deployment
        .targets
        .iter()
        .map(|(name, t)| {
            let sources = t
                .promotion
                .as_ref()
                .map(|p| p.sources().into_iter().map(str::to_owned).collect())
                .unwrap_or_default();
            (name.clone(), sources)
        })
        .collect()
}

fn check_names(loaded: &LoadedDeployment, out: &mut Vec<Diagnostic>) {
    let d = &loaded.deployment;
    let stem = loaded
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if d.name != stem {
        out.push(
            loaded
                .error_at(
                    Code::NameMismatch,
                    "/deployment/name",
                    false,
                    format!(
                        "deployment name `{}` does not match the file name `{stem}`",
                        d.name
                    ),
                )
                .hint(format!(
                    "set `name: {stem}`, or rename the file to `{}.yaml`",
                    d.name
                )),
        );
    }
    let mut bad = |kind: NameKind, name: &str, ptr: String, key: bool| {
        if let Err(e) = names::check(name, kind) {
            out.push(
                loaded
                    .error_at(
                        Code::InvalidName,
                        &ptr,
                        key,
                        format!("{kind} name `{name}` {e}"),
                    )
                    .hint(
                        "names become git ref path segments: use letters, digits, `-`, `_` and `.` \
                         (and `/` inside component names), not starting with `.` or `-`",
                    ),
            );
        }
    };
    bad(
        NameKind::Deployment,
        &d.name,
        "/deployment/name".into(),
        false,
    );
    for name in d.targets.keys() {
        bad(
            NameKind::Target,
            name,
            pointer(&["deployment", "targets", name]),
            true,
        );
    }
    for c in d.components.iter() {
        bad(
            NameKind::Component,
            c.name,
            pointer(&["deployment", "components", c.kind.as_str(), c.name]),
            true,
        );
    }
}

fn component_ptr(kind: ComponentType, name: &str) -> String {
    pointer(&["deployment", "components", kind.as_str(), name])
}

fn check_components(loaded: &LoadedDeployment, out: &mut Vec<Diagnostic>) {
    let comps = &loaded.deployment.components;
    let mut seen: HashMap<&str, ComponentType> = HashMap::new();
    for c in comps.iter() {
        if let Some(first) = seen.get(c.name) {
            out.push(
                loaded
                    .error_at(
                        Code::ComponentClash,
                        &component_ptr(c.kind, c.name),
                        true,
                        format!(
                            "component name `{}` is used by both `{first}/{0}` and `{}/{0}`",
                            c.name, c.kind
                        ),
                    )
                    .hint("component names are unique within a deployment (they name its git refs): rename one"),
            );
        } else {
            seen.insert(c.name, c.kind);
        }
    }
    // `a` and `a/b` cannot both be refs: git stores `refs/.../a` as a file.
    for c in comps.iter() {
        for other in comps.iter() {
            if other.name.len() > c.name.len()
                && other.name.starts_with(c.name)
                && other.name.as_bytes()[c.name.len()] == b'/'
            {
                out.push(
                    loaded
                        .error_at(
                            Code::ComponentClash,
                            &component_ptr(other.kind, other.name),
                            true,
                            format!(
                                "component `{}` is nested under component `{}`; git cannot store both refs",
                                other.name, c.name
                            ),
                        )
                        .hint(format!("rename `{}` or `{}`", c.name, other.name)),
                );
            }
        }
    }
}

fn check_promotions(loaded: &LoadedDeployment, out: &mut Vec<Diagnostic>) {
    let d = &loaded.deployment;
    let target_names: Vec<&str> = d.targets.keys().map(String::as_str).collect();
    let unknown_target = |name: &str| {
        let mut hint = match did_you_mean(name, target_names.iter().copied()) {
            Some(close) => format!("did you mean `{close}`? "),
            None => String::new(),
        };
        hint.push_str(&format!("defined targets: {}", target_names.join(", ")));
        hint
    };
    if let Some(default) = &d.context.default_target
        && !d.targets.contains_key(default)
    {
        out.push(
            loaded
                .error_at(
                    Code::UnknownTarget,
                    "/deployment/context/default_target",
                    false,
                    format!("default target `{default}` is not defined"),
                )
                .hint(unknown_target(default)),
        );
    }
    for (name, target) in &d.targets {
        let Some(promotion) = &target.promotion else {
            continue;
        };
        let base = pointer(&["deployment", "targets", name, "promotion"]);
        if promotion.from.is_some() && promotion.allowed_from.is_some() {
            out.push(
                loaded
                    .error_at(
                        Code::ConflictingPromotion,
                        &format!("{base}/allowed_from"),
                        true,
                        format!("target `{name}` sets both `from` and `allowed_from`"),
                    )
                    .hint("keep `from: <target>` for one source, or list every source in `allowed_from`"),
            );
        }
        let located: Vec<(String, &str)> = promotion
            .from
            .iter()
            .map(|f| (format!("{base}/from"), f.as_str()))
            .chain(
                promotion
                    .allowed_from
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, f)| (format!("{base}/allowed_from/{i}"), f.as_str())),
            )
            .collect();
        for (ptr, source) in located {
            if source == name {
                out.push(
                    loaded
                        .error_at(
                            Code::SelfPromotion,
                            &ptr,
                            false,
                            format!("target `{name}` is promoted from itself"),
                        )
                        .hint("name the target that code comes from, or remove `promotion` to make this an entry point"),
                );
            } else if !d.targets.contains_key(source) {
                out.push(
                    loaded
                        .error_at(
                            Code::UnknownTarget,
                            &ptr,
                            false,
                            format!(
                                "target `{name}` is promoted from `{source}`, which is not defined"
                            ),
                        )
                        .hint(unknown_target(source)),
                );
            }
        }
    }
    if let Some(cycle) = dag::find_cycle(&promotion_edges(loaded)) {
        let first = &cycle[1];
        out.push(
            loaded
                .error_at(
                    Code::PromotionCycle,
                    &pointer(&["deployment", "targets", first, "promotion"]),
                    true,
                    format!("promotion cycle: {}", cycle.join(" → ")),
                )
                .hint("a promotion path must start at an entry point (a target without `promotion`): remove one of these sources"),
        );
    }
}

fn check_dependencies(loaded: &LoadedDeployment, out: &mut Vec<Diagnostic>) {
    let comps = &loaded.deployment.components;
    let ids: Vec<String> = comps.iter().map(|c| c.id()).collect();
    for c in comps.iter() {
        for (i, dep) in c.component.metadata.depends_on.iter().enumerate() {
            let ptr = format!("{}/metadata/depends_on/{i}", component_ptr(c.kind, c.name));
            if *dep == c.id() {
                out.push(
                    loaded
                        .error_at(
                            Code::DependencyCycle,
                            &ptr,
                            false,
                            format!("component `{}` depends on itself", c.id()),
                        )
                        .hint("remove this entry"),
                );
            } else if comps.by_id(dep).is_none() {
                let mut hint = match did_you_mean(dep, ids.iter().map(String::as_str)) {
                    Some(close) => format!("did you mean `{close}`? "),
                    None => String::new(),
                };
                hint.push_str(&format!(
                    "entries are `type/name`; components here: {}",
                    ids.join(", ")
                ));
                out.push(
                    loaded
                        .error_at(
                            Code::UnknownDependency,
                            &ptr,
                            false,
                            format!(
                                "component `{}` depends on `{dep}`, which is not defined",
                                c.id()
                            ),
                        )
                        .hint(hint),
                );
            }
        }
    }
    if let Some(cycle) = dag::find_cycle(&dependency_edges(loaded)) {
        // Report at the depends_on list of the component that closes the loop.
        let last = &cycle[cycle.len() - 2];
        let at = comps
            .by_id(last)
            .map(|c| format!("{}/metadata/depends_on", component_ptr(c.kind, c.name)))
            .unwrap_or_default();
        out.push(
            loaded
                .error_at(
                    Code::DependencyCycle,
                    &at,
                    true,
                    format!("dependency cycle: {}", cycle.join(" → ")),
                )
                .hint("components are rolled out in dependency order: remove one of these `depends_on` entries"),
        );
    }
}

/// Every problem of the targets' strategies in `loaded`.
pub(super) fn check_strategies(loaded: &LoadedDeployment, out: &mut Vec<Diagnostic>) {
    let d = &loaded.deployment;
    for (name, target) in &d.targets {
        let Some(settings) = target.strategy.as_ref().and_then(|s| s.canary.as_ref()) else {
            continue;
        };
        let base = pointer(&["deployment", "targets", name, "strategy", "canary"]);
        if let Err(p) = settings.parse() {
            out.push(
                loaded
                    .error_at(
                        Code::Strategy,
                        &format!("{base}{}", p.at),
                        false,
                        format!("targets.{name}.strategy.canary: {}", p.message),
                    )
                    .hint(p.hint),
            );
        }
        for (i, s) in settings.components.iter().enumerate() {
            if d.components
                .iter()
                .any(|c| super::strategy::selector_matches(s, c.kind.as_str(), c.name))
            {
                continue;
            }
            let names: Vec<String> = d.components.iter().map(|c| c.id()).collect();
            out.push(
                loaded
                    .error_at(
                        Code::Strategy,
                        &format!("{base}/components/{i}"),
                        false,
                        format!(
                            "targets.{name}.strategy.canary.components: `{s}` names no component"
                        ),
                    )
                    .hint(format!(
                        "name a component, a type or type/name: {}",
                        names.join(", ")
                    )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load::parse_deployment;

    fn codes(text: &str) -> Vec<(Code, String)> {
        let loaded = parse_deployment(Path::new("deployments/svc.yaml"), text.as_bytes())
            .expect("schema-valid");
        check(&loaded)
            .into_iter()
            .map(|d| (d.code, d.message))
            .collect()
    }

    const HEAD: &str = "deployment:\n  name: svc\n";

    #[test]
    fn a_clean_file_has_no_findings() {
        let text = format!(
            "{HEAD}  components:\n    terraform:\n      db: {{}}\n    script:\n      api:\n        metadata: {{depends_on: [terraform/db]}}\n        settings: {{script: {{apply: 'true'}}}}\n  targets:\n    dev: {{}}\n    prod: {{promotion: {{from: dev}}}}\n"
        );
        assert_eq!(codes(&text), vec![]);
    }

    #[test]
    fn promotion_cycle_is_named() {
        let text = format!(
            "{HEAD}  targets:\n    base: {{}}\n    dev: {{promotion: {{from: qa}}}}\n    qa: {{promotion: {{from: dev}}}}\n"
        );
        assert_eq!(
            codes(&text),
            vec![(
                Code::PromotionCycle,
                "promotion cycle: dev → qa → dev".into()
            )]
        );
    }

    #[test]
    fn dependency_cycle_and_unknown_dependency() {
        let text = format!(
            "{HEAD}  components:\n    terraform:\n      a: {{metadata: {{depends_on: [terraform/b]}}}}\n      b: {{metadata: {{depends_on: [terraform/a, helmfile/x]}}}}\n  targets:\n    dev: {{}}\n"
        );
        let got = codes(&text);
        assert!(
            got.contains(&(
                Code::UnknownDependency,
                "component `terraform/b` depends on `helmfile/x`, which is not defined".into()
            )),
            "{got:?}"
        );
        assert!(
            got.iter().any(|(c, m)| *c == Code::DependencyCycle
                && m.contains("terraform/a → terraform/b → terraform/a")),
            "{got:?}"
        );
    }

    #[test]
    fn nested_and_duplicate_component_names_clash() {
        let text = format!(
            "{HEAD}  components:\n    terraform:\n      ecs: {{}}\n      ecs/api: {{}}\n    helmfile:\n      ecs: {{}}\n  targets:\n    dev: {{}}\n"
        );
        let got = codes(&text);
        assert_eq!(
            got.iter()
                .filter(|(c, _)| *c == Code::ComponentClash)
                .count(),
            3,
            "{got:?}"
        );
    }
}
