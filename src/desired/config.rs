//! Curve config files. Each holds only the keys the operator must set (curve-facts.md); every
//! other key keeps the image's default (`/curvebs/conf/<file>`), merged in by the pod's config
//! init container (merge-config.sh), which also fills in `${prefix}` (`/curvebs/<role>`),
//! `${POD_IP}`, `${POD_NAME}`, `${CURVE_PORT}` and `${CURVE_ROOT_PASSWORD}` per pod.

use super::common::{Role, pod_dns_name};
use crate::names::{Component, component_name};
use crate::validate::ValidatedCluster;
use crate::validate::capacity;

pub const ETCD_CONF: &str = "etcd.conf";
pub const MDS_CONF: &str = "mds.conf";
pub const CHUNKSERVER_CONF: &str = "chunkserver.conf";
pub const CS_CLIENT_CONF: &str = "cs_client.conf";
pub const TOOLS_CONF: &str = "tools.conf";
/// Read by the ChunkServer at start (it aborts without it) even when clones from S3 are unused.
pub const S3_CONF: &str = "s3.conf";

/// Curve's root user. Curve stores the name at the MDS's first start and refuses to start under
/// another one later, so it is fixed: the image's (and curveadm's) default.
pub const ROOT_USER: &str = "root";
/// Filled in from the cluster's root Secret by the config init container; never in a ConfigMap.
pub const ROOT_PASSWORD: &str = "${CURVE_ROOT_PASSWORD}";

/// etcd's YAML config is `key: value`; Curve's own files are `key=value`.
pub const YAML_DELIMITER: &str = ": ";
pub const CURVE_DELIMITER: &str = "=";

fn render(pairs: &[(&str, String)], delimiter: &str) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key}{delimiter}{value}\n"))
        .collect()
}

/// Pod names of a StatefulSet with `replicas` pods.
pub fn pod_names(set_name: &str, replicas: i32) -> Vec<String> {
    (0..replicas)
        .map(|ordinal| format!("{set_name}-{ordinal}"))
        .collect()
}

/// DNS `host:port` of every pod of a component, in ordinal order.
fn member_addresses(
    cluster: &ValidatedCluster,
    component: Component,
    replicas: i32,
    port: i32,
) -> Vec<String> {
    let name = component_name(&cluster.name, component);
    pod_names(&name, replicas)
        .iter()
        .map(|pod| format!("{}:{port}", pod_dns_name(cluster, &name, pod)))
        .collect()
}

/// The etcd client endpoints Curve's daemons and tools use: the first `members` members.
pub fn etcd_endpoints(cluster: &ValidatedCluster, members: i32) -> Vec<String> {
    let etcd = &cluster.spec.etcd;
    member_addresses(cluster, Component::Etcd, members, etcd.client_port)
}

/// The etcd tier as membership stands: how many pods run, how many voting members Curve's
/// daemons list, whether the cluster was bootstrapped, and the member joining now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdLayout {
    /// Pods of the StatefulSet: the members in etcd's member list (with a learner).
    pub pods: i32,
    /// Members listed in `mds.etcd.endpoint` and tools.conf: voting members only.
    pub endpoints: i32,
    /// The cluster was bootstrapped: a member starts with `initial-cluster-state: existing`,
    /// and a member without data refuses to start unless it is the one joining.
    pub existing: bool,
    /// The member added as a learner and not yet promoted.
    pub joining: Option<String>,
}

impl EtcdLayout {
    /// A new cluster of the spec's size (bring-up, offline render).
    pub fn bootstrap(cluster: &ValidatedCluster) -> Self {
        EtcdLayout {
            pods: cluster.spec.etcd.replicas,
            endpoints: cluster.spec.etcd.replicas,
            existing: false,
            joining: None,
        }
    }
}

/// A member's peer URL (its pod's DNS name): how etcd's member list names it before it starts.
pub fn etcd_peer_url(cluster: &ValidatedCluster, pod: &str) -> String {
    let service = component_name(&cluster.name, Component::Etcd);
    format!(
        "http://{}:{}",
        pod_dns_name(cluster, &service, pod),
        cluster.spec.etcd.peer_port
    )
}

/// The MDS addresses by DNS name, in ordinal order.
pub fn mds_dns_addresses(cluster: &ValidatedCluster) -> Vec<String> {
    let mds = &cluster.spec.mds;
    member_addresses(cluster, Component::Mds, mds.replicas, mds.port)
}

/// The addresses Curve's C++ daemons and tools dial. They parse them with
/// `butil::str2endpoint`, which takes `ip:port` only (a ChunkServer stops on a host name), so
/// the reconciler passes the pods' IPs; the DNS names serve only when no pod runs yet (render).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonAddresses {
    /// MDS `ip:port`, tried in turn by ChunkServers and tools (only the primary answers).
    pub mds: Vec<String>,
    /// etcd client `ip:port`, for tools.conf.
    pub etcd: Vec<String>,
}

impl DaemonAddresses {
    pub fn dns(cluster: &ValidatedCluster) -> Self {
        DaemonAddresses {
            mds: mds_dns_addresses(cluster),
            etcd: etcd_endpoints(cluster, cluster.spec.etcd.replicas),
        }
    }
}

