//! Log output: human-readable by default, JSON lines with `--log-format json`, on stderr.
//! `TALLY_LOG` (`--log-filter`), else `RUST_LOG`, filters; otherwise `serve` logs at INFO (one
//! access line per request, admin actions, start and stop) and the other commands only warnings
//! and errors, or INFO with `-v` (DEBUG with `-vv`). Colours only when stderr is a terminal, so log files and
//! collectors get plain text.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

pub mod metrics;

/// How log lines are written: human-readable, or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Lines a slow stderr may fall behind before a request waits for it; none are dropped.
const BUFFERED_LINES: usize = 64 * 1024;

/// Reads a log filter (`--log-filter` / `TALLY_LOG`); one the filter syntax cannot read is
/// refused rather than ignored.
pub fn parse_filter(spec: &str) -> Result<String, String> {
    EnvFilter::try_new(spec)
        .map(|_| spec.to_owned())
        .map_err(|err| format!("`{spec}` is not a log filter ({err}); e.g. `info,tally=debug`"))
}

/// Starts logging with `filter` (checked by [`parse_filter`]), else `RUST_LOG`, else
/// `default_level`. Lines are written by a background thread, so a request never waits on the
/// terminal or a pipe; keep the guard until the process ends, dropping it writes what is left.
pub fn init(format: LogFormat, filter: Option<&str>, default_level: &str) -> WorkerGuard {
    let filter = filter
        .filter(|spec| !spec.trim().is_empty())
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("tally-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    // A closed stderr must not take the service down: by default the subscriber reports a failed
    // write with `eprintln!`, which panics when stderr itself is gone.
    let _ = match format {
        LogFormat::Human => builder.log_internal_errors(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .log_internal_errors(false)
            .try_init(),
    };
    guard
}

/// The level a command logs at when no filter is given: `serve` at INFO, the others quiet
/// (warnings and errors) unless `-v` asks for more.
pub fn default_level(serving: bool, verbose: u8) -> &'static str {
    match (serving, verbose) {
        (_, 2..) => "debug",
        (true, _) | (false, 1) => "info",
        (false, 0) => "warn",
    }
}

#[cfg(test)]
mod tests {
    use super::default_level;

    #[test]
    fn serve_logs_at_info_and_other_commands_only_when_asked() {
        assert_eq!(default_level(true, 0), "info");
        assert_eq!(default_level(false, 0), "warn");
        assert_eq!(default_level(false, 1), "info");
        assert_eq!(default_level(true, 2), "debug");
    }
}
