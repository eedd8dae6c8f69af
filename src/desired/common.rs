//! Pieces every component builder shares: names, labels, metadata, Services, budgets, pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, ExecAction, HTTPGetAction, HostPathVolumeSource, LocalObjectReference,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm,
    PodAntiAffinity, PodSpec, PodTemplateSpec, Probe, SecretKeySelector, Service, ServicePort,
    ServiceSpec, TCPSocketAction, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{AntiAffinityMode, StorageSpec};
use crate::names::{
    Component, LABEL_MANAGED_BY, MANAGER, component_name, labels, root_secret_name, selector_labels,
};
use crate::validate::ValidatedCluster;

/// Where the operator's config files are mounted in the config init container.
const CONFIG_SOURCE_DIR: &str = "/curve-operator/config";
/// The merged config dir, written by the init container and mounted over the image's conf dir.
const CONFIG_OUT_DIR: &str = "/curve-operator/conf";
/// The image's default config of every component (`/curvebs/<role>/conf` is empty in the image).
pub const IMAGE_DEFAULTS_DIR: &str = "/curvebs/conf";
/// Variable the config init container fills `${CURVE_ROOT_PASSWORD}` from.
pub const ROOT_PASSWORD_ENV: &str = "CURVE_ROOT_PASSWORD";
/// Key of the root password in the cluster's root Secret.
pub const ROOT_PASSWORD_KEY: &str = "password";
/// Key of the config-merging script in every component's ConfigMap.
pub const MERGE_SCRIPT_KEY: &str = "merge-config.sh";
pub const MERGE_SCRIPT: &str = include_str!("merge-config.sh");

/// The owner reference to the CurveCluster; none when rendering a file with no uid.
pub fn owner_references(cluster: &ValidatedCluster) -> Option<Vec<OwnerReference>> {
    let uid = cluster.uid.clone()?;
    Some(vec![OwnerReference {
        api_version: format!("{}/{}", crate::api::GROUP, crate::api::VERSION),
        kind: "CurveCluster".to_string(),
        name: cluster.name.clone(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    }])
}

pub fn object_meta(
    cluster: &ValidatedCluster,
    name: String,
    labels: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(cluster.namespace.clone()),
        labels: Some(labels),
        owner_references: owner_references(cluster),
        ..ObjectMeta::default()
    }
}

/// The stable DNS name of a StatefulSet pod behind its headless Service.
pub fn pod_dns_name(cluster: &ValidatedCluster, service: &str, pod: &str) -> String {
    format!("{pod}.{service}.{}.svc", cluster.namespace)
}

