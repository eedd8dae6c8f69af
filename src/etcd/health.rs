//! From what etcd answered to an observation. Pure: no I/O.

use super::election::{Candidate, ElectionState};
use super::{EtcdAlarm, Member, MemberHealth, PrimaryObservation};

/// One member as the member list names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: u64,
    /// Empty for a member added but not yet started.
    pub name: String,
    pub peer_urls: Vec<String>,
    /// Added as a learner and not promoted yet: it votes in nothing and serves no client.
    pub is_learner: bool,
}

/// What one endpoint said about its own member (etcd's Status call).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub member_id: u64,
    /// The raft leader this member follows; 0 when it knows none.
    pub leader_id: u64,
    pub raft_term: u64,
    /// Alarms and other errors the member reports (e.g. "NOSPACE").
    pub errors: Vec<String>,
    /// The database file's size, and the part of it in use (the rest: free pages that only a
    /// defragmentation gives back to the file system).
    pub db_size: u64,
    pub db_size_in_use: u64,
}

impl MemberStatus {
    /// A member is healthy when it answers, follows a raft leader and reports no error.
    pub fn is_healthy(&self) -> bool {
        self.leader_id != 0 && self.errors.is_empty()
    }
}

/// An alarm as etcd's alarm list names it (`AlarmType`: 1 NOSPACE, 2 CORRUPT), raised on
/// member `member_id`.
pub fn alarm_of(alarm_type: i32) -> Option<EtcdAlarm> {
    match alarm_type {
        1 => Some(EtcdAlarm::NoSpace),
        2 => Some(EtcdAlarm::Corrupt),
        _ => None,
    }
}

/// Health of the members: the leader's name comes from the answer with the newest raft term
/// (a member cut off from the others may still believe in an old leader).
/// `alarms`: etcd's alarm list, (member id, alarm); a member that does not answer still shows
/// the alarms raised on it.
pub fn member_health(
    members: &[MemberInfo],
    statuses: &[MemberStatus],
    alarms: &[(u64, EtcdAlarm)],
) -> MemberHealth {
    let healthy = members
        .iter()
        .filter(|m| {
            statuses
                .iter()
                .any(|s| s.member_id == m.id && s.is_healthy())
        })
        .count();
    let leader_id = statuses
        .iter()
        .filter(|s| s.leader_id != 0)
        .max_by_key(|s| s.raft_term)
        .map(|s| s.leader_id);
    let leader = leader_id.map(|id| match members.iter().find(|m| m.id == id) {
        Some(m) if !m.name.is_empty() => m.name.clone(),
        // Unnamed or unlisted: the id is still something a person can look up.
        _ => format!("{id:x}"),
    });
    let listed = members
        .iter()
        .map(|m| {
            let own = statuses.iter().find(|s| s.member_id == m.id);
            let mut raised: Vec<EtcdAlarm> = (alarms.iter())
                .filter(|(id, _)| *id == m.id)
                .map(|(_, alarm)| *alarm)
                .collect();
            raised.sort();
            raised.dedup();
            Member {
                id: m.id,
                name: m.name.clone(),
                peer_urls: m.peer_urls.clone(),
                is_learner: m.is_learner,
                healthy: own.is_some_and(MemberStatus::is_healthy),
                is_leader: leader_id == Some(m.id),
                serving: own.is_some_and(|s| s.leader_id != 0),
                db_size: own.map_or(0, |s| s.db_size),
                db_size_in_use: own.map_or(0, |s| s.db_size_in_use),
                alarms: raised,
            }
        })
        .collect();
    MemberHealth {
        leader,
        healthy: healthy as u32,
        total: members.len() as u32,
        members: listed,
    }
}

