//! curve-csi's objects, asserted whole.

use serde_json::{Value, json};

use super::*;
use crate::api::CurveCluster;
use crate::desired::typed_value;
use crate::validate::validate;

fn cluster_with(csi: Value) -> ValidatedCluster {
    let mut value = json!({
        "apiVersion": "curve.opencurve.io/v1alpha1",
        "kind": "CurveCluster",
        "metadata": {"name": "demo", "namespace": "curve", "uid": "0b7c-uid"},
        "spec": {
            "image": "opencurvedocker/curvebs:v1.2.6",
            "imagePullSecrets": ["registry"],
            "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}},
            "csi": {"enabled": true}
        }
    });
    crate::util::merge_json(&mut value, &json!({"spec": {"csi": csi}}));
    let cluster: CurveCluster = serde_json::from_value(value).unwrap();
    validate(&cluster, "default").unwrap()
}

const MDS: [&str; 3] = ["10.0.0.1:6700", "10.0.0.2:6700", "10.0.0.3:6700"];

fn built(csi: Value) -> Csi {
    let mds: Vec<String> = MDS.iter().map(|a| a.to_string()).collect();
    build(&cluster_with(csi), &mds).expect("csi is enabled")
}

fn labels(part: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "curve",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": part,
        "app.kubernetes.io/managed-by": "curve-operator"
    })
}

fn meta(name: &str, part: &str) -> Value {
    json!({
        "name": name,
        "namespace": "curve",
        "labels": labels(part),
        "ownerReferences": [{
            "apiVersion": "curve.opencurve.io/v1alpha1",
            "kind": "CurveCluster",
            "name": "demo",
            "uid": "0b7c-uid",
            "controller": true,
            "blockOwnerDeletion": true
        }]
    })
}

/// Cluster-scoped: no owner (a namespaced one is not allowed), the namespace in a label.
fn cluster_scoped(name: &str) -> Value {
    let mut labels = labels("csi-controller");
    labels["curve.opencurve.io/namespace"] = json!("curve");
    json!({"name": name, "labels": labels})
}

fn field(name: &str, path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}})
}

#[test]
fn nothing_without_csi_enabled() {
    let cluster = cluster_with(json!({"enabled": false}));
    assert_eq!(build(&cluster, &["10.0.0.1:6700".into()]), None);
}

