//! The operator's `/metrics` as data: the Prometheus text exposition (format 0.0.4, and the
//! OpenMetrics text the `prometheus-client` crate writes) parsed into samples keyed by
//! (metric name, labels).

use std::collections::{BTreeMap, BTreeSet};

/// The labels of one series, by name.
pub type Labels = BTreeMap<String, String>;

/// The operator's count of its Kubernetes API requests, by verb and resource.
pub const KUBE_REQUESTS: &str = "curve_operator_kube_requests_total";

/// The value of label `name`, `?` where the series has none.
pub fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).map_or("?", String::as_str)
}

/// Every sample of one exposition, and the metric families it declares.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// (sample name, labels) → value. The sample name is as written, e.g.
    /// `curve_operator_reconciles_total` or `..._bucket`.
    pub samples: BTreeMap<(String, Labels), f64>,
    /// Names of `# TYPE`, `# HELP` and `# UNIT` lines. OpenMetrics names a counter family
    /// without the `_total` of its samples.
    pub declared: BTreeSet<String>,
}

impl Metrics {
    /// Parses an exposition; an error names the line and what is wrong with it.
    pub fn parse(text: &str) -> Result<Metrics, String> {
        let mut metrics = Metrics::default();
        for (number, line) in text.lines().enumerate() {
            let at = |why: String| format!("line {}: {why}: {line:?}", number + 1);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.split_whitespace();
                if let (Some("TYPE" | "HELP" | "UNIT"), Some(name)) = (words.next(), words.next()) {
                    metrics.declared.insert(name.to_string());
                }
                continue;
            }
            let (name, labels, value) = parse_sample(line).map_err(at)?;
            if metrics.samples.insert((name, labels), value).is_some() {
                return Err(at("the series appears twice".into()));
            }
        }
        Ok(metrics)
    }

    /// Whether the exposition has the metric `name`: a sample of that name, or a declaration of
    /// it (of `name` or, for a counter, `name` without `_total`).
    pub fn has(&self, name: &str) -> bool {
        let family = name.strip_suffix("_total").unwrap_or(name);
        self.samples.keys().any(|(n, _)| n == name)
            || self.declared.contains(name)
            || self.declared.contains(family)
    }

    /// The series of sample name `name`: labels → value.
    pub fn series(&self, name: &str) -> BTreeMap<Labels, f64> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), value)| (labels.clone(), *value))
            .collect()
    }

    /// The sum of the series of `name` whose labels include every `(label, value)` of `with`.
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.series(name)
            .iter()
            .filter(|(labels, _)| {
                with.iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, value)| value)
            // Not `sum()`: the sum of no f64 is -0.
            .fold(0.0, |a, b| a + b)
    }

    /// How each series of `name` changed since `before` (a series absent before counts from
    /// 0), the unchanged ones left out.
    pub fn growth(&self, before: &Metrics, name: &str) -> BTreeMap<Labels, f64> {
        let earlier = before.series(name);
        let mut all: BTreeSet<Labels> = earlier.keys().cloned().collect();
        let now = self.series(name);
        all.extend(now.keys().cloned());
        all.into_iter()
            .filter_map(|labels| {
                let delta = now.get(&labels).copied().unwrap_or(0.0)
                    - earlier.get(&labels).copied().unwrap_or(0.0);
                (delta != 0.0).then_some((labels, delta))
            })
            .collect()
    }

    /// The distinct sample names, for messages.
    pub fn names(&self) -> BTreeSet<&str> {
        self.samples.keys().map(|(n, _)| n.as_str()).collect()
    }

    /// The `q` quantile of what histogram `name` (its `<name>_bucket` series whose labels
    /// include every `(label, value)` of `with`) counted since `before`, as Prometheus's
    /// `histogram_quantile` estimates it: linear within the bucket the rank falls in, the
    /// highest finite bound when it falls in `+Inf`. `None` when it counted nothing.
    pub fn histogram_quantile(
        &self,
        before: &Metrics,
        name: &str,
        with: &[(&str, &str)],
        q: f64,
    ) -> Option<f64> {
        let series = format!("{name}_bucket");
        let earlier = before.series(&series);
        // Every bucket, those that did not grow too (`growth` leaves them out).
        let mut buckets: Vec<(f64, f64)> = (self.series(&series).into_iter())
            .filter(|(labels, _)| {
                with.iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .filter_map(|(labels, count)| {
                let bound = labels.get("le")?.parse::<f64>().ok()?;
                Some((bound, count - earlier.get(&labels).copied().unwrap_or(0.0)))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (bound, count) in buckets {
            if count >= rank {
                if bound.is_infinite() {
                    return Some(lower);
                }
                let share = if count > below {
                    (rank - below) / (count - below)
                } else {
                    0.0
                };
                return Some(lower + (bound - lower) * share);
            }
            (lower, below) = (bound, count);
        }
        Some(lower)
    }

    /// How much the sum of the series of `name` with `with` grew since `before`.
    pub fn grown(&self, before: &Metrics, name: &str, with: &[(&str, &str)]) -> f64 {
        self.sum(name, with) - before.sum(name, with)
    }
}

/// `name{label="value",...} value [timestamp] [# exemplar]` → (name, labels, value).
fn parse_sample(line: &str) -> Result<(String, Labels, f64), String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("no metric name".into());
    }
    // Tokens may be separated by blanks and tabs.
    let mut rest = line[name_end..].trim_start();
    let mut labels = Labels::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    // An OpenMetrics exemplar follows ` # `; the value and an optional timestamp come first.
    let rest = rest.split(" # ").next().unwrap_or_default();
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = parse_value(value)?;
    match (fields.next(), fields.next()) {
        (None, _) => {}
        (Some(timestamp), None) if timestamp.parse::<f64>().is_ok() => {}
        _ => return Err("unexpected text after the value".into()),
    }
    Ok((name.to_string(), labels, value))
}

/// The labels after `{`, up to and including the closing `}`; returns them and what follows.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let key_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated labels")?;
        let key = &text[..key_end];
        if key.is_empty() {
            return Err("a label without a name".into());
        }
        text = text[key_end..].trim_start();
        text = text
            .strip_prefix('=')
            .ok_or_else(|| format!("no = after label {key}"))?
            .trim_start();
        text = text
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label {key} is not quoted"))?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("the value of label {key} is not closed")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => {
                        return Err(format!(
                            "bad escape {:?} in label {key}",
                            other.map(|(_, c)| c)
                        ));
                    }
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} appears twice"));
        }
        text = text[end + 1..].trim_start();
        if let Some(after) = text.strip_prefix(',') {
            text = after;
        } else if !text.starts_with('}') {
            return Err(format!("no , or }} after label {key}"));
        }
    }
}

