//! Typed calls to Curve's daemons over any [`CurveTransport`]: brpc JSON RPCs, `/vars`,
//! `/raft_stat`. Every error names the endpoint and what was unexpected.

use std::collections::BTreeMap;

use super::raft_stat::{RaftNode, parse_raft_stat};
use super::topology::{Rpc, StatusCode};
use super::vars::{self, MdsDummyAnswer, PoolMetricNames, PoolSpace, clip};
use super::{CallError, CurveTransport, HttpAnswer};

/// A brpc HTTP+JSON call: `POST /<full.Service>/<Method>` with the request as JSON (brpc
/// parses any non-`application/proto` body as JSON, B:src/brpc/policy/http_rpc_protocol.cpp
/// l.1451-1468, and answers JSON). A non-zero `statusCode` is an error naming its meaning.
pub async fn call<T: CurveTransport, R: Rpc>(
    transport: &T,
    addr: &str,
    request: &R,
) -> Result<R::Response, CallError> {
    let (code, response) = call_with_code(transport, addr, request).await?;
    match code {
        0 => Ok(response),
        code => Err(CallError::bad(
            &format!("{addr}{}", R::path()),
            format!("statusCode {code} ({})", code_name(R::SERVICE, code)),
        )),
    }
}

/// A brpc HTTP+JSON call whose non-zero `statusCode` is an answer too (the caller decides
/// what it means).
pub async fn call_with_code<T: CurveTransport, R: Rpc>(
    transport: &T,
    addr: &str,
    request: &R,
) -> Result<(i32, R::Response), CallError> {
    let path = R::path();
    let endpoint = format!("{addr}{path}");
    let body = serde_json::to_string(request)
        .map_err(|e| CallError::bad(&endpoint, format!("request: {e}")))?;
    let answer = transport.post_json(addr, &path, body).await?;
    ok_status(&endpoint, &answer)?;
    let response: R::Response = serde_json::from_str(&answer.body).map_err(|e| {
        CallError::bad(
            &endpoint,
            format!(
                "{}Response does not read: {e}: {:?}",
                R::METHOD,
                clip(&answer.body)
            ),
        )
    })?;
    Ok((response.status_code(), response))
}

fn code_name(service: &str, code: i32) -> &'static str {
    if service == super::schedule::SCHEDULE_SERVICE {
        super::schedule::schedule_code_name(code)
    } else {
        super::topology::topology_code_name(code)
    }
}

/// Any status but 200 is an error; brpc's error body `[ip:port][E<code>]<text>`
/// (B:src/brpc/policy/http_rpc_protocol.cpp l.801-819, B:src/brpc/controller.cpp l.401-428)
/// is quoted with its code.
fn ok_status(endpoint: &str, answer: &HttpAnswer) -> Result<(), CallError> {
    if answer.status == 200 {
        return Ok(());
    }
    Err(CallError::bad(
        endpoint,
        format!(
            "HTTP {}: {}",
            answer.status,
            describe_error_body(&answer.body)
        ),
    ))
}

/// `[10.0.0.5:6666][E1002]Fail to find method` → `brpc error 1002: Fail to find method`.
pub fn describe_error_body(body: &str) -> String {
    let brpc = body
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("][E"))
        .and_then(|(_, rest)| rest.split_once(']'))
        .filter(|(code, _)| code.parse::<i32>().is_ok());
    match brpc {
        Some((code, text)) => format!("brpc error {code}: {}", clip(text.trim_end())),
        None if body.trim().is_empty() => "an empty body".into(),
        None => format!("{:?}", clip(body)),
    }
}

/// These exact bvars from `/vars`. Names that do not exist are left out; when none exists
/// brpc answers 404 with E1002 (B:src/brpc/builtin/vars_service.cpp l.419-422), which is an
/// empty map here, as Curve's tool takes it for "not found"
/// (C:src/tools/metric_client.cpp l.76-78).
pub async fn get_vars<T: CurveTransport>(
    transport: &T,
    addr: &str,
    names: &[&str],
) -> Result<BTreeMap<String, String>, CallError> {
    let path = vars::vars_path(names);
    let endpoint = format!("{addr}{path}");
    let answer = transport.get(addr, &path).await?;
    if answer.status == 404 && answer.body.contains("][E1002]") {
        return Ok(BTreeMap::new());
    }
    ok_status(&endpoint, &answer)?;
    vars::parse_vars(&answer.body).map_err(|e| CallError::bad(&endpoint, e))
}

