//! A pod as the decisions read it: made once, when the watch delivers the pod, and kept in the
//! cache instead of the pod. Clusters have thousands of pods; a k8s-openapi `Pod` spreads
//! about 9.5 KiB over the heap, this reading a few hundred bytes, and every decision walks
//! all of them several times per reconcile.
//!
//! Every field is one some decision reads; what is not here no decision can read (the
//! compiler says so).

use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

use crate::desired::csi::NODE_CONFIG_ANNOTATION;
use crate::names::{Component, LABEL_COMPONENT, LABEL_DISK_SLOT, LABEL_INSTANCE};

/// The label the StatefulSet controller sets to the revision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodReading {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The cluster it belongs to (`app.kubernetes.io/instance`).
    pub instance: Option<String>,
    /// `app.kubernetes.io/component`.
    pub component: Option<String>,
    /// The tier of that component, if it is one: what the decisions' many passes over all
    /// pods compare, without reading the label's text.
    pub tier: Option<Component>,
    /// A ChunkServer pod's disk slot (`curve.opencurve.io/disk-slot`), when it parses.
    pub disk_slot: Option<i32>,
    /// The StatefulSet revision it was made from (`controller-revision-hash`).
    pub revision: Option<String>,
    /// The StatefulSet owning it.
    pub set: Option<String>,
    /// The Job owning it (a backup's or a restore's).
    pub job: Option<String>,
    pub created: Option<Timestamp>,
    /// It has a deletion timestamp.
    pub terminating: bool,
    pub node: Option<String>,
    pub host_ip: Option<String>,
    /// Its IP, when it has a non-empty one.
    pub ip: Option<String>,
    /// Its `Ready` condition is True.
    pub ready: bool,
    /// The scheduler's message when it marked the pod unschedulable (`PodScheduled` False,
    /// reason `Unschedulable`).
    pub unschedulable: Option<String>,
    /// The image of its first container, as its spec asks.
    pub image: Option<String>,
    /// A curve-csi node plugin pod's config hash (its template's annotation).
    pub csi_node_config: Option<String>,
    pub init_containers: Vec<ContainerReading>,
    pub containers: Vec<ContainerReading>,
    /// What decisions derive from the fields above for every pod on every pass, derived once
    /// when the reading is made ([`PodReading::derive`]).
    pub derived: Derived,
}

/// The per-pod values every decision needs, made from a reading's own fields. Code that
/// changes a reading's name, uid or containers calls [`PodReading::derive`] again (debug
/// builds check it wherever these are read: a stale value could skip a needed step).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Derived {
    /// A hash of the name and uid: the pod as one object (a replacement has another uid).
    pub identity: u64,
    /// The ordinal of `<set>-<ordinal>`, when the name ends exactly as a StatefulSet names
    /// its pod `ordinal` (decimal, no sign, no leading zero).
    pub ordinal: Option<i32>,
    /// A container waiting for a reason no wait will cure (the image cannot be pulled, the
    /// container crash-loops), as `<container>: <reason> (<message>)`.
    pub failing: Option<String>,
    /// A container or init container is waiting: only then can one block the pod.
    pub waiting: bool,
    /// Every init container finished well (exit 0) or has no state yet: none is running,
    /// failed or waits.
    pub init_done: bool,
    /// A container's run ended (its state or its last state is terminated): only then can it
    /// have said why it stopped.
    pub ended: bool,
}

/// Container waiting reasons that no wait will cure: a roll is stuck at once.
const FAILING: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CrashLoopBackOff",
];

/// The first container waiting for a reason no wait will cure.
fn failing(containers: &[ContainerReading]) -> Option<String> {
    containers.iter().find_map(|s| {
        let (reason, message) = s.state.as_ref()?.waiting()?;
        let reason = reason?;
        FAILING.contains(&reason).then(|| {
            let message = message.unwrap_or_default();
            if message.is_empty() {
                format!("{}: {reason}", s.name)
            } else {
                format!("{}: {reason} ({message})", s.name)
            }
        })
    })
}

/// `name`'s StatefulSet ordinal, when it ends exactly as a StatefulSet names its pod: the name
/// equals `format!("{set}-{ordinal}")`.
pub fn name_ordinal(name: &str) -> Option<i32> {
    let (_, ordinal) = name.rsplit_once('-')?;
    let canonical = ordinal.bytes().all(|b| b.is_ascii_digit())
        && (ordinal == "0" || !ordinal.starts_with('0'));
    ordinal.parse().ok().filter(|_| canonical)
}

/// A well-mixed 64-bit hash of a pod's name and uid (FNV-1a, then SplitMix64's finalizer, so
/// sums of identities change in every bit when one does).
pub fn identity(name: &str, uid: &str) -> u64 {
    let hash = crate::util::fnv64_parts([name.as_bytes(), &[0], uid.as_bytes()]);
    mix(hash)
}

/// SplitMix64's finalizer.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A container's status as the decisions read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerReading {
    pub name: String,
    /// The image it runs or tries to pull.
    pub image: String,
    /// None before the kubelet reports a state.
    pub state: Option<ContainerRun>,
    /// How its previous run ended, if it ran before.
    pub last_terminated: Option<Terminated>,
}

/// A container's current state (the API sets at most one of its three).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerRun {
    Waiting {
        reason: Option<String>,
        message: Option<String>,
    },
    Running,
    Terminated(Terminated),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub finished_at: Option<Timestamp>,
}

