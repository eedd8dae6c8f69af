//! Property tests over generated CurveClusters (issue 25): reading, validating and rendering
//! never panic, whatever the spec; a spec the operator accepts is one the CRD accepts; and every
//! object rendered from it is one the API server would take, as far as can be checked offline.
//!
//! Each field is mostly drawn from values the operator should accept and sometimes from wild
//! ones (out of range, colliding, malformed, extreme), so both verdicts are exercised.

#[path = "support/crd.rs"]
mod crd;

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Value, json};

use curve_operator::render::{ExamplePlacement, objects, render};
use curve_operator::validate::{FieldError, InvalidCluster, parse_cluster, validate};

// ---- Generated specs ------------------------------------------------------------------------

/// Mostly `valid`, one time in forty `wild`.
fn mostly<T: std::fmt::Debug + Clone + 'static>(
    valid: impl Strategy<Value = T> + 'static,
    wild: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![39 => valid, 1 => wild].boxed()
}

/// An integer in `valid`, or a wild one: `wild`'s edges or any 32-bit integer.
fn int(valid: RangeInclusive<i64>, wild: &[i64]) -> BoxedStrategy<Value> {
    let edges = [wild, &[0, -1, i64::from(i32::MAX), i64::from(i32::MIN)]].concat();
    mostly(
        valid,
        prop_oneof![select(edges), any::<i32>().prop_map(i64::from)],
    )
    .prop_map(Value::from)
    .boxed()
}

fn string(valid: &'static str, wild: &'static str) -> BoxedStrategy<String> {
    mostly(valid, wild)
}

fn text(valid: &'static str, wild: &'static str) -> BoxedStrategy<Value> {
    string(valid, wild).prop_map(Value::from).boxed()
}

fn one_of(valid: &[&'static str], wild: &[&'static str]) -> BoxedStrategy<Value> {
    mostly(select(valid.to_vec()), select(wild.to_vec()))
        .prop_map(Value::from)
        .boxed()
}

/// Printable ASCII, spaces included.
const ANY_TEXT: &str = "[ -~]{0,40}";

fn quantity() -> BoxedStrategy<Value> {
    text(
        "[1-9][0-9]{0,3}(Ki|Mi|Gi|Ti|m|k|M|G)?",
        "[-+.0-9eEkKMGTPimnu ]{0,8}",
    )
}

fn label_key_string() -> BoxedStrategy<String> {
    string(
        "([a-z]{1,8}(\\.[a-z]{1,8}){0,2}/)?[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,10}[a-zA-Z0-9])?",
        ANY_TEXT,
    )
}

fn label_key() -> BoxedStrategy<Value> {
    label_key_string().prop_map(Value::from).boxed()
}

fn label_value() -> BoxedStrategy<Value> {
    text(
        "([a-zA-Z0-9]([a-zA-Z0-9_.-]{0,10}[a-zA-Z0-9])?)?",
        "[ -~]{0,70}",
    )
}

fn label_map() -> BoxedStrategy<Value> {
    btree_map(label_key_string(), label_value(), 0..3)
        .prop_map(map_of)
        .boxed()
}

fn map_of(map: BTreeMap<String, Value>) -> Value {
    Value::Object(map.into_iter().collect())
}

/// An object of the fields that are set.
fn object(fields: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_string(), value?)))
            .collect(),
    )
}

fn storage() -> BoxedStrategy<Value> {
    storage_of(quantity())
}

/// ChunkServer volumes: mostly sizes in Gi and Ti, large enough or not for the raft logs of
/// their copysets (the rule `pool_room`), sometimes any quantity.
fn volume_storage() -> BoxedStrategy<Value> {
    storage_of(
        prop_oneof![3 => text("[1-9][0-9]{0,2}(Gi|Ti)", "[1-9][0-9]{0,9}"), 1 => quantity()]
            .boxed(),
    )
}

fn storage_of(size: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    (
        size,
        option::of(text("[a-z]{1,10}(-[a-z]{1,5})?", ANY_TEXT)),
    )
        .prop_map(|(size, class)| object(vec![("size", Some(size)), ("storageClassName", class)]))
        .boxed()
}