/// The value of `key` in a `key<delimiter>value` config text.
pub fn read_key(text: &str, key: &str, delimiter: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.strip_prefix(key)?
            .strip_prefix(delimiter)
            .map(str::to_string)
    })
}

/// etcd's `initial-cluster`: `member=peerURL` for each of the first `members` members, named
/// after their pods.
pub fn etcd_initial_cluster(cluster: &ValidatedCluster, members: i32) -> String {
    let service = component_name(&cluster.name, Component::Etcd);
    pod_names(&service, members)
        .iter()
        .map(|pod| format!("{pod}={}", etcd_peer_url(cluster, pod)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The environment variables the etcd pods' init containers take from the membership
/// ConfigMap (its keys in the same order: initial-cluster, initial-cluster-state, joining).
pub const ENV_INITIAL_CLUSTER: &str = "CURVE_ETCD_INITIAL_CLUSTER";
pub const ENV_INITIAL_CLUSTER_STATE: &str = "CURVE_ETCD_INITIAL_CLUSTER_STATE";
pub const ENV_JOINING: &str = "CURVE_ETCD_JOINING";
pub const MEMBERSHIP_KEYS: [(&str, &str); 3] = [
    (ENV_INITIAL_CLUSTER, "initial-cluster"),
    (ENV_INITIAL_CLUSTER_STATE, "initial-cluster-state"),
    (ENV_JOINING, "joining"),
];

/// The membership ConfigMap's data for this layout.
pub fn etcd_membership(cluster: &ValidatedCluster, layout: &EtcdLayout) -> Vec<(String, String)> {
    let values = [
        etcd_initial_cluster(cluster, layout.pods),
        if layout.existing { "existing" } else { "new" }.to_string(),
        layout.joining.clone().unwrap_or_default(),
    ];
    MEMBERSHIP_KEYS
        .iter()
        .zip(values)
        .map(|((_, key), value)| (key.to_string(), value))
        .collect()
}

pub fn etcd_conf(cluster: &ValidatedCluster) -> String {
    let etcd = &cluster.spec.etcd;
    let service = component_name(&cluster.name, Component::Etcd);
    let own_peer_url = etcd_peer_url(cluster, "${POD_NAME}");
    render(
        &[
            ("name", "${POD_NAME}".into()),
            ("data-dir", "/curvebs/etcd/data".into()),
            ("wal-dir", "/curvebs/etcd/data/wal".into()),
            (
                "listen-peer-urls",
                format!("http://${{POD_IP}}:{}", etcd.peer_port),
            ),
            (
                "listen-client-urls",
                format!("http://${{POD_IP}}:{}", etcd.client_port),
            ),
            ("initial-advertise-peer-urls", own_peer_url),
            (
                "advertise-client-urls",
                format!("http://${{POD_IP}}:{}", etcd.client_port),
            ),
            // From the membership ConfigMap, read when the pod starts: a change of membership
            // changes no pod template (etcd reads both only when its data dir is empty).
            ("initial-cluster", format!("${{{ENV_INITIAL_CLUSTER}}}")),
            // Unique per cluster, so members of two clusters can never join each other.
            (
                "initial-cluster-token",
                format!("{}-{}", cluster.namespace, service),
            ),
            (
                "initial-cluster-state",
                format!("${{{ENV_INITIAL_CLUSTER_STATE}}}"),
            ),
            ("heartbeat-interval", "100".into()),
            ("election-timeout", "1000".into()),
            ("auto-compaction-mode", "periodic".into()),
            ("auto-compaction-retention", "\"1\"".into()),
            // The image's 0 is etcd's 2 GiB default, which Curve's metadata outgrows (mds.conf
            // estimates ~3 GB at 5 PB); the spec's quota, checked against the volume.
            (
                "quota-backend-bytes",
                capacity::etcd_quota_bytes(etcd)
                    .unwrap_or_default()
                    .to_string(),
            ),
            // The image has false. The operator adds and removes members: etcd must refuse a
            // change that would leave the cluster without quorum (removing a member while
            // another is down, adding one while the cluster cannot take another unstarted
            // voter) rather than carry it out.
            ("strict-reconfig-check", "true".into()),
        ],
        YAML_DELIMITER,
    )
}

/// `mds.topology.PoolUsagePercentLimit` of this spec: see
/// [`crate::validate::capacity::cluster_pool_usage_limit_percent`].
pub fn pool_usage_limit_percent(cluster: &ValidatedCluster) -> i32 {
    capacity::cluster_pool_usage_limit_percent(&cluster.spec)
}

/// Curve's default `mds.chunkserver.failure.tolerance` (conf/mds.conf:73).
pub const CURVE_FAILURE_TOLERANCE: i32 = 3;

/// glog's flags of Curve's C++ daemons: files in the role's log dir (the log emptyDir), each
/// closed at [`super::start::LOG_FILE_MIB`] (the start script deletes the oldest beyond a
/// budget), and only FATAL on stderr: the files hold everything else.
pub fn glog_args(role: Role) -> Vec<String> {
    vec![
        format!("-log_dir={}", role.log_dir()),
        format!("-max_log_size={}", super::start::LOG_FILE_MIB),
        "-stderrthreshold=3".to_string(),
    ]
}

/// `mds.chunkserver.failure.tolerance`: the RecoverScheduler leaves alone every ChunkServer of
/// a server with at least this many ChunkServers not online
/// (RecoverScheduler::CalculateExcludesChunkServer, src/mds/schedule/recoverScheduler.cpp:
/// 195-232), so with Curve's 3 and 3 or more disk slots a lost node is never re-replicated.
/// One more than the slots lets a whole lost node be recovered; a node that only flaps is
/// still left alone, by `mds.heartbeat.offlinetimeoutMs` (30 minutes, conf/mds.conf:86),
/// before which no ChunkServer counts as offline. Never below Curve's 3.
pub fn chunkserver_failure_tolerance(disks_per_node: i32) -> i32 {
    CURVE_FAILURE_TOLERANCE.max(disks_per_node.saturating_add(1))
}

/// `etcd_members`: the voting etcd members (a learner refuses the MDS's requests).
pub fn mds_conf(cluster: &ValidatedCluster, etcd_members: i32) -> String {
    let mds = &cluster.spec.mds;
    render(
        &[
            // The listen address is also the MDS's election value: it must be the pod's own IP.
            ("mds.listen.addr", format!("${{POD_IP}}:{}", mds.port)),
            ("mds.dummy.listen.port", mds.dummy_port.to_string()),
            ("global.port", mds.port.to_string()),
            (
                "mds.etcd.endpoint",
                etcd_endpoints(cluster, etcd_members).join(","),
            ),
            ("mds.snapshotcloneclient.addr", String::new()),
            ("mds.common.logDir", "/curvebs/mds/logs".into()),
            ("mds.leader.sessionInterSec", "5".into()),
            ("mds.leader.electionTimeoutMs", "0".into()),
            // Checked against what every root client sends (tools, ChunkServers) at each start.
            ("mds.auth.rootUserName", ROOT_USER.into()),
            ("mds.auth.rootPassword", ROOT_PASSWORD.into()),
            // Allocation stops before any ChunkServer's chunk file pool runs dry (capacity.rs).
            (
                "mds.topology.PoolUsagePercentLimit",
                pool_usage_limit_percent(cluster).to_string(),
            ),
            (
                "mds.chunkserver.failure.tolerance",
                chunkserver_failure_tolerance(cluster.spec.chunkservers.disks_per_node).to_string(),
            ),
        ],
        CURVE_DELIMITER,
    )
}

pub fn chunkserver_conf(addresses: &DaemonAddresses) -> String {
    render(
        &[
            ("global.ip", "${POD_IP}".into()),
            ("global.port", "${CURVE_PORT}".into()),
            ("global.external_ip", "${POD_IP}".into()),
            ("mds.listen.addr", addresses.mds.join(",")),
            (
                "chunkserver.common.logDir",
                "/curvebs/chunkserver/logs".into(),
            ),
            // The ChunkServer opens both files at start and aborts when either is missing.
            (
                "curve.config_path",
                format!("/curvebs/chunkserver/conf/{CS_CLIENT_CONF}"),
            ),
            (
                "s3.config_path",
                format!("/curvebs/chunkserver/conf/{S3_CONF}"),
            ),
            // Its Curve client (clone from a Curve volume) authenticates as root.
            ("curve.root_username", ROOT_USER.into()),
            ("curve.root_password", ROOT_PASSWORD.into()),
            // No SnapshotCloneServer, so no clone from S3: without this the ChunkServer starts
            // an S3Adapter (the AWS SDK and its threads) on the image's placeholder s3.conf
            // (src/chunkserver/chunkserver.cpp:576-590; conf/chunkserver.conf:120).
            ("clone.disable_s3_adapter", "true".into()),
        ],
        CURVE_DELIMITER,
    )
}

pub fn cs_client_conf(addresses: &DaemonAddresses) -> String {
    render(
        &[
            ("mds.listen.addr", addresses.mds.join(",")),
            ("global.logPath", "/curvebs/chunkserver/logs".into()),
        ],
        CURVE_DELIMITER,
    )
}

/// tools.conf, read by `curvebs-tool` and `curve_ops_tool` (topology Jobs, admins).
pub fn tools_conf(cluster: &ValidatedCluster, addresses: &DaemonAddresses) -> String {
    render(
        &[
            ("mdsAddr", addresses.mds.join(",")),
            ("mdsDummyPort", cluster.spec.mds.dummy_port.to_string()),
            ("etcdAddr", addresses.etcd.join(",")),
            // No SnapshotCloneServer is deployed: empty, not the image's placeholder.
            ("snapshotCloneAddr", String::new()),
            ("snapshotCloneDummyPort", String::new()),
            // curve_ops_tool exits -1 without them; they must match mds.auth.*.
            ("rootUserName", ROOT_USER.into()),
            ("rootUserPassword", ROOT_PASSWORD.into()),
        ],
        CURVE_DELIMITER,
    )
}
