//! The Helm chart, linted and rendered by the real Helm v4 engine (helm-python-sdk, driven by
//! tests/helm/chart.py), and every rendered object checked against its Kubernetes type.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use curve_operator::runtime::RuntimeArgs;
use curve_operator::runtime::logging::LogFormat;
use curve_operator::runtime::rbac::{Grant, Scope, grants};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const RELEASE: &str = "curve-operator";
const NAMESPACE: &str = "curve-system";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs tests/helm/chart.py; `Err` carries Helm's message.
fn helm(args: &[&str]) -> Result<String, String> {
    let out = Command::new("python3")
        .arg(repo("tests/helm/chart.py"))
        .args(args)
        .output()
        .expect("python3 must be installed to run the Helm tests");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(String::from_utf8(out.stdout).unwrap()),
        // The helper's code for a missing helm-python-sdk: a setup error, never a pass.
        Some(3) => panic!("{stderr}"),
        _ => Err(stderr),
    }
}

/// The documented values variants (README.md), each rendered in every test below.
fn variants() -> Vec<(&'static str, Value)> {
    vec![
        ("defaults", json!({})),
        ("one namespace", json!({"watchNamespace": "prod"})),
        (
            "service monitor",
            json!({"serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}}),
        ),
        (
            "two replicas",
            json!({"replicaCount": 2, "leaderElection": {"enabled": false}}),
        ),
        (
            "json logs",
            json!({"logFormat": "json", "logLevel": "debug", "httpPort": 9090}),
        ),
        ("extras", extras()),
        (
            "dashboards",
            json!({"dashboards": {"enabled": true, "annotations": {"grafana_folder": "Curve"}}}),
        ),
    ]
}

/// Three replicas with extra arguments, environment and topology spread constraints.
fn extras() -> Value {
    json!({
        "replicaCount": 3,
        "extraArgs": ["--leader-election-namespace=ops"],
        "extraEnv": [
            {"name": "RUST_BACKTRACE", "value": "1"},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
        ],
        "topologySpreadConstraints": [{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "curve-operator"}}
        }]
    })
}

/// The default values merged with a variant's, as Helm does (maps merge, the rest replaces).
fn merged(overrides: &Value) -> Value {
    fn merge(base: &mut Value, over: &Value) {
        match (base, over) {
            (Value::Object(b), Value::Object(o)) => o
                .iter()
                .for_each(|(k, v)| merge(b.entry(k).or_insert(Value::Null), v)),
            (b, o) => *b = o.clone(),
        }
    }
    let mut values: Value =
        serde_saphyr::from_str(&read("charts/curve-operator/values.yaml")).unwrap();
    merge(&mut values, overrides);
    values
}

struct Rendered {
    objects: Vec<Value>,
    notes: String,
}

fn render(values: &Value) -> Result<Rendered, String> {
    let templates: BTreeMap<String, String> =
        serde_json::from_str(&helm(&["render", &values.to_string()])?)
            .expect("the helper prints JSON");
    let mut rendered = Rendered {
        objects: vec![],
        notes: String::new(),
    };
    for (path, text) in templates {
        if path.ends_with("/NOTES.txt") {
            rendered.notes = text;
            continue;
        }
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{path} is not YAML: {e}\n{text}"));
        rendered
            .objects
            .extend(docs.into_iter().filter(|d| !d.is_null()));
    }
    Ok(rendered)
}

fn render_ok(values: &Value) -> Rendered {
    render(values).unwrap_or_else(|e| panic!("render of {values} failed: {e}"))
}

/// Parses `object` as `K` and back: the result must be the same JSON, so no field was unknown
/// to the type (dropped) or of the wrong type (rejected).
fn typed<K: Resource<DynamicType = ()> + DeserializeOwned + Serialize>(object: &Value) -> K {
    let parsed: K = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("not a valid {}: {e}\n{object:#}", K::kind(&())));
    let back = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        &back,
        object,
        "{} changed in a round trip through its type",
        K::kind(&())
    );
    parsed
}

impl Rendered {
    fn all<K: Resource<DynamicType = ()> + DeserializeOwned + Serialize>(&self) -> Vec<K> {
        let kind = K::kind(&());
        self.objects
            .iter()
            .filter(|o| o["kind"] == *kind)
            .map(typed::<K>)
            .collect()
    }

