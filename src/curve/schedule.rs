//! `curve.mds.schedule.ScheduleService` (C:proto/schedule.proto l.46-49; handlers
//! C:src/mds/schedule/scheduleService/scheduleService.cpp l.30-104). Error codes
//! C:src/mds/common/mds_define.h l.106-110.

use serde::{Deserialize, Serialize};

use super::topology::{Rpc, StatusCode};

pub const SCHEDULE_SERVICE: &str = "curve.mds.schedule.ScheduleService";

/// `RapidLeaderScheduleRequst` (sic, C:proto/schedule.proto l.28-30): spread the leaders of
/// one logical pool now; `0` asks for every pool (C:src/mds/schedule/rapidLeaderScheduler.cpp
/// l.33-56).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RapidLeaderScheduleRequest {
    #[serde(rename = "logicalPoolID")]
    pub logical_pool_id: u32,
}

/// C:proto/schedule.proto l.32-34: 0 done; -1 `kScheduleErrCodeInvalidLogicalPool`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RapidLeaderScheduleResponse {
    pub status_code: i32,
}

impl StatusCode for RapidLeaderScheduleResponse {
    fn status_code(&self) -> i32 {
        self.status_code
    }
}

impl Rpc for RapidLeaderScheduleRequest {
    type Response = RapidLeaderScheduleResponse;
    const SERVICE: &'static str = SCHEDULE_SERVICE;
    const METHOD: &'static str = "RapidLeaderSchedule";
}

/// The schedule error codes (C:src/mds/common/mds_define.h l.106-110).
pub fn schedule_code_name(code: i32) -> &'static str {
    match code {
        0 => "Success",
        -1 => "InvalidLogicalPool",
        -2 => "InvalidQueryChunkserverID",
        _ => "unknown code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rapid_leader_schedule_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&RapidLeaderScheduleRequest { logical_pool_id: 1 }).unwrap(),
            r#"{"logicalPoolID":1}"#
        );
        assert_eq!(
            RapidLeaderScheduleRequest::path(),
            "/curve.mds.schedule.ScheduleService/RapidLeaderSchedule"
        );
        let answer: RapidLeaderScheduleResponse =
            serde_json::from_str(r#"{"statusCode":-1}"#).unwrap();
        assert_eq!(answer.status_code(), -1);
        assert_eq!(schedule_code_name(-1), "InvalidLogicalPool");
    }
}
