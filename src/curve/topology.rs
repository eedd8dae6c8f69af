//! `curve.mds.topology.TopologyService` (C:proto/topology.proto l.452-485): the messages the
//! health check uses, as brpc's json2pb writes and reads them.
//!
//! json2pb (B:src/json2pb/pb_to_json.cpp, json_to_pb.cpp): field names are the `.proto` names
//! (Q:73-110); enums are written as their **names** (`-pb_enum_as_number` is off by default,
//! B:src/brpc/policy/http_rpc_protocol.cpp l.68-70; pb_to_json.cpp l.236-242) and read as a
//! name or a number (json_to_pb.cpp l.173-193); unset optional fields and empty repeated
//! fields are left out of answers (pb_to_json.cpp l.86-101), so every repeated field here
//! defaults to empty; integers are JSON numbers. Unknown keys are ignored here as json2pb
//! ignores them. Every answer carries `statusCode` (required `sint32`); Curve's handlers
//! answer HTTP 200 with a non-zero code on failure (C:src/mds/topology/topology_service.cpp
//! l.47-61).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A call: its request message names the service, the method and the answer's message.
pub trait Rpc: Serialize {
    type Response: DeserializeOwned + StatusCode;
    /// The full service name; brpc finds a service by it when the first path segment has a
    /// dot (B:src/brpc/policy/http_rpc_protocol.cpp l.947-953, l.969-986).
    const SERVICE: &'static str;
    const METHOD: &'static str;

    fn path() -> String {
        format!("/{}/{}", Self::SERVICE, Self::METHOD)
    }
}

/// The `statusCode` every Curve answer carries.
pub trait StatusCode {
    fn status_code(&self) -> i32;
}

pub const TOPOLOGY_SERVICE: &str = "curve.mds.topology.TopologyService";

/// The topology error codes (C:src/mds/common/mds_define.h l.75-94).
pub fn topology_code_name(code: i32) -> &'static str {
    match code {
        0 => "Success",
        -1 => "InternalError",
        -2 => "InvalidParam",
        -3 => "InitFail",
        -4 => "StorgeFail",
        -5 => "IdDuplicated",
        -6 => "ChunkServerNotFound",
        -7 => "ServerNotFound",
        -8 => "ZoneNotFound",
        -9 => "PhysicalPoolNotFound",
        -10 => "LogicalPoolNotFound",
        -11 => "CopySetNotFound",
        -12 => "GenCopysetErr",
        -13 => "AllocateIdFail",
        -14 => "CannotRemoveWhenNotEmpty",
        -15 => "IpPortDuplicated",
        -16 => "NameDuplicated",
        -17 => "CreateCopysetNodeOnChunkServerFail",
        -18 => "CannotRemoveNotRetired",
        -19 => "LogicalPoolExist",
        _ => "unknown code",
    }
}

/// A protobuf enum: written by name, read by name or number; anything else is an error
/// naming the enum and the value.
macro_rules! proto_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $num:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }

            pub fn number(self) -> i64 {
                match self { $($name::$variant => $num),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = serde_json::Value::deserialize(d)?;
                let found = match &value {
                    serde_json::Value::String(s) => $name::ALL.iter().find(|v| v.as_str() == s),
                    serde_json::Value::Number(n) => {
                        n.as_i64().and_then(|n| $name::ALL.iter().find(|v| v.number() == n))
                    }
                    _ => None,
                };
                found.copied().ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        concat!("unknown ", stringify!($name), " {}"),
                        value
                    ))
                })
            }
        }
    };
}

proto_enum!(
    /// C:proto/topology.proto l.41-45 (`PENDDING` sic).
    ChunkServerStatus { READWRITE = 0, PENDDING = 1, RETIRED = 2 }
);
proto_enum!(
    /// C:proto/topology.proto l.47-50.
    DiskState { DISKNORMAL = 0, DISKERROR = 1 }
);
proto_enum!(
    /// C:proto/topology.proto l.52-56. Decided by the MDS's heartbeat checker.
    OnlineState { ONLINE = 0, OFFLINE = 1, UNSTABLE = 2 }
);
proto_enum!(
    /// C:proto/topology.proto l.30-34.
    LogicalPoolType { PAGEFILE = 0, APPENDFILE = 1, APPENDECFILE = 2 }
);
proto_enum!(
    /// C:proto/topology.proto l.36-39.
    AllocateStatus { ALLOW = 0, DENY = 1 }
);

