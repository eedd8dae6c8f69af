//! Kubernetes' own value grammars, as the API server and the kubelet apply them to the objects the
//! operator builds from a spec: object names, label keys and values, resource quantities and
//! requirements, tolerations, and container image references.
//!
//! Each check mirrors one function of Kubernetes (k8s.io/apimachinery
//! `pkg/util/validation/validation.go`, k8s.io/kubernetes `pkg/apis/core/validation/validation.go`)
//! or of the image reference grammar the container runtime parses (github.com/distribution/reference
//! `regexp.go`), named in its doc comment. A check returns `None` when the value is valid, else the
//! reason, phrased to follow "must ..."; the caller adds the field path and the value given.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};

use super::Errors;

/// Longest label value, name part of a label key, DNS-1123 / DNS-1035 label (IsDNS1123Label).
pub const LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (IsDNS1123Subdomain), and so the prefix of a label key.
pub const SUBDOMAIN_MAX: usize = 253;
/// Longest label key: a subdomain prefix, '/', a name.
pub const LABEL_KEY_MAX: usize = SUBDOMAIN_MAX + 1 + LABEL_MAX;
const _: () = assert!(LABEL_KEY_MAX == crate::api::rules::LABEL_KEY_MAX);
/// The bounds the CRD sets where Kubernetes sets none (to keep CEL's cost small), and the
/// toleration operators and taint effects Kubernetes knows.
pub use crate::api::rules::{
    MAX_IMAGE_LEN as IMAGE_MAX, MAX_QUANTITY_LEN as QUANTITY_MAX,
    MAX_RESOURCE_ENTRIES as RESOURCE_ENTRIES_MAX, TAINT_EFFECTS, TOLERATION_OPERATORS,
};
/// Longest repository name of an image reference (distribution/reference NameTotalLengthMax).
pub const IMAGE_NAME_MAX: usize = 255;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` without the length limit.
fn is_dns_label_text(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(|c| is_lower_alnum(c) || c == '-')
        && value.starts_with(is_lower_alnum)
        && value.ends_with(is_lower_alnum)
}

/// IsDNS1123Label: at most 63 lower-case letters, digits and '-', starting and ending with a
/// letter or digit.
pub fn dns1123_label(value: &str) -> Option<String> {
    if value.len() > LABEL_MAX {
        return Some(format!(
            "must be at most {LABEL_MAX} characters (got {})",
            value.len()
        ));
    }
    (!is_dns_label_text(value)).then(|| {
        "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit".into()
    })
}

/// IsDNS1035Label: a DNS-1123 label that starts with a letter (Service names).
pub fn dns1035_label(value: &str) -> Option<String> {
    if value.len() > LABEL_MAX {
        return Some(format!(
            "must be at most {LABEL_MAX} characters (got {})",
            value.len()
        ));
    }
    (!is_dns_label_text(value) || !value.starts_with(|c: char| c.is_ascii_lowercase())).then(|| {
        "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit".into()
    })
}

/// IsDNS1123Subdomain: at most 253 characters, dot-separated DNS-1123 labels.
pub fn dns1123_subdomain(value: &str) -> Option<String> {
    if value.len() > SUBDOMAIN_MAX {
        return Some(format!(
            "must be at most {SUBDOMAIN_MAX} characters (got {})",
            value.len()
        ));
    }
    (!value.split('.').all(is_dns_label_text)).then(|| {
        "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit".into()
    })
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`: the name part of a qualified name, and a
/// non-empty label value.
fn is_label_text(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(is_label_char)
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
}

const LABEL_KEY_RULE: &str = "must be a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";

/// IsQualifiedName (label keys, taint and toleration keys, topology keys, resource names).
pub fn qualified_name(value: &str) -> Option<String> {
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty() && p.len() <= SUBDOMAIN_MAX && p.split('.').all(is_dns_label_text)
    });
    if !prefix_ok || name.len() > LABEL_MAX || !is_label_text(name) {
        return Some(LABEL_KEY_RULE.into());
    }
    None
}

