//! When to ask the MDS to spread the copysets' leaders at once (issue 30 item 2). Pure.
//!
//! The MDS's leader scheduler does not move a leader onto a ChunkServer for
//! `mds.scheduler.chunkserver.cooling.timeSec` (1800 s) after the ChunkServer started
//! (C:src/mds/schedule/leaderScheduler.cpp), so after a bring-up or a roll step the returned
//! ChunkServers serve no leader for half an hour and the others carry every write's leader
//! work. curveadm ends a deploy with `curve_ops_tool rapid-leader-schedule`
//! (internal/task/task/bs/balance_leader.go); the operator asks for one each time the set of
//! ChunkServer pods is new (a bring-up, a roll step, a scale-out) and all of them serve.

use std::sync::Arc;

use super::model::health::HealthView;
use super::model::pod::PodReading;
use super::observe::{is_ready, pods_of};
use crate::names::Component;

/// What a token of [`chunkserver_pods_token`] starts with: the tokens recorded before it (16
/// hex digits, [`first_token`]) hashed the pods' names anew.
const TOKEN_PREFIX: &str = "v2-";

/// The ChunkServer pods' identities (names and uids): it changes when one is replaced. The sum
/// of the identities each pod's reading hashed once, so a decision reads no name (clusters
/// have thousands of ChunkServer pods); the same for the same pods in any order.
pub fn chunkserver_pods_token(pods: &[Arc<PodReading>]) -> String {
    let sum = pods_of(pods, Component::ChunkServer)
        .map(|p| p.derived().identity)
        .fold(0, u64::wrapping_add);
    format!("{TOKEN_PREFIX}{sum:016x}")
}

/// The token operators before [`TOKEN_PREFIX`] recorded: FNV-1a of every ChunkServer pod's
/// name and uid in order. Made only to recognise such a record of the same pods, so that an
/// upgrade asks for no second schedule.
fn first_token(pods: &[Arc<PodReading>]) -> String {
    let mut seen: Vec<(&str, &str)> = pods_of(pods, Component::ChunkServer)
        .map(|p| (p.name.as_str(), p.uid.as_str()))
        .collect();
    seen.sort();
    let parts = (seen.iter()).flat_map(|(name, uid)| [name.as_bytes(), &[0], uid.as_bytes(), &[0]]);
    format!("{:016x}", crate::util::fnv64_parts(parts))
}

/// What a pass knows for the decision.
pub struct LeaderInput<'a> {
    pub pods: &'a [Arc<PodReading>],
    /// ChunkServer pods the spec asks for.
    pub expected: i32,
    pub health: Option<&'a HealthView>,
    /// The pods' token of the last schedule asked for.
    pub asked_for: Option<&'a str>,
    pub pool_created: bool,
    /// A ChunkServer is leaving: its copysets move first.
    pub retiring: bool,
}

/// The token to record, and whether a rapid leader schedule is to be asked with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub token: String,
    pub ask: bool,
}

