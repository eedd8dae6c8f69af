//! The Jobs of an etcd restore (reconcile/restore.rs): one verifies the snapshot, one rebuilds
//! member 0's data from it. Both run the etcdctl the Curve image ships
//! (`/curvebs/etcd/sbin/etcdctl`, etcd v3.4.10: curve@v1.2.6 `util/install.sh` l.20) with a
//! plain `sh`; the scripts are rendered by [`verify_script`] and [`restore_script`], which the
//! real-etcd tests run on host paths ([`ScriptPaths`]).
//!
//! Only member 0 is restored: its Job mounts the backup claim and member 0's data claim, so it
//! schedules wherever both can attach; the other members rejoin empty, one at a time, through the
//! operator's membership growth. Restoring every member would need the (ReadWriteOnce) backup
//! claim on every member's node, which local volumes never allow.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::common::{Role, object_meta};
use super::config::etcd_peer_url;
use crate::names::{
    Component, ETCD_RESTORE, IMAGE_ETCDCTL, LABEL_COMPONENT, component_name,
    etcd_backup_claim_name, labels,
};
use crate::validate::ValidatedCluster;

/// Where the Jobs mount the backup claim.
pub const BACKUP_MOUNT: &str = "/backup";
/// How long a restore Job may run: `snapshot restore` rewrites the database (8 GiB at most,
/// the quota's ceiling) and the WAL.
pub const RESTORE_JOB_DEADLINE_SECONDS: i64 = 1800;

const BACKUP_VOLUME: &str = "backup";
const DATA_VOLUME: &str = "data";

/// The data claim of an etcd member (the StatefulSet's claim template `data`).
pub fn member_claim_name(cluster: &str, ordinal: i32) -> String {
    format!(
        "{}-{}-{ordinal}",
        super::etcd::DATA_VOLUME,
        component_name(cluster, Component::Etcd)
    )
}

/// The restore's two Jobs, named for the restore's start (`started` in seconds), so a new
/// request never finds an old request's Job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreJob {
    Verify,
    Restore,
}

impl RestoreJob {
    pub fn name(self, cluster: &str, started: i64) -> String {
        let kind = match self {
            RestoreJob::Verify => "verify",
            RestoreJob::Restore => "restore",
        };
        format!(
            "{}-{kind}-{started}",
            component_name(cluster, Component::Etcd)
        )
    }
}

/// Where a script finds things: the image's paths in a Job, host paths in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptPaths {
    pub etcdctl: String,
    /// The backup claim's root (snapshots are under `snapshots/`).
    pub backup: String,
    /// Member 0's data dir (etcd's `data-dir`; its `wal-dir` is `<data>/wal`).
    pub data: String,
    pub termination_log: String,
}

impl ScriptPaths {
    pub fn image() -> Self {
        ScriptPaths {
            etcdctl: IMAGE_ETCDCTL.into(),
            backup: BACKUP_MOUNT.into(),
            data: Role::Etcd.data_dir(),
            termination_log: "/dev/termination-log".into(),
        }
    }
}

/// What member 0 is rebuilt as: a one-member cluster of that name and peer URL, with a new
/// cluster token (so no member of the lost cluster can join it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreTarget {
    pub snapshot: String,
    pub member: String,
    pub peer_url: String,
    pub cluster_token: String,
}

