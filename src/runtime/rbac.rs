//! The Kubernetes permissions the operator needs: the one source of truth.
//!
//! The Helm chart's RBAC templates must grant exactly these (tests/helm.rs renders the chart
//! and compares), so a new API call in the code starts here.

/// Where a permission must be granted when the operator watches a single namespace.
/// With cluster-wide watching every permission goes into one ClusterRole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Objects of the watched CurveClusters: a Role in the watched namespace suffices.
    Watched,
    /// Cluster-scoped objects (nodes, CRDs): always a ClusterRole.
    Cluster,
    /// The leader-election Lease, in the operator's own namespace.
    OperatorNamespace,
    /// The kubelets' node Leases, in `kube-node-lease` (read for the nodes' clocks).
    NodeLeases,
}

/// One RBAC rule: these verbs on these resources of one API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// API group; `""` is the core group.
    pub group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub scope: Scope,
}

/// Owned objects are listed by label, watched, created and changed by server-side apply (a
/// PATCH, which the API server authorizes as `create` when the object does not exist yet), and
/// pruned (delete).
const OWNED: &[&str] = &["list", "watch", "create", "patch", "delete"];
const READ: &[&str] = &["get", "list", "watch"];

const fn rule(
    group: &'static str,
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
    scope: Scope,
) -> Permission {
    Permission {
        group,
        resources,
        verbs,
        scope,
    }
}

/// Every permission the operator uses; nothing else is granted.
pub const PERMISSIONS: &[Permission] = &[
    rule(
        "curve.opencurve.io",
        &["curveclusters"],
        // patch: the data finalizer.
        &["list", "watch", "patch"],
        Scope::Watched,
    ),
    rule(
        "curve.opencurve.io",
        &["curveclusters/status"],
        &["patch"],
        Scope::Watched,
    ),
    rule(
        "curve.opencurve.io",
        &["curveclusters/finalizers"],
        &["update"],
        Scope::Watched,
    ),
    rule("apps", &["statefulsets"], OWNED, Scope::Watched),
    rule("", &["services", "configmaps"], OWNED, Scope::Watched),
    rule("policy", &["poddisruptionbudgets"], OWNED, Scope::Watched),
    rule("batch", &["jobs"], OWNED, Scope::Watched),
    // spec.monitoring: the Prometheus Operator's kinds, only once discovery finds them
    // (discovery itself needs no grant).
    rule(
        "monitoring.coreos.com",
        &["podmonitors", "prometheusrules"],
        OWNED,
        Scope::Watched,
    ),
    // delete: a roll replaces pods one by one (OnDelete StatefulSets).
    rule("", &["pods"], &["list", "watch", "delete"], Scope::Watched),
    // Watched into a cache (volume sizes); patched to grow a volume (its storage request);
    // deleted only with a confirmed Delete cleanup policy: all on the cluster's deletion, one
    // when an etcd member is removed.
    rule(
        "",
        &["persistentvolumeclaims"],
        &["list", "watch", "patch", "delete", "deletecollection"],
        Scope::Watched,
    ),
    // The cluster's root password: read, and created once when missing (never changed).
    rule("", &["secrets"], &["get", "create"], Scope::Watched),
    rule(
        "events.k8s.io",
        &["events"],
        &["create", "patch"],
        Scope::Watched,
    ),
    // Why the StatefulSet controller cannot create a pod is only in its Events (FailedCreate):
    // listed for a StatefulSet with pods missing, never watched.
    rule("", &["events"], &["list"], Scope::Watched),
    // The zone labels of nodes, watched (metadata only) into a cache.
    rule("", &["nodes"], &["list", "watch"], Scope::Cluster),
    rule(
        "apiextensions.k8s.io",
        &["customresourcedefinitions"],
        READ,
        Scope::Cluster,
    ),
    // Whether a claim's StorageClass allows volume expansion: read only while a claim asks
    // for less than the spec.
    rule(
        "storage.k8s.io",
        &["storageclasses"],
        &["get"],
        Scope::Cluster,
    ),
    rule(
        "coordination.k8s.io",
        &["leases"],
        &["get", "create", "update"],
        Scope::OperatorNamespace,
    ),
    // The nodes' clocks, from their kubelets' Lease renewals (reconcile/clocks.rs).
    rule(
        "coordination.k8s.io",
        &["leases"],
        &["list", "watch"],
        Scope::NodeLeases,
    ),
];

/// One grant: (API group, resource, verb).
pub type Grant = (String, String, String);

/// The permissions as a flat, sorted set of grants, filtered by scope.
pub fn grants(scopes: &[Scope]) -> std::collections::BTreeSet<Grant> {
    PERMISSIONS
        .iter()
        .filter(|p| scopes.contains(&p.scope))
        .flat_map(|p| {
            p.resources.iter().flat_map(move |r| {
                p.verbs
                    .iter()
                    .map(move |v| (p.group.to_owned(), (*r).to_owned(), (*v).to_owned()))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_wildcards_and_no_duplicates() {
        let all = grants(&[
            Scope::Watched,
            Scope::Cluster,
            Scope::OperatorNamespace,
            Scope::NodeLeases,
        ]);
        let count: usize = PERMISSIONS
            .iter()
            .map(|p| p.resources.len() * p.verbs.len())
            .sum();
        assert_eq!(
            all.len(),
            count,
            "a (group, resource, verb) is listed twice"
        );
        assert!(all.iter().all(|(g, r, v)| g != "*" && r != "*" && v != "*"));
    }

    #[test]
    fn scopes_partition_the_list() {
        let by_scope: usize = [Scope::Watched, Scope::Cluster, Scope::OperatorNamespace]
            .iter()
            .map(|s| grants(&[*s]).len())
            .sum();
        assert_eq!(
            by_scope,
            grants(&[Scope::Watched, Scope::Cluster, Scope::OperatorNamespace]).len()
        );
        assert!(grants(&[Scope::Cluster]).contains(&("".into(), "nodes".into(), "watch".into())));
    }
}
