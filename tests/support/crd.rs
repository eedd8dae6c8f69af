//! The generated CRD as the API server applies it, for the tests that hold the operator to it:
//! its `openAPIV3Schema`, the value constraints of that schema, and its CEL rules (evaluated with
//! kube's `cel` feature, as the API server evaluates them: defaults applied first).

#![allow(dead_code)] // each test target uses a different part

use std::sync::OnceLock;

use kube::CustomResourceExt;
use kube::core::cel::{CompiledSchema, ValidationError, Validator, compile_schema};
use serde_json::{Value, json};

use curve_operator::api::CurveCluster;
use curve_operator::util::merge_json;

/// The CRD's `openAPIV3Schema`.
pub fn schema() -> Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            serde_json::to_value(CurveCluster::crd()).unwrap()["spec"]["versions"][0]["schema"]
                ["openAPIV3Schema"]
                .clone()
        })
        .clone()
}

thread_local! {
    /// The CEL rules, compiled once per test thread (compiling is most of a validation's time).
    static CEL: (Validator, CompiledSchema) = (Validator::new(), compile_schema(&schema()));
}

/// The smallest CurveCluster the CRD and the operator accept.
pub fn minimal() -> Value {
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

/// The minimal cluster with a JSON merge patch applied.
pub fn patched(patch: Value) -> Value {
    let mut value = minimal();
    merge_json(&mut value, &patch);
    value
}

/// Every CEL rule the object breaks (`old`: the object it replaces, for transition rules).
pub fn cel_failures(object: &Value, old: Option<&Value>) -> Vec<ValidationError> {
    CEL.with(
        |(validator, compiled)| match validator.validate_compiled(compiled, object, old) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_vec(),
        },
    )
}

/// [`cel_failures`] as `path: message` lines.
pub fn cel_errors(object: &Value, old: Option<&Value>) -> Vec<String> {
    cel_failures(object, old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The schema's own value constraints (enum, pattern, maxLength/minLength, maxItems/minItems,
/// maxProperties/minProperties, minimum/maximum with their exclusive forms) as the API server
/// applies them, each to values of its own type: `path: constraint`.
pub fn schema_errors(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let number = |key: &str| schema.get(key).and_then(Value::as_f64);
    let exclusive = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
    let mut fail = |constraint: &str| errors.push(format!("{path}: {constraint}"));
    if let (Some(pattern), Value::String(text)) =
        (schema.get("pattern").and_then(Value::as_str), value)
        && !regex::Regex::new(pattern).unwrap().is_match(text)
    {
        fail("pattern");
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        fail("enum");
    }
    let count_outside = |count: usize, min: &str, max: &str| {
        if number(min).is_some_and(|min| (count as f64) < min) {
            Some(min.to_string())
        } else if number(max).is_some_and(|max| count as f64 > max) {
            Some(max.to_string())
        } else {
            None
        }
    };
    match value {
        Value::String(text) => {
            if let Some(broken) = count_outside(text.chars().count(), "minLength", "maxLength") {
                fail(&broken);
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap();
            let below = |min: f64| n < min || (exclusive("exclusiveMinimum") && n == min);
            let above = |max: f64| n > max || (exclusive("exclusiveMaximum") && n == max);
            if number("minimum").is_some_and(below) {
                fail("minimum");
            }
            if number("maximum").is_some_and(above) {
                fail("maximum");
            }
        }
        Value::Array(items) => {
            if let Some(broken) = count_outside(items.len(), "minItems", "maxItems") {
                fail(&broken);
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    schema_errors(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            if let Some(broken) = count_outside(map.len(), "minProperties", "maxProperties") {
                fail(&broken);
            }
            for (key, field) in map {
                let property = schema["properties"].get(key);
                let field_schema = property.or(schema.get("additionalProperties"));
                let field_path = if property.is_some() {
                    format!("{path}.{key}")
                } else {
                    format!("{path}[{key}]")
                };
                if let Some(field_schema) = field_schema.filter(|s| s.is_object()) {
                    schema_errors(field_schema, field, &field_path, errors);
                }
            }
        }
        _ => {}
    }
}

/// The CRD's verdict on a CurveCluster: every schema constraint of its spec and every CEL rule
/// it breaks (`old`: the object it replaces). Empty when the API server would store it.
pub fn crd_refusals(object: &Value, old: Option<&Value>) -> Vec<String> {
    let mut errors = spec_schema_errors(object);
    errors.extend(cel_errors(object, old));
    errors
}

/// Whether the API server would store a new CurveCluster: [`crd_refusals`] without evaluating
/// CEL (the slow part) when the schema refuses it already.
pub fn crd_accepts(object: &Value) -> bool {
    spec_schema_errors(object).is_empty() && cel_failures(object, None).is_empty()
}

fn spec_schema_errors(object: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    schema_errors(
        &schema()["properties"]["spec"],
        &object["spec"],
        "spec",
        &mut errors,
    );
    errors
}
