//! Rollouts that started and recorded no outcome: who started them, where, and whether
//! their lease still holds.

use atmos_core::contracts::Status;
use atmos_core::status::{LeaseView, TargetStatus};

use super::time::clock;

/// For each component whose newest record is a rollout that started and has no outcome: who
/// started it, where, and whether its lease still holds — a runner at work, or one that
/// died (the next rollout of the target records it as interrupted).
pub fn lines(t: &TargetStatus) -> Vec<String> {
    t.components
        .iter()
        .filter_map(|c| {
            let a = c.last_attempt.as_ref()?;
            if a.status != Status::Started {
                return None;
            }
            let mut line = format!(
                "{}/{}: outcome unknown: started {} by {}",
                t.target,
                c.component,
                clock(&a.timestamp),
                a.deployed_by
            );
            if let Some(r) = &a.runner {
                line.push_str(&format!(", pid {} on host {}", r.pid, r.host));
            }
            let ours = |l: &LeaseView| {
                a.runner
                    .as_ref()
                    .is_some_and(|r| r.pid == l.pid && r.host == l.host)
            };
            line.push_str(&match &t.lease {
                Some(l) if l.expired => format!(
                    ", lease expired at {}: the next rollout of {} records it as interrupted",
                    clock(&l.expires_at),
                    t.target
                ),
                Some(l) if ours(l) => format!(
                    ", lease held until {} (still running, or renewing until it stops)",
                    clock(&l.expires_at)
                ),
                Some(l) => format!(
                    ", the lock is now held by {} (pid {} on host {}), which records it as interrupted",
                    l.holder, l.pid, l.host
                ),
                None => format!(
                    ", no lease: the run ended without recording its outcome; the next rollout of {} records it as interrupted",
                    t.target
                ),
            });
            Some(line)
        })
        .collect()
}
