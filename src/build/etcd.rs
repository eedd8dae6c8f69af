//! The etcd tier: Curve's metadata store and the MDS election.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;

use super::common::{
    Budget, Daemon, Role, StatefulSetParts, component_name, config_map, disruption_budget,
    headless_service, http_probe, labels, selector_labels, stateful_set, volume_claim_template,
};
use super::config::{ETCD_CONF, YAML_DELIMITER, etcd_conf};
use super::{Component, Tier};
use crate::validate::ValidatedCluster;

const DATA_VOLUME: &str = "data";

pub fn build(cluster: &ValidatedCluster) -> Tier {
    let component = Component::Etcd;
    let etcd = &cluster.spec.etcd;
    let name = component_name(cluster, component);
    let config = config_map(
        cluster,
        component,
        vec![(ETCD_CONF.to_string(), etcd_conf(cluster))],
    );
    Tier {
        component,
        stateful_sets: vec![stateful_set_for(cluster, &name, &config)],
        config_maps: vec![config],
        services: vec![headless_service(
            cluster,
            component,
            &[("client", etcd.client_port), ("peer", etcd.peer_port)],
        )],
        // Voluntary disruptions may never take the cluster below quorum.
        budgets: vec![disruption_budget(
            cluster,
            component,
            Budget::MinAvailable(cluster.etcd_quorum()),
        )],
    }
}

fn stateful_set_for(cluster: &ValidatedCluster, name: &str, config: &ConfigMap) -> StatefulSet {
    let etcd = &cluster.spec.etcd;
    let selector = selector_labels(cluster, Component::Etcd);
    let daemon = Daemon {
        role: Role::Etcd,
        args: vec![format!(
            "--config-file={}/{ETCD_CONF}",
            Role::Etcd.conf_dir()
        )],
        ports: vec![("client", etcd.client_port), ("peer", etcd.peer_port)],
        // /health fails without quorum: a member is ready only when the cluster can serve.
        readiness: http_probe("/health", etcd.client_port, 5, 10, 3),
        // Liveness must not kill members that merely wait for their peers.
        liveness: super::common::tcp_probe(etcd.client_port, 15, 10, 6),
        resources: etcd.resources.clone(),
        config_files: vec![(ETCD_CONF, YAML_DELIMITER)],
        data_volume: Some(DATA_VOLUME),
        extra_env: Vec::new(),
        // etcd has no Curve root user: it never sees the password.
        root_password: false,
    };
    stateful_set(
        cluster,
        StatefulSetParts {
            name: name.to_string(),
            labels: labels(cluster, Component::Etcd),
            pod_spec: daemon.pod_spec(cluster, &selector, Vec::new(), name),
            selector,
            replicas: etcd.replicas,
            service_name: name.to_string(),
            volume_claims: vec![volume_claim_template(
                DATA_VOLUME,
                &etcd.storage,
                labels(cluster, Component::Etcd),
            )],
            // Members must all start before any can form quorum and become ready.
            pod_management_policy: "Parallel",
            config,
        },
    )
}
