use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::Lookup;
use serde_json::json;

use super::*;

/// A ChunkServer pod as the API server serves it, with what no decision reads around what
/// they do.
fn served_pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": "demo-chunkserver-1-4", "namespace": "ns", "uid": "u-4",
            "resourceVersion": "812", "generation": 1,
            "creationTimestamp": "2026-12-07T10:00:00Z",
            "deletionTimestamp": "2026-12-07T11:00:00Z",
            "labels": {
                "app.kubernetes.io/instance": "demo",
                "app.kubernetes.io/component": "chunkserver",
                "app.kubernetes.io/managed-by": "curve-operator",
                "curve.opencurve.io/disk-slot": "1",
                "controller-revision-hash": "demo-chunkserver-1-7d9",
                "statefulset.kubernetes.io/pod-name": "demo-chunkserver-1-4"
            },
            "annotations": {"curve.opencurve.io/csi-node-config": "abc", "other": "x"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "o"},
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "demo-chunkserver-1", "uid": "s"}
            ],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}]
        },
        "spec": {
            "nodeName": "node-7",
            "containers": [
                {"name": "chunkserver", "image": "curve:2", "args": ["--conf=/x"]},
                {"name": "sidecar", "image": "side:1"}
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-demo-chunkserver-1-4"}}]
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.0.7", "podIP": "10.0.0.7",
            "podIPs": [{"ip": "10.0.0.7"}], "qosClass": "Burstable",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True"}
            ],
            "initContainerStatuses": [
                {"name": "format", "image": "curve:2", "imageID": "sha", "ready": true, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": "2026-12-07T10:00:30Z"}}},
                {"name": "config", "image": "curve:2", "imageID": "sha", "ready": false, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                 "lastState": {"terminated": {"exitCode": 2, "message": "no such file"}}}
            ],
            "containerStatuses": [
                {"name": "chunkserver", "image": "curve:2", "imageID": "sha", "ready": true, "restartCount": 0,
                 "started": true, "state": {"running": {"startedAt": "2026-12-07T10:01:00Z"}}},
                {"name": "sidecar", "image": "side:1", "imageID": "", "ready": false, "restartCount": 0}
            ]
        }
    }))
    .unwrap()
}

#[test]
fn a_pod_is_read_into_what_the_decisions_read() {
    let created = "2026-12-07T10:00:00Z".parse().unwrap();
    assert_eq!(
        PodReading::from(served_pod()),
        PodReading {
            name: "demo-chunkserver-1-4".into(),
            namespace: "ns".into(),
            uid: "u-4".into(),
            instance: Some("demo".into()),
            component: Some("chunkserver".into()),
            tier: Some(Component::ChunkServer),
            disk_slot: Some(1),
            revision: Some("demo-chunkserver-1-7d9".into()),
            set: Some("demo-chunkserver-1".into()),
            job: None,
            created: Some(created),
            terminating: true,
            node: Some("node-7".into()),
            host_ip: Some("10.0.0.7".into()),
            ip: Some("10.0.0.7".into()),
            ready: true,
            unschedulable: None,
            image: Some("curve:2".into()),
            csi_node_config: Some("abc".into()),
            init_containers: vec![
                ContainerReading {
                    name: "format".into(),
                    image: "curve:2".into(),
                    state: Some(ContainerRun::Terminated(Terminated {
                        exit_code: 0,
                        reason: Some("Completed".into()),
                        message: None,
                        finished_at: Some("2026-12-07T10:00:30Z".parse().unwrap()),
                    })),
                    last_terminated: None,
                },
                ContainerReading {
                    name: "config".into(),
                    image: "curve:2".into(),
                    state: Some(ContainerRun::Waiting {
                        reason: Some("CrashLoopBackOff".into()),
                        message: Some("back-off 40s".into()),
                    }),
                    last_terminated: Some(Terminated {
                        exit_code: 2,
                        reason: None,
                        message: Some("no such file".into()),
                        finished_at: None,
                    }),
                },
            ],
            containers: vec![
                ContainerReading {
                    name: "chunkserver".into(),
                    image: "curve:2".into(),
                    state: Some(ContainerRun::Running),
                    last_terminated: None,
                },
                ContainerReading {
                    name: "sidecar".into(),
                    image: "side:1".into(),
                    state: None,
                    last_terminated: None,
                },
            ],
            // An init container's crash loop is not a container's.
            derived: Derived {
                identity: identity("demo-chunkserver-1-4", "u-4"),
                ordinal: Some(4),
                failing: None,
                waiting: true,
                init_done: false,
                ended: false,
            },
        }
    );
}

