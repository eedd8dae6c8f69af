//! The gauges the alerts read, from whole observations.

use serde_json::json;

use super::{Gauges, PrimaryView};
use crate::reconcile::fixtures::{component, healthy, validated};
use crate::reconcile::model::states::RollState;

#[test]
fn a_healthy_cluster_gives_one_primary_all_members_healthy_and_nothing_down() {
    let gauges = Gauges::of(&validated(json!({})), &healthy());
    assert_eq!(
        gauges,
        Gauges {
            mds_pods: vec![
                "demo-mds-0".into(),
                "demo-mds-1".into(),
                "demo-mds-2".into()
            ],
            primary: Some("demo-mds-0".into()),
            etcd_members: Some((3, 3)),
            rolling: false,
            roll_stuck: false,
            failure_domains: (0, 1),
        }
    );
}

#[test]
fn learners_do_not_count_unanswered_etcd_is_none_healthy_and_a_stuck_roll_shows() {
    let mut obs = healthy();
    let members = obs.etcd_members.as_mut().unwrap();
    members.members[2].is_learner = true;
    members.members[1].healthy = false;
    obs.chunkservers = component(3, 1, true);
    obs.roll = RollState::Stuck {
        message: "demo-mds-1 not ready".into(),
    };
    let gauges = Gauges::of(&validated(json!({})), &obs);
    assert_eq!(gauges.etcd_members, Some((2, 1)));
    assert_eq!(gauges.failure_domains, (2, 1));
    assert!(gauges.roll_stuck && !gauges.rolling);

    obs.etcd_members = None;
    obs.primary = PrimaryView::EtcdUnreachable {
        endpoints: vec![],
        error: "timeout".into(),
    };
    let gauges = Gauges::of(&validated(json!({})), &obs);
    assert_eq!((gauges.etcd_members, gauges.primary), (Some((3, 0)), None));

    obs.primary = PrimaryView::NotStarted;
    assert_eq!(Gauges::of(&validated(json!({})), &obs).etcd_members, None);
}
