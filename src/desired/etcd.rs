//! The etcd tier: Curve's metadata store and the MDS election.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapKeySelector, Container, EnvVar, EnvVarSource,
};

use super::Tier;
use super::common::{
    Budget, Daemon, Role, StatefulSetParts, config_map, disruption_budget, headless_service,
    http_probe, stateful_set, volume_claim_template,
};
use super::config::{
    ENV_INITIAL_CLUSTER_STATE, ENV_JOINING, ETCD_CONF, EtcdLayout, MEMBERSHIP_KEYS, YAML_DELIMITER,
    etcd_conf, etcd_membership,
};
use crate::names::{
    Component, component_name, etcd_members_config_map_name, labels, selector_labels,
};
use crate::validate::ValidatedCluster;

/// Name of the etcd pods' init container that refuses to start a member without data once the
/// cluster exists, and the words its termination message starts with (the membership decision
/// reads both back from the pods).
pub const DATA_CHECK_CONTAINER: &str = "data-check";
pub const DATA_LOST_MARKER: &str = "no etcd data";

/// The data claim template: claims are `data-<pod>`.
pub const DATA_VOLUME: &str = "data";

/// `layout`: the pods and the members' startup config as membership stands
/// (reconcile/membership.rs); [`EtcdLayout::bootstrap`] for a new cluster.
pub fn build(cluster: &ValidatedCluster, layout: &EtcdLayout) -> Tier {
    let component = Component::Etcd;
    let etcd = &cluster.spec.etcd;
    let name = component_name(&cluster.name, component);
    let config = config_map(
        cluster,
        component,
        vec![(ETCD_CONF.to_string(), etcd_conf(cluster))],
    );
    // Apart from the config the pod template hashes: membership changes restart no member.
    let mut membership = config_map(cluster, component, etcd_membership(cluster, layout));
    membership.metadata.name = Some(etcd_members_config_map_name(&cluster.name));
    if let Some(data) = membership.data.as_mut() {
        data.remove(super::common::MERGE_SCRIPT_KEY);
    }
    Tier {
        component,
        stateful_sets: vec![stateful_set_for(cluster, &name, &config, layout.pods)],
        config_maps: vec![config, membership],
        services: vec![headless_service(
            cluster,
            component,
            &[("client", etcd.client_port), ("peer", etcd.peer_port)],
        )],
        // Voluntary disruptions may never take the cluster below quorum.
        budgets: vec![disruption_budget(
            cluster,
            component,
            Budget::MinAvailable(layout.pods / 2 + 1),
        )],
    }
}

/// An environment variable from the membership ConfigMap.
fn membership_env(cluster: &ValidatedCluster, env: &str) -> EnvVar {
    let key = MEMBERSHIP_KEYS
        .iter()
        .find(|(name, _)| *name == env)
        .map(|(_, key)| key.to_string());
    EnvVar {
        name: env.to_string(),
        value_from: Some(EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: etcd_members_config_map_name(&cluster.name),
                key: key.unwrap_or_default(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Refuses to start a member without data once the cluster exists, unless it is the member
/// being added: an empty member that starts as an old voter breaks raft (etcd panics, or votes
/// twice). Its termination message tells the operator to replace it.
fn data_check(cluster: &ValidatedCluster) -> Container {
    let data = Role::Etcd.data_dir();
    let script = format!(
        r#"if [ "${state}" = existing ] && [ "${joining}" != "$POD_NAME" ] && ! ls {data}/wal/*.wal >/dev/null 2>&1; then
  echo "{marker} in {data} for member $POD_NAME: the etcd cluster exists, so its data was lost (claim deleted or volume wiped); the operator removes the member and adds it back empty" | tee /dev/termination-log >&2
  exit 1
fi"#,
        state = ENV_INITIAL_CLUSTER_STATE,
        joining = ENV_JOINING,
        marker = DATA_LOST_MARKER,
    );
    let mut env = super::common::pod_env();
    env.extend([
        membership_env(cluster, ENV_INITIAL_CLUSTER_STATE),
        membership_env(cluster, ENV_JOINING),
    ]);
    Container {
        name: DATA_CHECK_CONTAINER.to_string(),
        image: Some(cluster.spec.image.clone()),
        image_pull_policy: Some(cluster.spec.image_pull_policy.as_str().to_string()),
        command: Some(vec!["sh".into(), "-c".into(), script]),
        env: Some(env),
        volume_mounts: Some(vec![super::common::mount(DATA_VOLUME, &data)]),
        ..Container::default()
    }
}

fn stateful_set_for(
    cluster: &ValidatedCluster,
    name: &str,
    config: &ConfigMap,
    replicas: i32,
) -> StatefulSet {
    let etcd = &cluster.spec.etcd;
    let selector = selector_labels(&cluster.name, Component::Etcd);
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
        startup: None,
        start_script: Some(super::start::etcd_start_script(
            etcd.client_port,
            etcd.peer_port,
        )),
        resources: etcd.resources.clone(),
        config_files: vec![(ETCD_CONF, YAML_DELIMITER)],
        data_volume: Some(DATA_VOLUME),
        // For the config init container's merge (initial-cluster and its state).
        extra_env: [
            super::config::ENV_INITIAL_CLUSTER,
            ENV_INITIAL_CLUSTER_STATE,
        ]
        .iter()
        .map(|env| membership_env(cluster, env))
        .collect(),
        // etcd has no Curve root user: it never sees the password.
        root_password: false,
    };
    stateful_set(
        cluster,
        StatefulSetParts {
            name: name.to_string(),
            labels: labels(&cluster.name, Component::Etcd),
            pod_spec: daemon.pod_spec(cluster, &selector, vec![data_check(cluster)], name),
            selector,
            replicas,
            service_name: name.to_string(),
            volume_claims: vec![volume_claim_template(
                DATA_VOLUME,
                &etcd.storage,
                labels(&cluster.name, Component::Etcd),
            )],
            // Members must all start before any can form quorum and become ready.
            pod_management_policy: "Parallel",
            config,
        },
    )
}
