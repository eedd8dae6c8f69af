//! The objects the operator applies and the actions of the write step: what a decision says
//! to do, typed.

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::prometheus::{PodMonitor, PrometheusRule};
use crate::curve::admin::CurveChange;
use crate::desired::typed_value;
use crate::etcd::MemberChange;
use crate::names::LABEL_COMPONENT;

/// Annotation holding the hash of the object as the operator last applied it: an unchanged
/// object is not sent again, so a reconcile of a healthy cluster writes nothing.
pub const APPLIED_HASH_ANNOTATION: &str = "curve.opencurve.io/applied-hash";

/// The `app.kubernetes.io/component` label of any of the cluster's objects.
pub fn component_of(meta: &ObjectMeta) -> Option<&str> {
    meta.labels
        .as_ref()?
        .get(LABEL_COMPONENT)
        .map(String::as_str)
}

/// The kinds of object the operator applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    ConfigMap,
    Service,
    PodDisruptionBudget,
    StatefulSet,
    Job,
    PodMonitor,
    PrometheusRule,
    ServiceAccount,
    Role,
    RoleBinding,
    DaemonSet,
    Deployment,
    ClusterRole,
    ClusterRoleBinding,
    CsiDriver,
    StorageClass,
}

impl ObjectKind {
    /// The kinds without a namespace: they carry the cluster's namespace in a label, as they
    /// can have no namespaced owner.
    pub fn cluster_scoped(self) -> bool {
        matches!(
            self,
            ObjectKind::ClusterRole
                | ObjectKind::ClusterRoleBinding
                | ObjectKind::CsiDriver
                | ObjectKind::StorageClass
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => <ConfigMap as Resource>::KIND,
            ObjectKind::Service => <Service as Resource>::KIND,
            ObjectKind::PodDisruptionBudget => <PodDisruptionBudget as Resource>::KIND,
            ObjectKind::StatefulSet => <StatefulSet as Resource>::KIND,
            ObjectKind::Job => <Job as Resource>::KIND,
            ObjectKind::PodMonitor => <PodMonitor as Resource>::KIND,
            ObjectKind::PrometheusRule => <PrometheusRule as Resource>::KIND,
            ObjectKind::ServiceAccount => <ServiceAccount as Resource>::KIND,
            ObjectKind::Role => <Role as Resource>::KIND,
            ObjectKind::RoleBinding => <RoleBinding as Resource>::KIND,
            ObjectKind::DaemonSet => <DaemonSet as Resource>::KIND,
            ObjectKind::Deployment => <Deployment as Resource>::KIND,
            ObjectKind::ClusterRole => <ClusterRole as Resource>::KIND,
            ObjectKind::ClusterRoleBinding => <ClusterRoleBinding as Resource>::KIND,
            ObjectKind::CsiDriver => <CSIDriver as Resource>::KIND,
            ObjectKind::StorageClass => <StorageClass as Resource>::KIND,
        }
    }
}

/// An object the operator applies, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    ConfigMap(ConfigMap),
    Service(Service),
    PodDisruptionBudget(PodDisruptionBudget),
    StatefulSet(StatefulSet),
    Job(Job),
    PodMonitor(PodMonitor),
    PrometheusRule(PrometheusRule),
    ServiceAccount(ServiceAccount),
    Role(Role),
    RoleBinding(RoleBinding),
    DaemonSet(DaemonSet),
    Deployment(Deployment),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    CsiDriver(CSIDriver),
    StorageClass(StorageClass),
}

