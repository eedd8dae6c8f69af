//! brpc's `/vars` page in plain text, and the bvars the operator reads from it.
//!
//! Format (B:src/brpc/builtin/vars_service.cpp l.257, l.278-291): one line per variable,
//! `<name>` + `" : "` + `<value>` + `"\r\n"`. Strings are printed between `"` with no escaping
//! (B:src/bvar/status.h l.150-156); numbers bare. Plain text is served when the request has
//! `console=1` or no User-Agent (B:src/brpc/builtin/common.cpp l.34-46), so the paths below
//! carry `?console=1`. A filter naming several exact variables is split on `,`; names that do
//! not exist are skipped, and if none matches the answer is 404 (B:src/bvar/variable.cpp
//! l.414, l.482-502; vars_service.cpp l.419-422).

use std::collections::BTreeMap;

use serde::Deserialize;

/// The MDS's role, bvar `mds_status` on every MDS (C:src/mds/server/mds.cpp l.78-79: set to
/// `follower` before the dummy server starts, l.112: `leader` once it won the election).
pub const MDS_STATUS: &str = "mds_status";
/// Schedule operators in flight on the MDS: `ScheduleMetricsPrefix` + `operator_num`, a
/// `bvar::Adder` exposed when the scheduler is built (C:src/mds/schedule/scheduleMetrics.h
/// l.49,127).
pub const MDS_OPERATOR_NUM: &str = "mds_scheduler_metric_operator_num";
/// The MDS's `mds.listen.addr` as a config bvar (C:src/common/configuration.cpp
/// `ExposeMetric`; the tool reads it as `kMdsListenAddrMetricName`,
/// C:src/tools/metric_name.h l.50).
pub const MDS_LISTEN_ADDR: &str = "mds_config_mds_listen_addr";

/// The path asking for these exact bvars, in plain text.
pub fn vars_path(names: &[&str]) -> String {
    format!("/vars/{}?console=1", names.join(","))
}

/// Every `name : value` line of a plain-text `/vars` body, the value as printed (quotes kept).
pub fn parse_vars(body: &str) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    for line in body.split("\r\n").filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(" : ") else {
            return Err(format!("a /vars line without ` : `: {:?}", clip(line)));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!(
                "a /vars line with no variable name: {:?}",
                clip(line)
            ));
        }
        vars.insert(name.to_string(), value.to_string());
    }
    Ok(vars)
}

/// A string bvar's value as Curve's own tool reads it: leading spaces, trailing CR/LF, then
/// every leading and trailing `"` removed (C:src/tools/common.cpp l.31-39,
/// C:src/tools/metric_client.cpp l.117-128).
pub fn trim_metric_string(raw: &str) -> &str {
    raw.trim_start_matches(' ')
        .trim_end_matches(['\r', '\n'])
        .trim_matches('"')
}

/// A numeric bvar (printed bare, B:src/bvar/status.h l.56-58).
pub fn u64_value(name: &str, raw: &str) -> Result<u64, String> {
    let text = trim_metric_string(raw);
    text.parse()
        .map_err(|_| format!("{name}: {text:?} is not an unsigned integer"))
}

/// The value of a config bvar: Curve's `StringStatus` holds `{"conf_name":…,"conf_value":…}`,
/// built by hand with no escaping (C:src/common/stringstatus.cpp l.36-56), printed as a quoted
/// string, so `"{"conf_name":"mds.listen.addr","conf_value":"10.0.0.5:6666"}"` on the wire.
/// The tool takes `conf_value` (C:src/tools/metric_client.cpp l.98-115).
pub fn conf_value(name: &str, raw: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Conf {
        conf_value: String,
    }
    // Stripping every outer quote, as the tool does, leaves the object: it starts with `{`
    // and ends with `}`.
    let json = trim_metric_string(raw);
    serde_json::from_str::<Conf>(json)
        .map(|c| c.conf_value)
        .map_err(|e| format!("{name}: {:?} is not a config value ({e})", clip(json)))
}

/// What an MDS's `mds_status` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MdsRole {
    Leader,
    Follower,
}

impl MdsRole {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match trim_metric_string(raw) {
            "leader" => Ok(MdsRole::Leader),
            "follower" => Ok(MdsRole::Follower),
            other => Err(format!(
                "{MDS_STATUS}: {other:?} is neither \"leader\" nor \"follower\""
            )),
        }
    }
}