/// A headless Service that publishes not-ready pods, so members find each other before they
/// are ready (etcd peers must resolve before quorum exists).
pub fn headless_service(
    cluster: &ValidatedCluster,
    component: Component,
    ports: &[(&str, i32)],
) -> Service {
    Service {
        metadata: object_meta(
            cluster,
            component_name(&cluster.name, component),
            labels(&cluster.name, component),
        ),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(&cluster.name, component)),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port)| ServicePort {
                        name: Some((*name).to_string()),
                        port: *port,
                        target_port: Some(IntOrString::Int(*port)),
                        protocol: Some("TCP".to_string()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// How many pods of a component voluntary disruptions may take down.
pub enum Budget {
    MinAvailable(i32),
    MaxUnavailable(i32),
}

pub fn disruption_budget(
    cluster: &ValidatedCluster,
    component: Component,
    budget: Budget,
) -> PodDisruptionBudget {
    let (min_available, max_unavailable) = match budget {
        Budget::MinAvailable(n) => (Some(IntOrString::Int(n)), None),
        Budget::MaxUnavailable(n) => (None, Some(IntOrString::Int(n))),
    };
    PodDisruptionBudget {
        metadata: object_meta(
            cluster,
            component_name(&cluster.name, component),
            labels(&cluster.name, component),
        ),
        spec: Some(PodDisruptionBudgetSpec {
            min_available,
            max_unavailable,
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&cluster.name, component)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// A component's ConfigMap: its Curve config files plus the script that merges them into the
/// image's defaults.
pub fn config_map(
    cluster: &ValidatedCluster,
    component: Component,
    files: Vec<(String, String)>,
) -> ConfigMap {
    let mut data: BTreeMap<String, String> = files.into_iter().collect();
    data.insert(MERGE_SCRIPT_KEY.to_string(), MERGE_SCRIPT.to_string());
    ConfigMap {
        metadata: object_meta(
            cluster,
            component_name(&cluster.name, component),
            labels(&cluster.name, component),
        ),
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// The Curve role a container runs (`/entrypoint.sh --role=<role>`), which also fixes its
/// directories under `/curvebs/<role>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Etcd,
    Mds,
    ChunkServer,
    /// Curve's command-line tools (`curvebs-tool`, `curve_ops_tool`), run by the topology Jobs.
    Tools,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Etcd => "etcd",
            Role::Mds => "mds",
            Role::ChunkServer => "chunkserver",
            Role::Tools => "tools",
        }
    }
    /// `/curvebs/<role>`: what curveadm's `${prefix}` placeholder stands for.
    pub fn prefix(self) -> String {
        format!("/curvebs/{}", self.as_str())
    }
    pub fn conf_dir(self) -> String {
        format!("/curvebs/{}/conf", self.as_str())
    }
    pub fn log_dir(self) -> String {
        format!("/curvebs/{}/logs", self.as_str())
    }
    pub fn data_dir(self) -> String {
        format!("/curvebs/{}/data", self.as_str())
    }
}

/// The container spec common to every Curve daemon.
pub struct Daemon<'a> {
    pub role: Role,
    /// Arguments after `--args=` (they replace the image's default arguments).
    pub args: Vec<String>,
    pub ports: Vec<(&'a str, i32)>,
    pub readiness: Probe,
    pub liveness: Probe,
    /// Holds liveness back until the daemon first answered (a slow start is not killed).
    pub startup: Option<Probe>,
    /// A shell script run before the image's entrypoint (`exec "$@"` hands over to it); its
    /// refusal, written to the termination log, becomes the container's last message.
    pub start_script: Option<String>,
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
    /// `(file name, delimiter)` of each config file the operator overrides.
    pub config_files: Vec<(&'a str, &'a str)>,
    /// Name of the data volume (a PVC template) to mount at the role's data dir, if any.
    pub data_volume: Option<&'a str>,
    /// Environment beyond the downward-API addresses, for the daemon and its config.
    pub extra_env: Vec<EnvVar>,
    /// Whether its config holds the root password (given to the config init container only).
    pub root_password: bool,
}

/// The image's ENTRYPOINT (docker/Dockerfile), which a start script execs.
pub const IMAGE_ENTRYPOINT: &str = "/entrypoint.sh";
/// `$0` of a start script (`sh -c SCRIPT NAME ARGS...`): the name its messages go by.
pub const START_SCRIPT_NAME: &str = "curve-start";

const CONFIG_SOURCE_VOLUME: &str = "config-source";
/// The emptyDir holding the merged config: written by the config init container.
pub const CONFIG_VOLUME: &str = "conf";
const LOG_VOLUME: &str = "logs";

/// Environment every Curve container gets from the downward API: its own address and name.
pub fn pod_env() -> Vec<EnvVar> {
    let field = |name: &str, path: &str| EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_string(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    vec![
        field("POD_IP", "status.podIP"),
        field("POD_NAME", "metadata.name"),
        field("NODE_NAME", "spec.nodeName"),
    ]
}

pub fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        ..VolumeMount::default()
    }
}

/// `LD_PRELOAD` of Curve's C++ daemons: curveadm and curve-ansible start them on jemalloc, the
/// allocator Curve is tuned and tested with; the image's base layer ships it at this path.
pub fn jemalloc() -> EnvVar {
    EnvVar {
        name: "LD_PRELOAD".to_string(),
        value: Some("/usr/local/lib/libjemalloc.so".to_string()),
        ..EnvVar::default()
    }
}

/// `CURVE_ROOT_PASSWORD` from the cluster's root Secret.
fn root_password_env(cluster: &ValidatedCluster) -> EnvVar {
    EnvVar {
        name: ROOT_PASSWORD_ENV.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: root_secret_name(&cluster.name),
                key: ROOT_PASSWORD_KEY.to_string(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// The daemon's log dir: an emptyDir bounded above what the start script's cleanup keeps
/// ([`super::start::LOG_VOLUME_LIMIT_MIB`]), so the cleanup acts long before the kubelet's
/// eviction for ephemeral storage would.
pub fn log_volume() -> Volume {
    Volume {
        name: LOG_VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity(format!(
                "{}Mi",
                super::start::LOG_VOLUME_LIMIT_MIB
            ))),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// Where a container's cores go when the node's `kernel.core_pattern` is a path under it: the
/// directory curveadm mounts its `core_dir` at and the image creates (docker/Dockerfile).
pub const CORE_DIR: &str = "/core";
const CORE_VOLUME: &str = "cores";

/// The node directory of `spec.coreDumps.hostPath`, when set.
fn core_volume(cluster: &ValidatedCluster) -> Option<Volume> {
    let dir = cluster.spec.core_dumps.host_path.as_ref()?;
    Some(Volume {
        name: CORE_VOLUME.to_string(),
        host_path: Some(HostPathVolumeSource {
            path: dir.clone(),
            type_: Some("DirectoryOrCreate".to_string()),
        }),
        ..Volume::default()
    })
}

/// The volumes of the config init container: the operator's ConfigMap and the merged dir.
pub fn config_volumes(config_map: &str) -> Vec<Volume> {
    vec![
        Volume {
            name: CONFIG_SOURCE_VOLUME.to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.to_string(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        empty_dir(CONFIG_VOLUME),
    ]
}

/// Init container that builds a pod's config dir (the `conf` volume) from the image's
/// defaults and the operator's ConfigMap, as merge-config.sh says. Only this container gets
/// the root password; the daemon reads it from its config file, as Curve expects.
pub fn config_init_container(
    cluster: &ValidatedCluster,
    role: Role,
    files: &[(&str, &str)],
    mut env: Vec<EnvVar>,
    root_password: bool,
) -> Container {
    let mut command = vec![
        "sh".to_string(),
        format!("{CONFIG_SOURCE_DIR}/{MERGE_SCRIPT_KEY}"),
        IMAGE_DEFAULTS_DIR.to_string(),
        CONFIG_OUT_DIR.to_string(),
        role.prefix(),
    ];
    command.extend(
        files
            .iter()
            .map(|(file, delimiter)| format!("{file}:{delimiter}")),
    );
    if root_password {
        env.push(root_password_env(cluster));
    }
    Container {
        name: "config".to_string(),
        image: Some(cluster.spec.image.clone()),
        image_pull_policy: Some(cluster.spec.image_pull_policy.as_str().to_string()),
        command: Some(command),
        env: Some(env),
        volume_mounts: Some(vec![
            mount(CONFIG_SOURCE_VOLUME, CONFIG_SOURCE_DIR),
            mount(CONFIG_VOLUME, CONFIG_OUT_DIR),
        ]),
        // The merge script's complaint (a missing default, a placeholder) becomes the message.
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..Container::default()
    }
}

impl Daemon<'_> {
    fn env(&self) -> Vec<EnvVar> {
        let mut env = pod_env();
        env.extend(self.extra_env.iter().cloned());
        env
    }

    pub fn container(&self, cluster: &ValidatedCluster) -> Container {
        let mut mounts = vec![
            mount(CONFIG_VOLUME, &self.role.conf_dir()),
            mount(LOG_VOLUME, &self.role.log_dir()),
        ];
        if let Some(data) = self.data_volume {
            mounts.push(mount(data, &self.role.data_dir()));
        }
        if cluster.spec.core_dumps.host_path.is_some() {
            mounts.push(mount(CORE_VOLUME, CORE_DIR));
        }
        let command = match &self.start_script {
            Some(script) => vec![
                "sh".to_string(),
                "-c".to_string(),
                script.clone(),
                START_SCRIPT_NAME.to_string(),
                IMAGE_ENTRYPOINT.to_string(),
            ],
            None => vec![IMAGE_ENTRYPOINT.to_string()],
        };
        Container {
            name: self.role.as_str().to_string(),
            image: Some(cluster.spec.image.clone()),
            image_pull_policy: Some(cluster.spec.image_pull_policy.as_str().to_string()),
            command: Some(command),
            startup_probe: self.startup.clone(),
            termination_message_policy: self
                .start_script
                .as_ref()
                .map(|_| "FallbackToLogsOnError".to_string()),
            args: Some(vec![
                format!("--role={}", self.role.as_str()),
                format!("--args={}", self.args.join(" ")),
            ]),
            env: Some(self.env()),
            ports: Some(
                self.ports
                    .iter()
                    .map(|(name, port)| ContainerPort {
                        name: Some((*name).to_string()),
                        container_port: *port,
                        protocol: Some("TCP".to_string()),
                        ..ContainerPort::default()
                    })
                    .collect(),
            ),
            readiness_probe: Some(self.readiness.clone()),
            liveness_probe: Some(self.liveness.clone()),
            resources: self.resources.clone(),
            volume_mounts: Some(mounts),
            ..Container::default()
        }
    }

    /// The pod spec: init containers first (config, then any the component adds), host
    /// networking, anti-affinity and placement from the spec.
    pub fn pod_spec(
        &self,
        cluster: &ValidatedCluster,
        members: &BTreeMap<String, String>,
        extra_init: Vec<Container>,
        config_map: &str,
    ) -> PodSpec {
        let placement = &cluster.spec.placement;
        let mut init_containers = vec![config_init_container(
            cluster,
            self.role,
            &self.config_files,
            self.env(),
            self.root_password,
        )];
        init_containers.extend(extra_init);
        PodSpec {
            host_network: Some(cluster.spec.host_network),
            dns_policy: Some(
                if cluster.spec.host_network {
                    "ClusterFirstWithHostNet"
                } else {
                    "ClusterFirst"
                }
                .to_string(),
            ),
            restart_policy: Some("Always".to_string()),
            init_containers: Some(init_containers),
            containers: vec![self.container(cluster)],
            affinity: Some(anti_affinity(cluster, members)),
            node_selector: (!placement.node_selector.is_empty())
                .then(|| placement.node_selector.clone()),
            tolerations: (!placement.tolerations.is_empty()).then(|| placement.tolerations.clone()),
            image_pull_secrets: (!cluster.spec.image_pull_secrets.is_empty()).then(|| {
                cluster
                    .spec
                    .image_pull_secrets
                    .iter()
                    .map(|name| LocalObjectReference { name: name.clone() })
                    .collect()
            }),
            volumes: Some({
                let mut volumes = config_volumes(config_map);
                volumes.push(log_volume());
                volumes.extend(core_volume(cluster));
                volumes
            }),
            ..PodSpec::default()
        }
    }
}

/// Members of one component never share a topology domain (Required) or avoid it (Preferred).
/// `members` selects the pods kept apart.
pub fn anti_affinity(cluster: &ValidatedCluster, members: &BTreeMap<String, String>) -> Affinity {
    let placement = &cluster.spec.placement;
    let term = PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_labels: Some(members.clone()),
            ..LabelSelector::default()
        }),
        topology_key: placement.topology_key.clone(),
        ..PodAffinityTerm::default()
    };
    let anti = match placement.anti_affinity {
        AntiAffinityMode::Required => PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![term]),
            ..PodAntiAffinity::default()
        },
        AntiAffinityMode::Preferred => PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: term,
                },
            ]),
            ..PodAntiAffinity::default()
        },
    };
    Affinity {
        pod_anti_affinity: Some(anti),
        ..Affinity::default()
    }
}