    fn one<K: Resource<DynamicType = ()> + DeserializeOwned + Serialize>(&self) -> K {
        let mut all = self.all::<K>();
        assert_eq!(all.len(), 1, "expected one {}", K::kind(&()));
        all.remove(0)
    }

    fn kinds(&self) -> Vec<String> {
        self.objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or("<no kind>").to_owned())
            .collect()
    }
}

#[test]
fn chart_metadata_is_v2_at_0_1_0() {
    let chart: Value = serde_saphyr::from_str(&read("charts/curve-operator/Chart.yaml")).unwrap();
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "curve-operator");
    assert_eq!(chart["version"], "0.1.0");
    assert_eq!(chart["appVersion"], "0.1.0");
}

#[test]
fn chart_lints_cleanly_with_every_variant() {
    for (name, values) in variants() {
        let report: Value =
            serde_json::from_str(&helm(&["lint", &values.to_string()]).unwrap()).unwrap();
        assert_eq!(report["errors"], json!([]), "{name}: {report:#}");
        // Severity 1 is informational ("icon is recommended"); warnings and errors fail.
        let problems: Vec<&Value> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["severity"].as_i64() >= Some(2))
            .collect();
        assert!(problems.is_empty(), "{name}: {problems:#?}");
    }
}

#[test]
fn every_rendered_object_is_a_valid_kubernetes_object() {
    for (name, values) in variants() {
        let rendered = render_ok(&values);
        for object in &rendered.objects {
            match object["kind"].as_str().unwrap_or_default() {
                "ServiceAccount" => drop(typed::<ServiceAccount>(object)),
                "ClusterRole" => drop(typed::<ClusterRole>(object)),
                "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(object)),
                "Role" => drop(typed::<Role>(object)),
                "RoleBinding" => drop(typed::<RoleBinding>(object)),
                "Service" => drop(typed::<Service>(object)),
                "Deployment" => drop(typed::<Deployment>(object)),
                "PodDisruptionBudget" => drop(typed::<PodDisruptionBudget>(object)),
                "ConfigMap" => drop(typed::<ConfigMap>(object)),
                // No k8s-openapi type: the Prometheus Operator's CRD; checked field by field below.
                "ServiceMonitor" => assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1"),
                other => panic!("{name}: unexpected kind {other:?}"),
            }
        }
        let mut kinds = rendered.kinds();
        kinds.sort();
        // The Roles (and bindings) of the leader-election Lease and of the node Leases.
        let mut expected = vec![
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ];
        if values.get("watchNamespace").is_some() {
            expected.extend(["Role", "RoleBinding"]);
        }
        if values.pointer("/serviceMonitor/enabled") == Some(&json!(true)) {
            expected.push("ServiceMonitor");
        }
        if values["replicaCount"].as_i64() > Some(1) {
            expected.push("PodDisruptionBudget");
        }
        if values.pointer("/dashboards/enabled") == Some(&json!(true)) {
            expected.extend(
                curve_operator::dashboards::all()
                    .iter()
                    .map(|_| "ConfigMap"),
            );
        }
        expected.sort();
        assert_eq!(kinds, expected, "{name}");
    }
}

fn rule_grants(rules: &[PolicyRule]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in rules {
        assert!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "{rule:?}"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    assert!(
                        out.insert((group.clone(), resource.clone(), verb.clone())),
                        "granted twice: {group} {resource} {verb}"
                    );
                }
            }
        }
    }
    out
}

