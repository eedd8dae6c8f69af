//! Checking the Grafana dashboards of `curve_operator::dashboards` on a real Prometheus
//! ([`crate::prometheus`]): every expression of a dashboard with its panel ([`expressions`]),
//! the template variables filled in as Grafana fills them ([`Substitution`]), and a
//! [`Checker`] that sends each to Prometheus's query API and says what is wrong with it. An
//! expression must parse; one over the operator's own metrics (`curve_operator_*`) or over
//! etcd's must return data; one over Curve daemons' metrics must use only names of
//! [`CURVE_METRICS`], each derived from Curve's source. Used by `tests/dashboards.rs` (the
//! operator's `/metrics` and a real etcd cluster, no Kubernetes) and by scenario o (the
//! PodMonitors' targets of a running cluster).

mod curve_metrics;

use std::collections::{BTreeMap, BTreeSet};

pub use curve_metrics::{CURVE_METRICS, CurveMetric, Exposed, exposed_name};
use serde_json::Value;

use crate::prometheus::Prometheus;

/// One expression of a dashboard: a panel's query, or the series a variable's
/// `label_values(series, label)` lists (`label` then set).
#[derive(Clone, Debug)]
pub struct Expr {
    /// The dashboard's uid.
    pub dashboard: String,
    /// The panel's title, or `variable <name>`.
    pub panel: String,
    pub expr: String,
    pub label: Option<String>,
}

/// Every expression of a dashboard's JSON: its query variables' series, then its panels'
/// targets.
pub fn expressions(dashboard: &Value) -> Vec<Expr> {
    let uid = dashboard["uid"].as_str().unwrap().to_string();
    let mut out = vec![];
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"].as_str().unwrap();
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{uid}: not label_values(…): {query}"));
        let (series, label) = inner.rsplit_once(", ").unwrap();
        out.push(Expr {
            dashboard: uid.clone(),
            panel: format!("variable {}", variable["name"].as_str().unwrap()),
            expr: series.to_string(),
            label: Some(label.to_string()),
        });
    }
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(Expr {
                dashboard: uid.clone(),
                panel: panel["title"].as_str().unwrap().to_string(),
                expr: target["expr"].as_str().unwrap().to_string(),
                label: None,
            });
        }
    }
    out
}