/// IsValidLabelValue: empty, or at most 63 letters, digits, '-', '_' and '.', starting and
/// ending with a letter or digit.
pub fn label_value(value: &str) -> Option<String> {
    if value.len() > LABEL_MAX {
        return Some(format!(
            "must be a label value of at most {LABEL_MAX} characters (got {})",
            value.len()
        ));
    }
    (!value.is_empty() && !is_label_text(value)).then(|| {
        "must be a label value: empty, or letters, digits, '-', '_' and '.', starting and ending with a letter or digit".into()
    })
}

/// The longest duration Prometheus takes: it holds durations in int64 milliseconds
/// (model.ParseDuration refuses a longer one: "duration out of range").
pub const PROMETHEUS_MAX_SECONDS: u64 = i64::MAX as u64 / 1000;

/// Seconds of a Prometheus duration without milliseconds (`1h30m`, `30s`: units y w d h m s,
/// each at most once, in that order), saturating at `u64::MAX`; `None` when it is not one.
pub fn prometheus_duration_seconds(text: &str) -> Option<u64> {
    const UNITS: [(char, u64); 6] = [
        ('y', 365 * 86400),
        ('w', 7 * 86400),
        ('d', 86400),
        ('h', 3600),
        ('m', 60),
        ('s', 1),
    ];
    let (mut rest, mut total, mut next_unit) = (text, 0u64, 0);
    if text.len() > 16 || text.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().unwrap_or(u64::MAX);
        let unit = rest[digits..].chars().next()?;
        let index = next_unit + UNITS[next_unit..].iter().position(|(u, _)| *u == unit)?;
        total = total.saturating_add(number.saturating_mul(UNITS[index].1));
        next_unit = index + 1;
        rest = &rest[digits + 1..];
    }
    Some(total)
}

/// A value as the refusal quotes it: JSON-quoted, long values shortened.
pub fn quoted(value: &str) -> String {
    const SHOWN: usize = 80;
    if value.chars().count() > SHOWN {
        let head: String = value.chars().take(SHOWN).collect();
        format!(
            "{}... ({} characters)",
            serde_json::json!(head),
            value.len()
        )
    } else {
        serde_json::json!(value).to_string()
    }
}

/// Parses a Kubernetes quantity (resource.ParseQuantity, k8s.io/apimachinery
/// `pkg/api/resource/quantity.go`) into its value: `<sign><digits>[.<digits>]<suffix>` with
/// suffix one of `n u m "" k M G T P E`, `Ki Mi Gi Ti Pi Ei`, or `e<int>` / `E<int>`
/// (`10Gi`, `500m`, `1.5`, `1e3`, `+2`, `.5`).
pub fn parse_quantity(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let negative = text.starts_with('-');
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole
        .chars()
        .chain(fraction.chars())
        .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let magnitude: f64 = format!(
        "{}.{}",
        if whole.is_empty() { "0" } else { whole },
        if fraction.is_empty() { "0" } else { fraction }
    )
    .parse()
    .ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            // Kubernetes reads the exponent as an int64 and any magnitude (inf.Dec): past
            // f64's range the value is infinite or rounded up below.
            let exponent: i64 = exponent.parse().ok()?;
            10f64.powi(exponent.clamp(-400, 400) as i32)
        }
    };
    // A non-zero amount below 1n is rounded up to 1n, as Kubernetes does.
    const NANO: f64 = 1e-9;
    let value = if magnitude == 0.0 {
        0.0
    } else {
        (magnitude * factor).max(NANO)
    };
    Some(if negative { -value } else { value })
}

const QUANTITY_RULE: &str = "must be a Kubernetes quantity such as 500m, 2, 1.5Gi or 10G";

/// The container resource names Kubernetes knows without a domain (standardContainerResources).
const STANDARD_CONTAINER_RESOURCES: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];
const HUGEPAGES_PREFIX: &str = "hugepages-";

