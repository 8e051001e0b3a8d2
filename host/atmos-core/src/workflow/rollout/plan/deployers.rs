//! The deployers verdict: only members of a target's deployer groups roll out to it, and
//! only with a proven identity where the target requires one.

use crate::config::model::DeployerRules;
use crate::config::settings::Approvers;
use crate::contracts::{Decision, Verdict};
use crate::identity::{Actor, Proof};
use crate::workflow::rollout::model::DEPLOYER_GATE;

/// Whether `actor` (with `proof`, when the identity was checked) may deploy to `target`
/// under `rule`, with the groups of `approvers`.
pub fn verdict(
    target: &str,
    rule: &DeployerRules,
    approvers: &Approvers,
    actor: &Actor,
    proof: Option<&Proof>,
) -> Decision {
    let members: Vec<&String> = rule
        .from_groups
        .iter()
        .flat_map(|g| approvers.groups.get(g).into_iter().flatten())
        .collect();
    let who = &actor.id;
    let proof = proof.cloned().unwrap_or(Proof {
        id: who.clone(),
        source: actor.source.clone(),
        verified: false,
        reason: Some("the identity was not checked".into()),
    });
    let decision =
        |result, message: String| Decision::new(DEPLOYER_GATE, "deployers", result, message);
    if !rule.from_groups.is_empty() && !crate::identity::listed(&members, who) {
        let mut d = decision(
            Verdict::Deny,
            format!(
                "{who} (from {}) may not deploy to {target}: deployers are {}",
                actor.source,
                rule.from_groups.join(", ")
            ),
        );
        d.fix = Some(format!(
            "ask one of {} to roll out",
            members
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return d;
    }
    if rule.require_signed && !proof.verified {
        let mut d = decision(
            Verdict::Deny,
            format!(
                "{target} requires a proven identity, and {who} is not proven: {}",
                proof.reason.clone().unwrap_or_default()
            ),
        );
        d.fix = Some(format!(
            "sign with a key allowed for {who}: git config user.signingkey <key> with gpg.format=ssh, or --signing-key <key>"
        ));
        return d;
    }
    decision(
        Verdict::Allow,
        format!(
            "{who} may deploy to {target}{}{}",
            if rule.from_groups.is_empty() {
                String::new()
            } else {
                format!(" ({})", rule.from_groups.join(", "))
            },
            if proof.verified {
                ", identity proven by signature"
            } else {
                ""
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(id: &str) -> Actor {
        Actor {
            id: id.into(),
            source: "ATMOS_ACTOR".into(),
        }
    }

    fn proven(id: &str) -> Proof {
        Proof {
            id: id.into(),
            source: "signature".into(),
            verified: true,
            reason: None,
        }
    }

    #[test]
    fn deployers_are_members_and_proven_where_required() {
        let mut approvers = Approvers::default();
        approvers
            .groups
            .insert("sre".into(), vec!["alice@example.com".into()]);
        let rule = DeployerRules {
            from_groups: vec!["sre".into()],
            require_signed: true,
        };
        let cases = [
            ("mallory@example.com", None, Verdict::Deny, "may not deploy"),
            ("alice@example.com", None, Verdict::Deny, "is not proven"),
            (
                "alice@example.com",
                Some(proven("alice@example.com")),
                Verdict::Allow,
                "identity proven by signature",
            ),
        ];
        for (who, proof, result, says) in cases {
            let d = verdict("prod", &rule, &approvers, &actor(who), proof.as_ref());
            assert_eq!(d.result, result, "{who}: {}", d.message);
            assert!(d.message.contains(says), "{who}: {}", d.message);
        }
        let open = DeployerRules::default();
        let d = verdict("dev", &open, &approvers, &actor("anyone"), None);
        assert_eq!(d.result, Verdict::Allow);
    }
}
