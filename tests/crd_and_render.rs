//! The generated CRD (and its CEL rules), the examples, and the `render` command.

#[path = "support/crd.rs"]
mod crd;
#[path = "support/golden.rs"]
mod golden;

use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use curve_operator::api::{CurveCluster, crd_yaml};
use curve_operator::reconcile::model::claim::ClaimReading;
use curve_operator::render::render;
use curve_operator::util::merge_json;

use crd::{cel_errors, minimal, patched, schema, schema_errors};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn checked_in_crd_matches_the_types() {
    let checked_in = std::fs::read_to_string(repo("crds/curvecluster.yaml")).unwrap();
    assert!(
        checked_in == crd_yaml(),
        "crds/curvecluster.yaml is stale: run `cargo run -- crd > crds/curvecluster.yaml`"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), checked_in);
}

#[test]
fn crd_has_the_names_status_and_printer_columns_users_see() {
    let crd = serde_json::to_value(CurveCluster::crd()).unwrap();
    assert_eq!(crd["spec"]["group"], "curve.opencurve.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["curve"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"], json!({"status": {}}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "Phase",
            "Primary",
            "Etcd",
            "MDS",
            "ChunkServers",
            "Health",
            "Progress",
            "Age",
            "Image",
            "Message",
            "Etcd-Updated",
            "MDS-Updated",
            "CS-Updated",
            "Etcd-Images",
            "MDS-Images",
            "CS-Images",
            "Last-Backup",
        ]
    );
    // `kubectl get -o wide` adds the image, what the cluster is doing, and each tier's roll.
    let wide: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"] == 1)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // The columns after Age, in the same order.
    let age = columns.iter().position(|c| *c == "Age").unwrap();
    assert_eq!(wide, columns[age + 1..]);
}

/// Every property of the spec has a description (it is what `kubectl explain` prints).
#[test]
fn every_spec_field_is_documented() {
    fn walk(schema: &Value, path: &str, missing: &mut Vec<String>) {
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let path = format!("{path}.{name}");
                if property.get("description").is_none() {
                    missing.push(path.clone());
                }
                // k8s-openapi types (resources, tolerations) carry their own upstream docs.
                if !["resources", "tolerations"].contains(&name.as_str()) {
                    walk(property, &path, missing);
                }
            }
        }
        if let Some(items) = schema.get("items") {
            walk(items, path, missing);
        }
    }
    let crd = serde_json::to_value(CurveCluster::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut missing = Vec::new();
    walk(spec, "spec", &mut missing);
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

#[test]
fn cel_accepts_the_minimal_and_example_clusters() {
    assert_eq!(cel_errors(&minimal(), None), Vec::<String>::new());
    for example in [
        "examples/curvecluster.yaml",
        "examples/curvecluster-production.yaml",
    ] {
        let value: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(repo(example)).unwrap()).unwrap();
        assert_eq!(cel_errors(&value, None), Vec::<String>::new(), "{example}");
        assert_eq!(
            cel_errors(&value, Some(&value)),
            Vec::<String>::new(),
            "{example} unchanged"
        );
    }
}

#[test]
fn cel_rejects_what_the_api_server_can_judge_alone() {
    let table = [
        (
            json!({"spec": {"etcd": {"replicas": 4}}}),
            "spec.etcd.replicas must be 1, 3, 5 or 7",
        ),
        (
            json!({"spec": {"etcd": {"peerPort": 2379}}}),
            "spec.etcd.clientPort and spec.etcd.peerPort must differ",
        ),
        (
            json!({"spec": {"mds": {"dummyPort": 6700}}}),
            "spec.mds.port and spec.mds.dummyPort must differ",
        ),
        (
            json!({"spec": {"mds": {"port": 2380}}}),
            "spec.mds ports must differ from spec.etcd ports",
        ),
        (
            json!({"spec": {"chunkservers": {"port": 7700}}}),
            "spec.chunkservers.port range (port .. port+disksPerNode-1) must not contain an etcd or MDS port",
        ),
        (
            json!({"spec": {"chunkservers": {"replicas": 2}}}),
            "spec.chunkservers.replicas must be at least spec.logicalPool.replicas",
        ),
        (
            json!({"spec": {"logicalPool": {"zones": 2}}}),
            "spec.logicalPool.zones must equal spec.logicalPool.replicas",
        ),
        (
            json!({"spec": {"logicalPool": {"zones": 5, "replicas": 3}}}),
            "spec.logicalPool.zones must not exceed spec.chunkservers.replicas",
        ),
        (
            json!({"spec": {"image": ""}}),
            "spec.image must name a Curve image",
        ),
        (
            json!({"spec": {"chunkservers": {"storage": {"size": "lots"}}}}),
            "storage.size must be a positive quantity",
        ),
        (
            json!({"spec": {"chunkservers": {"storage": {"size": "0"}}}}),
            "storage.size must be a positive quantity",
        ),
        (
            json!({"spec": {"placement": {"topologyKey": ""}}}),
            "spec.placement.topologyKey must not be empty",
        ),
        (
            json!({"spec": {"hostNetwork": false}}),
            "spec.hostNetwork must be true: Curve identifies MDS and ChunkServers by ip:port",
        ),
        (
            json!({"metadata": {"name": "a-very-long-cluster-name-beyond-thirty"}}),
            "metadata.name must be at most 30 characters",
        ),
    ];
    for (patch, expected) in table {
        let errors = cel_errors(&patched(patch.clone()), None);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{patch}: expected {expected:?}, got {errors:?}"
        );
    }
}

