//! `spec.monitoring` → the Prometheus Operator objects of a cluster: one PodMonitor per
//! component and a PrometheusRule with the cluster's alerts. Pure, like every builder.
//!
//! Where Prometheus finds the metrics (Curve v1.2.6 and the brpc it pins, commit 1b9e006):
//! brpc's builtin `PrometheusMetricsService` is the service `metrics` of
//! `src/brpc/builtin_service.proto`, so every brpc server of a Curve daemon serves Prometheus
//! text at `/metrics` (later brpc versions renamed it `/brpc_metrics`). The MDS starts its
//! dummy server (`mds.dummy.listen.port`, `MDS::StartDummy` in `src/mds/server/mds.cpp`) before
//! it campaigns, and its main port only once elected: every MDS, standbys too, is scraped on
//! the dummy port. ChunkServers have no dummy server: their own port. etcd serves `/metrics` on
//! its client port.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::common::object_meta;
use crate::api::prometheus::{
    AlertRule, PodMetricsEndpoint, PodMonitor, PodMonitorSpec, PrometheusRule, PrometheusRuleSpec,
    Relabeling, RuleGroup,
};
use crate::names::{Component, LABEL_COMPONENT, component_name, labels, selector_labels};
use crate::validate::ValidatedCluster;

/// Target label naming the CurveCluster of every scraped Curve pod.
pub const TARGET_CLUSTER: &str = "curve_cluster";
/// Target label naming the component (`etcd`, `mds`, `chunkserver`).
pub const TARGET_COMPONENT: &str = "curve_component";
/// The component label value of the PrometheusRule.
pub const ALERTS: &str = "alerts";

/// The cluster's monitoring objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Monitoring {
    pub pod_monitors: Vec<PodMonitor>,
    pub rule: Option<PrometheusRule>,
}

/// The objects `spec.monitoring` asks for; `None` when it is off.
pub fn build(cluster: &ValidatedCluster) -> Option<Monitoring> {
    let monitoring = &cluster.spec.monitoring;
    monitoring.enabled.then(|| Monitoring {
        pod_monitors: [
            (Component::Etcd, "client"),
            (Component::Mds, "dummy"),
            (Component::ChunkServer, "listen"),
        ]
        .into_iter()
        .map(|(component, port)| pod_monitor(cluster, component, port))
        .collect(),
        rule: monitoring.rules.then(|| rule(cluster)),
    })
}

/// The user's labels, then the operator's (which its caches and owner checks rely on).
fn with_user_labels(
    cluster: &ValidatedCluster,
    own: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut all = cluster.spec.monitoring.labels.clone();
    all.extend(own);
    all
}

fn pod_monitor(cluster: &ValidatedCluster, component: Component, port: &str) -> PodMonitor {
    let set_label = |label: &str, value: &str| Relabeling {
        target_label: label.to_string(),
        replacement: value.to_string(),
        action: "replace".to_string(),
    };
    PodMonitor {
        metadata: object_meta(
            cluster,
            component_name(&cluster.name, component),
            with_user_labels(cluster, labels(&cluster.name, component)),
        ),
        spec: PodMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels(&cluster.name, component)),
                ..LabelSelector::default()
            },
            pod_metrics_endpoints: vec![PodMetricsEndpoint {
                port: port.to_string(),
                path: "/metrics".to_string(),
                interval: cluster.spec.monitoring.interval.clone(),
                relabelings: vec![
                    set_label(TARGET_CLUSTER, &cluster.name),
                    set_label(TARGET_COMPONENT, component.as_str()),
                ],
            }],
        },
    }
}

/// `<cluster>-alerts`.
pub fn rule_name(cluster: &ValidatedCluster) -> String {
    format!("{}-{ALERTS}", cluster.name)
}

fn rule(cluster: &ValidatedCluster) -> PrometheusRule {
    let mut own = labels(&cluster.name, Component::Mds);
    own.insert(LABEL_COMPONENT.to_string(), ALERTS.to_string());
    PrometheusRule {
        metadata: object_meta(cluster, rule_name(cluster), with_user_labels(cluster, own)),
        spec: PrometheusRuleSpec {
            groups: vec![RuleGroup {
                name: format!("curve.{}.{}", cluster.namespace, cluster.name),
                rules: alerts(cluster),
            }],
        },
    }
}

#[derive(Clone, Copy)]
enum Severity {
    Warning,
    Critical,
}