/// A sample value: a float, `NaN`, `+Inf` or `-Inf`.
fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("bad value {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_histogram_quantile_is_read_from_the_buckets_grown() {
        let before = Metrics::parse(
            "h_bucket{le=\"0.1\",step=\"read\"} 5\n\
             h_bucket{le=\"0.2\",step=\"read\"} 5\n\
             h_bucket{le=\"+Inf\",step=\"read\"} 5\n",
        )
        .unwrap();
        // Since `before`: 10 in (0, 0.1], 80 in (0.1, 0.2], 10 above; another step's series.
        let after = Metrics::parse(
            "h_bucket{le=\"0.1\",step=\"read\"} 15\n\
             h_bucket{le=\"0.2\",step=\"read\"} 95\n\
             h_bucket{le=\"+Inf\",step=\"read\"} 105\n\
             h_bucket{le=\"0.1\",step=\"write\"} 0\n\
             h_bucket{le=\"0.2\",step=\"write\"} 0\n\
             h_bucket{le=\"+Inf\",step=\"write\"} 7\n",
        )
        .unwrap();
        let read = |q| after.histogram_quantile(&before, "h", &[("step", "read")], q);
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert!(close(read(0.05), 0.05), "{:?}", read(0.05));
        assert!(close(read(0.5), 0.15), "{:?}", read(0.5));
        assert!(close(read(0.9), 0.2), "{:?}", read(0.9));
        // In +Inf: the highest finite bound.
        assert!(close(read(0.99), 0.2), "{:?}", read(0.99));
        let write = after.histogram_quantile(&before, "h", &[("step", "write")], 0.5);
        assert!(close(write, 0.2), "{write:?}");
        assert_eq!(after.histogram_quantile(&after, "h", &[], 0.5), None);
        assert_eq!(after.grown(&before, "h_bucket", &[("step", "read")]), 200.0);
    }

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What `prometheus-client` writes (OpenMetrics text).
    const OPERATOR: &str = r#"# HELP curve_operator_reconciles Reconciles by result.