/// The grants of each (Cluster)Role, keyed by "ClusterRole" or "Role/<namespace>", after
/// checking that a binding gives each to the operator's ServiceAccount.
fn granted(rendered: &Rendered) -> BTreeMap<String, BTreeSet<Grant>> {
    let subject_is_operator = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        let s = &subjects.as_ref().unwrap()[..];
        s.len() == 1
            && s[0].kind == "ServiceAccount"
            && s[0].name == RELEASE
            && s[0].namespace.as_deref() == Some(NAMESPACE)
    };
    let bound_cluster: Vec<RoleRef> = rendered
        .all::<ClusterRoleBinding>()
        .into_iter()
        .filter(|b| subject_is_operator(&b.subjects))
        .map(|b| b.role_ref)
        .collect();
    let bound: Vec<(Option<String>, RoleRef)> = rendered
        .all::<RoleBinding>()
        .into_iter()
        .filter(|b| subject_is_operator(&b.subjects))
        .map(|b| (b.metadata.namespace, b.role_ref))
        .collect();
    let mut out: BTreeMap<String, BTreeSet<Grant>> = BTreeMap::new();
    for role in rendered.all::<ClusterRole>() {
        let name = role.metadata.name.clone().unwrap();
        assert!(
            bound_cluster
                .iter()
                .any(|r| r.kind == "ClusterRole" && r.name == name),
            "ClusterRole {name} is not bound"
        );
        out.entry("ClusterRole".into())
            .or_default()
            .extend(rule_grants(role.rules.as_deref().unwrap_or_default()));
    }
    for role in rendered.all::<Role>() {
        let (name, ns) = (
            role.metadata.name.clone().unwrap(),
            role.metadata.namespace.clone(),
        );
        assert!(
            bound
                .iter()
                .any(|(bns, r)| *bns == ns && r.kind == "Role" && r.name == name),
            "Role {name} is not bound"
        );
        out.entry(format!("Role/{}", ns.unwrap()))
            .or_default()
            .extend(rule_grants(role.rules.as_deref().unwrap_or_default()));
    }
    out
}

#[test]
fn rbac_grants_exactly_the_permissions_listed_in_the_code() {
    let lease = grants(&[Scope::OperatorNamespace]);
    let node_leases = grants(&[Scope::NodeLeases]);

    let cluster_wide = granted(&render_ok(&json!({})));
    let expected = BTreeMap::from([
        (
            "ClusterRole".to_owned(),
            grants(&[Scope::Watched, Scope::Cluster]),
        ),
        (format!("Role/{NAMESPACE}"), lease.clone()),
        ("Role/kube-node-lease".to_owned(), node_leases.clone()),
    ]);
    assert_eq!(cluster_wide, expected);

    let one_namespace = granted(&render_ok(&json!({"watchNamespace": "prod"})));
    let expected = BTreeMap::from([
        ("ClusterRole".to_owned(), grants(&[Scope::Cluster])),
        ("Role/prod".to_owned(), grants(&[Scope::Watched])),
        (format!("Role/{NAMESPACE}"), lease),
        ("Role/kube-node-lease".to_owned(), node_leases),
    ]);
    assert_eq!(one_namespace, expected);

    let none = render_ok(&json!({"rbac": {"create": false}}));
    assert!(granted(&none).is_empty());
}

/// What the chart's container args mean to the operator's flag parser.
#[derive(Parser)]
struct Run {
    #[command(flatten)]
    args: RuntimeArgs,
}

fn operator_pod(deployment: &Deployment) -> PodSpec {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .clone()
        .unwrap()
}

fn operator_container(deployment: &Deployment) -> Container {
    let pod = operator_pod(deployment);
    assert_eq!(pod.containers.len(), 1);
    pod.containers[0].clone()
}