/// A request and a limit of the same unit, the request at most the limit.
fn request_and_limit(units: &'static [&'static str]) -> BoxedStrategy<(String, String)> {
    (1..=8u32, 0..=8u32, select(units))
        .prop_map(|(request, more, unit)| {
            (
                format!("{request}{unit}"),
                format!("{}{unit}", request + more),
            )
        })
        .boxed()
}

fn resources() -> BoxedStrategy<Value> {
    let valid = (
        option::of(request_and_limit(&["", "m"])),
        option::of(request_and_limit(&["Mi", "Gi"])),
    )
        .prop_map(|(cpu, memory)| {
            let mut requests = serde_json::Map::new();
            let mut limits = serde_json::Map::new();
            for (name, amounts) in [("cpu", cpu), ("memory", memory)] {
                if let Some((request, limit)) = amounts {
                    requests.insert(name.into(), json!(request));
                    limits.insert(name.into(), json!(limit));
                }
            }
            json!({"requests": requests, "limits": limits})
        });
    let name = select(vec![
        "cpu",
        "memory",
        "ephemeral-storage",
        "hugepages-2Mi",
        "example.com/gpu",
        "gpu",
        "cpu cores",
        "requests.example.com/x",
        "kubernetes.io/x",
        "hugepages-",
    ])
    .prop_map(String::from);
    let amount = prop_oneof![quantity(), int(0..=64, &[-2])];
    let map = || option::of(btree_map(name.clone(), amount.clone(), 0..4).prop_map(map_of));
    let wild = (map(), map())
        .prop_map(|(limits, requests)| object(vec![("limits", limits), ("requests", requests)]));
    mostly(valid, wild)
}