pub fn http_probe(path: &str, port: i32, initial_delay: i32, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::Int(port),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// A probe running `script` with `sh -c` in the container (with the container's environment).
pub fn exec_probe(script: &str, initial_delay: i32, period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec!["sh".to_string(), "-c".to_string(), script.to_string()]),
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

pub fn tcp_probe(port: i32, initial_delay: i32, period: i32, failures: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(port),
            ..TCPSocketAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// A ReadWriteOnce volume claim template.
pub fn volume_claim_template(
    name: &str,
    storage: &StorageSpec,
    labels: BTreeMap<String, String>,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_string()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// A StatefulSet running `pod_spec` behind the component's headless Service.
pub struct StatefulSetParts<'a> {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub selector: BTreeMap<String, String>,
    pub replicas: i32,
    pub service_name: String,
    pub pod_spec: PodSpec,
    pub volume_claims: Vec<PersistentVolumeClaim>,
    /// `Parallel` for etcd: every member must start before any can become ready.
    pub pod_management_policy: &'static str,
    /// The ConfigMap the pods read: its hash in the pod template rolls the pods when it changes.
    pub config: &'a ConfigMap,
}

/// Annotation on pod templates holding the hash of the config they were built with.
pub const CONFIG_HASH_ANNOTATION: &str = "curve.opencurve.io/config-hash";

/// A stable hash (FNV-1a, 64 bit) of a ConfigMap's data: unchanged config, unchanged template.
pub fn config_hash(config: &ConfigMap) -> String {
    let bytes = config
        .data
        .iter()
        .flatten()
        .flat_map(|(key, value)| key.bytes().chain([0]).chain(value.bytes()).chain([0]));
    format!("{:016x}", crate::util::fnv64(bytes))
}

pub fn stateful_set(cluster: &ValidatedCluster, parts: StatefulSetParts<'_>) -> StatefulSet {
    let mut pod_labels = parts.selector.clone();
    pod_labels.insert(LABEL_MANAGED_BY.to_string(), MANAGER.to_string());
    StatefulSet {
        metadata: object_meta(cluster, parts.name, parts.labels),
        spec: Some(StatefulSetSpec {
            replicas: Some(parts.replicas),
            service_name: Some(parts.service_name),
            pod_management_policy: Some(parts.pod_management_policy.to_string()),
            selector: LabelSelector {
                match_labels: Some(parts.selector),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_string(),
                        config_hash(parts.config),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(parts.pod_spec),
            },
            volume_claim_templates: (!parts.volume_claims.is_empty())
                .then_some(parts.volume_claims),
            // The operator replaces pods (reconcile/roll.rs): in tier order, by role, only
            // while Curve is healthy. The StatefulSet controller only recreates what it deletes.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_string()),
                rolling_update: None,
            }),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}