#[test]
fn deployment_is_hardened_and_passes_the_values_as_flags() {
    for (name, overrides) in variants() {
        let values = merged(&overrides);
        let deployment = render_ok(&overrides).one::<Deployment>();
        let pod = operator_pod(&deployment);
        let container = operator_container(&deployment);

        let uid = values["securityContext"]["runAsUser"].as_i64();
        let pod_sc = pod.security_context.unwrap();
        assert_eq!(
            (pod_sc.run_as_non_root, pod_sc.run_as_user),
            (Some(true), uid),
            "{name}"
        );
        assert_eq!(pod_sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let sc = container.security_context.clone().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true), "{name}");
        assert_eq!(sc.run_as_user, uid, "{name}");
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{name}");
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{name}");
        assert_eq!(
            sc.capabilities.unwrap().drop,
            Some(vec!["ALL".to_owned()]),
            "{name}"
        );
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let resources = container.resources.clone().unwrap();
        assert!(
            resources
                .requests
                .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")),
            "{name}"
        );
        assert!(
            resources
                .limits
                .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")),
            "{name}"
        );

        let port = values["httpPort"].as_i64().unwrap() as i32;
        let ports = container.ports.clone().unwrap();
        assert_eq!(
            (ports[0].name.as_deref(), ports[0].container_port),
            (Some("http"), port),
            "{name}"
        );
        for (probe, path) in [
            (&container.liveness_probe, "/livez"),
            (&container.readiness_probe, "/readyz"),
        ] {
            let get = probe.clone().unwrap().http_get.unwrap();
            assert_eq!(get.path.as_deref(), Some(path), "{name}");
            assert_eq!(
                get.port,
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("http".into())
            );
        }
        // The chart's own variables first, then extraEnv as given.
        let env = serde_json::to_value(container.env.clone().unwrap()).unwrap();
        let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
        let mut expected_env = vec![
            json!({"name": "POD_NAME", "valueFrom": field("metadata.name")}),
            json!({"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")}),
        ];
        expected_env.extend(values["extraEnv"].as_array().unwrap().iter().cloned());
        assert_eq!(env, Value::Array(expected_env), "{name}");

        let args = container.args.clone().unwrap();
        assert_eq!(args[0], "run", "{name}");
        let parsed = Run::try_parse_from(&args)
            .unwrap_or_else(|e| panic!("{name}: the operator rejects {args:?}: {e}"))
            .args;
        let expect_format = if values["logFormat"] == "json" {
            LogFormat::Json
        } else {
            LogFormat::Text
        };
        assert_eq!(parsed.log_format, expect_format, "{name}");
        assert_eq!(
            parsed.log_level.as_deref(),
            values["logLevel"].as_str(),
            "{name}"
        );
        assert_eq!(parsed.http_addr.port() as i32, port, "{name}");
        // The backup Jobs' bucket copies run the operator's own image.
        assert_eq!(parsed.job_image, container.image, "{name}");
        let watch = values["watchNamespace"].as_str().filter(|s| !s.is_empty());
        assert_eq!(parsed.namespace.as_deref(), watch, "{name}");
        let elect = values["leaderElection"]["enabled"] == true
            || values["replicaCount"].as_i64() > Some(1);
        assert_eq!(parsed.leader_elect, elect, "{name}");
        assert_eq!(
            parsed.leader_election_lease,
            format!("{RELEASE}-leader"),
            "{name}"
        );
        // extraArgs come last, as given.
        let extra: Vec<String> = serde_json::from_value(values["extraArgs"].clone()).unwrap();
        assert!(args.ends_with(&extra), "{name}: {args:?}");
        assert_eq!(
            serde_json::to_value(&pod.topology_spread_constraints).unwrap(),
            match values["topologySpreadConstraints"].as_array() {
                Some(list) if !list.is_empty() => Value::Array(list.clone()),
                _ => Value::Null,
            },
            "{name}: passed through as written"
        );
    }
    let extras = Run::try_parse_from(
        operator_container(&render_ok(&extras()).one::<Deployment>())
            .args
            .unwrap(),
    )
    .unwrap()
    .args;
    assert_eq!(extras.leader_election_namespace.as_deref(), Some("ops"));
    let off = render_ok(&json!({"leaderElection": {"enabled": false}})).one::<Deployment>();
    assert!(
        !operator_container(&off)
            .args
            .unwrap()
            .iter()
            .any(|a| a == "--leader-elect")
    );
}

#[test]
fn metrics_service_and_service_monitor_point_at_the_http_port() {
    let rendered = render_ok(
        &json!({"serviceMonitor": {"enabled": true, "interval": "15s", "labels": {"release": "prom"}}}),
    );
    let service = rendered.one::<Service>();
    let pod_labels = rendered
        .one::<Deployment>()
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .labels
        .unwrap();
    let spec = service.spec.unwrap();
    assert!(
        spec.selector
            .unwrap()
            .iter()
            .all(|(k, v)| pod_labels.get(k) == Some(v)),
        "the Service selects no operator pod"
    );
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.name.as_deref(), Some("http-metrics"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("http".into()))
    );

    let monitor = rendered
        .objects
        .iter()
        .find(|o| o["kind"] == "ServiceMonitor")
        .unwrap();
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    // honorLabels: the operator's series name their CurveCluster by `namespace` and `name`
    // (the MDS ones their pod by `pod`), which the target's own labels must not overwrite.
    assert_eq!(
        monitor["spec"]["endpoints"],
        json!([{"port": "http-metrics", "path": "/metrics", "interval": "15s", "honorLabels": true}])
    );
    let dishonored = render_ok(&json!({"serviceMonitor": {"enabled": true, "honorLabels": false}}));
    let monitor = dishonored
        .objects
        .iter()
        .find(|o| o["kind"] == "ServiceMonitor")
        .unwrap();
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], false);
    let service_labels = service.metadata.labels.unwrap();
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    assert!(
        selector
            .iter()
            .all(|(k, v)| service_labels.get(k).map(String::as_str) == v.as_str()),
        "{selector:?}"
    );

    let plain = render_ok(&json!({}));
    assert!(!plain.kinds().contains(&"ServiceMonitor".to_owned()));
}