/// `$name` references in `text` (not `$1`, label_replace's group).
pub fn variables_in(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

/// What the template variables become, as Grafana sends an expression for one CurveCluster.
#[derive(Clone, Debug)]
pub struct Substitution {
    pub namespace: String,
    pub cluster: String,
    /// What `$__rate_interval` and `$__interval` become.
    pub interval: String,
    /// Pods per component: `$pod` becomes all of them (`<cluster>-<component>-<i>`).
    pub pods: usize,
}

impl Substitution {
    /// The pods the `pod` variable selects, as Grafana writes a multi-value selection into a
    /// regex: every pod of the dashboard's component.
    fn pods_of(&self, dashboard: &str) -> String {
        let component = dashboard.strip_prefix("curve-").unwrap_or(dashboard);
        let pods: Vec<String> = (0..self.pods)
            .map(|i| format!("{}-{component}-{i}", self.cluster))
            .collect();
        format!("({})", pods.join("|"))
    }

    /// The expression as Grafana sends it for the namespace, the cluster and every pod.
    pub fn apply(&self, expr: &Expr) -> String {
        expr.expr
            .replace("$__rate_interval", &self.interval)
            .replace("$__interval", &self.interval)
            .replace("$namespace", &self.namespace)
            .replace("$cluster", &self.cluster)
            .replace("$pod", &self.pods_of(&expr.dashboard))
    }
}

/// One vector selector of an expression: the metric name (plain, or `__name__` matchers) and
/// the label matchers.
#[derive(Debug)]
pub struct Selector {
    pub name: Option<String>,
    pub matchers: Vec<Matcher>,
}

/// `label op "value"`.
pub type Matcher = (String, String, String);

impl Selector {
    /// The plain name or the `__name__=~` regex, as written.
    pub fn pattern(&self) -> Option<&str> {
        self.name.as_deref().or_else(|| {
            self.matchers
                .iter()
                .find(|(l, op, _)| l == "__name__" && (op == "=" || op == "=~"))
                .map(|(_, _, v)| v.as_str())
        })
    }

    pub fn label(&self, label: &str) -> Option<&str> {
        self.matchers
            .iter()
            .find(|(l, op, _)| l == label && op == "=")
            .map(|(_, _, v)| v.as_str())
    }
}

/// The vector selectors of a PromQL expression: a small scanner that skips strings, range
/// brackets, functions, aggregations, keywords and label lists (`by (…)`, `on (…)`).
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const KEYWORDS: [&str; 5] = ["and", "or", "unless", "bool", "offset"];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let skip_space = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let close = |from: usize, close: char| -> Result<usize, String> {
        chars[from..]
            .iter()
            .position(|&c| c == close)
            .map(|p| from + p + 1)
            .ok_or_else(|| format!("no {close:?} after position {from} in {expr}"))
    };
    let string_end = |from: usize| -> Result<usize, String> {
        let quote = chars[from];
        let mut i = from + 1;
        while i < chars.len() {
            match chars[i] {
                '\\' => i += 2,
                c if c == quote => return Ok(i + 1),
                _ => i += 1,
            }
        }
        Err(format!("unterminated string in {expr}"))
    };
    let matchers = |from: usize| -> Result<(Vec<Matcher>, usize), String> {
        let mut out = vec![];
        let mut i = from + 1;
        loop {
            i = skip_space(i);
            match chars.get(i) {
                Some('}') => return Ok((out, i + 1)),
                Some(',') => i += 1,
                Some(_) => {
                    let start = i;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    let label: String = chars[start..i].iter().collect();
                    i = skip_space(i);
                    let op_start = i;
                    while i < chars.len() && "=!~".contains(chars[i]) {
                        i += 1;
                    }
                    let op: String = chars[op_start..i].iter().collect();
                    i = skip_space(i);
                    if label.is_empty() || op.is_empty() || chars.get(i) != Some(&'"') {
                        return Err(format!("bad matcher at {start} in {expr}"));
                    }
                    let end = string_end(i)?;
                    let value: String = chars[i + 1..end - 1].iter().collect();
                    out.push((label, op, value));
                    i = end;
                }
                None => return Err(format!("unclosed {{ in {expr}")),
            }
        }
    };
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            i = string_end(i)?;
        } else if c == '[' {
            i = close(i, ']')?;
        } else if c == '{' {
            let (m, next) = matchers(i)?;
            out.push(Selector {
                name: None,
                matchers: m,
            });
            i = next;
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_space(i);
            if LABEL_LISTS.contains(&word.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = close(next, ')')?;
                }
            } else if AGGREGATIONS.contains(&word.as_str())
                || KEYWORDS.contains(&word.as_str())
                || chars.get(next) == Some(&'(')
            {
                // a function, aggregation or keyword
            } else {
                let mut m = vec![];
                if chars.get(next) == Some(&'{') {
                    let (found, after) = matchers(next)?;
                    m = found;
                    i = after;
                }
                out.push(Selector {
                    name: Some(word),
                    matchers: m,
                });
            }
        } else {
            i += 1;
        }
    }
    Ok(out)
}

/// What a checked expression showed.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Over the operator's or etcd's metrics: it returned this many series.
    Data(usize),
    /// Over Curve daemons' metrics: it parses and every name is listed; it returned this many
    /// series (none is required: no real Curve daemon runs in the tests).
    Parses(usize),
}

/// Sends dashboard expressions to a Prometheus that scrapes the operator (`curve_operator_*`)
/// and etcd members (targets labelled `curve_component="etcd"`).
pub struct Checker<'a> {
    pub prometheus: &'a Prometheus,
    pub substitution: Substitution,
    /// Names Prometheus scraped from the operator and from etcd.
    pub operator_names: BTreeSet<String>,
    pub etcd_names: BTreeSet<String>,
}

