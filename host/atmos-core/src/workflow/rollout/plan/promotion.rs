//! The promotion verdict: may what a rollout deploys reach its target this way? A target
//! without sources is an entry point; a promotion must come from an allowed source; a
//! direct rollout to a promoted target is either a rollback (every changing component goes
//! back to a commit the target ran) or a promotion in disguise (the commit ran in an allowed
//! source). A promotion must also take only what its source really ran. Pure functions of
//! the rules and the [`Records`]; the refusal names the commands that follow the rules.

use crate::config::LoadedDeployment;
use crate::contracts::{Decision, Verdict};
use crate::git::short;
use crate::promotion::PromotionGraph;
use crate::workflow::error::WorkflowError;
use crate::workflow::rollout::model::{
    Action, Change, HISTORY_GATE, PROMOTION_GATE, PlannedComponent, PromotionDenial, Source,
    StepRequest,
};
use crate::workflow::rollout::records::Records;

/// What the promotion verdict is asked.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The rules (targets, their sources, the promotion graph).
    pub rules: &'a LoadedDeployment,
    /// The target rolled out to.
    pub target: &'a str,
    /// What the rollout deploys.
    pub source: &'a Source,
    /// The commit a direct rollout deploys (resolved); `None` for a promotion.
    pub commit: Option<&'a str>,
    /// The components whose commit changes.
    pub changing: &'a [&'a PlannedComponent],
    /// `--skip-promotion-check`.
    pub skip_promotion_check: bool,
    /// Who rolls out (named when the check is skipped).
    pub actor: &'a str,
}

/// The promotion verdict.
#[derive(Debug, Clone)]
pub struct PromotionVerdict {
    /// What kind of rollout this is.
    pub action: Action,
    /// The target the code comes from: the one asked for, or the source a direct rollout's
    /// commit ran in.
    pub source_target: Option<String>,
    /// The built-in promotion decision (allow, skipped or deny).
    pub decision: Decision,
    /// Set when the rules refuse: the path they require and the commands that follow it.
    pub denial: Option<PromotionDenial>,
}

