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

/// The ChunkServer pods' identities (names and uids): it changes when one is replaced.
pub fn chunkserver_pods_token(pods: &[Arc<PodReading>]) -> String {
    // Borrowed, not cloned: clusters have thousands of ChunkServer pods.
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

/// The token to record when a rapid leader schedule is to be asked now.
pub fn rapid_schedule(input: &LeaderInput) -> Option<String> {
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
    (input.asked_for != Some(token.as_str())).then_some(token)
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
                Arc::make_mut(&mut p).uid = format!("uid-{i}");
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
        let token = rapid_schedule(&input(&pods, None, Some(&view))).unwrap();
        assert_eq!(
            rapid_schedule(&input(&pods, Some(&token), Some(&view))),
            None,
            "once"
        );

        // A roll step: one pod replaced. Not while it loads, nor on an old reading.
        let mut loading = chunkservers([true, false, true]);
        Arc::make_mut(&mut loading[1]).uid = "uid-1-new".into();
        assert_eq!(
            rapid_schedule(&input(&loading, Some(&token), Some(&view))),
            None
        );
        let mut rolled = chunkservers([true; 3]);
        Arc::make_mut(&mut rolled[1]).uid = "uid-1-new".into();
        let stale = healthy(false);
        assert_eq!(
            rapid_schedule(&input(&rolled, Some(&token), Some(&stale))),
            None
        );
        let again = rapid_schedule(&input(&rolled, Some(&token), Some(&view))).unwrap();
        assert_ne!(again, token);
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
