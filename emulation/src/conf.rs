//! Reading config files the way Curve and etcd read them.

use std::collections::BTreeMap;

/// Parses Curve's `key=value` config text exactly as `curve::common::Configuration::LoadConfig`
/// does (src/common/configuration.cpp at v1.2.6):
///
/// - every whitespace character of a line is removed first, also inside keys and values;
/// - lines that are then empty or start with `#` are skipped;
/// - the key is what precedes the first `=` (the whole line if there is none);
/// - the value is what follows the first `=` up to the first `#`, or to the end of the line if
///   that `#` comes before the `=` or there is none (a line without `=` is its own value, cut
///   at a `#`);
/// - a key given twice keeps its last value; the result is sorted by key, as Curve's std::map.
pub fn parse_curve_conf(text: &str) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    for line in text.split('\n') {
        let line: String = line.chars().filter(|c| !is_c_space(*c)).collect();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = curve_key_value(&line);
        config.insert(key.to_string(), value.to_string());
    }
    config
}

/// C's isspace in the "C" locale.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// The key and value of one space-free line. Curve computes them with `int` positions where
/// "not found" is -1 and a negative length means "to the end"; this mirrors that arithmetic.
fn curve_key_value(line: &str) -> (&str, &str) {
    let delimiter = line.find('=');
    let comment = line.find('#');
    let key = match delimiter {
        Some(d) => &line[..d],
        None => line,
    };
    let start = delimiter.map_or(0, |d| d + 1);
    let value = match comment {
        Some(c) if c >= start => &line[start..c],
        _ => &line[start..],
    };
    (key, value)
}

/// Parses etcd's YAML config as flat `key: value` lines (etcd.conf has no nested keys; indented
/// lines are read as `parent.child`). Comments (`#` at the start or after a space) are dropped,
/// and one level of `'...'` or `"..."` quotes is removed. The result is sorted by key.
pub fn parse_etcd_conf(text: &str) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    let mut parent: Option<String> = None;
    for raw in text.lines() {
        let line = strip_yaml_comment(raw);
        if line.trim().is_empty() {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        let Some((key, value)) = split_yaml_key(line.trim()) else {
            continue;
        };
        let key = match (&parent, indented) {
            (Some(parent), true) => format!("{parent}.{key}"),
            _ => key.to_string(),
        };
        if !indented {
            parent = value.is_empty().then(|| key.clone());
        }
        config.insert(key, unquote(value).to_string());
    }
    config
}

/// Every non-comment line of a Curve or etcd config whose value still holds a `${...}`
/// placeholder, as (key, value) in file order. Such a value was not filled in by the deployer.
pub fn placeholders(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|raw| {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let split_at = line.find(['=', ':'])?;
            let key = line[..split_at].trim();
            let value = line[split_at + 1..].trim();
            has_placeholder(value).then(|| (key.to_string(), value.to_string()))
        })
        .collect()
}

fn has_placeholder(value: &str) -> bool {
    value
        .find("${")
        .is_some_and(|start| value[start + 2..].contains('}'))
}

fn strip_yaml_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => return &line[..i],
            None => {}
        }
        previous = c;
    }
    line
}

/// `key: value` (or `key:` alone); the key ends at the first `:` followed by a space or the
/// end of the line, so values such as `http://1.2.3.4:2379` stay whole.
fn split_yaml_key(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    let colon = (0..bytes.len()).find(|&i| {
        bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ' || bytes[i + 1] == b'\t')
    })?;
    Some((line[..colon].trim(), line[colon + 1..].trim()))
}

fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn curve_conf_is_read_as_load_config_reads_it() {
        let text = "# comment\n\
                    mds.listen.addr=127.0.0.1:6666\n\
                    \tglobal.port = 8200 # the port\n\
                    spaces in key = a b c\n\
                    \n   # indented comment\n\
                    no_delimiter\n\
                    no_delimiter_comment#tail\n\
                    a#b=c\n\
                    empty=\n\
                    hash_right_after=#x\n\
                    =novalue_key\n\
                    dup=1\n\
                    dup=2\r\n\
                    url=http://x/#frag\n";
        assert_eq!(
            parse_curve_conf(text),
            conf(&[
                ("", "novalue_key"),
                ("a#b", "c"),
                ("dup", "2"),
                ("empty", ""),
                ("global.port", "8200"),
                ("hash_right_after", ""),
                ("mds.listen.addr", "127.0.0.1:6666"),
                ("no_delimiter", "no_delimiter"),
                ("no_delimiter_comment#tail", "no_delimiter_comment"),
                ("spacesinkey", "abc"),
                ("url", "http://x/"),
            ])
        );
    }

    #[test]
    fn etcd_conf_is_read_as_yaml_lines() {
        let text = "# etcd\n\
                    name:  etcd0\n\
                    listen-peer-urls:  http://10.0.0.1:2380 # peers\n\
                    auto-compaction-retention: \"1\"\n\
                    proxy: 'off'\n\
                    cors:\n\
                    log-outputs: [stderr]\n\
                    initial-cluster-token: etcd-cluster#1\n\
                    client-transport-security:\n  cert-file: /a.crt\n";
        assert_eq!(
            parse_etcd_conf(text),
            conf(&[
                ("auto-compaction-retention", "1"),
                ("client-transport-security", ""),
                ("client-transport-security.cert-file", "/a.crt"),
                ("cors", ""),
                ("initial-cluster-token", "etcd-cluster#1"),
                ("listen-peer-urls", "http://10.0.0.1:2380"),
                ("log-outputs", "[stderr]"),
                ("name", "etcd0"),
                ("proxy", "off"),
            ])
        );
    }

    #[test]
    fn placeholders_are_listed_in_file_order() {
        let text = "# a=${commented}\n\
                    global.ip=${service_addr}\n\
                    global.port=8200\n\
                    name:  etcd${service_host_sequence}\n\
                    curve.config_path=${prefix}/conf/cs_client.conf\n\
                    shell=$HOME\n\
                    half=${open\n";
        assert_eq!(
            placeholders(text),
            vec![
                ("global.ip".to_string(), "${service_addr}".to_string()),
                (
                    "name".to_string(),
                    "etcd${service_host_sequence}".to_string()
                ),
                (
                    "curve.config_path".to_string(),
                    "${prefix}/conf/cs_client.conf".to_string()
                ),
            ]
        );
    }
}
