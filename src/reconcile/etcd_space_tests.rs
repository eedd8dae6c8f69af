use super::*;

const MIB: u64 = 1 << 20;

/// Three serving members, `demo-etcd-1` leading, each with a database of `size` MiB of which
/// `in_use` MiB are in use.
fn cluster(sizes: [(u64, u64); 3]) -> MemberHealth {
    let mut health =
        MemberHealth::all_healthy("ns", &["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"], 1);
    for (member, (size, in_use)) in health.members.iter_mut().zip(sizes) {
        member.serving = true;
        (member.db_size, member.db_size_in_use) = (size * MIB, in_use * MIB);
    }
    health
}

fn pick(members: &MemberHealth) -> Option<String> {
    decide(&SpaceInput {
        members: Some(members),
        busy: None,
    })
    .map(|d| d.name)
}

#[test]
fn followers_first_by_ordinal_then_the_leader() {
    // Every member has 300 of 400 MiB free.
    let mut members = cluster([(400, 100); 3]);
    let mut order = Vec::new();
    while let Some(name) = pick(&members) {
        order.push(name.clone());
        let m = members.members.iter_mut().find(|m| m.name == name).unwrap();
        m.db_size = m.db_size_in_use;
    }
    assert_eq!(order, ["demo-etcd-0", "demo-etcd-2", "demo-etcd-1"]);
}

#[test]
fn the_threshold_is_a_quarter_of_the_file_and_64_mib() {
    // 100 of 400 MiB free is exactly a quarter: not more.
    assert_eq!(pick(&cluster([(400, 300), (400, 400), (400, 400)])), None);
    assert_eq!(
        pick(&cluster([(400, 299), (400, 400), (400, 400)])).as_deref(),
        Some("demo-etcd-0")
    );
    // 60 of 100 MiB free is most of the file but under 64 MiB.
    assert_eq!(pick(&cluster([(100, 40), (100, 40), (100, 40)])), None);
    let d = decide(&SpaceInput {
        members: Some(&cluster([(400, 400), (400, 400), (1000, 200)])),
        busy: None,
    })
    .unwrap();
    assert_eq!((d.id, d.free, d.db_size), (0xa2, 800 * MIB, 1000 * MIB));
    assert_eq!(
        d.describe(),
        "defragmenting etcd member demo-etcd-2 (800 MiB of its 1000 MiB database are free pages)"
    );
}

#[test]
fn nothing_while_busy_a_member_is_down_or_corrupt() {
    let members = cluster([(400, 100); 3]);
    let busy = SpaceInput {
        members: Some(&members),
        busy: Some("an etcd member is being added".into()),
    };
    assert_eq!(decide(&busy), None);
    assert_eq!(
        decide(&SpaceInput {
            members: None,
            busy: None
        }),
        None
    );
    // demo-etcd-2 does not answer: not even demo-etcd-0, whose pause would leave one.
    let mut down = members.clone();
    down.members[2].serving = false;
    assert_eq!(pick(&down), None);
    // Only the leader needs it, and a follower is down: the leader waits.
    let mut leader_only = cluster([(400, 400), (400, 100), (400, 400)]);
    assert_eq!(pick(&leader_only).as_deref(), Some("demo-etcd-1"));
    leader_only.members[0].serving = false;
    assert_eq!(pick(&leader_only), None);
    let mut corrupt = members.clone();
    corrupt.members[2].alarms.push(EtcdAlarm::Corrupt);
    assert_eq!(pick(&corrupt), None);
}

#[test]
fn nospace_lowers_the_share_and_a_lone_member_waits_for_it() {
    // 100 of 1000 MiB free: a tenth, not worth it, until etcd refuses writes.
    let mut members = cluster([(1000, 900); 3]);
    assert_eq!(pick(&members), None);
    for m in &mut members.members {
        m.alarms.push(EtcdAlarm::NoSpace);
        m.healthy = false;
    }
    assert_eq!(pick(&members).as_deref(), Some("demo-etcd-0"));
    let mut lone = MemberHealth::all_healthy("ns", &["demo-etcd-0"], 0);
    lone.members[0].serving = true;
    (lone.members[0].db_size, lone.members[0].db_size_in_use) = (400 * MIB, 100 * MIB);
    assert_eq!(pick(&lone), None);
    lone.members[0].alarms.push(EtcdAlarm::NoSpace);
    assert_eq!(pick(&lone).as_deref(), Some("demo-etcd-0"));
}

#[test]
fn alarms_name_their_members_and_say_what_to_do() {
    let mut members = cluster([(400, 400); 3]);
    assert_eq!(alarms(&members), []);
    members.members[0].alarms.push(EtcdAlarm::NoSpace);
    members.members[2].alarms.push(EtcdAlarm::NoSpace);
    members.members[2].name.clear();
    members.members[1].alarms.push(EtcdAlarm::Corrupt);
    let found = alarms(&members);
    assert_eq!(
        found,
        [
            (EtcdAlarm::Corrupt, vec!["demo-etcd-1".to_string()]),
            (
                EtcdAlarm::NoSpace,
                vec!["demo-etcd-0".to_string(), "a2".to_string()]
            ),
        ]
    );
    let nospace = alarm_message(EtcdAlarm::NoSpace, &found[1].1);
    assert!(
        nospace.starts_with("etcd raised NOSPACE (members demo-etcd-0, a2)"),
        "{nospace}"
    );
    assert!(nospace.contains("spec.etcd.quotaBackendBytes"), "{nospace}");
    assert!(nospace.contains("etcdctl alarm disarm"), "{nospace}");
    let corrupt = alarm_message(EtcdAlarm::Corrupt, &found[0].1);
    assert!(corrupt.contains("Do not disarm"), "{corrupt}");
}
