//! etcd client endpoints as `host:port` strings. Pure: no I/O.

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("no etcd endpoint given")]
    Empty,
    #[error("invalid etcd endpoint {endpoint:?}: {reason}")]
    Invalid {
        endpoint: String,
        reason: &'static str,
    },
}

/// Checks one endpoint and returns it as `host:port`. `http://` and a trailing `/` are
/// accepted and dropped (etcd prints client URLs that way); `https://` is refused because the
/// operator speaks plain gRPC to etcd.
pub fn parse_endpoint(raw: &str) -> Result<String, EndpointError> {
    let invalid = |reason| EndpointError::Invalid {
        endpoint: raw.to_string(),
        reason,
    };
    let s = raw.trim();
    if s.is_empty() {
        return Err(EndpointError::Empty);
    }
    let has_scheme = |scheme: &str| {
        s.get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
    };
    if has_scheme("https://") {
        return Err(invalid("TLS (https://) is not supported"));
    }
    let s = if has_scheme("http://") { &s[7..] } else { s };
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.contains("://") {
        return Err(invalid("only http:// may precede host:port"));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, port) = rest
            .split_once("]:")
            .ok_or_else(|| invalid("expected [ipv6]:port"))?;
        if v6.is_empty() || !v6.contains(':') {
            return Err(invalid("expected an IPv6 address between [ and ]"));
        }
        (&s[..v6.len() + 2], port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected host:port"))?;
        if host.contains(':') {
            return Err(invalid("an IPv6 address must be written [address]:port"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(invalid("the host is empty"));
    }
    let host_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '[' | ']' | ':');
    if !host.chars().all(host_char) {
        return Err(invalid(
            "the host has a character a host name or IP address cannot have",
        ));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid("the port must be a number from 1 to 65535")),
        Ok(p) => Ok(format!("{host}:{p}")),
    }
}

/// Parses a comma-separated list (`--etcd-endpoints`, `mds.etcd.endpoint`): blanks between
/// commas are skipped, duplicates dropped, the order kept.
pub fn parse_endpoint_list(raw: &str) -> Result<Vec<String>, EndpointError> {
    let parsed = raw
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(parse_endpoint);
    let mut out: Vec<String> = Vec::new();
    for ep in parsed {
        let ep = ep?;
        if !out.contains(&ep) {
            out.push(ep);
        }
    }
    if out.is_empty() {
        return Err(EndpointError::Empty);
    }
    Ok(out)
}

/// The endpoints as a set: the same members listed in another order are the same cluster.
pub fn endpoint_set(endpoints: &[String]) -> BTreeSet<String> {
    endpoints.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(parse_endpoint("10.0.0.1:2379").unwrap(), "10.0.0.1:2379");
        assert_eq!(
            parse_endpoint(" etcd-0.demo-etcd:2379 ").unwrap(),
            "etcd-0.demo-etcd:2379"
        );
        assert_eq!(
            parse_endpoint("http://10.0.0.1:2379/").unwrap(),
            "10.0.0.1:2379"
        );
        assert_eq!(parse_endpoint("HTTP://a:1").unwrap(), "a:1");
        assert_eq!(parse_endpoint("[::1]:2379").unwrap(), "[::1]:2379");
        assert_eq!(parse_endpoint("localhost:02379").unwrap(), "localhost:2379");
    }

    #[test]
    fn bad_endpoints_are_refused_with_a_reason() {
        for bad in [
            "10.0.0.1",
            "10.0.0.1:",
            ":2379",
            "10.0.0.1:0",
            "10.0.0.1:65536",
            "10.0.0.1:http",
            "::1:2379",
            "[::1]2379",
            "[]:2379",
            "https://10.0.0.1:2379",
            "unix://x:1",
            "a b:1",
            "user@host:1",
            "aéééé:1",
            "éééé:1",
        ] {
            match parse_endpoint(bad) {
                Err(EndpointError::Invalid { endpoint, reason }) => {
                    assert_eq!(endpoint, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert_eq!(parse_endpoint("  "), Err(EndpointError::Empty));
    }

    #[test]
    fn lists() {
        assert_eq!(
            parse_endpoint_list("127.0.0.11:2379,127.0.0.12:2379, 127.0.0.13:2379,").unwrap(),
            vec!["127.0.0.11:2379", "127.0.0.12:2379", "127.0.0.13:2379"]
        );
        assert_eq!(
            parse_endpoint_list("a:1,b:2,a:1").unwrap(),
            vec!["a:1", "b:2"]
        );
        assert_eq!(parse_endpoint_list(""), Err(EndpointError::Empty));
        assert_eq!(parse_endpoint_list(" , ,"), Err(EndpointError::Empty));
        let err = parse_endpoint_list("a:1,b").unwrap_err();
        assert!(err.to_string().contains("\"b\""), "{err}");
    }

    #[test]
    fn sets_ignore_order() {
        let a = vec!["a:1".to_string(), "b:2".to_string()];
        let b = vec!["b:2".to_string(), "a:1".to_string()];
        assert_eq!(endpoint_set(&a), endpoint_set(&b));
        assert_ne!(endpoint_set(&a), endpoint_set(&a[..1]));
    }
}
