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
/// curve-csi's leader election, as its Role grants it (desired::csi::LEADER_ELECTION).
const CSI_LEADER_ELECTION: &[&str] = &["get", "watch", "list", "delete", "update", "create"];

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
    // Deleted only with a confirmed Delete cleanup policy: all on the cluster's deletion, one
    // when an etcd member is removed. (Watched into a cache and patched to grow a volume: the
    // cluster-wide grant below, which curve-csi's controller needs.) Created: the etcd backup
    // claim (spec.etcd.backup).
    rule(
        "",
        &["persistentvolumeclaims"],
        &["create", "delete", "deletecollection"],
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
    // spec.csi: curve-csi's namespaced objects, watched by their metadata.
    rule("", &["serviceaccounts"], OWNED, Scope::Watched),
    rule(
        "apps",
        &["daemonsets", "deployments"],
        OWNED,
        Scope::Watched,
    ),
    rule(
        "rbac.authorization.k8s.io",
        &["roles", "rolebindings"],
        OWNED,
        Scope::Watched,
    ),
    // Held to grant it: the Role of curve-csi's sidecars (their leader election) is created
    // only by who holds what it grants (RBAC's escalation check), in the cluster's namespace.
    rule(
        "coordination.k8s.io",
        &["leases"],
        CSI_LEADER_ELECTION,
        Scope::Watched,
    ),
    // The zone labels of nodes, watched (metadata only) into a cache; get: held to grant it
    // to curve-csi's controller (RBAC's escalation check).
    rule("", &["nodes"], &["get", "list", "watch"], Scope::Cluster),
    // spec.csi: curve-csi's cluster-scoped objects, watched by their metadata; deleted by
    // the cluster's finalizer.
    rule(
        "rbac.authorization.k8s.io",
        &["clusterroles", "clusterrolebindings"],
        OWNED,
        Scope::Cluster,
    ),
    // get: whether another driver holds the name, before creating it.
    rule(
        "storage.k8s.io",
        &["csidrivers"],
        &["get", "list", "watch", "create", "patch", "delete"],
        Scope::Cluster,
    ),
    // Read by GET while a claim asks for more (volume expansion) or before creating curve-csi's
    // class (taken by another?); curve-csi's class is created, watched, re-created.
    rule(
        "storage.k8s.io",
        &["storageclasses"],
        &["get", "list", "watch", "create", "patch", "delete"],
        Scope::Cluster,
    ),
    // Held to grant them to curve-csi's controller (desired::csi::CONTROLLER_GRANTS), which
    // RBAC's escalation check requires of who creates its ClusterRole. The operator itself
    // lists VolumeAttachments (where curve volumes are attached) and PersistentVolumes (bound
    // ones hold a deletion back), watches and patches claims (volume sizes and growth) and
    // lists Events (why the StatefulSet controller cannot create a pod, FailedCreate).
    rule(
        "",
        &["persistentvolumes"],
        &[
            "get", "list", "watch", "create", "update", "patch", "delete",
        ],
        Scope::Cluster,
    ),
    rule(
        "",
        &["persistentvolumeclaims"],
        &["get", "list", "watch", "update", "patch"],
        Scope::Cluster,
    ),
    rule(
        "",
        &["persistentvolumeclaims/status"],
        &["update", "patch"],
        Scope::Cluster,
    ),
    rule(
        "",
        &["events"],
        &["list", "watch", "create", "update", "patch"],
        Scope::Cluster,
    ),
    rule(
        "storage.k8s.io",
        &["csinodes"],
        &["get", "list", "watch"],
        Scope::Cluster,
    ),
    rule(
        "storage.k8s.io",
        &["volumeattachments"],
        &["get", "list", "watch", "update", "patch"],
        Scope::Cluster,
    ),
    rule(
        "storage.k8s.io",
        &["volumeattachments/status"],
        &["patch"],
        Scope::Cluster,
    ),
    rule(
        "apiextensions.k8s.io",
        &["customresourcedefinitions"],
        READ,
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
    fn no_wildcards_and_no_duplicates_in_a_scope() {
        // A grant may be needed in two places (Leases: the operator's own, the nodes', and
        // curve-csi's Role in the clusters' namespaces), never twice in one.
        for scope in [
            Scope::Watched,
            Scope::Cluster,
            Scope::OperatorNamespace,
            Scope::NodeLeases,
        ] {
            let all = grants(&[scope]);
            let count: usize = (PERMISSIONS.iter())
                .filter(|p| p.scope == scope)
                .map(|p| p.resources.len() * p.verbs.len())
                .sum();
            assert_eq!(
                all.len(),
                count,
                "a (group, resource, verb) is listed twice in {scope:?}"
            );
            assert!(all.iter().all(|(g, r, v)| g != "*" && r != "*" && v != "*"));
        }
    }

    /// RBAC's escalation check: who creates a Role or ClusterRole must hold what it grants,
    /// where it grants it; the operator holds exactly what curve-csi's roles grant.
    #[test]
    fn the_operator_holds_what_curve_csis_roles_grant() {
        use crate::desired::csi::{CONTROLLER_GRANTS, Grant, LEADER_ELECTION};
        let flat = |list: &[Grant]| -> Vec<Grant> { list.to_vec() };
        let needed = |list: &[Grant]| -> std::collections::BTreeSet<super::Grant> {
            (flat(list).iter())
                .flat_map(|g| {
                    g.resources.iter().flat_map(move |r| {
                        g.verbs
                            .iter()
                            .map(move |v| (g.group.to_owned(), (*r).to_owned(), (*v).to_owned()))
                    })
                })
                .collect()
        };
        let cluster = grants(&[Scope::Cluster]);
        let missing: Vec<_> = needed(CONTROLLER_GRANTS)
            .difference(&cluster)
            .cloned()
            .collect();
        assert_eq!(
            missing,
            Vec::new(),
            "the ClusterRole of curve-csi's controller"
        );
        let watched = grants(&[Scope::Watched]);
        let missing: Vec<_> = needed(LEADER_ELECTION)
            .difference(&watched)
            .cloned()
            .collect();
        assert_eq!(missing, Vec::new(), "the Role of curve-csi's controller");
    }

    #[test]
    fn scopes_overlap_only_in_the_leases_curve_csi_needs_too() {
        let [watched, cluster, operator, nodes] = [
            Scope::Watched,
            Scope::Cluster,
            Scope::OperatorNamespace,
            Scope::NodeLeases,
        ]
        .map(|s| grants(&[s]));
        let lease = |verb: &str| ("coordination.k8s.io".into(), "leases".into(), verb.into());
        let shared = |a: &std::collections::BTreeSet<super::Grant>,
                      b: &std::collections::BTreeSet<super::Grant>| {
            a.intersection(b).cloned().collect::<Vec<_>>()
        };
        assert_eq!(
            shared(&watched, &operator),
            vec![lease("create"), lease("get"), lease("update")]
        );
        assert_eq!(
            shared(&watched, &nodes),
            vec![lease("list"), lease("watch")]
        );
        for (a, b) in [
            (&watched, &cluster),
            (&cluster, &operator),
            (&cluster, &nodes),
            (&operator, &nodes),
        ] {
            assert_eq!(shared(a, b), Vec::new());
        }
        assert!(cluster.contains(&("".into(), "nodes".into(), "watch".into())));
    }
}