/// The token to record when it changes: with a rapid leader schedule to ask now, or (a token
/// of the same pods recorded before [`TOKEN_PREFIX`]) without.
pub fn rapid_schedule(input: &LeaderInput) -> Option<Schedule> {
    if !input.pool_created || input.retiring || input.expected <= 0 {
        return None;
    }
    let chunkservers: Vec<&PodReading> = pods_of(input.pods, Component::ChunkServer).collect();
    let all_serving = chunkservers.len() as i32 == input.expected
        && chunkservers.iter().all(|p| is_ready(p))
        && input
            .health
            .is_some_and(|h| h.current && h.copysets_all_healthy());
    if !all_serving {
        return None;
    }
    let token = chunkserver_pods_token(input.pods);
    match input.asked_for {
        Some(asked) if asked == token => None,
        Some(asked) if !asked.starts_with(TOKEN_PREFIX) && asked == first_token(input.pods) => {
            Some(Schedule { token, ask: false })
        }
        _ => Some(Schedule { token, ask: true }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{CopysetHealthStatus, HealthStatus, HealthVerdict};
    use crate::reconcile::fixtures::pod;

    fn chunkservers(ready: [bool; 3]) -> Vec<Arc<PodReading>> {
        (0..3)
            .map(|i| {
                let mut p = pod(
                    &format!("demo-chunkserver-0-{i}"),
                    "chunkserver",
                    Some(&format!("10.0.0.{}", i + 1)),
                    Some("n"),
                    ready[i],
                );
                let reading = Arc::make_mut(&mut p);
                reading.uid = format!("uid-{i}");
                reading.derive();
                p
            })
            .collect()
    }

    fn healthy(current: bool) -> HealthView {
        HealthView {
            status: HealthStatus {
                verdict: HealthVerdict::Healthy,
                message: None,
                copysets: Some(CopysetHealthStatus {
                    total: 10,
                    healthy: 10,
                    unhealthy: 0,
                    problems: Vec::new(),
                }),
                chunkservers: None,
                logical_pools: Vec::new(),
                last_checked: None,
            },
            current,
            primary_unreachable: None,
            inventory: None,
        }
    }

    #[test]
    fn asked_once_per_set_of_serving_chunkservers() {
        let pods = chunkservers([true; 3]);
        let view = healthy(true);
        let input = |pods, asked_for, health| LeaderInput {
            pods,
            expected: 3,
            health,
            asked_for,
            pool_created: true,
            retiring: false,
        };
        let first = rapid_schedule(&input(&pods, None, Some(&view))).unwrap();
        assert!(first.ask);
        let token = first.token;
        assert_eq!(
            rapid_schedule(&input(&pods, Some(&token), Some(&view))),
            None,
            "once"
        );

        // A roll step: one pod replaced. Not while it loads, nor on an old reading.
        let replaced = |pods: &mut Vec<Arc<PodReading>>| {
            let reading = Arc::make_mut(&mut pods[1]);
            reading.uid = "uid-1-new".into();
            reading.derive();
        };
        let mut loading = chunkservers([true, false, true]);
        replaced(&mut loading);
        assert_eq!(
            rapid_schedule(&input(&loading, Some(&token), Some(&view))),
            None
        );
        let mut rolled = chunkservers([true; 3]);
        replaced(&mut rolled);
        let stale = healthy(false);
        assert_eq!(
            rapid_schedule(&input(&rolled, Some(&token), Some(&stale))),
            None
        );
        let again = rapid_schedule(&input(&rolled, Some(&token), Some(&view))).unwrap();
        assert!(again.ask);
        assert_ne!(again.token, token);
    }

    /// A token recorded by an operator before the `v2-` tokens: the same pods are recorded
    /// anew without a second schedule; other pods are asked for.
    #[test]
    fn a_first_token_of_the_same_pods_asks_for_no_second_schedule() {
        let pods = chunkservers([true; 3]);
        let view = healthy(true);
        let input = |pods, asked_for| LeaderInput {
            pods,
            expected: 3,
            health: Some(&view),
            asked_for,
            pool_created: true,
            retiring: false,
        };
        let recorded = first_token(&pods);
        assert_eq!(recorded.len(), 16, "{recorded}");
        let upgraded = rapid_schedule(&input(&pods, Some(&recorded))).unwrap();
        assert_eq!(
            upgraded,
            Schedule {
                token: chunkserver_pods_token(&pods),
                ask: false
            }
        );
        assert_eq!(rapid_schedule(&input(&pods, Some(&upgraded.token))), None);

        let mut rolled = chunkservers([true; 3]);
        let reading = Arc::make_mut(&mut rolled[2]);
        reading.uid = "uid-2-new".into();
        reading.derive();
        let asked = rapid_schedule(&input(&rolled, Some(&recorded))).unwrap();
        assert!(asked.ask, "the pods changed since the first token");
        assert!(asked.token.starts_with(TOKEN_PREFIX));
    }

    #[test]
    fn not_before_the_pool_nor_while_a_chunkserver_leaves() {
        let pods = chunkservers([true; 3]);
        let view = healthy(true);
        let base = LeaderInput {
            pods: &pods,
            expected: 3,
            health: Some(&view),
            asked_for: None,
            pool_created: false,
            retiring: false,
        };
        assert_eq!(rapid_schedule(&base), None);
        let retiring = LeaderInput {
            pool_created: true,
            retiring: true,
            ..base
        };
        assert_eq!(rapid_schedule(&retiring), None);
    }
}
