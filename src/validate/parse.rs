//! Reading a CurveCluster from raw JSON, with every problem named by its field path.
//!
//! serde stops at the first field it cannot read and names no path. So before deserializing,
//! the raw object is checked against the CRD's own schema (generated from the API types, the
//! schema the API server enforces): the type of every value, enum values, required fields,
//! integers that do not fit their format, and unknown fields (which `kubectl apply` refuses with
//! its default strict field validation). The object is first normalized the way the API server
//! stores it: `null` of a field that is not nullable is dropped (its default then applies), and
//! an integral number such as `3.0` given for an integer becomes `3`.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::{FieldError, InvalidCluster};
use crate::api::CurveCluster;

/// The CRD's `openAPIV3Schema`, generated once from the API types.
fn crd_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(CurveCluster::crd()).expect("the CRD serializes");
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    })
}

/// Parses a CurveCluster from its raw JSON as the API server would store it, or returns every
/// problem that keeps it from being read, each with its field path
/// (`spec.etcd.replicas: must be an integer (got "three")`).
pub fn parse_cluster(raw: &Value) -> Result<CurveCluster, InvalidCluster> {
    let mut value = raw.clone();
    let errors = check_raw(&mut value);
    if !errors.is_empty() {
        return Err(InvalidCluster(errors));
    }
    serde_json::from_value(value).map_err(|e| {
        // Not expected once the schema check passed; still say what serde says.
        InvalidCluster(vec![FieldError {
            path: "spec".into(),
            message: format!("cannot be read: {e}"),
        }])
    })
}

/// Every problem of a raw CurveCluster that keeps it from being read (empty when it can be).
pub fn parse_errors(raw: &Value) -> Vec<FieldError> {
    check_raw(&mut raw.clone())
}

fn check_raw(value: &mut Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(object) = value.as_object_mut() else {
        errors.push(FieldError {
            path: "<object>".into(),
            message: format!("must be an object (got {})", shown(value)),
        });
        return errors;
    };
    let schema = crd_schema();
    for (key, field) in object.iter_mut() {
        match key.as_str() {
            "apiVersion" | "kind" if !field.is_string() => {
                errors.push(error(
                    key,
                    format!("must be a string (got {})", shown(field)),
                ));
            }
            "metadata" => match serde_json::from_value::<
                k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            >(field.clone())
            {
                Ok(read) => errors.extend(unknown_metadata_fields(field, &read)),
                Err(e) => errors.push(error("metadata", format!("cannot be read: {e}"))),
            },
            _ => {}
        }
    }
    // The root schema lists spec and status; apiVersion, kind and metadata are the API's own.
    let mut root = Map::new();
    for key in ["apiVersion", "kind", "metadata"] {
        if let Some(field) = object.remove(key) {
            root.insert(key.to_string(), field);
        }
    }
    let mut rest = Value::Object(std::mem::take(object));
    check(schema, &mut rest, "", &mut errors);
    let mut object = rest.as_object().cloned().unwrap_or_default();
    object.extend(root);
    *value = Value::Object(object);
    errors
}

/// The keys of `metadata` that ObjectMeta does not define (serde ignores them; the API server's
/// strict field validation refuses them): those given with a value and absent once read back.
fn unknown_metadata_fields(
    given: &Value,
    read: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Vec<FieldError> {
    let known = serde_json::to_value(read).expect("ObjectMeta serializes");
    given
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, value)| !value.is_null() && known.get(key.as_str()).is_none())
        .map(|(key, _)| error(&join("metadata", key), "unknown field".into()))
        .collect()
}

