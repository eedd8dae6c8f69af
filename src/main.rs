use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use curve_operator::api::crd_yaml;
use curve_operator::render::{RenderError, render};

/// Kubernetes operator for the Curve block store (CurveBS).
#[derive(Parser)]
#[command(name = "curve-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CurveCluster CustomResourceDefinition as YAML.
    Crd,
    /// Print every object the operator would create for a CurveCluster, offline.
    Render {
        /// The CurveCluster manifest (YAML).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace used when the manifest names none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
    /// Print the version.
    Version,
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
    }
}

fn render_command(file: &PathBuf, namespace: &str) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
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
        Err(e @ (RenderError::Parse(_) | RenderError::Invalid(_))) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