/// Every rule added to mirror what Kubernetes and Curve refuse: a refused object, the text the
/// API server's error must carry (the field, the reason, and for most the value given), and an
/// accepted neighbour.
#[test]
fn cel_refuses_what_kubernetes_and_curve_would_refuse_later() {
    let pod = |list: Value| json!({"spec": {"placement": {"tolerations": list}}});
    let res =
        |component: &str, resources: Value| json!({"spec": {component: {"resources": resources}}});
    let table: Vec<(Value, &str, Value)> = vec![
        (
            json!({"metadata": {"name": "1demo"}}),
            "metadata.name must be a DNS-1035 label (lower-case letters, digits and dashes, starting with a letter and ending with a letter or digit): it prefixes the cluster's Service names (got \"1demo\")",
            json!({"metadata": {"name": "demo1"}}),
        ),
        (
            json!({"metadata": {"name": "demo.curve"}}),
            "metadata.name must be a DNS-1035 label",
            json!({"metadata": {"name": "demo-curve"}}),
        ),
        (
            json!({"spec": {"image": "opencurvedocker/CurveBS:v1.2.6"}}),
            "spec.image: spec.image must be an image reference [registry[:port]/]path[:tag][@digest], the path of lower-case letters and digits with dots, underscores or dashes between them, such as opencurvedocker/curvebs:v1.2.6 (got \"opencurvedocker/CurveBS:v1.2.6\")",
            json!({"spec": {"image": "registry.example.com:5000/opencurvedocker/curvebs:v1.2.6"}}),
        ),
        (
            json!({"spec": {"image": "curvebs:v1 "}}),
            "spec.image must be an image reference",
            json!({"spec": {"image": "[fd00::1]:5000/curvebs:v1"}}),
        ),
        (
            json!({"spec": {"image": "curvebs@sha256:abc"}}),
            "spec.image must be an image reference",
            json!({"spec": {"image": format!("curvebs:v1@sha256:{}", "0f".repeat(32))}}),
        ),
        (
            json!({"spec": {"imagePullSecrets": ["registry", "Bad Name"]}}),
            "spec.imagePullSecrets: spec.imagePullSecrets must name Secrets: DNS-1123 subdomains of lower-case letters, digits, dashes and dots, starting and ending with a letter or digit",
            json!({"spec": {"imagePullSecrets": ["registry", "registry.example.com"]}}),
        ),
        (
            json!({"spec": {"etcd": {"storage": {"size": "1Gi", "storageClassName": "Fast SSD"}}}}),
            "spec.etcd.storage.storageClassName: storage.storageClassName must be a StorageClass name: a DNS-1123 subdomain of lower-case letters, digits, dashes and dots, starting and ending with a letter or digit (got \"Fast SSD\")",
            json!({"spec": {"etcd": {"storage": {"size": "1Gi", "storageClassName": "fast-ssd"}}}}),
        ),
        (
            res("mds", json!({"limits": {"gpu": "1"}})),
            "spec.mds.resources: spec.mds.resources.limits may name only cpu, memory, ephemeral-storage, hugepages-<size> and domain-qualified extended resources",
            res(
                "mds",
                json!({"limits": {"example.com/gpu": "1", "ephemeral-storage": "1Gi", "hugepages-2Mi": "2Mi", "memory": "1Gi"}}),
            ),
        ),
        (
            res("mds", json!({"requests": {"cpu cores": "1"}})),
            "spec.mds.resources.requests may name only cpu, memory, ephemeral-storage, hugepages-<size> and domain-qualified extended resources",
            res("mds", json!({"requests": {"cpu": "1"}})),
        ),
        (
            res(
                "etcd",
                json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}),
            ),
            "spec.etcd.resources.requests must not exceed spec.etcd.resources.limits of the same resource",
            res(
                "etcd",
                json!({"requests": {"cpu": "1500m"}, "limits": {"cpu": "1.5"}}),
            ),
        ),
        (
            res("etcd", json!({"requests": {"example.com/nic": "1"}})),
            "spec.etcd.resources.requests of hugepages and extended resources need spec.etcd.resources.limits equal to them: Kubernetes does not overcommit them",
            res(
                "etcd",
                json!({"requests": {"example.com/nic": "1"}, "limits": {"example.com/nic": "1"}}),
            ),
        ),
        (
            res("etcd", json!({"limits": {"example.com/nic": "500m"}})),
            "spec.etcd.resources.limits of extended resources must be whole numbers: they are counted in units",
            res("etcd", json!({"limits": {"example.com/nic": "1"}})),
        ),
        (
            res("chunkservers", json!({"limits": {"hugepages-2Mi": "4Mi"}})),
            "spec.chunkservers.resources must request or limit cpu or memory too when it asks for hugepages: Kubernetes refuses hugepages alone",
            res(
                "chunkservers",
                json!({"limits": {"hugepages-2Mi": "4Mi"}, "requests": {"memory": "1Gi"}}),
            ),
        ),
        (
            json!({"spec": {"chunkservers": {"port": 65535, "disksPerNode": 2}}}),
            "spec.chunkservers.port + disksPerNode - 1 must be at most 65535: disk slot i listens on port + i",
            json!({"spec": {"chunkservers": {"port": 65534, "disksPerNode": 2}}}),
        ),
        (
            json!({"spec": {"chunkservers": {"replicas": 1}, "logicalPool": {"replicas": 1, "zones": 1}}}),
            "spec.chunkservers.replicas × disksPerNode must be at least 2: Curve's MDS cannot create a logical pool on one ChunkServer",
            json!({"spec": {"chunkservers": {"replicas": 1, "disksPerNode": 2}, "logicalPool": {"replicas": 1, "zones": 1}}}),
        ),
        (
            json!({"spec": {"logicalPool": {"zones": 2}}}),
            "spec.logicalPool.zones must equal spec.logicalPool.replicas: Curve's MDS creates a logical pool only when its zone count equals its copy count, each copy in its own zone",
            json!({"spec": {"logicalPool": {"zones": 2, "replicas": 2}}}),
        ),
        (
            json!({"spec": {"logicalPool": {"name": "logical pool"}}}),
            "spec.logicalPool.name: spec.logicalPool.name must be a Curve pool name: 1-63 letters, digits, dashes, underscores and dots, starting and ending with a letter or digit (got \"logical pool\")",
            json!({"spec": {"logicalPool": {"name": "logical_pool.1"}}}),
        ),
        (
            json!({"spec": {"logicalPool": {"physicalPool": "-pool"}}}),
            "spec.logicalPool.physicalPool must be a Curve pool name",
            json!({"spec": {"logicalPool": {"physicalPool": "pool-1"}}}),
        ),
        (
            json!({"spec": {"placement": {"nodeSelector": {"ok": "yes", "bad key": "x"}}}}),
            "spec.placement.nodeSelector: spec.placement.nodeSelector keys must be a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and a slash, then a name of at most 63 letters, digits, dashes, underscores and dots, starting and ending with a letter or digit",
            json!({"spec": {"placement": {"nodeSelector": {"ok": "yes", "curve.opencurve.io/storage": "x"}}}}),
        ),
        (
            json!({"spec": {"placement": {"nodeSelector": {format!("{}/zone", "p".repeat(254)): "a"}}}}),
            "spec.placement.nodeSelector keys must be a label key",
            json!({"spec": {"placement": {"nodeSelector": {format!("{}/zone", "p".repeat(253)): "a"}}}}),
        ),
        (
            json!({"spec": {"placement": {"nodeSelector": {"disk": "nvme ssd"}}}}),
            "spec.placement.nodeSelector values must be label values: empty, or at most 63 letters, digits, dashes, underscores and dots, starting and ending with a letter or digit",
            json!({"spec": {"placement": {"nodeSelector": {"disk": ""}}}}),
        ),
        (
            pod(json!([{"operator": "Equal", "value": "curve"}])),
            "spec.placement.tolerations[0]: spec.placement.tolerations[].operator must be Exists when key is empty: an empty key with Exists tolerates every taint",
            pod(json!([{"operator": "Exists"}])),
        ),
        (
            pod(json!([{"key": "dedicated", "operator": "Exists", "value": "curve"}])),
            "spec.placement.tolerations[].value must be empty when operator is Exists (got \"curve\")",
            pod(json!([{"key": "dedicated", "operator": "Exists"}])),
        ),
        (
            pod(json!([{"key": "dedicated", "value": "curve db"}])),
            "spec.placement.tolerations[].value must be a label value: empty, or at most 63 letters, digits, dashes, underscores and dots, starting and ending with a letter or digit (got \"curve db\")",
            pod(json!([{"key": "dedicated", "value": "curve-db"}])),
        ),
        (
            pod(
                json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}]),
            ),
            "spec.placement.tolerations[].tolerationSeconds is allowed only with effect NoExecute (got effect \"NoSchedule\")",
            pod(
                json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]),
            ),
        ),
        (
            pod(json!([{"key": "dedicated/", "operator": "Exists"}])),
            "spec.placement.tolerations[0].key: spec.placement.tolerations[].key must be empty or a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and a slash, then a name of at most 63 letters, digits, dashes, underscores and dots, starting and ending with a letter or digit (got \"dedicated/\")",
            pod(json!([{"key": "example.com/dedicated", "operator": "Exists"}])),
        ),
        (
            json!({"spec": {"placement": {"topologyKey": "kubernetes.io/host name"}}}),
            "spec.placement.topologyKey: spec.placement.topologyKey must be a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and a slash, then a name of at most 63 letters, digits, dashes, underscores and dots, starting and ending with a letter or digit (got \"kubernetes.io/host name\")",
            json!({"spec": {"placement": {"topologyKey": "topology.kubernetes.io/zone"}}}),
        ),
        (
            json!({"spec": {"placement": {"zoneLabel": "Topology.Kubernetes.io/zone"}}}),
            "spec.placement.zoneLabel must be a label key",
            json!({"spec": {"placement": {"zoneLabel": "topology.kubernetes.io/zone"}}}),
        ),
        (
            json!({"spec": {"cleanup": {"policy": "Delete", "confirmation": "yes"}}}),
            "spec.cleanup.confirmation: spec.cleanup.confirmation must be yes-really-destroy-data when set (got \"yes\")",
            json!({"spec": {"cleanup": {"policy": "Delete", "confirmation": "yes-really-destroy-data"}}}),
        ),
    ];
    for (refused, expected, accepted) in table {
        let errors = cel_errors(&patched(refused.clone()), None);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{refused}: expected {expected:?}, got {errors:?}"
        );
        assert_eq!(
            cel_errors(&patched(accepted.clone()), None),
            Vec::<String>::new(),
            "{accepted} must be accepted"
        );
    }
}

