//! The few changes the operator makes to Curve's topology, on the elected MDS: a ChunkServer's
//! status (PENDDING to retire it, READWRITE when it is wanted again), and deleting RETIRED
//! ChunkServers and emptied servers (curve-day2-facts.md §2.2; C:src/mds/topology/
//! topology_service_manager.cpp l.307-329, l.478-512). Each is idempotent: a deletion of what
//! is already gone is done, so an operator killed after sending one sends it again safely.

use futures::future::BoxFuture;

use super::client::{call, call_with_code};
use super::schedule::RapidLeaderScheduleRequest;
use super::topology::{
    ChunkServerStatus, DeleteChunkServerRequest, DeleteServerRequest, SetChunkServerRequest,
    topology_code_name,
};
use super::{CallError, CurveTransport};

/// `kTopoErrCodeChunkServerNotFound` and `kTopoErrCodeServerNotFound`
/// (C:src/mds/common/mds_define.h l.81-82).
const CHUNKSERVER_NOT_FOUND: i32 = -6;
const SERVER_NOT_FOUND: i32 = -7;

/// One change of Curve's topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CurveChange {
    SetStatus {
        id: u32,
        status: ChunkServerStatus,
    },
    /// Only a RETIRED ChunkServer can be deleted (-18 otherwise).
    DeleteChunkServer {
        id: u32,
    },
    /// Only a server whose ChunkServers are all RETIRED can be deleted (-14 otherwise).
    DeleteServer {
        id: u32,
    },
    /// Spread the copysets' leaders over the ChunkServers now, as curveadm's last deploy step
    /// does (`curve_ops_tool rapid-leader-schedule`, internal/task/task/bs/balance_leader.go):
    /// the MDS's own leader scheduler leaves a ChunkServer alone for
    /// `mds.scheduler.chunkserver.cooling.timeSec` (1800 s) after it starts. Every pool.
    RapidLeaderSchedule,
}

impl CurveChange {
    pub fn describe(&self) -> String {
        match self {
            CurveChange::SetStatus { id, status } => {
                format!("set Curve ChunkServer {id} {status}")
            }
            CurveChange::DeleteChunkServer { id } => format!("delete Curve ChunkServer {id}"),
            CurveChange::DeleteServer { id } => format!("delete Curve server {id}"),
            CurveChange::RapidLeaderSchedule => "spread Curve's copyset leaders".to_string(),
        }
    }
}

/// Where the reconciler's Curve changes go (the tests replace it).
pub trait CurveAdmin: Send + Sync {
    /// Sends `change` to the MDS listening at `mds` (the elected primary).
    fn change<'a>(
        &'a self,
        mds: &'a str,
        change: &'a CurveChange,
    ) -> BoxFuture<'a, Result<(), CallError>>;
}

/// Sends one change over `transport`. Deleting what is already gone succeeds.
pub async fn send<T: CurveTransport>(
    transport: &T,
    mds: &str,
    change: &CurveChange,
) -> Result<(), CallError> {
    let (code, gone) = match change {
        CurveChange::SetStatus { id, status } => {
            let request = SetChunkServerRequest {
                chunk_server_id: *id,
                chunk_server_status: *status,
            };
            (call_with_code(transport, mds, &request).await?.0, None)
        }
        CurveChange::DeleteChunkServer { id } => {
            let request = DeleteChunkServerRequest {
                chunk_server_id: *id,
            };
            let code = call_with_code(transport, mds, &request).await?.0;
            (code, Some(CHUNKSERVER_NOT_FOUND))
        }
        CurveChange::DeleteServer { id } => {
            let request = DeleteServerRequest { server_id: *id };
            let code = call_with_code(transport, mds, &request).await?.0;
            (code, Some(SERVER_NOT_FOUND))
        }
        CurveChange::RapidLeaderSchedule => {
            let request = RapidLeaderScheduleRequest { logical_pool_id: 0 };
            call(transport, mds, &request).await?;
            (0, None)
        }
    };
    if code == 0 || Some(code) == gone {
        return Ok(());
    }
    Err(CallError::bad(
        mds,
        format!(
            "{}: statusCode {code} ({})",
            change.describe(),
            topology_code_name(code)
        ),
    ))
}

