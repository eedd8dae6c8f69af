//! One source for every rule (issue 25): the CRD the API server enforces (its schema's bounds and
//! its CEL rules) and the operator's own reading of a CurveCluster (`parse_cluster`, then
//! `validate`, as `render` and the reconciler do) refuse the same specs.
//!
//! The bounds are found by walking the generated schema, so a bound added later is probed
//! without touching this file; only values the schema cannot describe (a grammatical string of a
//! given length, a list item, a map entry, neighbours that must move with a number) come from
//! small tables here. Every CEL rule must have a case in [`cel_cases`]: a new rule fails the
//! test until it gets one.

#[path = "support/crd.rs"]
mod crd;

use serde_json::{Value, json};

use curve_operator::api::DELETE_DATA_CONFIRMATION;
use curve_operator::util::merge_json;
use curve_operator::validate::{FieldError, InvalidCluster, parse_cluster, validate};

use crd::{cel_failures, crd_refusals, minimal, schema, schema_errors};

/// What the operator refuses in a raw CurveCluster: every field it cannot read, else every
/// problem `validate` finds.
fn operator_refusals(object: &Value) -> Vec<FieldError> {
    let refusals = parse_cluster(object).and_then(|cluster| validate(&cluster, "default"));
    match refusals {
        Ok(_) => Vec::new(),
        Err(InvalidCluster(errors)) => errors,
    }
}

