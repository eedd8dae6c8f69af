use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use kube::CustomResourceExt;

use curve_operator::etcd::endpoints::parse_endpoint_list;

/// Kubernetes operator for the Curve block store (CurveBS).
#[derive(Parser, Debug)]
#[command(name = "curve-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CurveCluster CustomResourceDefinition as YAML.
    Crd,
    /// Print the address (ip:port) of the MDS elected primary in etcd, or `none`.
    ///
    /// Exits with status 1 and a message on stderr when etcd cannot be reached or has no quorum.
    MdsPrimary(MdsPrimaryArgs),
}

#[derive(Args, Debug)]
struct MdsPrimaryArgs {
    /// etcd client endpoints, comma-separated: HOST:PORT[,HOST:PORT...]
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]", value_parser = parse_endpoints_arg)]
    etcd_endpoints: Endpoints,
    /// Keep running and print one more line each time the primary changes.
    #[arg(long)]
    watch: bool,
}

#[derive(Clone, Debug)]
struct Endpoints(Vec<String>);

fn parse_endpoints_arg(s: &str) -> Result<Endpoints, String> {
    parse_endpoint_list(s)
        .map(Endpoints)
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Crd => {
            print!(
                "{}",
                serde_saphyr::to_string(&curve_operator::api::CurveCluster::crd()).unwrap()
            );
            ExitCode::SUCCESS
        }
        Command::MdsPrimary(args) => {
            let mut out = std::io::stdout();
            let mut err = std::io::stderr();
            curve_operator::etcd::cli::mds_primary_command(
                args.etcd_endpoints.0,
                args.watch,
                &mut out,
                &mut err,
            )
            .await
        }
    }
}
