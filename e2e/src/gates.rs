//! The ChunkServer roll's gate, timed from outside: polls the cluster's ChunkServer pods every
//! 50 ms and prints each gap between a replaced pod turning Ready and the next old pod being
//! deleted (`GATE … s`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;

use crate::util::say;

/// Runs until aborted; pods present when it starts are the old ones.
pub async fn gate_times(pods: Api<Pod>, prefix: &'static str) {
    let is_chunkserver = |p: &Pod| p.name_any().starts_with(prefix);
    let old: BTreeSet<String> = match pods.list(&Default::default()).await {
        Ok(list) => (list.items.iter().filter(|p| is_chunkserver(p)))
            .filter_map(|p| p.uid())
            .collect(),
        Err(_) => BTreeSet::new(),
    };
    let mut ready_at: Option<(String, Instant)> = None;
    let (mut seen_ready, mut seen_deleted) = (BTreeSet::new(), BTreeSet::new());
    loop {
        if let Ok(list) = pods.list(&Default::default()).await {
            for pod in list.items.iter().filter(|p| is_chunkserver(p)) {
                let uid = pod.uid().unwrap_or_default();
                let ready = (pod.status.as_ref().and_then(|s| s.conditions.as_ref()))
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                if ready && !old.contains(&uid) && seen_ready.insert(uid.clone()) {
                    ready_at = Some((pod.name_any(), Instant::now()));
                }
                if pod.metadata.deletion_timestamp.is_some()
                    && old.contains(&uid)
                    && seen_deleted.insert(uid)
                    && let Some((name, at)) = ready_at.take()
                {
                    say(&format!(
                        "GATE {name} Ready → {} deleted: {:.2}s",
                        pod.name_any(),
                        at.elapsed().as_secs_f64()
                    ));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