fn shown(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// One step from a schema node to a child.
#[derive(Clone, Debug)]
enum Step {
    Field(String),
    /// An item of a list (`[]` in a pattern).
    Item,
    /// A value of a map (`{}` in a pattern).
    Entry,
}

/// A schema location as the tables below name it: `spec.placement.tolerations[].key`,
/// `spec.etcd.resources.limits{}`.
fn pattern(at: &[Step]) -> String {
    let mut text = String::new();
    for step in at {
        match step {
            Step::Field(name) if text.is_empty() => text.push_str(name),
            Step::Field(name) => text.push_str(&format!(".{name}")),
            Step::Item => text.push_str("[]"),
            Step::Entry => text.push_str("{}"),
        }
    }
    text
}

/// `*` in `glob` stands for one dot-separated segment of `pattern`.
fn glob_matches(glob: &str, pattern: &str) -> bool {
    let (globs, segments): (Vec<&str>, Vec<&str>) =
        (glob.split('.').collect(), pattern.split('.').collect());
    globs.len() == segments.len()
        && globs
            .iter()
            .zip(&segments)
            .all(|(g, s)| *g == "*" || g == s)
}

/// A table of what to build where: each location glob (see [`glob_matches`]) with its maker.
type Table<T> = Vec<(&'static str, T)>;

fn lookup<T: Clone>(table: &[(&str, T)], pattern: &str) -> Option<T> {
    table
        .iter()
        .find(|(glob, _)| glob_matches(glob, pattern))
        .map(|(_, made)| made.clone())
}

// ---- How to build what the schema does not describe -------------------------------------------

/// A string field's grammar, for probing its length bounds.
#[derive(Clone, Copy)]
enum Text {
    /// A value of exactly the given length that the field's grammar admits (when the length
    /// does).
    OfLength(fn(usize) -> String),
    /// The only value the field admits.
    Only(&'static str),
}

/// Dot-separated DNS labels of 63 characters at most: a DNS-1123 subdomain when `len` <= 253.
fn subdomain_of_len(len: usize) -> String {
    let mut text: String = "a"
        .repeat(62)
        .chars()
        .chain(['.'])
        .cycle()
        .take(len)
        .collect();
    if text.ends_with('.') {
        text.pop();
        text.push('a');
    }
    text
}

/// `[prefix/]name`: a label key when `len` <= 317.
fn label_key_of_len(len: usize) -> String {
    if len <= 63 {
        return "k".repeat(len);
    }
    let name = 63.min(len - 2);
    format!("{}/{}", subdomain_of_len(len - 1 - name), "k".repeat(name))
}

/// An image reference; past the 255 characters of a repository name, a long digest.
fn image_of_len(len: usize) -> String {
    const NAME: &str = "curvebs@sha256:";
    if len <= 255 {
        "c".repeat(len)
    } else {
        format!("{NAME}{}", "f".repeat(len - NAME.len()))
    }
}

/// Leading zeros: kube-cel reads at most 38 significant digits (the API server reads any).
fn quantity_of_len(len: usize) -> String {
    format!("{}1", "0".repeat(len - 1))
}

/// A volume large enough for any copysets and formatPercent the schema admits (the CEL rule
/// `pool_room` refuses small ones), and for etcd's room beside its database
/// (`etcd_volume_room`): leading zeros before 1Ti.
fn volume_of_len(len: usize) -> String {
    format!("{}1Ti", "0".repeat(len - 3))
}

/// An etcd quota at least the smallest (`etcd_min_quota`): leading zeros before 128Mi.
fn quota_of_len(len: usize) -> String {
    format!("{}128Mi", "0".repeat(len - 5))
}

fn duration_of_len(len: usize) -> String {
    format!("{}1s", "0".repeat(len - 2))
}

fn label_value_of_len(len: usize) -> String {
    "v".repeat(len)
}

fn pool_name_of_len(len: usize) -> String {
    "p".repeat(len)
}

/// A cron schedule of `len` characters (at least 9): its minute field a list of zeros.
fn schedule_of_len(len: usize) -> String {
    let minute = len - " * * * *".len();
    let first = if minute % 2 == 1 { "0" } else { "00" };
    format!("{first}{} * * * *", ",0".repeat((minute - first.len()) / 2))
}

/// `http://` and a host name.
fn endpoint_of_len(len: usize) -> String {
    format!("http://{}", subdomain_of_len(len - "http://".len()))
}

fn bucket_of_len(len: usize) -> String {
    "b".repeat(len)
}

/// One segment and its slash.
fn prefix_of_len(len: usize) -> String {
    format!("{}/", "p".repeat(len - 1))
}

fn region_of_len(len: usize) -> String {
    "r".repeat(len)
}

fn host_dir_of_len(len: usize) -> String {
    format!("/{}", "d".repeat(len - 1))
}

/// The grammar of every string field with a length bound.
fn texts() -> Table<Text> {
    use Text::*;
    vec![
        ("spec.image", OfLength(image_of_len)),
        ("spec.imagePullSecrets[]", OfLength(subdomain_of_len)),
        ("spec.chunkservers.storage.size", OfLength(volume_of_len)),
        ("spec.etcd.storage.size", OfLength(volume_of_len)),
        ("spec.etcd.quotaBackendBytes", OfLength(quota_of_len)),
        ("spec.*.storage.size", OfLength(quantity_of_len)),
        (
            "spec.*.storage.storageClassName",
            OfLength(subdomain_of_len),
        ),
        ("spec.*.resources.limits{}", OfLength(quantity_of_len)),
        ("spec.*.resources.requests{}", OfLength(quantity_of_len)),
        ("spec.cleanup.confirmation", Only(DELETE_DATA_CONFIRMATION)),
        ("spec.etcd.backup.schedule", OfLength(schedule_of_len)),
        ("spec.etcd.backup.storage.size", OfLength(quantity_of_len)),
        (
            "spec.etcd.backup.storage.storageClassName",
            OfLength(subdomain_of_len),
        ),
        ("spec.etcd.backup.s3.endpoint", OfLength(endpoint_of_len)),
        ("spec.etcd.backup.s3.bucket", OfLength(bucket_of_len)),
        ("spec.etcd.backup.s3.prefix", OfLength(prefix_of_len)),
        ("spec.etcd.backup.s3.region", OfLength(region_of_len)),
        (
            "spec.etcd.backup.s3.credentialsSecret",
            OfLength(subdomain_of_len),
        ),
        ("spec.etcd.restore.snapshot", Only(RESTORE_SNAPSHOT)),
        ("spec.etcd.restore.confirmation", Only(RESTORE_CONFIRMATION)),
        ("spec.logicalPool.name", OfLength(pool_name_of_len)),
        ("spec.logicalPool.physicalPool", OfLength(pool_name_of_len)),
        ("spec.monitoring.interval", OfLength(duration_of_len)),
        ("spec.csi.images.*", OfLength(image_of_len)),
        ("spec.csi.storageClass.name", OfLength(subdomain_of_len)),
        ("spec.csi.storageClass.user", OfLength(label_value_of_len)),
        ("spec.coreDumps.hostPath", OfLength(host_dir_of_len)),
        ("spec.monitoring.labels{}", OfLength(label_value_of_len)),
        (
            "spec.placement.nodeSelector{}",
            OfLength(label_value_of_len),
        ),
        (
            "spec.placement.tolerations[].value",
            OfLength(label_value_of_len),
        ),
        (
            "spec.placement.tolerations[].key",
            OfLength(label_key_of_len),
        ),
        ("spec.placement.topologyKey", OfLength(label_key_of_len)),
        ("spec.placement.zoneLabel", OfLength(label_key_of_len)),
    ]
}

/// The fields an object needs besides a probed one (its required fields).
/// A snapshot name, and the confirmation that names it.
const RESTORE_SNAPSHOT: &str = "etcd-20260101T000000Z";
const RESTORE_CONFIRMATION: &str = "yes-restore-etcd-from-etcd-20260101T000000Z";

fn holders() -> Table<Value> {
    vec![
        ("spec.etcd.restore", json!({"snapshot": RESTORE_SNAPSHOT})),
        ("spec.etcd.backup", json!({"schedule": "@daily"})),
        ("spec.etcd.backup.storage", json!({"size": "20Gi"})),
        (
            "spec.etcd.backup.s3",
            json!({"endpoint": "http://minio:9000", "bucket": "backups", "credentialsSecret": "s3-keys"}),
        ),
        ("spec.chunkservers.storage", json!({"size": "100Gi"})),
        ("spec.*.storage", json!({"size": "1Gi"})),
    ]
}

/// The `i`-th of distinct valid items of every list: an item holding a probed field starts as
/// item 0.
fn items() -> Table<fn(usize) -> Value> {
    vec![
        ("spec.imagePullSecrets", |i| json!(format!("secret-{i}"))),
        (
            "spec.placement.tolerations",
            |i| json!({"key": format!("k{i}")}),
        ),
    ]
}

fn label_entry(i: usize) -> (String, Value) {
    (format!("k{i}"), json!("v"))
}

/// Resource names a container may request without a limit to match.
fn resource_entry(i: usize) -> (String, Value) {
    let name = match i {
        0 => "cpu".to_string(),
        1 => "memory".to_string(),
        2 => "ephemeral-storage".to_string(),
        _ => format!("kubernetes.io/r{i}"),
    };
    (name, json!("1"))
}

/// The `i`-th of distinct valid entries of every map: a probed value goes under entry 0's key.
fn entries() -> Table<fn(usize) -> (String, Value)> {
    vec![
        ("spec.placement.nodeSelector", label_entry),
        ("spec.monitoring.labels", label_entry),
        ("spec.*.resources.limits", resource_entry),
        ("spec.*.resources.requests", resource_entry),
    ]
}

/// Logical pool replicas and zones are equal, and need as many servers.
fn pool_of(size: i64) -> Value {
    json!({"spec": {"logicalPool": {"replicas": size, "zones": size},
                    "chunkservers": {"replicas": size.clamp(3, 1000)}}})
}

/// One server holds every copy when it has two disks.
fn servers_of(count: i64) -> Value {
    json!({"spec": {"chunkservers": {"replicas": count, "disksPerNode": 2},
                    "logicalPool": {"replicas": 1, "zones": 1}}})
}

/// A ChunkServer volume that holds the raft logs of the most copysets at the lowest
/// formatPercent with room for data (the CEL rule `pool_room`).
fn roomy_pool(_: i64) -> Value {
    json!({"spec": {"chunkservers": {"storage": {"size": "1Ti"}, "copysets": 1}}})
}

fn roomy_volume(_: i64) -> Value {
    json!({"spec": {"chunkservers": {"storage": {"size": "1Ti"}}}})
}

/// Number fields whose neighbours must move with them: the patch that sets the field to a value
/// and its neighbours to fit.
fn neighbours() -> Table<fn(i64) -> Value> {
    vec![
        ("spec.logicalPool.replicas", pool_of),
        ("spec.logicalPool.zones", pool_of),
        ("spec.chunkservers.replicas", servers_of),
        ("spec.chunkservers.formatPercent", roomy_pool),
        ("spec.chunkservers.copysets", roomy_volume),
    ]
}

/// Strings probed against every `pattern`: each must be refused by the operator exactly when the
/// pattern refuses it. A new pattern needs probes it admits and probes it refuses here.
const PATTERN_PROBES: &[&str] = &[
    "0", "2", "1.5", ".5", "5.", "+1", "500m", "100n", "3u", "4k", "10M", "10G", "1Ti", "1.5Gi",
    "2Ei", "1e3", "1E-2", "1.5e+2", "1E", "-1", "-1Gi", "two", "", "1 Gi", "1gi", "1KB", "1K",
    "Gi", "1e", "1e+", "1e1.5", "1e.5", "1E2.", "1.2.3", "m", "+", ".", "1Ki5",
];

// ---- The walk -------------------------------------------------------------------------------

/// The schema keywords that bound a value, probed below.
const BOUNDS: &[&str] = &[
    "minimum",
    "maximum",
    "enum",
    "pattern",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
];

/// Keywords that bound nothing (or only modify a bound); any other keyword fails the walk, so
/// a new kind of bound is not silently skipped.
const NOT_BOUNDS: &[&str] = &[
    "type",
    "format",
    "description",
    "properties",
    "items",
    "additionalProperties",
    "required",
    "default",
    "nullable",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "x-kubernetes-int-or-string",
    "x-kubernetes-validations",
];

/// A bound found in the schema: where, which keyword, and the node that holds it.
struct Bound {
    at: Vec<Step>,
    keyword: &'static str,
    node: Value,
}

fn bounds_under(node: &Value, at: &[Step], found: &mut Vec<Bound>) {
    let here = pattern(at);
    for key in node.as_object().unwrap().keys() {
        assert!(
            BOUNDS.contains(&key.as_str()) || NOT_BOUNDS.contains(&key.as_str()),
            "{here}: schema keyword {key:?} is unknown to this test: teach it to probe the bound"
        );
    }
    for keyword in BOUNDS {
        if node.get(keyword).is_some() {
            found.push(Bound {
                at: at.to_vec(),
                keyword,
                node: node.clone(),
            });
        }
    }
    let child = |step: Step| [at, &[step]].concat();
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            bounds_under(property, &child(Step::Field(name.clone())), found);
        }
    }
    if let Some(item) = node.get("items") {
        bounds_under(item, &child(Step::Item), found);
    }
    if let Some(entry) = node.get("additionalProperties").filter(|s| s.is_object()) {
        bounds_under(entry, &child(Step::Entry), found);
    }
}

/// The object with `value` at `at`, every list and map on the way built from the tables, and
/// the path of the value as the operator names it (`spec.placement.tolerations[0].key`).
fn place(at: &[Step], value: Value) -> (Value, String) {
    fn nest(done: &[Step], rest: &[Step], value: Value) -> (Value, String) {
        let Some((step, rest)) = rest.split_first() else {
            return (value, String::new());
        };
        let done_here = [done, std::slice::from_ref(step)].concat();
        let (inner, path) = nest(&done_here, rest, value);
        let holder = pattern(done);
        match step {
            Step::Field(name) => {
                let dot = if done.is_empty() { "" } else { "." };
                let mut object = lookup(&holders(), &holder).unwrap_or(json!({}));
                merge_json(&mut object, &json!({ name: inner }));
                (object, format!("{dot}{name}{path}"))
            }
            Step::Item => {
                let make = lookup(&items(), &holder)
                    .unwrap_or_else(|| panic!("{holder}: no item in items(): add one"));
                let mut item = make(0);
                if item.is_object() && inner.is_object() {
                    merge_json(&mut item, &inner);
                } else {
                    item = inner;
                }
                (json!([item]), format!("[0]{path}"))
            }
            Step::Entry => {
                let make = lookup(&entries(), &holder)
                    .unwrap_or_else(|| panic!("{holder}: no entry in entries(): add one"));
                let (key, _) = make(0);
                (json!({ key.clone(): inner }), format!("[{key}]{path}"))
            }
        }
    }
    let (patch, path) = nest(&[], at, value.clone());
    let mut object = minimal();
    merge_json(&mut object, &patch);
    if let (Some(neighbours), Some(number)) = (lookup(&neighbours(), &pattern(at)), value.as_i64())
    {
        merge_json(&mut object, &neighbours(number));
    }
    (object, path)
}

/// A value just outside a bound and the values just inside it.
struct Probes {
    outside: Vec<Value>,
    inside: Vec<Value>,
}

fn probes(bound: &Bound) -> Probes {
    let at = pattern(&bound.at);
    let number = |key: &str| bound.node[key].as_f64().unwrap() as i64;
    let exclusive = |key: &str| bound.node.get(key).and_then(Value::as_bool) == Some(true);
    let text =
        || lookup(&texts(), &at).unwrap_or_else(|| panic!("{at}: no grammar in texts(): add one"));
    let of_len = |len: usize| match text() {
        Text::OfLength(make) => make(len),
        Text::Only(value) => format!("{value:x<len$}"),
    };
    let longest = |max: usize| match text() {
        Text::OfLength(make) => make(max),
        Text::Only(value) => value.to_string(),
    };
    let collection = |count: usize| -> Value {
        if let Some(make) = lookup(&items(), &at) {
            Value::Array((0..count).map(make).collect())
        } else {
            let make = lookup(&entries(), &at).unwrap_or_else(|| {
                panic!("{at}: no entry in entries() or item in items(): add one")
            });
            Value::Object((0..count).map(make).collect())
        }
    };
    let (outside, inside) = match bound.keyword {
        "minimum" => {
            let min = number("minimum");
            let first = if exclusive("exclusiveMinimum") {
                min + 1
            } else {
                min
            };
            (vec![json!(first - 1)], vec![json!(first)])
        }
        "maximum" => {
            let max = number("maximum");
            let last = if exclusive("exclusiveMaximum") {
                max - 1
            } else {
                max
            };
            (vec![json!(last + 1)], vec![json!(last)])
        }
        "enum" => {
            let allowed = bound.node["enum"].as_array().unwrap().clone();
            (vec![json!("NotInTheEnum")], allowed)
        }
        "pattern" => {
            let regex = regex::Regex::new(bound.node["pattern"].as_str().unwrap()).unwrap();
            let (inside, outside): (Vec<&str>, Vec<&str>) = PATTERN_PROBES
                .iter()
                .partition(|probe| regex.is_match(probe));
            assert!(
                !inside.is_empty() && !outside.is_empty(),
                "{at}: PATTERN_PROBES needs strings the pattern admits and strings it refuses"
            );
            let values = |probes: Vec<&str>| probes.into_iter().map(Value::from).collect();
            (values(outside), values(inside))
        }
        "maxLength" => {
            let max = number("maxLength") as usize;
            (vec![json!(of_len(max + 1))], vec![json!(longest(max))])
        }
        "minLength" => {
            let min = number("minLength") as usize;
            let outside = if min == 0 {
                vec![]
            } else {
                vec![json!(of_len(min - 1))]
            };
            (outside, vec![json!(of_len(min))])
        }
        "maxItems" | "maxProperties" => {
            let max = number(bound.keyword) as usize;
            (vec![collection(max + 1)], vec![collection(max)])
        }
        "minItems" | "minProperties" => {
            let min = number(bound.keyword) as usize;
            let outside = if min == 0 {
                vec![]
            } else {
                vec![collection(min - 1)]
            };
            (outside, vec![collection(min)])
        }
        other => unreachable!("{other} is not in BOUNDS"),
    };
    Probes { outside, inside }
}

/// Every bound of the spec's schema: a value just outside it is refused by the CRD and by the
/// operator, which names the field; the values just inside it are accepted by both.
#[test]
fn the_operator_refuses_every_value_outside_a_schema_bound_and_accepts_the_values_inside() {
    let schema = schema();
    let mut bounds = Vec::new();
    bounds_under(
        &schema["properties"]["spec"],
        &[Step::Field("spec".into())],
        &mut bounds,
    );
    let mut disagreements = Vec::new();
    let mut probed = 0;
    for bound in &bounds {
        let Probes { outside, inside } = probes(bound);
        for value in outside {
            probed += 1;
            let (object, path) = place(&bound.at, value.clone());
            let mut crd = Vec::new();
            schema_errors(
                &schema["properties"]["spec"],
                &object["spec"],
                "spec",
                &mut crd,
            );
            assert!(
                crd.contains(&format!("{path}: {}", bound.keyword)),
                "{path} = {value}: the probe is not outside the {}: {crd:?}",
                bound.keyword
            );
            let operator = operator_refusals(&object);
            if !operator.iter().any(|e| e.path == path) {
                disagreements.push(format!(
                    "{path} = {value} (outside {}): the CRD refuses it; the operator says {:?}",
                    bound.keyword,
                    shown(&operator)
                ));
            }
        }
        for value in inside {
            probed += 1;
            let (object, path) = place(&bound.at, value.clone());
            let crd = crd_refusals(&object, None);
            if !crd.is_empty() {
                // A string the pattern admits may break another rule of the field (a quantity
                // of 0 where it must be positive): then the operator must refuse it too. Any
                // other bound's edge is valid, else the bound (or a table above) is wrong.
                let operator = operator_refusals(&object);
                if bound.keyword != "pattern" {
                    disagreements.push(format!(
                        "{path} = {value} (inside {}): the CRD refuses it itself: {crd:?}",
                        bound.keyword
                    ));
                } else if !operator.iter().any(|e| e.path == path) {
                    disagreements.push(format!(
                        "{path} = {value}: the CRD refuses it ({crd:?}); the operator says {:?}",
                        shown(&operator)
                    ));
                }
                continue;
            }
            let operator = operator_refusals(&object);
            if !operator.is_empty() {
                disagreements.push(format!(
                    "{path} = {value} (inside {}): the CRD accepts it; the operator says {:?}",
                    bound.keyword,
                    shown(&operator)
                ));
            }
        }
    }
    assert!(
        bounds.len() >= 60 && probed >= 150,
        "{} bounds, {probed} probes",
        bounds.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

// ---- CEL rules ------------------------------------------------------------------------------

/// A CEL rule of the CRD: where it sits, its expression and its message (or message expression).
struct CelRule {
    at: String,
    rule: String,
    message: String,
}

fn cel_rules_under(node: &Value, at: &[Step], found: &mut Vec<CelRule>) {
    for rule in node
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |key: &str| rule.get(key).and_then(Value::as_str).map(String::from);
        found.push(CelRule {
            at: pattern(at),
            rule: text("rule").unwrap(),
            message: text("message")
                .or(text("messageExpression"))
                .unwrap_or_default(),
        });
    }
    let child = |step: Step| [at, &[step]].concat();
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            cel_rules_under(property, &child(Step::Field(name.clone())), found);
        }
    }
    if let Some(item) = node.get("items") {
        cel_rules_under(item, &child(Step::Item), found);
    }
    if let Some(entry) = node.get("additionalProperties").filter(|s| s.is_object()) {
        cel_rules_under(entry, &child(Step::Entry), found);
    }
}