#[test]
fn the_schema_bounds_every_value_the_api_server_and_cel_read() {
    let spec_schema = schema()["properties"]["spec"].clone();
    let check = |patch: Value| {
        let object = patched(patch);
        let mut errors = Vec::new();
        schema_errors(&spec_schema, &object["spec"], "spec", &mut errors);
        errors
    };
    let many = |n: usize| -> serde_json::Map<String, Value> {
        (0..n).map(|i| (format!("k{i}"), json!("v"))).collect()
    };
    let quantities = |n: usize| -> serde_json::Map<String, Value> {
        (0..n).map(|i| (format!("k{i}"), json!("1"))).collect()
    };
    let table: Vec<(Value, &str, Value)> = vec![
        (
            json!({"spec": {"placement": {"tolerations": [{"operator": "In"}]}}}),
            "spec.placement.tolerations[0].operator: enum",
            json!({"spec": {"placement": {"tolerations": [{"operator": ""}, {"operator": "Equal", "key": "k"}, {"operator": "Exists"}]}}}),
        ),
        (
            json!({"spec": {"placement": {"tolerations": [{"operator": "Exists", "effect": "NoEvict"}]}}}),
            "spec.placement.tolerations[0].effect: enum",
            json!({"spec": {"placement": {"tolerations": [{"operator": "Exists", "effect": "PreferNoSchedule"}]}}}),
        ),
        (
            json!({"spec": {"placement": {"tolerations": [{"key": "k", "value": "v".repeat(64)}]}}}),
            "spec.placement.tolerations[0].value: maxLength",
            json!({"spec": {"placement": {"tolerations": [{"key": "k", "value": "v".repeat(63)}]}}}),
        ),
        (
            json!({"spec": {"placement": {"tolerations": vec![json!({"operator": "Exists"}); 65]}}}),
            "spec.placement.tolerations: maxItems",
            json!({"spec": {"placement": {"tolerations": vec![json!({"operator": "Exists"}); 64]}}}),
        ),
        (
            json!({"spec": {"placement": {"nodeSelector": many(65)}}}),
            "spec.placement.nodeSelector: maxProperties",
            json!({"spec": {"placement": {"nodeSelector": many(64)}}}),
        ),
        (
            json!({"spec": {"placement": {"nodeSelector": {"disk": "v".repeat(64)}}}}),
            "spec.placement.nodeSelector[disk]: maxLength",
            json!({"spec": {"placement": {"nodeSelector": {"disk": "v".repeat(63)}}}}),
        ),
        (
            json!({"spec": {"placement": {"topologyKey": "k".repeat(318)}}}),
            "spec.placement.topologyKey: maxLength",
            json!({"spec": {"placement": {"topologyKey": "kubernetes.io/hostname"}}}),
        ),
        (
            json!({"spec": {"mds": {"resources": {"limits": quantities(7)}}}}),
            "spec.mds.resources.limits: maxProperties",
            json!({"spec": {"mds": {"resources": {"limits": quantities(6)}}}}),
        ),
        (
            json!({"spec": {"mds": {"resources": {"limits": {"cpu": "two"}}}}}),
            "spec.mds.resources.limits[cpu]: pattern",
            json!({"spec": {"mds": {"resources": {"limits": {"cpu": 2, "memory": "1.5Gi"}}}}}),
        ),
        (
            json!({"spec": {"chunkservers": {"resources": {"requests": {"memory": "-1Gi"}}}}}),
            "spec.chunkservers.resources.requests[memory]: pattern",
            json!({"spec": {"chunkservers": {"resources": {"requests": {"memory": "0", "cpu": "+.5"}}}}}),
        ),
        (
            json!({"spec": {"chunkservers": {"resources": {"requests": {"cpu": -1}}}}}),
            "spec.chunkservers.resources.requests[cpu]: minimum",
            json!({"spec": {"chunkservers": {"resources": {"requests": {"cpu": 0}}}}}),
        ),
        (
            json!({"spec": {"mds": {"resources": {"requests": {"cpu": "1".repeat(65)}}}}}),
            "spec.mds.resources.requests[cpu]: maxLength",
            json!({"spec": {"mds": {"resources": {"requests": {"cpu": "1".repeat(64)}}}}}),
        ),
        (
            json!({"spec": {"image": "a".repeat(1025)}}),
            "spec.image: maxLength",
            json!({"spec": {"image": "a".repeat(1024)}}),
        ),
        (
            json!({"spec": {"imagePullSecrets": ["s".repeat(254)]}}),
            "spec.imagePullSecrets[0]: maxLength",
            json!({"spec": {"imagePullSecrets": ["s".repeat(253)]}}),
        ),
        (
            json!({"spec": {"chunkservers": {"storage": {"size": "1".repeat(65)}}}}),
            "spec.chunkservers.storage.size: maxLength",
            json!({"spec": {"chunkservers": {"storage": {"size": "1".repeat(64)}}}}),
        ),
        (
            json!({"spec": {"logicalPool": {"name": "p".repeat(64)}}}),
            "spec.logicalPool.name: maxLength",
            json!({"spec": {"logicalPool": {"name": "p".repeat(63)}}}),
        ),
        (
            json!({"spec": {"mds": {"replicas": 0}}}),
            "spec.mds.replicas: minimum",
            json!({"spec": {"mds": {"replicas": 1}}}),
        ),
        (
            json!({"spec": {"chunkservers": {"formatPercent": 100}}}),
            "spec.chunkservers.formatPercent: maximum",
            json!({"spec": {"chunkservers": {"formatPercent": 99}}}),
        ),
    ];
    for (refused, expected, accepted) in table {
        let errors = check(refused.clone());
        assert!(
            errors.iter().any(|e| e == expected),
            "{refused}: expected {expected:?}, got {errors:?}"
        );
        assert_eq!(check(accepted.clone()), Vec::<String>::new(), "{accepted}");
    }
}