# TYPE curve_operator_reconciles counter
curve_operator_reconciles_total{result="success"} 12
curve_operator_reconciles_total{result="error"} 1
# HELP curve_operator_reconcile_duration_seconds How long reconciles take.
# TYPE curve_operator_reconcile_duration_seconds histogram
# UNIT curve_operator_reconcile_duration_seconds seconds
curve_operator_reconcile_duration_seconds_sum 0.5
curve_operator_reconcile_duration_seconds_count 13
curve_operator_reconcile_duration_seconds_bucket{le="0.01"} 2
curve_operator_reconcile_duration_seconds_bucket{le="+Inf"} 13
# HELP curve_operator_kube_requests Kubernetes API requests.
# TYPE curve_operator_kube_requests counter
curve_operator_kube_requests_total{verb="list",resource="pods"} 1
curve_operator_kube_requests_total{verb="apply",resource="curveclusters/status"} 4
curve_operator_kube_requests_total{verb="watch",resource="pods"} 2
# EOF
"#;

    #[test]
    fn the_operators_exposition_is_parsed_by_name_and_labels() {
        let m = Metrics::parse(OPERATOR).unwrap();
        assert_eq!(
            m.samples[&(
                "curve_operator_reconciles_total".to_string(),
                labels(&[("result", "success")])
            )],
            12.0
        );
        assert_eq!(
            m.sum("curve_operator_reconciles_total", &[("result", "success")]),
            12.0
        );
        assert_eq!(m.sum("curve_operator_reconciles_total", &[]), 13.0);
        let none = m.sum("curve_operator_reconciles_total", &[("result", "other")]);
        assert!(none == 0.0 && none.is_sign_positive(), "{none}");
        assert_eq!(
            m.series("curve_operator_reconcile_duration_seconds_bucket")
                [&labels(&[("le", "+Inf")])],
            13.0
        );
        assert_eq!(
            m.samples[&(
                "curve_operator_reconcile_duration_seconds_count".to_string(),
                Labels::new()
            )],
            13.0
        );
        let requests = m.series("curve_operator_kube_requests_total");
        assert_eq!(requests.len(), 3);
        assert_eq!(
            requests[&labels(&[("verb", "apply"), ("resource", "curveclusters/status")])],
            4.0
        );
        assert!(m.has("curve_operator_kube_requests_total"));
        assert!(m.has("curve_operator_reconcile_duration_seconds_sum"));
        assert!(!m.has("curve_operator_missing_total"));
        assert_eq!(m.names().len(), 5);
    }

    #[test]
    fn a_family_declared_without_samples_is_present() {
        let m = Metrics::parse(
            "# HELP curve_operator_kube_requests Requests.\n# TYPE curve_operator_kube_requests counter\n# EOF\n",
        )
        .unwrap();
        assert!(m.has("curve_operator_kube_requests_total"));
        assert!(m.series("curve_operator_kube_requests_total").is_empty());
    }

    #[test]
    fn label_values_are_unescaped_and_spacing_timestamps_and_exemplars_are_allowed() {
        let text = concat!(
            "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n",
            "odd{path=\"C:\\\\dir\\\\\", quote=\"say \\\"hi\\\"\", nl=\"a\\nb\", brace=\"}{,\",} 3\n",
            "spaced { a = \"1\" , b=\"2\" }\t-1.5e3\n",
            "rpc_total{x=\"1\"} 7 # {trace_id=\"abc\"} 1.0\n",
            "metric_without_labels 12.47\n",
            "not_a_number NaN\n",
            "minus_inf -Inf\n",
            "plus_inf +Inf\n",
        );
        let m = Metrics::parse(text).unwrap();
        assert_eq!(
            m.series("http_requests_total")[&labels(&[("method", "post"), ("code", "200")])],
            1027.0
        );
        let odd = m.series("odd");
        let (odd_labels, value) = odd.iter().next().unwrap();
        assert_eq!(*value, 3.0);
        assert_eq!(odd_labels["path"], "C:\\dir\\");
        assert_eq!(odd_labels["quote"], "say \"hi\"");
        assert_eq!(odd_labels["nl"], "a\nb");
        assert_eq!(odd_labels["brace"], "}{,");
        assert_eq!(
            m.series("spaced")[&labels(&[("a", "1"), ("b", "2")])],
            -1500.0
        );
        assert_eq!(m.series("rpc_total")[&labels(&[("x", "1")])], 7.0);
        assert_eq!(m.sum("metric_without_labels", &[]), 12.47);
        assert!(m.sum("not_a_number", &[]).is_nan());
        assert_eq!(m.sum("minus_inf", &[]), f64::NEG_INFINITY);
        assert_eq!(m.sum("plus_inf", &[]), f64::INFINITY);
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        for (text, why) in [
            ("ok 1\nbroken{a=\"1\" 2\n", "line 2"),
            ("x{a=1} 2", "not quoted"),
            ("x{a=\"1", "not closed"),
            ("x{a=\"1\"", "no , or }"),
            ("x{a=\"1\",a=\"2\"} 1", "appears twice"),
            ("x{a=\"\\t\"} 1", "bad escape"),
            ("x 1\nx 2", "the series appears twice"),
            ("x one", "bad value"),
            ("x", "no value"),
            ("x 1 2 3", "unexpected text"),
            ("{a=\"1\"} 1", "no metric name"),
        ] {
            let err = Metrics::parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn growth_lists_the_series_that_changed() {
        let before = Metrics::parse(OPERATOR).unwrap();
        let after = Metrics::parse(&OPERATOR.replace(
            "curve_operator_kube_requests_total{verb=\"watch\",resource=\"pods\"} 2",
            "curve_operator_kube_requests_total{verb=\"watch\",resource=\"pods\"} 3\n\
             curve_operator_kube_requests_total{verb=\"get\",resource=\"leases\"} 2",
        ))
        .unwrap();
        let growth = after.growth(&before, "curve_operator_kube_requests_total");
        assert_eq!(
            growth,
            BTreeMap::from([
                (labels(&[("verb", "watch"), ("resource", "pods")]), 1.0),
                (labels(&[("verb", "get"), ("resource", "leases")]), 2.0),
            ])
        );
        assert!(
            before
                .growth(&before, "curve_operator_kube_requests_total")
                .is_empty()
        );
    }
}