/// One ConfigMap per generated dashboard, each holding the committed file as it is, with the
/// labels Grafana's sidecar selects by; none unless enabled.
#[test]
fn dashboards_render_as_config_maps_for_grafanas_sidecar() {
    let generated = curve_operator::dashboards::all();
    let dashboards = |rendered: &Rendered| -> BTreeMap<String, ConfigMap> {
        rendered
            .all::<ConfigMap>()
            .into_iter()
            .map(|c| (c.metadata.name.clone().unwrap(), c))
            .collect()
    };
    for values in [
        json!({}),
        json!({"dashboards": {"enabled": false, "labels": {"team": "storage"}}}),
    ] {
        assert!(dashboards(&render_ok(&values)).is_empty(), "{values}");
    }

    let rendered = render_ok(&json!({"dashboards": {"enabled": true}}));
    let maps = dashboards(&rendered);
    let names: BTreeSet<String> = generated
        .iter()
        .map(|d| format!("{RELEASE}-dashboard-{}", d.name))
        .collect();
    assert_eq!(maps.keys().cloned().collect::<BTreeSet<_>>(), names);
    let chart_labels = rendered.one::<Service>().metadata.labels.unwrap();
    for dashboard in &generated {
        let map = &maps[&format!("{RELEASE}-dashboard-{}", dashboard.name)];
        assert_eq!(map.metadata.namespace.as_deref(), Some(NAMESPACE));
        let labels = map.metadata.labels.clone().unwrap();
        assert_eq!(
            labels["grafana_dashboard"], "1",
            "the sidecar's default label"
        );
        assert!(chart_labels.iter().all(|(k, v)| labels.get(k) == Some(v)));
        assert_eq!(map.metadata.annotations, None);
        let data = map.data.clone().unwrap();
        let key = format!("curve-{}.json", dashboard.name);
        assert_eq!(data.keys().collect::<Vec<_>>(), [&key]);
        assert!(
            data[&key]
                == read(&format!(
                    "charts/curve-operator/dashboards/{}",
                    dashboard.file_name()
                )),
            "{key} is not the committed file"
        );
        let json: Value =
            serde_json::from_str(&data[&key]).unwrap_or_else(|e| panic!("{key} is not JSON: {e}"));
        assert_eq!(json, dashboard.json);
        assert_eq!(json["uid"], format!("curve-{}", dashboard.name));
        // Well under what a ConfigMap may hold (1 MiB) and what `kubectl apply` can annotate.
        assert!(
            data[&key].len() < 256 * 1024,
            "{key}: {} bytes",
            data[&key].len()
        );
    }

    let placed = render_ok(&json!({"dashboards": {
        "enabled": true,
        "namespace": "monitoring",
        "labels": {"team": "storage"},
        "annotations": {"grafana_folder": "Curve"},
    }}));
    let maps = dashboards(&placed);
    assert_eq!(maps.len(), generated.len());
    for map in maps.values() {
        assert_eq!(map.metadata.namespace.as_deref(), Some("monitoring"));
        let labels = map.metadata.labels.clone().unwrap();
        // Maps merge with the defaults: the sidecar's label stays unless overridden.
        assert_eq!(
            (
                labels["grafana_dashboard"].as_str(),
                labels["team"].as_str()
            ),
            ("1", "storage")
        );
        assert_eq!(
            map.metadata.annotations,
            Some(BTreeMap::from([(
                "grafana_folder".to_string(),
                "Curve".to_string()
            )]))
        );
    }
    let relabelled = render_ok(
        &json!({"dashboards": {"enabled": true, "labels": {"grafana_dashboard": "curve"}}}),
    );
    for map in dashboards(&relabelled).values() {
        assert_eq!(
            map.metadata.labels.as_ref().unwrap()["grafana_dashboard"],
            "curve"
        );
    }
}

