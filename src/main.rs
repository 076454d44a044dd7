use std::io::Write;
use std::time::Duration;

use clap::Parser;

/// mimalloc rather than the system allocator: each request allocates and frees many small
/// buffers (headers, JSON, events), and glibc's malloc was ~13% of the server's CPU while
/// tracking.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long blocking work still running when a command is done (a password being hashed) may
/// take to finish before the process exits anyway.
const BLOCKING_WORK_GRACE: Duration = Duration::from_secs(5);

fn main() -> std::process::ExitCode {
    let cli = tally::cli::args::Cli::parse();
    let serving = matches!(
        cli.command,
        None | Some(tally::cli::args::Command::Serve(_))
    );
    let level = tally::telemetry::default_level(serving, cli.global.verbose);
    let _log_writer = tally::telemetry::init(
        cli.global.log_format,
        cli.global.log_filter.as_deref(),
        level,
    );
    let outcome = match tokio::runtime::Runtime::new() {
        Ok(runtime) => {
            let outcome = runtime.block_on(tally::cli::run(cli));
            // Background tasks end with the runtime; only then has the process stopped.
            runtime.shutdown_timeout(BLOCKING_WORK_GRACE);
            outcome
        }
        Err(err) => Err(anyhow::anyhow!("cannot start the async runtime: {err}")),
    };
    match outcome {
        Ok(()) => {
            if serving {
                tracing::info!("tally stopped");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            // Not `eprintln!`: it panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