/// C:proto/topology.proto l.308-312.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhysicalPoolInfo {
    #[serde(rename = "physicalPoolID")]
    pub physical_pool_id: u32,
    #[serde(rename = "physicalPoolName")]
    pub physical_pool_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
}

/// C:proto/topology.proto l.335-344; the two `bytes` policy fields are not read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogicalPoolInfo {
    #[serde(rename = "logicalPoolID")]
    pub logical_pool_id: u32,
    #[serde(rename = "logicalPoolName")]
    pub logical_pool_name: String,
    #[serde(rename = "physicalPoolID")]
    pub physical_pool_id: u32,
    #[serde(rename = "type")]
    pub pool_type: LogicalPoolType,
    #[serde(rename = "createTime")]
    pub create_time: u64,
    #[serde(rename = "allocateStatus")]
    pub allocate_status: AllocateStatus,
}

/// C:proto/topology.proto l.274-280.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneInfo {
    #[serde(rename = "zoneID")]
    pub zone_id: u32,
    #[serde(rename = "zoneName")]
    pub zone_name: String,
    #[serde(rename = "physicalPoolID")]
    pub physical_pool_id: u32,
    #[serde(rename = "physicalPoolName")]
    pub physical_pool_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
}

/// C:proto/topology.proto l.204-216 (every field required).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    #[serde(rename = "serverID")]
    pub server_id: u32,
    pub host_name: String,
    pub internal_ip: String,
    pub internal_port: u32,
    pub external_ip: String,
    pub external_port: u32,
    #[serde(rename = "zoneID")]
    pub zone_id: u32,
    pub zone_name: String,
    #[serde(rename = "physicalPoolID")]
    pub physical_pool_id: u32,
    pub physical_pool_name: String,
    pub desc: String,
}

/// C:proto/topology.proto l.125-139.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkServerInfo {
    #[serde(rename = "chunkServerID")]
    pub chunk_server_id: u32,
    pub disk_type: String,
    pub host_ip: String,
    pub port: u32,
    pub status: ChunkServerStatus,
    pub disk_status: DiskState,
    pub online_state: OnlineState,
    pub mount_point: String,
    pub disk_capacity: u64,
    pub disk_used: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ip: Option<String>,
}

impl ChunkServerInfo {
    /// `ip:port`, as the tool addresses it (C:src/tools/copyset_check_core.cpp l.367-370).
    pub fn address(&self) -> String {
        format!("{}:{}", self.host_ip, self.port)
    }
}

/// C:proto/common.proto l.32-35.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopysetInfo {
    pub logical_pool_id: u32,
    pub copyset_id: u32,
}

/// C:proto/common.proto l.37-42.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkServerLocation {
    #[serde(rename = "chunkServerID")]
    pub chunk_server_id: u32,
    pub host_ip: String,
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ip: Option<String>,
}

impl ChunkServerLocation {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host_ip, self.port)
    }
}

/// C:proto/topology.proto l.413-416.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopySetServerInfo {
    pub copyset_id: u32,
    #[serde(default)]
    pub cs_locs: Vec<ChunkServerLocation>,
}

macro_rules! response {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            pub status_code: i32,
            $($(#[$fmeta])* #[serde(default)] pub $field: $ty,)*
        }

        impl StatusCode for $name {
            fn status_code(&self) -> i32 {
                self.status_code
            }
        }
    };
}

macro_rules! rpc {
    ($req:ty => $resp:ty, $service:expr, $method:literal) => {
        impl Rpc for $req {
            type Response = $resp;
            const SERVICE: &'static str = $service;
            const METHOD: &'static str = $method;
        }
    };
}

/// C:proto/topology.proto l.326-327: no fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ListPhysicalPoolRequest {}
response!(
    /// C:proto/topology.proto l.329-332.
    ListPhysicalPoolResponse { physical_pool_infos: Vec<PhysicalPoolInfo> }
);
rpc!(ListPhysicalPoolRequest => ListPhysicalPoolResponse, TOPOLOGY_SERVICE, "ListPhysicalPool");

