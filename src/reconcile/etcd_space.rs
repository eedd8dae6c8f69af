//! etcd's space: which member to defragment in this pass, and what an alarm means for the
//! status. Pure: from the members as etcd's Status calls and alarm list described them.
//!
//! etcd's quota compares the database *file* (`dbSize`) with `quota-backend-bytes`; the pages
//! freed by the periodic compaction stay in the file, reused by later writes but never given
//! back, until a defragmentation rewrites it (etcd v3.4 Documentation/op-guide/maintenance.md,
//! "Defragmentation"). A defragmentation blocks the member's reads and writes while it runs,
//! so: one member per pass, never while membership changes or etcd's pods roll, followers
//! before the leader (defragmenting the leader stalls every write), the leader only when every
//! other member serves.

use crate::etcd::{EtcdAlarm, Member, MemberHealth};

/// Free pages (`dbSize − dbSizeInUse`) worth a defragmentation: more than this share of the
/// file and more than [`MIN_FREE_BYTES`]. Below a quarter, free pages are the usual churn that
/// new writes reuse after each hourly compaction; the aim is headroom under the quota, not the
/// last percent of disk.
pub const MIN_FREE_PERCENT: u64 = 25;
/// Free bytes worth a defragmentation: below this the member's pause buys almost nothing
/// (a 64 MiB database defragments in well under a second).
pub const MIN_FREE_BYTES: u64 = crate::api::rules::ETCD_DEFRAGMENT_FREE_BYTES;

/// What the space decision reads.
pub struct SpaceInput<'a> {
    /// The member list as etcd answered it; `None`: not read, nothing is decided.
    pub members: Option<&'a MemberHealth>,
    /// Why no member may be taken out of service now (a membership step, an etcd roll).
    pub busy: Option<String>,
}

/// The member to defragment in this pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defragment {
    pub id: u64,
    pub name: String,
    /// Free bytes in its database file, and the file's size.
    pub free: u64,
    pub db_size: u64,
}

impl Defragment {
    pub fn describe(&self) -> String {
        format!(
            "defragmenting etcd member {} ({} MiB of its {} MiB database are free pages)",
            self.name,
            self.free >> 20,
            self.db_size >> 20
        )
    }
}

fn free(member: &Member) -> u64 {
    member.db_size.saturating_sub(member.db_size_in_use)
}

fn raised(members: &MemberHealth, alarm: EtcdAlarm) -> bool {
    (members.members.iter()).any(|m| m.alarms.contains(&alarm))
}

/// Whether the member's free pages are worth its pause. Under a NOSPACE alarm any
/// [`MIN_FREE_BYTES`] are: a defragmentation is how the file gets back under the quota.
fn worth_it(member: &Member, nospace: bool) -> bool {
    let free = free(member);
    member.db_size > 0
        && free > MIN_FREE_BYTES
        && (nospace || free * 100 > member.db_size * MIN_FREE_PERCENT)
}

/// The one member to defragment now, if any.
pub fn decide(input: &SpaceInput) -> Option<Defragment> {
    let members = input.members?;
    if input.busy.is_some() || raised(members, EtcdAlarm::Corrupt) {
        // A corrupt member is replaced, not rewritten; nothing else moves meanwhile.
        return None;
    }
    let voters: Vec<&Member> = (members.members.iter()).filter(|m| !m.is_learner).collect();
    let nospace = raised(members, EtcdAlarm::NoSpace);
    // A lone member's pause stops every request (the MDS's lease keep-alive too): only when
    // etcd refuses writes anyway.
    if voters.len() == 1 && !nospace {
        return None;
    }
    // Every other member serves: the one paused leaves a majority with a spare (a follower),
    // or the leader hands no stalled write to a cluster short of a member.
    let others_serve = |m: &Member| {
        (voters.iter())
            .filter(|o| o.id != m.id && o.serving)
            .count()
            == voters.len() - 1
    };
    let mut candidates: Vec<&&Member> = (voters.iter())
        .filter(|m| m.serving && worth_it(m, nospace))
        .collect();
    // Followers first, then by name (so by ordinal); the leader last.
    candidates.sort_by(|a, b| (a.is_leader, &a.name).cmp(&(b.is_leader, &b.name)));
    let first = candidates.first()?;
    others_serve(first).then(|| Defragment {
        id: first.id,
        name: first.name.clone(),
        free: free(first),
        db_size: first.db_size,
    })
}

/// The members an alarm is raised on, by alarm: what the status's Degraded condition says.
pub fn alarms(members: &MemberHealth) -> Vec<(EtcdAlarm, Vec<String>)> {
    [EtcdAlarm::Corrupt, EtcdAlarm::NoSpace]
        .into_iter()
        .filter_map(|alarm| {
            let on: Vec<String> = (members.members.iter())
                .filter(|m| m.alarms.contains(&alarm))
                .map(|m| match m.name.as_str() {
                    "" => format!("{:x}", m.id),
                    name => name.to_string(),
                })
                .collect();
            (!on.is_empty()).then_some((alarm, on))
        })
        .collect()
}

/// What an alarm means and what to do about it (etcd v3.4 op-guide/maintenance.md, "Space
/// quota": the alarm stays until disarmed, after space is freed).
pub fn alarm_message(alarm: EtcdAlarm, members: &[String]) -> String {
    let on = members.join(", ");
    match alarm {
        EtcdAlarm::NoSpace => format!(
            "etcd raised NOSPACE (members {on}): its database reached quota-backend-bytes, so etcd serves only reads and deletes and the MDS can allocate no segment. Free space, then disarm: raise spec.etcd.quotaBackendBytes (within what storage.size allows; the members restart with it) and let the operator defragment the members (it does while their databases hold free pages), then run `etcdctl alarm disarm` against any member; etcd refuses writes until the alarm is disarmed"
        ),
        EtcdAlarm::Corrupt => format!(
            "etcd raised CORRUPT (members {on}): a member's data differs from the others', and etcd refuses writes. Do not disarm it: replace the member named (delete its data claim and its pod; the operator removes it from etcd and adds it back empty, copied from the others), then run `etcdctl alarm disarm`"
        ),
    }
}

#[cfg(test)]
#[path = "etcd_space_tests.rs"]
mod tests;