/// A spec that breaks one CEL rule and a neighbour that keeps it, as merge patches of the
/// minimal cluster (of `old` for a transition rule: a change from `old`).
struct CelCase {
    /// Where the rule sits (`spec.etcd.resources`, `spec.placement.tolerations[]`, `` for the
    /// root).
    at: String,
    /// A piece of the rule's message that tells it from the other rules at `at`.
    message: String,
    broken: Value,
    kept: Value,
    /// For a transition rule (`oldSelf`): the cluster being changed.
    old: Option<Value>,
}

fn case(at: &str, message: &str, broken: Value, kept: Value) -> CelCase {
    CelCase {
        at: at.into(),
        message: message.into(),
        broken,
        kept,
        old: None,
    }
}

/// A case of a transition rule: `old` changed by `broken` breaks it, by `kept` keeps it.
fn change(at: &str, message: &str, old: Value, broken: Value, kept: Value) -> CelCase {
    CelCase {
        old: Some(old),
        ..case(at, message, broken, kept)
    }
}

fn spec(patch: Value) -> Value {
    json!({ "spec": patch })
}

/// Every CEL rule of the CRD, by a case that breaks it.
fn cel_cases() -> Vec<CelCase> {
    let name = |name: String| json!({"metadata": {"name": name}});
    let tolerations = |list: Value| spec(json!({"placement": {"tolerations": list}}));
    let mut cases = vec![
        case(
            "",
            "at most 30 characters",
            name("c".repeat(31)),
            name("c".repeat(30)),
        ),
        case(
            "",
            "must be a DNS-1035 label",
            name("1demo".into()),
            name("demo1".into()),
        ),
        case(
            "spec",
            "spec.chunkservers.replicas must be at least spec.logicalPool.replicas",
            spec(json!({"chunkservers": {"replicas": 2}})),
            spec(
                json!({"chunkservers": {"replicas": 2}, "logicalPool": {"replicas": 2, "zones": 2}}),
            ),
        ),
        case(
            "spec",
            "spec.logicalPool.zones must not exceed spec.chunkservers.replicas",
            spec(json!({"logicalPool": {"replicas": 4, "zones": 4}})),
            spec(
                json!({"logicalPool": {"replicas": 4, "zones": 4}, "chunkservers": {"replicas": 4}}),
            ),
        ),
        case(
            "spec",
            "spec.logicalPool.zones must equal spec.logicalPool.replicas",
            spec(json!({"logicalPool": {"zones": 2}})),
            spec(json!({"logicalPool": {"zones": 2, "replicas": 2}})),
        ),
        case(
            "spec",
            "replicas × disksPerNode must be at least 2",
            spec(
                json!({"chunkservers": {"replicas": 1}, "logicalPool": {"replicas": 1, "zones": 1}}),
            ),
            spec(
                json!({"chunkservers": {"replicas": 1, "disksPerNode": 2}, "logicalPool": {"replicas": 1, "zones": 1}}),
            ),
        ),
        case(
            "spec",
            "spec.mds ports must differ from spec.etcd ports",
            spec(json!({"mds": {"port": 2380}})),
            spec(json!({"mds": {"port": 2381}})),
        ),
        case(
            "spec",
            "spec.chunkservers.port range",
            spec(json!({"chunkservers": {"port": 7699, "disksPerNode": 2}})),
            spec(json!({"chunkservers": {"port": 7701, "disksPerNode": 2}})),
        ),
        case(
            "spec.coreDumps.hostPath",
            "must be an absolute directory",
            spec(json!({"coreDumps": {"hostPath": "/var/./cores"}})),
            spec(json!({"coreDumps": {"hostPath": "/var/.cores"}})),
        ),
        case(
            "spec.coreDumps.hostPath",
            "must be an absolute directory",
            spec(json!({"coreDumps": {"hostPath": "/var/lib/curve/"}})),
            spec(json!({"coreDumps": {"hostPath": "/var/lib/curve"}})),
        ),
        case(
            "spec.image",
            "must name a Curve image",
            spec(json!({"image": ""})),
            spec(json!({"image": "curvebs"})),
        ),
        case(
            "spec.image",
            "must be an image reference",
            spec(json!({"image": "opencurvedocker/CurveBS:v1.2.6"})),
            spec(json!({"image": "registry.example.com:5000/opencurvedocker/curvebs:v1.2.6"})),
        ),
        case(
            "spec.image",
            "names a registry",
            spec(json!({"image": "registry_1.example.com/curvebs:v1.2.6"})),
            spec(json!({"image": "registry-1.example.com/curvebs:v1.2.6"})),
        ),
        change(
            "spec.imagePullSecrets",
            "is immutable",
            spec(json!({"imagePullSecrets": ["registry"]})),
            spec(json!({"imagePullSecrets": ["other"]})),
            spec(json!({"imagePullSecrets": ["registry"]})),
        ),
        case(
            "spec.imagePullSecrets",
            "must name Secrets",
            spec(json!({"imagePullSecrets": ["Bad Name"]})),
            spec(json!({"imagePullSecrets": ["registry.example.com"]})),
        ),
        case(
            "spec.etcd",
            "spec.etcd.clientPort and spec.etcd.peerPort must differ",
            spec(json!({"etcd": {"peerPort": 2379}})),
            spec(json!({"etcd": {"peerPort": 2381}})),
        ),
        case(
            "spec.etcd.replicas",
            "must be 1, 3, 5 or 7",
            spec(json!({"etcd": {"replicas": 4}})),
            spec(json!({"etcd": {"replicas": 5}})),
        ),
        case(
            "spec.mds",
            "spec.mds.port and spec.mds.dummyPort must differ",
            spec(json!({"mds": {"dummyPort": 6700}})),
            spec(json!({"mds": {"dummyPort": 6701}})),
        ),
        case(
            "spec.chunkservers",
            "port + disksPerNode - 1 must be at most 65535",
            spec(json!({"chunkservers": {"port": 65535, "disksPerNode": 2}})),
            spec(json!({"chunkservers": {"port": 65534, "disksPerNode": 2}})),
        ),
        case(
            "spec.hostNetwork",
            "must be true",
            spec(json!({"hostNetwork": false})),
            spec(json!({"hostNetwork": true})),
        ),
        case(
            "spec.monitoring.interval",
            "Prometheus duration",
            spec(json!({"monitoring": {"interval": "0s"}})),
            spec(json!({"monitoring": {"interval": "1m"}})),
        ),
        case(
            "spec.placement.topologyKey",
            "must not be empty",
            spec(json!({"placement": {"topologyKey": ""}})),
            spec(json!({"placement": {"topologyKey": "rack"}})),
        ),
        case(
            "spec.placement.topologyKey",
            "must be a label key",
            spec(json!({"placement": {"topologyKey": "host name"}})),
            spec(json!({"placement": {"topologyKey": "kubernetes.io/hostname"}})),
        ),
        case(
            "spec.placement.zoneLabel",
            "must be a label key",
            spec(json!({"placement": {"zoneLabel": "Topology/zone"}})),
            spec(json!({"placement": {"zoneLabel": "topology.kubernetes.io/zone"}})),
        ),
        case(
            "spec.placement.tolerations[]",
            "operator must be Exists when key is empty",
            tolerations(json!([{"operator": "Equal", "value": "x"}])),
            tolerations(json!([{"operator": "Exists"}])),
        ),
        case(
            "spec.placement.tolerations[]",
            "value must be empty when operator is Exists",
            tolerations(json!([{"key": "k", "operator": "Exists", "value": "x"}])),
            tolerations(json!([{"key": "k", "operator": "Exists"}])),
        ),
        case(
            "spec.placement.tolerations[]",
            "value must be a label value",
            tolerations(json!([{"key": "k", "value": "a b"}])),
            tolerations(json!([{"key": "k", "value": "a-b"}])),
        ),
        case(
            "spec.placement.tolerations[]",
            "tolerationSeconds is allowed only with effect NoExecute",
            tolerations(
                json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}]),
            ),
            tolerations(
                json!([{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]),
            ),
        ),
        case(
            "spec.placement.tolerations[].key",
            "key must be empty or a label key",
            tolerations(json!([{"key": "k/", "operator": "Exists"}])),
            tolerations(json!([{"key": "example.com/k", "operator": "Exists"}])),
        ),
        change(
            "spec.logicalPool.replicas",
            "is immutable",
            json!({}),
            spec(json!({"logicalPool": {"replicas": 1, "zones": 1}})),
            spec(json!({"logicalPool": {"replicas": 3, "zones": 3}})),
        ),
        case(
            "spec.cleanup.confirmation",
            "must be yes-really-destroy-data",
            spec(json!({"cleanup": {"confirmation": "yes"}})),
            spec(json!({"cleanup": {"confirmation": DELETE_DATA_CONFIRMATION}})),
        ),
        case(
            "spec.etcd.restore.snapshot",
            "must be a snapshot name",
            spec(json!({"etcd": {"restore": {"snapshot": "etcd-2026-01-01"}}})),
            spec(json!({"etcd": {"restore": {"snapshot": RESTORE_SNAPSHOT}}})),
        ),
        case(
            "spec.etcd.restore",
            "spec.etcd.restore.confirmation must be yes-restore-etcd-from-",
            spec(
                json!({"etcd": {"restore": {"snapshot": RESTORE_SNAPSHOT, "confirmation": "yes-restore-etcd-from-etcd-20251231T000000Z"}}}),
            ),
            spec(
                json!({"etcd": {"restore": {"snapshot": RESTORE_SNAPSHOT, "confirmation": RESTORE_CONFIRMATION}}}),
            ),
        ),
    ];
    for (field, immutable) in [("clientPort", (2379, 3379)), ("peerPort", (2380, 3380))] {
        cases.push(change(
            &format!("spec.etcd.{field}"),
            "is immutable",
            json!({}),
            spec(json!({"etcd": {field: immutable.1}})),
            spec(json!({"etcd": {field: immutable.0}})),
        ));
    }
    cases.push(change(
        "spec.chunkservers.port",
        "is immutable",
        json!({}),
        spec(json!({"chunkservers": {"port": 9200}})),
        spec(json!({"chunkservers": {"port": 8200}})),
    ));
    for (field, default, bad, good) in [
        ("physicalPool", "pool1", "-pool", "pool-1"),
        ("name", "logicalPool1", "logical pool", "logical_pool.1"),
    ] {
        let pool = |value: &str| spec(json!({"logicalPool": {field: value}}));
        let at = format!("spec.logicalPool.{field}");
        cases.push(change(
            &at,
            "is immutable",
            json!({}),
            pool("other"),
            pool(default),
        ));
        cases.push(case(
            &at,
            "must be a Curve pool name",
            pool(bad),
            pool(good),
        ));
    }
    for map in ["spec.placement.nodeSelector", "spec.monitoring.labels"] {
        let (parent, field) = map.trim_start_matches("spec.").split_once('.').unwrap();
        let with = |entries: Value| spec(json!({ parent: { field: entries } }));
        cases.push(case(
            map,
            "keys must be a label key",
            with(json!({"bad key": "x"})),
            with(json!({"example.com/key": "x"})),
        ));
        cases.push(case(
            map,
            "values must be label values",
            with(json!({"key": "a b"})),
            with(json!({"key": "a-b"})),
        ));
    }
    // ChunkServer volumes hold the raft logs of their copysets besides data (`pool_room`).
    for (component, size, smallest) in [("etcd", "1Gi", "768Mi"), ("chunkservers", "100Gi", "4Gi")]
    {
        let storage = |storage: Value| spec(json!({ component: {"storage": storage} }));
        let at = format!("spec.{component}.storage");
        cases.push(change(
            &at,
            "storage.storageClassName is immutable",
            storage(json!({"size": size, "storageClassName": "fast"})),
            storage(json!({"storageClassName": "slow"})),
            storage(json!({"storageClassName": "fast"})),
        ));
        cases.push(case(
            &format!("{at}.size"),
            "must be a positive quantity",
            storage(json!({"size": "0"})),
            storage(json!({"size": smallest})),
        ));
        cases.push(case(
            &format!("{at}.storageClassName"),
            "must be a StorageClass name",
            storage(json!({"size": size, "storageClassName": "Fast SSD"})),
            storage(json!({"size": size, "storageClassName": "fast-ssd"})),
        ));
    }
    // etcd backups: the schedule's grammar, the claim's volume fixed at creation.
    let backup = |backup: Value| spec(json!({"etcd": {"backup": backup}}));
    let backup_storage = |storage: Value| backup(json!({"schedule": "@daily", "storage": storage}));
    cases.push(case(
        "spec.etcd.backup.schedule",
        "must be a 5-field cron expression",
        backup(json!({"schedule": "0 3 * *"})),
        backup(json!({"schedule": "0 3 * * *"})),
    ));
    cases.push(change(
        "spec.etcd.backup.storage",
        "spec.etcd.backup.storage is immutable",
        backup_storage(json!({"size": "20Gi"})),
        backup_storage(json!({"size": "30Gi"})),
        backup_storage(json!({"size": "20Gi"})),
    ));
    cases.push(change(
        "spec.etcd.backup.storage",
        "storage.storageClassName is immutable",
        backup_storage(json!({"size": "20Gi", "storageClassName": "fast"})),
        backup_storage(json!({"size": "20Gi", "storageClassName": "slow"})),
        backup_storage(json!({"size": "20Gi", "storageClassName": "fast"})),
    ));
    cases.push(case(
        "spec.etcd.backup.storage.size",
        "must be a positive quantity",
        backup_storage(json!({"size": "0"})),
        backup_storage(json!({"size": "20Gi"})),
    ));
    cases.push(case(
        "spec.etcd.backup.storage.storageClassName",
        "must be a StorageClass name",
        backup_storage(json!({"size": "20Gi", "storageClassName": "Fast SSD"})),
        backup_storage(json!({"size": "20Gi", "storageClassName": "fast-ssd"})),
    ));
    // The bucket copies: each field's grammar.
    let s3 = |field: &str, value: &str| {
        let mut s3 = json!({"endpoint": "http://minio:9000", "bucket": "backups", "credentialsSecret": "s3-keys"});
        s3[field] = json!(value);
        backup(json!({"schedule": "@daily", "s3": s3}))
    };
    for (field, message, broken, kept) in [
        (
            "endpoint",
            "must be the URL of the S3 API",
            "minio:9000",
            "https://minio.storage.svc:9000/",
        ),
        (
            "endpoint",
            "must be the URL of the S3 API",
            "http://minio:9000/bucket",
            "http://10.0.0.7",
        ),
        (
            "endpoint",
            "must be the URL of the S3 API",
            "ftp://minio",
            "http://MinIO-1.local:9000",
        ),
        (
            "bucket",
            "must be an S3 bucket name",
            "Backups",
            "backups-1.curve",
        ),
        ("bucket", "must be an S3 bucket name", "ab", "abc"),
        ("bucket", "must be an S3 bucket name", "backups-", "backups"),
        ("prefix", "must be empty or segments", "ns/demo", "ns/demo/"),
        ("prefix", "must be empty or segments", "/ns/", ""),
        (
            "prefix",
            "must be empty or segments",
            "ns//demo/",
            "a.b/(c)!_-/",
        ),
        (
            "prefix",
            "must be empty or segments",
            "ns/../demo/",
            "ns/.../demo/",
        ),
        ("prefix", "must be empty or segments", "./", "a./"),
        (
            "prefix",
            "must be empty or segments",
            "ns/d mo/",
            "ns/demo/",
        ),
        ("region", "must be 1-63 letters", "eu west", "eu-west_1"),
        ("region", "must be 1-63 letters", "-eu", "EU1"),
        (
            "credentialsSecret",
            "must be a Secret name",
            "S3_keys",
            "s3-keys.v2",
        ),
    ] {
        cases.push(case(
            &format!("spec.etcd.backup.s3.{field}"),
            message,
            s3(field, broken),
            s3(field, kept),
        ));
    }
    // curve-csi: every image as spec.image, the StorageClass's name and Curve user.
    let csi = |csi: Value| spec(json!({ "csi": csi }));
    for image in [
        "plugin",
        "nodeDriverRegistrar",
        "provisioner",
        "attacher",
        "resizer",
    ] {
        let at = format!("spec.csi.images.{image}");
        let with = |value: &str| csi(json!({"images": {image: value}}));
        cases.push(case(
            &at,
            "must be an image reference",
            with("curvecsi/Curve-CSI:v3.0.1"),
            with("registry.example.com:5000/curvecsi/curve-csi:v3.0.1"),
        ));
        cases.push(case(
            &at,
            "names a registry",
            with("registry_1.example.com/curve-csi:v3.0.1"),
            with("registry-1.example.com/curve-csi:v3.0.1"),
        ));
    }
    cases.push(case(
        "spec.csi.storageClass.name",
        "must be a StorageClass name",
        csi(json!({"storageClass": {"name": "Curve_SC"}})),
        csi(json!({"storageClass": {"name": "curve.fast"}})),
    ));
    // curve-csi counts bytes: 16 two-byte characters are 32.
    cases.push(case(
        "spec.csi.storageClass.user",
        "must be 1 to 30 bytes",
        csi(json!({"storageClass": {"user": "é".repeat(16)}})),
        csi(json!({"storageClass": {"user": "é".repeat(15)}})),
    ));
    cases.push(case(
        "spec.csi.storageClass.user",
        "must be 1 to 30 bytes",
        csi(json!({"storageClass": {"user": ""}})),
        csi(json!({"storageClass": {"user": "k"}})),
    ));
    // etcd's volume holds the WAL and snapshots (512Mi) and the smallest quota twice.
    let etcd = |etcd: Value| spec(json!({ "etcd": etcd }));
    cases.push(case(
        "spec.etcd",
        "spec.etcd.storage.size must be at least 768Mi",
        etcd(json!({"storage": {"size": "805306367"}})),
        etcd(json!({"storage": {"size": "768Mi"}})),
    ));
    cases.push(case(
        "spec.etcd.quotaBackendBytes",
        "must be at least 128Mi",
        etcd(json!({"quotaBackendBytes": "134217727"})),
        etcd(json!({"quotaBackendBytes": "128Mi"})),
    ));
    cases.push(case(
        "spec.etcd",
        "must be at most half of spec.etcd.storage.size less 512Mi",
        etcd(json!({"quotaBackendBytes": "268435457", "storage": {"size": "1Gi"}})),
        etcd(json!({"quotaBackendBytes": "256Mi", "storage": {"size": "1Gi"}})),
    ));
    cases.push(case(
        "spec.etcd.quotaBackendBytes",
        "must be a positive quantity",
        etcd(json!({"quotaBackendBytes": "0"})),
        etcd(json!({"quotaBackendBytes": "128Mi"})),
    ));
    cases.push(case(
        "spec.etcd.quotaBackendBytes",
        "must be at most 8Gi",
        etcd(json!({"quotaBackendBytes": "8589934593", "storage": {"size": "20Gi"}})),
        etcd(json!({"quotaBackendBytes": "8Gi", "storage": {"size": "20Gi"}})),
    ));
    // 100 copysets at 90 % need 4150560507 bytes; 4150560506 is one byte short.
    cases.push(case(
        "spec.chunkservers",
        "leaves no room for data",
        spec(json!({"chunkservers": {"storage": {"size": "4150560506"}}})),
        spec(json!({"chunkservers": {"storage": {"size": "4150560507"}}})),
    ));
    cases.push(case(
        "spec.chunkservers",
        "leaves no room for data",
        spec(json!({"chunkservers": {"storage": {"size": "2Gi"}, "formatPercent": 20, "copysets": 20}})),
        spec(json!({"chunkservers": {"storage": {"size": "2Gi"}, "formatPercent": 20, "copysets": 5}})),
    ));
    // Whatever the copysets, not below 1Gi (ext4 keeps more of a smaller volume).
    cases.push(case(
        "spec.chunkservers",
        "leaves no room for data",
        spec(json!({"chunkservers": {"storage": {"size": "1073741823"}, "copysets": 1}})),
        spec(json!({"chunkservers": {"storage": {"size": "1Gi"}, "copysets": 1}})),
    ));
    for component in ["etcd", "mds", "chunkservers"] {
        let at = format!("spec.{component}.resources");
        let resources = |resources: Value| spec(json!({ component: {"resources": resources} }));
        let nic = |request: &str, limit: &str| {
            resources(
                json!({"requests": {"example.com/nic": request}, "limits": {"example.com/nic": limit}}),
            )
        };
        cases.extend([
            case(
                &at,
                &format!("{at}.limits may name only"),
                resources(json!({"limits": {"gpu": "1"}})),
                resources(json!({"limits": {"example.com/gpu": "1"}})),
            ),
            case(
                &at,
                &format!("{at}.requests may name only"),
                resources(json!({"requests": {"gpu": "1"}})),
                resources(json!({"requests": {"cpu": "1"}})),
            ),
            case(
                &at,
                &format!("{at}.limits of extended resources must be whole numbers"),
                resources(json!({"limits": {"example.com/nic": "500m"}})),
                resources(json!({"limits": {"example.com/nic": "1"}})),
            ),
            case(
                &at,
                &format!("{at}.requests of extended resources must be whole numbers"),
                nic("500m", "500m"),
                nic("1", "1"),
            ),
            case(
                &at,
                &format!("{at}.requests must not exceed"),
                resources(json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}})),
                resources(json!({"requests": {"cpu": "1500m"}, "limits": {"cpu": "1.5"}})),
            ),
            case(
                &at,
                &format!("{at}.requests of hugepages and extended resources need"),
                resources(json!({"requests": {"example.com/nic": "1"}})),
                nic("1", "1"),
            ),
            case(
                &at,
                "cpu or memory too when it asks for hugepages",
                resources(json!({"limits": {"hugepages-2Mi": "4Mi"}})),
                resources(
                    json!({"limits": {"hugepages-2Mi": "4Mi"}, "requests": {"memory": "1Gi"}}),
                ),
            ),
        ]);
    }
    cases
}

