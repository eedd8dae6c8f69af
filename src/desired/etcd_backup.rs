//! `spec.etcd.backup` → the backup claim and the Job of one snapshot. Pure.
//!
//! The snapshot is taken by a Job with the etcd tooling the Curve image ships
//! (`/curvebs/etcd/sbin/etcdctl`, etcd v3.4.10: curve@v1.2.6 `util/install.sh` l.20), not by the
//! operator through its etcd client: Curve's database grows to gigabytes (the quota may be up
//! to 8Gi), the operator's memory must stay small, and the backup claim is mounted in a pod,
//! not in the operator. The script is `etcd-backup.sh`; the reconciler reads its one-line
//! result from the termination message (reconcile/backup.rs).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PersistentVolumeClaim,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, SecretKeySelector, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::common::{mount, object_meta, pod_dns_name, volume_claim_template};
use super::jobs::one_shot_pod_spec;
use crate::api::{EtcdBackupS3, EtcdBackupSpec};
use crate::names::{
    Component, LABEL_BACKUP_JOB, component_name, etcd_backup_claim_name, etcd_backup_labels,
};
use crate::s3::upload::{ACCESS_KEY_ENV, SECRET_KEY_ENV};
use crate::validate::ValidatedCluster;

/// The script of every backup Job.
pub const SCRIPT: &str = concat!(
    include_str!("snapshot-sha256.sh"),
    include_str!("etcd-backup.sh")
);
/// The check of a snapshot file's trailing SHA-256, shared with the restore's verification.
pub const SNAPSHOT_SHA256: &str = include_str!("snapshot-sha256.sh");
/// Where the Job mounts the backup claim; snapshots are in its `snapshots/`.
pub const BACKUP_DIR: &str = "/backup";
pub const SNAPSHOTS_DIR: &str = "snapshots";
const VOLUME: &str = "backup";
/// The snapshot step's container (the Job's only one without a bucket).
pub const CONTAINER: &str = "backup";
/// The bucket copy's container: it ends last, so its termination message is the result.
pub const UPLOAD_CONTAINER: &str = "upload";
/// Where the snapshot step leaves its result line for the copy step.
const RESULT_VOLUME: &str = "result";
const RESULT_DIR: &str = "/result";
const RESULT_FILE: &str = "snapshot.json";
const TERMINATION_LOG: &str = "/dev/termination-log";
/// A snapshot of the largest database (8Gi) at a slow 10 MiB/s takes under 15 minutes; past an
/// hour something hangs, and the Job fails with DeadlineExceeded.
pub const DEADLINE_SECONDS: i64 = 3600;
/// Retries of a failed snapshot (the Job's own backoff spaces them: 10 s, 20 s).
pub const BACKOFF_LIMIT: i32 = 2;
/// The operator deletes a finished Job once its result is in the status; this only cleans up
/// after an operator that was away for a day.
pub const TTL_SECONDS: i32 = 86400;

/// The member a snapshot is taken from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRun {
    pub job: String,
    /// The member's name (its pod's).
    pub member: String,
    /// The operator's image, which makes the bucket copy (`spec.etcd.backup.s3`); without it
    /// the Job only takes the snapshot.
    pub uploader_image: Option<String>,
}

/// The claim `<cluster>-etcd-backup`. No owner reference: the snapshots outlive the
/// CurveCluster unless `spec.cleanup` deletes its data (its labels are the cluster's, which
/// that deletion selects).
pub fn claim(cluster: &ValidatedCluster, backup: &EtcdBackupSpec) -> PersistentVolumeClaim {
    let name = etcd_backup_claim_name(&cluster.name);
    let mut claim =
        volume_claim_template(&name, &backup.storage, etcd_backup_labels(&cluster.name));
    claim.metadata.namespace = Some(cluster.namespace.clone());
    claim
}

/// The member's client URL, by its stable DNS name.
pub fn member_url(cluster: &ValidatedCluster, member: &str) -> String {
    let service = component_name(&cluster.name, Component::Etcd);
    format!(
        "http://{}:{}",
        pod_dns_name(cluster, &service, member),
        cluster.spec.etcd.client_port
    )
}