#[test]
fn cel_rejects_changing_fixed_fields() {
    let old = patched(
        json!({"spec": {"imagePullSecrets": ["registry"], "chunkservers": {"storage": {"size": "100Gi", "storageClassName": "fast"}}}}),
    );
    let table = [
        (
            json!({"spec": {"chunkservers": {"storage": {"storageClassName": "slow"}}}}),
            "storage.storageClassName is immutable",
        ),
        (
            json!({"spec": {"etcd": {"storage": {"storageClassName": "new"}}}}),
            "storage.storageClassName is immutable",
        ),
        (
            json!({"spec": {"etcd": {"clientPort": 3379}}}),
            "spec.etcd.clientPort is immutable",
        ),
        (
            json!({"spec": {"etcd": {"peerPort": 3380}}}),
            "spec.etcd.peerPort is immutable",
        ),
        (
            json!({"spec": {"chunkservers": {"port": 9200}}}),
            "spec.chunkservers.port is immutable",
        ),
        (
            json!({"spec": {"imagePullSecrets": ["other"]}}),
            "spec.imagePullSecrets is immutable",
        ),
        (
            json!({"spec": {"logicalPool": {"replicas": 1, "zones": 1}}}),
            "spec.logicalPool.replicas is immutable",
        ),
    ];
    for (patch, expected) in table {
        let mut new = old.clone();
        merge_json(&mut new, &patch);
        let errors = cel_errors(&new, Some(&old));
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{patch}: expected {expected:?}, got {errors:?}"
        );
    }
    // A smaller size is the operator's to refuse (only the cluster knows the volumes' size,
    // and a refused growth must be revertible): the CRD takes it.
    let mut shrunk = old.clone();
    merge_json(
        &mut shrunk,
        &json!({"spec": {"chunkservers": {"storage": {"size": "50Gi"}}, "etcd": {"storage": {"size": "5Gi"}}}}),
    );
    assert_eq!(cel_errors(&shrunk, Some(&old)), Vec::<String>::new());
    // Growing storage and scaling are allowed.
    let mut grown = old.clone();
    merge_json(
        &mut grown,
        &json!({"spec": {"chunkservers": {"replicas": 5, "storage": {"size": "200Gi"}}, "mds": {"replicas": 5}}}),
    );
    assert_eq!(cel_errors(&grown, Some(&old)), Vec::<String>::new());
}

/// Each rendered document parses as the k8s-openapi type of its kind, with nothing lost.
fn assert_parses_as_its_type(document: &Value) {
    fn roundtrip<K: serde::de::DeserializeOwned + serde::Serialize + k8s_openapi::Resource>(
        document: &Value,
    ) {
        let typed: K =
            serde_json::from_value(document.clone()).unwrap_or_else(|e| panic!("{e}: {document}"));
        assert_eq!(
            &curve_operator::desired::typed_value(&typed),
            document,
            "fields lost in a round trip"
        );
    }
    match document["kind"].as_str().unwrap() {
        "ConfigMap" => roundtrip::<ConfigMap>(document),
        "Service" => roundtrip::<Service>(document),
        "PodDisruptionBudget" => roundtrip::<PodDisruptionBudget>(document),
        "StatefulSet" => roundtrip::<StatefulSet>(document),
        "Secret" => roundtrip::<k8s_openapi::api::core::v1::Secret>(document),
        "Job" => roundtrip::<k8s_openapi::api::batch::v1::Job>(document),
        "PodMonitor" => roundtrip::<curve_operator::api::prometheus::PodMonitor>(document),
        "PrometheusRule" => roundtrip::<curve_operator::api::prometheus::PrometheusRule>(document),
        "ServiceAccount" => roundtrip::<k8s_openapi::api::core::v1::ServiceAccount>(document),
        "Role" => roundtrip::<k8s_openapi::api::rbac::v1::Role>(document),
        "RoleBinding" => roundtrip::<k8s_openapi::api::rbac::v1::RoleBinding>(document),
        "ClusterRole" => roundtrip::<k8s_openapi::api::rbac::v1::ClusterRole>(document),
        "ClusterRoleBinding" => {
            roundtrip::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(document)
        }
        "CSIDriver" => roundtrip::<k8s_openapi::api::storage::v1::CSIDriver>(document),
        "StorageClass" => roundtrip::<k8s_openapi::api::storage::v1::StorageClass>(document),
        "Deployment" => roundtrip::<k8s_openapi::api::apps::v1::Deployment>(document),
        "DaemonSet" => roundtrip::<k8s_openapi::api::apps::v1::DaemonSet>(document),
        other => panic!("unexpected kind {other}"),
    }
}

fn split_documents(stream: &str) -> Vec<Value> {
    stream
        .split("---\n")
        // The header before the first document is comments only.
        .filter(|doc| {
            doc.lines()
                .any(|line| !line.trim().is_empty() && !line.starts_with('#'))
        })
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .collect()
}

#[test]
fn every_example_renders_objects_that_parse_as_kubernetes_types() {
    for (example, golden, expected_kinds) in [
        (
            "examples/curvecluster.yaml",
            "tests/golden/curvecluster.yaml",
            18,
        ),
        (
            "examples/curvecluster-production.yaml",
            "tests/golden/curvecluster-production.yaml",
            19,
        ),
        (
            "examples/curvecluster-monitored.yaml",
            "tests/golden/curvecluster-monitored.yaml",
            22,
        ),
        (
            "examples/curvecluster-csi.yaml",
            "tests/golden/curvecluster-csi.yaml",
            28,
        ),
    ] {
        let manifest = std::fs::read_to_string(repo(example)).unwrap();
        let stream = render(&manifest, "default").unwrap();
        let documents = split_documents(&stream);
        assert_eq!(documents.len(), expected_kinds, "{example}");
        documents.iter().for_each(assert_parses_as_its_type);
        // The whole rendering, object by object, against the reviewed golden file.
        golden::check(&repo(golden), &stream, &format!("render of {example}"));
    }
}

#[test]
fn render_prints_objects_in_apply_order() {
    let stream = render(
        &std::fs::read_to_string(repo("examples/curvecluster.yaml")).unwrap(),
        "default",
    )
    .unwrap();
    let order: Vec<String> = split_documents(&stream)
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    let hash = order
        .iter()
        .find_map(|name| name.strip_prefix("Job/demo-physical-pool-"))
        .expect("a physical-pool Job")
        .to_string();
    assert_eq!(
        order,
        [
            "ConfigMap/demo-etcd",
            "ConfigMap/demo-etcd-members",
            "Service/demo-etcd",
            "PodDisruptionBudget/demo-etcd",
            "StatefulSet/demo-etcd",
            "Secret/demo-root-password",
            "ConfigMap/demo-mds",
            "Service/demo-mds",
            "PodDisruptionBudget/demo-mds",
            "StatefulSet/demo-mds",
            "ConfigMap/demo-topology",
            "ConfigMap/demo-chunkserver",
            "Service/demo-chunkserver",
            "PodDisruptionBudget/demo-chunkserver",
            "StatefulSet/demo-chunkserver-0",
            &format!("Job/demo-physical-pool-{hash}"),
            &format!("Job/demo-chunkservers-online-{hash}"),
            "Job/demo-logical-pool",
        ]
    );
}

#[test]
fn render_command_uses_the_namespace_flag_when_the_manifest_has_none() {
    let output = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args([
            "render",
            "-f",
            repo("examples/curvecluster.yaml").to_str().unwrap(),
            "--namespace",
            "storage",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let documents = split_documents(&String::from_utf8(output.stdout).unwrap());
    assert!(
        documents
            .iter()
            .all(|d| d["metadata"]["namespace"] == "storage")
    );
}

/// `curve-operator render -f` on a file holding `manifest`.
fn render_file(manifest: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, manifest).unwrap();
    Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args(["render", "-f"])
        .arg(&file)
        .output()
        .unwrap()
}

/// The stderr of `curve-operator render -f` refusing `manifest`: exit status 2, nothing on
/// stdout.
fn render_refusal(manifest: &str) -> String {
    let output = render_file(manifest);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "nothing on stdout");
    String::from_utf8(output.stderr).unwrap()
}

