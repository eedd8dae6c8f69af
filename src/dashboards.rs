//! The Grafana dashboards of an installation (the chart ships them as ConfigMaps for Grafana's
//! dashboard sidecar): a cluster overview on the operator's own `curve_operator_*` metrics, and
//! one dashboard each for etcd, the MDS and the ChunkServers on the metrics their pods serve.
//! Per installation, not per cluster: the `namespace` and `cluster` variables pick the cluster.
//!
//! Generated here, in Rust, rather than by a script: the dashboards select on names the
//! operator itself defines — the target labels its PodMonitors set ([`TARGET_CLUSTER`],
//! [`TARGET_COMPONENT`]), its metric prefix ([`Metrics::PREFIX`]) and the component label
//! values — and here they are the very same constants, so a rename reaches the dashboards.
//! `tests/dashboards.rs` calls [`all`] directly and fails when the committed files under
//! [`DIRECTORY`] differ; `UPDATE_GOLDEN=1 cargo test --test dashboards` rewrites them.
//! `e2e/tests/dashboards.rs` runs every expression on a real Prometheus scraping the
//! operator's `/metrics` and a real etcd, and e2e scenario o on one scraping a running
//! cluster's targets (the checker: `e2e/src/dashboards.rs`). Panels and targets come from the
//! few helpers below, shared by all four dashboards.
//!
//! Where the Curve metric names come from (Curve v1.2.6 and the brpc and braft it pins; the
//! list in `e2e/src/dashboards/curve_metrics.rs` cites each name's source line): Curve's daemons register bvars, and brpc's
//! `/metrics` prints each under its exposed name, which bvar writes with
//! `bvar::to_underscored_name` (`src/bvar/variable.cpp`): every run of other characters becomes
//! `_` and a capital starts a new `_`-word, lower-cased (`topology_metric_logicalPool_` +
//! `pool1_chunkSizeUsedBytes` → `topology_metric_logical_pool_pool1_chunk_size_used_bytes`).
//! Names carrying ids (pools, ChunkServers, the ChunkServer's ip and port, the server's port)
//! are matched by `__name__` regexes and the id captured into a label. brpc folds a
//! LatencyRecorder of the scraped server itself (`rpc_server_<its port>_…`) into a Prometheus
//! summary (`<name>{quantile}`, `<name>_sum`, `<name>_count`,
//! `src/brpc/builtin/prometheus_metrics_service.cpp`) and prints every other bvar as a gauge:
//! an MDS is scraped on its dummy port, so its RPC metrics (`rpc_server_<mds port>_…`) stay
//! gauges (`_qps`, `_latency`, `_latency_99`, …), while a ChunkServer, scraped on its own
//! port, serves its ChunkService latencies as summaries.

use serde_json::{Value, json};

use crate::desired::monitoring::{TARGET_CLUSTER, TARGET_COMPONENT};
use crate::names::Component;
use crate::runtime::metrics::Metrics;

/// Where the chart keeps the dashboards, relative to the repository root.
pub const DIRECTORY: &str = "charts/curve-operator/dashboards";

/// One dashboard: its name (file `<name>.json`, uid `curve-<name>`) and its JSON model.
pub struct Dashboard {
    pub name: &'static str,
    pub json: Value,
}

impl Dashboard {
    pub fn file_name(&self) -> String {
        format!("{}.json", self.name)
    }

    /// The file's text: pretty JSON ending in a newline.
    pub fn text(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.json).expect("JSON values serialize");
        text.push('\n');
        text
    }
}

/// The four dashboards.
pub fn all() -> Vec<Dashboard> {
    vec![overview(), etcd(), mds(), chunkserver()]
}

// ---------------------------------------------------------------------------------------------
// Selectors.

/// The operator's series of the selected CurveCluster (they carry its `namespace` and `name`).
fn ours() -> String {
    r#"namespace="$namespace",name="$cluster""#.to_string()
}