/// The primary from the election read, or why there is none to be had. `probes` has one entry
/// per endpoint: its Status answer, or the error that came instead. A failed read is
/// `QuorumLost` when some member answered (it is up but cannot serve a linearizable read),
/// `Unreachable` when none did.
pub fn classify(
    endpoints: &[String],
    election: Result<Vec<Candidate>, String>,
    probes: &[(String, Result<MemberStatus, String>)],
) -> PrimaryObservation {
    let read_error = match election {
        Ok(candidates) => {
            return match ElectionState::from_candidates(candidates).primary() {
                Some(address) => PrimaryObservation::Elected {
                    address: address.to_string(),
                },
                None => PrimaryObservation::NoCandidate,
            };
        }
        Err(e) => e,
    };
    if endpoints.is_empty() {
        return PrimaryObservation::NoEndpoint;
    }
    let endpoints = endpoints.to_vec();
    let answered: Vec<&MemberStatus> = probes.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    if answered.is_empty() {
        let why: Vec<String> = probes
            .iter()
            .filter_map(|(ep, r)| r.as_ref().err().map(|e| format!("{ep}: {e}")))
            .collect();
        let error = if why.is_empty() {
            read_error
        } else {
            why.join("; ")
        };
        return PrimaryObservation::Unreachable {
            endpoints,
            error: format!("no etcd endpoint answered ({error})"),
        };
    }
    let has_leader = answered.iter().any(|s| s.leader_id != 0);
    let error = if has_leader {
        format!(
            "{} of {} endpoints answer but the read of the election failed: {read_error}",
            answered.len(),
            probes.len()
        )
    } else {
        format!(
            "{} of {} endpoints answer but no member has a raft leader (read of the election: {read_error})",
            answered.len(),
            probes.len()
        )
    };
    PrimaryObservation::QuorumLost { endpoints, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<MemberInfo> {
        vec![
            member_info(0xa1, "demo-etcd-0"),
            member_info(0xb2, "demo-etcd-1"),
            member_info(0xc3, "demo-etcd-2"),
        ]
    }

    fn member_info(id: u64, name: &str) -> MemberInfo {
        MemberInfo {
            id,
            name: name.into(),
            peer_urls: vec![format!("http://{name}.demo-etcd.ns.svc:2380")],
            is_learner: false,
        }
    }

    fn status(member_id: u64, leader_id: u64, raft_term: u64) -> MemberStatus {
        MemberStatus {
            member_id,
            leader_id,
            raft_term,
            errors: vec![],
            db_size: 0,
            db_size_in_use: 0,
        }
    }

    fn eps() -> Vec<String> {
        vec![
            "10.0.0.1:2379".into(),
            "10.0.0.2:2379".into(),
            "10.0.0.3:2379".into(),
        ]
    }

    #[test]
    fn all_healthy() {
        let h = member_health(
            &members(),
            &[
                status(0xa1, 0xb2, 4),
                status(0xb2, 0xb2, 4),
                status(0xc3, 0xb2, 4),
            ],
            &[],
        );
        assert_eq!(
            (h.leader.clone(), h.healthy, h.total),
            (Some("demo-etcd-1".into()), 3, 3)
        );
    }

    #[test]
    fn a_silent_member_is_unhealthy() {
        let h = member_health(
            &members(),
            &[status(0xa1, 0xc3, 5), status(0xc3, 0xc3, 5)],
            &[],
        );
        assert_eq!(
            (h.leader.clone(), h.healthy, h.total),
            (Some("demo-etcd-2".into()), 2, 3)
        );
    }

    #[test]
    fn newest_term_names_the_leader() {
        // demo-etcd-0 was cut off and still follows the old leader of term 4.
        let h = member_health(
            &members(),
            &[
                status(0xa1, 0xa1, 4),
                status(0xb2, 0xc3, 6),
                status(0xc3, 0xc3, 6),
            ],
            &[],
        );
        assert_eq!(h.leader.as_deref(), Some("demo-etcd-2"));
    }

    #[test]
    fn no_leader_no_health() {
        let h = member_health(&members(), &[status(0xa1, 0, 7)], &[]);
        assert_eq!((h.leader.clone(), h.healthy, h.total), (None, 0, 3));
    }

    #[test]
    fn every_listed_member_is_reported_with_its_own_health_and_role() {
        let mut ms = members();
        ms[2].is_learner = true;
        ms[2].name.clear();
        let h = member_health(&ms, &[status(0xa1, 0xb2, 4), status(0xb2, 0xb2, 4)], &[]);
        let seen: Vec<(u64, bool, bool, bool)> = h
            .members
            .iter()
            .map(|m| (m.id, m.healthy, m.is_leader, m.is_learner))
            .collect();
        assert_eq!(
            seen,
            [
                (0xa1, true, false, false),
                (0xb2, true, true, false),
                (0xc3, false, false, true)
            ]
        );
        assert_eq!(
            h.members[2].peer_urls,
            ["http://demo-etcd-2.demo-etcd.ns.svc:2380"]
        );
    }

    #[test]
    fn alarms_make_a_member_unhealthy() {
        let mut s = status(0xa1, 0xa1, 3);
        s.errors.push("memberID:161 alarm:NOSPACE".into());
        let h = member_health(&members(), &[s, status(0xb2, 0xa1, 3)], &[]);
        assert_eq!(h.healthy, 1);
        assert_eq!(h.leader.as_deref(), Some("demo-etcd-0"));
    }

    #[test]
    fn sizes_come_from_each_members_status_and_alarms_from_the_list_even_for_a_silent_member() {
        let mut leader = status(0xa1, 0xa1, 3);
        (leader.db_size, leader.db_size_in_use) = (100 << 20, 30 << 20);
        // NOSPACE is cluster-wide: the answering members report it as an error too.
        leader.errors.push("memberID:161 alarm:NOSPACE".into());
        let alarms = [
            (0xa1, EtcdAlarm::NoSpace),
            (0xc3, EtcdAlarm::Corrupt),
            (0xa1, EtcdAlarm::NoSpace),
        ];
        let h = member_health(&members(), &[leader, status(0xb2, 0xa1, 3)], &alarms);
        let seen: Vec<_> = (h.members.iter())
            .map(|m| {
                (
                    m.id,
                    m.serving,
                    m.healthy,
                    m.db_size,
                    m.db_size_in_use,
                    m.alarms.clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    0xa1,
                    true,
                    false,
                    100 << 20,
                    30 << 20,
                    vec![EtcdAlarm::NoSpace]
                ),
                (0xb2, true, true, 0, 0, vec![]),
                (0xc3, false, false, 0, 0, vec![EtcdAlarm::Corrupt]),
            ]
        );
        assert_eq!(
            [1, 2, 0, 3].map(alarm_of),
            [
                Some(EtcdAlarm::NoSpace),
                Some(EtcdAlarm::Corrupt),
                None,
                None
            ]
        );
    }

    #[test]
    fn unnamed_or_unlisted_leader_is_shown_by_id() {
        let mut ms = members();
        ms[0].name.clear();
        assert_eq!(
            member_health(&ms, &[status(0xb2, 0xa1, 3)], &[])
                .leader
                .as_deref(),
            Some("a1")
        );
        assert_eq!(
            member_health(&ms, &[status(0xb2, 0xff, 3)], &[])
                .leader
                .as_deref(),
            Some("ff")
        );
    }

    #[test]
    fn statuses_of_unlisted_members_do_not_count() {
        let h = member_health(
            &members(),
            &[status(0xee, 0xa1, 3), status(0xa1, 0xa1, 3)],
            &[],
        );
        assert_eq!((h.healthy, h.total), (1, 3));
    }

    #[test]
    fn election_read_decides_when_it_succeeds() {
        let cands = vec![
            Candidate::new("07leader/2", 8, "10.0.0.2:6700"),
            Candidate::new("07leader/1", 7, "10.0.0.1:6700"),
        ];
        assert_eq!(
            classify(&eps(), Ok(cands), &[]),
            PrimaryObservation::Elected {
                address: "10.0.0.1:6700".into()
            }
        );
        assert_eq!(
            classify(&eps(), Ok(vec![]), &[]),
            PrimaryObservation::NoCandidate
        );
        let only_snapshotclone = vec![Candidate::new(
            "07leadersnapshotcloneserverleaderlock/1",
            3,
            "x:5555",
        )];
        assert_eq!(
            classify(&eps(), Ok(only_snapshotclone), &[]),
            PrimaryObservation::NoCandidate
        );
    }

    #[test]
    fn nobody_answers_is_unreachable_naming_each_endpoint() {
        let probes: Vec<_> = eps()
            .into_iter()
            .map(|e| (e, Err("connection refused".to_string())))
            .collect();
        match classify(&eps(), Err("timed out".into()), &probes) {
            PrimaryObservation::Unreachable { endpoints, error } => {
                assert_eq!(endpoints, eps());
                for ep in eps() {
                    assert!(
                        error.contains(&format!("{ep}: connection refused")),
                        "{error}"
                    );
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_endpoint_is_no_endpoint_not_an_unreachable_empty_list() {
        assert_eq!(
            classify(&[], Err("no etcd endpoint given".into()), &[]),
            PrimaryObservation::NoEndpoint
        );
        // An election read that succeeded still decides.
        assert_eq!(
            classify(&[], Ok(vec![]), &[]),
            PrimaryObservation::NoCandidate
        );
    }

    #[test]
    fn answering_members_without_a_leader_is_quorum_lost() {
        let probes = vec![
            (eps()[0].clone(), Ok(status(0xa1, 0, 9))),
            (eps()[1].clone(), Err("connection refused".to_string())),
            (eps()[2].clone(), Err("connection refused".to_string())),
        ];
        match classify(&eps(), Err("read timed out after 2s".into()), &probes) {
            PrimaryObservation::QuorumLost { endpoints, error } => {
                assert_eq!(endpoints, eps());
                assert!(error.contains("1 of 3 endpoints answer"), "{error}");
                assert!(error.contains("no member has a raft leader"), "{error}");
                assert!(error.contains("read timed out after 2s"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answering_members_whose_reads_fail_is_quorum_lost() {
        let probes = vec![(eps()[0].clone(), Ok(status(0xa1, 0xa1, 9)))];
        match classify(&eps(), Err("read timed out after 2s".into()), &probes) {
            PrimaryObservation::QuorumLost { error, .. } => {
                assert!(
                    error.contains("read of the election failed: read timed out"),
                    "{error}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