/// C:proto/topology.proto l.297-301; the tool asks by id (C:src/tools/mds_client.cpp l.518-524).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListPoolZoneRequest {
    #[serde(rename = "physicalPoolID")]
    pub physical_pool_id: u32,
}
response!(
    /// C:proto/topology.proto l.303-306.
    ListPoolZoneResponse { zones: Vec<ZoneInfo> }
);
rpc!(ListPoolZoneRequest => ListPoolZoneResponse, TOPOLOGY_SERVICE, "ListPoolZone");

/// C:proto/topology.proto l.261-267; by zone id (C:src/tools/mds_client.cpp l.545-551).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListZoneServerRequest {
    #[serde(rename = "zoneID")]
    pub zone_id: u32,
}
response!(
    /// C:proto/topology.proto l.269-272.
    ListZoneServerResponse { server_info: Vec<ServerInfo> }
);
rpc!(ListZoneServerRequest => ListZoneServerResponse, TOPOLOGY_SERVICE, "ListZoneServer");

/// C:proto/topology.proto l.162-167; by server id (C:src/tools/mds_client.cpp l.572-578).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListChunkServerRequest {
    #[serde(rename = "serverID")]
    pub server_id: u32,
}
response!(
    /// C:proto/topology.proto l.169-172. RETIRED ChunkServers are included.
    ListChunkServerResponse { chunk_server_infos: Vec<ChunkServerInfo> }
);
rpc!(ListChunkServerRequest => ListChunkServerResponse, TOPOLOGY_SERVICE, "ListChunkServer");

/// C:proto/topology.proto l.386-390; by physical pool id (C:src/tools/mds_client.cpp l.491-497).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListLogicalPoolRequest {
    #[serde(rename = "physicalPoolID")]
    pub physical_pool_id: u32,
}
response!(
    /// C:proto/topology.proto l.392-395.
    ListLogicalPoolResponse { logical_pool_infos: Vec<LogicalPoolInfo> }
);
rpc!(ListLogicalPoolRequest => ListLogicalPoolResponse, TOPOLOGY_SERVICE, "ListLogicalPool");

/// C:proto/topology.proto l.443-444: no fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GetCopySetsInClusterRequest {}
response!(
    /// C:proto/topology.proto l.446-449.
    GetCopySetsInClusterResponse { copyset_infos: Vec<CopysetInfo> }
);
rpc!(GetCopySetsInClusterRequest => GetCopySetsInClusterResponse, TOPOLOGY_SERVICE, "GetCopySetsInCluster");

/// C:proto/topology.proto l.423-428: one of the id or `hostIp` + `port`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetCopySetsInChunkServerRequest {
    #[serde(rename = "chunkServerID", skip_serializing_if = "Option::is_none")]
    pub chunk_server_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}
response!(
    /// C:proto/topology.proto l.430-433.
    GetCopySetsInChunkServerResponse { copyset_infos: Vec<CopysetInfo> }
);
rpc!(GetCopySetsInChunkServerRequest => GetCopySetsInChunkServerResponse, TOPOLOGY_SERVICE, "GetCopySetsInChunkServer");

/// C:proto/topology.proto l.408-411.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetChunkServerListInCopySetsRequest {
    pub logical_pool_id: u32,
    pub copyset_id: Vec<u32>,
}
response!(
    /// C:proto/topology.proto l.418-421. The MDS stops at the first copyset it does not
    /// know, with -11 (C:src/mds/topology/topology_service_manager.cpp l.1382-1417).
    GetChunkServerListInCopySetsResponse { cs_info: Vec<CopySetServerInfo> }
);
rpc!(GetChunkServerListInCopySetsRequest => GetChunkServerListInCopySetsResponse, TOPOLOGY_SERVICE, "GetChunkServerListInCopySets");

/// C:proto/topology.proto l.194-197. Any transition is allowed and the MDS keeps it in memory
/// first: it reaches etcd within `mds.topology.TopologyUpdateToRepoSec` (60 s), so after an MDS
/// failover the status may be the old one again (C:src/mds/topology/topology.cpp l.364-387,
/// l.1175-1181) and is set again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetChunkServerRequest {
    #[serde(rename = "chunkServerID")]
    pub chunk_server_id: u32,
    pub chunk_server_status: ChunkServerStatus,
}
response!(
    /// C:proto/topology.proto l.199-201; -6 when the id is unknown
    /// (C:src/mds/topology/topology_service_manager.cpp l.314-328).
    SetChunkServerResponse {}
);
rpc!(SetChunkServerRequest => SetChunkServerResponse, TOPOLOGY_SERVICE, "SetChunkServer");