impl ContainerRun {
    pub fn waiting(&self) -> Option<(Option<&str>, Option<&str>)> {
        match self {
            ContainerRun::Waiting { reason, message } => {
                Some((reason.as_deref(), message.as_deref()))
            }
            _ => None,
        }
    }

    pub fn terminated(&self) -> Option<&Terminated> {
        match self {
            ContainerRun::Terminated(t) => Some(t),
            _ => None,
        }
    }
}

impl ContainerReading {
    /// The reason it waits for, if it waits.
    pub fn waiting_reason(&self) -> Option<&str> {
        self.state.as_ref()?.waiting()?.0
    }
}

fn terminated(t: ContainerStateTerminated) -> Terminated {
    Terminated {
        exit_code: t.exit_code,
        reason: t.reason,
        message: t.message,
        finished_at: t.finished_at.map(|t| t.0),
    }
}

fn container_run(state: ContainerState) -> Option<ContainerRun> {
    // The API sets one of the three; should several come, a terminated run is the most told.
    if let Some(t) = state.terminated {
        return Some(ContainerRun::Terminated(terminated(t)));
    }
    if state.running.is_some() {
        return Some(ContainerRun::Running);
    }
    (state.waiting).map(|w| ContainerRun::Waiting {
        reason: w.reason,
        message: w.message,
    })
}

impl From<ContainerStatus> for ContainerReading {
    fn from(status: ContainerStatus) -> Self {
        ContainerReading {
            name: status.name,
            image: status.image,
            state: status.state.and_then(container_run),
            last_terminated: (status.last_state).and_then(|s| s.terminated.map(terminated)),
        }
    }
}

impl From<Pod> for PodReading {
    fn from(pod: Pod) -> Self {
        let Pod {
            metadata,
            spec,
            status,
        } = pod;
        let mut labels = metadata.labels.unwrap_or_default();
        let status = status.unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        let condition = |type_: &str| conditions.iter().find(|c| c.type_ == type_);
        let unschedulable = condition("PodScheduled")
            .filter(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
            .map(|c| c.message.clone().unwrap_or_default());
        let owners = metadata.owner_references.unwrap_or_default();
        let owner = |kind: &str| (owners.iter().find(|o| o.kind == kind)).map(|o| o.name.clone());
        let containers = |list: Option<Vec<ContainerStatus>>| {
            list.into_iter()
                .flatten()
                .map(ContainerReading::from)
                .collect()
        };
        let mut reading = PodReading {
            name: metadata.name.unwrap_or_default(),
            namespace: metadata.namespace.unwrap_or_default(),
            uid: metadata.uid.unwrap_or_default(),
            instance: labels.remove(LABEL_INSTANCE),
            tier: (labels.get(LABEL_COMPONENT))
                .and_then(|c| Component::TIERS.into_iter().find(|t| t.as_str() == c)),
            component: labels.remove(LABEL_COMPONENT),
            disk_slot: labels.get(LABEL_DISK_SLOT).and_then(|s| s.parse().ok()),
            revision: labels.remove(REVISION_LABEL),
            set: owner("StatefulSet"),
            job: owner("Job"),
            created: metadata.creation_timestamp.map(|t| t.0),
            terminating: metadata.deletion_timestamp.is_some(),
            node: spec.as_ref().and_then(|s| s.node_name.clone()),
            host_ip: status.host_ip,
            ip: status.pod_ip.filter(|ip| !ip.is_empty()),
            ready: condition("Ready").is_some_and(|c| c.status == "True"),
            unschedulable,
            image: spec.and_then(|s| s.containers.into_iter().next()?.image),
            csi_node_config: (metadata.annotations)
                .and_then(|mut a| a.remove(NODE_CONFIG_ANNOTATION)),
            init_containers: containers(status.init_container_statuses),
            containers: containers(status.container_statuses),
            derived: Derived::default(),
        };
        reading.derive();
        reading
    }
}

impl PodReading {
    /// Whether its component label is `component`.
    pub fn is(&self, component: &str) -> bool {
        self.component.as_deref() == Some(component)
    }

    /// Makes the derived values anew from the reading's fields.
    pub fn derive(&mut self) {
        self.derived = self.derivation();
    }

    fn derivation(&self) -> Derived {
        let all = self.init_containers.iter().chain(&self.containers);
        Derived {
            identity: identity(&self.name, &self.uid),
            ordinal: name_ordinal(&self.name),
            failing: failing(&self.containers),
            waiting: all
                .filter_map(|c| c.state.as_ref())
                .any(|s| s.waiting().is_some()),
            init_done: (self.init_containers.iter()).all(|c| match &c.state {
                None => true,
                Some(state) => state.terminated().is_some_and(|t| t.exit_code == 0),
            }),
            ended: (self.containers.iter()).any(|c| {
                c.last_terminated.is_some()
                    || c.state.as_ref().is_some_and(|s| s.terminated().is_some())
            }),
        }
    }

    /// The derived values, checked in debug builds against the fields they derive from.
    pub fn derived(&self) -> &Derived {
        debug_assert_eq!(
            self.derived,
            self.derivation(),
            "pod {}: its reading changed without derive()",
            self.name
        );
        &self.derived
    }
}

core_v1_reading_key!(PodReading, "Pod", "pods");

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