struct Alert {
    name: &'static str,
    severity: Severity,
    expr: String,
    for_: &'static str,
    summary: &'static str,
    /// After "CurveCluster <namespace>/<name>: "; may use `{{ $value }}` and `{{ $labels.x }}`.
    description: &'static str,
    runbook: &'static str,
}

/// With `spec.etcd.backup`: the newest verified snapshot (or, before the first, the time
/// backups were turned on) older than twice the schedule's longest interval.
fn backup_alert(cluster: &ValidatedCluster, ours: &str) -> Option<Alert> {
    let backup = cluster.spec.etcd.backup.as_ref()?;
    let interval = crate::cron::Schedule::parse(&backup.schedule)
        .ok()?
        .longest_gap_seconds();
    Some(Alert {
        name: "CurveEtcdBackupTooOld",
        severity: Severity::Warning,
        expr: format!(
            "time() - max(curve_operator_etcd_backup_last_success_timestamp_seconds{{{ours}}} or curve_operator_etcd_backup_enabled_timestamp_seconds{{{ours}}}) > {}",
            2 * interval
        ),
        for_: "5m",
        summary: "The newest etcd backup is too old",
        description: "the newest verified etcd snapshot was taken {{ $value | humanizeDuration }} ago (or none was since backups were turned on), more than twice spec.etcd.backup.schedule's interval: a lost etcd would lose that much of Curve's metadata.",
        runbook: "kubectl get curvecluster -o yaml: status.etcd.backup says why a due snapshot waits (etcd not serving, a Job still running) and lastFailure holds the last Job's reason; kubectl logs job/<activeJob>. Check the backup claim's free space (keep + 1 snapshots of up to spec.etcd.quotaBackendBytes each).",
    })
}

