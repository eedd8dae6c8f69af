//! The documentation kept true by the code: `docs/reference/metrics.md` and
//! `docs/reference/alerts.md` are generated (golden files: `UPDATE_GOLDEN=1 cargo test --test
//! docs_reference` rewrites them), the field table of `docs/user/curvecluster.md` is checked
//! against the CRD, every CurveCluster a page shows must render, and every relative link of the
//! Markdown pages must lead to a file and heading that exist.

#[path = "support/golden.rs"]
mod golden;

use std::collections::BTreeMap;
use std::path::{Component as PathPart, Path, PathBuf};
use std::time::Duration;

use curve_operator::names::Component;
use curve_operator::runtime::metrics::{Metrics, ReconcileResult, ReconcileStep, StepTimes};
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A table cell: a `|` would end it.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

// ---------------------------------------------------------------------------------------------
// docs/reference/metrics.md

/// One metric family of an OpenMetrics exposition.
#[derive(Debug, Default, PartialEq)]
struct Family {
    name: String,
    kind: String,
    help: String,
    unit: Option<String>,
    /// Label names of its samples, in first-seen order (`le` of histogram buckets left out).
    labels: Vec<String>,
    samples: usize,
}

impl Family {
    /// The name a query uses: counters are read as `<name>_total`.
    fn series_name(&self) -> String {
        if self.kind == "counter" {
            format!("{}_total", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// The label names of a sample line's `{a="x",b="y"}` part.
fn label_names(labels: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = labels;
    while let Some((name, after)) = rest.split_once("=\"") {
        names.push(name.trim_start_matches(',').to_string());
        // Skip the quoted value, escapes included.
        let mut escaped = false;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                let closes = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                closes
            })
            .map_or(after.len(), |(i, _)| i + 1);
        rest = &after[end..];
    }
    names
}

/// The families of an OpenMetrics text, in exposition order.
fn families(exposition: &str) -> Vec<Family> {
    let mut families: Vec<Family> = Vec::new();
    for line in exposition.lines() {
        if let Some(meta) = line.strip_prefix("# ") {
            let mut words = meta.splitn(3, ' ');
            let (Some(keyword), Some(name)) = (words.next(), words.next()) else {
                continue;
            };
            let text = words.next().unwrap_or_default().to_string();
            if families.last().is_none_or(|f| f.name != name) {
                families.push(Family {
                    name: name.to_string(),
                    ..Family::default()
                });
            }
            let family = families.last_mut().expect("just pushed");
            match keyword {
                "HELP" => family.help = text,
                "TYPE" => family.kind = text,
                "UNIT" => family.unit = Some(text),
                _ => {}
            }
            continue;
        }
        let Some(family) = families.last_mut() else {
            continue;
        };
        let Some(rest) = line.strip_prefix(&family.name) else {
            continue;
        };
        family.samples += 1;
        if let Some((_, labels)) = rest.split_once('{') {
            let labels = labels.split_once('}').map_or(labels, |(inside, _)| inside);
            for name in label_names(labels) {
                if name != "le" && !family.labels.contains(&name) {
                    family.labels.push(name);
                }
            }
        }
    }
    families
}

/// Every metric of the operator, with a series of each so that every family shows its labels.
fn exposition_with_every_series() -> String {
    let metrics = Metrics::new();
    let (ns, name) = ("ns", "demo");
    metrics.reconcile_finished(ReconcileResult::Success, Duration::from_millis(20));
    let mut steps = StepTimes::default();
    for step in ReconcileStep::ALL {
        steps.add(step, Duration::from_millis(5));
    }
    metrics.reconcile_steps(&steps);
    metrics.health_read(Duration::from_millis(300));
    metrics.kube_request("get", "pods");
    metrics.primary_changed(ns, name);
    metrics.set_ready(ns, name, Component::Etcd, 3);
    metrics.set_desired(ns, name, Component::Etcd, 3);
    metrics.set_primary(ns, name, Some("demo-mds-0"), &["demo-mds-0".to_string()]);
    metrics.set_etcd_members(ns, name, 3, 3);
    metrics.set_etcd_alarms(ns, name, &[]);
    metrics.set_available(ns, name, true);
    metrics.set_reconcile_failures(ns, name, 0);
    metrics.set_roll(ns, name, false, false);
    metrics.set_failure_domains(ns, name, 0, 1);
    let health: curve_operator::api::HealthStatus = serde_json::from_value(serde_json::json!({
        "verdict": "Healthy",
        "copysets": {"total": 100, "healthy": 100, "unhealthy": 0},
        "chunkservers": {"online": 3, "unstable": 0, "offline": 0, "readwrite": 3, "pendding": 0, "retired": 0},
        "logicalPools": [{"name": "pool1", "capacityBytes": 1, "usedBytes": 1, "allocatedBytes": 1}],
    }))
    .expect("a health status");
    metrics.set_health(ns, name, &health);
    let backup: curve_operator::api::EtcdBackupStatus = serde_json::from_value(serde_json::json!({
        "enabledAt": "2026-12-07T00:00:00Z",
        "lastSuccess": {"name": "etcd-20261207T030000Z", "time": "2026-12-07T03:00:00Z", "revision": 7,
            "size": 20512, "location": "pvc/demo-etcd-backup/snapshots/etcd-20261207T030000Z.db",
            "member": "demo-etcd-0", "job": "demo-etcd-backup-20261207-0300"},
        "lastFailure": {"time": "2026-12-06T03:00:00Z", "reason": "x", "job": "demo-etcd-backup-20261206-0300"},
    }))
    .expect("a backup status");
    metrics.set_etcd_backup(ns, name, Some(&backup));
    metrics.encode()
}

/// `docs/reference/metrics.md` from the operator's metrics exposition.
fn metrics_reference(exposition: &str) -> String {
    let mut out = String::from(
        "# The operator's metrics\n\
         \n\
         Generated from `curve_operator::runtime::metrics::Metrics` by `tests/docs_reference.rs`\n\
         (`UPDATE_GOLDEN=1 cargo test --test docs_reference` rewrites it); do not edit.\n\
         \n\
         The operator serves them at `/metrics` on `--http-addr` (default `0.0.0.0:8080`), in\n\
         the OpenMetrics text format. The series labelled `namespace` and `name` are per\n\
         CurveCluster (they name the cluster, not the operator's pod: scrape with\n\
         `honor_labels`, as the chart's ServiceMonitor does); the others are per operator.\n\
         [monitoring.md](../user/monitoring.md) says how the alerts and dashboards use them.\n\
         \n\
         | metric | type | labels | meaning |\n\
         |---|---|---|---|\n",
    );
    for family in families(exposition) {
        let labels = if family.labels.is_empty() {
            "—".to_string()
        } else {
            family
                .labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let unit = family
            .unit
            .as_deref()
            .map(|u| format!(" ({u})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {}{unit} | {labels} | {} |\n",
            family.series_name(),
            family.kind,
            cell(&family.help)
        ));
    }
    out
}

#[test]
fn every_metric_family_has_a_series_so_its_labels_show() {
    let families = families(&exposition_with_every_series());
    assert!(families.len() >= 15, "{families:?}");
    for family in &families {
        assert!(
            family.samples > 0 && !family.kind.is_empty() && !family.help.is_empty(),
            "{} has no series, type or help: set it in exposition_with_every_series",
            family.name
        );
    }
}

#[test]
fn the_metrics_reference_is_generated_from_the_metrics() {
    golden::check(
        &repo().join("docs/reference/metrics.md"),
        &metrics_reference(&exposition_with_every_series()),
        "metrics_reference (tests/docs_reference.rs)",
    );
}

#[test]
fn the_families_parser_reads_names_types_units_and_labels() {
    let text = "# HELP a_seconds Time.\n# TYPE a_seconds histogram\n# UNIT a_seconds seconds\n\
                a_seconds_bucket{step=\"x,\\\"y\",le=\"0.1\"} 0\na_seconds_sum 0\n\
                # HELP b Things.\n# TYPE b counter\nb_total{verb=\"get\",resource=\"pods\"} 1\n# EOF\n";
    let parsed = families(text);
    assert_eq!(parsed.len(), 2, "{parsed:?}");
    assert_eq!(
        (parsed[0].kind.as_str(), parsed[0].unit.as_deref()),
        ("histogram", Some("seconds"))
    );
    assert_eq!(parsed[0].labels, ["step"]);
    assert_eq!(parsed[1].series_name(), "b_total");
    assert_eq!(parsed[1].labels, ["verb", "resource"]);
}

// ---------------------------------------------------------------------------------------------
// docs/reference/alerts.md

/// The namespace the alerts are rendered in for the reference.
const ALERTS_NAMESPACE: &str = "default";
const MONITORED_EXAMPLE: &str = "examples/curvecluster-monitored.yaml";

/// The PrometheusRule the operator builds for the monitored example.
fn example_prometheus_rule() -> Value {
    let stream =
        curve_operator::render::render(&read(MONITORED_EXAMPLE), ALERTS_NAMESPACE).unwrap();
    stream
        .split("---\n")
        .filter(|doc| doc.contains("kind: PrometheusRule"))
        .map(|doc| serde_saphyr::from_str(doc).unwrap())
        .next()
        .expect("the monitored example renders a PrometheusRule")
}

/// GitHub's anchor of a heading made of a name alone.
fn anchor_of_name(name: &str) -> String {
    name.to_lowercase()
}

/// `docs/reference/alerts.md` from a PrometheusRule.
fn alerts_reference(rule: &Value) -> String {
    let group = &rule["spec"]["groups"][0];
    let rules = group["rules"].as_array().expect("rules");
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let mut out = format!(
        "# The alerts of a cluster\n\
         \n\
         Generated from the PrometheusRule the operator builds for\n\
         `{MONITORED_EXAMPLE}` in namespace `{ALERTS_NAMESPACE}`, by\n\
         `tests/docs_reference.rs` (`UPDATE_GOLDEN=1 cargo test --test docs_reference` rewrites\n\
         it); do not edit.\n\
         \n\
         With `spec.monitoring.enabled` and `rules` (the default) the operator applies the\n\
         PrometheusRule `<cluster>-alerts` with one group, `curve.<namespace>.<cluster>` (here\n\
         `{}`). Every alert carries the labels `severity`, `namespace` and\n\
         `curve_cluster`, and the annotations `summary`, `description` and `runbook`. The\n\
         expressions below are those of the cluster `{ALERTS_NAMESPACE}/demo`; another cluster's\n\
         alerts name it the same way.\n\
         [monitoring.md](../user/monitoring.md#alerts) says how they are tested.\n\
         \n\
         | alert | severity | for | summary |\n\
         |---|---|---|---|\n",
        text(&group["name"])
    );
    for rule in rules {
        let name = text(&rule["alert"]);
        out.push_str(&format!(
            "| [{name}](#{}) | {} | {} | {} |\n",
            anchor_of_name(&name),
            text(&rule["labels"]["severity"]),
            text(&rule["for"]),
            cell(&text(&rule["annotations"]["summary"]))
        ));
    }
    for rule in rules {
        out.push_str(&format!(
            "\n## {}\n\n\
             **{}** ({}, after {}). {}\n\n\
             Runbook: {}\n\n\
             ```promql\n{}\n```\n",
            text(&rule["alert"]),
            text(&rule["annotations"]["summary"]),
            text(&rule["labels"]["severity"]),
            text(&rule["for"]),
            text(&rule["annotations"]["description"]),
            text(&rule["annotations"]["runbook"]),
            text(&rule["expr"]),
        ));
    }
    out
}

#[test]
fn the_alerts_reference_is_generated_from_the_prometheus_rule() {
    golden::check(
        &repo().join("docs/reference/alerts.md"),
        &alerts_reference(&example_prometheus_rule()),
        "alerts_reference (tests/docs_reference.rs)",
    );
}

// ---------------------------------------------------------------------------------------------
// docs/user/curvecluster.md: the field table against the CRD

/// What the field table must say in its default column for a field of the CRD's spec.
fn default_cell(default: Option<&Value>, required: bool) -> String {
    match default {
        Some(Value::String(text)) => format!("`{text}`"),
        Some(value) => format!("`{value}`"),
        None if required => "required".to_string(),
        None => "—".to_string(),
    }
}

/// Every field of the spec schema down to the values a user sets (Kubernetes' own types, such
/// as resources, as one field), each with its default cell. A default set on an enclosing
/// object (`etcd: {storage: {size: 10Gi}}`) is the default of the fields it holds.
fn spec_fields(
    path: &str,
    schema: &Value,
    inherited: Option<&Value>,
    required: bool,
    out: &mut BTreeMap<String, String>,
) {
    let default = schema.get("default").or(inherited);
    let properties = schema.get("properties").and_then(Value::as_object);
    match properties {
        Some(properties) if !path.ends_with("resources") => {
            let required_here: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (key, child) in properties {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                spec_fields(
                    &child_path,
                    child,
                    default.and_then(|d| d.get(key)),
                    required_here.contains(&key.as_str()),
                    out,
                );
            }
        }
        _ => {
            out.insert(path.to_string(), default_cell(default, required));
        }
    }
}

/// The rows `| `field` | default | ...` of the section `## Fields` of a page.
fn documented_fields(page: &str) -> BTreeMap<String, String> {
    page.lines()
        .skip_while(|line| *line != "## Fields")
        .skip(1)
        .take_while(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| {
            let (field, rest) = rest.split_once("` | ")?;
            let default = rest.split(" | ").next()?;
            Some((field.to_string(), default.to_string()))
        })
        .collect()
}

#[test]
fn the_field_table_lists_every_spec_field_of_the_crd_with_its_default() {
    let crd: Value = serde_saphyr::from_str(&curve_operator::api::crd_yaml()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut expected = BTreeMap::new();
    spec_fields("", spec, None, true, &mut expected);
    assert!(expected.len() >= 30, "{expected:?}");
    assert_eq!(expected["etcd.storage.size"], "`10Gi`");
    assert_eq!(expected["chunkservers.storage.size"], "required");
    let documented = documented_fields(&read("docs/user/curvecluster.md"));
    assert_eq!(
        documented, expected,
        "docs/user/curvecluster.md's field table (field → default) against the CRD"
    );
}

// ---------------------------------------------------------------------------------------------
// Every CurveCluster the documentation shows is one the operator accepts.

/// The Markdown pages of the repository (relative paths): the READMEs and docs/.
fn markdown_pages() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                let relative = path.strip_prefix(repo()).unwrap();
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut pages: Vec<String> = [
        "README.md",
        "e2e/README.md",
        "emulation/README.md",
        "charts/curve-operator/README.md",
    ]
    .map(String::from)
    .to_vec();
    walk(&repo().join("docs"), &mut pages);
    pages
}

/// The fenced ```yaml blocks of a page.
fn yaml_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        let fence = line.trim_start();
        match current.as_mut() {
            Some(_) if fence == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if fence == "```yaml" => current = Some(String::new()),
            None => {}
        }
    }
    blocks
}

#[test]
fn every_curvecluster_in_the_documentation_renders() {
    let mut shown = 0;
    for page in markdown_pages() {
        for (i, block) in yaml_blocks(&read(&page)).iter().enumerate() {
            if !block.contains("kind: CurveCluster") {
                continue;
            }
            shown += 1;
            if let Err(e) = curve_operator::render::render(block, "default") {
                panic!("{page}, yaml block {}: {e}", i + 1);
            }
        }
    }
    assert!(shown >= 2, "only {shown} CurveClusters found in the pages");
}

// ---------------------------------------------------------------------------------------------
// Links

/// What a link's path leads to.
enum Target {
    Missing,
    Directory,
    Page(String),
    OtherFile,
}

/// GitHub's anchors of a page's headings (outside code blocks): lower case, spaces to '-',
/// punctuation other than '-' and '_' dropped, a repeated heading suffixed `-1`, `-2`, ….
fn anchors(page: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = Vec::new();
    for line in prose_lines(page) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let count = seen.entry(slug.clone()).or_default();
        anchors.push(if *count == 0 {
            slug
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// The lines of a page outside fenced code blocks.
fn prose_lines(page: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    page.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The targets of a page's inline links `[text](target)`, outside code blocks and spans.
fn link_targets(page: &str) -> Vec<String> {
    let link = regex::Regex::new(r"\]\(([^()\s]+)\)").unwrap();
    prose_lines(page)
        .flat_map(|line| {
            // Code spans are the odd-numbered pieces between backticks.
            line.split('`')
                .step_by(2)
                .flat_map(|prose| link.captures_iter(prose).map(|c| c[1].to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `base` (a directory relative to the repository) joined with `relative`, `..` resolved;
/// `None` when it leaves the repository.
fn resolve(base: &Path, relative: &str) -> Option<PathBuf> {
    let joined = base.join(relative);
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for part in joined.components() {
        match part {
            PathPart::Normal(name) => parts.push(name),
            PathPart::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    Some(parts.iter().collect())
}

/// Every relative link of the page `source` whose file or heading does not exist, as
/// `source: target (why)`.
fn broken_links(source: &str, page: &str, lookup: &dyn Fn(&Path) -> Target) -> Vec<String> {
    let base = Path::new(source).parent().unwrap_or(Path::new(""));
    let mut broken = Vec::new();
    for target in link_targets(page) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (target.as_str(), None),
        };
        let linked = if path.is_empty() {
            Target::Page(page.to_string())
        } else {
            match resolve(base, path) {
                Some(resolved) => lookup(&resolved),
                None => Target::Missing,
            }
        };
        let why = match (linked, fragment) {
            (Target::Missing, _) => Some("no such file".to_string()),
            (Target::Page(text), Some(fragment))
                if !anchors(&text).iter().any(|a| a == fragment) =>
            {
                Some(format!("no heading #{fragment}"))
            }
            (Target::Directory | Target::OtherFile, Some(_)) => {
                Some("an anchor into a file that is not a Markdown page".to_string())
            }
            _ => None,
        };
        if let Some(why) = why {
            broken.push(format!("{source}: {target} ({why})"));
        }
    }
    broken
}

fn lookup_in_repo(path: &Path) -> Target {
    let full = repo().join(path);
    if full.is_dir() {
        Target::Directory
    } else if !full.is_file() {
        Target::Missing
    } else if path.extension().is_some_and(|e| e == "md") {
        Target::Page(std::fs::read_to_string(full).unwrap())
    } else {
        Target::OtherFile
    }
}

#[test]
fn every_relative_link_of_the_documentation_leads_somewhere() {
    let pages = markdown_pages();
    assert!(pages.len() >= 15, "{pages:?}");
    let mut links = 0;
    let mut broken = Vec::new();
    for page in &pages {
        let text = read(page);
        links += link_targets(&text).len();
        broken.extend(broken_links(page, &text, &lookup_in_repo));
    }
    assert!(links >= 50, "only {links} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_finds_missing_files_and_headings() {
    let files: BTreeMap<PathBuf, &str> = BTreeMap::from([
        (
            PathBuf::from("docs/user/a.md"),
            "# A\n\n## The `run` flags\n\n## Twice\n\n## Twice\n",
        ),
        (PathBuf::from("src/lib.rs"), "//!"),
    ]);
    let lookup = |path: &Path| match files.get(path) {
        Some(text) if path.extension().is_some_and(|e| e == "md") => Target::Page(text.to_string()),
        Some(_) => Target::OtherFile,
        None if path == Path::new("docs") => Target::Directory,
        None => Target::Missing,
    };
    let page = "# B\n\
                [ok](a.md#the-run-flags) [ok](a.md#twice-1) [ok](../../src/lib.rs) [ok](#b)\n\
                [ok](https://example.com/x.md) `[code](missing.md)`\n\
                ```\n[fenced](missing.md)\n```\n\
                [gone](missing.md) [gone](a.md#nowhere) [gone](../../src/lib.rs#L1) [gone](../../../../x.md)\n";
    assert_eq!(
        broken_links("docs/user/b.md", page, &lookup),
        [
            "docs/user/b.md: missing.md (no such file)",
            "docs/user/b.md: a.md#nowhere (no heading #nowhere)",
            "docs/user/b.md: ../../src/lib.rs#L1 (an anchor into a file that is not a Markdown page)",
            "docs/user/b.md: ../../../../x.md (no such file)",
        ]
    );
}
