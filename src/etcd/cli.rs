//! `curve-operator mds-primary`: the elected MDS primary as the operator sees it, through the
//! same [`EtcdClients`] the operator uses.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;

use futures::StreamExt;

use super::{ClusterKey, EtcdClients, EtcdObserver, PrimaryObservation};

/// What is printed for "no MDS campaigns".
pub const NO_PRIMARY: &str = "none";

/// Prints the primary's address (or `none`) on `out`; with `watch`, one more line per change
/// until Ctrl-C. Exit status 1, with a message on `err`, when etcd is unreachable or has no quorum.
pub async fn mds_primary_command(
    endpoints: Vec<String>,
    watch: bool,
    out: &mut (impl Write + Send),
    err: &mut (impl Write + Send),
) -> ExitCode {
    let interrupted = async {
        // Without a signal handler there is nothing to wait for: run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            futures::future::pending::<()>().await;
        }
    };
    run_mds_primary(endpoints, watch, out, err, interrupted).await
}

/// [`mds_primary_command`] with the end of `--watch` given by `stop`.
pub async fn run_mds_primary(
    endpoints: Vec<String>,
    watch: bool,
    out: &mut (impl Write + Send),
    err: &mut (impl Write + Send),
    stop: impl Future<Output = ()>,
) -> ExitCode {
    let cluster = ClusterKey {
        namespace: String::new(),
        name: "mds-primary".into(),
    };
    let (clients, mut changes) = EtcdClients::with_changes();
    let mut last = match clients.observe(&cluster, &endpoints).await.primary {
        PrimaryObservation::Elected { address } => Some(address),
        PrimaryObservation::NoCandidate => None,
        PrimaryObservation::NoEndpoint => {
            let _ = writeln!(
                err,
                "no etcd endpoint given: pass --etcd-endpoints HOST:PORT[,...]"
            );
            return ExitCode::FAILURE;
        }
        PrimaryObservation::Unreachable { endpoints, error } => {
            let _ = writeln!(err, "cannot reach etcd at {}: {error}", endpoints.join(","));
            return ExitCode::FAILURE;
        }
        PrimaryObservation::QuorumLost { endpoints, error } => {
            let _ = writeln!(
                err,
                "etcd at {} has no quorum: {error}",
                endpoints.join(",")
            );
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = print_primary(out, last.as_deref()) {
        return write_failed(err, e);
    }
    if !watch {
        return ExitCode::SUCCESS;
    }
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return ExitCode::SUCCESS,
            change = changes.next() => {
                let Some(change) = change else { return ExitCode::FAILURE };
                // The watch starts from what observe() read, so this is a change, but say so
                // only once even if the two ever disagree.
                if change.primary != last {
                    last = change.primary;
                    if let Err(e) = print_primary(out, last.as_deref()) {
                        return write_failed(err, e);
                    }
                }
            }
        }
    }
}

fn print_primary(out: &mut impl Write, primary: Option<&str>) -> std::io::Result<()> {
    writeln!(out, "{}", primary.unwrap_or(NO_PRIMARY))?;
    // Each line must reach a pipe as it happens.
    out.flush()
}

fn write_failed(err: &mut impl Write, e: std::io::Error) -> ExitCode {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // The reader went away (e.g. `| head -1`): nothing left to do.
        return ExitCode::SUCCESS;
    }
    let _ = writeln!(err, "cannot write the primary: {e}");
    ExitCode::FAILURE
}