/// The Job taking one snapshot from `run.member` onto the backup claim. With a bucket, the
/// snapshot step is an init container and the copy (`curve-operator s3-upload`) the container:
/// the copy starts only once the snapshot verified, and the container that ends last holds the
/// Job's one result.
pub fn job(cluster: &ValidatedCluster, backup: &EtcdBackupSpec, run: &BackupRun) -> Job {
    let mut labels = etcd_backup_labels(&cluster.name);
    let mut pod_labels = labels.clone();
    pod_labels.insert(LABEL_BACKUP_JOB.to_string(), run.job.clone());
    labels.insert(LABEL_BACKUP_JOB.to_string(), run.job.clone());
    let spec = &cluster.spec;
    let mut vars = vec![
        env("CURVE_BACKUP_ENDPOINT", member_url(cluster, &run.member)),
        env("CURVE_BACKUP_MEMBER", run.member.clone()),
        env("CURVE_BACKUP_KEEP", backup.keep.to_string()),
    ];
    let mut volumes = vec![Volume {
        name: VOLUME.to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: etcd_backup_claim_name(&cluster.name),
            read_only: None,
        }),
        ..Volume::default()
    }];
    let mut snapshot = Container {
        name: CONTAINER.to_string(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().to_string()),
        command: Some(vec!["sh".into(), "-c".into(), SCRIPT.to_string()]),
        volume_mounts: Some(vec![mount(VOLUME, BACKUP_DIR)]),
        // The script writes its result there; a crash leaves the log's end.
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..Container::default()
    };
    let upload = (backup.s3.as_ref()).zip(run.uploader_image.as_deref());
    let (init_containers, containers) = match upload {
        None => {
            snapshot.env = Some(vars);
            (None, vec![snapshot])
        }
        Some((s3, image)) => {
            vars.push(env(
                "CURVE_BACKUP_RESULT",
                format!("{RESULT_DIR}/{RESULT_FILE}"),
            ));
            snapshot.env = Some(vars);
            let result_mount = mount(RESULT_VOLUME, RESULT_DIR);
            snapshot.volume_mounts = Some(vec![mount(VOLUME, BACKUP_DIR), result_mount.clone()]);
            volumes.push(Volume {
                name: RESULT_VOLUME.to_string(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            });
            let upload = upload_container(cluster, backup, s3, image, result_mount);
            (Some(vec![snapshot]), vec![upload])
        }
    };
    Job {
        metadata: object_meta(cluster, run.job.clone(), labels),
        spec: Some(JobSpec {
            backoff_limit: Some(BACKOFF_LIMIT),
            active_deadline_seconds: Some(DEADLINE_SECONDS),
            ttl_seconds_after_finished: Some(TTL_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    init_containers,
                    containers,
                    volumes: Some(volumes),
                    ..one_shot_pod_spec(cluster)
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

fn env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value),
        ..EnvVar::default()
    }
}

/// The copy step: the operator's image (distroless, no shell) running `s3-upload`, the
/// credentials from the Secret. Its keys are optional so that a missing Secret or key fails
/// the step at once with a reason naming them, instead of a pod that never starts.
fn upload_container(
    cluster: &ValidatedCluster,
    backup: &EtcdBackupSpec,
    s3: &EtcdBackupS3,
    image: &str,
    result_mount: VolumeMount,
) -> Container {
    let secret_env = |key: &str| EnvVar {
        name: key.to_string(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: s3.credentials_secret.clone(),
                key: key.to_string(),
                optional: Some(true),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let arg = |name: &str, value: &str| format!("--{name}={value}");
    Container {
        name: UPLOAD_CONTAINER.to_string(),
        image: Some(image.to_string()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        args: Some(vec![
            "s3-upload".to_string(),
            arg("endpoint", &s3.endpoint),
            arg("bucket", &s3.bucket),
            arg("prefix", &s3.prefix_for(&cluster.namespace, &cluster.name)),
            arg("region", &s3.region),
            arg("keep", &backup.keep.to_string()),
            arg("snapshot-result", &format!("{RESULT_DIR}/{RESULT_FILE}")),
            arg("snapshots-dir", &format!("{BACKUP_DIR}/{SNAPSHOTS_DIR}")),
            arg("credentials-secret", &s3.credentials_secret),
            // The container's terminationMessagePath (Kubernetes' default), said outright.
            arg("termination-log", TERMINATION_LOG),
        ]),
        env: Some(vec![secret_env(ACCESS_KEY_ENV), secret_env(SECRET_KEY_ENV)]),
        volume_mounts: Some(vec![
            VolumeMount {
                read_only: Some(true),
                ..mount(VOLUME, BACKUP_DIR)
            },
            result_mount,
        ]),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..Container::default()
    }
}

/// The environment of a run, as the Job sets it (for tests that run [`SCRIPT`] themselves).
pub fn script_env(
    cluster: &ValidatedCluster,
    backup: &EtcdBackupSpec,
    run: &BackupRun,
) -> BTreeMap<String, String> {
    let job = job(cluster, backup, run);
    let container = (job.spec.and_then(|s| s.template.spec))
        .and_then(|s| {
            (s.init_containers.into_iter().flatten())
                .chain(s.containers)
                .next()
        })
        .unwrap_or_default();
    (container.env.into_iter().flatten())
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::validate::tests::minimal;
    use crate::validate::{parse_cluster, validate};

    fn cluster() -> ValidatedCluster {
        let mut value = minimal();
        crate::util::merge_json(
            &mut value,
            &json!({"spec": {"etcd": {"backup": {"schedule": "0 3 * * *", "keep": 5, "storage": {"size": "30Gi", "storageClassName": "fast"}}},
                    "placement": {"nodeSelector": {"disk": "ssd"}}}}),
        );
        validate(&parse_cluster(&value).unwrap(), "ns").unwrap()
    }

    #[test]
    fn the_claim_is_the_clusters_without_an_owner() {
        let cluster = cluster();
        let backup = cluster.spec.etcd.backup.clone().unwrap();
        let claim = serde_json::to_value(claim(&cluster, &backup)).unwrap();
        let name = cluster.name.clone();
        assert_eq!(
            claim,
            json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": format!("{name}-etcd-backup"), "namespace": "curve", "labels": {
                    "app.kubernetes.io/name": "curve", "app.kubernetes.io/instance": name,
                    "app.kubernetes.io/component": "etcd-backup", "app.kubernetes.io/managed-by": "curve-operator"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                         "resources": {"requests": {"storage": "30Gi"}}}
            })
        );
    }

    #[test]
    fn the_job_runs_the_script_on_the_claim_against_the_chosen_member() {
        let cluster = cluster();
        let backup = cluster.spec.etcd.backup.clone().unwrap();
        let name = cluster.name.clone();
        let run = BackupRun {
            job: format!("{name}-etcd-backup-20261207-0300"),
            member: format!("{name}-etcd-1"),
            uploader_image: Some("opencurvedocker/curve-operator:0.1.0".into()),
        };
        let mut job = serde_json::to_value(job(&cluster, &backup, &run)).unwrap();
        // The owner reference is every object's (tested with object_meta).
        job["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        let labels = json!({"app.kubernetes.io/name": "curve", "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": "etcd-backup", "app.kubernetes.io/managed-by": "curve-operator",
            "curve.opencurve.io/backup-job": run.job});
        assert_eq!(
            job,
            json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": run.job, "namespace": "curve", "labels": labels},
                "spec": {
                    "backoffLimit": 2, "activeDeadlineSeconds": 3600, "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never", "hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet",
                            "nodeSelector": {"disk": "ssd"},
                            "containers": [{
                                "name": "backup", "image": cluster.spec.image, "imagePullPolicy": "IfNotPresent",
                                "command": ["sh", "-c", SCRIPT],
                                "env": [
                                    {"name": "CURVE_BACKUP_ENDPOINT", "value": format!("http://{name}-etcd-1.{name}-etcd.curve.svc:2379")},
                                    {"name": "CURVE_BACKUP_MEMBER", "value": format!("{name}-etcd-1")},
                                    {"name": "CURVE_BACKUP_KEEP", "value": "5"}
                                ],
                                "volumeMounts": [{"name": "backup", "mountPath": "/backup"}],
                                "terminationMessagePolicy": "FallbackToLogsOnError"
                            }],
                            "volumes": [{"name": "backup", "persistentVolumeClaim": {"claimName": format!("{name}-etcd-backup")}}]
                        }
                    }
                }
            })
        );
        assert_eq!(
            script_env(&cluster, &backup, &run)["CURVE_BACKUP_KEEP"],
            "5"
        );
    }

    #[test]
    fn with_a_bucket_the_snapshot_is_an_init_step_and_the_copy_runs_the_operator_image() {
        let mut value = minimal();
        crate::util::merge_json(
            &mut value,
            &json!({"spec": {"etcd": {"backup": {"schedule": "@daily", "keep": 4, "s3": {
                "endpoint": "https://s3.eu-west-1.amazonaws.com", "bucket": "curve-backups",
                "region": "eu-west-1", "credentialsSecret": "s3-keys"}}}}}),
        );
        let cluster = validate(&parse_cluster(&value).unwrap(), "ns").unwrap();
        let backup = cluster.spec.etcd.backup.clone().unwrap();
        let name = cluster.name.clone();
        let run = BackupRun {
            job: format!("{name}-etcd-backup-20261207-0000"),
            member: format!("{name}-etcd-0"),
            uploader_image: Some("registry.local/curve-operator:0.1.0".into()),
        };
        let job = serde_json::to_value(job(&cluster, &backup, &run)).unwrap();
        let pod = &job["spec"]["template"]["spec"];
        let secret = |key: &str| json!({"name": key, "valueFrom": {"secretKeyRef": {"name": "s3-keys", "key": key, "optional": true}}});
        assert_eq!(
            pod["initContainers"],
            json!([{
                "name": "backup", "image": cluster.spec.image, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", SCRIPT],
                "env": [
                    {"name": "CURVE_BACKUP_ENDPOINT", "value": format!("http://{name}-etcd-0.{name}-etcd.curve.svc:2379")},
                    {"name": "CURVE_BACKUP_MEMBER", "value": format!("{name}-etcd-0")},
                    {"name": "CURVE_BACKUP_KEEP", "value": "4"},
                    {"name": "CURVE_BACKUP_RESULT", "value": "/result/snapshot.json"}
                ],
                "volumeMounts": [{"name": "backup", "mountPath": "/backup"}, {"name": "result", "mountPath": "/result"}],
                "terminationMessagePolicy": "FallbackToLogsOnError"
            }])
        );
        assert_eq!(
            pod["containers"],
            json!([{
                "name": "upload", "image": "registry.local/curve-operator:0.1.0", "imagePullPolicy": "IfNotPresent",
                "args": ["s3-upload", "--endpoint=https://s3.eu-west-1.amazonaws.com", "--bucket=curve-backups",
                    "--prefix=curve/{name}/".replace("{name}", &name), "--region=eu-west-1", "--keep=4",
                    "--snapshot-result=/result/snapshot.json", "--snapshots-dir=/backup/snapshots",
                    "--credentials-secret=s3-keys", "--termination-log=/dev/termination-log"],
                "env": [secret("AWS_ACCESS_KEY_ID"), secret("AWS_SECRET_ACCESS_KEY")],
                "volumeMounts": [{"name": "backup", "mountPath": "/backup", "readOnly": true}, {"name": "result", "mountPath": "/result"}],
                "terminationMessagePolicy": "FallbackToLogsOnError"
            }])
        );
        assert_eq!(
            pod["volumes"],
            json!([{"name": "backup", "persistentVolumeClaim": {"claimName": format!("{name}-etcd-backup")}},
                   {"name": "result", "emptyDir": {}}])
        );
        // The script sees the result file as the Job sets it.
        assert_eq!(
            script_env(&cluster, &backup, &run)["CURVE_BACKUP_RESULT"],
            "/result/snapshot.json"
        );
    }
}
