use std::io::Write;

use clap::Parser;

/// mimalloc rather than the system allocator: each request allocates and frees many small
/// buffers (headers, JSON, events), and glibc's malloc was ~13% of the server's CPU while
/// tracking.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = tally::config::Cli::parse();
    let serving = matches!(cli.command, None | Some(tally::config::Command::Serve(_)));
    let level = tally::telemetry::default_level(serving, cli.global.verbose);
    let _log_writer = tally::telemetry::init(cli.global.log_format, level);
    match tally::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // Not `eprintln!`: it panics when stderr is closed.
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