#[test]
fn schema_rejects_bad_values_naming_them() {
    let cases = [
        (json!({"replicaCount": -1}), "/replicaCount"),
        (json!({"replicaCount": "two"}), "/replicaCount"),
        (json!({"logFormat": "xml"}), "/logFormat"),
        (json!({"logLevel": "verbose"}), "/logLevel"),
        (json!({"httpPort": 80}), "/httpPort"),
        (
            json!({"image": {"pullPolicy": "Sometimes"}}),
            "/image/pullPolicy",
        ),
        (
            json!({"securityContext": {"runAsUser": 0}}),
            "/securityContext/runAsUser",
        ),
        (
            json!({"watchNamespace": "Not_A_Namespace"}),
            "/watchNamespace",
        ),
        (
            json!({"serviceMonitor": {"enabled": "yes"}}),
            "/serviceMonitor/enabled",
        ),
        (
            json!({"serviceMonitor": {"interval": "soon"}}),
            "/serviceMonitor/interval",
        ),
        (
            json!({"serviceMonitor": {"honorLabels": "yes"}}),
            "/serviceMonitor/honorLabels",
        ),
        (
            json!({"dashboards": {"enabled": "true"}}),
            "/dashboards/enabled",
        ),
        (
            json!({"dashboards": {"labels": {"grafana_dashboard": 1}}}),
            "/dashboards/labels/grafana_dashboard",
        ),
        (
            json!({"dashboards": {"annotations": ["grafana_folder"]}}),
            "/dashboards/annotations",
        ),
        (
            json!({"dashboards": {"namespace": "Monitoring"}}),
            "/dashboards/namespace",
        ),
        (json!({"dashboards": {"folder": "Curve"}}), "'folder'"),
        (json!({"replicas": 2}), "'replicas'"),
        (json!({"extraArgs": "--verbose"}), "/extraArgs"),
        (json!({"extraEnv": [{"value": "1"}]}), "/extraEnv/0"),
        (
            json!({"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}),
            "/topologySpreadConstraints/0/maxSkew",
        ),
    ];
    for (values, named) in cases {
        let err = render(&values)
            .err()
            .unwrap_or_else(|| panic!("{values} was accepted"));
        assert!(
            err.contains("schema") && err.contains(named),
            "{values}: message does not name {named}: {err}"
        );
    }
}

#[test]
fn chart_crd_is_the_repository_crd() {
    let repo_crd = read("crds/curvecluster.yaml");
    assert!(
        read("charts/curve-operator/crds/curvecluster.yaml") == repo_crd,
        "charts/curve-operator/crds/curvecluster.yaml differs from crds/curvecluster.yaml: \
         cp crds/curvecluster.yaml charts/curve-operator/crds/"
    );
    let crds: Vec<Value> = serde_json::from_str(&helm(&["crds"]).unwrap()).unwrap();
    assert_eq!(crds.len(), 1);
    assert_eq!(
        crds[0]["data"].as_str(),
        Some(repo_crd.as_str()),
        "Helm does not install the repository's CRD"
    );
    let crd: CustomResourceDefinition = typed(&serde_saphyr::from_str::<Value>(&repo_crd).unwrap());
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("curveclusters.curve.opencurve.io")
    );
}

#[test]
fn deploy_manifest_is_a_fresh_render_of_the_defaults() {
    let fresh = helm(&["manifest"]).unwrap();
    assert!(
        read("deploy/operator.yaml") == fresh,
        "deploy/operator.yaml is stale: python3 tests/helm/chart.py manifest > deploy/operator.yaml"
    );
    let docs: Vec<Value> = serde_saphyr::from_multiple(&fresh).unwrap();
    let from_chart = render_ok(&json!({})).objects;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    assert_eq!(docs.len(), from_chart.len());
}

/// Dotted paths of the keys in values.yaml, each with whether a comment line precedes it.
fn value_keys(yaml: &str) -> Vec<(String, bool)> {
    let mut stack: Vec<(usize, String)> = vec![];
    let mut previous = "";
    let mut keys = vec![];
    for line in yaml.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if let Some((key, _)) = body
            .split_once(':')
            .filter(|_| !body.starts_with('#') && !body.starts_with('-'))
        {
            stack.retain(|(i, _)| *i < indent);
            let path = stack
                .iter()
                .map(|(_, k)| k.as_str())
                .chain([key])
                .collect::<Vec<_>>()
                .join(".");
            keys.push((path, previous.trim_start().starts_with('#')));
            stack.push((indent, key.to_owned()));
        }
        if !body.is_empty() {
            previous = line;
        }
    }
    keys
}