#[test]
fn an_unscheduled_pod_keeps_the_schedulers_message_and_no_address() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "demo-etcd-0", "namespace": "ns", "labels": {"curve.opencurve.io/disk-slot": "x"}},
        "spec": {"containers": []},
        "status": {
            "phase": "Pending", "podIP": "",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."},
                {"type": "Ready", "status": "False"}
            ]
        }
    }))
    .unwrap();
    assert_eq!(
        PodReading::from(pod),
        PodReading {
            name: "demo-etcd-0".into(),
            namespace: "ns".into(),
            unschedulable: Some(
                "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
                    .into()
            ),
            derived: Derived {
                identity: identity("demo-etcd-0", ""),
                ordinal: Some(0),
                failing: None,
                waiting: false,
                init_done: true,
                ended: false,
            },
            ..PodReading::default()
        }
    );
}

#[test]
fn a_pod_scheduled_false_for_another_reason_is_not_unschedulable() {
    let mut pod = served_pod();
    let status = pod.status.as_mut().unwrap();
    status.conditions = Some(vec![serde_json::from_value(json!(
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated", "message": "gated"}
    ))
    .unwrap()]);
    let reading = PodReading::from(pod);
    assert_eq!((reading.unschedulable, reading.ready), (None, false));
}

#[test]
fn the_cache_keys_a_reading_as_the_pod_it_reads() {
    let pod = served_pod();
    let pod_key = kube::runtime::reflector::ObjectRef::from_obj(&pod);
    let reading = PodReading::from(pod);
    let reading_key = reading.to_object_ref(());
    assert_eq!(
        (reading_key.name, reading_key.namespace),
        (pod_key.name, pod_key.namespace)
    );
}

#[test]
fn a_job_pod_names_its_job_by_its_owner() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "demo-etcd-backup-1-x", "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": "demo-etcd-backup-1", "uid": "j", "controller": true}
        ]}
    }))
    .unwrap();
    let reading = PodReading::from(pod);
    assert_eq!(reading.job.as_deref(), Some("demo-etcd-backup-1"));
    assert_eq!(reading.set, None);
}

/// The values derived from a pod's fields follow them: a pod that changes (replaced, its
/// container crash-looping) reads anew with new derived values, never the old ones.
#[test]
fn a_changed_pod_derives_anew() {
    let before = PodReading::from(served_pod());
    let mut changed = served_pod();
    changed.metadata.uid = Some("u-4-new".into());
    let status = changed.status.as_mut().unwrap();
    status.container_statuses.as_mut().unwrap()[1] = serde_json::from_value(json!(
        {"name": "sidecar", "image": "side:1", "imageID": "", "ready": false, "restartCount": 2,
         "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}}}
    ))
    .unwrap();
    let after = PodReading::from(changed);
    assert_ne!(after.derived().identity, before.derived().identity);
    assert_eq!(
        after.derived().failing.as_deref(),
        Some("sidecar: ImagePullBackOff (pull access denied)")
    );
    assert_eq!(before.derived().failing, None);
    assert!(after.derived().waiting);

    // Init containers all done well; nothing waits.
    let mut settled = served_pod();
    let status = settled.status.as_mut().unwrap();
    status.init_container_statuses.as_mut().unwrap().truncate(1);
    status.container_statuses.as_mut().unwrap().truncate(1);
    let settled = PodReading::from(settled);
    assert!(settled.derived().init_done);
    assert!(!settled.derived().waiting);

    // A container that ran and stopped.
    let mut restarted = served_pod();
    let status = restarted.status.as_mut().unwrap();
    status.container_statuses.as_mut().unwrap()[0].last_state = Some(
        serde_json::from_value(json!({"terminated": {"exitCode": 3, "message": "bye"}})).unwrap(),
    );
    assert!(PodReading::from(restarted).derived().ended);

    // A reading changed in place derives again; debug builds catch one that did not.
    let mut edited = before.clone();
    edited.uid = "u-4-new".into();
    edited.derive();
    assert_eq!(edited.derived().identity, after.derived().identity);
    let mut stale = before;
    stale.uid = "u-4-new".into();
    let read = std::panic::catch_unwind(|| stale.derived().identity);
    assert_eq!(read.is_err(), cfg!(debug_assertions));
}

#[test]
fn only_names_as_a_statefulset_makes_them_have_an_ordinal() {
    let ordinals = [
        "demo-etcd-0",
        "demo-etcd-12",
        "demo-etcd-012",
        "demo-etcd-+1",
        "demo-etcd-",
        "etcd",
    ]
    .map(name_ordinal);
    assert_eq!(ordinals, [Some(0), Some(12), None, None, None, None]);
}