/// Tolerations as Kubernetes takes them: a key equal to a value, a key that exists, every
/// taint; or any combination of fields.
fn toleration() -> BoxedStrategy<Value> {
    let effect = || select(vec!["", "NoSchedule", "PreferNoSchedule", "NoExecute"]);
    let valid = prop_oneof![
        (label_key_string(), label_value(), effect()).prop_map(|(key, value, effect)| {
            json!({"key": key, "operator": "Equal", "value": value, "effect": effect})
        }),
        (label_key_string(), effect())
            .prop_map(|(key, effect)| json!({"key": key, "operator": "Exists", "effect": effect})),
        (0..=3600i64).prop_map(|seconds| {
            json!({"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})
        }),
    ];
    let wild = (
        option::of(label_key()),
        option::of(one_of(&["", "Equal", "Exists"], &["In"])),
        option::of(label_value()),
        option::of(one_of(
            &["", "NoSchedule", "PreferNoSchedule", "NoExecute"],
            &["NoEvict"],
        )),
        option::of(int(0..=3600, &[-10])),
    )
        .prop_map(|(key, operator, value, effect, seconds)| {
            object(vec![
                ("key", key),
                ("operator", operator),
                ("value", value),
                ("effect", effect),
                ("tolerationSeconds", seconds),
            ])
        });
    mostly(valid, wild)
}

fn pool_name() -> BoxedStrategy<Value> {
    text(
        "[A-Za-z0-9]([A-Za-z0-9_.-]{0,20}[A-Za-z0-9])?",
        "[ -~]{0,70}",
    )
}

/// Logical pool replicas and zones: equal, as Curve requires, or anything.
fn pool_size() -> BoxedStrategy<(Value, Value)> {
    mostly((1..=3i64).prop_map(|r| (r, r)), (-1..=7i64, -1..=7i64))
        .prop_map(|(replicas, zones)| (json!(replicas), json!(zones)))
        .boxed()
}

/// Valid ports of each component lie in their own range, so only wild ones collide.
fn port(valid: RangeInclusive<i64>) -> BoxedStrategy<Value> {
    int(valid, &[1, 2379, 2380, 6700, 7700, 8200, 65535, 65536])
}

fn etcd() -> BoxedStrategy<Value> {
    (
        mostly(select(vec![1i64, 3, 5]), select(vec![2i64, 4, 7, 9])).prop_map(Value::from),
        port(2000..=2999),
        port(3000..=3999),
        option::of(storage()),
        // Quotas around the volumes' room and etcd's 8Gi, sometimes any quantity.
        option::of(
            prop_oneof![3 => text("[1-9][0-9]{0,3}(Mi|Gi)", "[1-9][0-9]{0,9}"), 1 => quantity()],
        ),
        option::of(resources()),
        option::of(etcd_backup()),
    )
        .prop_map(
            |(replicas, client, peer, storage, quota, resources, backup)| {
                object(vec![
                    ("replicas", Some(replicas)),
                    ("clientPort", Some(client)),
                    ("peerPort", Some(peer)),
                    ("storage", storage),
                    ("quotaBackendBytes", quota),
                    ("resources", resources),
                    ("backup", backup),
                ])
            },
        )
        .boxed()
}

/// `spec.etcd.backup`: schedules of the cron grammar (values in and out of each field's
/// range, lists, ranges, steps, macros), sometimes any text.
fn etcd_backup() -> BoxedStrategy<Value> {
    let field = "([*]|[0-9]{1,2}(-[0-9]{1,2})?)(/[0-9]{1,2})?(,[0-9]{1,2})?";
    let schedule = format!("{field} {field} {field} {field} {field}|@(hourly|daily|weekly|reboot)");
    (
        mostly(
            proptest::string::string_regex(&schedule).expect("a regex"),
            ANY_TEXT,
        )
        .prop_map(Value::from),
        option::of(int(1..=100, &[101, 1000])),
        option::of(storage()),
    )
        .prop_map(|(schedule, keep, storage)| {
            object(vec![
                ("schedule", Some(schedule)),
                ("keep", keep),
                ("storage", storage),
            ])
        })
        .boxed()
}

fn mds() -> BoxedStrategy<Value> {
    (
        int(1..=5, &[9, 10]),
        port(6000..=6499),
        port(6500..=6999),
        option::of(resources()),
    )
        .prop_map(|(replicas, port, dummy, resources)| {
            object(vec![
                ("replicas", Some(replicas)),
                ("port", Some(port)),
                ("dummyPort", Some(dummy)),
                ("resources", resources),
            ])
        })
        .boxed()
}

fn chunkservers() -> BoxedStrategy<Value> {
    (
        int(3..=6, &[1, 2, 1000, 1001]),
        int(1..=3, &[32, 33]),
        port(8000..=65000),
        volume_storage(),
        int(1..=300, &[10000, 10001]),
        int(5..=99, &[1, 4, 100]),
        option::of(resources()),
        option::of(one_of(&["Server", "Zone"], &["Node"])),
    )
        .prop_map(
            |(replicas, disks, port, storage, copysets, percent, resources, policy)| {
                object(vec![
                    ("replicas", Some(replicas)),
                    ("disksPerNode", Some(disks)),
                    ("port", Some(port)),
                    ("storage", Some(storage)),
                    ("copysets", Some(copysets)),
                    ("formatPercent", Some(percent)),
                    ("resources", resources),
                    ("updatePolicy", policy),
                ])
            },
        )
        .boxed()
}

fn placement() -> BoxedStrategy<Value> {
    (
        label_map(),
        vec(toleration(), 0..3),
        option::of(one_of(&["Required", "Preferred"], &["required"])),
        option::of(label_key()),
        option::of(label_key()),
    )
        .prop_map(|(selector, tolerations, anti, topology, zone)| {
            object(vec![
                ("nodeSelector", Some(selector)),
                ("tolerations", Some(json!(tolerations))),
                ("antiAffinity", anti),
                ("topologyKey", topology),
                ("zoneLabel", zone),
            ])
        })
        .boxed()
}

fn monitoring() -> BoxedStrategy<Value> {
    (
        any::<bool>(),
        text("[1-9][0-9]{0,2}(s|m|h)", "[0-9smhdwy]{0,18}"),
        any::<bool>(),
        label_map(),
    )
        .prop_map(|(enabled, interval, rules, labels)| {
            json!({"enabled": enabled, "interval": interval, "rules": rules, "labels": labels})
        })
        .boxed()
}

/// An image reference; one in ten wild: printable text, or a path whose first component looks
/// like a registry host, which may not be one.
fn image() -> BoxedStrategy<Value> {
    prop_oneof![
        9 => "[a-z0-9]{1,8}(/[a-z0-9]{1,8}([._-][a-z0-9]{1,4})?){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,8})?",
        1 => ANY_TEXT,
        1 => "[a-z0-9]{1,4}([_-][a-z0-9]{1,4})?\\.[a-z0-9]{1,4}([_-][a-z0-9]{1,4})?(:[0-9]{1,4})?/[a-z0-9]{1,8}(:[a-z0-9]{1,4})?",
    ]
    .prop_map(Value::from)
    .boxed()
}

/// A whole CurveCluster as a user might write it.
fn curve_cluster() -> impl Strategy<Value = Value> {
    let head = (
        text("[a-z]([a-z0-9-]{0,28}[a-z0-9])?", "[a-zA-Z0-9.-]{0,40}"),
        option::of(text(
            "[a-z]([a-z0-9-]{0,20}[a-z0-9])?",
            "[a-zA-Z0-9_.-]{0,70}",
        )),
        image(),
        option::of(one_of(&["Always", "IfNotPresent", "Never"], &["Sometimes"])),
        vec(
            text("[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,2}", ANY_TEXT),
            0..3,
        ),
    );
    let components = (etcd(), mds(), chunkservers(), placement());
    let pool = (pool_size(), pool_name(), pool_name());
    let rest = (
        mostly(Just(true), Just(false)),
        any::<bool>(),
        one_of(&["Retain", "Delete"], &["Destroy"]),
        option::of(one_of(&["yes-really-destroy-data"], &["yes", ""])),
        int(10..=86400, &[9, 86401]),
        monitoring(),
    );
    (head, components, pool, rest).prop_map(
        |(
            (name, namespace, image, pull_policy, pull_secrets),
            (etcd, mds, chunkservers, placement),
            ((replicas, zones), physical_pool, logical_pool),
            (host_network, paused, cleanup_policy, confirmation, deadline, monitoring),
        )| {
            json!({
                "apiVersion": "curve.opencurve.io/v1alpha1",
                "kind": "CurveCluster",
                "metadata": object(vec![("name", Some(name)), ("namespace", namespace)]),
                "spec": object(vec![
                    ("image", Some(image)),
                    ("imagePullPolicy", pull_policy),
                    ("imagePullSecrets", Some(json!(pull_secrets))),
                    ("etcd", Some(etcd)),
                    ("mds", Some(mds)),
                    ("chunkservers", Some(chunkservers)),
                    ("placement", Some(placement)),
                    ("logicalPool", Some(json!({
                        "replicas": replicas, "zones": zones,
                        "physicalPool": physical_pool, "name": logical_pool,
                    }))),
                    ("hostNetwork", Some(json!(host_network))),
                    ("paused", Some(json!(paused))),
                    ("cleanup", Some(object(vec![
                        ("policy", Some(cleanup_policy)),
                        ("confirmation", confirmation),
                    ]))),
                    ("rollout", Some(json!({"progressDeadlineSeconds": deadline}))),
                    ("monitoring", Some(monitoring)),
                ]),
            })
        },
    )
}

// ---- What the API server would refuse in a built object ---------------------------------------

/// The checks the API server (and the kubelet) apply to the objects the operator builds, as far
/// as they can be made offline; each returns its problems as `<kind> <name>: <where>: <what>`.
mod api_server {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use curve_operator::validate::k8s::{
        dns1035_label, dns1123_label, dns1123_subdomain, label_value, parse_quantity,
        qualified_name,
    };

    /// etcd's request limit, and so the largest object the API server stores.
    const MAX_OBJECT_BYTES: usize = 1536 * 1024;
    /// A ConfigMap's or Secret's data.
    const MAX_DATA_BYTES: usize = 1024 * 1024;
    /// All annotations of one object.
    const MAX_ANNOTATION_BYTES: usize = 256 * 1024;
    /// The hash the StatefulSet controller appends to a revision's name, and the dash.
    const REVISION_HASH_SUFFIX: usize = 11;

    struct Problems {
        object: String,
        found: Vec<String>,
    }

    impl Problems {
        fn add(&mut self, at: &str, problem: Option<String>) {
            if let Some(problem) = problem {
                self.found.push(format!("{}: {at}: {problem}", self.object));
            }
        }
    }

    /// Every problem of one built object.
    pub fn refusals(object: &Value) -> Vec<String> {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let mut problems = Problems {
            object: format!("{kind} {name}"),
            found: Vec::new(),
        };
        let size = object.to_string().len();
        problems.add(
            "object",
            (size > MAX_OBJECT_BYTES).then(|| format!("{size} bytes is over etcd's limit")),
        );
        let name_rule: fn(&str) -> Option<String> = match kind {
            "Service" => dns1035_label,
            "StatefulSet"
            | "Job"
            | "ConfigMap"
            | "Secret"
            | "PodDisruptionBudget"
            | "PodMonitor"
            | "PrometheusRule" => dns1123_subdomain,
            _ => {
                problems.add("kind", Some("unknown: teach api_server its rules".into()));
                return problems.found;
            }
        };
        problems.add("metadata.name", name_rule(name));
        problems.add(
            "metadata.namespace",
            dns1123_label(object["metadata"]["namespace"].as_str().unwrap_or_default()),
        );
        match kind {
            // Its pods are labelled `controller-revision-hash=<name>-<hash>` and named
            // `<name>-<ordinal>` (also a label value, and the pod's host name).
            "StatefulSet" => {
                let revision = format!("{name}-{}", "h".repeat(REVISION_HASH_SUFFIX - 1));
                problems.add("controller-revision-hash label", label_value(&revision));
                let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
                let pod = format!("{name}-{}", (replicas - 1).max(0));
                problems.add("last pod name", dns1123_label(&pod));
                problems.add("pod-name label", label_value(&pod));
                for template in object["spec"]["volumeClaimTemplates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    check_claim_template(&mut problems, template);
                }
            }
            // Its pods are labelled `job-name=<name>`.
            "Job" => problems.add("job-name label", label_value(name)),
            "ConfigMap" | "Secret" => check_data(&mut problems, object),
            "Service" => check_service(&mut problems, &object["spec"]),
            _ => {}
        }
        walk(&mut problems, object, "");
        problems.found
    }

    /// Label maps, annotations, topology keys and pod specs wherever they appear.
    fn walk(problems: &mut Problems, value: &Value, at: &str) {
        match value {
            Value::Object(fields) => {
                for (key, field) in fields {
                    let here = format!("{at}.{key}");
                    match key.as_str() {
                        "metadata" => check_metadata(problems, field, &here),
                        "matchLabels" | "nodeSelector" => check_labels(problems, field, &here),
                        "selector" if field.get("matchLabels").is_none() => {
                            check_labels(problems, field, &here)
                        }
                        "topologyKey" => {
                            problems.add(&here, qualified_name(field.as_str().unwrap_or_default()))
                        }
                        "template" if field["spec"].get("containers").is_some() => {
                            check_pod(problems, &field["spec"], &format!("{here}.spec"))
                        }
                        _ => {}
                    }
                    walk(problems, field, &here);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(problems, item, &format!("{at}[{i}]"));
                }
            }
            _ => {}
        }
    }

    fn check_metadata(problems: &mut Problems, metadata: &Value, at: &str) {
        check_labels(problems, &metadata["labels"], &format!("{at}.labels"));
        let annotations = metadata["annotations"].as_object().into_iter().flatten();
        let mut bytes = 0;
        for (key, value) in annotations {
            problems.add(&format!("{at}.annotations[{key}]"), qualified_name(key));
            bytes += key.len() + value.as_str().unwrap_or_default().len();
        }
        problems.add(
            &format!("{at}.annotations"),
            (bytes > MAX_ANNOTATION_BYTES).then(|| format!("{bytes} bytes")),
        );
    }

    fn check_labels(problems: &mut Problems, labels: &Value, at: &str) {
        for (key, value) in labels.as_object().into_iter().flatten() {
            problems.add(&format!("{at}[{key}]"), qualified_name(key));
            problems.add(
                &format!("{at}[{key}]"),
                match value.as_str() {
                    Some(text) => label_value(text),
                    None => Some(format!("not a string: {value}")),
                },
            );
        }
    }

    /// IsValidPortNum.
    fn port_number(value: &Value) -> Option<String> {
        match value.as_i64() {
            Some(1..=65535) => None,
            _ => Some(format!("must be a port 1-65535 (got {value})")),
        }
    }

    /// IsValidPortName (IANA_SVC_NAME).
    fn port_name(name: &str) -> Option<String> {
        let valid = (1..=15).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && name.chars().any(|c| c.is_ascii_lowercase())
            && !name.starts_with('-')
            && !name.ends_with('-')
            && !name.contains("--");
        (!valid).then(|| format!("must be an IANA service name (got {name:?})"))
    }

    /// IsEnvVarName.
    fn env_var_name(name: &str) -> Option<String> {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || "-._".contains(c))
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        (!valid).then(|| format!("must be an environment variable name (got {name:?})"))
    }

    /// IsConfigMapKey.
    fn data_key(key: &str) -> Option<String> {
        let valid = (1..=253).contains(&key.len())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
            && key != "."
            && key != "..";
        (!valid).then(|| format!("must be a ConfigMap/Secret key (got {key:?})"))
    }

    fn quantity(value: &Value) -> Option<f64> {
        match value {
            Value::String(text) => parse_quantity(text),
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    fn check_resources(problems: &mut Problems, resources: &Value, at: &str) {
        for kind in ["limits", "requests"] {
            for (name, amount) in resources[kind].as_object().into_iter().flatten() {
                problems.add(
                    &format!("{at}.{kind}[{name}]"),
                    match quantity(amount) {
                        Some(value) if value >= 0.0 => None,
                        _ => Some(format!("must be a non-negative quantity (got {amount})")),
                    },
                );
            }
        }
        for (name, request) in resources["requests"].as_object().into_iter().flatten() {
            if let (Some(request), Some(limit)) = (
                quantity(request),
                resources["limits"].get(name).and_then(quantity),
            ) {
                problems.add(
                    &format!("{at}.requests[{name}]"),
                    (request > limit).then(|| format!("{request} is over the limit {limit}")),
                );
            }
        }
    }

    fn check_data(problems: &mut Problems, object: &Value) {
        let mut bytes = 0;
        for field in ["data", "stringData", "binaryData"] {
            for (key, value) in object[field].as_object().into_iter().flatten() {
                problems.add(&format!("{field}[{key}]"), data_key(key));
                bytes += key.len() + value.as_str().unwrap_or_default().len();
            }
        }
        problems.add(
            "data",
            (bytes > MAX_DATA_BYTES).then(|| format!("{bytes} bytes is over the 1 MiB limit")),
        );
    }

    fn check_service(problems: &mut Problems, spec: &Value) {
        let ports = spec["ports"].as_array().cloned().unwrap_or_default();
        let mut names = BTreeSet::new();
        for (i, port) in ports.iter().enumerate() {
            let at = format!("spec.ports[{i}]");
            problems.add(&format!("{at}.port"), port_number(&port["port"]));
            match &port["targetPort"] {
                Value::String(name) => problems.add(&format!("{at}.targetPort"), port_name(name)),
                Value::Null => {}
                number => problems.add(&format!("{at}.targetPort"), port_number(number)),
            }
            let name = port["name"].as_str().unwrap_or_default();
            if ports.len() > 1 || !name.is_empty() {
                problems.add(&format!("{at}.name"), dns1123_label(name));
            }
            problems.add(
                &format!("{at}.name"),
                (!names.insert(name.to_string())).then(|| format!("{name:?} is not unique")),
            );
        }
    }

    fn check_claim_template(problems: &mut Problems, template: &Value) {
        let name = template["metadata"]["name"].as_str().unwrap_or_default();
        let at = format!("volumeClaimTemplates[{name}]");
        problems.add(&at, dns1123_label(name));
        let storage = &template["spec"]["resources"]["requests"]["storage"];
        problems.add(
            &format!("{at}.spec.resources.requests.storage"),
            match quantity(storage) {
                Some(value) if value > 0.0 => None,
                _ => Some(format!("must be a positive quantity (got {storage})")),
            },
        );
    }

    /// ValidatePodSpec, the parts the built pods use.
    fn check_pod(problems: &mut Problems, pod: &Value, at: &str) {
        let host_network = pod["hostNetwork"].as_bool() == Some(true);
        let mut volumes = BTreeSet::new();
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            let name = volume["name"].as_str().unwrap_or_default();
            problems.add(&format!("{at}.volumes[{name}]"), dns1123_label(name));
            problems.add(
                &format!("{at}.volumes[{name}]"),
                (!volumes.insert(name.to_string())).then(|| "is not unique".to_string()),
            );
        }
        // The claim templates of a StatefulSet are volumes of its pods too.
        let claims: BTreeSet<String> = ["data"].iter().map(|s| s.to_string()).collect();
        let mut container_names = BTreeSet::new();
        for group in ["initContainers", "containers"] {
            // The host ports of one group must differ (AccumulateUniqueHostPorts).
            let mut ports = BTreeSet::new();
            for container in pod[group].as_array().into_iter().flatten() {
                let name = container["name"].as_str().unwrap_or_default();
                let here = format!("{at}.{group}[{name}]");
                problems.add(&here, dns1123_label(name));
                problems.add(
                    &here,
                    (!container_names.insert(name.to_string()))
                        .then(|| "container name is not unique".to_string()),
                );
                let image = container["image"].as_str().unwrap_or_default();
                problems.add(
                    &format!("{here}.image"),
                    (image.is_empty() || image.trim() != image).then(|| {
                        format!("must be set, without surrounding spaces (got {image:?})")
                    }),
                );
                let mut port_names = BTreeSet::new();
                for port in container["ports"].as_array().into_iter().flatten() {
                    let number = port["containerPort"].as_i64().unwrap_or_default();
                    let protocol = port["protocol"].as_str().unwrap_or("TCP").to_string();
                    problems.add(
                        &format!("{here}.ports"),
                        port_number(&port["containerPort"]),
                    );
                    if let Some(host_port) = port.get("hostPort") {
                        problems.add(&format!("{here}.ports.hostPort"), port_number(host_port));
                        problems.add(
                            &format!("{here}.ports.hostPort"),
                            (host_network && host_port.as_i64() != Some(number))
                                .then(|| "must equal containerPort under host networking".into()),
                        );
                    }
                    problems.add(
                        &format!("{here}.ports"),
                        (!ports.insert((number, protocol)))
                            .then(|| format!("port {number} is used twice in the pod")),
                    );
                    if let Some(name) = port["name"].as_str() {
                        problems.add(&format!("{here}.ports[{name}]"), port_name(name));
                        port_names.insert(name.to_string());
                    }
                }
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    for action in ["httpGet", "tcpSocket"] {
                        match &container[probe][action]["port"] {
                            Value::Null => {}
                            Value::String(name) => problems.add(
                                &format!("{here}.{probe}"),
                                (!port_names.contains(name))
                                    .then(|| format!("names no port of the container: {name}")),
                            ),
                            number => problems.add(&format!("{here}.{probe}"), port_number(number)),
                        }
                    }
                }
                for env in container["env"].as_array().into_iter().flatten() {
                    problems.add(
                        &format!("{here}.env"),
                        env_var_name(env["name"].as_str().unwrap_or_default()),
                    );
                }
                check_resources(
                    problems,
                    &container["resources"],
                    &format!("{here}.resources"),
                );
                for mount in container["volumeMounts"].as_array().into_iter().flatten() {
                    let volume = mount["name"].as_str().unwrap_or_default();
                    problems.add(
                        &format!("{here}.volumeMounts[{volume}]"),
                        (!volumes.contains(volume) && !claims.contains(volume))
                            .then(|| "names no volume of the pod".to_string()),
                    );
                }
            }
        }
    }
}

// ---- The properties -------------------------------------------------------------------------

/// What the operator refuses and the CRD cannot: the API server judges namespaces itself, CEL
/// has no remainder of quantities (hugepages come in whole pages), no schema rule can sum
/// a Prometheus duration, and no pattern can order a cron range's ends or run a schedule.
fn only_the_operator_judges(error: &FieldError) -> bool {
    error.path == "metadata.namespace"
        || error.message.contains("multiple of the page size")
        || error.message.contains("Prometheus holds a duration")
        // A cron range's ends are not compared by the CRD's pattern, nor is a schedule run.
        || (error.path == "spec.etcd.backup.schedule"
            && (error.message.contains("runs backwards") || error.message.contains("never fires")))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    /// Reading, validating and rendering never panic; the operator and the CRD refuse the same
    /// specs (but for what only the operator can judge); `render` renders exactly what the
    /// operator accepts; every object built from it is one the API server would take.
    #[test]
    fn the_operator_and_the_crd_agree_and_accepted_specs_render_valid_objects(
        cluster in curve_cluster()
    ) {
        let verdict = parse_cluster(&cluster).and_then(|c| validate(&c, "default"));
        let yaml = serde_saphyr::to_string(&cluster).unwrap();
        let rendered = render(&yaml, "default");
        let validated = match verdict {
            Ok(validated) => validated,
            Err(InvalidCluster(errors)) => {
                prop_assert!(rendered.is_err(), "render takes what validate refuses: {errors:?}");
                let operator_only: Vec<String> = errors
                    .iter()
                    .filter(|e| !only_the_operator_judges(e))
                    .map(ToString::to_string)
                    .collect();
                prop_assert!(
                    operator_only.is_empty() || !crd::crd_accepts(&cluster),
                    "the CRD accepts what the operator refuses: {operator_only:?}"
                );
                return Ok(());
            }
        };
        prop_assert!(rendered.is_ok(), "render refuses what validate takes: {:?}", rendered.err());
        let crd = crd::crd_refusals(&cluster, None);
        prop_assert!(crd.is_empty(), "the operator accepts what the CRD refuses: {crd:?}");
        let built = objects(&validated, &ExamplePlacement::of(&validated));
        let refused: Vec<String> = built.iter().flat_map(api_server::refusals).collect();
        prop_assert!(refused.is_empty(), "built objects the API server refuses: {refused:#?}");
    }
}

/// The offline checks find what the API server would refuse: each broken copy of a rendered
/// object is refused with its problem.
#[test]
fn the_offline_api_server_checks_refuse_broken_objects() {
    let cluster = validate(&parse_cluster(&crd::minimal()).unwrap(), "default").unwrap();
    let built = objects(&cluster, &ExamplePlacement::of(&cluster));
    for object in &built {
        assert_eq!(
            api_server::refusals(object),
            Vec::<String>::new(),
            "{object}"
        );
    }
    let of_kind = |kind: &str| {
        built
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
            .clone()
    };
    let container = "/spec/template/spec/containers/0";
    let breakages: Vec<(&str, String, Value, &str)> = vec![
        (
            "StatefulSet",
            "/metadata/name".into(),
            json!("s".repeat(53)),
            "controller-revision-hash label",
        ),
        (
            "StatefulSet",
            "/metadata/labels/app.kubernetes.io~1name".into(),
            json!("a b"),
            "metadata.labels",
        ),
        (
            "StatefulSet",
            format!("{container}/ports/0/containerPort"),
            json!(0),
            "ports",
        ),
        (
            "StatefulSet",
            format!("{container}/ports/1/containerPort"),
            json!(2379),
            "used twice",
        ),
        (
            "StatefulSet",
            format!("{container}/ports/0/hostPort"),
            json!(1),
            "hostPort",
        ),
        (
            "StatefulSet",
            format!("{container}/env/0/name"),
            json!("1POD"),
            "env",
        ),
        (
            "StatefulSet",
            format!("{container}/resources"),
            json!({"limits": {"cpu": "two"}}),
            "resources",
        ),
        (
            "StatefulSet",
            format!("{container}/volumeMounts/0/name"),
            json!("nowhere"),
            "volumeMounts",
        ),
        (
            "StatefulSet",
            "/spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/0/topologyKey".into(),
            json!("a b"),
            "topologyKey",
        ),
        ("Service", "/metadata/name".into(), json!("1demo"), "metadata.name"),
        (
            "Service",
            "/spec/ports/0/port".into(),
            json!(65536),
            "spec.ports[0].port",
        ),
        (
            "Job",
            "/metadata/name".into(),
            json!("j".repeat(64)),
            "job-name label",
        ),
        ("ConfigMap", "/data/bad key".into(), json!("x"), "data[bad key]"),
    ];
    for (kind, pointer, value, problem) in breakages {
        let mut broken = of_kind(kind);
        match broken.pointer_mut(&pointer) {
            Some(slot) => *slot = value,
            None => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                broken.pointer_mut(parent).unwrap()[key] = value;
            }
        }
        let refusals = api_server::refusals(&broken);
        assert!(
            refusals.iter().any(|r| r.contains(problem)),
            "{kind} {pointer}: expected a refusal naming {problem:?}, got {refusals:?}"
        );
    }
}