#[test]
fn every_value_is_commented_and_documented_in_the_readme() {
    let keys = value_keys(&read("charts/curve-operator/values.yaml"));
    assert!(keys.len() > 30, "{keys:?}");
    let readme = read("charts/curve-operator/README.md");
    for (path, commented) in keys {
        assert!(commented, "values.yaml: {path} has no comment");
        assert!(
            readme.contains(&format!("`{path}`")),
            "README.md does not document `{path}`"
        );
    }
}

#[test]
fn notes_tell_the_next_steps() {
    for (name, values) in variants() {
        let notes = render_ok(&values).notes;
        assert!(
            notes.contains("kubectl apply") && notes.contains("examples/curvecluster.yaml"),
            "{name}: {notes}"
        );
        assert!(notes.contains("kubectl get curve"), "{name}: {notes}");
    }
    let notes = render_ok(&json!({"watchNamespace": "prod"})).notes;
    assert!(
        notes.contains("-n prod -f examples/curvecluster.yaml"),
        "{notes}"
    );
}

/// One operator pod is kept through drains when there is a standby to keep; with one replica a
/// PDB of minAvailable 1 would block every drain, so there is none.
#[test]
fn pod_disruption_budget_only_with_more_than_one_replica() {
    for replicas in [0, 1] {
        let rendered = render_ok(&json!({"replicaCount": replicas}));
        assert!(
            rendered.all::<PodDisruptionBudget>().is_empty(),
            "replicaCount {replicas}"
        );
    }
    for replicas in [2, 3] {
        let rendered = render_ok(&json!({"replicaCount": replicas}));
        let budget = rendered.one::<PodDisruptionBudget>();
        let deployment = rendered.one::<Deployment>();
        assert_eq!(budget.metadata.name, deployment.metadata.name);
        assert_eq!(budget.metadata.namespace.as_deref(), Some(NAMESPACE));
        let spec = budget.spec.unwrap();
        assert_eq!(
            spec.min_available,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
        );
        assert_eq!(spec.max_unavailable, None);
        assert_eq!(
            spec.selector,
            Some(deployment.spec.unwrap().selector),
            "the budget covers exactly the operator pods"
        );
    }
}

/// The chart README's two RBAC tables: which object holds which rules, and the rules.
struct ReadmeRbac {
    /// (object as the README names it, the rule groups it holds).
    objects: Vec<(String, Vec<String>)>,
    /// (rule group, the rule) in the README's order.
    rules: Vec<(String, PolicyRule)>,
}