/// No Curve changes can be made (tests that do not need them): every change fails.
pub struct NoAdmin;

impl CurveAdmin for NoAdmin {
    fn change<'a>(
        &'a self,
        mds: &'a str,
        change: &'a CurveChange,
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            Err(CallError::Unreachable {
                endpoint: mds.to_string(),
                reason: format!("{}: no Curve client in this operator", change.describe()),
            })
        })
    }
}

impl<T: CurveTransport + 'static> CurveAdmin for super::gather::Gatherer<T> {
    fn change<'a>(
        &'a self,
        mds: &'a str,
        change: &'a CurveChange,
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(send(&self.transport, mds, change))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::curve::HttpAnswer;

    /// Answers every POST with the next body, and keeps what was asked.
    struct Scripted {
        answers: Mutex<Vec<&'static str>>,
        asked: Mutex<Vec<(String, String)>>,
    }

    impl CurveTransport for Scripted {
        async fn get(&self, addr: &str, path: &str) -> Result<HttpAnswer, CallError> {
            Err(CallError::bad(addr, format!("unexpected GET {path}")))
        }
        async fn post_json(
            &self,
            _addr: &str,
            path: &str,
            body: String,
        ) -> Result<HttpAnswer, CallError> {
            self.asked.lock().unwrap().push((path.to_string(), body));
            let body = self.answers.lock().unwrap().remove(0).to_string();
            Ok(HttpAnswer { status: 200, body })
        }
    }

    fn scripted(answers: &[&'static str]) -> Scripted {
        Scripted {
            answers: Mutex::new(answers.to_vec()),
            asked: Mutex::default(),
        }
    }

    #[tokio::test]
    async fn set_status_sends_the_enum_by_name() {
        let transport = scripted(&[r#"{"statusCode":0}"#]);
        let change = CurveChange::SetStatus {
            id: 7,
            status: ChunkServerStatus::PENDDING,
        };
        send(&transport, "10.0.0.1:6700", &change).await.unwrap();
        assert_eq!(
            transport.asked.lock().unwrap()[0],
            (
                "/curve.mds.topology.TopologyService/SetChunkServer".to_string(),
                r#"{"chunkServerID":7,"chunkServerStatus":"PENDDING"}"#.to_string()
            )
        );
    }

    #[tokio::test]
    async fn deleting_what_is_gone_is_done_and_a_refusal_is_named() {
        let transport = scripted(&[
            r#"{"statusCode":-6}"#,
            r#"{"statusCode":-7}"#,
            r#"{"statusCode":-18}"#,
            r#"{"statusCode":-14}"#,
            r#"{"statusCode":-6}"#,
        ]);
        let mds = "10.0.0.1:6700";
        send(&transport, mds, &CurveChange::DeleteChunkServer { id: 3 })
            .await
            .unwrap();
        send(&transport, mds, &CurveChange::DeleteServer { id: 2 })
            .await
            .unwrap();
        let not_retired = send(&transport, mds, &CurveChange::DeleteChunkServer { id: 3 })
            .await
            .unwrap_err();
        assert_eq!(
            not_retired.reason(),
            "delete Curve ChunkServer 3: statusCode -18 (CannotRemoveNotRetired)"
        );
        let not_empty = send(&transport, mds, &CurveChange::DeleteServer { id: 2 })
            .await
            .unwrap_err();
        assert!(
            not_empty
                .reason()
                .contains("-14 (CannotRemoveWhenNotEmpty)")
        );
        let unknown = CurveChange::SetStatus {
            id: 9,
            status: ChunkServerStatus::READWRITE,
        };
        let missing = send(&transport, mds, &unknown).await.unwrap_err();
        assert!(
            missing.reason().contains("-6 (ChunkServerNotFound)"),
            "{missing}"
        );
        let asked = transport.asked.lock().unwrap();
        assert_eq!(asked[1].1, r#"{"serverID":2}"#);
    }
}