/// IsNativeResource: no domain, or a `kubernetes.io/` one.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// IsExtendedResourceName: a domain-qualified name outside `kubernetes.io`, usable in a quota.
fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && qualified_name(&format!("requests.{name}")).is_none()
}

/// IsOvercommitAllowed: requests below limits are allowed for native resources but hugepages.
fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with(HUGEPAGES_PREFIX)
}

/// validateContainerResourceName.
fn container_resource_name(name: &str) -> Option<String> {
    if qualified_name(name).is_some() {
        return Some(format!(
            "must be a resource name: cpu, memory, ephemeral-storage, hugepages-<size> or a domain-qualified extended resource; {LABEL_KEY_RULE}"
        ));
    }
    if !name.contains('/') {
        if !STANDARD_CONTAINER_RESOURCES.contains(&name) && !name.starts_with(HUGEPAGES_PREFIX) {
            return Some(
                "must be a standard resource for containers (cpu, memory, ephemeral-storage, hugepages-<size>) or a domain-qualified extended resource".into(),
            );
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        return Some("must be an extended resource name: <domain>/<name>, the domain not kubernetes.io and not starting with \"requests.\"".into());
    }
    None
}

/// ValidateResourceRequirements of a container (pkg/apis/core/validation), for the resources
/// the spec gives a component's containers. The pods declare no resource claims.
pub(super) fn resource_requirements(
    errors: &mut Errors,
    path: &str,
    resources: &ResourceRequirements,
) {
    let empty = BTreeMap::new();
    let limits = resources.limits.as_ref().unwrap_or(&empty);
    let requests = resources.requests.as_ref().unwrap_or(&empty);
    let mut parsed: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for (kind, entries) in [("limits", limits), ("requests", requests)] {
        if entries.len() > RESOURCE_ENTRIES_MAX {
            errors.push(
                &format!("{path}.{kind}"),
                format!(
                    "must have at most {RESOURCE_ENTRIES_MAX} entries (got {})",
                    entries.len()
                ),
            );
        }
        for (name, quantity) in entries {
            let at = format!("{path}.{kind}[{name}]");
            if let Some(reason) = container_resource_name(name) {
                errors.push(&at, format!("{reason} (got {})", quoted(name)));
                continue;
            }
            let text = quantity.0.as_str();
            let value = match parse_quantity(text) {
                Some(value) if text.len() <= QUANTITY_MAX => value,
                Some(_) => {
                    errors.push(
                        &at,
                        format!(
                            "must be at most {QUANTITY_MAX} characters (got {})",
                            text.len()
                        ),
                    );
                    continue;
                }
                None => {
                    errors.push(&at, format!("{QUANTITY_RULE} (got {})", quoted(text)));
                    continue;
                }
            };
            if value < 0.0 {
                errors.push(&at, format!("must not be negative (got {})", quoted(text)));
                continue;
            }
            if is_extended_resource(name) && value.fract() != 0.0 {
                errors.push(
                    &at,
                    format!(
                        "must be a whole number: extended resources are counted in units (got {})",
                        quoted(text)
                    ),
                );
                continue;
            }
            if let Some(page) = name.strip_prefix(HUGEPAGES_PREFIX) {
                let divisible = parse_quantity(page)
                    .filter(|page| *page > 0.0)
                    .is_some_and(|page| value > 0.0 && (value % page) == 0.0);
                if !divisible {
                    errors.push(
                        &at,
                        format!(
                            "must be a positive whole multiple of the page size {page} (got {})",
                            quoted(text)
                        ),
                    );
                    continue;
                }
            }
            parsed.insert((kind, name), value);
        }
    }
    for (name, quantity) in requests {
        let at = format!("{path}.requests[{name}]");
        let Some(request) = parsed.get(&("requests", name.as_str())) else {
            continue;
        };
        match (limits.get(name), parsed.get(&("limits", name.as_str()))) {
            (Some(limit_text), Some(limit)) => {
                if !overcommit_allowed(name) && request != limit {
                    errors.push(
                        &at,
                        format!(
                            "must equal the {name} limit {} (got {}): Kubernetes does not overcommit hugepages and extended resources",
                            limit_text.0, quantity.0
                        ),
                    );
                } else if request > limit {
                    errors.push(
                        &at,
                        format!(
                            "must be at most the {name} limit {} (got {})",
                            limit_text.0, quantity.0
                        ),
                    );
                }
            }
            (None, _) if !overcommit_allowed(name) => errors.push(
                &format!("{path}.limits[{name}]"),
                format!(
                    "must be set, equal to the request {}: Kubernetes does not overcommit hugepages and extended resources",
                    quantity.0
                ),
            ),
            _ => {}
        }
    }
    let has = |name: &str| limits.contains_key(name) || requests.contains_key(name);
    let hugepages = limits
        .keys()
        .chain(requests.keys())
        .any(|name| name.starts_with(HUGEPAGES_PREFIX));
    if hugepages && !has("cpu") && !has("memory") {
        errors.push(
            path,
            "must request or limit cpu or memory too when it asks for hugepages (Kubernetes refuses hugepages alone)".into(),
        );
    }
    if let Some(claims) = &resources.claims
        && !claims.is_empty()
    {
        let names: Vec<String> = claims.iter().map(|c| quoted(&c.name)).collect();
        errors.push(
            &format!("{path}.claims"),
            format!(
                "must be empty: Curve pods declare no resource claims (got {})",
                names.join(", ")
            ),
        );
    }
}

/// ValidateTolerations (pkg/apis/core/validation) of one toleration at `path`.
pub(super) fn toleration(errors: &mut Errors, path: &str, toleration: &Toleration) {
    let key = toleration.key.as_deref().unwrap_or_default();
    let operator = toleration.operator.as_deref().unwrap_or_default();
    let value = toleration.value.as_deref().unwrap_or_default();
    let effect = toleration.effect.as_deref().unwrap_or_default();
    if !key.is_empty()
        && let Some(reason) = qualified_name(key)
    {
        errors.push(
            &format!("{path}.key"),
            format!("{reason} (got {})", quoted(key)),
        );
    }
    if !TOLERATION_OPERATORS.contains(&operator) {
        errors.push(
            &format!("{path}.operator"),
            format!(
                "must be Exists or Equal (empty means Equal) (got {})",
                quoted(operator)
            ),
        );
    } else if key.is_empty() && operator != "Exists" {
        errors.push(
            &format!("{path}.operator"),
            format!(
                "must be Exists when key is empty: an empty key with Exists tolerates every taint (got {})",
                quoted(operator)
            ),
        );
    }
    if operator == "Exists" {
        if !value.is_empty() {
            errors.push(
                &format!("{path}.value"),
                format!(
                    "must be empty when operator is Exists (got {})",
                    quoted(value)
                ),
            );
        }
    } else if let Some(reason) = label_value(value) {
        errors.push(
            &format!("{path}.value"),
            format!("{reason} (got {})", quoted(value)),
        );
    }
    if !TAINT_EFFECTS.contains(&effect) {
        errors.push(
            &format!("{path}.effect"),
            format!(
                "must be NoSchedule, PreferNoSchedule or NoExecute (empty means every effect) (got {})",
                quoted(effect)
            ),
        );
    }
    if let Some(seconds) = toleration.toleration_seconds
        && effect != "NoExecute"
    {
        errors.push(
            &format!("{path}.tolerationSeconds"),
            format!(
                "is allowed only with effect NoExecute (got {seconds} seconds with effect {})",
                quoted(effect)
            ),
        );
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: one path component of an image repository name.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_lowercase() && !bytes[0].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or a run of '-', followed by an alphanumeric.
        let start = i;
        match c {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start
            || !bytes
                .get(i)
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` components joined by '.', an optional `:port`, or a
/// bracketed IPv6 address: the registry of an image reference.
fn is_registry(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("ipv6", port),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, port),
            None => (domain, "0"),
        }
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && c.starts_with(|c: char| c.is_ascii_alphanumeric())
            && c.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && host.split('.').all(component_ok)
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        && !tag.starts_with(['.', '-'])
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|c| {
        c.starts_with(|c: char| c.is_ascii_alphabetic())
            && c.chars().all(|c| c.is_ascii_alphanumeric())
    });
    algorithm_ok && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

const IMAGE_RULE: &str = "must be an image reference [registry[:port]/]path[:tag][@digest], the path lower-case letters, digits and separators ('.', '_', '__', '-') between them, such as opencurvedocker/curvebs:v1.2.6";

/// An image reference as the container runtime parses it (distribution/reference
/// ParseNormalizedNamed): `[registry/]path[:tag][@digest]`. Kubernetes itself only refuses an
/// empty image or surrounding whitespace; a reference the runtime cannot parse leaves the pod in
/// InvalidImageName.
pub fn image_reference(image: &str) -> Option<String> {
    if image.len() > IMAGE_MAX {
        return Some(format!(
            "must be at most {IMAGE_MAX} characters (got {})",
            image.len()
        ));
    }
    if image.trim() != image {
        return Some("must not have leading or trailing whitespace".into());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if digest.is_some_and(|d| !is_digest(d)) {
        return Some(format!(
            "{IMAGE_RULE}; a digest is <algorithm>:<at least 32 hex digits>"
        ));
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) {
        return Some(format!(
            "{IMAGE_RULE}; a tag is at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ));
    }
    let mut components: Vec<&str> = name.split('/').collect();
    // As splitDockerDomain: the first of several components is a registry when it looks like
    // a host (a '.' or ':', "localhost", or upper-case letters).
    if components.len() > 1 {
        let first = components[0];
        let looks_like_host = first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase());
        if looks_like_host {
            if !is_registry(first) {
                return Some(IMAGE_RULE.into());
            }
            components.remove(0);
        }
    }
    if !components.iter().all(|c| is_path_component(c)) {
        return Some(IMAGE_RULE.into());
    }
    if name.len() > IMAGE_NAME_MAX {
        return Some(format!(
            "must have a repository name of at most {IMAGE_NAME_MAX} characters (got {})",
            name.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_api_servers_grammars() {
        assert_eq!(dns1123_label("demo-1"), None);
        assert!(dns1123_label("Demo").is_some());
        assert!(dns1123_label("-demo").is_some());
        assert!(dns1123_label("demo.x").is_some());
        assert!(dns1123_label(&"a".repeat(64)).is_some());
        assert_eq!(dns1035_label("demo"), None);
        assert!(dns1035_label("1demo").is_some());
        assert_eq!(dns1123_subdomain("registry.example.com"), None);
        assert!(dns1123_subdomain("registry..example").is_some());
        assert!(dns1123_subdomain("").is_some());
        assert!(dns1123_subdomain(&"a".repeat(254)).is_some());
    }

    #[test]
    fn label_keys_and_values_follow_the_api_servers_grammars() {
        for key in [
            "disk",
            "kubernetes.io/hostname",
            "topology.kubernetes.io/zone",
            "a_b.c-D",
            &format!("{}/{}", "p".repeat(253), "n".repeat(63)),
        ] {
            assert_eq!(qualified_name(key), None, "{key}");
        }
        for key in [
            "",
            "/x",
            "x/",
            "a/b/c",
            "Example.com/x",
            "-x",
            "x_",
            "has space",
            &"n".repeat(64),
            &format!("{}/x", "p".repeat(254)),
        ] {
            assert!(qualified_name(key).is_some(), "{key}");
        }
        for value in ["", "true", "a.b_c-D", &"v".repeat(63)] {
            assert_eq!(label_value(value), None, "{value}");
        }
        for value in ["-a", "a b", "a/b", &"v".repeat(64)] {
            assert!(label_value(value).is_some(), "{value}");
        }
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_quantity("10Gi"), Some(10.0 * 1024f64.powi(3)));
        assert_eq!(parse_quantity("500M"), Some(5e8));
        assert_eq!(parse_quantity("1.5Ti"), Some(1.5 * 1024f64.powi(4)));
        assert_eq!(parse_quantity("100"), Some(100.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("1E-3"), Some(0.001));
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("+2"), Some(2.0));
        assert_eq!(parse_quantity("-2"), Some(-2.0));
        assert_eq!(parse_quantity(".5"), Some(0.5));
        assert_eq!(parse_quantity("5."), Some(5.0));
        assert_eq!(parse_quantity("1E"), Some(1e18));
        assert_eq!(parse_quantity("1e999"), Some(f64::INFINITY));
        assert_eq!(parse_quantity("1e-20"), Some(1e-9));
        assert_eq!(parse_quantity("0e-20"), Some(0.0));
        for bad in [
            "10GB", "", "Gi", "1.2.3", "--5", "1e", "0x10", "1 Gi", " 1", "inf", "1_000", ".", "+",
            "1e3Gi", "1Gi5",
        ] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }

    #[test]
    fn tolerations_are_checked_as_the_api_server_checks_a_pods() {
        let check = |toleration: Toleration| {
            let mut errors = Errors::default();
            super::toleration(&mut errors, "t", &toleration);
            errors.0.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        let t = |key: &str, operator: &str, value: &str, effect: &str, seconds: Option<i64>| {
            Toleration {
                key: Some(key.into()),
                operator: Some(operator.into()),
                value: Some(value.into()),
                effect: Some(effect.into()),
                toleration_seconds: seconds,
            }
        };
        assert_eq!(
            check(t("dedicated", "In", "curve", "", None)),
            ["t.operator: must be Exists or Equal (empty means Equal) (got \"In\")"]
        );
        assert_eq!(
            check(t("dedicated", "", "curve", "NoEvict", None)),
            [
                "t.effect: must be NoSchedule, PreferNoSchedule or NoExecute (empty means every effect) (got \"NoEvict\")"
            ]
        );
        assert_eq!(
            check(t("", "", "", "", None)),
            [
                "t.operator: must be Exists when key is empty: an empty key with Exists tolerates every taint (got \"\")"
            ]
        );
        assert_eq!(check(t("", "Exists", "", "", None)), Vec::<String>::new());
        assert_eq!(
            check(t("dedicated", "", "curve", "NoSchedule", None)),
            Vec::<String>::new()
        );
        assert_eq!(
            check(t("k", "Exists", "", "NoExecute", Some(-5))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn image_references_follow_the_runtimes_grammar() {
        for good in [
            "opencurvedocker/curvebs:v1.2.6",
            "curvebs",
            "registry.example.com:5000/opencurve/curvebs:v1.2.6",
            "localhost/curvebs",
            "[fd00::1]:5000/curvebs:latest",
            "Registry.Example.com/curvebs",
            "opencurvedocker/curve__bs:v1",
            "opencurvedocker/curve--bs",
            &format!("curvebs@sha256:{}", "a".repeat(64)),
            &format!("curvebs:v1@sha256:{}", "0".repeat(64)),
        ] {
            assert_eq!(image_reference(good), None, "{good}");
        }
        for bad in [
            " opencurvedocker/curvebs:v1.2.6",
            "opencurvedocker/curvebs:v1.2.6 ",
            "OpenCurve",
            "opencurvedocker/CurveBS",
            "opencurvedocker/curvebs:",
            "opencurvedocker/curvebs:-v1",
            "opencurvedocker//curvebs",
            "opencurvedocker/curvebs/",
            "curve bs",
            "curvebs@sha256:abc",
            "curvebs:v1:v2",
            "-registry.example.com/curvebs",
            &format!("curvebs:{}", "t".repeat(129)),
            &format!("{}:v1", "a".repeat(256)),
        ] {
            assert!(image_reference(bad).is_some(), "{bad}");
        }
    }
}
