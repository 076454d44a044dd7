use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = tally::config::Cli::parse();
    tally::telemetry::init(cli.global.log_format);
    match tally::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
