//! CurveCluster manifests that the scenarios and the scale benchmark apply.

use serde_json::{Value, json};

/// The minimal cluster of examples/curvecluster.yaml (3 etcd, 3 MDS, 3 ChunkServers) named
/// `name`, with `spec` merged into its spec as a JSON merge patch (`null` removes a field).
pub fn curve_cluster(name: &str, spec: Value) -> Value {
    let mut object = json!({
        "apiVersion": "curve.opencurve.io/v1alpha1",
        "kind": "CurveCluster",
        "metadata": {"name": name},
        "spec": {
            "image": "opencurvedocker/curvebs:v1.2.6",
            "etcd": {"replicas": 3},
            "mds": {"replicas": 3},
            "chunkservers": {"replicas": 3, "disksPerNode": 1, "storage": {"size": "100Gi"}},
        },
    });
    merge(&mut object["spec"], spec);
    object
}

/// Applies `patch` to `target` as a JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(&k);
                } else {
                    merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_given_is_merged_into_the_minimal_one() {
        let cluster = curve_cluster(
            "small",
            json!({"image": null, "chunkservers": {"replicas": 2}}),
        );
        assert_eq!(cluster["metadata"]["name"], "small");
        assert_eq!(
            cluster["spec"],
            json!({
                "etcd": {"replicas": 3},
                "mds": {"replicas": 3},
                "chunkservers": {"replicas": 2, "disksPerNode": 1, "storage": {"size": "100Gi"}},
            })
        );
    }
}
