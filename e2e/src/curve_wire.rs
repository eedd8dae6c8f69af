//! What Curve v1.2.6's daemons print, made from the [`crate::curve_model`]: brpc's HTTP
//! answers (its JSON mapping of the topology and schedule calls, its error bodies, `/vars`
//! lines) and braft's `/raft_stat` page. Pure; the stand-ins serve it.
//!
//! Citations: `C:` opencurve/curve@v1.2.6, `B:` apache/brpc@1b9e0064 (Curve's pin, `P:` its
//! patch), `R:` baidu/braft@e255c0e4. `H:` is B:src/brpc/policy/http_rpc_protocol.cpp,
//! `Q:` B:src/json2pb/pb_to_json.cpp, `J:` B:src/json2pb/json_to_pb.cpp.

use std::fmt::Write as _;

use serde_json::Value;

use crate::curve_model::{
    ChunkServer, ChunkServerStatus, CurveModel, LogicalPool, RaftNode, Server, code, group_id,
};

/// One HTTP answer.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    /// `Content-Type`, sent only when not empty (B:src/brpc/details/http_message.cpp:616-643).
    pub content_type: String,
    pub extra_headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn text(body: String) -> HttpAnswer {
        HttpAnswer {
            status: 200,
            content_type: "text/plain".into(),
            extra_headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    /// The bytes on the wire: status line, `Content-Length` always, `Content-Type` when set.
    pub fn to_bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Unknown",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\n",
            self.status,
            self.body.len()
        );
        if !self.content_type.is_empty() {
            let _ = write!(head, "Content-Type: {}\r\n", self.content_type);
        }
        for (name, value) in &self.extra_headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// brpc errno (B:src/brpc/errno.proto:8-33).
pub const ENOMETHOD: i32 = 1002;
pub const EREQUEST: i32 = 1003;

/// A framework error: the body replaced by `[<ip>:<port>][E<code>]<text>`, `text/plain`,
/// `x-bd-error-code` (H:801-819; B:src/brpc/controller.cpp:340-360,401-428), the status from
/// the code (B:src/brpc/http_status_code.cpp:116-140).
pub fn brpc_error(server: &str, code: i32, text: &str) -> HttpAnswer {
    let status = match code {
        1001 | ENOMETHOD => 404,
        EREQUEST | 22 => 400,
        2003 | 2004 => 503,
        _ => 500,
    };
    HttpAnswer {
        status,
        content_type: "text/plain".into(),
        extra_headers: vec![("x-bd-error-code".into(), code.to_string())],
        body: format!("[{server}][E{code}]{text}").into_bytes(),
    }
}

/// JSON as json2pb writes it: compact, fields in declaration order, unset optionals and
/// empty repeated fields left out (Q:73-110, `jsonify_empty_array=false`), enums by name.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(String),
    Obj(Vec<(&'static str, Json)>),
    Arr(Vec<Json>),
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Uint(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Json::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            Json::Obj(fields) => {
                out.push('{');
                let fields = fields
                    .iter()
                    .filter(|(_, v)| !matches!(v, Json::Arr(a) if a.is_empty()));
                for (i, (name, value)) in fields.enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "\"{name}\":");
                    value.write(out);
                }
                out.push('}');
            }
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

fn s(value: &str) -> Json {
    Json::Str(value.to_string())
}

/// bvar's `to_underscored_name` (B:src/bvar/variable.cpp:837-856): capitals become `_` +
/// lower case (not after a capital or `_`), other non-alphanumerics one `_`.
pub fn to_underscored_name(out: &mut String, src: &str) {
    let bytes = src.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c.is_ascii_alphabetic() {
            if c.is_ascii_uppercase() {
                if i > 0 && !bytes[i - 1].is_ascii_uppercase() && !out.ends_with('_') {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase() as char);
            } else {
                out.push(c as char);
            }
        } else if c.is_ascii_digit() {
            out.push(c as char);
        } else if out.is_empty() || !out.ends_with('_') {
            out.push('_');
        }
    }
}

/// A bvar's exposed name from its prefix and name (B:src/bvar/variable.cpp:145-154).
pub fn bvar_name(prefix: &str, name: &str) -> String {
    let mut out = String::new();
    if !prefix.is_empty() {
        to_underscored_name(&mut out, prefix);
        if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    to_underscored_name(&mut out, name);
    out
}

/// A bvar's value as `/vars` prints it: numbers bare, strings quoted without escaping
/// (B:src/bvar/status.h:56-58,101-103,150-156).
#[derive(Clone, Debug, PartialEq)]
pub enum VarValue {
    Num(u64),
    Str(String),
}

/// brpc's `/vars/<filter>` (B:src/brpc/builtin/vars_service.cpp:257-291,400-422;
/// B:src/bvar/variable.cpp:368-527): `name : value\r\n` per variable sorted by name; the
/// filter split on `,`/`;`, `*` and `$` wildcards; nothing matched → ENOMETHOD 404.
pub fn vars_answer(server: &str, vars: &[(String, VarValue)], filter: &str) -> HttpAnswer {
    let patterns: Vec<&str> = filter.split([',', ';']).filter(|p| !p.is_empty()).collect();
    let mut sorted: Vec<&(String, VarValue)> = vars.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut body = String::new();
    for (name, value) in sorted {
        if !patterns.is_empty() && !patterns.iter().any(|p| wildcard_match(p, name)) {
            continue;
        }
        let value = match value {
            VarValue::Num(n) => n.to_string(),
            VarValue::Str(text) => format!("\"{text}\""),
        };
        let _ = write!(body, "{name} : {value}\r\n");
    }
    if body.is_empty() && !patterns.is_empty() {
        return brpc_error(
            server,
            ENOMETHOD,
            &format!("Fail to find any bvar by `{filter}'"),
        );
    }
    HttpAnswer::text(body)
}

/// `*` any run, `$` one character (`?` cannot be in a URL).
fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'$'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// Curve's `StringStatus` value of a `*_config_*` bvar: a JSON object, keys sorted, no
/// escaping (C:src/common/stringstatus.cpp:36-56).
pub fn config_var(conf_name: &str, conf_value: &str) -> VarValue {
    VarValue::Str(format!(
        "{{\"conf_name\":\"{conf_name}\",\"conf_value\":\"{conf_value}\"}}"
    ))
}

/// The MDS's `mds_status` (C:src/mds/server/mds.cpp:78-79,112), its listen address bvar
/// (C:src/common/configuration.cpp:99-116) and `curve_version`.
pub fn mds_dummy_vars(leader: bool, listen_addr: &str) -> Vec<(String, VarValue)> {
    vec![
        (
            "mds_status".into(),
            VarValue::Str(if leader { "leader" } else { "follower" }.into()),
        ),
        (
            "mds_config_mds_listen_addr".into(),
            config_var("mds.listen.addr", listen_addr),
        ),
        ("curve_version".into(), VarValue::Str("1.2.6".into())),
    ]
}

/// A request body read as json2pb does (J:), for one message.
pub struct PbRequest {
    full_name: &'static str,
    fields: Value,
}

pub enum PbError {
    /// EREQUEST with this text.
    Bad(String),
}

impl PbRequest {
    /// H:1396-1468: a message with fields is parsed from a non-empty body as JSON (any
    /// content type but `application/proto`); an empty body only if nothing is required.
    pub fn parse(
        full_name: &'static str,
        has_required: bool,
        body: &[u8],
        content_type: &str,
    ) -> Result<PbRequest, PbError> {
        if body.is_empty() {
            if has_required {
                return Err(PbError::Bad(format!(
                    "{full_name} needs to be created from a non-empty json, it has required fields."
                )));
            }
            return Ok(PbRequest {
                full_name,
                fields: Value::Object(Default::default()),
            });
        }
        if content_type.starts_with("application/proto") {
            // The stand-in speaks JSON only; a binary body is refused as unparsable.
            return Err(PbError::Bad(format!(
                "Fail to parse http body as {full_name}"
            )));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(fields @ Value::Object(_)) => Ok(PbRequest { full_name, fields }),
            Ok(_) => Err(PbError::Bad(format!(
                "Fail to parse http body as {full_name}, `json_value' is not a json object. {}",
                full_name.rsplit('.').next().unwrap_or(full_name)
            ))),
            Err(_) => Err(PbError::Bad(format!(
                "Fail to parse http body as {full_name}, Invalid json format"
            ))),
        }
    }

    /// An optional uint32: a mismatch drops the field (J:77-94,211-220, J:260-264).
    fn opt_u32(&self, name: &str) -> Option<u32> {
        self.fields
            .get(name)?
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
    }

    /// A required `ChunkServerStatus`: its name, case-sensitive, or its number (J:173-193).
    fn req_status(&self, name: &str) -> Result<ChunkServerStatus, PbError> {
        let value = match self.fields.get(name) {
            None | Some(Value::Null) => {
                return Err(PbError::Bad(format!(
                    "Fail to parse http body as {}, Missing required field: {}.{name}",
                    self.full_name, self.full_name
                )));
            }
            Some(v) => v,
        };
        let found = ChunkServerStatus::ALL.into_iter().find(|s| match value {
            Value::String(text) => text == s.as_str(),
            Value::Number(n) => n.as_i64() == Some(s.number()),
            _ => false,
        });
        found.ok_or_else(|| {
            PbError::Bad(format!(
                "Fail to parse http body as {}, Invalid value `{value}' for field `{}.{name}' which SHOULD be enum",
                self.full_name, self.full_name
            ))
        })
    }

    fn opt_str(&self, name: &str) -> Option<String> {
        Some(self.fields.get(name)?.as_str()?.to_string())
    }

    fn req_u32(&self, name: &str) -> Result<u32, PbError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Err(PbError::Bad(format!(
                "Fail to parse http body as {}, Missing required field: {}.{name}",
                self.full_name, self.full_name
            ))),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    PbError::Bad(format!(
                        "Fail to parse http body as {}, Invalid value `{v}' for field `{}.{name}' which SHOULD be UINT32",
                        self.full_name, self.full_name
                    ))
                }),
        }
    }

    fn rep_u32(&self, name: &str) -> Result<Vec<u32>, PbError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| {
                    PbError::Bad(format!(
                        "Fail to parse http body as {}, Invalid value for repeated field `{}.{name}'",
                        self.full_name, self.full_name
                    ))
                }),
            Some(v) => Err(PbError::Bad(format!(
                "Fail to parse http body as {}, Invalid value `{v}' for field `{}.{name}' which SHOULD be repeated",
                self.full_name, self.full_name
            ))),
        }
    }
}

