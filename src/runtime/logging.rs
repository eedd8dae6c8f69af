//! Log output: human-readable text or one JSON object per line.

use tracing_subscriber::EnvFilter;

/// The format of log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter {directive:?}: {source}")]
    Filter {
        directive: String,
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// The filter to use: the `--log-level` flag wins, then `RUST_LOG`, then `info`.
pub fn filter_directive(flag: Option<&str>, rust_log: Option<&str>) -> String {
    [flag, rust_log]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or("info")
        .to_owned()
}

/// Installs the global subscriber. `level` is a level (`debug`) or tracing directives
/// (`info,kube=warn`).
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), LoggingError> {
    let directive = filter_directive(level, std::env::var("RUST_LOG").ok().as_deref());
    let filter = EnvFilter::try_new(&directive).map_err(|source| LoggingError::Filter {
        directive: directive.clone(),
        source,
    })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
    .map_err(|_| LoggingError::AlreadyInstalled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_rust_log_which_wins_over_default() {
        assert_eq!(filter_directive(Some("debug"), Some("warn")), "debug");
        assert_eq!(
            filter_directive(None, Some("warn,kube=info")),
            "warn,kube=info"
        );
        assert_eq!(filter_directive(Some(" "), None), "info");
        assert_eq!(filter_directive(None, None), "info");
    }

    #[test]
    fn bad_filter_is_reported_not_ignored() {
        let err = init(LogFormat::Json, Some("info,kube=notalevel")).unwrap_err();
        assert!(err.to_string().contains("kube=notalevel"), "{err}");
    }
}