#[test]
fn node_plugin_is_curve_csis_daemon_set_with_the_mds_addresses_and_on_delete() {
    let csi = built(json!({}));
    let mut set = typed_value(&csi.node_plugin);
    // The hash is the template's own, checked below; here the rest of the object.
    let annotations = set["spec"]["template"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations")
        .unwrap();
    let mut node_meta = meta("demo-csi-node", "csi-node");
    node_meta["annotations"] = annotations.clone();
    let host = |name: &str, path: &str, type_: Option<&str>| match type_ {
        Some(t) => json!({"name": name, "hostPath": {"path": path, "type": t}}),
        None => json!({"name": name, "hostPath": {"path": path}}),
    };
    assert_eq!(
        set,
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": node_meta,
            "spec": {
                "selector": {"matchLabels": {
                    "app.kubernetes.io/name": "curve",
                    "app.kubernetes.io/instance": "demo",
                    "app.kubernetes.io/component": "csi-node"
                }},
                "updateStrategy": {"type": "OnDelete"},
                "template": {
                    "metadata": {"labels": labels("csi-node")},
                    "spec": {
                        "serviceAccountName": "demo-csi-node",
                        "automountServiceAccountToken": false,
                        "hostNetwork": true,
                        "hostPID": true,
                        "dnsPolicy": "ClusterFirstWithHostNet",
                        "imagePullSecrets": [{"name": "registry"}],
                        "containers": [
                            {
                                "name": "driver-registrar",
                                "image": "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.2.0",
                                "imagePullPolicy": "IfNotPresent",
                                "securityContext": {"privileged": true},
                                "args": [
                                    "--v=5",
                                    "--csi-address=/csi/csi.sock",
                                    "--kubelet-registration-path=/var/lib/kubelet/plugins/curve.csi.netease.com/csi.sock"
                                ],
                                "env": [field("KUBE_NODE_NAME", "spec.nodeName")],
                                "volumeMounts": [
                                    {"name": "socket-dir", "mountPath": "/csi"},
                                    {"name": "registration-dir", "mountPath": "/registration"}
                                ]
                            },
                            {
                                "name": "csi-curveplugin",
                                "image": "curvecsi/curve-csi:v3.0.1",
                                "imagePullPolicy": "IfNotPresent",
                                "securityContext": {
                                    "privileged": true,
                                    "capabilities": {"add": ["SYS_ADMIN"]},
                                    "allowPrivilegeEscalation": true
                                },
                                "args": [
                                    "--endpoint=$(CSI_ENDPOINT)",
                                    "--drivername=curve.csi.netease.com",
                                    "--nodeid=$(NODE_ID)",
                                    "--node-server=true",
                                    "--debug-port=9595",
                                    "--logtostderr=false",
                                    "--log_dir=/var/log/csi-curveplugin",
                                    "-v=4"
                                ],
                                "env": [
                                    field("NODE_ID", "spec.nodeName"),
                                    field("POD_NAMESPACE", "metadata.namespace"),
                                    {"name": "CSI_ENDPOINT", "value": "unix:///csi/csi.sock"},
                                    {"name": "MDSADDR", "value": "10.0.0.1:6700,10.0.0.2:6700,10.0.0.3:6700"}
                                ],
                                "volumeMounts": [
                                    {"name": "socket-dir", "mountPath": "/csi"},
                                    {"name": "host-dev", "mountPath": "/dev"},
                                    {"name": "host-sys", "mountPath": "/sys"},
                                    {"name": "lib-modules", "mountPath": "/lib/modules", "readOnly": true},
                                    {"name": "plugin-dir", "mountPath": "/var/lib/kubelet/plugins", "mountPropagation": "Bidirectional"},
                                    {"name": "mountpoint-dir", "mountPath": "/var/lib/kubelet/pods", "mountPropagation": "Bidirectional"},
                                    {"name": "localtime", "mountPath": "/etc/localtime"},
                                    {"name": "log", "mountPath": "/var/log/csi-curveplugin"}
                                ]
                            }
                        ],
                        "volumes": [
                            host("socket-dir", "/var/lib/kubelet/plugins/curve.csi.netease.com", Some("DirectoryOrCreate")),
                            host("plugin-dir", "/var/lib/kubelet/plugins", Some("Directory")),
                            host("mountpoint-dir", "/var/lib/kubelet/pods", Some("DirectoryOrCreate")),
                            host("registration-dir", "/var/lib/kubelet/plugins_registry/", Some("Directory")),
                            host("host-dev", "/dev", None),
                            host("host-sys", "/sys", None),
                            host("lib-modules", "/lib/modules", None),
                            host("localtime", "/etc/localtime", None),
                            host("log", "/var/log/csi-curveplugin", None)
                        ]
                    }
                }
            }
        })
    );
    assert_eq!(
        annotations,
        json!({"curve.opencurve.io/csi-node-config": csi.node_config})
    );
}

#[test]
fn the_node_config_hash_is_the_templates_and_follows_the_mds_addresses_only() {
    let csi = built(json!({}));
    let mut template = csi.node_plugin.spec.clone().unwrap().template;
    template.metadata.as_mut().unwrap().annotations = None;
    assert_eq!(csi.node_config, template_hash(&template));
    assert_eq!(
        node_config_of(&csi.node_plugin),
        Some(csi.node_config.clone())
    );

    let cluster = cluster_with(json!({}));
    let moved = build(&cluster, &["10.0.0.1:6700".into(), "10.0.0.4:6700".into()]).unwrap();
    assert_ne!(moved.node_config, csi.node_config);
    assert_eq!(moved.mds_addr, "10.0.0.1:6700,10.0.0.4:6700");
    let node_containers = &moved
        .node_plugin
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers;
    assert_eq!(
        mds_addr_of(node_containers).as_deref(),
        Some("10.0.0.1:6700,10.0.0.4:6700")
    );
    // The StorageClass does not change (only a new class would re-create it).
    assert_eq!(moved.storage_class, csi.storage_class);
    // The same input, the same hash.
    assert_eq!(built(json!({})).node_config, csi.node_config);
}