impl Object {
    pub fn kind(&self) -> ObjectKind {
        match self {
            Object::ConfigMap(_) => ObjectKind::ConfigMap,
            Object::Service(_) => ObjectKind::Service,
            Object::PodDisruptionBudget(_) => ObjectKind::PodDisruptionBudget,
            Object::StatefulSet(_) => ObjectKind::StatefulSet,
            Object::Job(_) => ObjectKind::Job,
            Object::PodMonitor(_) => ObjectKind::PodMonitor,
            Object::PrometheusRule(_) => ObjectKind::PrometheusRule,
            Object::ServiceAccount(_) => ObjectKind::ServiceAccount,
            Object::Role(_) => ObjectKind::Role,
            Object::RoleBinding(_) => ObjectKind::RoleBinding,
            Object::DaemonSet(_) => ObjectKind::DaemonSet,
            Object::Deployment(_) => ObjectKind::Deployment,
            Object::ClusterRole(_) => ObjectKind::ClusterRole,
            Object::ClusterRoleBinding(_) => ObjectKind::ClusterRoleBinding,
            Object::CsiDriver(_) => ObjectKind::CsiDriver,
            Object::StorageClass(_) => ObjectKind::StorageClass,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::ConfigMap(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::PodDisruptionBudget(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::Job(o) => &o.metadata,
            Object::PodMonitor(o) => &o.metadata,
            Object::PrometheusRule(o) => &o.metadata,
            Object::ServiceAccount(o) => &o.metadata,
            Object::Role(o) => &o.metadata,
            Object::RoleBinding(o) => &o.metadata,
            Object::DaemonSet(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::ClusterRole(o) => &o.metadata,
            Object::ClusterRoleBinding(o) => &o.metadata,
            Object::CsiDriver(o) => &o.metadata,
            Object::StorageClass(o) => &o.metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::ConfigMap(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::PodDisruptionBudget(o) => &mut o.metadata,
            Object::StatefulSet(o) => &mut o.metadata,
            Object::Job(o) => &mut o.metadata,
            Object::PodMonitor(o) => &mut o.metadata,
            Object::PrometheusRule(o) => &mut o.metadata,
            Object::ServiceAccount(o) => &mut o.metadata,
            Object::Role(o) => &mut o.metadata,
            Object::RoleBinding(o) => &mut o.metadata,
            Object::DaemonSet(o) => &mut o.metadata,
            Object::Deployment(o) => &mut o.metadata,
            Object::ClusterRole(o) => &mut o.metadata,
            Object::ClusterRoleBinding(o) => &mut o.metadata,
            Object::CsiDriver(o) => &mut o.metadata,
            Object::StorageClass(o) => &mut o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// The object as JSON with its apiVersion and kind.
    pub fn value(&self) -> serde_json::Value {
        match self {
            Object::ConfigMap(o) => typed_value(o),
            Object::Service(o) => typed_value(o),
            Object::PodDisruptionBudget(o) => typed_value(o),
            Object::StatefulSet(o) => typed_value(o),
            Object::Job(o) => typed_value(o),
            Object::PodMonitor(o) => typed_value(o),
            Object::PrometheusRule(o) => typed_value(o),
            Object::ServiceAccount(o) => typed_value(o),
            Object::Role(o) => typed_value(o),
            Object::RoleBinding(o) => typed_value(o),
            Object::DaemonSet(o) => typed_value(o),
            Object::Deployment(o) => typed_value(o),
            Object::ClusterRole(o) => typed_value(o),
            Object::ClusterRoleBinding(o) => typed_value(o),
            Object::CsiDriver(o) => typed_value(o),
            Object::StorageClass(o) => typed_value(o),
        }
    }

    /// The object as the operator applies it: with the hash of its content in an annotation.
    pub fn with_applied_hash(self) -> (Object, String) {
        let hash = object_hash(&self.value());
        (self.with_hash(hash.clone()), hash)
    }

    /// The object with `hash`, its [`applied_hash`], in the annotation.
    pub fn with_hash(mut self, hash: String) -> Object {
        self.meta_mut()
            .annotations
            .get_or_insert_with(Default::default)
            .insert(APPLIED_HASH_ANNOTATION.to_string(), hash);
        self
    }
}

/// An object of the cluster as it exists in the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingObject {
    pub kind: ObjectKind,
    pub name: String,
    pub component: Option<String>,
    pub applied_hash: Option<String>,
    /// `spec.replicas` of a StatefulSet.
    pub replicas: Option<i32>,
    /// The storage request of a StatefulSet's volume claim template.
    pub claim_size: Option<String>,
    pub uid: Option<String>,
    /// Being deleted (a deletion timestamp is set).
    pub deleting: bool,
}

impl ExistingObject {
    pub fn of(kind: ObjectKind, meta: &ObjectMeta) -> Self {
        ExistingObject {
            kind,
            name: meta.name.clone().unwrap_or_default(),
            component: component_of(meta).map(str::to_string),
            applied_hash: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(APPLIED_HASH_ANNOTATION).cloned()),
            replicas: None,
            claim_size: None,
            uid: meta.uid.clone(),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }

    pub fn of_stateful_set(set: &StatefulSet) -> Self {
        ExistingObject {
            replicas: set.spec.as_ref().and_then(|spec| spec.replicas),
            claim_size: claim_size(set),
            ..ExistingObject::of(ObjectKind::StatefulSet, &set.metadata)
        }
    }
}

/// The storage request of a StatefulSet's first volume claim template.
pub fn claim_size(set: &StatefulSet) -> Option<String> {
    let claims = set.spec.as_ref()?.volume_claim_templates.as_ref()?;
    let requests = claims
        .first()?
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?;
    requests.get("storage").map(|q| q.0.clone())
}

/// One step of the write phase.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the cluster's root password Secret unless it exists. The password is drawn
    /// when the Secret is created; it is never part of a decision.
    EnsureRootSecret {
        name: String,
    },
    /// Server-side apply of the object (carrying its applied-hash annotation).
    Apply(Box<Object>),
    Delete {
        kind: ObjectKind,
        name: String,
    },
    /// Delete a pod so its StatefulSet recreates it from the current template (a roll's
    /// step). Only the pod with this uid: never its replacement.
    DeletePod {
        name: String,
        uid: String,
    },
    /// One change of etcd's member list (reconcile/membership.rs).
    EtcdMembers(MemberChange),
    /// Defragment one etcd member (reconcile/etcd_space.rs), through the same etcd client.
    EtcdDefragment {
        id: u64,
        member: String,
    },
    /// Delete a removed etcd member's claim (`spec.cleanup` deletes data).
    DeleteClaim {
        name: String,
    },
    /// Ask for a volume claim of this size (`spec.resources.requests.storage`): volume
    /// expansion, which its StorageClass allows.
    ResizeClaim {
        name: String,
        size: String,
    },
    /// Delete the StatefulSet with this uid but leave its pods running (propagation
    /// `Orphan`): its claim templates cannot change in place, so it is applied again with the
    /// new ones once it is gone, and adopts its pods back.
    OrphanStatefulSet {
        name: String,
        uid: String,
    },
    /// A change of Curve's topology, sent to the elected MDS (reconcile/retire.rs).
    Curve(CurveChange),
    /// Create the claim unless one of its name exists (the etcd backup claim): a claim is
    /// never applied over, its class and size are the volume's.
    CreateClaim(Box<k8s_openapi::api::core::v1::PersistentVolumeClaim>),
    /// Advance Curve's id counters after an etcd restore (reconcile/restore.rs), in one
    /// transaction guarded on the values the advance was planned from.
    AdvanceEtcdCounters(crate::api::CountersAdvance),
}

impl Action {
    pub fn describe(&self) -> String {
        match self {
            Action::EnsureRootSecret { name } => format!("ensure Secret/{name}"),
            Action::Apply(object) => format!("apply {}/{}", object.kind().as_str(), object.name()),
            Action::Delete { kind, name } => format!("delete {}/{name}", kind.as_str()),
            Action::DeletePod { name, .. } => format!("delete Pod/{name} (roll)"),
            Action::EtcdMembers(change) => change.describe(),
            Action::EtcdDefragment { member, .. } => format!("defragment etcd member {member}"),
            Action::DeleteClaim { name } => format!("delete PersistentVolumeClaim/{name}"),
            Action::CreateClaim(claim) => format!(
                "create PersistentVolumeClaim/{}",
                claim.metadata.name.as_deref().unwrap_or_default()
            ),
            Action::ResizeClaim { name, size } => {
                format!("resize PersistentVolumeClaim/{name} to {size}")
            }
            Action::OrphanStatefulSet { name, .. } => {
                format!("delete StatefulSet/{name} (orphaning its pods)")
            }
            Action::Curve(change) => change.describe(),
            Action::AdvanceEtcdCounters(advance) => format!(
                "advance Curve's id counters: 04 to {}, 05 to {}",
                advance.inode.to, advance.chunk.to
            ),
        }
    }
}

/// A stable hash (FNV-1a 64) of an object's JSON.
pub fn object_hash(object: &serde_json::Value) -> String {
    format!(
        "{:016x}",
        crate::util::fnv64_parts([object.to_string().as_bytes()])
    )
}

/// The hash an object is applied with (what [`Object::with_applied_hash`] puts in the
/// annotation), read without copying the object.
pub fn applied_hash<K: Resource + serde::Serialize>(object: &K) -> String {
    object_hash(&typed_value(object))
}

/// An object as the operator applies it, as JSON: with the hash of its content in an
/// annotation.
pub fn applied(object: Object) -> serde_json::Value {
    object.with_applied_hash().0.value()
}