fn error(path: &str, message: String) -> FieldError {
    FieldError {
        path: path.to_string(),
        message,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A value as a refusal quotes it: compact JSON, long values shortened.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

fn type_name(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or("")
}

fn nullable(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
}

/// Checks `value` against `schema` at `path`, normalizing it as it goes.
fn check(schema: &Value, value: &mut Value, path: &str, errors: &mut Vec<FieldError>) {
    let at = if path.is_empty() { "<object>" } else { path };
    if value.is_null() {
        if !nullable(schema) {
            errors.push(error(at, "must not be null".into()));
        }
        return;
    }
    if schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
    {
        normalize_integer(value);
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(error(
                at,
                format!("must be an integer or a string (got {})", shown(value)),
            ));
        }
        return;
    }
    let wrong = match type_name(schema) {
        "object" => {
            check_object(schema, value, path, errors);
            None
        }
        "array" => match value.as_array_mut() {
            Some(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        check(item_schema, item, &format!("{path}[{i}]"), errors);
                    }
                }
                None
            }
            None => Some("must be a list".to_string()),
        },
        "string" => (!value.is_string()).then(|| "must be a string".to_string()),
        "boolean" => (!value.is_boolean()).then(|| "must be true or false".to_string()),
        "number" => (!value.is_number()).then(|| "must be a number".to_string()),
        "integer" => {
            normalize_integer(value);
            let format = schema.get("format").and_then(Value::as_str);
            let fits = match format {
                Some("int32") => value.as_i64().is_some_and(|v| i32::try_from(v).is_ok()),
                Some("uint32") => value.as_u64().is_some_and(|v| u32::try_from(v).is_ok()),
                Some("uint64") => value.is_u64(),
                _ => value.is_i64(),
            };
            if !(value.is_i64() || value.is_u64()) {
                Some("must be an integer".to_string())
            } else {
                (!fits)
                    .then(|| format!("must be an integer that fits {}", format.unwrap_or("int64")))
            }
        }
        _ => None,
    };
    if let Some(wrong) = wrong {
        errors.push(error(at, format!("{wrong} (got {})", shown(value))));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(error(
            at,
            format!("must be one of {} (got {})", list.join(", "), shown(value)),
        ));
    }
}

/// `3.0` given for an integer is the integer 3, as the API server decodes it.
fn normalize_integer(value: &mut Value) {
    if let Some(f) = value.as_f64()
        && !value.is_i64()
        && !value.is_u64()
        && f.fract() == 0.0
        && f.abs() < 9.0e15
    {
        *value = Value::from(f as i64);
    }
}

