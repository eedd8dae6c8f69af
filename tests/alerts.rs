//! The PrometheusRule the operator renders for `examples/curvecluster-monitored.yaml`, checked
//! and unit-tested by Debian's real `promtool`: every alert fires when it should (labels and
//! every annotation as Prometheus renders them) and stays silent when it should not, also for
//! another cluster's bad series. `scripts/test.sh` installs promtool (package `prometheus`).

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};

const NS: &str = "curve";

fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string())
}

/// The rendered PrometheusRule's rules, by alert name.
fn rendered_rules() -> (Value, BTreeMap<String, Value>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/curvecluster-monitored.yaml"
    );
    let manifest = std::fs::read_to_string(path).unwrap();
    let stream = curve_operator::render::render(&manifest, NS).unwrap();
    let rule: Value = stream
        .split("---\n")
        .filter(|doc| doc.contains("kind: PrometheusRule"))
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .next()
        .expect("a PrometheusRule is rendered");
    let groups = rule["spec"]["groups"].clone();
    let by_name = groups[0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["alert"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    (json!({"groups": groups}), by_name)
}

/// One case: input series (`series`, `values` in promtool's notation), when to look, and the
/// alert expected then (`None`: silent).
struct Case {
    alert: &'static str,
    series: Vec<(String, &'static str)>,
    eval: &'static str,
    /// Labels of the firing alert beyond the rule's own, and what `{{ $value }}` and
    /// `{{ $labels.x }}` render to in its annotations.
    fires: Option<Firing>,
}

struct Firing {
    labels: Vec<(&'static str, &'static str)>,
    value: &'static str,
}

fn ours(metric: &str, name: &str, extra: &str) -> String {
    format!(r#"{metric}{{namespace="{NS}",name="{name}"{extra}}}"#)
}

fn curve(metric: &str, cluster: &str, extra: &str) -> String {
    format!(r#"{metric}{{namespace="{NS}",curve_cluster="{cluster}"{extra}}}"#)
}

/// Every alert with a firing and a silent case; the silent ones carry another cluster's
/// series that would fire.
fn cases() -> Vec<Case> {
    let fire = |labels: Vec<(&'static str, &'static str)>, value: &'static str| {
        Some(Firing { labels, value })
    };
    let mds = |pod: &'static str| format!(r#",curve_component="mds",pod="{pod}""#);
    // Whether the operator sees MDS `pod` of `cluster` as primary.
    let mds_primary = |cluster: &str, pod: &str, value: &'static str| {
        let pod = format!(r#",pod="{pod}""#);
        (ours("curve_operator_mds_primary", cluster, &pod), value)
    };
    // The RPC connections of MDS `pod` of `cluster` on `port`.
    let connections = |port: u16, cluster: &str, pod: &'static str, value: &'static str| {
        let metric = format!("rpc_server_{port}_connection_count");
        (curve(&metric, cluster, &mds(pod)), value)
    };
    // The operator's count of etcd members of `cluster`, 3, and of the healthy ones.
    let etcd_members = |cluster: &str, healthy: &'static str| {
        vec![
            (
                ours("curve_operator_etcd_healthy_members", cluster, ""),
                healthy,
            ),
            (ours("curve_operator_etcd_members", cluster, ""), "3x10"),
        ]
    };
    // The operator's count of `cluster`'s etcd members raising the alarm `state`.
    let etcd_alarms = |cluster: &str, state: &str| {
        ours(
            "curve_operator_etcd_alarms",
            cluster,
            &format!(r#",state="{state}""#),
        )
    };
    let mut cases = vec![
        Case {
            alert: "CurveMdsNoPrimary",
            series: vec![
                mds_primary("demo", "demo-mds-0", "0x10"),
                mds_primary("demo", "demo-mds-1", "0x10"),
            ],
            eval: "5m",
            fires: fire(vec![], "0"),
        },
        Case {
            alert: "CurveMdsNoPrimary",
            series: vec![
                mds_primary("demo", "demo-mds-0", "0x10"),
                mds_primary("demo", "demo-mds-1", "1x10"),
                mds_primary("other", "other-mds-0", "0x10"),
            ],
            eval: "5m",
            fires: None,
        },
        Case {
            alert: "CurveMdsSeveralPrimaries",
            series: vec![
                connections(6700, "demo", "demo-mds-0", "3x10"),
                connections(6700, "demo", "demo-mds-2", "1x10"),
            ],
            eval: "5m",
            fires: fire(vec![], "2"),
        },
        Case {
            alert: "CurveMdsSeveralPrimaries",
            series: vec![
                connections(6700, "demo", "demo-mds-0", "3x10"),
                connections(7700, "demo", "demo-mds-1", "1x10"),
                connections(6700, "other", "other-mds-0", "1x10"),
                connections(6700, "other", "other-mds-1", "1x10"),
            ],
            eval: "5m",
            fires: None,
        },
        Case {
            alert: "CurveEtcdNoQuorum",
            series: etcd_members("demo", "1x10"),
            eval: "5m",
            fires: fire(vec![("name", "demo")], "2"),
        },
        Case {
            alert: "CurveEtcdNoQuorum",
            series: vec![(
                curve(
                    "etcd_server_has_leader",
                    "demo",
                    r#",curve_component="etcd",pod="demo-etcd-0""#,
                ),
                "0x10",
            )],
            eval: "5m",
            fires: fire(vec![], "0"),
        },
        Case {
            alert: "CurveEtcdNoQuorum",
            series: [
                etcd_members("demo", "2x10"),
                vec![(
                    curve(
                        "etcd_server_has_leader",
                        "demo",
                        r#",curve_component="etcd",pod="demo-etcd-0""#,
                    ),
                    "1x10",
                )],
                etcd_members("other", "0x10"),
            ]
            .concat(),
            eval: "5m",
            fires: None,
        },
        Case {
            alert: "CurveEtcdAlarm",
            series: vec![
                (etcd_alarms("demo", "nospace"), "0x2 2x8"),
                (etcd_alarms("demo", "corrupt"), "0x10"),
            ],
            eval: "5m",
            fires: fire(vec![("name", "demo"), ("state", "nospace")], "2"),
        },
        Case {
            alert: "CurveEtcdAlarm",
            // Raised for 30 s only (disarmed), and another cluster's.
            series: vec![
                (etcd_alarms("demo", "nospace"), "0x2 1 0x7"),
                (etcd_alarms("other", "corrupt"), "1x10"),
            ],
            eval: "5m",
            fires: None,
        },
        Case {
            alert: "CurveEtcdMemberDown",
            series: etcd_members("demo", "2x10"),
            eval: "6m",
            fires: fire(vec![("name", "demo")], "2"),
        },
        Case {
            alert: "CurveEtcdMemberDown",
            // Down for 4 minutes only, then back.
            series: etcd_members("demo", "2x4 3x6"),
            eval: "6m",
            fires: None,
        },
    ];
    let cs = r#",component="chunkserver""#;
    // The operator's count of ChunkServer failure domains down, and of those tolerated.
    let failure_domains = |down: &'static str, tolerated: &'static str| {
        vec![
            (
                ours(
                    "curve_operator_chunkserver_failure_domains_down",
                    "demo",
                    "",
                ),
                down,
            ),
            (
                ours(
                    "curve_operator_chunkserver_failure_domains_tolerated",
                    "demo",
                    "",
                ),
                tolerated,
            ),
        ]
    };
    // ChunkServer `id`'s space left (`left` in promtool's notation) of 100 bytes, as the
    // primary MDS reports it.
    let disk = |id: u32, left: &'static str| {
        let space = |what: &str| {
            let metric = format!("topology_metric_chunkserver_id_{id}_chunk_size_{what}_bytes");
            curve(&metric, "demo", &mds("demo-mds-1"))
        };
        vec![(space("left"), left), (space("total"), "100x30")]
    };
    cases.extend([
        Case {
            alert: "CurveChunkServersDown",
            series: vec![
                (ours("curve_operator_desired_members", "demo", cs), "3x10"),
                (ours("curve_operator_ready_members", "demo", cs), "2x10"),
            ],
            eval: "6m",
            fires: fire(vec![("name", "demo"), ("component", "chunkserver")], "1"),
        },
        Case {
            alert: "CurveChunkServersDown",
            series: vec![
                (ours("curve_operator_desired_members", "demo", cs), "3x10"),
                (ours("curve_operator_ready_members", "demo", cs), "3x10"),
                (ours("curve_operator_desired_members", "other", cs), "3x10"),
                (ours("curve_operator_ready_members", "other", cs), "0x10"),
            ],
            eval: "6m",
            fires: None,
        },
        Case {
            alert: "CurveChunkServersBeyondTolerance",
            series: failure_domains("2x10", "1x10"),
            eval: "3m",
            fires: fire(vec![("name", "demo")], "2"),
        },
        Case {
            alert: "CurveChunkServersBeyondTolerance",
            series: failure_domains("1x10", "1x10"),
            eval: "3m",
            fires: None,
        },
        Case {
            alert: "CurveChunkServerDiskNearFull",
            series: [disk(7, "5x30"), disk(8, "50x30")].concat(),
            eval: "20m",
            fires: fire(vec![("chunkserver_id", "7")], "5%"),
        },
        Case {
            alert: "CurveChunkServerDiskNearFull",
            series: disk(8, "50x30"),
            eval: "20m",
            fires: None,
        },
        Case {
            alert: "CurveCopysetsUnhealthy",
            series: vec![(
                ours("curve_operator_copysets", "demo", r#",state="unhealthy""#),
                "0 0 3x10",
            )],
            eval: "8m",
            fires: fire(vec![("name", "demo"), ("state", "unhealthy")], "3"),
        },
        Case {
            // Unhealthy for less than 5 minutes, then healthy again; another cluster's count.
            alert: "CurveCopysetsUnhealthy",
            series: vec![
                (
                    ours("curve_operator_copysets", "demo", r#",state="unhealthy""#),
                    "3x3 0x10",
                ),
                (
                    ours("curve_operator_copysets", "other", r#",state="unhealthy""#),
                    "3x10",
                ),
            ],
            eval: "8m",
            fires: None,
        },
        Case {
            // 20 copysets left for 45 minutes: nothing moves.
            alert: "CurveChunkServerRetireStalled",
            series: vec![
                (ours("curve_operator_chunkserver_retiring", "demo", ""), "1x50"),
                (
                    ours("curve_operator_chunkserver_retire_copysets_left", "demo", ""),
                    "20x50",
                ),
            ],
            eval: "45m",
            fires: fire(vec![("name", "demo")], "1"),
        },
        Case {
            // One copyset moved every 5 minutes; another cluster retires nothing.
            alert: "CurveChunkServerRetireStalled",
            series: vec![
                (ours("curve_operator_chunkserver_retiring", "demo", ""), "1x50"),
                (
                    ours("curve_operator_chunkserver_retire_copysets_left", "demo", ""),
                    "20 20 20 20 20 19 19 19 19 19 18 18 18 18 18 17 17 17 17 17 16 16 16 16 16 15 15 15 15 15 14 14 14 14 14 13 13 13 13 13 12 12 12 12 12 11 11 11 11 11",
                ),
                (ours("curve_operator_chunkserver_retiring", "other", ""), "0x50"),
                (
                    ours("curve_operator_chunkserver_retire_copysets_left", "other", ""),
                    "0x50",
                ),
            ],
            eval: "45m",
            fires: None,
        },
        Case {
            alert: "CurveHealthUnknown",
            series: vec![(
                ours("curve_operator_curve_health", "demo", r#",state="unknown""#),
                "1x10",
            )],
            eval: "6m",
            fires: fire(vec![("name", "demo"), ("state", "unknown")], "1"),
        },
        Case {
            alert: "CurveHealthUnknown",
            series: vec![
                (
                    ours("curve_operator_curve_health", "demo", r#",state="unknown""#),
                    "0x10",
                ),
                (
                    ours(
                        "curve_operator_curve_health",
                        "other",
                        r#",state="unknown""#,
                    ),
                    "1x10",
                ),
            ],
            eval: "6m",
            fires: None,
        },
        Case {
            alert: "CurveOperatorReconcileFailing",
            series: vec![(
                ours("curve_operator_cluster_reconcile_failures", "demo", ""),
                "1+1x30",
            )],
            eval: "20m",
            fires: fire(vec![("name", "demo")], "21"),
        },
        Case {
            alert: "CurveOperatorReconcileFailing",
            series: vec![(
                ours("curve_operator_cluster_reconcile_failures", "demo", ""),
                "3x10 0x20",
            )],
            eval: "20m",
            fires: None,
        },
        Case {
            alert: "CurveRollStuck",
            series: vec![(ours("curve_operator_roll_stuck", "demo", ""), "1x10")],
            eval: "6m",
            fires: fire(vec![("name", "demo")], "1"),
        },
        Case {
            alert: "CurveRollStuck",
            series: vec![(ours("curve_operator_roll_stuck", "demo", ""), "0x10")],
            eval: "6m",
            fires: None,
        },
        Case {
            alert: "CurveClusterNotAvailable",
            series: vec![(ours("curve_operator_cluster_available", "demo", ""), "0x20")],
            eval: "11m",
            fires: fire(vec![("name", "demo")], "0"),
        },
        Case {
            alert: "CurveClusterNotAvailable",
            // Unavailable for 9 minutes: not yet.
            series: vec![(
                ours("curve_operator_cluster_available", "demo", ""),
                "1x2 0x20",
            )],
            eval: "11m",
            fires: None,
        },
        Case {
            alert: "CurveTargetDown",
            series: vec![(
                curve(
                    "up",
                    "demo",
                    r#",curve_component="chunkserver",pod="demo-chunkserver-0-0""#,
                ),
                "0x10",
            )],
            eval: "6m",
            fires: fire(
                vec![
                    ("curve_component", "chunkserver"),
                    ("pod", "demo-chunkserver-0-0"),
                ],
                "0",
            ),
        },
        Case {
            alert: "CurveTargetDown",
            series: vec![
                (
                    curve("up", "demo", r#",curve_component="mds",pod="demo-mds-0""#),
                    "1x10",
                ),
                (
                    curve("up", "other", r#",curve_component="mds",pod="other-mds-0""#),
                    "0x10",
                ),
            ],
            eval: "6m",
            fires: None,
        },
    ]);
    // spec.etcd.backup.schedule "0 * * * *": an hour apart, so 2 hours is too old. Series
    // start at time 0 and are sampled each minute: a value of 0 is as old as the eval time.
    let backup = |metric: &str, cluster: &str| ours(metric, cluster, "");
    let success = "curve_operator_etcd_backup_last_success_timestamp_seconds";
    let enabled = "curve_operator_etcd_backup_enabled_timestamp_seconds";
    cases.extend([
        Case {
            alert: "CurveEtcdBackupTooOld",
            series: vec![
                (backup(success, "demo"), "0x200"),
                (backup(enabled, "demo"), "0x200"),
            ],
            eval: "3h",
            fires: fire(vec![], "3h 0m 0s"),
        },
        // Turned on 3 hours ago, none succeeded since.
        Case {
            alert: "CurveEtcdBackupTooOld",
            series: vec![(backup(enabled, "demo"), "0x200")],
            eval: "3h",
            fires: fire(vec![], "3h 0m 0s"),
        },
        Case {
            alert: "CurveEtcdBackupTooOld",
            series: vec![
                // A snapshot every minute, taken 0 s before each sample.
                (backup(success, "demo"), "0+60x200"),
                (backup(enabled, "demo"), "0x200"),
                (backup(enabled, "other"), "0x200"),
            ],
            eval: "3h",
            fires: None,
        },
        // Turned on an hour ago: not yet.
        Case {
            alert: "CurveEtcdBackupTooOld",
            series: vec![(backup(enabled, "demo"), "7200x200")],
            eval: "3h",
            fires: None,
        },
    ]);
    cases
}

/// The annotations as Prometheus renders them for this firing.
fn rendered_annotations(rule: &Value, firing: &Firing) -> BTreeMap<String, String> {
    let annotations = rule["annotations"].as_object().unwrap();
    annotations
        .iter()
        .map(|(key, text)| {
            let mut text = text.as_str().unwrap().to_string();
            text = text.replace("{{ $value | humanizePercentage }}", firing.value);
            text = text.replace("{{ $value | humanizeDuration }}", firing.value);
            text = text.replace("{{ $value }}", firing.value);
            for (label, value) in &firing.labels {
                text = text.replace(&format!("{{{{ $labels.{label} }}}}"), value);
            }
            (key.clone(), text)
        })
        .collect()
}

fn test_file(rules: &BTreeMap<String, Value>) -> Value {
    let tests: Vec<Value> = cases()
        .iter()
        .map(|case| {
            let rule = &rules[case.alert];
            let expected = case.fires.iter().map(|firing| {
                let mut labels: BTreeMap<String, String> =
                    serde_json::from_value(rule["labels"].clone()).unwrap();
                for (label, value) in &firing.labels {
                    labels.insert(label.to_string(), value.to_string());
                }
                json!({"exp_labels": labels, "exp_annotations": rendered_annotations(rule, firing)})
            });
            json!({
                "interval": "1m",
                "input_series": case.series.iter()
                    .map(|(series, values)| json!({"series": series, "values": values}))
                    .collect::<Vec<_>>(),
                "alert_rule_test": [{
                    "eval_time": case.eval,
                    "alertname": case.alert,
                    "exp_alerts": expected.collect::<Vec<_>>(),
                }],
            })
        })
        .collect();
    json!({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
}

fn run(args: &[&str], dir: &std::path::Path) -> String {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool (Debian package prometheus; scripts/test.sh installs it): {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn every_alert_fires_when_it_should_and_only_then() {
    let (rule_file, rules) = rendered_rules();
    let tested: std::collections::BTreeSet<&str> = cases().iter().map(|c| c.alert).collect();
    let untested: Vec<&String> = rules
        .keys()
        .filter(|a| !tested.contains(a.as_str()))
        .collect();
    assert!(
        untested.is_empty(),
        "alerts without a test case: {untested:?}"
    );
    for alert in &tested {
        let kinds: Vec<bool> = cases()
            .iter()
            .filter(|c| c.alert == *alert)
            .map(|c| c.fires.is_some())
            .collect();
        assert!(
            kinds.contains(&true) && kinds.contains(&false),
            "{alert} needs a firing and a silent case"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), rule_file.to_string()).unwrap();
    std::fs::write(dir.path().join("tests.yaml"), test_file(&rules).to_string()).unwrap();
    let checked = run(&["check", "rules", "rules.yaml"], dir.path());
    assert!(
        checked.contains(&format!("{} rules found", rules.len())),
        "{checked}"
    );
    let tested = run(&["test", "rules", "tests.yaml"], dir.path());
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// The test above can fail: a case expecting the wrong value makes promtool fail.
#[test]
fn promtool_refuses_a_wrong_expectation() {
    let (rule_file, rules) = rendered_rules();
    let mut tests = test_file(&rules);
    let first = &mut tests["tests"][0]["alert_rule_test"][0]["exp_alerts"][0]["exp_labels"];
    first["severity"] = json!("info");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), rule_file.to_string()).unwrap();
    std::fs::write(dir.path().join("tests.yaml"), tests.to_string()).unwrap();
    let output = Command::new(promtool())
        .args(["test", "rules", "tests.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "a wrong severity must fail");
}