/// C:proto/topology.proto l.186-188.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeleteChunkServerRequest {
    #[serde(rename = "chunkServerID")]
    pub chunk_server_id: u32,
}
response!(
    /// C:proto/topology.proto l.190-192: -6 unknown, -18 not RETIRED
    /// (C:src/mds/topology/topology.cpp l.248-268).
    DeleteChunkServerResponse {}
);
rpc!(DeleteChunkServerRequest => DeleteChunkServerResponse, TOPOLOGY_SERVICE, "DeleteChunkServer");

/// C:proto/topology.proto l.251-254.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeleteServerRequest {
    #[serde(rename = "serverID")]
    pub server_id: u32,
}
response!(
    /// C:proto/topology.proto l.256-258: -7 unknown, -14 a ChunkServer of it is not RETIRED;
    /// otherwise its RETIRED ChunkServers go with it
    /// (C:src/mds/topology/topology_service_manager.cpp l.478-512).
    DeleteServerResponse {}
);
rpc!(DeleteServerRequest => DeleteServerResponse, TOPOLOGY_SERVICE, "DeleteServer");

#[cfg(test)]
mod tests {
    use super::*;

    // The answers below are in the exact shape json2pb gives them: declaration order,
    // enums by name, empty repeated fields absent.

    #[test]
    fn list_chunkserver_answer_reads_every_field() {
        let body = r#"{"statusCode":0,"chunkServerInfos":[{"chunkServerID":1,"diskType":"nvme","hostIp":"127.0.0.1","port":8200,"status":"PENDDING","diskStatus":"DISKNORMAL","onlineState":"UNSTABLE","mountPoint":"local://./0/","diskCapacity":107374182400,"diskUsed":10737418240,"externalIp":"127.0.0.1"}]}"#;
        let answer: ListChunkServerResponse = serde_json::from_str(body).unwrap();
        assert_eq!(
            answer,
            ListChunkServerResponse {
                status_code: 0,
                chunk_server_infos: vec![ChunkServerInfo {
                    chunk_server_id: 1,
                    disk_type: "nvme".into(),
                    host_ip: "127.0.0.1".into(),
                    port: 8200,
                    status: ChunkServerStatus::PENDDING,
                    disk_status: DiskState::DISKNORMAL,
                    online_state: OnlineState::UNSTABLE,
                    mount_point: "local://./0/".into(),
                    disk_capacity: 107374182400,
                    disk_used: 10737418240,
                    external_ip: Some("127.0.0.1".into()),
                }]
            }
        );
        assert_eq!(answer.chunk_server_infos[0].address(), "127.0.0.1:8200");
    }