/// The sources `target` takes code from (empty: an entry point).
pub fn sources_of(rules: &LoadedDeployment, target: &str) -> Vec<String> {
    rules
        .deployment
        .targets
        .get(target)
        .and_then(|t| t.promotion.as_ref())
        .map(|p| p.sources().into_iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Decide whether the rollout `q` follows the promotion rules.
pub fn verdict(q: &Question<'_>, records: &dyn Records) -> Result<PromotionVerdict, WorkflowError> {
    let target = q.target;
    let sources = sources_of(q.rules, target);
    let asked = q.source.promote_from();
    // Every changing component returns to a commit the target ran (and passed the gates
    // with) before: backwards (a rollback) or forwards after one (a roll-forward).
    let all_return = !q.changing.is_empty() && q.changing.iter().all(|c| c.change.returns());
    let all_rollback = all_return && q.changing.iter().all(|c| c.change == Change::Rollback);
    let mut allowed = match (asked, sources.is_empty()) {
        (Some(s), _) => sources.iter().any(|x| x == s),
        (None, true) => true,
        (None, false) => all_return || q.changing.is_empty(),
    };
    // A direct rollout of a commit that ran in an allowed source is that promotion.
    let mut ran_in_source = None;
    if !allowed && asked.is_none() {
        let names: Vec<&str> = q
            .changing
            .iter()
            .filter(|c| !c.change.returns())
            .map(|c| c.name.as_str())
            .collect();
        if let Some(sha) = q.commit {
            for s in &sources {
                if records.ran_all(s, &names, sha)? {
                    ran_in_source = Some(s.clone());
                    break;
                }
            }
        }
        allowed = ran_in_source.is_some();
    }
    let source_target = asked.map(str::to_owned).or_else(|| ran_in_source.clone());
    let action = if source_target.is_some() {
        Action::Promote
    } else if all_rollback {
        Action::Rollback
    } else if all_return {
        Action::RollForward
    } else {
        Action::Rollout
    };
    let decision =
        |result, message: String| Decision::new(PROMOTION_GATE, "promotion_path", result, message);
    let path = |from: &str| format!("{from} → {target}");
    let shown = || q.commit.map(short).unwrap_or("it");
    if allowed {
        let message = match (asked, &ran_in_source) {
            (Some(s), _) => format!("{} is an allowed promotion", path(s)),
            (None, Some(s)) => format!(
                "{} is an allowed promotion: {s} ran {} successfully",
                path(s),
                shown()
            ),
            (None, None) if sources.is_empty() => format!("{target} is an entry point"),
            (None, None) if q.changing.is_empty() => {
                format!("{target} already runs every selected commit")
            }
            (None, None) => format!(
                "{} of {target} to {}, which it ran successfully before",
                if all_rollback {
                    "rollback"
                } else {
                    "roll-forward"
                },
                q.commit.map(short).unwrap_or("a commit")
            ),
        };
        return Ok(PromotionVerdict {
            action,
            source_target,
            decision: decision(Verdict::Allow, message),
            denial: None,
        });
    }
    if q.skip_promotion_check {
        return Ok(PromotionVerdict {
            action,
            source_target,
            decision: decision(
                Verdict::Skipped,
                format!(
                    "promotion check skipped with --skip-promotion-check by {}",
                    q.actor
                ),
            ),
            denial: None,
        });
    }
    let names: Vec<&str> = q.changing.iter().map(|c| c.name.as_str()).collect();
    let targets: Vec<&str> = q
        .rules
        .deployment
        .targets
        .keys()
        .map(String::as_str)
        .collect();
    // The targets that already ran every changing component at the commit.
    let mut already = Vec::new();
    if let Some(sha) = q.commit {
        for t in &targets {
            if records.ran_all(t, &names, sha)? {
                already.push((*t).to_owned());
            }
        }
    }
    let message = match asked {
        Some(s) if sources.is_empty() => {
            format!("{target} is an entry point: it is not promoted from any target (asked: {s})")
        }
        Some(s) => format!(
            "{} is not allowed: {target} is promoted from {}",
            path(s),
            sources.join(" or ")
        ),
        None => {
            let sha = q.commit.unwrap_or_default();
            let not_where: Vec<&str> = targets
                .iter()
                .copied()
                .filter(|t| !already.iter().any(|a| a == t))
                .collect();
            format!(
                "{} never ran in {target} and did not run in {} (it takes code by promotion from there); {}",
                short(sha),
                sources.join(" or "),
                if already.is_empty() {
                    format!(
                        "it has run nowhere ({} have not run it)",
                        not_where.join(", ")
                    )
                } else {
                    format!(
                        "it ran in {}; not in {}",
                        already.join(", "),
                        not_where.join(", ")
                    )
                }
            )
        }
    };
    let denial = denial(
        &PromotionGraph::of(q.rules),
        &q.rules.deployment.name,
        target,
        asked,
        q.commit.filter(|_| q.source.git_sha().is_some()),
        &already,
        &sources,
    );
    Ok(PromotionVerdict {
        action,
        source_target,
        decision: decision(Verdict::Deny, message),
        denial: Some(denial),
    })
}

/// What a promotion takes must have run in its source: a state ref moved by hand, with no
/// record behind it, is not a rollout there. The decision when something did not (`None`
/// when everything did), and the source's record of each component that did (its tag
/// object, which the promotion's record names).
pub fn ran_in_source(
    deployment: &str,
    source: &str,
    changing: &[&PlannedComponent],
    records: &dyn Records,
) -> Result<(Option<Decision>, std::collections::BTreeMap<String, String>), WorkflowError> {
    let mut unproven = Vec::new();
    let mut found = std::collections::BTreeMap::new();
    for c in changing {
        match records.deployed_record(source, &c.name, &c.new)? {
            Some(d) => {
                found.insert(c.name.clone(), d.oid);
            }
            None => unproven.push(format!("{} ({})", c.name, short(&c.new))),
        }
    }
    if unproven.is_empty() {
        return Ok((None, found));
    }
    let mut d = Decision::new(
        HISTORY_GATE,
        "ran_in_source",
        Verdict::Deny,
        format!(
            "{source} has no success record of what it is said to run: {} (a state ref moved by hand, or a record that does not count)",
            unproven.join(", ")
        ),
    );
    d.fix = Some(format!(
        "roll out to {source} first (atmos deployment rollout {deployment} --target {source}), or check its records with `atmos deployment verify`"
    ));
    Ok((Some(d), found))
}

/// The commands that follow the promotion path to `target`, from the first target that does
/// not have what is asked for. With `sha`, each step rolls that commit out by name.
fn denial(
    graph: &PromotionGraph,
    deployment: &str,
    target: &str,
    from: Option<&str>,
    sha: Option<&str>,
    already: &[String],
    sources: &[String],
) -> PromotionDenial {
    // Through the asked source when it is upstream, else from the first entry point.
    let required_path = from
        .and_then(|f| {
            let route = graph.route(f, target)?;
            let mut path = graph.path_to(f).unwrap_or_else(|| vec![f.to_owned()]);
            path.extend(route.into_iter().skip(1));
            Some(path)
        })
        .or_else(|| graph.path_to(target))
        .unwrap_or_else(|| vec![target.to_owned()]);
    let start = from
        .and_then(|f| required_path.iter().position(|t| t == f))
        .unwrap_or(0);
    let mut step_requests = Vec::new();
    match sha {
        Some(sha) => {
            for t in required_path[start..]
                .iter()
                .filter(|t| !already.contains(t))
            {
                step_requests.push(StepRequest {
                    target: t.clone(),
                    source: Source::Commit(sha.to_owned()),
                });
            }
        }
        None => {
            if from.is_none_or(|f| !required_path.iter().any(|t| t == f)) {
                step_requests.push(StepRequest {
                    target: required_path[0].clone(),
                    source: Source::Head,
                });
            }
            for pair in required_path[start..].windows(2) {
                step_requests.push(StepRequest {
                    target: pair[1].clone(),
                    source: Source::Promote(pair[0].clone()),
                });
            }
        }
    }
    let steps = step_requests
        .iter()
        .map(|s| command(deployment, &s.target, &s.source))
        .collect();
    let mut skip_command = command(
        deployment,
        target,
        &match (from, sha) {
            (Some(f), _) => Source::Promote(f.to_owned()),
            (None, Some(s)) => Source::Commit(s.to_owned()),
            (None, None) => Source::Head,
        },
    );
    skip_command.push_str(" --skip-promotion-check");
    PromotionDenial {
        deployment: deployment.to_owned(),
        target: target.to_owned(),
        from: from.map(str::to_owned),
        allowed_from: sources.to_vec(),
        required_path,
        steps,
        skip_command,
        step_requests,
    }
}

/// `atmos deployment rollout <d> --target <t>` with the flags of `source`.
pub fn command(deployment: &str, target: &str, source: &Source) -> String {
    let mut cmd = format!("atmos deployment rollout {deployment} --target {target}");
    match source {
        Source::Head => {}
        Source::Commit(sha) => cmd.push_str(&format!(" --git-sha {}", short(sha))),
        Source::Promote(from) => cmd.push_str(&format!(" --promote-from {from}")),
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ComponentType;
    use crate::workflow::rollout::records::Fake;

    const CHAIN: &str = "deployment:\n  name: svc\n  components:\n    script:\n      api: {settings: {script: {apply: x}}}\n      worker: {settings: {script: {apply: x}}}\n  targets:\n    dev: {}\n    staging:\n      promotion: {from: dev}\n    prod:\n      promotion: {from: staging}\n";

    fn rules() -> LoadedDeployment {
        crate::config::load::parse_deployment(std::path::Path::new("svc.yaml"), CHAIN.as_bytes())
            .expect("the table's deployment parses")
    }

    fn component(name: &str, current: Option<&str>, new: &str, change: Change) -> PlannedComponent {
        PlannedComponent {
            source_record: None,
            name: name.into(),
            kind: ComponentType::Script,
            depends_on: Vec::new(),
            current: current.map(str::to_owned),
            new: new.into(),
            change,
            run: change != Change::Unchanged,
        }
    }

    /// One row: the rollout asked for, what changes, the records, and what the verdict must
    /// be (action, source target, result, words of the message, the first suggested step).
    struct Row {
        name: &'static str,
        target: &'static str,
        source: Source,
        changing: Vec<PlannedComponent>,
        skip: bool,
        records: Fake,
        action: Action,
        source_target: Option<&'static str>,
        result: Verdict,
        says: &'static str,
        first_step: Option<&'static str>,
    }

    fn commit_of(source: &Source) -> Option<&'static str> {
        match source {
            Source::Promote(_) => None,
            _ => Some("c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2"),
        }
    }

    const C1: &str = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
    const C2: &str = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";

    #[test]
    fn the_promotion_verdict_follows_the_rules_in_every_case() {
        let rows = vec![
            Row {
                name: "an entry target takes any commit",
                target: "dev",
                source: Source::Head,
                changing: vec![component("api", None, C2, Change::New)],
                skip: false,
                records: Fake::default(),
                action: Action::Rollout,
                source_target: None,
                result: Verdict::Allow,
                says: "dev is an entry point",
                first_step: None,
            },
            Row {
                name: "a promotion along the path",
                target: "staging",
                source: Source::Promote("dev".into()),
                changing: vec![component("api", Some(C1), C2, Change::Changed)],
                skip: false,
                records: Fake::default().runs("dev", "api", C2),
                action: Action::Promote,
                source_target: Some("dev"),
                result: Verdict::Allow,
                says: "dev → staging is an allowed promotion",
                first_step: None,
            },
            Row {
                name: "a promotion that skips a target is refused with the path",
                target: "prod",
                source: Source::Promote("dev".into()),
                changing: vec![component("api", Some(C1), C2, Change::Changed)],
                skip: false,
                records: Fake::default().runs("dev", "api", C2),
                action: Action::Promote,
                source_target: Some("dev"),
                result: Verdict::Deny,
                says: "dev → prod is not allowed: prod is promoted from staging",
                first_step: Some(
                    "atmos deployment rollout svc --target staging --promote-from dev",
                ),
            },
            Row {
                name: "promoting into an entry point is refused",
                target: "dev",
                source: Source::Promote("staging".into()),
                changing: vec![component("api", Some(C1), C2, Change::Changed)],
                skip: false,
                records: Fake::default(),
                action: Action::Promote,
                source_target: Some("staging"),
                result: Verdict::Deny,
                says: "dev is an entry point: it is not promoted from any target (asked: staging)",
                first_step: Some("atmos deployment rollout svc --target dev"),
            },
            Row {
                name: "a direct rollout of a commit that ran in the source is that promotion",
                target: "staging",
                source: Source::Commit(C2.into()),
                changing: vec![component("api", Some(C1), C2, Change::Changed)],
                skip: false,
                records: Fake::default().ran_there("dev", "api", C2, None),
                action: Action::Promote,
                source_target: Some("dev"),
                result: Verdict::Allow,
                says: "dev ran c2c2c2c successfully",
                first_step: None,
            },
            Row {
                name: "a direct rollout of a commit that never ran upstream is refused",
                target: "prod",
                source: Source::Commit(C2.into()),
                changing: vec![component("api", Some(C1), C2, Change::Changed)],
                skip: false,
                records: Fake::default().ran_there("dev", "api", C2, None),
                action: Action::Rollout,
                source_target: None,
                result: Verdict::Deny,
                says: "c2c2c2c never ran in prod and did not run in staging (it takes code by promotion from there); it ran in dev; not in staging, prod",
                first_step: Some("atmos deployment rollout svc --target staging --git-sha c2c2c2c"),
            },
            Row {
                name: "a rollback to a commit the target ran",
                target: "prod",
                source: Source::Commit(C2.into()),
                changing: vec![component("api", Some(C1), C2, Change::Rollback)],
                skip: false,
                records: Fake::default(),
                action: Action::Rollback,
                source_target: None,
                result: Verdict::Allow,
                says: "rollback of prod to c2c2c2c, which it ran successfully before",
                first_step: None,
            },
            Row {
                name: "a move forward to a commit the target ran before is a roll-forward",
                target: "prod",
                source: Source::Commit(C2.into()),
                changing: vec![component("api", Some(C1), C2, Change::RollForward)],
                skip: false,
                records: Fake::default(),
                action: Action::RollForward,
                source_target: None,
                result: Verdict::Allow,
                says: "roll-forward of prod to c2c2c2c, which it ran successfully before",
                first_step: None,
            },
            Row {
                name: "a rollback to a commit the target never ran is a rollout that needs the path",
                target: "prod",
                source: Source::Commit(C2.into()),
                changing: vec![component("api", Some(C1), C2, Change::Changed)],
                skip: false,
                records: Fake::default(),
                action: Action::Rollout,
                source_target: None,
                result: Verdict::Deny,
                says: "it has run nowhere (dev, staging, prod have not run it)",
                first_step: Some("atmos deployment rollout svc --target dev --git-sha c2c2c2c"),
            },
            Row {
                name: "mixed components: one rolls back, one never ran upstream",
                target: "prod",
                source: Source::Commit(C2.into()),
                changing: vec![
                    component("api", Some(C1), C2, Change::Rollback),
                    component("worker", Some(C1), C2, Change::Changed),
                ],
                skip: false,
                records: Fake::default().ran_there("staging", "api", C2, None),
                action: Action::Rollout,
                source_target: None,
                result: Verdict::Deny,
                says: "never ran in prod and did not run in staging",
                first_step: Some("atmos deployment rollout svc --target dev --git-sha c2c2c2c"),
            },
            Row {
                name: "mixed components: the ones that do not roll back ran in the source",
                target: "prod",
                source: Source::Commit(C2.into()),
                changing: vec![
                    component("api", Some(C1), C2, Change::Rollback),
                    component("worker", Some(C1), C2, Change::Changed),
                ],
                skip: false,
                records: Fake::default().ran_there("staging", "worker", C2, None),
                action: Action::Promote,
                source_target: Some("staging"),
                result: Verdict::Allow,
                says: "staging → prod is an allowed promotion",
                first_step: None,
            },
            Row {
                name: "the check skipped where it would refuse",
                target: "prod",
                source: Source::Promote("dev".into()),
                changing: vec![component("api", Some(C1), C2, Change::Changed)],
                skip: true,
                records: Fake::default(),
                action: Action::Promote,
                source_target: Some("dev"),
                result: Verdict::Skipped,
                says: "skipped with --skip-promotion-check by ci@example.com",
                first_step: None,
            },
            Row {
                name: "skipping the check where it allows changes nothing",
                target: "staging",
                source: Source::Promote("dev".into()),
                changing: vec![component("api", Some(C1), C2, Change::Changed)],
                skip: true,
                records: Fake::default(),
                action: Action::Promote,
                source_target: Some("dev"),
                result: Verdict::Allow,
                says: "dev → staging is an allowed promotion",
                first_step: None,
            },
            Row {
                name: "nothing changes on a promoted target",
                target: "prod",
                source: Source::Head,
                changing: vec![],
                skip: false,
                records: Fake::default(),
                action: Action::Rollout,
                source_target: None,
                result: Verdict::Allow,
                says: "prod already runs every selected commit",
                first_step: None,
            },
        ];
        let rules = rules();
        for row in rows {
            let changing: Vec<&PlannedComponent> = row.changing.iter().collect();
            let q = Question {
                rules: &rules,
                target: row.target,
                source: &row.source,
                commit: commit_of(&row.source),
                changing: &changing,
                skip_promotion_check: row.skip,
                actor: "ci@example.com",
            };
            let v = verdict(&q, &row.records).expect("no error from a fake");
            assert_eq!(v.action, row.action, "{}: action", row.name);
            assert_eq!(
                v.source_target.as_deref(),
                row.source_target,
                "{}: source target",
                row.name
            );
            assert_eq!(
                v.decision.result, row.result,
                "{}: {}",
                row.name, v.decision.message
            );
            assert!(
                v.decision.message.contains(row.says),
                "{}: {:?} lacks {:?}",
                row.name,
                v.decision.message,
                row.says
            );
            assert_eq!(
                v.denial
                    .as_ref()
                    .and_then(|d| d.steps.first())
                    .map(String::as_str),
                row.first_step,
                "{}: first suggested step",
                row.name
            );
            assert_eq!(
                v.denial.is_some(),
                row.result == Verdict::Deny,
                "{}",
                row.name
            );
        }
    }

    #[test]
    fn a_promotion_takes_only_what_its_source_has_a_record_of() {
        let api = component("api", Some(C1), C2, Change::Changed);
        let worker = component("worker", Some(C1), C2, Change::Changed);
        let changing = vec![&api, &worker];
        let records = Fake::default().runs("staging", "api", C2);
        let (d, found) = ran_in_source("svc", "staging", &changing, &records).expect("fake");
        let d = d.expect("worker has no record");
        assert_eq!(found.keys().collect::<Vec<_>>(), ["api"]);
        assert_eq!(d.result, Verdict::Deny);
        assert!(d.message.contains("worker (c2c2c2c)"), "{}", d.message);
        assert!(!d.message.contains("api"), "{}", d.message);
        let records = records.runs("staging", "worker", C2);
        let (d, found) = ran_in_source("svc", "staging", &changing, &records).expect("fake");
        assert!(d.is_none());
        assert_eq!(found.len(), 2, "each component names its source record");
    }
}