fn chunkserver_info(cs: &ChunkServer) -> Json {
    // ChunkServerInfo, C:proto/topology.proto:125-139; filled at
    // C:src/mds/topology/topology_service_manager.cpp:243-256.
    Json::Obj(vec![
        ("chunkServerID", Json::Uint(cs.id.into())),
        ("diskType", s(&cs.disk_type)),
        ("hostIp", s(&cs.ip)),
        ("port", Json::Uint(cs.port.into())),
        ("status", s(cs.status.as_str())),
        ("diskStatus", s("DISKNORMAL")),
        ("onlineState", s(cs.online.as_str())),
        ("mountPoint", s(&cs.mount_point)),
        ("diskCapacity", Json::Uint(cs.disk_capacity)),
        ("diskUsed", Json::Uint(cs.disk_used)),
        ("externalIp", s(&cs.external_ip)),
    ])
}

fn server_info(model: &CurveModel, server: &Server) -> Json {
    // ServerInfo, C:proto/topology.proto:204-216; topology_service_manager.cpp:560-571.
    let zone = &model.zones[&server.zone];
    let pool = &model.physical_pools[&server.physical_pool];
    Json::Obj(vec![
        ("serverID", Json::Uint(server.id.into())),
        ("hostName", s(&server.host_name)),
        ("internalIp", s(&server.internal_ip)),
        ("internalPort", Json::Uint(server.internal_port.into())),
        ("externalIp", s(&server.external_ip)),
        ("externalPort", Json::Uint(server.external_port.into())),
        ("zoneID", Json::Uint(zone.id.into())),
        ("zoneName", s(&zone.name)),
        ("physicalPoolID", Json::Uint(pool.id.into())),
        ("physicalPoolName", s(&pool.name)),
        ("desc", s(&server.desc)),
    ])
}

/// jsoncpp's `toStyledString` of the pool's policy (C:src/mds/topology/topology_item.cpp:
/// 107-116): keys sorted, three-space indent, a closing newline.
pub fn policy_json(pool: &LogicalPool) -> String {
    format!(
        "{{\n   \"copysetNum\" : {},\n   \"replicaNum\" : {},\n   \"zoneNum\" : {}\n}}\n",
        pool.copyset_num, pool.replicas, pool.zone_num
    )
}

/// A `bytes` field: base64 when the request was a JSON body (H:752,1461-1462, brpc's
/// `pb_bytes_to_base64` default true), else the raw bytes as a JSON string.
fn bytes_field(value: &str, base64: bool) -> Json {
    if base64 {
        Json::Str(base64_encode(value.as_bytes()))
    } else {
        s(value)
    }
}

pub fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn logical_pool_info(model: &CurveModel, pool: &LogicalPool, base64: bool) -> Json {
    // LogicalPoolInfo, C:proto/topology.proto:335-344; topology_service_manager.cpp:1350-1362.
    let _ = model;
    Json::Obj(vec![
        ("logicalPoolID", Json::Uint(pool.id.into())),
        ("logicalPoolName", s(&pool.name)),
        ("physicalPoolID", Json::Uint(pool.physical_pool.into())),
        ("type", s("PAGEFILE")),
        ("createTime", Json::Uint(pool.create_time)),
        (
            "redundanceAndPlaceMentPolicy",
            bytes_field(&policy_json(pool), base64),
        ),
        // GetUserPolicyJsonStr (topology_item.cpp:140-143).
        ("userPolicy", bytes_field("{\"policy\" : 1}", base64)),
        ("allocateStatus", s("ALLOW")),
    ])
}

fn copyset_infos(keys: &[(u32, u32)]) -> Json {
    // curve.common.CopysetInfo, C:proto/common.proto:32-35.
    Json::Arr(
        keys.iter()
            .map(|(pool, copyset)| {
                Json::Obj(vec![
                    ("logicalPoolId", Json::Uint((*pool).into())),
                    ("copysetId", Json::Uint((*copyset).into())),
                ])
            })
            .collect(),
    )
}

fn status_only(status: i32) -> Json {
    Json::Obj(vec![("statusCode", Json::Int(status.into()))])
}

/// A pb call's answer: 200 with JSON, the request's Content-Type echoed (or none)
/// (H:719-724,745-761).
fn pb_answer(json: Json, request_content_type: &str) -> HttpAnswer {
    HttpAnswer {
        status: 200,
        content_type: request_content_type.to_string(),
        extra_headers: Vec::new(),
        body: json.render().into_bytes(),
    }
}

/// The (service, method) a pb URL names: `/<Service>/<Method>` or the full service name
/// (H:940-987); extra segments ignored.
pub fn pb_route(path: &str) -> Option<(&str, &str)> {
    let mut parts = path.trim_start_matches('/').split('/');
    let service = parts.next()?;
    let method = parts.next()?;
    let service = service.rsplit('.').next().unwrap_or(service);
    let known = ["TopologyService", "ScheduleService", "ChunkServerService"];
    known.contains(&service).then_some((service, method))
}