#[test]
fn controller_is_curve_csis_deployment_without_the_snapshotter() {
    let csi =
        built(json!({"images": {"provisioner": "registry.example.com/csi-provisioner:v2.2.2"}}));
    let deployment = typed_value(&csi.controller);
    let sidecar_env = json!([
        {"name": "ADDRESS", "value": "unix:///csi/csi-provisioner.sock"},
        field("POD_NAMESPACE", "metadata.namespace")
    ]);
    let socket = json!([{"name": "socket-dir", "mountPath": "/csi"}]);
    let selector = json!({
        "app.kubernetes.io/name": "curve",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": "csi-controller"
    });
    assert_eq!(
        deployment,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("demo-csi-controller", "csi-controller"),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": selector},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": labels("csi-controller")},
                    "spec": {
                        "serviceAccountName": "demo-csi-controller",
                        "hostNetwork": true,
                        "hostPID": true,
                        "dnsPolicy": "ClusterFirstWithHostNet",
                        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                            {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
                        ]}},
                        "imagePullSecrets": [{"name": "registry"}],
                        "containers": [
                            {
                                "name": "csi-provisioner",
                                "image": "registry.example.com/csi-provisioner:v2.2.2",
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["--csi-address=$(ADDRESS)", "--v=5", "--timeout=150s", "--leader-election=true", "--retry-interval-start=500ms", "--feature-gates=Topology=false"],
                                "env": sidecar_env,
                                "volumeMounts": socket
                            },
                            {
                                "name": "csi-attacher",
                                "image": "registry.k8s.io/sig-storage/csi-attacher:v3.2.1",
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["--v=5", "--csi-address=$(ADDRESS)", "--leader-election=true", "--retry-interval-start=500ms"],
                                "env": sidecar_env,
                                "volumeMounts": socket
                            },
                            {
                                "name": "csi-resizer",
                                "image": "registry.k8s.io/sig-storage/csi-resizer:v1.2.0",
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["--csi-address=$(ADDRESS)", "--v=5", "--timeout=150s", "--leader-election", "--retry-interval-start=500ms", "--handle-volume-inuse-error=false"],
                                "env": sidecar_env,
                                "volumeMounts": socket
                            },
                            {
                                "name": "csi-curveplugin",
                                "image": "curvecsi/curve-csi:v3.0.1",
                                "imagePullPolicy": "IfNotPresent",
                                "securityContext": {
                                    "privileged": true,
                                    "capabilities": {"add": ["SYS_ADMIN"]},
                                    "allowPrivilegeEscalation": true
                                },
                                "args": [
                                    "--endpoint=$(CSI_ENDPOINT)",
                                    "--drivername=curve.csi.netease.com",
                                    "--nodeid=$(NODE_ID)",
                                    "--controller-server=true",
                                    "--debug-port=9696",
                                    "--logtostderr=false",
                                    "--log_dir=/var/log/csi-curveplugin",
                                    "-v=4"
                                ],
                                "env": [
                                    field("NODE_ID", "spec.nodeName"),
                                    field("POD_NAMESPACE", "metadata.namespace"),
                                    {"name": "CSI_ENDPOINT", "value": "unix:///csi/csi-provisioner.sock"},
                                    {"name": "MDSADDR", "value": "10.0.0.1:6700,10.0.0.2:6700,10.0.0.3:6700"}
                                ],
                                "volumeMounts": [
                                    {"name": "socket-dir", "mountPath": "/csi"},
                                    {"name": "localtime", "mountPath": "/etc/localtime"},
                                    {"name": "log", "mountPath": "/var/log/csi-curveplugin"}
                                ]
                            }
                        ],
                        "volumes": [
                            {"name": "socket-dir", "emptyDir": {"medium": "Memory"}},
                            {"name": "localtime", "hostPath": {"path": "/etc/localtime"}},
                            {"name": "log", "hostPath": {"path": "/var/log/csi-curveplugin-ctrl"}}
                        ]
                    }
                }
            }
        })
    );
}

