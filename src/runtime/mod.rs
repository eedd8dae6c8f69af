//! The operator process around the reconciler: flags, logging, metrics, probes, leader
//! election, signals.

pub mod http;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod rbac;
pub mod requests;
pub mod signal;
pub mod startup;

use std::net::SocketAddr;

use kube::Client;

use self::leader::{LeaderElector, LeaseDurations};
use self::logging::LogFormat;

/// Flags of `curve-operator run` that the Helm chart sets; flatten into the `run` subcommand
/// with `#[command(flatten)]`. tests/helm.rs parses the chart's container args with this.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RuntimeArgs {
    /// Watch CurveClusters in this namespace only (default: all namespaces).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Format of log lines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter: a level or tracing directives (`info,kube=warn`); default RUST_LOG, then info.
    #[arg(long)]
    pub log_level: Option<String>,
    /// How many clusters are reconciled at once. Each reconcile builds every object of its
    /// cluster and holds its own API connection: the bound keeps a burst (the operator's start
    /// with many clusters) from raising the memory the process keeps afterwards.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrent_reconciles: u16,
    /// Address of the /metrics, /livez and /readyz server.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Act only while holding the leader-election Lease (needed with more than one replica).
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the Lease; default the client's namespace.
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, default_value = "curve-operator-leader")]
    pub leader_election_lease: String,
    /// This replica's identity in the Lease; default the pod name ($HOSTNAME).
    #[arg(long, env = "POD_NAME")]
    pub leader_election_identity: Option<String>,
    /// How often Curve's health (copysets, ChunkServers, MDS) is read from every cluster's
    /// daemons; it is also read at once when an MDS or ChunkServer pod changes readiness.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub health_period_seconds: u64,
    /// How long one request to a Curve daemon may take before it counts as unanswered.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub health_timeout_seconds: u64,
    /// The operator's own image, which the backup Jobs run to copy etcd snapshots to a bucket
    /// (`spec.etcd.backup.s3`); the Helm chart passes its image. Without it such copies wait.
    #[arg(long, env = "CURVE_OPERATOR_JOB_IMAGE")]
    pub job_image: Option<String>,
}

impl RuntimeArgs {
    /// What the operator watches, as its start and ready log lines say it.
    pub fn watch_scope(&self) -> String {
        let resource = format!(
            "CurveClusters ({}/{})",
            crate::api::GROUP,
            crate::api::VERSION
        );
        match &self.namespace {
            Some(namespace) => format!("{resource} in namespace {namespace}"),
            None => format!("{resource} in all namespaces"),
        }
    }

    /// The elector when `--leader-elect` is set, with client-go's default timing.
    pub fn leader_elector(&self, client: Client) -> Option<LeaderElector> {
        if !self.leader_elect {
            return None;
        }
        let namespace = self
            .leader_election_namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let identity = self
            .leader_election_identity
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| format!("curve-operator-{}", std::process::id()));
        Some(LeaderElector::new(
            client,
            &namespace,
            self.leader_election_lease.clone(),
            identity,
            LeaseDurations::default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        args: RuntimeArgs,
    }

    #[test]
    fn the_watch_scope_names_the_namespace_or_all_and_the_api_version() {
        let scope = |argv: &[&str]| Run::parse_from(argv).args.watch_scope();
        assert_eq!(
            scope(&["run"]),
            "CurveClusters (curve.opencurve.io/v1alpha1) in all namespaces"
        );
        assert_eq!(
            scope(&["run", "--namespace", "storage"]),
            "CurveClusters (curve.opencurve.io/v1alpha1) in namespace storage"
        );
    }
}