fn assert_names_every(stderr: &str, expected: &[&str]) {
    for expected in expected {
        assert!(
            stderr.contains(expected),
            "stderr lacks {expected:?}: {stderr}"
        );
    }
}

#[test]
fn render_command_rejects_an_invalid_cluster_with_every_error_and_exit_2() {
    let stderr = render_refusal(
        "apiVersion: curve.opencurve.io/v1alpha1\nkind: CurveCluster\nmetadata: {name: bad}\n\
         spec:\n  image: ''\n  etcd: {replicas: 2}\n  chunkservers: {replicas: 3, storage: {size: 1Gi}, formatPercent: 0}\n",
    );
    assert_names_every(
        &stderr,
        &[
            "spec.image: must name a Curve image",
            "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 2)",
            "spec.chunkservers.formatPercent: must be between 5 and 99 (got 0)",
        ],
    );
    let output = render_file("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "error: not a CurveCluster: expected apiVersion curve.opencurve.io/v1alpha1, \
         kind CurveCluster (got apiVersion \"v1\", kind \"ConfigMap\")\n"
    );
}

/// Values serde cannot read are refused like invalid ones: every field named with what was
/// given, on stderr, nothing on stdout, exit status 2.
#[test]
fn render_command_names_the_field_of_every_value_it_cannot_read() {
    let stderr = render_refusal(
        "apiVersion: curve.opencurve.io/v1alpha1\nkind: CurveCluster\nmetadata: {name: bad}\n\
         spec:\n  image: opencurvedocker/curvebs:v1.2.6\n  imagePullPolicy: Sometimes\n\
         \x20 etcd: {replicas: three, replica: 5}\n  chunkservers: {replicas: 3}\n\
         \x20 placement:\n    tolerations: [{key: dedicated, operator: In, tolerationSeconds: soon}]\n",
    );
    assert!(
        stderr.starts_with("error: the CurveCluster is invalid:\n"),
        "{stderr}"
    );
    assert_names_every(
        &stderr,
        &[
            "  spec.imagePullPolicy: must be one of \"Always\", \"IfNotPresent\", \"Never\" (got \"Sometimes\")\n",
            "  spec.etcd.replicas: must be an integer (got \"three\")\n",
            "  spec.etcd.replica: unknown field\n",
            "  spec.chunkservers.storage: is required but missing\n",
            "  spec.placement.tolerations[0].operator: must be one of \"\", \"Equal\", \"Exists\" (got \"In\")\n",
            "  spec.placement.tolerations[0].tolerationSeconds: must be an integer (got \"soon\")\n",
        ],
    );
    // Once readable, every invalid value is refused by validation, with its path and value.
    let stderr = render_refusal(
        "apiVersion: curve.opencurve.io/v1alpha1\nkind: CurveCluster\nmetadata: {name: 1bad}\n\
         spec:\n  image: opencurvedocker/CurveBS\n  chunkservers: {replicas: 3, storage: {size: 1Gi}}\n\
         \x20 mds: {resources: {requests: {cpu: '2'}, limits: {cpu: '1'}}}\n\
         \x20 placement:\n    nodeSelector: {bad key: x}\n    tolerations: [{operator: Exists, value: curve}]\n\
         \x20 logicalPool: {zones: 2}\n",
    );
    assert_names_every(
        &stderr,
        &[
            "  metadata.name: must be a DNS-1035 label",
            "(got \"1bad\")\n",
            "  spec.image: must be an image reference",
            "(got \"opencurvedocker/CurveBS\")\n",
            "  spec.mds.resources.requests[cpu]: must be at most the cpu limit 1 (got 2)\n",
            "  spec.placement.nodeSelector[bad key]: the key must be a label key",
            "  spec.placement.tolerations[0].value: must be empty when operator is Exists (got \"curve\")\n",
            "  spec.logicalPool.zones: must equal spec.logicalPool.replicas",
        ],
    );
    // A YAML syntax error names its place.
    let stderr = render_refusal("apiVersion: curve.opencurve.io/v1alpha1\nkind: [CurveCluster\n");
    assert!(
        stderr.starts_with("error: cannot parse the CurveCluster: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("line"),
        "the YAML error names its line: {stderr}"
    );
}

#[test]
fn render_states_its_placement_and_gives_curve_ip_addresses_only() {
    let stream = render(
        &std::fs::read_to_string(repo("examples/curvecluster.yaml")).unwrap(),
        "default",
    )
    .unwrap();
    assert!(
        stream.starts_with("# Every object curve-operator creates for CurveCluster default/demo"),
        "{stream}"
    );
    assert!(
        stream.contains("#   node-2 (192.0.2.2): demo-etcd-1, demo-mds-1, demo-chunkserver-0-1\n")
    );
    let documents = split_documents(&stream);
    let data = |name: &str, key: &str| -> String {
        let map = documents
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
            .unwrap();
        map["data"][key].as_str().unwrap().to_string()
    };
    let value_of = |text: &str, key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_string()
    };
    // Curve's C++ daemons and tools parse these with butil::str2endpoint: ip:port only.
    let mds = "192.0.2.1:6700,192.0.2.2:6700,192.0.2.3:6700";
    assert_eq!(
        value_of(
            &data("demo-chunkserver", "chunkserver.conf"),
            "mds.listen.addr"
        ),
        mds
    );
    assert_eq!(
        value_of(
            &data("demo-chunkserver", "cs_client.conf"),
            "mds.listen.addr"
        ),
        mds
    );
    assert_eq!(
        value_of(&data("demo-topology", "tools.conf"), "mdsAddr"),
        mds
    );
    assert_eq!(
        value_of(&data("demo-topology", "tools.conf"), "etcdAddr"),
        "192.0.2.1:2379,192.0.2.2:2379,192.0.2.3:2379"
    );
    let map: Value = serde_json::from_str(&data("demo-topology", "topology.json")).unwrap();
    let ips: Vec<&str> = map["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["internalip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    // The pool Jobs read this map from the ConfigMap, the physical pool the one of its hash.
    let hash = data("demo-topology", "servers-hash");
    let jobs: Vec<&Value> = documents.iter().filter(|d| d["kind"] == "Job").collect();
    assert_eq!(jobs.len(), 3);
    for job in jobs {
        let pod = &job["spec"]["template"]["spec"];
        let script = pod["containers"][0]["command"][2].as_str().unwrap();
        if !script.contains("-cluster_map=") {
            continue;
        }
        assert!(
            script.contains("-cluster_map=/curve-operator/topology/topology.json"),
            "{script}"
        );
        let volume = (pod["volumes"].as_array().unwrap().iter())
            .find(|v| v["name"] == "topology")
            .unwrap();
        assert_eq!(volume["configMap"]["name"], "demo-topology");
        assert_eq!(volume["configMap"]["items"][0]["key"], "topology.json");
        if job["metadata"]["name"]
            .as_str()
            .unwrap()
            .contains("physical-pool")
        {
            assert!(script.contains(&format!("!= {hash} ]")), "{script}");
            assert!(job["metadata"]["name"].as_str().unwrap().ends_with(&hash));
        }
    }
    // No password in any ConfigMap: only the placeholder the config init container fills.
    for document in documents.iter().filter(|d| d["kind"] == "ConfigMap") {
        let text = document["data"].to_string();
        assert!(!text.contains("root_password\\n") || text.contains("${CURVE_ROOT_PASSWORD}"));
        assert!(
            !text.contains("=root_password"),
            "the image's public default password: {text}"
        );
    }
}

/// The CRD's quantity pattern admits exactly the non-negative quantities the operator's parser
/// (Kubernetes' ParseQuantity grammar) reads.
#[test]
fn the_quantity_pattern_agrees_with_the_operators_parser() {
    use curve_operator::api::rules::QUANTITY_RE;
    use curve_operator::validate::k8s::parse_quantity;
    let pattern = regex::Regex::new(QUANTITY_RE).unwrap();
    let samples = [
        "0", "2", "1.5", ".5", "5.", "+1", "500m", "100n", "3u", "4k", "10M", "10G", "1Ti",
        "1.5Gi", "2Ei", "1e3", "1E-2", "1.5e+2", "-1", "-1Gi", "two", "", "1 Gi", "1gi", "1KB",
        "Gi", "1e", "1.2.3", "m", "+", ".", "1Ki5", "1e1.5", "1e.5", "1E2.", "1e+",
    ];
    for text in samples {
        let parsed =
            parse_quantity(text).is_some_and(|value| value >= 0.0) && !text.starts_with('-');
        assert_eq!(pattern.is_match(text), parsed, "{text:?}");
    }
}

/// Runs `curve-operator render -f -` with `input` on standard input.
fn render_from_stdin(input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args(["render", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn minimal_manifest() -> String {
    std::fs::read_to_string(repo("examples/curvecluster.yaml")).unwrap()
}

/// A refusal: exit status 2, nothing on stdout, and stderr as returned.
fn refused(output: std::process::Output) -> String {
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout");
    stderr
}

#[test]
fn render_reads_standard_input_for_dash() {
    let output = render_from_stdin(&minimal_manifest());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        render(&minimal_manifest(), "default").unwrap()
    );
}

/// A typo is refused with its path, as the API server's strict field validation refuses it.
#[test]
fn render_refuses_an_unknown_field_with_its_path() {
    let typo = minimal_manifest().replace(
        "etcd: {replicas: 3}",
        "etcd: {replicas: 3, storge: {size: 20Gi}}",
    );
    assert_ne!(typo, minimal_manifest());
    assert_eq!(
        refused(render_from_stdin(&typo)),
        "error: the CurveCluster is invalid:\n  spec.etcd.storge: unknown field\n"
    );
    let typo = minimal_manifest().replace("metadata:\n", "metadata:\n  lables: {team: a}\n");
    assert_eq!(
        refused(render_from_stdin(&typo)),
        "error: the CurveCluster is invalid:\n  metadata.lables: unknown field\n"
    );
}

#[test]
fn render_renders_every_curvecluster_of_a_stream_in_order() {
    let second = minimal_manifest()
        .replace("name: demo", "name: other\n  namespace: storage")
        .replace("etcd: {replicas: 3}", "etcd: {replicas: 1}");
    assert_ne!(second, minimal_manifest());
    let stream = format!("---\n{}---\n{second}---\n", minimal_manifest());
    let output = render_from_stdin(&stream);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    // Each cluster exactly as rendered alone, one after the other.
    assert_eq!(
        stdout,
        render(&minimal_manifest(), "default").unwrap() + &render(&second, "default").unwrap()
    );
    let owners: Vec<String> = split_documents(&stdout)
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["metadata"]["namespace"].as_str().unwrap(),
                d["metadata"]["labels"]["app.kubernetes.io/instance"]
                    .as_str()
                    .unwrap()
            )
        })
        .collect();
    assert_eq!(owners.len(), 36, "18 objects per cluster");
    assert!(
        owners[..18].iter().all(|o| o == "default/demo"),
        "{owners:?}"
    );
    assert!(
        owners[18..].iter().all(|o| o == "storage/other"),
        "{owners:?}"
    );
}

/// Another kind, a second copy of a cluster or an empty input is refused in plain words,
/// every document's problem at once, and no YAML library's hint.
#[test]
fn render_refuses_a_stream_with_anything_but_distinct_curveclusters() {
    let invalid = minimal_manifest().replace("etcd: {replicas: 3}", "etcd: {replicas: 2}");
    let stream = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n---\n{invalid}---\n{}",
        minimal_manifest(),
        minimal_manifest()
    );
    assert_eq!(
        refused(render_from_stdin(&stream)),
        "error: document 2: not a CurveCluster: expected apiVersion curve.opencurve.io/v1alpha1, \
         kind CurveCluster (got apiVersion \"v1\", kind \"ConfigMap\")\n\
         document 3: the CurveCluster is invalid:\n  spec.etcd.replicas: must be 1, 3, 5 or 7 (got 2)\n\
         document 4: CurveCluster default/demo was already given as document 1 \
         (each cluster may appear once)\n"
    );
    assert_eq!(
        refused(render_from_stdin("---\n# nothing\n")),
        "error: the input holds no YAML document: nothing to render\n"
    );
    let stderr = refused(render_from_stdin("apiVersion: v1\nkind: [ConfigMap\n"));
    assert!(
        stderr.starts_with("error: cannot parse the CurveCluster: line 2 column 7: "),
        "{stderr}"
    );
    assert!(!stderr.contains("from_str"), "{stderr}");
}