/// The snapshot checked against the `.json` the backup wrote after verifying it: the file
/// must exist, and `etcdctl snapshot status` of the `.db` must report the same hash, revision
/// and key count. Any difference fails the script with the reason in the termination log.
fn verify_steps(snapshot: &str, paths: &ScriptPaths) -> String {
    let ScriptPaths {
        etcdctl,
        backup,
        termination_log,
        ..
    } = paths;
    format!(
        r#"set -u
fail() {{ echo "$*" | tee {termination_log} >&2; exit 1; }}
field() {{ tr -d ' \t\r\n' | sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p"; }}
snap={backup}/snapshots/{snapshot}
[ -f "$snap.json" ] || fail "snapshot {snapshot}: $snap.json is missing: the snapshot was never verified, so it is never used"
[ -f "$snap.db" ] || fail "snapshot {snapshot}: $snap.db is missing"
{sha256}wrong=$(snapshot_sha256_mismatch "$snap.db")
[ -z "$wrong" ] || fail "snapshot {snapshot}: $snap.db does not match its SHA-256 ($wrong): the file changed after it was written, so it is never used"
status=$(ETCDCTL_API=3 {etcdctl} snapshot status "$snap.db" -w json 2>&1) || fail "snapshot {snapshot}: etcdctl snapshot status refuses $snap.db: $status"
for key in hash revision totalKey; do
  want=$(field $key < "$snap.json")
  got=$(echo "$status" | field $key)
  [ -n "$want" ] || fail "snapshot {snapshot}: $snap.json has no $key"
  [ "$got" = "$want" ] || fail "snapshot {snapshot}: $key is ${{got:-unreadable}} but $snap.json recorded $want: the file changed after it was verified, so it is never used"
done
"#,
        sha256 = super::etcd_backup::SNAPSHOT_SHA256
    )
}

/// The verify Job's script.
pub fn verify_script(snapshot: &str, paths: &ScriptPaths) -> String {
    format!(
        "{}echo \"snapshot {snapshot} verified: revision $(echo \"$status\" | field revision), $(echo \"$status\" | field totalKey) keys\" | tee {}\n",
        verify_steps(snapshot, paths),
        paths.termination_log
    )
}

/// The restore Job's script: verifies again (the file may have changed since), restores into
/// a directory beside the data, and only then replaces the data dir's content (its
/// `lost+found` aside) with it, so a failure midway leaves no half-restored member.
pub fn restore_script(target: &RestoreTarget, paths: &ScriptPaths) -> String {
    let RestoreTarget {
        snapshot,
        member,
        peer_url,
        cluster_token,
    } = target;
    let ScriptPaths { etcdctl, data, .. } = paths;
    format!(
        r#"{verify}data={data}
tmp=$data/.restore-{snapshot}
rm -rf "$tmp" "$tmp.err"
ETCDCTL_API=3 {etcdctl} snapshot restore "$snap.db" --name {member} --initial-cluster {member}={peer_url} --initial-cluster-token {cluster_token} --initial-advertise-peer-urls {peer_url} --data-dir "$tmp" --wal-dir "$tmp/wal" >"$tmp.err" 2>&1 || fail "snapshot {snapshot}: etcdctl snapshot restore failed: $(tail -n 3 "$tmp.err")"
for old in "$data"/* "$data"/.[!.]*; do
  case "$old" in "$tmp"|"$tmp.err"|"$data/lost+found") ;; *) if [ -e "$old" ]; then rm -rf "$old"; fi ;; esac
done
mv "$tmp/member" "$data/member" && mv "$tmp/wal" "$data/wal" && rm -rf "$tmp" "$tmp.err" || fail "snapshot {snapshot}: could not move the restored data into $data"
echo "member {member} restored from snapshot {snapshot} (revision $(echo "$status" | field revision))"
"#,
        verify = verify_steps(snapshot, paths),
    )
}

/// The restore's rebuilt member 0.
pub fn restore_target(cluster: &ValidatedCluster, snapshot: &str, token: &str) -> RestoreTarget {
    let member = format!("{}-0", component_name(&cluster.name, Component::Etcd));
    RestoreTarget {
        snapshot: snapshot.to_string(),
        peer_url: etcd_peer_url(cluster, &member),
        member,
        cluster_token: token.to_string(),
    }
}

/// The cluster token of a cluster rebuilt by the restore that started at `started` (seconds):
/// the rendered etcd.conf's token with the restore's time, new for every restore.
pub fn restore_cluster_token(cluster: &ValidatedCluster, started: i64) -> String {
    format!(
        "{}-{}-restore-{started}",
        cluster.namespace,
        component_name(&cluster.name, Component::Etcd)
    )
}

fn claim_volume(name: &str, claim: String, read_only: bool) -> Volume {
    Volume {
        name: name.to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim,
            read_only: Some(read_only),
        }),
        ..Volume::default()
    }
}

fn restore_labels(cluster: &ValidatedCluster) -> BTreeMap<String, String> {
    let mut labels = labels(&cluster.name, Component::Etcd);
    labels.insert(LABEL_COMPONENT.to_string(), ETCD_RESTORE.to_string());
    labels
}

/// One of the restore's Jobs. `target` is member 0 as the restore rebuilds it.
pub fn build(
    cluster: &ValidatedCluster,
    job: RestoreJob,
    started: i64,
    target: &RestoreTarget,
) -> Job {
    let spec = &cluster.spec;
    let paths = ScriptPaths::image();
    let mut volumes = vec![claim_volume(
        BACKUP_VOLUME,
        etcd_backup_claim_name(&cluster.name),
        job == RestoreJob::Verify,
    )];
    let mut mounts = vec![VolumeMount {
        read_only: Some(job == RestoreJob::Verify),
        ..super::common::mount(BACKUP_VOLUME, BACKUP_MOUNT)
    }];
    let script = match job {
        RestoreJob::Verify => verify_script(&target.snapshot, &paths),
        RestoreJob::Restore => {
            volumes.push(claim_volume(
                DATA_VOLUME,
                member_claim_name(&cluster.name, 0),
                false,
            ));
            mounts.push(super::common::mount(DATA_VOLUME, &paths.data));
            restore_script(target, &paths)
        }
    };
    let job_labels = restore_labels(cluster);
    Job {
        metadata: object_meta(
            cluster,
            job.name(&cluster.name, started),
            job_labels.clone(),
        ),
        spec: Some(JobSpec {
            // A failed verification or restore is final: the status says why, and a new
            // request (another snapshot, or the request removed and made again) starts over.
            backoff_limit: Some(0),
            active_deadline_seconds: Some(RESTORE_JOB_DEADLINE_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(job_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_string()),
                    // The scripts read files and run etcdctl offline: no API access.
                    automount_service_account_token: Some(false),
                    node_selector: (!spec.placement.node_selector.is_empty())
                        .then(|| spec.placement.node_selector.clone()),
                    tolerations: (!spec.placement.tolerations.is_empty())
                        .then(|| spec.placement.tolerations.clone()),
                    containers: vec![Container {
                        name: match job {
                            RestoreJob::Verify => "verify".into(),
                            RestoreJob::Restore => "restore".into(),
                        },
                        image: Some(spec.image.clone()),
                        image_pull_policy: Some(spec.image_pull_policy.as_str().to_string()),
                        command: Some(vec!["sh".into(), "-c".into(), script]),
                        env: Some(vec![EnvVar {
                            name: "ETCDCTL_API".into(),
                            value: Some("3".into()),
                            ..EnvVar::default()
                        }]),
                        volume_mounts: Some(mounts),
                        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
                        ..Container::default()
                    }],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::tests::minimal as cluster;

    #[test]
    fn the_restore_job_mounts_the_backup_and_member_0s_claim_and_rebuilds_it_under_a_new_token() {
        let c = cluster();
        let token = restore_cluster_token(&c, 1_700_000_000);
        let target = restore_target(&c, "etcd-20260101T000000Z", &token);
        let job = build(&c, RestoreJob::Restore, 1_700_000_000, &target);
        assert_eq!(
            job.metadata.name.as_deref(),
            Some(format!("{}-etcd-restore-1700000000", c.name).as_str())
        );
        let pod = job.spec.unwrap().template.spec.unwrap();
        let claims: Vec<(String, Option<bool>)> = (pod.volumes.unwrap().into_iter())
            .map(|v| {
                let claim = v.persistent_volume_claim.unwrap();
                (claim.claim_name, claim.read_only)
            })
            .collect();
        assert_eq!(
            claims,
            vec![
                (format!("{}-etcd-backup", c.name), Some(false)),
                (format!("data-{}-etcd-0", c.name), Some(false)),
            ]
        );
        let script = &pod.containers[0].command.as_ref().unwrap()[2];
        let member = format!("{}-etcd-0", c.name);
        let url = etcd_peer_url(&c, &member);
        assert!(script.contains(&format!(
            "{IMAGE_ETCDCTL} snapshot restore \"$snap.db\" --name {member} --initial-cluster {member}={url} --initial-cluster-token {token} --initial-advertise-peer-urls {url} --data-dir \"$tmp\" --wal-dir \"$tmp/wal\""
        )), "{script}");
        assert_ne!(token, format!("{}-{}-etcd", c.namespace, c.name));
        assert_eq!(
            pod.containers[0].volume_mounts.as_ref().unwrap()[1].mount_path,
            "/curvebs/etcd/data"
        );
    }

    #[test]
    fn the_verify_job_mounts_only_the_backup_claim_read_only() {
        let c = cluster();
        let target = restore_target(&c, "etcd-20260101T000000Z", "t");
        let job = build(&c, RestoreJob::Verify, 5, &target);
        let pod = job.spec.unwrap().template.spec.unwrap();
        let volumes = pod.volumes.unwrap();
        assert_eq!(volumes.len(), 1);
        let claim = volumes[0].persistent_volume_claim.as_ref().unwrap();
        assert_eq!(claim.claim_name, format!("{}-etcd-backup", c.name));
        assert_eq!(claim.read_only, Some(true));
        let labels = job.metadata.labels.unwrap();
        assert_eq!(labels[LABEL_COMPONENT], ETCD_RESTORE);
        let script = &pod.containers[0].command.as_ref().unwrap()[2];
        assert!(
            script.contains("snap=/backup/snapshots/etcd-20260101T000000Z\n"),
            "{script}"
        );
        assert!(script.contains("[ -f \"$snap.json\" ] || fail"), "{script}");
    }
}