/// One call of `curve.mds.topology.TopologyService` or `curve.mds.schedule.ScheduleService`
/// on the primary MDS, answered from the model as TopologyServiceManager does
/// (C:src/mds/topology/topology_service_manager.cpp, lines per method below).
pub fn mds_call(
    model: &mut CurveModel,
    server: &str,
    service: &str,
    method: &str,
    body: &[u8],
    content_type: &str,
) -> HttpAnswer {
    let answer = match (service, method) {
        ("TopologyService", m) => topology_call(model, m, body, content_type),
        ("ScheduleService", "RapidLeaderSchedule") => {
            // C:src/mds/schedule/scheduleService/scheduleService.cpp, rapidLeaderScheduler.cpp:
            // 33-56: 0 = every pool, an unknown pool -1.
            PbRequest::parse(
                "curve.mds.schedule.RapidLeaderScheduleRequst",
                true,
                body,
                content_type,
            )
            .and_then(|r| r.req_u32("logicalPoolID"))
            .map(|pool| Some(status_only(model.rapid_leader_schedule(pool))))
        }
        _ => return not_found(server, service, method),
    };
    match answer {
        Ok(Some(json)) => pb_answer(json, content_type),
        Ok(None) => not_found(server, service, method),
        Err(PbError::Bad(text)) => brpc_error(server, EREQUEST, &text),
    }
}

fn not_found(server: &str, service: &str, method: &str) -> HttpAnswer {
    brpc_error(
        server,
        ENOMETHOD,
        &format!("Fail to find method on `/{service}/{method}'"),
    )
}

