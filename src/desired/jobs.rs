//! Jobs that shape Curve's topology with Curve's own tools: the physical pool, the check that
//! every ChunkServer is online, and the logical pool.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, KeyToPath, PodSpec, PodTemplateSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::common::{
    CONFIG_VOLUME, Role, config_init_container, config_volumes, mount, object_meta, pod_env,
};
use super::config::{CURVE_DELIMITER, TOOLS_CONF};
use super::topology::{ClusterMap, SERVERS_HASH, TOPOLOGY_DIR, TOPOLOGY_JSON, TOPOLOGY_VOLUME};
use crate::names::{
    Component, LABEL_STEP, TopologyStep, component_name, labels, topology_job_name,
};
use crate::validate::ValidatedCluster;

/// The Job of a topology step for this cluster map.
pub fn job_name(cluster: &ValidatedCluster, step: TopologyStep, map: &ClusterMap) -> String {
    topology_job_name(&cluster.name, step, &map.servers_hash())
}

/// The dir of `/etc/curve/tools.conf`, the tools' default `-confPath`.
const TOOLS_CONF_DIR: &str = "/etc/curve";
const TOOL: &str = "/curvebs/tools/sbin/curvebs-tool";
const OPS_TOOL: &str = "/curvebs/tools/sbin/curve_ops_tool";

/// The shell command of a step. The pool steps read the map from the topology ConfigMap as a
/// file, never from the environment: one environment string or argument may hold 128 KiB at
/// most (Linux's MAX_ARG_STRLEN; exec fails with E2BIG), about 540 servers of map. The
/// physical pool first checks the mounted map is the one the Job was made for (`servers_hash`,
/// which names the Job): a Job of an older map fails instead of applying a newer one and being
/// recorded as having applied its own; the Job of the newer map does the work.
pub fn step_script(step: TopologyStep, expected_chunkservers: i32, servers_hash: &str) -> String {
    let map = format!("{TOPOLOGY_DIR}/{TOPOLOGY_JSON}");
    match step {
        TopologyStep::PhysicalPool => format!(
            "set -e\nmounted=$(cat {TOPOLOGY_DIR}/{SERVERS_HASH})\n\
             if [ \"$mounted\" != {servers_hash} ]; then\n  \
             echo \"the mounted cluster map has servers hash $mounted; this Job is for {servers_hash} and applies no other map\"\n  \
             exit 1\n\
             fi\n\
             {TOOL} -op=create_physicalpool -cluster_map={map}\n"
        ),
        TopologyStep::LogicalPool => {
            format!("set -e\n{TOOL} -op=create_logicalpool -cluster_map={map}\n")
        }
        // Online as Curve's MDS sees it, not as the kubelet does; the Job fails (and is retried
        // with the Job's backoff) until every ChunkServer has registered and is online.
        TopologyStep::ChunkServersOnline => format!(
            "set -e\nout=$({OPS_TOOL} chunkserver-status)\necho \"$out\"\n\
             echo \"$out\" | grep -Eq 'online *= *{expected_chunkservers}([^0-9]|$)'\n"
        ),
    }
}

/// The map (and its servers hash) of the topology ConfigMap, for the pool steps; the online
/// check needs none.
fn map_volume(cluster: &ValidatedCluster, step: TopologyStep) -> Option<Volume> {
    let item = |key: &str| KeyToPath {
        key: key.to_string(),
        path: key.to_string(),
        ..KeyToPath::default()
    };
    (step != TopologyStep::ChunkServersOnline).then(|| Volume {
        name: TOPOLOGY_VOLUME.to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: component_name(&cluster.name, Component::Topology),
            items: Some(vec![item(TOPOLOGY_JSON), item(SERVERS_HASH)]),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    })
}

pub fn build(cluster: &ValidatedCluster, step: TopologyStep, map: &ClusterMap) -> Job {
    let spec = &cluster.spec;
    let expected = spec.chunkservers.replicas * spec.chunkservers.disks_per_node;
    let mut job_labels = labels(&cluster.name, Component::Topology);
    job_labels.insert(LABEL_STEP.to_string(), step.as_str().to_string());
    tool_job(
        cluster,
        ToolRun {
            name: job_name(cluster, step, map),
            labels: job_labels,
            container: step.as_str(),
            script: step_script(step, expected, &map.servers_hash()),
            map: map_volume(cluster, step),
        },
    )
}

/// How long one topology Job may run, retries included: each step is a few RPCs, and the
/// ChunkServers-online wait is bounded by the script itself.
pub const TOOL_JOB_DEADLINE_SECONDS: i64 = 600;

/// One run of Curve's tools in a Job.
struct ToolRun<'a> {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    container: &'a str,
    script: String,
    /// A ConfigMap volume the tool reads, mounted at [`TOPOLOGY_DIR`].
    map: Option<Volume>,
}

/// What every Job's pod shares: run once, on the cluster's network and nodes.
pub fn one_shot_pod_spec(cluster: &ValidatedCluster) -> PodSpec {
    let spec = &cluster.spec;
    PodSpec {
        restart_policy: Some("Never".to_string()),
        host_network: Some(spec.host_network),
        dns_policy: Some(
            if spec.host_network {
                "ClusterFirstWithHostNet"
            } else {
                "ClusterFirst"
            }
            .to_string(),
        ),
        node_selector: (!spec.placement.node_selector.is_empty())
            .then(|| spec.placement.node_selector.clone()),
        tolerations: (!spec.placement.tolerations.is_empty())
            .then(|| spec.placement.tolerations.clone()),
        ..PodSpec::default()
    }
}

fn tool_job(cluster: &ValidatedCluster, run: ToolRun<'_>) -> Job {
    let spec = &cluster.spec;
    let job_labels = run.labels;
    let topology_config = component_name(&cluster.name, Component::Topology);
    // Where curvebs-tool and curve_ops_tool read their config by default.
    let mut mounts = vec![mount(CONFIG_VOLUME, TOOLS_CONF_DIR)];
    let mut volumes = config_volumes(&topology_config);
    if let Some(map) = run.map {
        mounts.push(VolumeMount {
            read_only: Some(true),
            ..mount(&map.name, TOPOLOGY_DIR)
        });
        volumes.push(map);
    }
    Job {
        metadata: object_meta(cluster, run.name, job_labels.clone()),
        spec: Some(JobSpec {
            // The Job's own exponential backoff (10 s, 20 s, 40 s, ...) spaces the retries.
            backoff_limit: Some(6),
            // Curve's tools can wait for ever: `CreateLogicalPool` is sent with no RPC timeout
            // and `ScanLogicalPool` loops until the pool shows (tools/curvefsTool.cpp). Past
            // this the Job fails with DeadlineExceeded, which the status names, and the
            // operator starts a new one.
            active_deadline_seconds: Some(TOOL_JOB_DEADLINE_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(job_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    // tools.conf is built like every daemon's config: the image's default with
                    // the operator's keys and the root password filled in.
                    init_containers: Some(vec![config_init_container(
                        cluster,
                        Role::Tools,
                        &[(TOOLS_CONF, CURVE_DELIMITER)],
                        pod_env(),
                        true,
                    )]),
                    containers: vec![Container {
                        name: run.container.to_string(),
                        image: Some(spec.image.clone()),
                        image_pull_policy: Some(spec.image_pull_policy.as_str().to_string()),
                        command: Some(vec!["sh".into(), "-c".into(), run.script]),
                        volume_mounts: Some(mounts),
                        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
                        ..Container::default()
                    }],
                    volumes: Some(volumes),
                    ..one_shot_pod_spec(cluster)
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}