/// What an MDS's dummy port says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdsDummyAnswer {
    pub role: MdsRole,
    /// Its `mds.listen.addr`.
    pub listen_addr: String,
}

impl MdsDummyAnswer {
    /// From the body of `GET /vars/mds_status,mds_config_mds_listen_addr`.
    pub fn parse(body: &str) -> Result<Self, String> {
        Self::from_vars(&parse_vars(body)?)
    }

    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |name: &str| {
            vars.get(name)
                .ok_or_else(|| format!("no {name} among the variables"))
        };
        Ok(MdsDummyAnswer {
            role: MdsRole::parse(get(MDS_STATUS)?)?,
            listen_addr: conf_value(MDS_LISTEN_ADDR, get(MDS_LISTEN_ADDR)?)?,
        })
    }
}

/// bvar's name normalisation (B:src/bvar/variable.cpp l.837-856): letters lower-cased with `_`
/// before an upper-case letter that follows a non-upper-case one, digits kept, any other run of
/// characters one `_`.
pub fn to_underscored_name(src: &str) -> String {
    let mut name = String::with_capacity(src.len() + 8);
    let bytes = src.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c.is_ascii_alphabetic() {
            if c.is_ascii_uppercase() {
                if i > 0 && !bytes[i - 1].is_ascii_uppercase() && !name.ends_with('_') {
                    name.push('_');
                }
                name.push(c.to_ascii_lowercase() as char);
            } else {
                name.push(c as char);
            }
        } else if c.is_ascii_digit() {
            name.push(c as char);
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name
}

/// The logical pool bvars `curve_ops_tool space` reads (C:src/tools/metric_name.h l.45,
/// l.61-95; C:src/tools/status_tool.cpp l.968-1022). Leader MDS only, for pools whose
/// `availFlag` is set, refreshed every `mds.topology.UpdateMetricIntervalSec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolMetricNames {
    /// `chunkSizeTotalBytes`: the chunk files' bytes on every ChunkServer of the pool.
    pub chunk_total: String,
    /// `chunkSizeUsedBytes`: of them, bytes in use.
    pub chunk_used: String,
    /// `logicalCapacity`: what volumes can be given (total / replicas).
    pub logical_capacity: String,
    /// `logicalAlloc`: what volumes were given.
    pub logical_alloc: String,
}

impl PoolMetricNames {
    pub fn new(pool: &str) -> Self {
        let name =
            |what: &str| to_underscored_name(&format!("topology_metric_logicalPool_{pool}_{what}"));
        PoolMetricNames {
            chunk_total: name("chunkSizeTotalBytes"),
            chunk_used: name("chunkSizeUsedBytes"),
            logical_capacity: name("logicalCapacity"),
            logical_alloc: name("logicalAlloc"),
        }
    }

    pub fn all(&self) -> [&str; 4] {
        [
            &self.chunk_total,
            &self.chunk_used,
            &self.logical_capacity,
            &self.logical_alloc,
        ]
    }
}

/// A logical pool's space as its bvars say; `None` where the bvar is absent (none exist in the
/// first metric interval after an election).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PoolSpace {
    pub chunk_total: Option<u64>,
    pub chunk_used: Option<u64>,
    pub logical_capacity: Option<u64>,
    pub logical_alloc: Option<u64>,
}

impl PoolSpace {
    /// From parsed `/vars`; a present bvar that is not a number is an error.
    pub fn from_vars(
        names: &PoolMetricNames,
        vars: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let get = |name: &str| vars.get(name).map(|raw| u64_value(name, raw)).transpose();
        Ok(PoolSpace {
            chunk_total: get(&names.chunk_total)?,
            chunk_used: get(&names.chunk_used)?,
            logical_capacity: get(&names.logical_capacity)?,
            logical_alloc: get(&names.logical_alloc)?,
        })
    }
}

pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dummy port's answer as vars_service.cpp l.278-291 prints it: a Status<string>
    /// quoted (status.h l.150-156), the StringStatus JSON quoted with no escaping.
    const DUMMY: &str = "mds_config_mds_listen_addr : \"{\"conf_name\":\"mds.listen.addr\",\"conf_value\":\"10.0.0.5:6666\"}\"\r\nmds_status : \"leader\"\r\n";

    #[test]
    fn the_dummy_port_answer_gives_role_and_listen_address() {
        assert_eq!(
            MdsDummyAnswer::parse(DUMMY),
            Ok(MdsDummyAnswer {
                role: MdsRole::Leader,
                listen_addr: "10.0.0.5:6666".into()
            })
        );
        let follower = DUMMY.replace("\"leader\"", "\"follower\"");
        assert_eq!(
            MdsDummyAnswer::parse(&follower).unwrap().role,
            MdsRole::Follower
        );
    }

    #[test]
    fn bad_dummy_answers_say_what_is_wrong() {
        let unknown = DUMMY.replace("\"leader\"", "\"primary\"");
        assert_eq!(
            MdsDummyAnswer::parse(&unknown),
            Err("mds_status: \"primary\" is neither \"leader\" nor \"follower\"".into())
        );
        let missing = "mds_status : \"leader\"\r\n";
        assert_eq!(
            MdsDummyAnswer::parse(missing),
            Err("no mds_config_mds_listen_addr among the variables".into())
        );
        assert_eq!(
            MdsDummyAnswer::parse("<html><body>vars</body></html>"),
            Err("a /vars line without ` : `: \"<html><body>vars</body></html>\"".into())
        );
        let garbled =
            "mds_status : \"leader\"\r\nmds_config_mds_listen_addr : \"{\"conf_name\":\"}\"\r\n";
        let err = MdsDummyAnswer::parse(garbled).unwrap_err();
        assert!(
            err.starts_with(
                "mds_config_mds_listen_addr: \"{\\\"conf_name\\\":\\\"}\" is not a config value"
            ),
            "{err}"
        );
    }

    #[test]
    fn numbers_and_names() {
        let vars = parse_vars(
            "topology_metric_logical_pool_pool1_logical_capacity : 1099511627776\r\ncurve_version : \"1.2.6+72cb7582\"\r\n",
        )
        .unwrap();
        assert_eq!(
            u64_value(
                "x",
                &vars["topology_metric_logical_pool_pool1_logical_capacity"]
            ),
            Ok(1099511627776)
        );
        assert_eq!(trim_metric_string(&vars["curve_version"]), "1.2.6+72cb7582");
        assert_eq!(
            u64_value("x", "\"abc\""),
            Err("x: \"abc\" is not an unsigned integer".into())
        );
    }

    #[test]
    fn names_are_normalised_as_bvar_does() {
        // C:src/tools/metric_name.h l.61-95 builds these through to_underscored_name; the
        // Grafana dashboards use `topology_metric_logical_pool_pool1_disk_alloc`.
        assert_eq!(
            PoolMetricNames::new("pool1"),
            PoolMetricNames {
                chunk_total: "topology_metric_logical_pool_pool1_chunk_size_total_bytes".into(),
                chunk_used: "topology_metric_logical_pool_pool1_chunk_size_used_bytes".into(),
                logical_capacity: "topology_metric_logical_pool_pool1_logical_capacity".into(),
                logical_alloc: "topology_metric_logical_pool_pool1_logical_alloc".into(),
            }
        );
        assert_eq!(
            to_underscored_name("mds.heartbeat.misstimeoutMs"),
            "mds_heartbeat_misstimeout_ms"
        );
        assert_eq!(
            to_underscored_name("chunkserver_10.0.0.1:8200_leader_count"),
            "chunkserver_10_0_0_1_8200_leader_count"
        );
        assert_eq!(
            to_underscored_name("logicalPool_MyPOOL"),
            "logical_pool_my_pool"
        );
    }

    #[test]
    fn pool_space_takes_what_is_there() {
        let names = PoolMetricNames::new("pool1");
        let body = format!(
            "{} : 300\r\n{} : 100\r\n",
            names.logical_capacity, names.logical_alloc
        );
        let vars = parse_vars(&body).unwrap();
        assert_eq!(
            PoolSpace::from_vars(&names, &vars),
            Ok(PoolSpace {
                logical_capacity: Some(300),
                logical_alloc: Some(100),
                ..Default::default()
            })
        );
    }
}
