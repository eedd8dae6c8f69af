//! A fake Kubernetes API server behind tower-test's mock service: it answers list, get,
//! server-side apply (of the status too), merge patch and delete from an in-memory store, and records
//! every request so tests can assert the reconciler's requests one by one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct FakeApi {
    /// collection path → name → object
    objects: Arc<Mutex<BTreeMap<String, BTreeMap<String, Value>>>>,
    requests: Arc<Mutex<Vec<String>>>,
    /// `POST <collection>` for every server-side apply that created its object: the API
    /// server authorizes those as `create`, not `patch`.
    creations: Arc<Mutex<Vec<String>>>,
    /// Requests (method and path prefix) answered with a 500, for error tests.
    failing: Arc<Mutex<Vec<String>>>,
    /// Requests (method and path prefix) refused with the given Status body, as the API
    /// server refuses an object (422 Invalid, 403 Forbidden by admission).
    refusing: Arc<Mutex<Vec<(String, Value)>>>,
    version: Arc<Mutex<u64>>,
    /// The JSON body of each request that had one, by its request line.
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
}

/// Splits `/api/v1/namespaces/ns/pods/name/status` into (collection, name, subresource).
fn split_path(path: &str) -> (String, Option<String>, Option<String>) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let resource_at = match parts.iter().position(|p| *p == "namespaces") {
        Some(i) if parts.len() > i + 2 => i + 2,
        _ => {
            if parts[0] == "api" {
                2
            } else {
                3
            }
        }
    };
    let collection = format!("/{}", parts[..=resource_at].join("/"));
    (
        collection,
        parts.get(resource_at + 1).map(|s| s.to_string()),
        parts.get(resource_at + 2).map(|s| s.to_string()),
    )
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| {
            v.replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/")
        })
    })
}

fn matches_selector(object: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (key, value) = term.split_once('=').unwrap_or((term, ""));
        object["metadata"]["labels"][key].as_str() == Some(value)
    })
}

fn kind_of_collection(collection: &str) -> &'static str {
    match collection.rsplit('/').next().unwrap() {
        "pods" => "Pod",
        "statefulsets" => "StatefulSet",
        "configmaps" => "ConfigMap",
        "services" => "Service",
        "poddisruptionbudgets" => "PodDisruptionBudget",
        "persistentvolumeclaims" => "PersistentVolumeClaim",
        "curveclusters" => "CurveCluster",
        "nodes" => "Node",
        "jobs" => "Job",
        "secrets" => "Secret",
        _ => "Unknown",
    }
}

