//! Log output: human-readable by default, JSON lines with `--log-format json`. `RUST_LOG`
//! (or `TALLY_LOG`) filters, `info` otherwise.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = std::env::var("TALLY_LOG")
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
}