fn topology_call(
    model: &mut CurveModel,
    method: &str,
    body: &[u8],
    content_type: &str,
) -> Result<Option<Json>, PbError> {
    let parse =
        |name: &'static str, required: bool| PbRequest::parse(name, required, body, content_type);
    // The calls that change the topology; each answers its statusCode only.
    let changed = match method {
        // 314-329.
        "SetChunkServer" => {
            let r = parse("curve.mds.topology.SetChunkServerStatusRequest", true)?;
            let id = r.req_u32("chunkServerID")?;
            Some(model.set_chunkserver(id, r.req_status("chunkServerStatus")?))
        }
        // 307-312.
        "DeleteChunkServer" => {
            let r = parse("curve.mds.topology.DeleteChunkServerRequest", true)?;
            Some(model.delete_chunkserver(r.req_u32("chunkServerID")?))
        }
        // 478-512.
        "DeleteServer" => {
            let r = parse("curve.mds.topology.DeleteServerRequest", true)?;
            Some(model.delete_server(r.req_u32("serverID")?))
        }
        _ => None,
    };
    if let Some(status) = changed {
        return Ok(Some(status_only(status)));
    }
    let model: &CurveModel = model;
    let base64 = !body.is_empty();
    let json = match method {
        // 795-816.
        "ListPhysicalPool" => Json::Obj(vec![
            ("statusCode", Json::Int(0)),
            (
                "physicalPoolInfos",
                Json::Arr(
                    (model.physical_pools.values())
                        .map(|p| {
                            Json::Obj(vec![
                                ("physicalPoolID", Json::Uint(p.id.into())),
                                ("physicalPoolName", s(&p.name)),
                                ("desc", s(&p.desc)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]),
        // 1325-1372.
        "ListLogicalPool" => {
            let r = parse("curve.mds.topology.ListLogicalPoolRequest", false)?;
            let pool = match (r.opt_u32("physicalPoolID"), r.opt_str("physicalPoolName")) {
                (Some(id), _) => model.physical_pools.get(&id),
                (None, Some(name)) => model.physical_pool_by_name(&name),
                (None, None) => return Ok(Some(status_only(code::INVALID_PARAM))),
            };
            let Some(pool) = pool else {
                return Ok(Some(status_only(code::PHYSICAL_POOL_NOT_FOUND)));
            };
            Json::Obj(vec![
                ("statusCode", Json::Int(0)),
                (
                    "logicalPoolInfos",
                    Json::Arr(
                        (model.logical_pools.values())
                            .filter(|l| l.physical_pool == pool.id)
                            .map(|l| logical_pool_info(model, l, base64))
                            .collect(),
                    ),
                ),
            ])
        }
        // 676-713.
        "ListPoolZone" => {
            let r = parse("curve.mds.topology.ListPoolZoneRequest", false)?;
            let pool = match (r.opt_u32("physicalPoolID"), r.opt_str("physicalPoolName")) {
                (Some(id), _) => model.physical_pools.get(&id),
                (None, Some(name)) => model.physical_pool_by_name(&name),
                (None, None) => return Ok(Some(status_only(code::INVALID_PARAM))),
            };
            let Some(pool) = pool else {
                return Ok(Some(status_only(code::PHYSICAL_POOL_NOT_FOUND)));
            };
            Json::Obj(vec![
                ("statusCode", Json::Int(0)),
                (
                    "zones",
                    Json::Arr(
                        (model.zones.values())
                            .filter(|z| z.physical_pool == pool.id)
                            .map(|z| {
                                Json::Obj(vec![
                                    ("zoneID", Json::Uint(z.id.into())),
                                    ("zoneName", s(&z.name)),
                                    ("physicalPoolID", Json::Uint(pool.id.into())),
                                    ("physicalPoolName", s(&pool.name)),
                                    ("desc", s(&z.desc)),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        }
        // 514-581.
        "ListZoneServer" => {
            let r = parse("curve.mds.topology.ListZoneServerRequest", false)?;
            let zone = match (
                r.opt_u32("zoneID"),
                r.opt_str("zoneName"),
                r.opt_str("physicalPoolName"),
            ) {
                (Some(id), _, _) => model.zones.get(&id),
                (None, Some(zone), Some(pool)) => {
                    model.physical_pool_by_name(&pool).and_then(|p| {
                        model
                            .zones
                            .values()
                            .find(|z| z.physical_pool == p.id && z.name == zone)
                    })
                }
                _ => return Ok(Some(status_only(code::INVALID_PARAM))),
            };
            let Some(zone) = zone else {
                return Ok(Some(status_only(code::ZONE_NOT_FOUND)));
            };
            Json::Obj(vec![
                ("statusCode", Json::Int(0)),
                (
                    "serverInfo",
                    Json::Arr(
                        (model.servers.values())
                            .filter(|sv| sv.zone == zone.id)
                            .map(|sv| server_info(model, sv))
                            .collect(),
                    ),
                ),
            ])
        }
        // 214-266.
        "ListChunkServer" => {
            let r = parse("curve.mds.topology.ListChunkServerRequest", false)?;
            let server = match (r.opt_str("ip"), r.opt_u32("serverID")) {
                (Some(ip), _) => {
                    model.find_server_by_host_ip_port(&ip, r.opt_u32("port").unwrap_or(0))
                }
                (None, Some(id)) => model.servers.contains_key(&id).then_some(id),
                (None, None) => return Ok(Some(status_only(code::INVALID_PARAM))),
            };
            let Some(server) = server else {
                return Ok(Some(status_only(code::SERVER_NOT_FOUND)));
            };
            Json::Obj(vec![
                ("statusCode", Json::Int(0)),
                (
                    "chunkServerInfos",
                    Json::Arr(
                        (model.chunkservers.values())
                            .filter(|c| c.server == server)
                            .map(chunkserver_info)
                            .collect(),
                    ),
                ),
            ])
        }
        // 268-305 (GetChunkServer; its request is GetChunkServerInfoRequest).
        "GetChunkServer" => {
            let r = parse("curve.mds.topology.GetChunkServerInfoRequest", false)?;
            match chunkserver_selected(model, &r) {
                Err(status) => status_only(status),
                Ok(cs) => Json::Obj(vec![
                    ("statusCode", Json::Int(0)),
                    ("chunkServerInfo", chunkserver_info(cs)),
                ]),
            }
        }
        // 1419-1447.
        "GetCopySetsInChunkServer" => {
            let r = parse("curve.mds.topology.GetCopySetsInChunkServerRequest", false)?;
            match chunkserver_selected(model, &r) {
                Err(status) => status_only(status),
                Ok(cs) => Json::Obj(vec![
                    ("statusCode", Json::Int(0)),
                    ("copysetInfos", copyset_infos(&model.copysets_on(cs.id))),
                ]),
            }
        }
        // 1449-1460.
        "GetCopySetsInCluster" => {
            let keys: Vec<(u32, u32)> = model.copysets.keys().copied().collect();
            Json::Obj(vec![
                ("statusCode", Json::Int(0)),
                ("copysetInfos", copyset_infos(&keys)),
            ])
        }
        // 1382-1417: the first missing copyset ends the answer with -11, and the first
        // member missing from the topology with -1, keeping what was added before it.
        "GetChunkServerListInCopySets" => {
            let r = parse(
                "curve.mds.topology.GetChunkServerListInCopySetsRequest",
                true,
            )?;
            let pool = r.req_u32("logicalPoolId")?;
            let ids = r.rep_u32("copysetId")?;
            let mut infos = Vec::new();
            let mut status = 0;
            for id in ids {
                let Some(copyset) = model.copysets.get(&(pool, id)) else {
                    status = code::COPYSET_NOT_FOUND;
                    break;
                };
                let mut locations = Vec::new();
                let missing = (copyset.members.iter()).find(|m| {
                    let Some(cs) = model.chunkservers.get(m) else {
                        return true;
                    };
                    locations.push(Json::Obj(vec![
                        ("chunkServerID", Json::Uint(cs.id.into())),
                        ("hostIp", s(&cs.ip)),
                        ("port", Json::Uint(cs.port.into())),
                        ("externalIp", s(&cs.external_ip)),
                    ]));
                    false
                });
                infos.push(Json::Obj(vec![
                    ("copysetId", Json::Uint(id.into())),
                    ("csLocs", Json::Arr(locations)),
                ]));
                if missing.is_some() {
                    status = code::INTERNAL_ERROR;
                    break;
                }
            }
            Json::Obj(vec![
                ("statusCode", Json::Int(status.into())),
                ("csInfo", Json::Arr(infos)),
            ])
        }
        _ => return Ok(None),
    };
    Ok(Some(json))
}

/// By id (any state), or by hostIp and port (non-RETIRED only); else InvalidParam
/// (topology_service_manager.cpp:271-287).
fn chunkserver_selected<'a>(model: &'a CurveModel, r: &PbRequest) -> Result<&'a ChunkServer, i32> {
    if let Some(id) = r.opt_u32("chunkServerID") {
        return model
            .chunkservers
            .get(&id)
            .ok_or(code::CHUNKSERVER_NOT_FOUND);
    }
    match (r.opt_str("hostIp"), r.opt_u32("port")) {
        (Some(ip), Some(port)) => model
            .chunkserver_at(&ip, port)
            .ok_or(code::CHUNKSERVER_NOT_FOUND),
        _ => Err(code::INVALID_PARAM),
    }
}

/// The primary's topology bvars (C:src/mds/topology/topology_metric.h:44-237, values as
/// C:src/mds/topology/topology_metric.cpp:100-211 computes them), a subset: per logical pool
/// the counts and capacities, per ChunkServer that is a copyset member its counts and disk.
pub fn topology_vars(model: &CurveModel) -> Vec<(String, VarValue)> {
    let mut vars = Vec::new();
    let cs_prefix = "topology_metric_chunkserver_Id_";
    let pool_prefix = "topology_metric_logicalPool_";
    for pool in model.logical_pools.values() {
        let copysets: Vec<_> = (model.copysets.iter())
            .filter(|(k, _)| k.0 == pool.id)
            .collect();
        let mut members: std::collections::BTreeMap<u32, (u32, u32)> = Default::default();
        for (_, copyset) in &copysets {
            for m in &copyset.members {
                let entry = members.entry(*m).or_default();
                entry.0 += 1;
                entry.1 += u32::from(copyset.leader == Some(*m));
            }
        }
        let (mut capacity, mut used, mut chunk_total) = (0u64, 0u64, 0u64);
        for (id, (copyset_num, leader_num)) in &members {
            let Some(cs) = model.chunkservers.get(id) else {
                continue;
            };
            capacity += cs.disk_capacity;
            used += cs.disk_used;
            chunk_total += model.settings.chunk_pool_bytes;
            let var = |name: &str| bvar_name(cs_prefix, &format!("{id}_{name}"));
            vars.push((var("copysetnum"), VarValue::Num((*copyset_num).into())));
            vars.push((var("leadernum"), VarValue::Num((*leader_num).into())));
            vars.push((var("diskCapacity"), VarValue::Num(cs.disk_capacity)));
            vars.push((var("diskUsed"), VarValue::Num(cs.disk_used)));
        }
        let var = |name: &str| bvar_name(pool_prefix, &format!("{}_{name}", pool.name));
        let replicas = u64::from(pool.replicas.max(1));
        vars.extend([
            (var("chunkserver_num"), VarValue::Num(members.len() as u64)),
            (var("copyset_num"), VarValue::Num(copysets.len() as u64)),
            (var("diskCapacity"), VarValue::Num(capacity)),
            (var("diskUsed"), VarValue::Num(used)),
            (var("diskAlloc"), VarValue::Num(0)),
            (var("logicalAlloc"), VarValue::Num(0)),
            (var("chunkSizeTotalBytes"), VarValue::Num(chunk_total)),
            (
                var("logicalCapacity"),
                VarValue::Num(chunk_total / replicas),
            ),
        ]);
    }
    vars
}

/// The primary's schedule bvars (C:src/mds/schedule/scheduleMetrics.h:49-55,127; they exist
/// once the elected MDS ran Init, C:src/mds/server/mds.cpp:116-131): operators in flight, all
/// of them HighPriority ChangePeers here (C:src/mds/schedule/scheduleMetrics.cpp:37-117).
pub fn scheduler_vars(model: &CurveModel) -> Vec<(String, VarValue)> {
    let in_flight = model.operators.len() as u64;
    [
        ("operator_num", in_flight),
        ("addPeer_num", 0),
        ("removePeer_num", 0),
        ("transferLeader_num", 0),
        ("changePeer_num", in_flight),
        ("normal_operator_num", 0),
        ("high_operator_num", in_flight),
    ]
    .into_iter()
    .map(|(name, value)| {
        (
            bvar_name("mds_scheduler_metric_", name),
            VarValue::Num(value),
        )
    })
    .collect()
}

/// `ChunkServerService/ChunkServerStatus` (C:proto/chunkserver.proto:28-37;
/// C:src/chunkserver/chunkserver_service.cpp:29-47); its request has no fields, so any body
/// is accepted unparsed (H:1396-1397).
pub fn chunkserver_status(loaded: bool, request_content_type: &str) -> HttpAnswer {
    pb_answer(
        Json::Obj(vec![("copysetLoadFin", Json::Bool(loaded))]),
        request_content_type,
    )
}

/// Times a node's timers show, in ms, so the page changes as a real one does.
#[derive(Clone, Copy, Debug)]
pub struct RaftClock {
    /// Milliseconds into the current timer periods.
    pub phase_ms: u64,
    pub election_timeout_ms: u64,
    pub snapshot_interval_ms: u64,
    /// Heartbeats and appends a replicator sent.
    pub heartbeats: u64,
}

/// braft's `/raft_stat` page in text (R:src/braft/builtin_service_impl.cpp:71-86): per group
/// `[<group id>]\r\n`, the node's `describe` (R:src/braft/node.cpp:2350-2471), a blank line.
/// The log manager's and state machine's lines end in `\n` only
/// (R:src/braft/log_manager.cpp:893-901, R:src/braft/fsm_caller.cpp:482-518).
pub fn raft_stat(nodes: &[RaftNode], clock: RaftClock) -> String {
    let mut out = String::new();
    let peer = |(ip, port): &(String, u32)| format!("{ip}:{port}:0");
    let timeout = clock.election_timeout_ms;
    let scheduling = |period: u64| format!("SCHEDULING(in {}ms)", period - clock.phase_ms % period);
    for (n, node) in nodes.iter().enumerate() {
        let _ = write!(out, "[{}]\r\n", group_id(node.group));
        let _ = write!(out, "peer_id: {}\r\n", peer(&node.peer));
        let state = if node.leader { "LEADER" } else { "FOLLOWER" };
        let _ = write!(out, "state: {state}\r\nreadonly: 0\r\n");
        let _ = write!(out, "term: {}\r\nconf_index: 1\r\n", node.term);
        let peers: Vec<String> = node.peers.iter().map(peer).collect();
        let _ = write!(out, "peers: {}\r\n", peers.join(" "));
        if node.leader {
            out.push_str("changing_conf: NO    stage: STAGE_NONE\r\n");
            let _ = write!(
                out,
                "election_timer: timeout({timeout}ms) STOPPED\r\n\
                 vote_timer: timeout({timeout}ms) STOPPED\r\n\
                 stepdown_timer: timeout({timeout}ms) {}\r\n",
                scheduling(timeout)
            );
        } else {
            // No leader known: an empty PeerId prints 0.0.0.0:0:0 (R:src/braft/configuration.h:94-96).
            let (leader, since) = match &node.leader_peer {
                Some(l) => (peer(l), clock.phase_ms % 100),
                None => ("0.0.0.0:0:0".to_string(), clock.phase_ms),
            };
            let _ = write!(
                out,
                "leader: {leader}\r\nlast_msg_to_now: {since}\r\n\
                 election_timer: timeout({timeout}ms) {}\r\n\
                 vote_timer: timeout({timeout}ms) STOPPED\r\n\
                 stepdown_timer: timeout({timeout}ms) STOPPED\r\n",
                scheduling(timeout)
            );
        }
        let _ = write!(
            out,
            "snapshot_timer: timeout({}ms) {}\r\n",
            clock.snapshot_interval_ms,
            scheduling(clock.snapshot_interval_ms)
        );
        let last = node.last_index;
        let _ = write!(
            out,
            "storage: [1, {last}]\ndisk_index: {last}\nknown_applied_index: {last}\n\
             last_log_id: (index={last},term={})\nstate_machine: Idle\n",
            node.term
        );
        let _ = write!(
            out,
            "last_committed_index: {last}\r\nlast_snapshot_index: 0\r\n\
             last_snapshot_term: 0\r\nsnapshot_status: IDLE\r\n"
        );
        // R:src/braft/replicator.cpp:1240-1276.
        for (i, r) in node.replicators.iter().enumerate() {
            let id = 8_589_934_593u64 + 257 * (n as u64 * 8 + i as u64);
            let state = match r.blocking_errors {
                Some(errors) => format!("blocking consecutive_error_times={errors}"),
                None => "idle".to_string(),
            };
            let _ = write!(
                out,
                "replicator_{id}@{}: next_index={}  flying_append_entries_size=0 {state} hc={} ac={} ic=0\r\n",
                peer(&r.peer),
                r.next_index,
                clock.heartbeats,
                last.saturating_sub(1)
            );
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve_model::{CopysetKey, ReplicatorView};

    fn text(answer: &HttpAnswer) -> String {
        String::from_utf8(answer.to_bytes()).unwrap()
    }

    #[test]
    fn vars_lines_and_the_404_are_brpcs() {
        // The shared doc's samples (curve-protocols.md §1), from B:vars_service.cpp:257-291,
        // 419-422 and C:src/common/stringstatus.cpp:36-56.
        let vars = mds_dummy_vars(true, "127.0.0.1:6666");
        assert_eq!(
            text(&vars_answer("10.0.0.5:6667", &vars, "mds_status")),
            "HTTP/1.1 200 OK\r\nContent-Length: 23\r\nContent-Type: text/plain\r\n\r\nmds_status : \"leader\"\r\n"
        );
        assert_eq!(
            String::from_utf8(vars_answer("x", &vars, "mds_config_*").body).unwrap(),
            "mds_config_mds_listen_addr : \"{\"conf_name\":\"mds.listen.addr\",\"conf_value\":\"127.0.0.1:6666\"}\"\r\n"
        );
        assert_eq!(
            text(&vars_answer("10.0.0.5:6667", &vars, "no_such_var")),
            "HTTP/1.1 404 Not Found\r\nContent-Length: 60\r\nContent-Type: text/plain\r\nx-bd-error-code: 1002\r\n\r\n\
             [10.0.0.5:6667][E1002]Fail to find any bvar by `no_such_var'"
        );
        let follower = mds_dummy_vars(false, "a:1");
        assert_eq!(
            vars_answer("x", &follower, "mds_status").body,
            b"mds_status : \"follower\"\r\n"
        );
        assert!(wildcard_match("mds_$tatus", "mds_status"));
    }

    #[test]
    fn bvar_names_are_underscored_as_bvar_does() {
        assert_eq!(
            bvar_name("topology_metric_chunkserver_Id_", "1_diskCapacity"),
            "topology_metric_chunkserver_id_1_disk_capacity"
        );
        assert_eq!(
            bvar_name("topology_metric_logicalPool_", "logicalPool1_copyset_num"),
            "topology_metric_logical_pool_logical_pool1_copyset_num"
        );
        assert_eq!(
            bvar_name("mds_config", "mds.heartbeat.misstimeoutMs"),
            "mds_config_mds_heartbeat_misstimeout_ms"
        );
    }

    fn model() -> CurveModel {
        use crate::curve_model::*;
        let mut model = CurveModel::new(CurveSettings::default());
        let map: ClusterMapFile = serde_json::from_value(serde_json::json!({
            "servers": [
                {"name": "server1", "internalip": "127.0.0.1", "internalport": 0, "externalip": "127.0.0.1",
                 "externalport": 0, "zone": "zone1", "physicalpool": "pool1"},
                {"name": "server2", "internalip": "127.0.0.2", "internalport": 0, "externalip": "127.0.0.2",
                 "externalport": 0, "zone": "zone2", "physicalpool": "pool1"},
                {"name": "server3", "internalip": "127.0.0.3", "internalport": 0, "externalip": "127.0.0.3",
                 "externalport": 0, "zone": "zone3", "physicalpool": "pool1"}],
            "logicalpools": [{"name": "logicalPool1", "physicalpool": "pool1", "type": 0, "replicasnum": 3,
                 "copysetnum": 2, "zonenum": 3, "scatterwidth": 0}]
        }))
        .unwrap();
        model.apply_physical_pool(&map).unwrap();
        let now = std::time::Instant::now();
        for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
            let req = RegistRequest {
                disk_type: "nvme".into(),
                disk_path: "local://./0/".into(),
                host_ip: ip.into(),
                port: 8200,
                external_ip: None,
                id: None,
                token: None,
            };
            let (id, token) = model.regist_chunkserver(&req).id_token.unwrap();
            model.chunkserver_started(id, ip);
            model.heartbeat(id, &token, ip, 8200, now);
        }
        model.apply_logical_pool(&map, 1_600_000_000).unwrap();
        model
    }

    fn call(model: &mut CurveModel, method: &str, body: &str) -> String {
        let answer = mds_call(
            model,
            "10.0.0.5:6666",
            "TopologyService",
            method,
            body.as_bytes(),
            "application/json",
        );
        format!(
            "{} {}",
            answer.status,
            String::from_utf8(answer.body).unwrap()
        )
    }

    #[test]
    fn topology_answers_are_json2pbs_of_the_managers_fields() {
        // Shapes as in curve-protocols.md §3's examples; fields in .proto order
        // (C:proto/topology.proto:125-139,204-216,274-280,308-312,413-416).
        let mut m = model();
        assert_eq!(
            call(&mut m, "ListPhysicalPool", "{}"),
            r#"200 {"statusCode":0,"physicalPoolInfos":[{"physicalPoolID":1,"physicalPoolName":"pool1","desc":""}]}"#
        );
        assert_eq!(
            call(&mut m, "ListPoolZone", r#"{"physicalPoolName":"pool1"}"#)
                .split("},{")
                .next()
                .unwrap(),
            r#"200 {"statusCode":0,"zones":[{"zoneID":1,"zoneName":"zone1","physicalPoolID":1,"physicalPoolName":"pool1","desc":"""#
        );
        assert_eq!(
            call(&mut m, "ListZoneServer", r#"{"zoneID":1}"#),
            r#"200 {"statusCode":0,"serverInfo":[{"serverID":1,"hostName":"server1","internalIp":"127.0.0.1","internalPort":0,"externalIp":"127.0.0.1","externalPort":0,"zoneID":1,"zoneName":"zone1","physicalPoolID":1,"physicalPoolName":"pool1","desc":""}]}"#
        );
        assert_eq!(
            call(&mut m, "ListChunkServer", r#"{"serverID":1}"#),
            r#"200 {"statusCode":0,"chunkServerInfos":[{"chunkServerID":1,"diskType":"nvme","hostIp":"127.0.0.1","port":8200,"status":"READWRITE","diskStatus":"DISKNORMAL","onlineState":"ONLINE","mountPoint":"local://./0/","diskCapacity":107374182400,"diskUsed":10737418240,"externalIp":"127.0.0.1"}]}"#
        );
        assert_eq!(
            call(
                &mut m,
                "GetChunkServer",
                r#"{"hostIp":"127.0.0.1","port":8299}"#
            ),
            r#"200 {"statusCode":-6}"#
        );
        // A string for a uint32 drops the optional field: InvalidParam.
        assert_eq!(
            call(&mut m, "GetChunkServer", r#"{"chunkServerID":"7"}"#),
            r#"200 {"statusCode":-2}"#
        );
        assert_eq!(
            call(&mut m, "GetCopySetsInCluster", ""),
            r#"200 {"statusCode":0,"copysetInfos":[{"logicalPoolId":1,"copysetId":1},{"logicalPoolId":1,"copysetId":2}]}"#
        );
        assert_eq!(
            call(&mut m, "GetCopySetsInChunkServer", r#"{"chunkServerID":1}"#),
            r#"200 {"statusCode":0,"copysetInfos":[{"logicalPoolId":1,"copysetId":1},{"logicalPoolId":1,"copysetId":2}]}"#
        );
        assert_eq!(
            call(
                &mut m,
                "GetChunkServerListInCopySets",
                r#"{"logicalPoolId":1,"copysetId":[1]}"#
            ),
            r#"200 {"statusCode":0,"csInfo":[{"copysetId":1,"csLocs":[{"chunkServerID":1,"hostIp":"127.0.0.1","port":8200,"externalIp":"127.0.0.1"},{"chunkServerID":2,"hostIp":"127.0.0.2","port":8200,"externalIp":"127.0.0.2"},{"chunkServerID":3,"hostIp":"127.0.0.3","port":8200,"externalIp":"127.0.0.3"}]}]}"#
        );
        // The first missing copyset ends it with -11, what came before kept.
        assert!(
            call(
                &mut m,
                "GetChunkServerListInCopySets",
                r#"{"logicalPoolId":1,"copysetId":[2,9,1]}"#
            )
            .starts_with(r#"200 {"statusCode":-11,"csInfo":[{"copysetId":2,"#)
        );
    }

    #[test]
    fn a_logical_pools_policies_are_base64_after_a_json_body() {
        let mut m = model();
        let policy = "{\n   \"copysetNum\" : 2,\n   \"replicaNum\" : 3,\n   \"zoneNum\" : 3\n}\n";
        assert_eq!(
            call(&mut m, "ListLogicalPool", r#"{"physicalPoolID":1}"#),
            format!(
                r#"200 {{"statusCode":0,"logicalPoolInfos":[{{"logicalPoolID":1,"logicalPoolName":"logicalPool1","physicalPoolID":1,"type":"PAGEFILE","createTime":1600000000,"redundanceAndPlaceMentPolicy":"{}","userPolicy":"{}","allocateStatus":"ALLOW"}}]}}"#,
                base64_encode(policy.as_bytes()),
                base64_encode(b"{\"policy\" : 1}")
            )
        );
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_encode(b"abc"), "YWJj");
        assert_eq!(
            call(&mut m, "ListLogicalPool", ""),
            r#"200 {"statusCode":-2}"#
        );
    }

    #[test]
    fn bad_requests_get_brpcs_error_bodies() {
        let mut m = model();
        // curve-protocols.md §2's error bodies (J:508-520, H:1323-1333,1402-1409,1463-1466).
        assert_eq!(
            call(&mut m, "GetChunkServer", r#"{"chunkServerID":"#),
            "400 [10.0.0.5:6666][E1003]Fail to parse http body as curve.mds.topology.GetChunkServerInfoRequest, Invalid json format"
        );
        assert_eq!(
            call(&mut m, "GetChunkServerListInCopySets", "{}"),
            "400 [10.0.0.5:6666][E1003]Fail to parse http body as curve.mds.topology.GetChunkServerListInCopySetsRequest, Missing required field: curve.mds.topology.GetChunkServerListInCopySetsRequest.logicalPoolId"
        );
        assert_eq!(
            call(&mut m, "GetChunkServerListInCopySets", ""),
            "400 [10.0.0.5:6666][E1003]curve.mds.topology.GetChunkServerListInCopySetsRequest needs to be created from a non-empty json, it has required fields."
        );
        assert_eq!(
            call(&mut m, "NoSuch", "{}"),
            "404 [10.0.0.5:6666][E1002]Fail to find method on `/TopologyService/NoSuch'"
        );
        let answer = mds_call(
            &mut m,
            "x:1",
            "ScheduleService",
            "RapidLeaderSchedule",
            br#"{"logicalPoolID":1}"#,
            "",
        );
        assert_eq!(
            text(&answer),
            "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"statusCode\":0}"
        );
        assert_eq!(
            pb_route("/curve.mds.topology.TopologyService/ListPhysicalPool/extra"),
            Some(("TopologyService", "ListPhysicalPool"))
        );
        assert_eq!(pb_route("/vars/mds_status"), None);
    }

    #[test]
    fn set_chunkserver_takes_the_status_by_name_or_number() {
        // curve-protocols.md §3's examples; the enum by name or number (J:173-193).
        let mut m = model();
        let answer = mds_call(
            &mut m,
            "10.0.0.5:6666",
            "TopologyService",
            "SetChunkServer",
            br#"{"chunkServerID":1,"chunkServerStatus":"PENDDING"}"#,
            "application/json",
        );
        assert_eq!(
            text(&answer),
            "HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Type: application/json\r\n\r\n{\"statusCode\":0}"
        );
        assert_eq!(m.chunkservers[&1].status, ChunkServerStatus::Pendding);
        let set = |m: &mut CurveModel, body: &str| call(m, "SetChunkServer", body);
        assert_eq!(
            set(&mut m, r#"{"chunkServerID":1,"chunkServerStatus":0}"#),
            r#"200 {"statusCode":0}"#
        );
        assert_eq!(m.chunkservers[&1].status, ChunkServerStatus::ReadWrite);
        assert_eq!(
            set(&mut m, r#"{"chunkServerID":1,"chunkServerStatus":2}"#),
            r#"200 {"statusCode":0}"#
        );
        assert_eq!(m.chunkservers[&1].status, ChunkServerStatus::Retired);
        assert_eq!(
            set(
                &mut m,
                r#"{"chunkServerID":9,"chunkServerStatus":"PENDDING"}"#
            ),
            r#"200 {"statusCode":-6}"#
        );
        let prefix = "400 [10.0.0.5:6666][E1003]Fail to parse http body as curve.mds.topology.SetChunkServerStatusRequest, ";
        let field = "`curve.mds.topology.SetChunkServerStatusRequest.chunkServerStatus'";
        assert_eq!(
            set(
                &mut m,
                r#"{"chunkServerID":1,"chunkServerStatus":"retired"}"#
            ),
            format!("{prefix}Invalid value `\"retired\"' for field {field} which SHOULD be enum")
        );
        assert_eq!(
            set(&mut m, r#"{"chunkServerID":1,"chunkServerStatus":7}"#),
            format!("{prefix}Invalid value `7' for field {field} which SHOULD be enum")
        );
        assert_eq!(
            set(&mut m, r#"{"chunkServerID":1}"#),
            format!(
                "{prefix}Missing required field: curve.mds.topology.SetChunkServerStatusRequest.chunkServerStatus"
            )
        );
        // Nothing changed by a refused body.
        assert_eq!(m.chunkservers[&1].status, ChunkServerStatus::Retired);
    }

    #[test]
    fn deletions_answer_curves_codes_and_the_lists_follow() {
        let mut m = model();
        // curve-protocols.md §2/§3's DeleteChunkServer examples.
        assert_eq!(
            call(&mut m, "DeleteChunkServer", r#"{"chunkServerID":1}"#),
            r#"200 {"statusCode":-18}"#
        );
        assert_eq!(
            call(&mut m, "DeleteChunkServer", "{}"),
            "400 [10.0.0.5:6666][E1003]Fail to parse http body as curve.mds.topology.DeleteChunkServerRequest, Missing required field: curve.mds.topology.DeleteChunkServerRequest.chunkServerID"
        );
        assert_eq!(
            call(&mut m, "DeleteChunkServer", r#"{"chunkServerID":"7"}"#),
            "400 [10.0.0.5:6666][E1003]Fail to parse http body as curve.mds.topology.DeleteChunkServerRequest, Invalid value `\"7\"' for field `curve.mds.topology.DeleteChunkServerRequest.chunkServerID' which SHOULD be UINT32"
        );
        assert_eq!(
            call(&mut m, "DeleteServer", r#"{"serverID":3}"#),
            r#"200 {"statusCode":-14}"#
        );
        // RETIRED: by ip:port GetChunkServer no longer finds it, by id it does.
        m.set_chunkserver(3, ChunkServerStatus::Retired);
        assert_eq!(
            call(
                &mut m,
                "GetChunkServer",
                r#"{"hostIp":"127.0.0.3","port":8200}"#
            ),
            r#"200 {"statusCode":-6}"#
        );
        assert!(
            call(&mut m, "GetChunkServer", r#"{"chunkServerID":3}"#)
                .contains(r#""status":"RETIRED""#)
        );
        assert_eq!(
            call(&mut m, "DeleteChunkServer", r#"{"chunkServerID":3}"#),
            r#"200 {"statusCode":0}"#
        );
        assert_eq!(
            call(&mut m, "DeleteChunkServer", r#"{"chunkServerID":3}"#),
            r#"200 {"statusCode":-6}"#
        );
        assert_eq!(
            call(&mut m, "ListChunkServer", r#"{"serverID":3}"#),
            r#"200 {"statusCode":0}"#
        );
        // Still a member of both copysets (RETIRED by hand, not drained): the list of its
        // copysets' members stops at it with InternalError (1392-1407).
        assert_eq!(
            call(
                &mut m,
                "GetChunkServerListInCopySets",
                r#"{"logicalPoolId":1,"copysetId":[1,2]}"#
            ),
            r#"200 {"statusCode":-1,"csInfo":[{"copysetId":1,"csLocs":[{"chunkServerID":1,"hostIp":"127.0.0.1","port":8200,"externalIp":"127.0.0.1"},{"chunkServerID":2,"hostIp":"127.0.0.2","port":8200,"externalIp":"127.0.0.2"}]}]}"#
        );
        assert_eq!(
            call(&mut m, "DeleteServer", r#"{"serverID":3}"#),
            r#"200 {"statusCode":0}"#
        );
        assert_eq!(
            call(&mut m, "ListZoneServer", r#"{"zoneID":3}"#),
            r#"200 {"statusCode":0}"#
        );
        assert_eq!(
            call(&mut m, "DeleteServer", r#"{"serverID":3}"#),
            r#"200 {"statusCode":-7}"#
        );
        assert_eq!(
            call(&mut m, "ListChunkServer", r#"{"serverID":3}"#),
            r#"200 {"statusCode":-7}"#
        );
        assert_eq!(
            call(&mut m, "DeleteServer", "{}"),
            "400 [10.0.0.5:6666][E1003]Fail to parse http body as curve.mds.topology.DeleteServerRequest, Missing required field: curve.mds.topology.DeleteServerRequest.serverID"
        );
    }

    #[test]
    fn a_drained_chunkserver_lists_no_copysets() {
        // A fourth server in zone 1 takes ChunkServer 1's copysets once it is PENDDING.
        use crate::curve_model::{ClusterMapFile, RegistRequest};
        let mut m = model();
        let map: ClusterMapFile = serde_json::from_value(serde_json::json!({"servers": [
            {"name": "server1", "internalip": "127.0.0.1", "internalport": 0, "externalip": "127.0.0.1",
             "externalport": 0, "zone": "zone1", "physicalpool": "pool1"},
            {"name": "server2", "internalip": "127.0.0.2", "internalport": 0, "externalip": "127.0.0.2",
             "externalport": 0, "zone": "zone2", "physicalpool": "pool1"},
            {"name": "server3", "internalip": "127.0.0.3", "internalport": 0, "externalip": "127.0.0.3",
             "externalport": 0, "zone": "zone3", "physicalpool": "pool1"},
            {"name": "server4", "internalip": "127.0.0.4", "internalport": 0, "externalip": "127.0.0.4",
             "externalport": 0, "zone": "zone1", "physicalpool": "pool1"}]}))
        .unwrap();
        m.apply_physical_pool(&map).unwrap();
        let req = RegistRequest {
            disk_type: "nvme".into(),
            disk_path: "local://./0/".into(),
            host_ip: "127.0.0.4".into(),
            port: 8200,
            external_ip: None,
            id: None,
            token: None,
        };
        let (id, _) = m.regist_chunkserver(&req).id_token.unwrap();
        m.chunkserver_started(id, "127.0.0.4");
        assert_eq!(
            call(
                &mut m,
                "SetChunkServer",
                r#"{"chunkServerID":1,"chunkServerStatus":"PENDDING"}"#
            ),
            r#"200 {"statusCode":0}"#
        );
        let now = std::time::Instant::now();
        for round in 0..3 {
            m.schedule(now + m.settings.change_peer_time * round);
        }
        assert_eq!(
            call(&mut m, "GetCopySetsInChunkServer", r#"{"chunkServerID":1}"#),
            r#"200 {"statusCode":0}"#
        );
        assert_eq!(
            call(&mut m, "GetCopySetsInChunkServer", r#"{"chunkServerID":4}"#),
            r#"200 {"statusCode":0,"copysetInfos":[{"logicalPoolId":1,"copysetId":1},{"logicalPoolId":1,"copysetId":2}]}"#
        );
    }

    #[test]
    fn schedule_bvars_count_the_operators_in_flight() {
        let mut m = model();
        let names = |vars: &[(String, VarValue)]| {
            vars.iter()
                .map(|(n, v)| format!("{n}={v:?}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&scheduler_vars(&m)),
            [
                "mds_scheduler_metric_operator_num=Num(0)",
                "mds_scheduler_metric_add_peer_num=Num(0)",
                "mds_scheduler_metric_remove_peer_num=Num(0)",
                "mds_scheduler_metric_transfer_leader_num=Num(0)",
                "mds_scheduler_metric_change_peer_num=Num(0)",
                "mds_scheduler_metric_normal_operator_num=Num(0)",
                "mds_scheduler_metric_high_operator_num=Num(0)",
            ]
        );
        let op = crate::curve_model::ChangePeer {
            copyset: (1, 1),
            source: 1,
            target: 2,
            created: std::time::Instant::now(),
        };
        m.operators.insert((1, 1), op);
        let vars = scheduler_vars(&m);
        assert_eq!(
            String::from_utf8(vars_answer("x", &vars, "mds_scheduler_metric_*operator_num").body)
                .unwrap(),
            "mds_scheduler_metric_high_operator_num : 1\r\nmds_scheduler_metric_normal_operator_num : 0\r\nmds_scheduler_metric_operator_num : 1\r\n"
        );
    }

    #[test]
    fn chunkserver_status_is_the_loaded_flag() {
        let answer = chunkserver_status(true, "application/json");
        assert_eq!(
            text(&answer),
            "HTTP/1.1 200 OK\r\nContent-Length: 23\r\nContent-Type: application/json\r\n\r\n{\"copysetLoadFin\":true}"
        );
        assert_eq!(
            chunkserver_status(false, "").body,
            b"{\"copysetLoadFin\":false}"
        );
    }

    #[test]
    fn pool_bvars_count_members_and_capacity() {
        let m = model();
        let vars = topology_vars(&m);
        let get = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(
            get("topology_metric_logical_pool_logical_pool1_copyset_num"),
            Some(VarValue::Num(2))
        );
        assert_eq!(
            get("topology_metric_logical_pool_logical_pool1_chunkserver_num"),
            Some(VarValue::Num(3))
        );
        assert_eq!(
            get("topology_metric_logical_pool_logical_pool1_logical_capacity"),
            Some(VarValue::Num(80 << 30))
        );
        assert_eq!(
            get("topology_metric_chunkserver_id_1_copysetnum"),
            Some(VarValue::Num(2))
        );
    }

    fn node(group: CopysetKey, leader: bool) -> RaftNode {
        let p = |port: u32| ("127.0.0.1".to_string(), port);
        RaftNode {
            group,
            peer: p(8200),
            leader,
            term: 2,
            peers: vec![p(8200), p(8201), p(8202)],
            leader_peer: (!leader).then(|| p(8201)),
            last_index: 2580,
            replicators: if leader {
                vec![
                    ReplicatorView {
                        peer: p(8201),
                        next_index: 2581,
                        blocking_errors: None,
                    },
                    ReplicatorView {
                        peer: p(8202),
                        next_index: 2,
                        blocking_errors: Some(4),
                    },
                ]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn raft_stat_is_braft_describe_byte_for_byte() {
        // The layout of curve-protocols.md §4's page (R:src/braft/node.cpp:2379-2470,
        // log_manager.cpp:893-901, fsm_caller.cpp:482-518, ballot_box.cpp:158-174,
        // snapshot_executor.cpp:642-659, replicator.cpp:1254-1275, repeated_timer_task.cpp:
        // 182-208, builtin_service_impl.cpp:71-86).
        let clock = RaftClock {
            phase_ms: 588,
            election_timeout_ms: 1000,
            snapshot_interval_ms: 1_800_000,
            heartbeats: 1741,
        };
        let page = raft_stat(&[node((1, 1), true), node((1, 2), false)], clock);
        let expected = "[4294967297]\r\n\
            peer_id: 127.0.0.1:8200:0\r\n\
            state: LEADER\r\n\
            readonly: 0\r\n\
            term: 2\r\n\
            conf_index: 1\r\n\
            peers: 127.0.0.1:8200:0 127.0.0.1:8201:0 127.0.0.1:8202:0\r\n\
            changing_conf: NO    stage: STAGE_NONE\r\n\
            election_timer: timeout(1000ms) STOPPED\r\n\
            vote_timer: timeout(1000ms) STOPPED\r\n\
            stepdown_timer: timeout(1000ms) SCHEDULING(in 412ms)\r\n\
            snapshot_timer: timeout(1800000ms) SCHEDULING(in 1799412ms)\r\n\
            storage: [1, 2580]\n\
            disk_index: 2580\n\
            known_applied_index: 2580\n\
            last_log_id: (index=2580,term=2)\n\
            state_machine: Idle\n\
            last_committed_index: 2580\r\n\
            last_snapshot_index: 0\r\n\
            last_snapshot_term: 0\r\n\
            snapshot_status: IDLE\r\n\
            replicator_8589934593@127.0.0.1:8201:0: next_index=2581  flying_append_entries_size=0 idle hc=1741 ac=2579 ic=0\r\n\
            replicator_8589934850@127.0.0.1:8202:0: next_index=2  flying_append_entries_size=0 blocking consecutive_error_times=4 hc=1741 ac=2579 ic=0\r\n\
            \r\n\
            [4294967298]\r\n\
            peer_id: 127.0.0.1:8200:0\r\n\
            state: FOLLOWER\r\n\
            readonly: 0\r\n\
            term: 2\r\n\
            conf_index: 1\r\n\
            peers: 127.0.0.1:8200:0 127.0.0.1:8201:0 127.0.0.1:8202:0\r\n\
            leader: 127.0.0.1:8201:0\r\n\
            last_msg_to_now: 88\r\n\
            election_timer: timeout(1000ms) SCHEDULING(in 412ms)\r\n\
            vote_timer: timeout(1000ms) STOPPED\r\n\
            stepdown_timer: timeout(1000ms) STOPPED\r\n\
            snapshot_timer: timeout(1800000ms) SCHEDULING(in 1799412ms)\r\n\
            storage: [1, 2580]\n\
            disk_index: 2580\n\
            known_applied_index: 2580\n\
            last_log_id: (index=2580,term=2)\n\
            state_machine: Idle\n\
            last_committed_index: 2580\r\n\
            last_snapshot_index: 0\r\n\
            last_snapshot_term: 0\r\n\
            snapshot_status: IDLE\r\n\
            \r\n";
        assert_eq!(page, expected);
        // A follower that knows no leader.
        let mut orphan = node((1, 3), false);
        orphan.leader_peer = None;
        let page = raft_stat(&[orphan], clock);
        assert!(
            page.contains("\r\nleader: 0.0.0.0:0:0\r\nlast_msg_to_now: 588\r\n"),
            "{page}"
        );
        // What Curve's tool reads (C:src/tools/copyset_check_core.cpp:518-584): groups split on
        // \r\n\r\n, the storage value's first `=` gives the last log index.
        let page = raft_stat(&[node((1, 1), true)], clock);
        let group = page.split("\r\n\r\n").next().unwrap();
        let storage = group
            .split("\r\n")
            .find_map(|l| l.strip_prefix("storage: "))
            .unwrap();
        let last: u64 = storage
            .split('=')
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(last, 2580);
    }
}
