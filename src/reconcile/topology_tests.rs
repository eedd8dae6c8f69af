//! Curve's bootstrap order, decided from the Jobs observed.

use serde_json::json;

use super::{JobOutcome, JobState, decide, registered_server_port};
use crate::desired::jobs::job_name;
use crate::desired::topology::{ClusterMap, ObservedServer, PoolProgress, cluster_map};
use crate::names::TopologyStep;
use crate::reconcile::fixtures::validated;

fn map(cluster: &crate::validate::ValidatedCluster, n: usize) -> ClusterMap {
    let servers: Vec<ObservedServer> = (1..=n)
        .map(|i| ObservedServer {
            node: format!("node-{i}"),
            host_ip: format!("10.0.0.{i}"),
            zone: None,
        })
        .collect();
    cluster_map(cluster, &servers, &[])
}

fn job(
    cluster: &crate::validate::ValidatedCluster,
    step: TopologyStep,
    map: &ClusterMap,
    outcome: JobOutcome,
) -> JobState {
    JobState {
        name: job_name(cluster, step, map),
        outcome,
    }
}

#[test]
fn the_physical_pool_waits_until_every_chunkserver_node_is_scheduled() {
    let cluster = validated(json!({}));
    let d = decide(&cluster, &map(&cluster, 2), &PoolProgress::default(), &[]);
    assert_eq!(
        (d.ready, d.reason.as_str(), d.message.as_str(), d.create),
        (
            false,
            "WaitingForServers",
            "2 of 3 ChunkServer nodes scheduled",
            None
        )
    );
}

#[test]
fn bootstrap_runs_physical_pool_then_online_check_then_logical_pool() {
    let cluster = validated(json!({}));
    let m = map(&cluster, 3);
    let none = PoolProgress::default();
    let d = decide(&cluster, &m, &none, &[]);
    assert_eq!(
        (d.reason.as_str(), d.create),
        ("PhysicalPoolPending", Some(TopologyStep::PhysicalPool))
    );
    assert!(
        d.progress.physical_pool_servers.is_empty(),
        "no ChunkServer released before the Job succeeded"
    );

    let running = [job(
        &cluster,
        TopologyStep::PhysicalPool,
        &m,
        JobOutcome::Running,
    )];
    let d = decide(&cluster, &m, &none, &running);
    assert_eq!((d.reason.as_str(), d.create), ("PhysicalPoolPending", None));
    assert!(d.progress.physical_pool_servers.is_empty());

    let physical_done = [job(
        &cluster,
        TopologyStep::PhysicalPool,
        &m,
        JobOutcome::Succeeded,
    )];
    let d = decide(&cluster, &m, &none, &physical_done);
    assert_eq!(
        d.progress.physical_pool_servers,
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    );
    assert_eq!(
        (d.reason.as_str(), d.create),
        (
            "WaitingForChunkServers",
            Some(TopologyStep::ChunkServersOnline)
        )
    );
    assert!(
        !d.progress.logical_pool_created,
        "no logical pool before every ChunkServer is online"
    );

    let offline = [
        job(
            &cluster,
            TopologyStep::PhysicalPool,
            &m,
            JobOutcome::Succeeded,
        ),
        job(
            &cluster,
            TopologyStep::ChunkServersOnline,
            &m,
            JobOutcome::Failed("BackoffLimitExceeded: 2 online".into()),
        ),
    ];
    let d = decide(&cluster, &m, &d.progress, &offline);
    assert_eq!(d.reason.as_str(), "ChunkServersOffline");
    assert_eq!(
        d.delete,
        [job_name(&cluster, TopologyStep::ChunkServersOnline, &m)],
        "deleted, to run again"
    );
    assert_eq!(d.create, None);

    let online = [
        job(
            &cluster,
            TopologyStep::PhysicalPool,
            &m,
            JobOutcome::Succeeded,
        ),
        job(
            &cluster,
            TopologyStep::ChunkServersOnline,
            &m,
            JobOutcome::Succeeded,
        ),
    ];
    let d = decide(&cluster, &m, &d.progress, &online);
    assert_eq!(
        (d.reason.as_str(), d.create),
        ("LogicalPoolPending", Some(TopologyStep::LogicalPool))
    );

    let mut all = online.to_vec();
    all.push(job(
        &cluster,
        TopologyStep::LogicalPool,
        &m,
        JobOutcome::Succeeded,
    ));
    let d = decide(&cluster, &m, &d.progress, &all);
    assert!(d.ready && d.progress.logical_pool_created);
    assert_eq!(
        d.message,
        "3 servers in physical pool pool1, logical pool logicalPool1 created"
    );
}

