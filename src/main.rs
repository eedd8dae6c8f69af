use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use curve_operator::api::crd_yaml;
use curve_operator::etcd::endpoints::parse_endpoint_list;
use curve_operator::render::render;
use curve_operator::runtime::RuntimeArgs;

/// Kubernetes operator for the Curve block store (CurveBS).
#[derive(Parser)]
#[command(name = "curve-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator (kubeconfig or in-cluster; all namespaces, or one with --namespace).
    Run(RuntimeArgs),
    /// Print the CurveCluster CustomResourceDefinition as YAML.
    Crd,
    /// Print every object the operator would create for a CurveCluster, offline.
    Render {
        /// The manifest (YAML): one CurveCluster, or several as documents separated by `---`;
        /// `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace used when the manifest names none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
    /// Print the address (ip:port) of the MDS elected primary in etcd, or `none`.
    ///
    /// Exits with status 1 and a message on stderr when etcd cannot be reached or has no quorum.
    MdsPrimary(MdsPrimaryArgs),
    /// Copy a verified etcd snapshot to an S3-compatible bucket and delete copies beyond
    /// `--keep` (the backup Job's second step; credentials in AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY). Writes one JSON line to the termination log; exits 1 on failure.
    S3Upload(curve_operator::s3::upload::UploadArgs),
    /// Print the version.
    Version,
}

#[derive(Args)]
struct MdsPrimaryArgs {
    /// etcd client endpoints, comma-separated: HOST:PORT[,HOST:PORT...]
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]", value_parser = parse_endpoint_list_arg)]
    etcd_endpoints: Endpoints,
    /// Keep running and print one more line each time the primary changes.
    #[arg(long)]
    watch: bool,
}

#[derive(Clone)]
struct Endpoints(Vec<String>);

