//! The MDS tier: metadata servers, one primary elected in etcd.

use super::Tier;
use super::common::{
    Budget, Daemon, Role, StatefulSetParts, config_map, disruption_budget, headless_service,
    http_probe, jemalloc, stateful_set,
};
use super::config::{CURVE_DELIMITER, EtcdLayout, MDS_CONF, glog_args, mds_conf};
use crate::names::{Component, component_name, labels, selector_labels};
use crate::validate::ValidatedCluster;

/// `etcd`: the MDS lists the voting members of this layout.
pub fn build(cluster: &ValidatedCluster, etcd: &EtcdLayout) -> Tier {
    let component = Component::Mds;
    let mds = &cluster.spec.mds;
    let name = component_name(&cluster.name, component);
    let selector = selector_labels(&cluster.name, component);
    let mut args = vec![
        format!("-confPath={}/{MDS_CONF}", Role::Mds.conf_dir()),
        "-graceful_quit_on_sigterm=true".to_string(),
    ];
    args.extend(glog_args(Role::Mds));
    let daemon = Daemon {
        role: Role::Mds,
        args,
        ports: vec![("listen", mds.port), ("dummy", mds.dummy_port)],
        // Every MDS (primary or standby) serves its dummy port; only the primary opens `port`.
        readiness: http_probe("/vars/mds_status", mds.dummy_port, 5, 10, 3),
        liveness: http_probe("/vars/mds_status", mds.dummy_port, 30, 10, 6),
        startup: None,
        start_script: Some(super::start::mds_start_script(
            mds.port,
            mds.dummy_port,
            &Role::Mds.log_dir(),
        )),
        resources: mds.resources.clone(),
        config_files: vec![(MDS_CONF, CURVE_DELIMITER)],
        data_volume: None,
        extra_env: vec![jemalloc()],
        root_password: true,
    };
    let config = config_map(
        cluster,
        component,
        vec![(MDS_CONF.to_string(), mds_conf(cluster, etcd.endpoints))],
    );
    Tier {
        component,
        services: vec![headless_service(
            cluster,
            component,
            &[("listen", mds.port), ("dummy", mds.dummy_port)],
        )],
        budgets: vec![disruption_budget(
            cluster,
            component,
            Budget::MaxUnavailable(1),
        )],
        stateful_sets: vec![stateful_set(
            cluster,
            StatefulSetParts {
                name: name.clone(),
                labels: labels(&cluster.name, component),
                pod_spec: daemon.pod_spec(cluster, &selector, Vec::new(), &name),
                selector,
                replicas: mds.replicas,
                service_name: name,
                volume_claims: Vec::new(),
                pod_management_policy: "OrderedReady",
                config: &config,
            },
        )],
        config_maps: vec![config],
    }
}