#[test]
fn rbac_grants_the_controller_only_and_the_node_plugin_nothing() {
    let csi = built(json!({}));
    let accounts: Vec<Value> = csi.service_accounts.iter().map(typed_value).collect();
    assert_eq!(
        accounts,
        vec![
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("demo-csi-node", "csi-node"), "automountServiceAccountToken": false}),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("demo-csi-controller", "csi-controller"), "automountServiceAccountToken": true}),
        ]
    );
    let subject =
        json!([{"kind": "ServiceAccount", "name": "demo-csi-controller", "namespace": "curve"}]);
    assert_eq!(
        typed_value(&csi.role),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta("demo-csi-controller", "csi-controller"),
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "watch", "list", "delete", "update", "create"]}]
        })
    );
    assert_eq!(
        typed_value(&csi.role_binding),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta("demo-csi-controller", "csi-controller"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "demo-csi-controller"},
            "subjects": subject
        })
    );
    let rule = |group: &str, resources: &[&str], verbs: &[&str]| json!({"apiGroups": [group], "resources": resources, "verbs": verbs});
    assert_eq!(
        typed_value(&csi.cluster_role),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": cluster_scoped("curve-csi-curve-demo"),
            "rules": [
                rule("", &["persistentvolumes"], &["get", "list", "watch", "create", "update", "patch", "delete"]),
                rule("", &["persistentvolumeclaims"], &["get", "list", "watch", "update", "patch"]),
                rule("", &["persistentvolumeclaims/status"], &["update", "patch"]),
                rule("", &["events"], &["list", "watch", "create", "update", "patch"]),
                rule("", &["nodes"], &["get", "list", "watch"]),
                rule("storage.k8s.io", &["storageclasses"], &["get", "list", "watch"]),
                rule("storage.k8s.io", &["csinodes"], &["get", "list", "watch"]),
                rule("storage.k8s.io", &["volumeattachments"], &["get", "list", "watch", "update", "patch"]),
                rule("storage.k8s.io", &["volumeattachments/status"], &["patch"])
            ]
        })
    );
    assert_eq!(
        typed_value(&csi.cluster_role_binding),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": cluster_scoped("curve-csi-curve-demo"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "curve-csi-curve-demo"},
            "subjects": subject
        })
    );
}

#[test]
fn driver_requires_attach_so_volume_attachments_show_where_volumes_are() {
    assert_eq!(
        typed_value(&built(json!({})).driver),
        json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSIDriver",
            "metadata": cluster_scoped("curve.csi.netease.com"),
            "spec": {"attachRequired": true, "podInfoOnMount": false, "volumeLifecycleModes": ["Persistent"]}
        })
    );
}

#[test]
fn storage_class_carries_the_spec() {
    assert_eq!(
        typed_value(&built(json!({})).storage_class),
        json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": cluster_scoped("curve"),
            "provisioner": "curve.csi.netease.com",
            "parameters": {"user": "k8s"},
            "reclaimPolicy": "Delete",
            "allowVolumeExpansion": true,
            "volumeBindingMode": "Immediate"
        })
    );
    let custom = built(json!({"storageClass": {
        "name": "curve-fast", "user": "apps", "reclaimPolicy": "Retain",
        "allowVolumeExpansion": false, "isDefault": true
    }}));
    let mut meta = cluster_scoped("curve-fast");
    meta["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
    assert_eq!(
        typed_value(&custom.storage_class),
        json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": meta,
            "provisioner": "curve.csi.netease.com",
            "parameters": {"user": "apps"},
            "reclaimPolicy": "Retain",
            "allowVolumeExpansion": false,
            "volumeBindingMode": "Immediate"
        })
    );
}
