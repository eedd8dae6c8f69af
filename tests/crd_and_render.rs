//! The generated CRD (and its CEL rules), the examples, and the `render` command.

use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::CustomResourceExt;
use kube::core::cel::Validator;
use serde_json::{Value, json};

use curve_operator::api::{CurveCluster, crd_yaml};
use curve_operator::render::render;
use curve_operator::util::merge_json;

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
        ["Phase", "Primary", "Etcd", "MDS", "ChunkServers", "Age"]
    );
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

fn schema() -> Value {
    serde_json::to_value(CurveCluster::crd()).unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn minimal() -> Value {
    json!({
        "apiVersion": "curve.opencurve.io/v1alpha1",
        "kind": "CurveCluster",
        "metadata": {"name": "demo"},
        "spec": {
            "image": "opencurvedocker/curvebs:v1.2.6",
            "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}}
        }
    })
}

fn patched(patch: Value) -> Value {
    let mut value = minimal();
    merge_json(&mut value, &patch);
    value
}

fn cel_errors(object: &Value, old: Option<&Value>) -> Vec<String> {
    match Validator::new().validate(&schema(), object, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
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
            "spec.logicalPool.replicas must not exceed spec.logicalPool.zones",
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

#[test]
fn cel_rejects_shrinking_storage_and_changing_fixed_fields() {
    let old = patched(
        json!({"spec": {"imagePullSecrets": ["registry"], "chunkservers": {"storage": {"size": "100Gi", "storageClassName": "fast"}}}}),
    );
    let table = [
        (
            json!({"spec": {"chunkservers": {"storage": {"size": "50Gi"}}}}),
            "storage.size must not shrink",
        ),
        (
            json!({"spec": {"etcd": {"storage": {"size": "5Gi"}}}}),
            "storage.size must not shrink",
        ),
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
    fn roundtrip<K: serde::de::DeserializeOwned + serde::Serialize>(document: &Value) {
        let typed: K =
            serde_json::from_value(document.clone()).unwrap_or_else(|e| panic!("{e}: {document}"));
        assert_eq!(
            &serde_json::to_value(typed).unwrap(),
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
            17,
        ),
        (
            "examples/curvecluster-production.yaml",
            "tests/golden/curvecluster-production.yaml",
            18,
        ),
    ] {
        let manifest = std::fs::read_to_string(repo(example)).unwrap();
        let stream = render(&manifest, "default").unwrap();
        let documents = split_documents(&stream);
        assert_eq!(documents.len(), expected_kinds, "{example}");
        documents.iter().for_each(assert_parses_as_its_type);
        // The whole rendering, object by object, against the reviewed golden file.
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(repo(golden), &stream).unwrap();
        }
        let expected = std::fs::read_to_string(repo(golden)).unwrap();
        assert!(
            stream == expected,
            "{example} renders differently from {golden} (UPDATE_GOLDEN=1 to accept)"
        );
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

#[test]
fn render_command_rejects_an_invalid_cluster_with_every_error_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("curve-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: curve.opencurve.io/v1alpha1\nkind: CurveCluster\nmetadata: {name: bad}\n\
         spec:\n  image: ''\n  etcd: {replicas: 2}\n  chunkservers: {replicas: 3, storage: {size: 1Gi}, formatPercent: 0}\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args(["render", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8(output.stderr).unwrap();
    for expected in [
        "spec.image: must name a Curve image",
        "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 2)",
        "spec.chunkservers.formatPercent: must be between 1 and 99 (got 0)",
    ] {
        assert!(
            stderr.contains(expected),
            "stderr lacks {expected:?}: {stderr}"
        );
    }
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args(["render", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("kind CurveCluster (got apiVersion \"v1\", kind \"ConfigMap\")")
    );
    std::fs::remove_dir_all(&dir).unwrap();
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
    // Every Job carries the same map as the ConfigMap.
    let jobs: Vec<&Value> = documents.iter().filter(|d| d["kind"] == "Job").collect();
    assert_eq!(jobs.len(), 3);
    for job in jobs {
        let env = &job["spec"]["template"]["spec"]["containers"][0]["env"][0];
        assert_eq!(
            serde_json::from_str::<Value>(env["value"].as_str().unwrap()).unwrap(),
            map
        );
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