/// The operator's per-component series of the selected CurveCluster.
fn ours_of(component: Component) -> String {
    format!(r#"{},component="{}""#, ours(), component.as_str())
}

/// `curve_operator_<name>`.
fn op(name: &str) -> String {
    format!("{}_{name}", Metrics::PREFIX)
}

/// `curve_operator_<name>{<matchers>}`.
fn op_sel(name: &str, matchers: &str) -> String {
    format!("{}{{{matchers}}}", op(name))
}

/// The operator's gauge `name` of the selected cluster, one series per `by` (none: one series).
/// `max` merges the series of several operator pods, e.g. during a roll of the operator.
fn op_gauge(name: &str, matchers: &str, by: &str) -> String {
    let by = if by.is_empty() {
        String::new()
    } else {
        format!(" by ({by})")
    };
    format!("max{by} ({})", op_sel(name, matchers))
}

/// The changes of the MDS primary in `range`, over every operator pod's counter.
fn primary_changes(range: &str) -> String {
    format!(
        "sum(increase({}[{range}]))",
        op_sel("mds_primary_changes_total", &ours())
    )
}

/// Every scraped pod of `component` in the selected cluster, as the PodMonitors label them.
fn targets(component: Component) -> String {
    format!(
        r#"namespace="$namespace",{TARGET_CLUSTER}="$cluster",{TARGET_COMPONENT}="{}""#,
        component.as_str()
    )
}

/// The pods of `component` the `pod` variable selects.
fn pods(component: Component) -> String {
    format!(r#"{},pod=~"$pod""#, targets(component))
}

/// `<name>{<matchers>}`.
fn sel(name: &str, matchers: &str) -> String {
    format!("{name}{{{matchers}}}")
}

/// The series whose names match `pattern`, labelled `label` with the pattern's first group
/// (a pool name, a ChunkServer id, an operation).
fn captured(pattern: &str, label: &str, matchers: &str) -> String {
    format!(
        r#"label_replace({{__name__=~"{pattern}",{matchers}}}, "{label}", "$1", "__name__", "{pattern}")"#
    )
}

fn rate(series: &str) -> String {
    format!("rate({series}[$__rate_interval])")
}

/// The `q` quantile of a Prometheus histogram, per `by` (plus `le`).
fn quantile(q: &str, by: &str, bucket: &str) -> String {
    format!(
        "histogram_quantile({q}, sum by ({by}, le) ({}))",
        rate(bucket)
    )
}

// ---------------------------------------------------------------------------------------------
// Panels.

/// One query of a panel.
struct Target {
    expr: String,
    legend: &'static str,
}

fn q(expr: impl Into<String>, legend: &'static str) -> Target {
    Target {
        expr: expr.into(),
        legend,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Row,
    Graph,
    Stat,
    Timeline,
    Table,
}

impl Kind {
    fn grafana_type(self) -> &'static str {
        match self {
            Kind::Row => "row",
            Kind::Graph => "timeseries",
            Kind::Stat => "stat",
            Kind::Timeline => "state-timeline",
            Kind::Table => "table",
        }
    }
}

struct Panel {
    kind: Kind,
    title: &'static str,
    description: &'static str,
    unit: &'static str,
    width: u32,
    height: u32,
    targets: Vec<Target>,
    /// Value → (text, color).
    mappings: Vec<(i64, &'static str, &'static str)>,
    /// From this value on, red (stat panels); none: one color.
    red_from: Option<f64>,
    /// Stat panels: show the series name (e.g. the primary's pod) instead of the value.
    show_name: bool,
    no_value: Option<&'static str>,
}

fn panel(
    kind: Kind,
    title: &'static str,
    unit: &'static str,
    description: &'static str,
    targets: Vec<Target>,
) -> Panel {
    let (width, height) = match kind {
        Kind::Row => (24, 1),
        Kind::Graph => (12, 8),
        Kind::Stat => (4, 4),
        Kind::Timeline => (12, 6),
        Kind::Table => (24, 8),
    };
    Panel {
        kind,
        title,
        description,
        unit,
        width,
        height,
        targets,
        mappings: vec![],
        red_from: None,
        show_name: false,
        no_value: None,
    }
}

fn row(title: &'static str) -> Panel {
    panel(Kind::Row, title, "", "", vec![])
}

fn graph(
    title: &'static str,
    unit: &'static str,
    description: &'static str,
    targets: Vec<Target>,
) -> Panel {
    panel(Kind::Graph, title, unit, description, targets)
}

fn stat(
    title: &'static str,
    unit: &'static str,
    description: &'static str,
    targets: Vec<Target>,
) -> Panel {
    panel(Kind::Stat, title, unit, description, targets)
}

fn timeline(
    title: &'static str,
    description: &'static str,
    mappings: Vec<(i64, &'static str, &'static str)>,
    targets: Vec<Target>,
) -> Panel {
    Panel {
        mappings,
        ..panel(Kind::Timeline, title, "", description, targets)
    }
}

/// Configuration as brpc serves Curve's config bvars: one series per key, labels `conf_name`
/// and `conf_value` (value 0).
fn config_table(title: &'static str, description: &'static str, expr: String) -> Panel {
    panel(
        Kind::Table,
        title,
        "",
        description,
        vec![q(
            format!("max by (pod, conf_name, conf_value) ({expr})"),
            "",
        )],
    )
}

impl Panel {
    fn width(mut self, width: u32) -> Self {
        self.width = width;
        self
    }

    fn mappings(mut self, mappings: Vec<(i64, &'static str, &'static str)>) -> Self {
        self.mappings = mappings;
        self
    }

    fn red_from(mut self, value: f64) -> Self {
        self.red_from = Some(value);
        self
    }

    fn show_name(mut self) -> Self {
        self.show_name = true;
        self
    }

    fn no_value(mut self, text: &'static str) -> Self {
        self.no_value = Some(text);
        self
    }

    fn to_json(&self, id: u32, x: u32, y: u32) -> Value {
        let grid = json!({"h": self.height, "w": self.width, "x": x, "y": y});
        if self.kind == Kind::Row {
            return json!({
                "type": "row",
                "id": id,
                "title": self.title,
                "gridPos": grid,
                "collapsed": false,
                "panels": [],
            });
        }
        let targets: Vec<Value> = self
            .targets
            .iter()
            .zip('A'..)
            .map(|(t, ref_id)| {
                let mut target = json!({
                    "refId": ref_id.to_string(),
                    "datasource": datasource(),
                    "expr": t.expr,
                    "legendFormat": t.legend,
                });
                if self.kind == Kind::Table {
                    target["format"] = json!("table");
                    target["instant"] = json!(true);
                } else {
                    target["range"] = json!(true);
                }
                target
            })
            .collect();
        let mut steps = vec![json!({"color": "green", "value": null})];
        if let Some(red) = self.red_from {
            steps.push(json!({"color": "red", "value": red}));
        }
        let mut defaults = json!({
            "unit": if self.unit.is_empty() { "short" } else { self.unit },
            "thresholds": {"mode": "absolute", "steps": steps},
            "mappings": mappings(&self.mappings),
        });
        if let Some(text) = self.no_value {
            defaults["noValue"] = json!(text);
        }
        let legend = json!({"displayMode": "list", "placement": "bottom", "showLegend": true});
        let options = match self.kind {
            Kind::Graph => {
                defaults["custom"] = json!({
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "spanNulls": false,
                });
                defaults["color"] = json!({"mode": "palette-classic"});
                json!({"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}})
            }
            Kind::Stat => {
                defaults["color"] = json!({"mode": "thresholds"});
                json!({
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                    "colorMode": "value",
                    "graphMode": "none",
                    "justifyMode": "auto",
                    "orientation": "auto",
                    "textMode": if self.show_name { "name" } else { "value_and_name" },
                })
            }
            Kind::Timeline => {
                defaults["color"] = json!({"mode": "thresholds"});
                json!({
                    "mergeValues": true,
                    "showValue": "auto",
                    "alignValue": "left",
                    "rowHeight": 0.9,
                    "legend": legend,
                    "tooltip": {"mode": "single", "sort": "none"},
                })
            }
            Kind::Table => json!({"showHeader": true, "cellHeight": "sm"}),
            Kind::Row => unreachable!("a row returned above"),
        };
        let mut out = json!({
            "type": self.kind.grafana_type(),
            "id": id,
            "title": self.title,
            "description": self.description,
            "datasource": datasource(),
            "gridPos": grid,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options,
            "targets": targets,
        });
        if self.kind == Kind::Table {
            out["transformations"] = json!([{
                "id": "organize",
                "options": {"excludeByName": {"Time": true, "Value": true}},
            }]);
        }
        out
    }
}

fn mappings(values: &[(i64, &str, &str)]) -> Value {
    if values.is_empty() {
        return json!([]);
    }
    let options: serde_json::Map<String, Value> = values
        .iter()
        .enumerate()
        .map(|(index, (value, text, color))| {
            (
                value.to_string(),
                json!({"text": text, "color": color, "index": index}),
            )
        })
        .collect();
    json!([{"type": "value", "options": options}])
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

// ---------------------------------------------------------------------------------------------
// Dashboards.

fn datasource_variable() -> Value {
    json!({
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": false,
        "multi": false,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": false,
    })
}

/// A variable filled by `label_values(<series>, <label>)`; `multi` ones offer All (`.+`).
fn query_variable(name: &str, label: &str, series: &str, of: &str, multi: bool) -> Value {
    let query = format!("label_values({series}, {of})");
    let mut variable = json!({
        "name": name,
        "label": label,
        "type": "query",
        "datasource": datasource(),
        "query": query,
        "definition": query,
        "current": {},
        "hide": 0,
        "includeAll": multi,
        "multi": multi,
        "options": [],
        "refresh": 2,
        "regex": "",
        "skipUrlSync": false,
        "sort": 1,
    });
    if multi {
        variable["allValue"] = json!(".+");
    }
    variable
}

/// `namespace` and `cluster` from the operator's series (every reconciled cluster has
/// `curve_operator_cluster_available`).
fn operator_variables() -> Vec<Value> {
    let available = op("cluster_available");
    vec![
        datasource_variable(),
        query_variable("namespace", "Namespace", &available, "namespace", false),
        query_variable(
            "cluster",
            "CurveCluster",
            &sel(&available, r#"namespace="$namespace""#),
            "name",
            false,
        ),
    ]
}

/// `namespace`, `cluster` and `pod` from the scrape targets of `component`.
fn target_variables(component: Component) -> Vec<Value> {
    let c = component.as_str();
    vec![
        datasource_variable(),
        query_variable(
            "namespace",
            "Namespace",
            &sel("up", &format!(r#"{TARGET_COMPONENT}="{c}""#)),
            "namespace",
            false,
        ),
        query_variable(
            "cluster",
            "CurveCluster",
            &sel(
                "up",
                &format!(r#"namespace="$namespace",{TARGET_COMPONENT}="{c}""#),
            ),
            TARGET_CLUSTER,
            false,
        ),
        query_variable("pod", "Pod", &sel("up", &targets(component)), "pod", true),
    ]
}

fn dashboard(
    name: &'static str,
    title: &str,
    description: &str,
    variables: Vec<Value>,
    panels: Vec<Panel>,
) -> Dashboard {
    // Left to right, then down; a row starts a new line.
    let (mut x, mut y, mut line_height) = (0, 0, 0);
    let mut placed = vec![];
    for (panel, id) in panels.iter().zip(1..) {
        if panel.kind == Kind::Row || x + panel.width > 24 {
            y += line_height;
            x = 0;
            line_height = 0;
        }
        placed.push(panel.to_json(id, x, y));
        x += panel.width;
        line_height = line_height.max(panel.height);
    }
    Dashboard {
        name,
        json: json!({
            "uid": format!("curve-{name}"),
            "title": title,
            "description": description,
            "tags": ["curve", "curve-operator"],
            "editable": true,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "30s",
            "time": {"from": "now-3h", "to": "now"},
            "timezone": "browser",
            "annotations": {"list": []},
            "links": [{
                "type": "dashboards",
                "title": "Curve",
                "tags": ["curve"],
                "asDropdown": true,
                "includeVars": true,
                "keepTime": true,
            }],
            "templating": {"list": variables},
            "panels": placed,
        }),
    }
}

const AVAILABLE: [(i64, &str, &str); 2] = [(0, "not available", "red"), (1, "available", "green")];

/// The cluster as the operator sees it: its conditions, the election, etcd's health, the
/// pods, rolls and reconciles.
fn overview() -> Dashboard {
    let o = ours();
    let available = op_gauge("cluster_available", &o, "");
    let primary = op_gauge("mds_primary", &o, "pod");
    let healthy = op_gauge("etcd_healthy_members", &o, "");
    let members = op_gauge("etcd_members", &o, "");
    let down = op_gauge("chunkserver_failure_domains_down", &o, "");
    let tolerated = op_gauge("chunkserver_failure_domains_tolerated", &o, "");
    let failures = op_gauge("cluster_reconcile_failures", &o, "");
    let ready = op_gauge("ready_members", &o, "component");
    let desired = op_gauge("desired_members", &o, "component");
    let verdict = op_gauge("curve_health", &o, "state");
    let copysets = op_gauge("copysets", &o, "state");
    let online = op_gauge("chunkservers_online_state", &o, "state");
    let pool_bytes = op_gauge("logical_pool_bytes", &o, "pool, kind");
    let panels = vec![
        row("Cluster"),
        stat(
            "Available",
            "",
            "The CurveCluster's Available condition: etcd quorate, an MDS primary, the topology registered and enough ChunkServers ready.",
            vec![q(available.clone(), "")],
        )
        .mappings(AVAILABLE.to_vec())
        .no_value("no data"),
        stat(
            "MDS primary",
            "",
            "The MDS pod the etcd election names primary (the operator watches the election).",
            vec![q(format!("{primary} == 1"), "{{pod}}")],
        )
        .show_name()
        .no_value("none"),
        stat(
            "Primary changes (24h)",
            "",
            "New MDS primaries the operator's election watch reported in the last 24 hours.",
            vec![q(primary_changes("24h"), "changes")],
        )
        .red_from(1.0),
        stat(
            "etcd members",
            "",
            "Voting members of etcd's member list, and those that answer, follow a leader and report no alarm.",
            vec![q(healthy.clone(), "healthy"), q(members.clone(), "members")],
        ),
        stat(
            "ChunkServers down",
            "",
            "ChunkServers not ready, and how many may be: (logicalPool.replicas - 1) / 2, as the Available condition counts.",
            vec![q(down.clone(), "down"), q(tolerated.clone(), "tolerated")],
        ),
        stat(
            "Failed reconciles in a row",
            "",
            "Consecutive failed reconciles; the Progressing condition holds the error.",
            vec![q(failures.clone(), "")],
        )
        .red_from(1.0),
        row("Curve's health (read by the operator)"),
        stat(
            "Curve health",
            "",
            "Curve's own verdict as the operator reads it from the MDS and every ChunkServer (the rules of curve_ops_tool): healthy, unhealthy or unknown.",
            vec![q(format!("{verdict} == 1"), "{{state}}")],
        )
        .show_name()
        .no_value("not read"),
        stat(
            "Unhealthy copysets",
            "",
            "Copysets with a problem (a copy missing or lagging, no leader, a snapshot installing); status.health names them.",
            vec![q(
                op_gauge("copysets", &format!(r#"{o},state="unhealthy""#), ""),
                "",
            )],
        )
        .red_from(1.0)
        .no_value("not read"),
        graph(
            "Copysets by health",
            "short",
            "Healthy and unhealthy copysets over time.",
            vec![q(copysets, "{{state}}")],
        ),
        graph(
            "ChunkServers by online state",
            "short",
            "ChunkServers as the MDS sees them: online, unstable (missed heartbeats), offline (re-replicated after 30 minutes).",
            vec![q(online, "{{state}}")],
        ),
        graph(
            "Logical pool space",
            "bytes",
            "Capacity, used and allocated bytes of each logical pool, from the MDS's pool metrics.",
            vec![q(pool_bytes, "{{pool}} {{kind}}")],
        ),
        row("Pods"),
        graph(
            "Ready and desired pods",
            "short",
            "Ready pods and the pods the spec asks for, per component.",
            vec![
                q(ready.clone(), "{{component}} ready"),
                q(desired.clone(), "{{component}} desired"),
            ],
        ),
        graph(
            "Pods not ready",
            "short",
            "Desired minus ready pods, per component: during a roll, the pod being replaced.",
            vec![q(format!("{desired} - {ready}"), "{{component}}")],
        ),
        timeline(
            "MDS primary by pod",
            "Which MDS pod the election names primary, over time.",
            vec![(0, "standby", "blue"), (1, "primary", "green")],
            vec![q(primary.clone(), "{{pod}}")],
        ),
        graph(
            "etcd members",
            "short",
            "Voting members of etcd's member list and the healthy ones.",
            vec![q(healthy, "healthy"), q(members, "members")],
        ),
        graph(
            "ChunkServer failure domains",
            "short",
            "ChunkServers down against how many the logical pool tolerates; above it, copysets may lose their raft majority.",
            vec![q(down, "down"), q(tolerated, "tolerated")],
        ),
        graph(
            "MDS primary changes",
            "short",
            "New primaries the election watch reported.",
            vec![q(primary_changes("$__rate_interval"), "changes")],
        ),
        row("Availability and changes"),
        timeline(
            "Availability",
            "The Available condition over time.",
            AVAILABLE.to_vec(),
            vec![q(available, "available")],
        ),
        timeline(
            "Rolling change",
            "A rolling change of the cluster's pods: under way, or stuck (a replaced pod not ready within spec.rollout.progressDeadlineSeconds; the Progressing condition names it).",
            vec![(0, "idle", "transparent"), (1, "rolling", "blue"), (2, "stuck", "red")],
            vec![q(
                format!(
                    "{} + 2 * {}",
                    op_gauge("rolling", &o, ""),
                    op_gauge("roll_stuck", &o, "")
                ),
                "roll",
            )],
        ),
        graph(
            "Failed reconciles in a row",
            "short",
            "Consecutive failed reconciles of this cluster (0 after a success).",
            vec![q(failures, "failures")],
        ),
        row("Operator (the whole installation)"),
        graph(
            "Reconciles",
            "ops",
            "Reconciles finished per second, by result, over every cluster.",
            vec![q(
                format!("sum by (result) ({})", rate(&op("reconciles_total"))),
                "{{result}}",
            )],
        ),
        graph(
            "Reconcile duration",
            "s",
            "How long one reconcile takes.",
            vec![
                q(
                    quantile("0.5", "job", &op("reconcile_duration_seconds_bucket")),
                    "p50",
                ),
                q(
                    quantile("0.99", "job", &op("reconcile_duration_seconds_bucket")),
                    "p99",
                ),
            ],
        ),
        graph(
            "Failed reconciles by step",
            "ops",
            "Failed reconciles per second, by the step that failed.",
            vec![q(
                format!("sum by (step) ({})", rate(&op("errors_total"))),
                "{{step}}",
            )],
        ),
        graph(
            "Kubernetes API requests",
            "reqps",
            "Requests the operator sends to the API server, by verb.",
            vec![q(
                format!("sum by (verb) ({})", rate(&op("kube_requests_total"))),
                "{{verb}}",
            )],
        ),
    ];
    dashboard(
        "overview",
        "Curve / Cluster overview",
        "One CurveCluster as curve-operator sees it (its curve_operator_* metrics), and the operator itself.",
        operator_variables(),
        panels,
    )
}

/// etcd's own metrics (Prometheus client of etcd's server), as Curve's etcd dashboard shows
/// them: leadership, raft proposals, disk latencies, peer and client traffic, gRPC.
fn etcd() -> Dashboard {
    let all = targets(Component::Etcd);
    let p = pods(Component::Etcd);
    let by_pod = |name: &str| sel(name, &p);
    let rate_by_pod = |name: &str| rate(&by_pod(name));
    let streams = |service: &str| {
        let m = format!(r#"{p},grpc_service="etcdserverpb.{service}",grpc_type="bidi_stream""#);
        format!(
            "sum({}) - sum({})",
            sel("grpc_server_started_total", &m),
            sel("grpc_server_handled_total", &m)
        )
    };
    let panels = vec![
        row("Health"),
        stat(
            "Members with a leader",
            "",
            "etcd members that know a raft leader.",
            vec![q(
                format!("sum({})", sel("etcd_server_has_leader", &all)),
                "",
            )],
        ),
        stat(
            "Healthy members",
            "",
            "The operator's view: voting members that answer, follow a leader and report no alarm, of all voting members.",
            vec![
                q(op_gauge("etcd_healthy_members", &ours(), ""), "healthy"),
                q(op_gauge("etcd_members", &ours(), ""), "members"),
            ],
        ),
        stat(
            "Leader",
            "",
            "The member that is raft leader.",
            vec![q(
                format!("max by (pod) ({}) == 1", sel("etcd_server_is_leader", &all)),
                "{{pod}}",
            )],
        )
        .show_name()
        .no_value("none"),
        stat(
            "Leader changes (1h)",
            "",
            "Leader changes seen in the last hour (the most any member saw).",
            vec![q(
                format!(
                    "max(increase({}[1h]))",
                    sel("etcd_server_leader_changes_seen_total", &all)
                ),
                "",
            )],
        )
        .red_from(3.0),
        stat(
            "Failed proposals (1h)",
            "",
            "Raft proposals that failed in the last hour (e.g. lost leadership, no quorum).",
            vec![q(
                format!(
                    "sum(increase({}[1h]))",
                    sel("etcd_server_proposals_failed_total", &all)
                ),
                "",
            )],
        )
        .red_from(1.0),
        stat(
            "Database size",
            "bytes",
            "The largest member's backend database file.",
            vec![q(
                format!("max({})", sel("etcd_mvcc_db_total_size_in_bytes", &all)),
                "",
            )],
        ),
        graph(
            "Scrape targets up",
            "short",
            "1 while Prometheus scrapes the member's /metrics.",
            vec![q(by_pod("up"), "{{pod}}")],
        ),
        graph(
            "Has leader",
            "short",
            "1 while the member knows a raft leader.",
            vec![q(by_pod("etcd_server_has_leader"), "{{pod}}")],
        ),
        row("Raft proposals"),
        graph(
            "Proposals committed",
            "ops",
            "Raft proposals committed per second.",
            vec![q(
                rate_by_pod("etcd_server_proposals_committed_total"),
                "{{pod}}",
            )],
        ),
        graph(
            "Proposals applied",
            "ops",
            "Raft proposals applied per second.",
            vec![q(
                rate_by_pod("etcd_server_proposals_applied_total"),
                "{{pod}}",
            )],
        ),
        graph(
            "Proposals pending",
            "short",
            "Proposals waiting for commit.",
            vec![q(by_pod("etcd_server_proposals_pending"), "{{pod}}")],
        ),
        graph(
            "Proposals failed",
            "ops",
            "Failed raft proposals per second.",
            vec![q(
                rate_by_pod("etcd_server_proposals_failed_total"),
                "{{pod}}",
            )],
        ),
        row("Disk"),
        graph(
            "WAL fsync latency (p99)",
            "s",
            "99th percentile of the write-ahead log's fsync; above 10 ms the disk slows every write.",
            vec![q(
                quantile(
                    "0.99",
                    "pod",
                    &by_pod("etcd_disk_wal_fsync_duration_seconds_bucket"),
                ),
                "{{pod}}",
            )],
        ),
        graph(
            "Backend commit latency (p99)",
            "s",
            "99th percentile of the backend's commits (incremental snapshots to disk).",
            vec![q(
                quantile(
                    "0.99",
                    "pod",
                    &by_pod("etcd_disk_backend_commit_duration_seconds_bucket"),
                ),
                "{{pod}}",
            )],
        ),
        graph(
            "Database size",
            "bytes",
            "The backend database file, the part in use, and the quota (writes stop with a NOSPACE alarm at the quota).",
            vec![
                q(by_pod("etcd_mvcc_db_total_size_in_bytes"), "{{pod}} total"),
                q(
                    by_pod("etcd_mvcc_db_total_size_in_use_in_bytes"),
                    "{{pod}} in use",
                ),
                q(
                    format!("max({})", sel("etcd_server_quota_backend_bytes", &all)),
                    "quota",
                ),
            ],
        ),
        graph(
            "WAL writes",
            "Bps",
            "Bytes written to the write-ahead log per second.",
            vec![q(rate_by_pod("etcd_disk_wal_write_bytes_total"), "{{pod}}")],
        ),
        row("Network"),
        graph(
            "Peer traffic sent",
            "Bps",
            "Bytes sent to the other members per second.",
            vec![q(
                format!(
                    "sum by (pod) ({})",
                    rate_by_pod("etcd_network_peer_sent_bytes_total")
                ),
                "{{pod}}",
            )],
        ),
        graph(
            "Peer traffic received",
            "Bps",
            "Bytes received from the other members per second.",
            vec![q(
                format!(
                    "sum by (pod) ({})",
                    rate_by_pod("etcd_network_peer_received_bytes_total")
                ),
                "{{pod}}",
            )],
        ),
        graph(
            "Peer round trip (p99)",
            "s",
            "99th percentile of the round trip to the other members.",
            vec![q(
                quantile(
                    "0.99",
                    "pod",
                    &by_pod("etcd_network_peer_round_trip_time_seconds_bucket"),
                ),
                "{{pod}}",
            )],
        ),
        graph(
            "Client traffic",
            "Bps",
            "gRPC bytes from and to clients (the MDS, the operator) per second.",
            vec![
                q(
                    rate_by_pod("etcd_network_client_grpc_received_bytes_total"),
                    "{{pod}} in",
                ),
                q(
                    rate_by_pod("etcd_network_client_grpc_sent_bytes_total"),
                    "{{pod}} out",
                ),
            ],
        ),
        row("gRPC"),
        graph(
            "Requests by service",
            "reqps",
            "gRPC requests handled per second, by service.",
            vec![q(
                format!(
                    "sum by (grpc_service) ({})",
                    rate(&sel("grpc_server_handled_total", &p))
                ),
                "{{grpc_service}}",
            )],
        ),
        graph(
            "Failed requests",
            "reqps",
            "gRPC requests that did not end OK, per second, by service and code.",
            vec![q(
                format!(
                    "sum by (grpc_service, grpc_code) ({})",
                    rate(&sel(
                        "grpc_server_handled_total",
                        &format!(r#"{p},grpc_code!="OK""#)
                    ))
                ),
                "{{grpc_service}} {{grpc_code}}",
            )],
        ),
        graph(
            "Open watch and lease streams",
            "short",
            "Streams started but not finished: the MDS election's lease keep-alives and watches.",
            vec![q(streams("Watch"), "watch"), q(streams("Lease"), "lease")],
        ),
        row("Process"),
        graph(
            "CPU",
            "short",
            "CPU cores used.",
            vec![q(rate_by_pod("process_cpu_seconds_total"), "{{pod}}")],
        ),
        graph(
            "Resident memory",
            "bytes",
            "Resident memory of the etcd process.",
            vec![q(by_pod("process_resident_memory_bytes"), "{{pod}}")],
        ),
    ];
    dashboard(
        "etcd",
        "Curve / etcd",
        "The etcd members of a CurveCluster, from etcd's own metrics (the operator's PodMonitor scrapes each member's client port).",
        target_variables(Component::Etcd),
        panels,
    )
}

/// The process bvars brpc registers in every Curve daemon (`src/bvar/default_variables.cpp`,
/// `src/brpc/global.cpp`, `src/bthread/task_control.cpp`).
fn brpc_process(component: Component) -> Vec<Panel> {
    let p = pods(component);
    vec![
        row("Process"),
        graph(
            "CPU",
            "short",
            "CPU cores the process used (brpc's process_cpu_usage), and the part in the kernel.",
            vec![
                q(sel("process_cpu_usage", &p), "{{pod}}"),
                q(sel("process_cpu_usage_system", &p), "{{pod}} system"),
            ],
        ),
        graph(
            "Resident memory",
            "bytes",
            "Resident memory of the process.",
            vec![q(sel("process_memory_resident", &p), "{{pod}}")],
        ),
        graph(
            "IOBuf memory",
            "bytes",
            "Memory in brpc's IOBuf blocks (request and response buffers).",
            vec![q(sel("iobuf_block_memory", &p), "{{pod}}")],
        ),
        graph(
            "bthread workers busy",
            "short",
            "Worker threads busy running bthreads (of bthread_worker_count).",
            vec![
                q(sel("bthread_worker_usage", &p), "{{pod}} busy"),
                q(sel("bthread_worker_count", &p), "{{pod}} workers"),
            ],
        ),
    ]
}

/// The MDS: the election (the operator's view and who serves), the topology metrics the
/// primary computes for the logical pools and ChunkServers, the scheduler, the RPCs, the
/// heartbeats and the name server's cache.
fn mds() -> Dashboard {
    let all = targets(Component::Mds);
    let p = pods(Component::Mds);
    let o = ours();
    // The primary alone computes the topology metrics; `max` merges a failover's overlap.
    let pool = |part: &str| {
        format!(
            "max by (pool) ({})",
            captured(
                &format!("topology_metric_logical_pool_(.+)_{part}"),
                "pool",
                &all
            )
        )
    };
    let chunkserver = |part: &str| {
        format!(
            "max by (chunkserver_id) ({})",
            captured(
                &format!("topology_metric_chunkserver_id_([0-9]+)_{part}"),
                "chunkserver_id",
                &all
            )
        )
    };
    // The MDS's own RPC methods, by method (`rpc_server_<mds port>_curve_mds_<method>_<bvar>`).
    let method = |bvar: &str, extra: &str| {
        format!(
            "sum by (method) ({})",
            captured(
                &format!("rpc_server_[0-9]+_curve_mds_(.+)_{bvar}"),
                "method",
                &format!("{p}{extra}")
            )
        )
    };
    let heartbeat = |bvar: &str| {
        format!(
            r#"sum({{__name__=~"rpc_server_[0-9]+_curve_mds_heartbeat_heartbeat_service_chunk_server_heartbeat_{bvar}",{p}}})"#
        )
    };
    let cache = |bvar: &str| sel(&format!("mds_nameserver_cache_metric_{bvar}"), &p);
    let scheduler = |bvar: &str| {
        format!(
            "sum({})",
            sel(&format!("mds_scheduler_metric_{bvar}"), &all)
        )
    };
    let connections = format!(r#"{{__name__=~"rpc_server_[0-9]+_connection_count",{all}}}"#);
    let mut panels = vec![
        row("Election"),
        stat(
            "Primary",
            "",
            "The MDS pod the etcd election names primary (the operator's view).",
            vec![q(
                format!("{} == 1", op_gauge("mds_primary", &o, "pod")),
                "{{pod}}",
            )],
        )
        .show_name()
        .no_value("none")
        .width(6),
        stat(
            "Serving their listen port",
            "",
            "MDS processes whose main brpc server runs: only an elected MDS opens its listen port, so more than 1 means two act as primary.",
            vec![q(format!("count({connections})"), "")],
        )
        .red_from(2.0)
        .no_value("0")
        .width(6),
        stat(
            "MDS pods scraped",
            "",
            "MDS pods whose dummy port answers /metrics.",
            vec![q(format!("sum({})", sel("up", &all)), "")],
        )
        .width(6),
        stat(
            "Primary changes (24h)",
            "",
            "New primaries the operator's election watch reported in the last 24 hours.",
            vec![q(primary_changes("24h"), "")],
        )
        .red_from(1.0)
        .width(6),
        timeline(
            "Primary by pod",
            "Which MDS pod the election names primary, over time (the operator's view).",
            vec![(0, "standby", "blue"), (1, "primary", "green")],
            vec![q(op_gauge("mds_primary", &o, "pod"), "{{pod}}")],
        ),
        graph(
            "Client connections",
            "short",
            "Connections to the MDS's listen port (only the primary serves it): clients and ChunkServers.",
            vec![q(
                format!(r#"{{__name__=~"rpc_server_[0-9]+_connection_count",{p}}}"#),
                "{{pod}}",
            )],
        ),
    ];
    panels.extend(brpc_process(Component::Mds));
    panels.extend([
        row("Logical pools"),
        graph(
            "Chunk space",
            "bytes",
            "The ChunkServers' chunk file pools per logical pool: used by chunks, left, in the trash, and the total.",
            vec![
                q(pool("chunk_size_used_bytes"), "{{pool}} used"),
                q(pool("chunk_size_left_bytes"), "{{pool}} left"),
                q(pool("chunk_size_trashed_bytes"), "{{pool}} trashed"),
                q(pool("chunk_size_total_bytes"), "{{pool}} total"),
            ],
        ),
        graph(
            "Chunk space used",
            "percentunit",
            "Used chunk space of the total, per logical pool.",
            vec![q(
                format!(
                    "{} / {}",
                    pool("chunk_size_used_bytes"),
                    pool("chunk_size_total_bytes")
                ),
                "{{pool}}",
            )],
        ),
        graph(
            "Logical space",
            "bytes",
            "The volumes' logical capacity of the pool and what segments have been allocated of it.",
            vec![
                q(pool("logical_capacity"), "{{pool}} capacity"),
                q(pool("logical_alloc"), "{{pool}} allocated"),
            ],
        ),
        graph(
            "ChunkServers and copysets",
            "short",
            "ChunkServers and copysets per logical pool.",
            vec![
                q(pool("chunkserver_num"), "{{pool}} chunkservers"),
                q(pool("copyset_num"), "{{pool}} copysets"),
            ],
        ),
        graph(
            "Copysets per ChunkServer",
            "short",
            "Fewest, average and most copysets on one ChunkServer of the pool: a wide spread means an unbalanced pool.",
            vec![
                q(pool("copysetnum_min"), "{{pool}} min"),
                q(pool("copysetnum_avg"), "{{pool}} avg"),
                q(pool("copysetnum_max"), "{{pool}} max"),
            ],
        ),
        graph(
            "Leaders per ChunkServer",
            "short",
            "Fewest, average and most copyset leaders on one ChunkServer of the pool.",
            vec![
                q(pool("leadernum_min"), "{{pool}} min"),
                q(pool("leadernum_avg"), "{{pool}} avg"),
                q(pool("leadernum_max"), "{{pool}} max"),
            ],
        ),
        row("ChunkServers (as the MDS sees them)"),
        graph(
            "Copysets",
            "short",
            "Copysets per ChunkServer in the topology.",
            vec![q(chunkserver("copysetnum"), "chunkserver {{chunkserver_id}}")],
        ),
        graph(
            "Leaders",
            "short",
            "Copyset leaders per ChunkServer in the topology.",
            vec![q(chunkserver("leadernum"), "chunkserver {{chunkserver_id}}")],
        ),
        graph(
            "Scatter width",
            "short",
            "Other ChunkServers each ChunkServer shares copysets with: how widely its recovery spreads.",
            vec![q(chunkserver("scatterwidth"), "chunkserver {{chunkserver_id}}")],
        ),
        graph(
            "Chunk file pool left",
            "percentunit",
            "Free chunks of each ChunkServer's chunk file pool, of its total; writes of new chunks fail when none is left.",
            vec![q(
                format!(
                    "{} / {}",
                    chunkserver("chunk_size_left_bytes"),
                    chunkserver("chunk_size_total_bytes")
                ),
                "chunkserver {{chunkserver_id}}",
            )],
        ),
        graph(
            "Bandwidth",
            "Bps",
            "Read and write bandwidth per ChunkServer, from its heartbeats.",
            vec![
                q(chunkserver("read_rate"), "chunkserver {{chunkserver_id}} read"),
                q(chunkserver("write_rate"), "chunkserver {{chunkserver_id}} write"),
            ],
        ),
        graph(
            "IOPS",
            "iops",
            "Read and write operations per second per ChunkServer, from its heartbeats.",
            vec![
                q(chunkserver("read_iops"), "chunkserver {{chunkserver_id}} read"),
                q(chunkserver("write_iops"), "chunkserver {{chunkserver_id}} write"),
            ],
        ),
        row("Scheduler"),
        graph(
            "Operators by type",
            "short",
            "Copyset changes the scheduler has under way: add, remove, change a peer, transfer a leader.",
            vec![
                q(scheduler("operator_num"), "all"),
                q(scheduler("add_peer_num"), "add peer"),
                q(scheduler("remove_peer_num"), "remove peer"),
                q(scheduler("change_peer_num"), "change peer"),
                q(scheduler("transfer_leader_num"), "transfer leader"),
            ],
        ),
        graph(
            "Operators by priority",
            "short",
            "High priority operators repair copysets (e.g. a ChunkServer offline); normal ones balance.",
            vec![
                q(scheduler("high_operator_num"), "high"),
                q(scheduler("normal_operator_num"), "normal"),
            ],
        ),
        row("RPC (the primary)"),
        graph(
            "Requests by method",
            "reqps",
            "Requests per second to the MDS's services (file system, topology, heartbeat), by method.",
            vec![q(method("qps", ""), "{{method}}")],
        ),
        graph(
            "Average latency by method",
            "µs",
            "Average latency of the last seconds, by method.",
            vec![q(
                method("latency", r#",__name__!~".+_max_latency""#),
                "{{method}}",
            )],
        ),
        graph(
            "p99 latency by method",
            "µs",
            "99th percentile latency of the last seconds, by method.",
            vec![q(method("latency_99", ""), "{{method}}")],
        ),
        graph(
            "Errors by method",
            "reqps",
            "Failed requests per second, by method.",
            vec![q(method("eps", ""), "{{method}}")],
        ),
        graph(
            "Concurrency by method",
            "short",
            "Requests in progress, by method.",
            vec![q(
                method("concurrency", r#",__name__!~".+_max_concurrency""#),
                "{{method}}",
            )],
        ),
        graph(
            "ChunkServer heartbeats",
            "short",
            "Heartbeats received per second, and their average and p99 handling latency (µs).",
            vec![
                q(heartbeat("qps"), "heartbeats/s"),
                q(heartbeat("latency"), "average latency (µs)"),
                q(heartbeat("latency_99"), "p99 latency (µs)"),
            ],
        ),
        row("Name server cache"),
        graph(
            "Cached entries",
            "short",
            "File metadata entries in the name server's cache.",
            vec![q(cache("cache_count"), "{{pod}}")],
        ),
        graph(
            "Cache size",
            "bytes",
            "Bytes the cached entries take.",
            vec![q(cache("cache_bytes"), "{{pod}}")],
        ),
        graph(
            "Cache hit ratio",
            "percentunit",
            "Lookups answered from the cache, of all lookups.",
            vec![q(
                format!(
                    "{} / ({} + {})",
                    rate(&cache("cache_hit")),
                    rate(&cache("cache_hit")),
                    rate(&cache("cache_miss"))
                ),
                "{{pod}}",
            )],
        ),
        row("Configuration"),
        config_table(
            "MDS configuration",
            "Every configuration item as the MDS read it (mds.conf merged with the operator's settings).",
            format!(r#"{{__name__=~"mds_config_.+",{p}}}"#),
        ),
    ]);
    dashboard(
        "mds",
        "Curve / MDS",
        "The MDS of a CurveCluster, from the metrics its dummy port serves (brpc's /metrics).",
        target_variables(Component::Mds),
        panels,
    )
}

/// ChunkServers: the operator's view, the process, the ChunkService RPCs, the ChunkServer's I/O
/// metrics, recovery and clone traffic, storage, raft.
fn chunkserver() -> Dashboard {
    let all = targets(Component::ChunkServer);
    let p = pods(Component::ChunkServer);
    let o = ours();
    // The ChunkServer's own bvars: `chunkserver_<ip>_<port>_<bvar>`.
    let own = |bvar: &str| format!(r#"{{__name__=~"chunkserver_[0-9_]+_{bvar}",{p}}}"#);
    // The same, the operation (read, write, recover, …) captured into `op`.
    let per_op =
        |ops: &str, bvar: &str| captured(&format!("chunkserver_[0-9_]+_({ops})_{bvar}"), "op", &p);
    // The ChunkService's read and write RPCs on the scraped port (a brpc summary there).
    let chunk_rpc = |suffix: &str| {
        captured(
            &format!(
                "rpc_server_[0-9]+_curve_chunkserver_chunk_service_(read|write)_chunk{suffix}"
            ),
            "op",
            &p,
        )
    };
    let raft_rpc = |method: &str| {
        format!(r#"{{__name__=~"rpc_server_[0-9]+_braft_raft_service_{method}_qps",{p}}}"#)
    };
    let mut panels = vec![
        row("Overview"),
        stat(
            "Ready",
            "",
            "Ready ChunkServer pods of those the spec asks for (the operator's view).",
            vec![
                q(
                    op_gauge("ready_members", &ours_of(Component::ChunkServer), ""),
                    "ready",
                ),
                q(
                    op_gauge("desired_members", &ours_of(Component::ChunkServer), ""),
                    "desired",
                ),
            ],
        ),
        stat(
            "Down",
            "",
            "ChunkServers down, and how many the logical pool tolerates.",
            vec![
                q(op_gauge("chunkserver_failure_domains_down", &o, ""), "down"),
                q(
                    op_gauge("chunkserver_failure_domains_tolerated", &o, ""),
                    "tolerated",
                ),
            ],
        ),
        stat(
            "Copysets",
            "",
            "Raft nodes (copyset replicas) over all ChunkServers.",
            vec![q(format!("sum({})", sel("raft_node_count", &all)), "")],
        ),
        stat(
            "Chunks",
            "",
            "Chunks over all ChunkServers.",
            vec![q(
                format!(r#"sum({{__name__=~"chunkserver_[0-9_]+_chunk_count",{all}}})"#),
                "",
            )],
        ),
        stat(
            "Leaders",
            "",
            "Copyset leaders over all ChunkServers.",
            vec![q(
                format!(r#"sum({{__name__=~"chunkserver_[0-9_]+_leader_count",{all}}})"#),
                "",
            )],
        ),
        stat(
            "Pods scraped",
            "",
            "ChunkServer pods whose port answers /metrics.",
            vec![q(format!("sum({})", sel("up", &all)), "")],
        ),
        graph(
            "Scrape targets up",
            "short",
            "1 while Prometheus scrapes the ChunkServer's /metrics.",
            vec![q(sel("up", &p), "{{pod}}")],
        ),
        graph(
            "Leaders",
            "short",
            "Copyset leaders per ChunkServer.",
            vec![q(own("leader_count"), "{{pod}}")],
        ),
    ];
    panels.extend(brpc_process(Component::ChunkServer));
    panels.extend([
        row("ChunkService RPC"),
        graph(
            "Requests",
            "reqps",
            "ReadChunk and WriteChunk requests per second.",
            vec![q(chunk_rpc("_qps"), "{{pod}} {{op}}")],
        ),
        graph(
            "Errors",
            "reqps",
            "ReadChunk and WriteChunk requests that failed, per second.",
            vec![q(chunk_rpc("_eps"), "{{pod}} {{op}}")],
        ),
        graph(
            "Latency",
            "µs",
            "Average (of the last seconds) and 99th percentile latency of ReadChunk and WriteChunk.",
            vec![
                q(
                    format!("{} / {}", chunk_rpc("_sum"), chunk_rpc("_count")),
                    "{{pod}} {{op}} avg",
                ),
                q(
                    captured(
                        "rpc_server_[0-9]+_curve_chunkserver_chunk_service_(read|write)_chunk",
                        "op",
                        &format!(r#"{p},quantile="0.99""#),
                    ),
                    "{{pod}} {{op}} p99",
                ),
            ],
        ),
        graph(
            "Concurrency",
            "short",
            "ReadChunk and WriteChunk requests in progress.",
            vec![q(chunk_rpc("_concurrency"), "{{pod}} {{op}}")],
        ),
        row("I/O"),
        graph(
            "IOPS",
            "iops",
            "Chunk reads and writes per second (the ChunkServer's metrics).",
            vec![q(per_op("read|write", "iops"), "{{pod}} {{op}}")],
        ),
        graph(
            "Bandwidth",
            "Bps",
            "Bytes read and written per second.",
            vec![q(per_op("read|write", "bps"), "{{pod}} {{op}}")],
        ),
        graph(
            "Latency",
            "µs",
            "Average and 99th percentile latency of chunk reads and writes.",
            vec![
                q(per_op("read|write", "lat_latency"), "{{pod}} {{op}} avg"),
                q(per_op("read|write", "lat_latency_99"), "{{pod}} {{op}} p99"),
            ],
        ),
        graph(
            "I/O size",
            "bytes",
            "Average size of one read and one write.",
            vec![q(per_op("read|write", "io_size_latency"), "{{pod}} {{op}}")],
        ),
        graph(
            "Errors",
            "ops",
            "Reads and writes that failed, per second.",
            vec![q(per_op("read|write", "eps"), "{{pod}} {{op}}")],
        ),
        graph(
            "Requests",
            "reqps",
            "Read and write requests per second.",
            vec![q(per_op("read|write", "rps"), "{{pod}} {{op}}")],
        ),
        row("Recovery and clone"),
        graph(
            "IOPS",
            "iops",
            "Recover (lazy clone fill), paste (clone data written) and download (from the clone source) operations per second.",
            vec![q(per_op("recover|paste|download", "iops"), "{{pod}} {{op}}")],
        ),
        graph(
            "Bandwidth",
            "Bps",
            "Recover, paste and download bytes per second.",
            vec![q(per_op("recover|paste|download", "bps"), "{{pod}} {{op}}")],
        ),
        graph(
            "Latency",
            "µs",
            "Average latency of recover, paste and download.",
            vec![q(
                per_op("recover|paste|download", "lat_latency"),
                "{{pod}} {{op}}",
            )],
        ),
        row("Storage"),
        graph(
            "Chunk file pool left",
            "short",
            "Preallocated chunk files left in the pool; new chunks take one each.",
            vec![q(own("chunkfilepool_left"), "{{pod}}")],
        ),
        graph(
            "WAL file pool left",
            "short",
            "Preallocated WAL segment files left.",
            vec![q(own("walfilepool_left"), "{{pod}}")],
        ),
        graph(
            "Chunks",
            "short",
            "Chunks, snapshot chunks and clone chunks stored.",
            vec![
                q(own("chunk_count"), "{{pod}} chunks"),
                q(own("snapshot_count"), "{{pod}} snapshots"),
                q(own("clonechunk_count"), "{{pod}} clone chunks"),
            ],
        ),
        graph(
            "Chunks in the trash",
            "short",
            "Chunks of deleted copysets waiting in the trash.",
            vec![q(own("chunk_trashed"), "{{pod}}")],
        ),
        graph(
            "Copysets",
            "short",
            "Raft nodes (copyset replicas) per ChunkServer.",
            vec![q(sel("raft_node_count", &p), "{{pod}}")],
        ),
        graph(
            "WAL segments",
            "short",
            "WAL segments in use.",
            vec![q(own("walsegment_count"), "{{pod}}")],
        ),
        row("Raft"),
        graph(
            "Log appends",
            "ops",
            "Raft log appends to storage per second.",
            vec![q(sel("raft_storage_append_entries_qps", &p), "{{pod}}")],
        ),
        graph(
            "Log append latency",
            "µs",
            "Average latency of a raft log append to storage.",
            vec![q(sel("raft_storage_append_entries_latency", &p), "{{pod}}")],
        ),
        graph(
            "Entries sent to followers",
            "ops",
            "AppendEntries batches a leader sends per second, and their average latency (µs).",
            vec![
                q(sel("raft_send_entries_qps", &p), "{{pod}} batches/s"),
                q(sel("raft_send_entries_latency", &p), "{{pod}} latency (µs)"),
            ],
        ),
        graph(
            "Raft RPCs received",
            "reqps",
            "append_entries and install_snapshot requests a follower receives per second.",
            vec![
                q(raft_rpc("append_entries"), "{{pod}} append_entries"),
                q(raft_rpc("install_snapshot"), "{{pod}} install_snapshot"),
            ],
        ),
        graph(
            "Log entries in memory",
            "short",
            "Raft log entries held in memory.",
            vec![q(sel("raft_num_log_entries", &p), "{{pod}}")],
        ),
        row("Configuration"),
        config_table(
            "ChunkServer configuration",
            "Every configuration item as the ChunkServer read it.",
            format!(r#"{{__name__=~"chunkserver_[0-9_]+_config_.+",{p}}}"#),
        ),
    ]);
    dashboard(
        "chunkserver",
        "Curve / ChunkServer",
        "The ChunkServers of a CurveCluster, from the metrics each serves on its port (brpc's /metrics).",
        target_variables(Component::ChunkServer),
        panels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_fit_the_grid_and_ids_are_unique() {
        for dashboard in all() {
            let panels = dashboard.json["panels"].as_array().unwrap();
            let mut ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), panels.len(), "{}", dashboard.name);
            for p in panels {
                let g = &p["gridPos"];
                assert!(
                    g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
                    "{}: {p}",
                    dashboard.name
                );
            }
        }
    }
}
