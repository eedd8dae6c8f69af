//! `curve-operator render`: a CurveCluster manifest → every object the operator would apply.

use crate::api::CurveCluster;
use crate::build::{self, Observed};
use crate::validate::{FieldError, validate};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot parse the CurveCluster: {0}")]
    Parse(String),
    #[error("the CurveCluster is invalid:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

/// Parses one CurveCluster from YAML (defaults applied as the API server would).
pub fn parse_cluster(yaml: &str) -> Result<CurveCluster, RenderError> {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).map_err(|e| RenderError::Parse(e.to_string()))?;
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
    let api_version = value.get("apiVersion").and_then(|k| k.as_str()).unwrap_or_default();
    let expected = format!("{}/{}", crate::api::GROUP, crate::api::VERSION);
    if kind != "CurveCluster" || api_version != expected {
        return Err(RenderError::Parse(format!(
            "expected apiVersion {expected}, kind CurveCluster (got apiVersion \"{api_version}\", kind \"{kind}\")"
        )));
    }
    serde_json::from_value(value).map_err(|e| RenderError::Parse(e.to_string()))
}

/// The multi-document YAML stream of every object, in apply order.
pub fn render(yaml: &str, namespace: &str) -> Result<String, RenderError> {
    let cluster = parse_cluster(yaml)?;
    let validated = validate(&cluster, namespace).map_err(|invalid| RenderError::Invalid(invalid.0))?;
    let objects = build::build(&validated, &Observed::default());
    let mut out = String::new();
    for value in objects.to_values() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&value).expect("JSON values serialize to YAML"));
    }
    Ok(out)
}
