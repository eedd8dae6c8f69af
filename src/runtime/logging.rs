//! Log output: human-readable text or one JSON object per line.

use std::ffi::OsStr;
use std::io::IsTerminal;

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
/// Info for the operator, warnings only from kube's controller machinery.
pub const DEFAULT_DIRECTIVE: &str = "info,kube_runtime::controller=warn";

pub fn filter_directive(flag: Option<&str>, rust_log: Option<&str>) -> String {
    [flag, rust_log]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty())
        // kube's controller wraps every reconcile in a span naming the object and why it was
        // queued (~300 characters before each line); the operator's own `cluster{id=ns/name}`
        // span says which cluster in a few.
        .unwrap_or(DEFAULT_DIRECTIVE)
        .to_owned()
}

/// Whether text logs carry ANSI colour codes: only on a terminal (a pod's log, a file or a pipe
/// would keep the escape codes as text), and never with `NO_COLOR` set (https://no-color.org).
pub fn colours(output_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    output_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// [`colours`] for an output stream, with this process's `NO_COLOR`.
pub fn colours_for(output: &impl IsTerminal) -> bool {
    colours(
        output.is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// Installs the global subscriber, writing to standard output. `level` is a level (`debug`) or tracing directives
/// (`info,kube=warn`).
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), LoggingError> {
    let directive = filter_directive(level, std::env::var("RUST_LOG").ok().as_deref());
    let filter = EnvFilter::try_new(&directive).map_err(|source| LoggingError::Filter {
        directive: directive.clone(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours_for(&std::io::stdout()));
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
        assert_eq!(filter_directive(Some(" "), None), DEFAULT_DIRECTIVE);
        assert_eq!(filter_directive(None, None), DEFAULT_DIRECTIVE);
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(colours(true, None));
        assert!(colours(true, empty), "an empty NO_COLOR is unset");
        assert!(!colours(true, set));
        assert!(!colours(false, None));
        assert!(!colours(false, set));
    }

    #[test]
    fn bad_filter_is_reported_not_ignored() {
        let err = init(LogFormat::Json, Some("info,kube=notalevel")).unwrap_err();
        assert!(err.to_string().contains("kube=notalevel"), "{err}");
    }
}