/// `spec.placement.tolerations[]` → `spec.placement.tolerations[0]`: where the cases put the
/// value of a list.
fn concrete(at: &str) -> String {
    at.replace("[]", "[0]")
}

/// Every CEL rule has a case; for each, the CRD refuses the broken spec with that rule and takes
/// its neighbour, and the operator refuses the broken spec (naming a field at or under the
/// rule's) and takes the neighbour.
///
/// The operator sees one spec, not a change: for a transition rule (`oldSelf`: imagePullSecrets,
/// the etcd and ChunkServer ports, the StorageClasses, the pool names and replicas) only the CRD
/// refuses the change, and the case checks that each of its specs is valid on its own.
#[test]
fn the_operator_refuses_what_every_cel_rule_refuses() {
    let schema = schema();
    let mut rules = Vec::new();
    cel_rules_under(&schema, &[], &mut rules);
    let cases = cel_cases();
    let mut uncovered = Vec::new();
    for rule in &rules {
        if !cases
            .iter()
            .any(|c| c.at == rule.at && rule.message.contains(&c.message))
        {
            uncovered.push(format!("{}: {} ({})", rule.at, rule.message, rule.rule));
        }
    }
    assert!(
        uncovered.is_empty(),
        "CEL rules with no case in cel_cases():\n{}",
        uncovered.join("\n")
    );
    let mut disagreements = Vec::new();
    for case in &cases {
        let matching: Vec<&CelRule> = rules
            .iter()
            .filter(|r| r.at == case.at && r.message.contains(&case.message))
            .collect();
        let [rule] = matching.as_slice() else {
            panic!(
                "{} {:?} must name exactly one rule, names {}",
                case.at,
                case.message,
                matching.len()
            );
        };
        let old = crd::patched(case.old.clone().unwrap_or(json!({})));
        let changed = |patch: &Value| {
            let mut object = old.clone();
            merge_json(&mut object, patch);
            object
        };
        let (broken, kept) = (changed(&case.broken), changed(&case.kept));
        let before = case.old.as_ref().map(|_| &old);
        let failures = cel_failures(&broken, before);
        assert!(
            failures
                .iter()
                .any(|f| f.rule == rule.rule && f.field_path == concrete(&case.at)),
            "{} {:?}: {} does not break it: {failures:?}",
            case.at,
            case.message,
            case.broken
        );
        let crd = crd_refusals(&kept, before);
        assert!(
            crd.is_empty(),
            "{} {:?}: the CRD refuses the kept spec {}: {crd:?}",
            case.at,
            case.message,
            case.kept
        );
        let operator_on_kept = operator_refusals(&kept);
        if !operator_on_kept.is_empty() {
            disagreements.push(format!(
                "{} {:?}: the CRD accepts {}; the operator says {:?}",
                case.at,
                case.message,
                case.kept,
                shown(&operator_on_kept)
            ));
        }
        let operator_on_broken = operator_refusals(&broken);
        if case.old.is_some() {
            assert_eq!(
                shown(&operator_on_broken),
                Vec::<String>::new(),
                "{} {:?}: the changed spec must be valid on its own",
                case.at,
                case.message
            );
        } else if !operator_on_broken
            .iter()
            .any(|e| e.path.starts_with(&concrete(&case.at)))
        {
            disagreements.push(format!(
                "{} {:?}: the CRD refuses {}; the operator says {:?}",
                case.at,
                case.message,
                case.broken,
                shown(&operator_on_broken)
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The CEL rule `pool_room` and the operator agree at the very byte of the bound, for
/// formatPercent and copysets across their ranges: one byte short is refused by both, the
/// bound is taken by both (written as bytes, and in Ki where it is a multiple).
#[test]
fn the_pool_room_bound_is_the_same_byte_for_the_crd_and_the_operator() {
    use curve_operator::validate::capacity::min_volume_bytes;
    let mut disagreements = Vec::new();
    for format_percent in [5, 6, 11, 33, 50, 89, 90, 99] {
        for copysets in [1, 3, 100, 257, 4999, 10000] {
            let min = min_volume_bytes(format_percent, copysets).unwrap();
            let sizes = [
                ((min - 1).to_string(), false),
                (min.to_string(), true),
                (format!("{}Ki", min.div_ceil(1024)), true),
                (format!("{}Ki", (min - 1) / 1024), false),
            ];
            for (size, fits) in sizes {
                let object = crd::patched(json!({"spec": {"chunkservers": {
                    "storage": {"size": size}, "formatPercent": format_percent, "copysets": copysets}}}));
                let (crd, operator) = (crd_refusals(&object, None), operator_refusals(&object));
                if crd.is_empty() != fits || operator.is_empty() != fits {
                    disagreements.push(format!(
                        "{format_percent}% {copysets} copysets {size} (fits: {fits}): CRD {crd:?}, operator {:?}",
                        shown(&operator)
                    ));
                }
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