/// The rows of the Markdown table whose header row is `header`, each as its cells.
fn table_rows(markdown: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = markdown.lines().skip_while(|l| l.trim() != header);
    assert!(lines.next().is_some(), "no table with header {header:?}");
    lines
        .skip(1) // |---|---|
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// `` `a`, `b` `` → ["a", "b"]; `""` is the core group's empty name.
fn code_list(cell: &str) -> Vec<String> {
    cell.split(',')
        .map(|c| c.trim().trim_matches('`'))
        .map(|c| {
            if c == "\"\"" {
                String::new()
            } else {
                c.to_owned()
            }
        })
        .collect()
}

fn readme_rbac() -> ReadmeRbac {
    let readme = read("charts/curve-operator/README.md");
    let objects = table_rows(&readme, "| object | when | rules |")
        .into_iter()
        .map(|row| (row[0].clone(), code_list(&row[2])))
        .collect();
    let rules = table_rows(&readme, "| rules | API group | resources | verbs | why |")
        .into_iter()
        .map(|row| {
            let rule = PolicyRule {
                api_groups: Some(code_list(&row[1])),
                resources: Some(code_list(&row[2])),
                verbs: code_list(&row[3]),
                ..PolicyRule::default()
            };
            (row[0].clone(), rule)
        })
        .collect();
    ReadmeRbac { objects, rules }
}

impl ReadmeRbac {
    /// The rules the README says `object` holds, in order.
    fn rules_of(&self, object: &str) -> Vec<PolicyRule> {
        let (_, groups) = self
            .objects
            .iter()
            .find(|(name, _)| name == object)
            .unwrap_or_else(|| panic!("the README lists no {object}"));
        groups
            .iter()
            .flat_map(|group| {
                self.rules
                    .iter()
                    .filter(move |(g, _)| g == group)
                    .map(|(_, rule)| rule.clone())
            })
            .collect()
    }
}

#[test]
fn readme_rbac_tables_are_the_rendered_rules() {
    let readme = readme_rbac();
    let fullname = RELEASE;
    let cluster_roles = |rendered: &Rendered| -> BTreeMap<String, Vec<PolicyRule>> {
        rendered
            .all::<ClusterRole>()
            .into_iter()
            .map(|r| (r.metadata.name.unwrap(), r.rules.unwrap()))
            .collect()
    };
    let roles = |rendered: &Rendered| -> BTreeMap<(String, String), Vec<PolicyRule>> {
        rendered
            .all::<Role>()
            .into_iter()
            .map(|r| {
                let key = (r.metadata.namespace.unwrap(), r.metadata.name.unwrap());
                (key, r.rules.unwrap())
            })
            .collect()
    };
    let lease = readme.rules_of("Role `<fullname>-leader-election` in the release namespace");
    let node_leases = readme.rules_of("Role `<fullname>-node-clocks` in `kube-node-lease`");
    let node_clocks = (
        (
            "kube-node-lease".to_owned(),
            format!("{fullname}-node-clocks"),
        ),
        node_leases,
    );

    let cluster_wide = render_ok(&json!({}));
    assert_eq!(
        cluster_roles(&cluster_wide),
        BTreeMap::from([(
            fullname.to_owned(),
            readme.rules_of("ClusterRole `<fullname>`")
        )])
    );
    assert_eq!(
        roles(&cluster_wide),
        BTreeMap::from([
            (
                (NAMESPACE.to_owned(), format!("{fullname}-leader-election")),
                lease.clone()
            ),
            node_clocks.clone(),
        ])
    );

    let one_namespace = render_ok(&json!({"watchNamespace": "prod"}));
    assert_eq!(
        cluster_roles(&one_namespace),
        BTreeMap::from([(
            format!("{fullname}-cluster"),
            readme.rules_of("ClusterRole `<fullname>-cluster`")
        )])
    );
    assert_eq!(
        roles(&one_namespace),
        BTreeMap::from([
            (
                ("prod".to_owned(), fullname.to_owned()),
                readme.rules_of("Role `<fullname>` in `watchNamespace`")
            ),
            (
                (NAMESPACE.to_owned(), format!("{fullname}-leader-election")),
                lease
            ),
            node_clocks,
        ])
    );
    // Every rule group of the rules table is held by some object, and each group is the
    // code's scope of that name.
    let scopes = [
        ("watched", Scope::Watched),
        ("cluster", Scope::Cluster),
        ("lease", Scope::OperatorNamespace),
        ("nodeLeases", Scope::NodeLeases),
    ];
    for (group, scope) in scopes {
        let rules: Vec<PolicyRule> = readme
            .rules
            .iter()
            .filter(|(g, _)| g == group)
            .map(|(_, r)| r.clone())
            .collect();
        assert_eq!(
            rule_grants(&rules),
            grants(&[scope]),
            "README rules {group}"
        );
    }
    assert_eq!(
        readme.rules.len(),
        curve_operator::runtime::rbac::PERMISSIONS.len()
    );
}

/// `docker build -t IMAGE .` as a text shows it, the first one.
fn build_tag(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.split("docker build -t ").nth(1)?;
        rest.strip_suffix(" .").map(str::to_owned)
    })
}

#[test]
fn the_default_image_is_the_one_the_dockerfile_builds() {
    let values = merged(&json!({}));
    let chart: Value = serde_saphyr::from_str(&read("charts/curve-operator/Chart.yaml")).unwrap();
    assert_eq!(values["image"]["tag"], "", "the tag defaults to appVersion");
    let default_image = format!(
        "{}:{}",
        values["image"]["repository"].as_str().unwrap(),
        chart["appVersion"].as_str().unwrap()
    );
    let container = operator_container(&render_ok(&json!({})).one::<Deployment>());
    assert_eq!(container.image.as_deref(), Some(default_image.as_str()));
    assert_eq!(
        build_tag(&read("Dockerfile")).as_deref(),
        Some(default_image.as_str()),
        "the Dockerfile's build command"
    );
    let readme = read("charts/curve-operator/README.md");
    assert_eq!(
        build_tag(&readme).as_deref(),
        Some(default_image.as_str()),
        "the chart README's build command"
    );
    for load in [
        format!("kind load docker-image {default_image}"),
        "ctr -n k8s.io images import".to_owned(),
    ] {
        assert!(readme.contains(&load), "the chart README lacks {load:?}");
    }
}