/// The cluster's alerts. The operator's own metrics (`curve_operator_*`, labelled with the
/// CurveCluster's `namespace` and `name`) carry what it knows (the primary, etcd's member
/// health, ready counts, its rolls); Curve's metrics, through the PodMonitors, the rest.
pub fn alerts(cluster: &ValidatedCluster) -> Vec<AlertRule> {
    let ours = format!(
        r#"namespace="{}",name="{}""#,
        cluster.namespace, cluster.name
    );
    let curve = format!(
        r#"namespace="{}",{TARGET_CLUSTER}="{}""#,
        cluster.namespace, cluster.name
    );
    let mds_port = cluster.spec.mds.port;
    let topology = |part: &str| {
        format!(
            r#"label_replace({{__name__=~"topology_metric_chunkserver_id_[0-9]+_chunk_size_{part}_bytes",{curve},{TARGET_COMPONENT}="mds"}}, "chunkserver_id", "$1", "__name__", "topology_metric_chunkserver_id_([0-9]+)_.*")"#
        )
    };
    let mut list = vec![
        Alert {
            name: "CurveMdsNoPrimary",
            severity: Severity::Critical,
            expr: format!("max(curve_operator_mds_primary{{{ours}}}) == 0"),
            for_: "1m",
            summary: "No MDS is primary",
            description: "the etcd election names no MDS pod as primary: volumes cannot be opened, created or deleted, and ChunkServers get no heartbeat answer.",
            runbook: "kubectl get curvecluster shows the Primary column and the MdsLeaderElected condition says why (no candidate, etcd unreachable, quorum lost); check the MDS pods' logs and etcd's health.",
        },
        Alert {
            name: "CurveMdsSeveralPrimaries",
            severity: Severity::Critical,
            // Only an elected MDS opens its listen port: its brpc server's metrics exist
            // only in that process.
            expr: format!(
                r#"count(rpc_server_{mds_port}_connection_count{{{curve},{TARGET_COMPONENT}="mds"}}) > 1"#
            ),
            for_: "1m",
            summary: "More than one MDS acts as primary",
            description: "{{ $value }} MDS processes serve their listen port, which only the elected primary opens.",
            runbook: "Compare each MDS's /vars/mds_status on its dummy port with the election (kubectl get curvecluster); restart the MDS pod that is not the elected one.",
        },
        Alert {
            name: "CurveEtcdNoQuorum",
            severity: Severity::Critical,
            expr: format!(
                r#"curve_operator_etcd_healthy_members{{{ours}}} * 2 <= curve_operator_etcd_members{{{ours}}} or max(etcd_server_has_leader{{{curve},{TARGET_COMPONENT}="etcd"}}) == 0"#
            ),
            for_: "1m",
            summary: "etcd has no quorum",
            description: "too few etcd members are healthy for a majority: the MDS cannot hold its election, and an MDS that loses its etcd session stops.",
            runbook: "kubectl get pods -l app.kubernetes.io/component=etcd; the EtcdQuorate condition names the members. Bring back members with their data; never delete an etcd volume while the quorum is lost.",
        },
        Alert {
            name: "CurveEtcdAlarm",
            severity: Severity::Critical,
            expr: format!("curve_operator_etcd_alarms{{{ours}}} > 0"),
            for_: "1m",
            summary: "etcd raised an alarm and refuses writes",
            description: "{{ $value }} etcd members raise {{ $labels.state }}: etcd serves only reads and deletes, so the MDS can allocate no segment and its topology changes fail.",
            runbook: "kubectl describe curvecluster: the Degraded condition (reason EtcdNoSpace or EtcdCorrupt) names the members and what to do. NOSPACE: raise spec.etcd.quotaBackendBytes, let the operator defragment, then etcdctl alarm disarm. CORRUPT: replace the member, then disarm.",
        },
        Alert {
            name: "CurveEtcdMemberDown",
            severity: Severity::Warning,
            expr: format!(
                "curve_operator_etcd_healthy_members{{{ours}}} < curve_operator_etcd_members{{{ours}}}"
            ),
            for_: "5m",
            summary: "An etcd member is down",
            description: "{{ $value }} etcd members are healthy, fewer than the member list holds: one more failure may lose the quorum.",
            runbook: "Find the member in status.etcd and its pod's events and logs; the operator replaces a member whose data is lost once the others keep a majority.",
        },
        Alert {
            name: "CurveChunkServersDown",
            severity: Severity::Warning,
            expr: format!(
                r#"curve_operator_desired_members{{{ours},component="chunkserver"}} - curve_operator_ready_members{{{ours},component="chunkserver"}} > 0"#
            ),
            for_: "5m",
            summary: "ChunkServers are down",
            description: "{{ $value }} ChunkServer pods are not ready; their copysets run with fewer copies. After 30 minutes offline the MDS starts copying their data elsewhere.",
            runbook: "kubectl get pods -l app.kubernetes.io/component=chunkserver; check the not-ready pods' events, disks and logs.",
        },
        Alert {
            name: "CurveChunkServersBeyondTolerance",
            severity: Severity::Critical,
            expr: format!(
                "curve_operator_chunkserver_failure_domains_down{{{ours}}} > curve_operator_chunkserver_failure_domains_tolerated{{{ours}}}"
            ),
            for_: "1m",
            summary: "More ChunkServers are down than the pool can lose",
            description: "{{ $value }} ChunkServers are down, more than (logicalPool.replicas - 1) / 2: copysets with copies on them may have lost their raft majority, and I/O to their volumes stops.",
            runbook: "Bring ChunkServers back before anything else (do not delete their claims); the Available condition says when enough are back.",
        },
        Alert {
            name: "CurveChunkServerDiskNearFull",
            severity: Severity::Warning,
            expr: format!(
                "max by (namespace, {TARGET_CLUSTER}, chunkserver_id) ({}) / max by (namespace, {TARGET_CLUSTER}, chunkserver_id) ({}) < 0.1",
                topology("left"),
                topology("total")
            ),
            for_: "15m",
            summary: "A ChunkServer's chunk file pool is nearly used up",
            description: "ChunkServer {{ $labels.chunkserver_id }} has {{ $value | humanizePercentage }} of its chunk file pool left (the MDS's topology metrics); when it is used up, writes of new chunks fail.",
            runbook: "Grow spec.chunkservers.storage.size (the operator grows the volumes and the pool) or add ChunkServers.",
        },
        Alert {
            name: "CurveCopysetsUnhealthy",
            severity: Severity::Critical,
            expr: format!(r#"curve_operator_copysets{{{ours},state="unhealthy"}} > 0"#),
            for_: "5m",
            summary: "Copysets are unhealthy",
            description: "{{ $value }} copysets have been unhealthy for 5 minutes (a copy missing or lagging, no leader, a snapshot installing): their data has fewer healthy copies than the pool keeps, and one more failure may stop their I/O.",
            runbook: "kubectl get curvecluster -o yaml: status.health names the reasons, the first copysets and the ChunkServers involved; bring those ChunkServers back (pods, disks, nodes). A ChunkServer offline for 30 minutes is re-replicated by the MDS by itself.",
        },
        Alert {
            name: "CurveChunkServerRetireStalled",
            severity: Severity::Warning,
            expr: format!(
                "curve_operator_chunkserver_retiring{{{ours}}} == 1 and changes(curve_operator_chunkserver_retire_copysets_left{{{ours}}}[30m]) == 0"
            ),
            for_: "10m",
            summary: "A ChunkServer leaving Curve makes no progress",
            description: "A ChunkServer has been leaving Curve (scale-in, removed disk slot or replaced disk) for 40 minutes without a copyset moved off it: the MDS finds no target for its copies, a copy elsewhere is down, or Curve does not mark it RETIRED.",
            runbook: "The Progressing condition (ChunkServerRetiring or ChunkServerReplacing) says the step and the copysets left; CopysetsHealthy and status.health name unhealthy copysets. The MDS moves a copy only onto an online READWRITE ChunkServer of the same zone: bring one back or add one. Raising spec.chunkservers.replicas or disksPerNode back cancels a scale-in that is still draining.",
        },
        Alert {
            name: "CurveHealthUnknown",
            severity: Severity::Warning,
            expr: format!(r#"curve_operator_curve_health{{{ours},state="unknown"}} == 1"#),
            for_: "5m",
            summary: "Curve's health cannot be read",
            description: "The operator could not read Curve's health for 5 minutes (an MDS or ChunkServer does not answer, no MDS is elected, or an answer is malformed): copysets may be unhealthy unseen, and ChunkServer roll steps wait.",
            runbook: "The CopysetsHealthy condition names the endpoint and why; check that the operator can reach the MDS dummy and listen ports and the ChunkServer ports (host network), and the MDS election.",
        },
        Alert {
            name: "CurveOperatorReconcileFailing",
            severity: Severity::Warning,
            expr: format!("curve_operator_cluster_reconcile_failures{{{ours}}} > 0"),
            for_: "15m",
            summary: "The operator cannot reconcile the cluster",
            description: "{{ $value }} reconciles in a row failed: changes to the spec are not carried out.",
            runbook: "The Progressing condition (reason ReconcileError or ApplyRefused) holds the error; the operator's log has each attempt.",
        },
        Alert {
            name: "CurveRollStuck",
            severity: Severity::Warning,
            expr: format!("curve_operator_roll_stuck{{{ours}}} == 1"),
            for_: "5m",
            summary: "A rolling change is stuck",
            description: "a replaced pod did not become ready within spec.rollout.progressDeadlineSeconds, and the roll halts there.",
            runbook: "The Progressing condition (reason RolloutStuck) names the pod; fix it or set the spec back, which resumes the roll.",
        },
        Alert {
            name: "CurveClusterNotAvailable",
            severity: Severity::Critical,
            expr: format!("curve_operator_cluster_available{{{ours}}} == 0"),
            for_: "10m",
            summary: "The Curve cluster is not available",
            description: "the Available condition has been False for 10 minutes.",
            runbook: "kubectl describe curvecluster: the Available condition's reason (EtcdNotQuorate, NoMdsPrimary, TopologyNotReady, ChunkServersNotReady) says what is missing.",
        },
        Alert {
            name: "CurveTargetDown",
            severity: Severity::Warning,
            expr: format!("up{{{curve}}} == 0"),
            for_: "5m",
            summary: "Prometheus cannot scrape a Curve pod",
            description: "{{ $labels.pod }} ({{ $labels.curve_component }}) does not answer on /metrics.",
            runbook: "Check that the pod runs and that Prometheus can reach the node's address and port (the pods use host networking).",
        },
    ];
    list.extend(backup_alert(cluster, &ours));
    list.into_iter()
        .map(|alert| AlertRule {
            alert: alert.name.to_string(),
            expr: alert.expr,
            for_: alert.for_.to_string(),
            labels: BTreeMap::from([
                (
                    "severity".to_string(),
                    match alert.severity {
                        Severity::Warning => "warning",
                        Severity::Critical => "critical",
                    }
                    .to_string(),
                ),
                ("namespace".to_string(), cluster.namespace.clone()),
                (TARGET_CLUSTER.to_string(), cluster.name.clone()),
            ]),
            annotations: BTreeMap::from([
                ("summary".to_string(), alert.summary.to_string()),
                (
                    "description".to_string(),
                    format!(
                        "CurveCluster {}/{}: {}",
                        cluster.namespace, cluster.name, alert.description
                    ),
                ),
                ("runbook".to_string(), alert.runbook.to_string()),
            ]),
        })
        .collect()
}