/// What an MDS's dummy port says: its role and its `mds.listen.addr`
/// (C:src/tools/mds_client.cpp l.826-839, l.887-904 read the same two bvars).
pub async fn mds_dummy<T: CurveTransport>(
    transport: &T,
    dummy_addr: &str,
) -> Result<MdsDummyAnswer, CallError> {
    let names = [vars::MDS_STATUS, vars::MDS_LISTEN_ADDR];
    let found = get_vars(transport, dummy_addr, &names).await?;
    MdsDummyAnswer::from_vars(&found)
        .map_err(|e| CallError::bad(&format!("{dummy_addr}{}", vars::vars_path(&names)), e))
}

/// The space bvars of these logical pools, from the leader MDS.
pub async fn pool_space<T: CurveTransport>(
    transport: &T,
    mds_addr: &str,
    pools: &[String],
) -> Result<BTreeMap<String, PoolSpace>, CallError> {
    if pools.is_empty() {
        return Ok(BTreeMap::new());
    }
    let names: Vec<(String, PoolMetricNames)> = (pools.iter())
        .map(|p| (p.clone(), PoolMetricNames::new(p)))
        .collect();
    let all: Vec<&str> = names.iter().flat_map(|(_, n)| n.all()).collect();
    let found = get_vars(transport, mds_addr, &all).await?;
    (names.iter())
        .map(|(pool, n)| {
            PoolSpace::from_vars(n, &found)
                .map(|space| (pool.clone(), space))
                .map_err(|e| CallError::bad(&format!("{mds_addr}{}", vars::vars_path(&all)), e))
        })
        .collect()
}

/// `/raft_stat` path in plain text (R:src/braft/builtin_service.proto l.8-10; brpc serves
/// builtins as HTML only to browsers, B:src/brpc/builtin/common.cpp l.34-46).
pub const RAFT_STAT_PATH: &str = "/raft_stat?console=1";