fn status(code: StatusCode, message: &str) -> Response<Body> {
    // The reasons the API server gives (kube's get_opt looks for NotFound).
    let reason = match code {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::CONFLICT => "AlreadyExists",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        _ => "InternalError",
    };
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
        "reason": reason, "code": code.as_u16()});
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(value: &Value) -> Response<Body> {
    Response::builder()
        .status(200)
        .body(Body::from(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

impl FakeApi {
    /// A kube Client whose requests this fake answers (on a background task).
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = fake.handle(request).await;
                send.send_response(response);
            }
        });
        Client::new(service, "default")
    }

    /// Puts an object in the store, as if another actor (the kubelet, a user) made it.
    pub fn put(&self, collection: &str, object: Value) {
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        self.objects
            .lock()
            .unwrap()
            .entry(collection.to_string())
            .or_default()
            .insert(name, object);
    }

    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        self.objects
            .lock()
            .unwrap()
            .get(collection)?
            .get(name)
            .cloned()
    }

    /// Every object of a collection, typed (for filling the operator's watch caches).
    pub fn objects<K: serde::de::DeserializeOwned>(&self, collection: &str) -> Vec<K> {
        self.objects
            .lock()
            .unwrap()
            .get(collection)
            .map(|m| {
                m.values()
                    .map(|v| serde_json::from_value(v.clone()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes an object, as if another actor deleted it.
    pub fn delete_object(&self, collection: &str, name: &str) {
        if let Some(objects) = self.objects.lock().unwrap().get_mut(collection) {
            objects.remove(name);
        }
    }

    pub fn names(&self, collection: &str) -> Vec<String> {
        self.objects
            .lock()
            .unwrap()
            .get(collection)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The requests since the last call, as `METHOD path` (+ `?labelSelector=…` or
    /// `?fieldSelector=…` on lists).
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    /// The requests since the last `take_requests`, left in place.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Every apply that created an object, as the `POST <collection>` it is authorized as.
    pub fn creations(&self) -> Vec<String> {
        self.creations.lock().unwrap().clone()
    }

    /// The body of the last request with this request line.
    pub fn body_of(&self, line: &str) -> Option<Value> {
        let bodies = self.bodies.lock().unwrap();
        bodies
            .iter()
            .rev()
            .find(|(l, _)| l == line)
            .map(|(_, b)| b.clone())
    }

    pub fn fail(&self, method_and_prefix: &str) {
        self.failing
            .lock()
            .unwrap()
            .push(method_and_prefix.to_string());
    }

    /// Refuses every request starting with `method_and_prefix` with a Status of `code` and
    /// `reason`, whose message and causes are the server's.
    pub fn refuse(
        &self,
        method_and_prefix: &str,
        code: u16,
        reason: &str,
        message: &str,
        causes: Value,
    ) {
        let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": message, "reason": reason, "code": code, "details": {"causes": causes}});
        self.refusing
            .lock()
            .unwrap()
            .push((method_and_prefix.to_string(), body));
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().to_string();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let body = request.into_body().collect_bytes().await.unwrap();
        let (collection, name, subresource) = split_path(&path);
        let selector = query_param(&query, "labelSelector");
        let fields = query_param(&query, "fieldSelector");
        let line = match (&name, &selector, &fields) {
            (None, Some(selector), _) => format!("{method} {path}?labelSelector={selector}"),
            (None, None, Some(fields)) => format!("{method} {path}?fieldSelector={fields}"),
            _ => format!("{method} {path}"),
        };
        self.requests.lock().unwrap().push(line.clone());
        if let Ok(sent) = serde_json::from_slice::<Value>(&body) {
            self.bodies.lock().unwrap().push((line.clone(), sent));
        }
        if self
            .failing
            .lock()
            .unwrap()
            .iter()
            .any(|f| line.starts_with(f.as_str()))
        {
            return status(StatusCode::INTERNAL_SERVER_ERROR, "injected failure");
        }
        let refusal = self
            .refusing
            .lock()
            .unwrap()
            .iter()
            .find(|(prefix, _)| line.starts_with(prefix.as_str()))
            .map(|(_, body)| body.clone());
        if let Some(body) = refusal {
            return Response::builder()
                .status(body["code"].as_u64().unwrap() as u16)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
        }
        let mut objects = self.objects.lock().unwrap();
        let store = objects.entry(collection.clone()).or_default();
        match (method.as_str(), name) {
            ("GET", None) => {
                let items: Vec<Value> = store
                    .values()
                    .filter(|o| matches_selector(o, selector.as_deref()))
                    .cloned()
                    .collect();
                ok(
                    &json!({"apiVersion": "v1", "kind": format!("{}List", kind_of_collection(&collection)),
                    "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            ("GET", Some(name)) => match store.get(&name) {
                Some(object) => ok(object),
                None => status(StatusCode::NOT_FOUND, &format!("{name} not found")),
            },
            ("PATCH", Some(name)) => {
                let patch: Value = serde_json::from_slice(&body).unwrap();
                let mut version = self.version.lock().unwrap();
                *version += 1;
                let is_apply = query.contains("fieldManager") && patch.get("kind").is_some();
                let object = if is_apply && subresource.as_deref() == Some("status") {
                    // The operator is the status's only manager: its apply replaces the status.
                    let Some(mut object) = store.get(&name).cloned() else {
                        return status(StatusCode::NOT_FOUND, &format!("{name} not found"));
                    };
                    object["status"] = patch["status"].clone();
                    object
                } else if is_apply {
                    if !store.contains_key(&name) {
                        self.creations
                            .lock()
                            .unwrap()
                            .push(format!("POST {collection}"));
                    }
                    let mut applied = patch.clone();
                    if let Some(status) = store.get(&name).and_then(|o| o.get("status").cloned()) {
                        applied["status"] = status;
                    }
                    applied
                } else {
                    let Some(mut object) = store.get(&name).cloned() else {
                        return status(StatusCode::NOT_FOUND, &format!("{name} not found"));
                    };
                    curve_operator::util::merge_json(&mut object, &patch);
                    object
                };
                let mut object = object;
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                store.insert(name, object.clone());
                ok(&object)
            }
            ("POST", None) => {
                let mut object: Value = serde_json::from_slice(&body).unwrap();
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if store.contains_key(&name) {
                    return status(StatusCode::CONFLICT, &format!("{name} already exists"));
                }
                let mut version = self.version.lock().unwrap();
                *version += 1;
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                self.creations
                    .lock()
                    .unwrap()
                    .push(format!("POST {collection}"));
                store.insert(name, object.clone());
                ok(&object)
            }
            ("DELETE", Some(name)) => match store.remove(&name) {
                Some(object) => ok(&object),
                None => status(StatusCode::NOT_FOUND, &format!("{name} not found")),
            },
            ("DELETE", None) => {
                let names: Vec<String> = store
                    .iter()
                    .filter(|(_, o)| matches_selector(o, selector.as_deref()))
                    .map(|(n, _)| n.clone())
                    .collect();
                let items: Vec<Value> = names.iter().filter_map(|n| store.remove(n)).collect();
                ok(
                    &json!({"apiVersion": "v1", "kind": format!("{}List", kind_of_collection(&collection)),
                    "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "not faked"),
        }
    }
}
