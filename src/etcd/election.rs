//! The MDS election as etcd stores it, and who wins it. Pure: no I/O.
//!
//! Curve's MDS campaigns with etcd clientv3 `concurrency.Election` on the prefix `07leader`,
//! which puts one key per candidate, `07leader/<lease id in hex>`, with the candidate's
//! `mds.listen.addr` as value. The candidate whose key has the lowest create revision leads.

use std::collections::BTreeMap;

/// Prefix of the MDS election keys. The trailing slash matters: the SnapshotCloneServer
/// campaigns under `07leadersnapshotcloneserverleaderlock/`, which `07leader` alone would match.
pub const MDS_ELECTION_PREFIX: &str = "07leader/";

/// One campaigning MDS: its key under [`MDS_ELECTION_PREFIX`] and what etcd knows of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub key: String,
    pub create_revision: i64,
    /// The candidate's `ip:port`.
    pub value: String,
}

impl Candidate {
    pub fn new(key: impl Into<String>, create_revision: i64, value: impl Into<String>) -> Self {
        Candidate {
            key: key.into(),
            create_revision,
            value: value.into(),
        }
    }
}

/// Whether `key` is an MDS election key (and not, say, a SnapshotClone one).
pub fn is_mds_election_key(key: &str) -> bool {
    key.len() > MDS_ELECTION_PREFIX.len() && key.starts_with(MDS_ELECTION_PREFIX)
}

/// The elected primary: the MDS election candidate with the lowest create revision. Keys outside
/// the MDS election are ignored, whatever their revision. Ties cannot happen in etcd (one
/// revision per transaction, one key per lease); the key breaks them so the answer is stable.
pub fn pick_primary<'a>(
    candidates: impl IntoIterator<Item = &'a Candidate>,
) -> Option<&'a Candidate> {
    candidates
        .into_iter()
        .filter(|c| is_mds_election_key(&c.key))
        .min_by(|a, b| (a.create_revision, &a.key).cmp(&(b.create_revision, &b.key)))
}

/// A change to one election key, as a watch reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyEvent {
    /// The key was created or its value changed (a candidate proclaimed a new value).
    Put(Candidate),
    Deleted {
        key: String,
    },
}

/// The candidates of one election, kept current from a read and the watch events after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElectionState {
    candidates: BTreeMap<String, Candidate>,
}

impl ElectionState {
    /// The state from a read of the prefix; keys outside the MDS election are dropped.
    pub fn from_candidates(candidates: impl IntoIterator<Item = Candidate>) -> Self {
        let mut state = ElectionState::default();
        for c in candidates {
            state.apply(KeyEvent::Put(c));
        }
        state
    }

    pub fn apply(&mut self, event: KeyEvent) {
        match event {
            KeyEvent::Put(c) if is_mds_election_key(&c.key) => {
                self.candidates.insert(c.key.clone(), c);
            }
            KeyEvent::Put(_) => {}
            KeyEvent::Deleted { key } => {
                self.candidates.remove(&key);
            }
        }
    }

    /// The primary's address, or `None` when no MDS campaigns.
    pub fn primary(&self) -> Option<&str> {
        pick_primary(self.candidates.values()).map(|c| c.value.as_str())
    }

    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_create_revision_wins_whatever_the_order() {
        let cands = vec![
            Candidate::new("07leader/694d8a1b2c3d0003", 30, "10.0.0.3:6700"),
            Candidate::new("07leader/694d8a1b2c3d0001", 12, "10.0.0.1:6700"),
            Candidate::new("07leader/694d8a1b2c3d0002", 20, "10.0.0.2:6700"),
        ];
        assert_eq!(pick_primary(&cands).unwrap().value, "10.0.0.1:6700");
        let reversed: Vec<_> = cands.iter().rev().cloned().collect();
        assert_eq!(pick_primary(&reversed).unwrap().value, "10.0.0.1:6700");
    }

    #[test]
    fn key_order_does_not_decide() {
        // The lease id (the key) of the leader can sort after the others'.
        let cands = vec![
            Candidate::new("07leader/ffff", 5, "10.0.0.9:6700"),
            Candidate::new("07leader/0001", 6, "10.0.0.1:6700"),
        ];
        assert_eq!(pick_primary(&cands).unwrap().value, "10.0.0.9:6700");
    }

    #[test]
    fn no_candidates_no_primary() {
        assert_eq!(pick_primary(&[]), None);
        assert_eq!(ElectionState::default().primary(), None);
    }

    #[test]
    fn snapshotclone_election_is_never_the_mds_primary() {
        let cands = vec![
            Candidate::new(
                "07leadersnapshotcloneserverleaderlock/1234",
                2,
                "10.0.0.7:5555",
            ),
            Candidate::new("07leader/abcd", 9, "10.0.0.1:6700"),
        ];
        assert_eq!(pick_primary(&cands).unwrap().value, "10.0.0.1:6700");
        assert_eq!(pick_primary(&cands[..1]), None);
    }

    #[test]
    fn prefix_filter() {
        assert!(is_mds_election_key("07leader/694d8a1b2c3d4e5f"));
        assert!(
            !is_mds_election_key("07leader/"),
            "the bare prefix is no candidate"
        );
        assert!(!is_mds_election_key("07leader"));
        assert!(!is_mds_election_key(
            "07leadersnapshotcloneserverleaderlock/694d"
        ));
        assert!(!is_mds_election_key("07leaderx/1"));
        assert!(!is_mds_election_key("x07leader/1"));
        assert!(!is_mds_election_key("06leader/1"));
    }

    #[test]
    fn state_follows_events() {
        let a = Candidate::new("07leader/a", 10, "10.0.0.1:6700");
        let b = Candidate::new("07leader/b", 11, "10.0.0.2:6700");
        let mut s = ElectionState::from_candidates([a.clone(), b.clone()]);
        assert_eq!(s.primary(), Some("10.0.0.1:6700"));

        // A snapshotclone candidate changes nothing.
        s.apply(KeyEvent::Put(Candidate::new(
            "07leadersnapshotcloneserverleaderlock/z",
            1,
            "x:1",
        )));
        assert_eq!(s.primary(), Some("10.0.0.1:6700"));
        assert_eq!(s.candidates().count(), 2);

        // The leader proclaims a new value: same key, same create revision.
        s.apply(KeyEvent::Put(Candidate::new(
            "07leader/a",
            10,
            "10.0.0.5:6700",
        )));
        assert_eq!(s.primary(), Some("10.0.0.5:6700"));

        s.apply(KeyEvent::Deleted { key: a.key.clone() });
        assert_eq!(s.primary(), Some("10.0.0.2:6700"));
        // Deleting an unknown key is harmless (it was created and deleted while we re-read).
        s.apply(KeyEvent::Deleted {
            key: "07leader/zz".into(),
        });
        assert_eq!(s.primary(), Some("10.0.0.2:6700"));
        s.apply(KeyEvent::Deleted { key: b.key });
        assert_eq!(s.primary(), None);
    }
}