fn parse_endpoint_list_arg(s: &str) -> Result<Endpoints, String> {
    parse_endpoint_list(s)
        .map(Endpoints)
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Render { file, namespace } => render_command(&file, &namespace),
        Command::Version => {
            println!("curve-operator {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::MdsPrimary(args) => tokio_runtime().block_on(async {
            init_stderr_logging();
            curve_operator::etcd::cli::mds_primary_command(
                args.etcd_endpoints.0,
                args.watch,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )
            .await
        }),
        Command::S3Upload(args) => tokio_runtime().block_on(async {
            use curve_operator::s3::upload::{ACCESS_KEY_ENV, SECRET_KEY_ENV, credentials, run};
            let credentials = credentials(
                std::env::var(ACCESS_KEY_ENV).ok(),
                std::env::var(SECRET_KEY_ENV).ok(),
                &args.credentials_secret,
            );
            let (ok, line) = run(&args, credentials).await;
            println!("{line}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Command::Run(args) => tokio_runtime().block_on(operator::run(args)),
    }
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn init_stderr_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(curve_operator::runtime::logging::colours_for(
            &std::io::stderr(),
        ))
        .init();
}

/// The manifest `-f` names: standard input for `-`, as kubectl reads it.
fn read_manifest(file: &Path) -> std::io::Result<String> {
    if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
}

fn render_command(file: &Path, namespace: &str) -> ExitCode {
    let text = match read_manifest(file) {
        Ok(text) => text,
        Err(e) if file == Path::new("-") => {
            eprintln!("error: cannot read standard input: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match render(&text, namespace) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The `run` command: the thin shell around the controller.
mod operator {
    use super::*;
    use curve_operator::curve::gather::Gatherer;
    use curve_operator::curve::http::HttpTransport;
    use curve_operator::etcd::ClusterKey;
    use curve_operator::etcd::EtcdClients;
    use curve_operator::reconcile::events::KubeEvents;
    use curve_operator::reconcile::health_monitor::{HealthMonitor, HealthSource, MonitorOptions};
    use curve_operator::reconcile::snapshot::Caches;
    use curve_operator::reconcile::{Context, Scope, count_primary_changes, run as run_controller};
    use curve_operator::runtime::http::{Readiness, serve};
    use curve_operator::runtime::metrics::Metrics;
    use curve_operator::runtime::requests::counting_layer;
    use curve_operator::runtime::startup::{RetryDelays, until_ok};
    use curve_operator::runtime::{logging, signal::shutdown_signal};
    use futures::FutureExt;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::runtime::wait::{await_condition, conditions};
    use kube::{Api, Client};

    const CRD_NAME: &str = "curveclusters.curve.opencurve.io";

    /// A client (kubeconfig or in-cluster) whose every request is counted in the metrics.
    async fn counted_client(metrics: Arc<Metrics>) -> Result<Client, kube::Error> {
        let mut config = kube::Config::infer()
            .await
            .map_err(kube::Error::InferConfig)?;
        config.read_timeout = Some(curve_operator::runtime::requests::READ_TIMEOUT);
        Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&counting_layer(metrics))
            .build())
    }

    /// The health monitor over HTTP, and the stream of clusters whose health changed. The
    /// primary's probe gets a short timeout: a dead primary shows within about a second.
    fn health_monitor(
        args: &RuntimeArgs,
        metrics: Arc<Metrics>,
    ) -> (
        Arc<dyn HealthSource>,
        impl futures::Stream<Item = ClusterKey> + Send + 'static,
    ) {
        use std::time::Duration;
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let timeout = Duration::from_secs(args.health_timeout_seconds);
        let gatherer = |timeout| Gatherer {
            transport: HttpTransport::new(timeout),
            options: Default::default(),
        };
        let options = MonitorOptions {
            period: Duration::from_secs(args.health_period_seconds),
            ..MonitorOptions::default()
        };
        let probe_timeout = Duration::from_millis(800).min(timeout);
        let monitor = HealthMonitor::new(gatherer(timeout), gatherer(probe_timeout), options, tx)
            .with_metrics(metrics);
        (Arc::new(monitor), rx)
    }

    pub async fn run(args: RuntimeArgs) -> ExitCode {
        if let Err(e) = logging::init(args.log_format, args.log_level.as_deref()) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            "starting: watching {}",
            args.watch_scope()
        );
        let metrics = Arc::new(Metrics::new());
        let client = match counted_client(metrics.clone()).await {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "cannot build a Kubernetes client (kubeconfig or in-cluster)");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = shutdown_signal().shared();
        let readiness = Arc::new(Readiness::default());
        let listener = match tokio::net::TcpListener::bind(args.http_addr).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(error = %e, addr = %args.http_addr, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        tokio::spawn(serve(
            listener,
            metrics.clone(),
            readiness.clone(),
            shutdown.clone(),
        ));

        // Ready once the CRD is established and the API answers for CurveClusters, so a standby
        // replica is ready too (or a rolling update would wait on itself); the leader then
        // waits for its caches below.
        // Both first calls are retried while the API server cannot be reached (a blip at the
        // start no longer ends the process: runtime::startup).
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        tracing::info!("waiting for the CurveCluster CRD to be established");
        let delays = RetryDelays::default();
        let established = until_ok("cannot watch the CurveCluster CRD", delays, || {
            await_condition(crds.clone(), CRD_NAME, conditions::is_crd_established())
        });
        tokio::select! {
            _ = established => {}
            _ = shutdown.clone() => return ExitCode::SUCCESS,
        }
        readiness.set_crd_established(true);
        let clusters: Api<curve_operator::api::CurveCluster> = match &args.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let listable = until_ok("cannot list CurveClusters", delays, || {
            let clusters = clusters.clone();
            async move { (clusters.list_metadata(&kube::api::ListParams::default().limit(1))).await }
        });
        tokio::select! {
            _ = listable => {}
            _ = shutdown.clone() => return ExitCode::SUCCESS,
        }
        readiness.set_caches_synced(true);

        let elector = args.leader_elector(client.clone());
        if let Some(elector) = &elector {
            tracing::info!(identity = elector.identity(), "waiting to lead");
            tokio::select! {
                _ = elector.acquire() => tracing::info!("leading"),
                _ = shutdown.clone() => return ExitCode::SUCCESS,
            }
        }

        let (etcd, election_changes) = EtcdClients::with_changes();
        let etcd_changes = count_primary_changes(metrics.clone(), election_changes);
        let (health, health_changes) = health_monitor(&args, metrics.clone());
        let events = KubeEvents::new(client.clone(), args.leader_election_identity.clone());
        let (caches, writers) = Caches::shared();
        let ctx = Context::new(client, caches, etcd, events)
            .with_metrics(metrics)
            .with_job_image(args.job_image.clone())
            .with_health(health)
            .with_curve(Arc::new(Gatherer {
                transport: HttpTransport::new(std::time::Duration::from_secs(
                    args.health_timeout_seconds,
                )),
                options: Default::default(),
            }));
        let ctx = Arc::new(ctx);
        // The leader is ready again once its CurveCluster cache is filled.
        readiness.set_caches_synced(false);
        let synced = readiness.clone();
        let scope = args.watch_scope();
        let controller = run_controller(
            ctx,
            writers,
            Scope {
                namespace: args.namespace.clone(),
                concurrent_reconciles: args.concurrent_reconciles,
            },
            futures::stream::select(etcd_changes, health_changes),
            shutdown.clone(),
            move || {
                synced.set_caches_synced(true);
                tracing::info!("ready: caches synced, reconciling {scope}");
            },
            |result| {
                if let Err(error) = result {
                    tracing::debug!(%error, "reconcile");
                }
            },
        );
        match &elector {
            Some(elector) => {
                tokio::select! {
                    _ = controller => {
                        let _ = elector.release().await;
                        ExitCode::SUCCESS
                    }
                    lost = elector.keep_leading() => {
                        // Another replica may act now: stop at once, the pod restarts as a standby.
                        tracing::error!(?lost, "lost the leader lease; exiting");
                        ExitCode::FAILURE
                    }
                }
            }
            None => {
                controller.await;
                ExitCode::SUCCESS
            }
        }
    }
}