fn check_object(schema: &Value, value: &mut Value, path: &str, errors: &mut Vec<FieldError>) {
    let at = if path.is_empty() { "<object>" } else { path };
    let Some(object) = value.as_object_mut() else {
        errors.push(error(
            at,
            format!("must be an object (got {})", shown(value)),
        ));
        return;
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|s| s.is_object());
    if properties.is_none() && additional.is_none() {
        // Free-form (x-kubernetes-preserve-unknown-fields): nothing to check.
        return;
    }
    // A null of a field that is not nullable is dropped, as the API server prunes it.
    let dropped: Vec<String> = object
        .iter()
        .filter(|(key, field)| {
            field.is_null()
                && properties
                    .and_then(|p| p.get(*key))
                    .or(additional)
                    .is_some_and(|s| !nullable(s))
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in dropped {
        object.remove(&key);
    }
    for (key, field) in object.iter_mut() {
        let field_path = match (properties.is_some(), path.is_empty()) {
            (true, _) => join(path, key),
            (false, true) => format!("[{key}]"),
            (false, false) => format!("{path}[{key}]"),
        };
        match properties.and_then(|p| p.get(key)).or(additional) {
            Some(field_schema) => check(field_schema, field, &field_path, errors),
            None => errors.push(error(&field_path, "unknown field".into())),
        }
    }
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !object.contains_key(required) {
            errors.push(error(
                &join(path, required),
                "is required but missing".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::tests::minimal;
    use serde_json::json;

    fn errors_for(patch: Value) -> Vec<String> {
        let mut value = minimal();
        crate::util::merge_json(&mut value, &patch);
        parse_errors(&value)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_readable_cluster_parses_with_its_defaults() {
        let cluster = parse_cluster(&minimal()).expect("parses");
        assert_eq!(cluster.spec.etcd.replicas, 3);
        assert_eq!(parse_errors(&minimal()), Vec::new());
    }

    #[test]
    fn every_unreadable_field_is_named_with_what_was_given() {
        let table: Vec<(Value, &str)> = vec![
            (
                json!({"spec": {"etcd": {"replicas": "three"}}}),
                "spec.etcd.replicas: must be an integer (got \"three\")",
            ),
            (
                json!({"spec": {"etcd": {"replicas": 2.5}}}),
                "spec.etcd.replicas: must be an integer (got 2.5)",
            ),
            (
                json!({"spec": {"mds": {"port": 4294967296u64}}}),
                "spec.mds.port: must be an integer that fits int32 (got 4294967296)",
            ),
            (
                json!({"spec": {"imagePullPolicy": "Sometimes"}}),
                "spec.imagePullPolicy: must be one of \"Always\", \"IfNotPresent\", \"Never\" (got \"Sometimes\")",
            ),
            (
                json!({"spec": {"placement": {"antiAffinity": "required"}}}),
                "spec.placement.antiAffinity: must be one of \"Required\", \"Preferred\" (got \"required\")",
            ),
            (
                json!({"spec": {"cleanup": {"policy": "Destroy"}}}),
                "spec.cleanup.policy: must be one of \"Retain\", \"Delete\" (got \"Destroy\")",
            ),
            (
                json!({"spec": {"image": null}}),
                "spec.image: is required but missing",
            ),
            (
                json!({"spec": {"chunkservers": {"storage": null}}}),
                "spec.chunkservers.storage: is required but missing",
            ),
            (
                json!({"spec": {"chunkservers": {"storage": {"size": 100}}}}),
                "spec.chunkservers.storage.size: must be a string (got 100)",
            ),
            (
                json!({"spec": {"etcd": {"replica": 5}}}),
                "spec.etcd.replica: unknown field",
            ),
            (
                json!({"spec": {"hostNetwork": "yes"}}),
                "spec.hostNetwork: must be true or false (got \"yes\")",
            ),
            (
                json!({"spec": {"placement": {"tolerations": {"key": "x"}}}}),
                "spec.placement.tolerations: must be a list (got {\"key\":\"x\"})",
            ),
            (
                json!({"spec": {"placement": {"tolerations": [{"key": "x", "tolerationSeconds": "60"}]}}}),
                "spec.placement.tolerations[0].tolerationSeconds: must be an integer (got \"60\")",
            ),
            (
                json!({"spec": {"placement": {"nodeSelector": {"disk": true}}}}),
                "spec.placement.nodeSelector[disk]: must be a string (got true)",
            ),
            (
                json!({"spec": {"mds": {"resources": {"limits": {"cpu": [1]}}}}}),
                "spec.mds.resources.limits[cpu]: must be an integer or a string (got [1])",
            ),
            (
                json!({"spec": {"mds": {"resources": {"limits": {"cpu": 1.5}}}}}),
                "spec.mds.resources.limits[cpu]: must be an integer or a string (got 1.5)",
            ),
            (
                json!({"spec": {"etcd": {"resources": {"claims": [{"name": "gpu"}]}}}}),
                "spec.etcd.resources.claims: unknown field",
            ),
            (
                json!({"spec": {"etcd": 3}}),
                "spec.etcd: must be an object (got 3)",
            ),
            (
                json!({"metadata": {"lables": {"team": "storage"}}}),
                "metadata.lables: unknown field",
            ),
            (
                json!({"spec": {"etcd": {"storge": {"size": "1Gi"}}}}),
                "spec.etcd.storge: unknown field",
            ),
            (json!({"specs": {}}), "specs: unknown field"),
            (
                json!({"metadata": {"labels": ["a"]}}),
                "metadata: cannot be read: invalid type: sequence, expected a map",
            ),
        ];
        for (patch, expected) in table {
            let errors = errors_for(patch.clone());
            assert!(
                errors.iter().any(|e| e == expected),
                "patch {patch}: expected {expected:?}, got {errors:?}"
            );
        }
    }

    #[test]
    fn nulls_and_integral_numbers_are_read_as_the_api_server_stores_them() {
        let mut value = minimal();
        crate::util::merge_json(
            &mut value,
            &json!({"spec": {"etcd": {"replicas": 5.0, "storage": null}, "mds": {"resources": {"limits": {"cpu": 2.0}}}}}),
        );
        // merge_json deletes keys patched with null: set one explicitly.
        value["spec"]["etcd"]["storage"] = Value::Null;
        let cluster = parse_cluster(&value).expect("parses");
        assert_eq!(cluster.spec.etcd.replicas, 5);
        assert_eq!(cluster.spec.etcd.storage.size, "10Gi");
        let limits = cluster.spec.mds.resources.unwrap().limits.unwrap();
        assert_eq!(limits["cpu"].0, "2");
    }

    #[test]
    fn all_problems_are_reported_together() {
        let errors = errors_for(
            json!({"spec": {"etcd": {"replicas": "x", "clientPort": "y"}, "paused": 1}}),
        );
        assert_eq!(
            errors,
            [
                "spec.etcd.clientPort: must be an integer (got \"y\")",
                "spec.etcd.replicas: must be an integer (got \"x\")",
                "spec.paused: must be true or false (got 1)",
            ]
        );
    }
}