/// Every raft node a ChunkServer hosts.
pub async fn raft_stat<T: CurveTransport>(
    transport: &T,
    addr: &str,
) -> Result<Vec<RaftNode>, CallError> {
    let endpoint = format!("{addr}{RAFT_STAT_PATH}");
    let answer = transport.get(addr, RAFT_STAT_PATH).await?;
    ok_status(&endpoint, &answer)?;
    parse_raft_stat(&answer.body).map_err(|e| CallError::bad(&endpoint, e))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use axum::Router;
    use axum::http::StatusCode as Http;
    use axum::routing::{get, post};

    use super::*;
    use crate::curve::http::HttpTransport;
    use crate::curve::topology::{
        ChunkServerStatus, GetCopySetsInClusterRequest, ListChunkServerRequest,
    };

    /// A tiny brpc look-alike on loopback: good answers, brpc errors, garbage, a slow one.
    async fn serve() -> SocketAddr {
        const CS: &str = r#"{"statusCode":0,"chunkServerInfos":[{"chunkServerID":1,"diskType":"nvme","hostIp":"127.0.0.1","port":8200,"status":"RETIRED","diskStatus":"DISKNORMAL","onlineState":"OFFLINE","mountPoint":"local://./0/","diskCapacity":1,"diskUsed":0,"externalIp":"127.0.0.1"}]}"#;
        let app = Router::new()
            .route(
                "/curve.mds.topology.TopologyService/ListChunkServer",
                post(|body: String| async move {
                    // json2pb reads the exact field names.
                    if body == r#"{"serverID":3}"# { (Http::OK, CS.to_string()) } else { (Http::OK, r#"{"statusCode":-7}"#.to_string()) }
                }),
            )
            .route(
                "/curve.mds.topology.TopologyService/GetCopySetsInCluster",
                post(|| async { (Http::INTERNAL_SERVER_ERROR, "[10.0.0.5:6666][E2002]Fail to convert response to json, Missing required field: statusCode") }),
            )
            .route(
                "/curve.mds.topology.TopologyService/GetCopySetsInChunkServer",
                post(|| async { (Http::OK, "{\"statusCode\":0,\"copysetInfos\":[{\"logicalPoolId\":1,") }),
            )
            .route(
                "/vars/{names}",
                get(|axum::extract::Path(names): axum::extract::Path<String>| async move {
                    if names.starts_with("mds_status") {
                        (Http::OK, "mds_config_mds_listen_addr : \"{\"conf_name\":\"mds.listen.addr\",\"conf_value\":\"127.0.0.1:6666\"}\"\r\nmds_status : \"follower\"\r\n".to_string())
                    } else {
                        (Http::NOT_FOUND, format!("[127.0.0.1:6667][E1002]Fail to find any bvar by `{names}'"))
                    }
                }),
            )
            .route(
                "/raft_stat",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    ""
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn transport() -> HttpTransport {
        HttpTransport::new(Duration::from_millis(300))
    }

    #[tokio::test]
    async fn a_good_rpc_answer() {
        let addr = serve().await.to_string();
        let answer = call(
            &transport(),
            &addr,
            &ListChunkServerRequest { server_id: 3 },
        )
        .await
        .unwrap();
        assert_eq!(
            answer.chunk_server_infos[0].status,
            ChunkServerStatus::RETIRED
        );
    }

    #[tokio::test]
    async fn a_non_zero_status_code_is_named() {
        let addr = serve().await.to_string();
        let err = call(
            &transport(),
            &addr,
            &ListChunkServerRequest { server_id: 4 },
        )
        .await
        .unwrap_err();
        assert_eq!(
            err,
            CallError::BadAnswer {
                endpoint: format!("{addr}/curve.mds.topology.TopologyService/ListChunkServer"),
                reason: "statusCode -7 (ServerNotFound)".into()
            }
        );
    }

    #[tokio::test]
    async fn http_500_quotes_brpc_s_error() {
        let addr = serve().await.to_string();
        let err = call(&transport(), &addr, &GetCopySetsInClusterRequest {})
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CallError::BadAnswer {
                endpoint: format!("{addr}/curve.mds.topology.TopologyService/GetCopySetsInCluster"),
                reason: "HTTP 500: brpc error 2002: Fail to convert response to json, Missing required field: statusCode".into()
            }
        );
    }

    #[tokio::test]
    async fn garbled_json_names_the_message() {
        let addr = serve().await.to_string();
        let err = call(
            &transport(),
            &addr,
            &crate::curve::topology::GetCopySetsInChunkServerRequest {
                chunk_server_id: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert!(!err.is_unreachable());
        assert!(
            err.reason()
                .starts_with("GetCopySetsInChunkServerResponse does not read: EOF while parsing"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_slow_answer_times_out() {
        let addr = serve().await.to_string();
        let started = std::time::Instant::now();
        let err = raft_stat(&transport(), &addr).await.unwrap_err();
        assert_eq!(
            err,
            CallError::Unreachable {
                endpoint: format!("{addr}/raft_stat?console=1"),
                reason: "no answer within 300 ms".into()
            }
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        // Bind and drop: nothing listens on the port any more.
        let addr = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().to_string()
        };
        let err = mds_dummy(&transport(), &addr).await.unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(err.reason().starts_with("connect: "), "{err}");
        assert_eq!(
            err.endpoint(),
            format!("{addr}/vars/mds_status,mds_config_mds_listen_addr?console=1")
        );
    }

    #[tokio::test]
    async fn vars_dummy_and_missing_pool_bvars() {
        let addr = serve().await.to_string();
        let dummy = mds_dummy(&transport(), &addr).await.unwrap();
        assert_eq!(dummy.role, vars::MdsRole::Follower);
        assert_eq!(dummy.listen_addr, "127.0.0.1:6666");
        let space = pool_space(&transport(), &addr, &["pool1".into()])
            .await
            .unwrap();
        assert_eq!(
            space,
            BTreeMap::from([("pool1".to_string(), PoolSpace::default())])
        );
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            describe_error_body(
                "[10.0.0.5:6666][E1003]Fail to parse http body as curve.mds.topology.ListChunkServerRequest, Invalid json format"
            ),
            "brpc error 1003: Fail to parse http body as curve.mds.topology.ListChunkServerRequest, Invalid json format"
        );
        assert_eq!(describe_error_body(""), "an empty body");
        assert_eq!(describe_error_body("oops"), "\"oops\"");
    }
}