/// What the operator does with a change of a spec field on a running cluster.
#[derive(Clone, Copy, Debug, PartialEq)]
enum OnChange {
    /// Carried out: the CRD accepts it and the operator refuses nothing.
    Carried,
    /// The CRD refuses it itself (with a field message): never accepted, so no trap.
    CrdRefuses,
    /// Only the running cluster can tell: the operator may refuse it (naming the field), and
    /// then setting it back must be accepted by the CRD and by the operator.
    OperatorMayRefuse,
}

/// The leaf fields of the spec schema (maps and lists count as one field).
fn spec_fields() -> Vec<String> {
    fn walk(schema: &Value, path: &str, fields: &mut Vec<String>) {
        match schema.get("properties").and_then(Value::as_object) {
            Some(properties) => {
                for (name, property) in properties {
                    walk(property, &format!("{path}.{name}"), fields);
                }
            }
            None => fields.push(path.to_string()),
        }
    }
    let mut fields = Vec::new();
    walk(&schema()["properties"]["spec"], "spec", &mut fields);
    fields
}

/// What the operator refuses when a cluster running `old` is changed to `new`: its
/// StatefulSets and their claims (StorageClass `standard`, which does not allow expansion)
/// are those of `old`.
fn operator_refusals(old: &Value, new: &Value) -> Vec<String> {
    use curve_operator::desired::{Observed, build};
    use curve_operator::reconcile::{decide::decide, snapshot::Snapshot};
    let validated = |v: &Value| {
        curve_operator::validate::validate(&serde_json::from_value(v.clone()).unwrap(), "ns")
            .unwrap()
    };
    let running = build(&validated(old), &Observed::default());
    let mut snapshot = Snapshot::default();
    for set in running.tiers().iter().flat_map(|t| t.stateful_sets.clone()) {
        let spec = set.spec.clone().unwrap();
        for template in spec.volume_claim_templates.iter().flatten() {
            for i in 0..spec.replicas.unwrap() {
                let mut claim = template.clone();
                claim.metadata.name = Some(format!(
                    "{}-{}-{i}",
                    template.metadata.name.as_deref().unwrap(),
                    set.metadata.name.as_deref().unwrap()
                ));
                let claim_spec = claim.spec.as_mut().unwrap();
                claim_spec.storage_class_name = Some("standard".into());
                claim.status = Some(k8s_openapi::api::core::v1::PersistentVolumeClaimStatus {
                    capacity: claim_spec.resources.clone().unwrap().requests,
                    ..Default::default()
                });
                snapshot.claims.push(ClaimReading::shared(claim));
            }
        }
        snapshot.stateful_sets.push(set);
    }
    snapshot.storage_classes.insert("standard".into(), false);
    let now = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap();
    decide(
        &validated(new),
        &snapshot,
        &Default::default(),
        Some(2),
        now,
    )
    .observation
    .refused
}

