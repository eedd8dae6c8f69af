//! Counts the operator's Kubernetes API requests by verb and resource: a tower layer in the
//! client's stack feeding `curve_operator_kube_requests_total`.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request};
use tower::util::MapRequestLayer;

use super::metrics::Metrics;

/// How long the API server may leave a watch open (`timeoutSeconds`); the watcher then
/// watches again from where it was. Kept under [`READ_TIMEOUT`]: a quiet watch sends nothing
/// until it ends.
pub const WATCH_TIMEOUT_SECONDS: u32 = 50;

/// How long any request may go without a byte from the API server before it fails. kube's
/// default (295 s, for its 290 s watches) would let a request on a connection a network broke
/// without a reset hold a reconcile for five minutes; every other request answers at once.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

const _: () = assert!(READ_TIMEOUT.as_secs() >= WATCH_TIMEOUT_SECONDS as u64 + 5);

/// Every watch of the operator: ends within [`WATCH_TIMEOUT_SECONDS`].
pub fn watch_config() -> kube::runtime::watcher::Config {
    kube::runtime::watcher::Config::default().timeout(WATCH_TIMEOUT_SECONDS)
}

/// The RBAC verb and the resource (plural, `/subresource` appended) of a request, e.g.
/// (`list`, `pods`), (`apply`, `curveclusters/status`). Paths outside the resource API
/// (discovery, `/version`) are resource `nonresource`.
pub fn classify(
    method: &Method,
    path: &str,
    query: &str,
    content_type: Option<&str>,
) -> (&'static str, String) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[][..],
    };
    let (resource, name, subresource) = match rest {
        [] => {
            return (
                verb(method, false, query, content_type),
                "nonresource".to_string(),
            );
        }
        ["namespaces", _namespace, resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
        [resource, tail @ ..] => (*resource, tail.first(), tail.get(1)),
    };
    let resource = match subresource {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    (verb(method, name.is_some(), query, content_type), resource)
}

fn verb(method: &Method, named: bool, query: &str, content_type: Option<&str>) -> &'static str {
    let watching = query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    match *method {
        Method::GET if watching => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH if content_type == Some("application/apply-patch+yaml") => "apply",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    }
}

/// The layer to put in the Kubernetes client's stack.
pub fn counting_layer<B>(
    metrics: Arc<Metrics>,
) -> MapRequestLayer<impl Fn(Request<B>) -> Request<B> + Clone> {
    MapRequestLayer::new(move |request: Request<B>| {
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let uri = request.uri();
        let (verb, resource) = classify(
            request.method(),
            uri.path(),
            uri.query().unwrap_or_default(),
            content_type,
        );
        metrics.kube_request(verb, &resource);
        request
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_named_by_rbac_verb_and_resource() {
        let apply = Some("application/apply-patch+yaml");
        let merge = Some("application/merge-patch+json");
        for (method, path, query, content_type, expected) in [
            (
                Method::GET,
                "/api/v1/namespaces/ns/pods",
                "labelSelector=a%3Db",
                None,
                ("list", "pods"),
            ),
            (
                Method::GET,
                "/api/v1/pods",
                "watch=true&resourceVersion=1",
                None,
                ("watch", "pods"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/secrets/demo-root-password",
                "",
                None,
                ("get", "secrets"),
            ),
            (
                Method::GET,
                "/api/v1/nodes/node-1",
                "",
                None,
                ("get", "nodes"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns",
                "",
                None,
                ("get", "namespaces"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces",
                "",
                None,
                ("list", "namespaces"),
            ),
            (
                Method::POST,
                "/api/v1/namespaces/ns/secrets",
                "",
                None,
                ("create", "secrets"),
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/ns/statefulsets/demo-etcd",
                "fieldManager=x&force=true",
                apply,
                ("apply", "statefulsets"),
            ),
            (
                Method::PATCH,
                "/apis/curve.opencurve.io/v1alpha1/namespaces/ns/curveclusters/demo/status",
                "fieldManager=x",
                apply,
                ("apply", "curveclusters/status"),
            ),
            (
                Method::PATCH,
                "/apis/curve.opencurve.io/v1alpha1/namespaces/ns/curveclusters/demo",
                "",
                merge,
                ("patch", "curveclusters"),
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/op",
                "",
                None,
                ("update", "leases"),
            ),
            (
                Method::DELETE,
                "/apis/batch/v1/namespaces/ns/jobs/demo-logical-pool",
                "",
                None,
                ("delete", "jobs"),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/persistentvolumeclaims",
                "labelSelector=x",
                None,
                ("deletecollection", "persistentvolumeclaims"),
            ),
            (Method::GET, "/version", "", None, ("list", "nonresource")),
        ] {
            let (verb, resource) = classify(&method, path, query, content_type);
            assert_eq!(
                (verb, resource.as_str()),
                expected,
                "{method} {path}?{query}"
            );
        }
    }
}