#[test]
fn a_failed_physical_pool_is_reported_and_retried() {
    let cluster = validated(json!({}));
    let m = map(&cluster, 3);
    let failed = [job(
        &cluster,
        TopologyStep::PhysicalPool,
        &m,
        JobOutcome::Failed(
            "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
        ),
    )];
    let d = decide(&cluster, &m, &PoolProgress::default(), &failed);
    assert_eq!(d.reason.as_str(), "PhysicalPoolFailed");
    assert!(d.message.contains("BackoffLimitExceeded"), "{}", d.message);
    assert_eq!(
        d.delete,
        [job_name(&cluster, TopologyStep::PhysicalPool, &m)]
    );
    assert!(d.progress.physical_pool_servers.is_empty());
}

#[test]
fn added_servers_rerun_the_physical_pool_but_never_the_logical_pool() {
    let cluster = validated(json!({"chunkservers": {"replicas": 4, "storage": {"size": "10Gi"}}}));
    let old = map(&cluster, 3);
    let grown = map(&cluster, 4);
    let done = PoolProgress {
        physical_pool_servers: old.server_ips(),
        logical_pool_created: true,
        server_port: Some(0),
    };
    let old_jobs = [
        job(
            &cluster,
            TopologyStep::PhysicalPool,
            &old,
            JobOutcome::Succeeded,
        ),
        job(
            &cluster,
            TopologyStep::LogicalPool,
            &old,
            JobOutcome::Succeeded,
        ),
    ];
    let d = decide(&cluster, &grown, &done, &old_jobs);
    assert_eq!(
        (d.reason.as_str(), d.create),
        ("PhysicalPoolPending", Some(TopologyStep::PhysicalPool))
    );
    assert_eq!(
        d.delete,
        [job_name(&cluster, TopologyStep::PhysicalPool, &old)],
        "the finished Job of the old map goes"
    );
    let mut now = old_jobs.to_vec();
    now.push(job(
        &cluster,
        TopologyStep::PhysicalPool,
        &grown,
        JobOutcome::Succeeded,
    ));
    let d = decide(&cluster, &grown, &done, &now);
    assert!(d.ready);
    assert_eq!(d.create, None, "the logical pool is created once");
    assert_eq!(d.progress.physical_pool_servers.len(), 4);
}

#[test]
fn the_first_physical_pool_records_the_server_port_and_an_old_record_reads_as_it_was_made() {
    let cluster = validated(json!({}));
    let m = map(&cluster, 3);
    let done = [job(
        &cluster,
        TopologyStep::PhysicalPool,
        &m,
        JobOutcome::Succeeded,
    )];
    let first = decide(&cluster, &m, &PoolProgress::default(), &done);
    assert_eq!(first.progress.server_port, Some(0));
    // A record from before the port was kept, its pool created with one slot: a later Job
    // (a server added) leaves it unknown, and it reads as the ChunkServer port.
    let old = PoolProgress {
        physical_pool_servers: vec!["10.0.0.1".into(), "10.0.0.2".into()],
        ..PoolProgress::default()
    };
    assert_eq!(decide(&cluster, &m, &old, &done).progress.server_port, None);
    let record = |pool: &[&str], port| crate::api::OperatorRecord {
        physical_pool_servers: pool.iter().map(|s| s.to_string()).collect(),
        server_port: port,
        ..Default::default()
    };
    let ips = ["10.0.0.1"];
    assert_eq!(
        registered_server_port(&record(&[], None), 8200, 1),
        None,
        "no pool yet"
    );
    assert_eq!(
        registered_server_port(&record(&ips, Some(0)), 8200, 1),
        Some(0)
    );
    assert_eq!(
        registered_server_port(&record(&ips, None), 8200, 1),
        Some(8200)
    );
    assert_eq!(
        registered_server_port(&record(&ips, None), 8200, 2),
        Some(0)
    );
}

/// A tool that never returns (`CreateLogicalPool` has no RPC timeout) is stopped by the Job's
/// deadline: the Job fails with DeadlineExceeded, the status names it, and a new one is made.
#[test]
fn a_job_past_its_deadline_is_named_and_retried() {
    let cluster = validated(json!({}));
    let m = map(&cluster, 3);
    let name = job_name(&cluster, TopologyStep::PhysicalPool, &m);
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
        "metadata": {"name": name},
        "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True",
            "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]}
    }))
    .unwrap();
    let d = decide(
        &cluster,
        &m,
        &PoolProgress::default(),
        &[JobState::of(&job)],
    );
    assert_eq!(d.reason.as_str(), "PhysicalPoolFailed");
    assert!(
        d.message.contains(&format!(
            "Job {name} failed (DeadlineExceeded: Job was active longer than specified deadline)"
        )),
        "{}",
        d.message
    );
    assert_eq!(d.delete, [name]);
    // Every topology Job carries the deadline.
    let rendered = crate::desired::jobs::build(&cluster, TopologyStep::LogicalPool, &m);
    assert_eq!(
        rendered.spec.unwrap().active_deadline_seconds,
        Some(crate::desired::jobs::TOOL_JOB_DEADLINE_SECONDS)
    );
}