    #[test]
    fn empty_lists_are_absent_and_codes_kept() {
        let answer: GetCopySetsInChunkServerResponse =
            serde_json::from_str(r#"{"statusCode":0}"#).unwrap();
        assert!(answer.copyset_infos.is_empty());
        let answer: GetChunkServerListInCopySetsResponse =
            serde_json::from_str(r#"{"statusCode":-11}"#).unwrap();
        assert_eq!(answer.status_code(), -11);
        assert_eq!(topology_code_name(-11), "CopySetNotFound");
    }

    #[test]
    fn enums_by_name_or_number_and_unknown_ones_refused() {
        let info = |state: &str| {
            format!(
                r#"{{"chunkServerID":1,"diskType":"nvme","hostIp":"h","port":1,"status":"READWRITE","diskStatus":"DISKNORMAL","onlineState":{state},"mountPoint":"m","diskCapacity":1,"diskUsed":0}}"#
            )
        };
        let read = |state: &str| serde_json::from_str::<ChunkServerInfo>(&info(state));
        assert_eq!(
            read("\"OFFLINE\"").unwrap().online_state,
            OnlineState::OFFLINE
        );
        assert_eq!(read("2").unwrap().online_state, OnlineState::UNSTABLE);
        let err = read("\"SLEEPING\"").unwrap_err().to_string();
        assert!(err.starts_with("unknown OnlineState \"SLEEPING\""), "{err}");
        assert!(read("\"online\"").is_err(), "names are case-sensitive");
        assert!(read("7").is_err());
    }

    #[test]
    fn a_missing_required_field_is_an_error() {
        let err = serde_json::from_str::<ListChunkServerResponse>(r#"{"chunkServerInfos":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `statusCode`"), "{err}");
    }

    #[test]
    fn requests_as_json2pb_reads_them() {
        let json = |v: &dyn erased::Json| v.json();
        assert_eq!(
            json(&GetChunkServerListInCopySetsRequest {
                logical_pool_id: 1,
                copyset_id: vec![1, 2]
            }),
            r#"{"logicalPoolId":1,"copysetId":[1,2]}"#
        );
        assert_eq!(
            json(&ListChunkServerRequest { server_id: 3 }),
            r#"{"serverID":3}"#
        );
        assert_eq!(
            json(&ListPoolZoneRequest {
                physical_pool_id: 1
            }),
            r#"{"physicalPoolID":1}"#
        );
        assert_eq!(
            json(&ListZoneServerRequest { zone_id: 2 }),
            r#"{"zoneID":2}"#
        );
        assert_eq!(
            json(&ListLogicalPoolRequest {
                physical_pool_id: 1
            }),
            r#"{"physicalPoolID":1}"#
        );
        assert_eq!(json(&ListPhysicalPoolRequest {}), "{}");
        assert_eq!(
            json(&GetCopySetsInChunkServerRequest {
                host_ip: Some("10.0.0.1".into()),
                port: Some(8200),
                ..Default::default()
            }),
            r#"{"hostIp":"10.0.0.1","port":8200}"#
        );
        assert_eq!(
            GetCopySetsInClusterRequest::path(),
            "/curve.mds.topology.TopologyService/GetCopySetsInCluster"
        );
    }

    mod erased {
        pub trait Json {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Json for T {
            fn json(&self) -> String {
                serde_json::to_string(self).unwrap()
            }
        }
    }

    #[test]
    fn server_and_pool_answers() {
        let servers: ListZoneServerResponse = serde_json::from_str(r#"{"statusCode":0,"serverInfo":[{"serverID":1,"hostName":"server1","internalIp":"127.0.0.1","internalPort":0,"externalIp":"127.0.0.1","externalPort":0,"zoneID":1,"zoneName":"zone1","physicalPoolID":1,"physicalPoolName":"pool1","desc":""}]}"#).unwrap();
        assert_eq!(servers.server_info[0].server_id, 1);
        assert_eq!(servers.server_info[0].zone_name, "zone1");
        let pools: ListLogicalPoolResponse = serde_json::from_str(r#"{"statusCode":0,"logicalPoolInfos":[{"logicalPoolID":1,"logicalPoolName":"pool1","physicalPoolID":1,"type":"PAGEFILE","createTime":1700000000,"redundanceAndPlaceMentPolicy":"eyJyZXBsaWNhTnVtIjozfQ==","userPolicy":"e30=","allocateStatus":"ALLOW"}]}"#).unwrap();
        assert_eq!(
            pools.logical_pool_infos,
            vec![LogicalPoolInfo {
                logical_pool_id: 1,
                logical_pool_name: "pool1".into(),
                physical_pool_id: 1,
                pool_type: LogicalPoolType::PAGEFILE,
                create_time: 1700000000,
                allocate_status: AllocateStatus::ALLOW,
            }]
        );
        let zones: ListPoolZoneResponse = serde_json::from_str(r#"{"statusCode":0,"zones":[{"zoneID":1,"zoneName":"zone1","physicalPoolID":1,"physicalPoolName":"pool1","desc":""}]}"#).unwrap();
        assert_eq!(zones.zones[0].zone_id, 1);
        let phys: ListPhysicalPoolResponse = serde_json::from_str(r#"{"statusCode":0,"physicalPoolInfos":[{"physicalPoolID":1,"physicalPoolName":"pool1","desc":"physical pool 1"}]}"#).unwrap();
        assert_eq!(phys.physical_pool_infos[0].physical_pool_name, "pool1");
    }
}
