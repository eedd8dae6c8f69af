//! A container's environment as the kubelet makes it (kubelet_pods.go
//! makeEnvironmentVariables): `envFrom` first, then `env` in order, where a `value` may refer
//! to the variables defined before it with `$(NAME)`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec};

use crate::error::EmulationError;
use crate::expansion::expand;
use crate::pod::PodFacts;

/// Why a container cannot be created (the kubelet's CreateContainerConfigError).
#[derive(Debug)]
pub(crate) struct ConfigError(pub String);

/// The outer error stops the emulation; the inner one only this container.
type Outcome<T> = Result<Result<T, ConfigError>, EmulationError>;

/// The variables the kubelet gives the container (not yet merged with the image's).
pub(crate) fn container_env(
    container: &Container,
    spec: &PodSpec,
    facts: &PodFacts,
) -> Outcome<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        let data = if let Some(cm) = &source.config_map_ref {
            match lookup_object(&facts.config_maps, "configmap", &cm.name, cm.optional) {
                Ok(Some(data)) => data,
                Ok(None) => continue,
                Err(e) => return Ok(Err(e)),
            }
        } else if let Some(secret) = &source.secret_ref {
            match lookup_object(&facts.secrets, "secret", &secret.name, secret.optional) {
                Ok(Some(data)) => data,
                Ok(None) => continue,
                Err(e) => return Ok(Err(e)),
            }
        } else {
            return Err(EmulationError::Unsupported(format!(
                "container {:?}: an envFrom entry without configMapRef or secretRef",
                container.name
            )));
        };
        for (key, value) in data {
            env.insert(format!("{prefix}{key}"), value.clone());
        }
    }
    for var in container.env.iter().flatten() {
        match var_value(var, &env, container, spec, facts)? {
            Ok(Some(value)) => {
                env.insert(var.name.clone(), value);
            }
            Ok(None) => {}
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(env))
}

/// The value of one `env` entry; `Ok(None)`: an optional reference that is missing.
fn var_value(
    var: &EnvVar,
    defined: &BTreeMap<String, String>,
    container: &Container,
    spec: &PodSpec,
    facts: &PodFacts,
) -> Outcome<Option<String>> {
    let value = var.value.as_deref().unwrap_or("");
    if !value.is_empty() {
        return Ok(Ok(Some(expand(value, |name| defined.get(name).cloned()))));
    }
    let Some(source) = &var.value_from else {
        return Ok(Ok(Some(String::new())));
    };
    value_from(source, var, container, spec, facts)
}

fn value_from(
    source: &EnvVarSource,
    var: &EnvVar,
    container: &Container,
    spec: &PodSpec,
    facts: &PodFacts,
) -> Outcome<Option<String>> {
    if let Some(field) = &source.field_ref {
        return field_value(field, spec, facts).map(|v| Ok(Some(v)));
    }
    if let Some(key_ref) = &source.config_map_key_ref {
        return Ok(key_value(
            &facts.config_maps,
            ("configmap", "ConfigMap"),
            &key_ref.name,
            &key_ref.key,
            key_ref.optional,
            &facts.namespace,
        ));
    }
    if let Some(key_ref) = &source.secret_key_ref {
        return Ok(key_value(
            &facts.secrets,
            ("secret", "Secret"),
            &key_ref.name,
            &key_ref.key,
            key_ref.optional,
            &facts.namespace,
        ));
    }
    Err(EmulationError::Unsupported(format!(
        "container {:?}: env {:?} takes its value from a source other than fieldRef, configMapKeyRef or secretKeyRef",
        container.name, var.name
    )))
}

/// An object's data, `Ok(None)` if it is missing but optional.
fn lookup_object<'a>(
    objects: &'a BTreeMap<String, BTreeMap<String, String>>,
    resource: &str,
    name: &str,
    optional: Option<bool>,
) -> Result<Option<&'a BTreeMap<String, String>>, ConfigError> {
    match objects.get(name) {
        Some(data) => Ok(Some(data)),
        None if optional == Some(true) => Ok(None),
        None => Err(ConfigError(format!("{resource} {name:?} not found"))),
    }
}

/// `configMapKeyRef` / `secretKeyRef`, with the kubelet's messages.
fn key_value(
    objects: &BTreeMap<String, BTreeMap<String, String>>,
    (resource, kind): (&str, &str),
    name: &str,
    key: &str,
    optional: Option<bool>,
    namespace: &str,
) -> Result<Option<String>, ConfigError> {
    let Some(data) = lookup_object(objects, resource, name, optional)? else {
        return Ok(None);
    };
    match data.get(key) {
        Some(value) => Ok(Some(value.clone())),
        None if optional == Some(true) => Ok(None),
        None => Err(ConfigError(format!(
            "couldn't find key {key} in {kind} {namespace}/{name}"
        ))),
    }
}

/// The downward API fields a kubelet resolves for env (the ones [`PodFacts`] knows).
fn field_value(
    field: &ObjectFieldSelector,
    spec: &PodSpec,
    facts: &PodFacts,
) -> Result<String, EmulationError> {
    Ok(match field.field_path.as_str() {
        "metadata.name" => facts.name.clone(),
        "metadata.namespace" => facts.namespace.clone(),
        "spec.nodeName" => facts.node_name.clone(),
        "spec.serviceAccountName" => spec
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        other => {
            return Err(EmulationError::Unsupported(format!(
                "fieldRef {other:?} (the emulation knows metadata.name, metadata.namespace, spec.nodeName, spec.serviceAccountName, status.podIP(s), status.hostIP(s))"
            )));
        }
    })
}