impl<'a> Checker<'a> {
    /// Reads the names Prometheus has scraped so far from the operator and from etcd.
    pub async fn new(prometheus: &'a Prometheus, substitution: Substitution) -> Checker<'a> {
        let names = |selector: &'static str| async move {
            (prometheus.names(selector).await)
                .unwrap_or_else(|e| panic!("names of {selector}: {e}"))
        };
        Checker {
            prometheus,
            substitution,
            operator_names: names(r#"{__name__=~"curve_operator_.+"}"#).await,
            etcd_names: names(r#"{curve_component="etcd"}"#).await,
        }
    }

    /// Sends the expression (variables substituted) to Prometheus; `Err` says what is wrong.
    /// `used` collects the CURVE_METRICS patterns it uses.
    pub async fn check(
        &self,
        expr: &Expr,
        used: &mut BTreeSet<&'static str>,
    ) -> Result<Outcome, String> {
        let sent = self.substitution.apply(expr);
        if let Some(left) = variables_in(&sent).first() {
            return Err(format!("${left} is not substituted: {sent}"));
        }
        let result = self
            .prometheus
            .query(&sent)
            .await
            .map_err(|e| format!("Prometheus refuses {sent}: {e}"))?;
        let found = selectors(&sent)?;
        if found.is_empty() {
            return Err(format!("selects no series: {sent}"));
        }
        let mut needs_data = true;
        for selector in &found {
            let pattern = selector
                .pattern()
                .ok_or_else(|| format!("a selector without a metric name in {sent}"))?;
            if pattern.starts_with("curve_operator_") {
                if !self.operator_names.contains(pattern) {
                    return Err(format!(
                        "{pattern} is not among the operator's metrics (scraped: {:?})",
                        self.operator_names
                    ));
                }
            } else if pattern == "up" {
                // Prometheus's own series per target: required only of etcd's targets (no
                // real Curve daemon runs in the tests).
                needs_data &= selector.label("curve_component") == Some("etcd");
            } else if self.etcd_names.contains(pattern) {
                // etcd's own, scraped from the real etcd.
            } else if let Some(metric) = CURVE_METRICS.iter().find(|m| m.pattern == pattern) {
                used.insert(metric.pattern);
                needs_data = false;
            } else {
                return Err(format!(
                    "{pattern} is neither the operator's, nor served by etcd, nor in CURVE_METRICS: {sent}"
                ));
            }
        }
        if !needs_data {
            return Ok(Outcome::Parses(result.len()));
        }
        if result.is_empty() {
            return Err(format!("returned no data: {sent}"));
        }
        if let Some(label) = &expr.label
            && let Some(bad) = result.iter().find(|r| r["metric"][label].is_null())
        {
            return Err(format!("a series without label {label}: {bad}"));
        }
        Ok(Outcome::Data(result.len()))
    }

    /// Checks every expression of `dashboards`.
    pub async fn check_all(&self, dashboards: &[curve_operator::dashboards::Dashboard]) -> Report {
        let mut report = Report::default();
        for dashboard in dashboards {
            for expr in expressions(&dashboard.json) {
                let count = report.counts.entry(expr.dashboard.clone()).or_default();
                count.all += 1;
                match self.check(&expr, &mut report.used).await {
                    Ok(Outcome::Data(_)) => count.data += 1,
                    Ok(Outcome::Parses(series)) => {
                        count.parses += 1;
                        count.parses_with_data += usize::from(series > 0);
                    }
                    Err(e) => {
                        (report.failures).push(format!("{} / {}: {e}", expr.dashboard, expr.panel))
                    }
                }
            }
        }
        report
    }
}

/// The expressions of one dashboard, by what they showed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub all: usize,
    /// Over the operator's or etcd's metrics, with data.
    pub data: usize,
    /// Over Curve daemons' metrics: parse, names listed.
    pub parses: usize,
    /// Of those, the ones that returned data anyway (the MDS stand-ins' brpc-style metrics).
    pub parses_with_data: usize,
}

/// What [`Checker::check_all`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// By dashboard uid.
    pub counts: BTreeMap<String, Counts>,
    /// `<dashboard> / <panel>: <what is wrong>`.
    pub failures: Vec<String>,
    /// The CURVE_METRICS patterns the expressions use.
    pub used: BTreeSet<&'static str>,
}

impl Report {
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for c in self.counts.values() {
            total.all += c.all;
            total.data += c.data;
            total.parses += c.parses;
            total.parses_with_data += c.parses_with_data;
        }
        total
    }

    /// The CURVE_METRICS patterns no expression uses.
    pub fn unused(&self) -> Vec<&'static str> {
        (CURVE_METRICS.iter())
            .map(|m| m.pattern)
            .filter(|p| !self.used.contains(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_finds_every_selector() {
        let found = selectors(
            r#"histogram_quantile(0.99, sum by (pod, le) (rate(a_bucket{x="1",pod=~"p|q"}[1m]))) / on (pod) group_left max(label_replace({__name__=~"b_(.+)",y!="}"}, "l", "$1", "__name__", "b_(.+)")) + 2 * c"#,
        )
        .unwrap();
        let patterns: Vec<Option<&str>> = found.iter().map(Selector::pattern).collect();
        assert_eq!(patterns, [Some("a_bucket"), Some("b_(.+)"), Some("c")]);
        assert_eq!(
            found[0].matchers[1],
            ("pod".into(), "=~".into(), "p|q".into())
        );
    }
}