/// Issue 14: no trap. Every spec field is listed with what a change of it does on a running
/// cluster; a change the operator may refuse is refused naming its field, and its revert is
/// accepted by the CRD's rules (CEL, with the refused spec as the old object) and by the
/// operator. A new spec field fails this test until it is listed.
#[test]
fn every_spec_change_is_carried_out_refused_by_the_crd_or_revertible() {
    use OnChange::*;
    let old = patched(json!({"spec": {
        "imagePullSecrets": ["registry"],
        "chunkservers": {"replicas": 4, "disksPerNode": 2, "storage": {"size": "100Gi", "storageClassName": "fast"}},
        "etcd": {"storage": {"size": "10Gi", "storageClassName": "fast"},
                 "backup": {"schedule": "0 3 * * *", "storage": {"size": "20Gi"}}},
    }}));
    // (field, a change to it, what happens)
    let table: Vec<(&str, Value, OnChange)> = vec![
        // The next snapshot is scheduled from the new schedule; keep counts at the next one.
        (
            "spec.etcd.backup.schedule",
            json!({"etcd": {"backup": {"schedule": "*/5 * * * *"}}}),
            Carried,
        ),
        (
            "spec.etcd.backup.keep",
            json!({"etcd": {"backup": {"keep": 3}}}),
            Carried,
        ),
        // The next backup Job copies to the bucket as the spec then says.
        (
            "spec.etcd.backup.s3.endpoint",
            json!({"etcd": {"backup": {"s3": {"endpoint": "https://s3.eu-west-1.amazonaws.com", "bucket": "backups", "credentialsSecret": "s3-keys"}}}}),
            Carried,
        ),
        (
            "spec.etcd.backup.s3.bucket",
            json!({"etcd": {"backup": {"s3": {"endpoint": "http://minio:9000", "bucket": "other", "credentialsSecret": "s3-keys"}}}}),
            Carried,
        ),
        (
            "spec.etcd.backup.s3.prefix",
            json!({"etcd": {"backup": {"s3": {"endpoint": "http://minio:9000", "bucket": "backups", "credentialsSecret": "s3-keys", "prefix": "prod/"}}}}),
            Carried,
        ),
        (
            "spec.etcd.backup.s3.region",
            json!({"etcd": {"backup": {"s3": {"endpoint": "http://minio:9000", "bucket": "backups", "credentialsSecret": "s3-keys", "region": "eu-west-1"}}}}),
            Carried,
        ),
        (
            "spec.etcd.backup.s3.credentialsSecret",
            json!({"etcd": {"backup": {"s3": {"endpoint": "http://minio:9000", "bucket": "backups", "credentialsSecret": "s3-keys-2"}}}}),
            Carried,
        ),
        // The backup claim keeps what it was created with.
        (
            "spec.etcd.backup.storage.size",
            json!({"etcd": {"backup": {"storage": {"size": "30Gi"}}}}),
            CrdRefuses,
        ),
        (
            "spec.etcd.backup.storage.storageClassName",
            json!({"etcd": {"backup": {"storage": {"storageClassName": "slow"}}}}),
            CrdRefuses,
        ),
        (
            "spec.image",
            json!({"image": "opencurvedocker/curvebs:v1.2.7"}),
            Carried,
        ),
        (
            "spec.imagePullPolicy",
            json!({"imagePullPolicy": "Always"}),
            Carried,
        ),
        (
            "spec.imagePullSecrets",
            json!({"imagePullSecrets": ["other"]}),
            CrdRefuses,
        ),
        (
            "spec.etcd.replicas",
            // One member at a time (reconcile/membership.rs); a wait is never a refusal.
            json!({"etcd": {"replicas": 5}}),
            Carried,
        ),
        (
            "spec.etcd.clientPort",
            json!({"etcd": {"clientPort": 3379}}),
            CrdRefuses,
        ),
        (
            "spec.etcd.peerPort",
            json!({"etcd": {"peerPort": 3380}}),
            CrdRefuses,
        ),
        (
            "spec.etcd.storage.size",
            json!({"etcd": {"storage": {"size": "20Gi"}}}),
            OperatorMayRefuse,
        ),
        (
            "spec.etcd.storage.size",
            json!({"etcd": {"storage": {"size": "5Gi"}}}),
            OperatorMayRefuse,
        ),
        (
            "spec.etcd.storage.storageClassName",
            json!({"etcd": {"storage": {"storageClassName": "slow"}}}),
            CrdRefuses,
        ),
        (
            // Rendered into etcd.conf, whose hash the pod template carries: the members roll.
            "spec.etcd.quotaBackendBytes",
            json!({"etcd": {"quotaBackendBytes": "2Gi"}}),
            Carried,
        ),
        (
            "spec.etcd.resources.limits",
            json!({"etcd": {"resources": {"limits": {"memory": "4Gi"}}}}),
            Carried,
        ),
        (
            "spec.etcd.resources.requests",
            json!({"etcd": {"resources": {"requests": {"cpu": "1"}}}}),
            Carried,
        ),
        (
            "spec.mds.replicas",
            json!({"mds": {"replicas": 5}}),
            Carried,
        ),
        ("spec.mds.port", json!({"mds": {"port": 6701}}), Carried),
        (
            "spec.mds.dummyPort",
            json!({"mds": {"dummyPort": 7701}}),
            Carried,
        ),
        (
            "spec.mds.resources.limits",
            json!({"mds": {"resources": {"limits": {"memory": "4Gi"}}}}),
            Carried,
        ),
        (
            "spec.mds.resources.requests",
            json!({"mds": {"resources": {"requests": {"cpu": "1"}}}}),
            Carried,
        ),
        (
            "spec.chunkservers.replicas",
            json!({"chunkservers": {"replicas": 5}}),
            Carried,
        ),
        (
            "spec.chunkservers.replicas",
            json!({"chunkservers": {"replicas": 3}}),
            OperatorMayRefuse,
        ),
        (
            "spec.chunkservers.disksPerNode",
            json!({"chunkservers": {"disksPerNode": 3}}),
            Carried,
        ),
        (
            "spec.chunkservers.disksPerNode",
            json!({"chunkservers": {"disksPerNode": 1}}),
            OperatorMayRefuse,
        ),
        (
            "spec.chunkservers.port",
            json!({"chunkservers": {"port": 9200}}),
            CrdRefuses,
        ),
        (
            "spec.chunkservers.storage.size",
            json!({"chunkservers": {"storage": {"size": "200Gi"}}}),
            OperatorMayRefuse,
        ),
        (
            "spec.chunkservers.storage.size",
            json!({"chunkservers": {"storage": {"size": "50Gi"}}}),
            OperatorMayRefuse,
        ),
        (
            "spec.chunkservers.storage.storageClassName",
            json!({"chunkservers": {"storage": {"storageClassName": "slow"}}}),
            CrdRefuses,
        ),
        (
            "spec.chunkservers.copysets",
            json!({"chunkservers": {"copysets": 200}}),
            Carried,
        ),
        (
            "spec.chunkservers.formatPercent",
            json!({"chunkservers": {"formatPercent": 80}}),
            Carried,
        ),
        (
            "spec.chunkservers.resources.limits",
            json!({"chunkservers": {"resources": {"limits": {"memory": "4Gi"}}}}),
            Carried,
        ),
        (
            "spec.chunkservers.resources.requests",
            json!({"chunkservers": {"resources": {"requests": {"cpu": "1"}}}}),
            Carried,
        ),
        (
            "spec.chunkservers.updatePolicy",
            json!({"chunkservers": {"updatePolicy": "Zone"}}),
            Carried,
        ),
        (
            "spec.placement.nodeSelector",
            json!({"placement": {"nodeSelector": {"disk": "ssd"}}}),
            Carried,
        ),
        (
            "spec.placement.tolerations",
            json!({"placement": {"tolerations": [{"key": "k", "operator": "Exists"}]}}),
            Carried,
        ),
        (
            "spec.placement.antiAffinity",
            json!({"placement": {"antiAffinity": "Preferred"}}),
            Carried,
        ),
        (
            "spec.placement.topologyKey",
            json!({"placement": {"topologyKey": "rack"}}),
            Carried,
        ),
        (
            "spec.placement.zoneLabel",
            json!({"placement": {"zoneLabel": "topology.kubernetes.io/zone"}}),
            Carried,
        ),
        (
            "spec.logicalPool.physicalPool",
            json!({"logicalPool": {"physicalPool": "other"}}),
            CrdRefuses,
        ),
        (
            "spec.logicalPool.name",
            json!({"logicalPool": {"name": "other"}}),
            CrdRefuses,
        ),
        (
            "spec.logicalPool.replicas",
            json!({"logicalPool": {"replicas": 1, "zones": 1}}),
            CrdRefuses,
        ),
        (
            "spec.logicalPool.zones",
            json!({"logicalPool": {"zones": 1}}),
            CrdRefuses,
        ),
        (
            "spec.hostNetwork",
            json!({"hostNetwork": false}),
            CrdRefuses,
        ),
        ("spec.paused", json!({"paused": true}), Carried),
        (
            "spec.cleanup.policy",
            json!({"cleanup": {"policy": "Delete"}}),
            Carried,
        ),
        (
            "spec.cleanup.confirmation",
            json!({"cleanup": {"confirmation": "yes-really-destroy-data"}}),
            Carried,
        ),
        (
            "spec.rollout.progressDeadlineSeconds",
            json!({"rollout": {"progressDeadlineSeconds": 60}}),
            Carried,
        ),
        // Monitoring objects are applied or deleted; no Curve pod changes.
        (
            "spec.monitoring.enabled",
            json!({"monitoring": {"enabled": true}}),
            Carried,
        ),
        (
            "spec.monitoring.interval",
            json!({"monitoring": {"interval": "1m"}}),
            Carried,
        ),
        (
            "spec.monitoring.rules",
            json!({"monitoring": {"rules": false}}),
            Carried,
        ),
        (
            "spec.monitoring.labels",
            json!({"monitoring": {"labels": {"release": "kube-prometheus-stack"}}}),
            Carried,
        ),
        // curve-csi: a new image or MDSADDR rolls the controller and reaches each node plugin
        // pod when no Curve volume is attached there (or the annotation allows it); a changed
        // StorageClass is re-created (its parameters are immutable). A name that belongs to
        // another provisioner or cluster is told at run time (the Csi condition), not here.
        (
            "spec.csi.enabled",
            json!({"csi": {"enabled": true}}),
            Carried,
        ),
        (
            "spec.csi.images.plugin",
            json!({"csi": {"images": {"plugin": "curvecsi/curve-csi:v3.0.2"}}}),
            Carried,
        ),
        (
            "spec.csi.images.nodeDriverRegistrar",
            json!({"csi": {"images": {"nodeDriverRegistrar": "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.3.0"}}}),
            Carried,
        ),
        (
            "spec.csi.images.provisioner",
            json!({"csi": {"images": {"provisioner": "registry.k8s.io/sig-storage/csi-provisioner:v2.2.3"}}}),
            Carried,
        ),
        (
            "spec.csi.images.attacher",
            json!({"csi": {"images": {"attacher": "registry.k8s.io/sig-storage/csi-attacher:v3.2.2"}}}),
            Carried,
        ),
        (
            "spec.csi.images.resizer",
            json!({"csi": {"images": {"resizer": "registry.k8s.io/sig-storage/csi-resizer:v1.2.1"}}}),
            Carried,
        ),
        (
            "spec.csi.storageClass.name",
            json!({"csi": {"storageClass": {"name": "curve-2"}}}),
            Carried,
        ),
        (
            "spec.csi.storageClass.user",
            json!({"csi": {"storageClass": {"user": "apps"}}}),
            Carried,
        ),
        (
            "spec.csi.storageClass.reclaimPolicy",
            json!({"csi": {"storageClass": {"reclaimPolicy": "Retain"}}}),
            Carried,
        ),
        (
            "spec.csi.storageClass.allowVolumeExpansion",
            json!({"csi": {"storageClass": {"allowVolumeExpansion": false}}}),
            Carried,
        ),
        (
            "spec.csi.storageClass.isDefault",
            json!({"csi": {"storageClass": {"isDefault": true}}}),
            Carried,
        ),
        // A restore is asked for, and starts only with its confirmation (reconcile/restore.rs);
        // a wrong confirmation is the CRD's to refuse.
        (
            "spec.etcd.restore.snapshot",
            json!({"etcd": {"restore": {"snapshot": "etcd-20260101T000000Z"}}}),
            Carried,
        ),
        (
            "spec.etcd.restore.confirmation",
            json!({"etcd": {"restore": {"snapshot": "etcd-20260101T000000Z", "confirmation": "yes-restore-etcd-from-etcd-20260101T000000Z"}}}),
            Carried,
        ),
        // A pod template change: rolled like an image change.
        (
            "spec.coreDumps.hostPath",
            json!({"coreDumps": {"hostPath": "/var/lib/curve/cores"}}),
            Carried,
        ),
    ];
    let listed: std::collections::BTreeSet<&str> = table.iter().map(|(f, _, _)| *f).collect();
    let unlisted: Vec<String> = spec_fields()
        .into_iter()
        .filter(|f| !listed.contains(f.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "spec fields with no listed change: {unlisted:?}"
    );
    let stale: Vec<&&str> = listed
        .iter()
        .filter(|f| !spec_fields().contains(&f.to_string()))
        .collect();
    assert!(stale.is_empty(), "listed but not in the spec: {stale:?}");

    assert_eq!(operator_refusals(&old, &old), Vec::<String>::new());
    for (field, change, expected) in &table {
        let mut new = old.clone();
        merge_json(&mut new, &json!({"spec": change}));
        let crd = cel_errors(&new, Some(&old));
        // A spec the CRD refuses never reaches the operator.
        let operator = || operator_refusals(&old, &new);
        match expected {
            Carried => {
                assert_eq!(crd, Vec::<String>::new(), "{field} {change}");
                assert_eq!(operator(), Vec::<String>::new(), "{field} {change}");
            }
            CrdRefuses => assert!(!crd.is_empty(), "{field} {change}: the CRD accepts it"),
            OperatorMayRefuse => {
                assert_eq!(crd, Vec::<String>::new(), "{field} {change}");
                let operator = operator();
                assert!(
                    operator.len() == 1 && operator[0].starts_with(&format!("{field}: ")),
                    "{field} {change}: refused with {operator:?}"
                );
                // The way back: the CRD takes the old spec over the refused one, and so does
                // the operator.
                assert_eq!(
                    cel_errors(&old, Some(&new)),
                    Vec::<String>::new(),
                    "{field} {change}: its revert is refused by the CRD"
                );
                assert_eq!(
                    operator_refusals(&old, &old),
                    Vec::<String>::new(),
                    "{field}"
                );
            }
        }
    }
}
