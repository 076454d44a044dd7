//! The command line as clap reads it: the commands, their flags and the `TALLY_*` environment
//! fallbacks, with the parsers of flag values. `config` turns `serve`'s flags into the typed
//! `Config` the service runs with.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::config::cors_origin::parse_cors_origin;
use crate::telemetry::LogFormat;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://tally.db?mode=rwc";

#[derive(Debug, Parser)]
#[command(
    name = "tally",
    version,
    about = "Meters API usage: keys, quotas, rate limits, billing and analytics"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Options of `serve`, also accepted without the subcommand (`tally` alone is `tally serve`).
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Database to use: a SQLite file (the default) or a PostgreSQL URL.
    #[arg(long, env = "TALLY_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
    /// Log output: human-readable lines or one JSON object per line.
    #[arg(long, env = "TALLY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// More log lines: commands other than `serve` log only warnings unless given `-v` (INFO);
    /// `-vv` is DEBUG. A log filter (--log-filter / TALLY_LOG, else `RUST_LOG`) overrides both.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Which log lines to write, as a filter: `warn`, `debug`, `info,tally=debug`, ... Unset or
    /// empty: `RUST_LOG`, else INFO for `serve` and warnings for the other commands.
    #[arg(long, env = "TALLY_LOG", value_name = "FILTER", global = true, value_parser = crate::telemetry::parse_filter)]
    pub log_filter: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve(Box<ServeArgs>),
    /// Apply, revert or list schema migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Billing runs.
    Billing {
        #[command(subcommand)]
        action: BillingAction,
    },
    /// Fill the database with demo accounts, users, keys and usage events (for trying dashboards
    /// and for benchmarks).
    SeedDemo(SeedDemoArgs),
    /// Print the GraphQL schema (SDL).
    Schema {
        /// Compare with this file instead of printing; exit 1 when they differ.
        #[arg(long)]
        check: Option<PathBuf>,
    },
    /// Print the OpenAPI 3.1 document of the REST routes (JSON).
    Openapi {
        /// Compare with this file instead of printing; exit 1 when they differ.
        #[arg(long)]
        check: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum BillingAction {
    /// Invoice every account for every billing period that has ended (idempotent).
    Close {
        /// Close the periods that ended at or before this instant (RFC 3339); default: now.
        #[arg(long)]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct SeedDemoArgs {
    /// Usage events to write.
    #[arg(long, default_value_t = 5000)]
    pub events: u64,
    /// Accounts to create (on all plans), besides the demo admin's.
    #[arg(long, default_value_t = 20)]
    pub accounts: usize,
    /// Events are spread over this many UTC days ending today.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Random seed: the same seed gives the same usage.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Password of every demo user (and of the demo admin). Unset or empty: a random one,
    /// printed with the e-mails.
    #[arg(long, env = "TALLY_DEMO_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply all pending migrations.
    Up,
    /// Revert the last applied migration.
    Down,
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user, with a new account unless `--account` names an existing one (by id or
    /// name).
    Create {
        /// E-mail address the user signs in with.
        #[arg(long)]
        email: String,
        /// The user's password, at least 8 characters. Safer from the environment
        /// (TALLY_USER_PASSWORD) than on the command line, where other users of the machine
        /// can read it.
        #[arg(long, env = "TALLY_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Make the user an administrator of the installation.
        #[arg(long)]
        admin: bool,
        /// The account to join: an account id, or a name. A name joins the one account of that
        /// name, or makes a new account when none has it; when several have it, the command
        /// lists their ids and stops.
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on: an IP address and a port (`127.0.0.1:8080`; `0.0.0.0:8080` for
    /// every interface). Host names are not resolved.
    #[arg(long, env = "TALLY_BIND", default_value = "127.0.0.1:8080", value_parser = parse_bind)]
    pub bind: SocketAddr,
    /// Secret for signing JWTs, at least 32 bytes. When unset (or empty), one is generated on
    /// first start and kept in the database.
    #[arg(long, env = "TALLY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Lifetime of issued JWTs, in seconds.
    #[arg(long, env = "TALLY_JWT_TTL_SECONDS", default_value_t = 3600, value_parser = parse_seconds)]
    pub jwt_ttl_seconds: u64,
    /// Do not apply pending migrations on start. As environment variables, the switches read
    /// `1`, `true`, `yes` or `on` as set and an empty value, `0`, `false`, `no` or `off` as unset
    /// (in any case); anything else is refused.
    #[arg(long, env = "TALLY_NO_MIGRATE", action = clap::ArgAction::SetTrue, value_parser = parse_switch)]
    pub no_migrate: bool,
    /// E-mail of the admin created on an empty database.
    #[arg(long, env = "TALLY_ADMIN_EMAIL", default_value = "admin@localhost")]
    pub admin_email: String,
    /// Password of that admin; when unset or empty a random one is generated and printed once.
    #[arg(long, env = "TALLY_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// `login` and `signUp` attempts allowed per client address and minute.
    #[arg(long, env = "TALLY_AUTH_RATE_LIMIT_PER_MINUTE", default_value_t = 30)]
    pub auth_rate_limit_per_minute: u32,
    /// How long an API key, its account and plan may be served from memory before they are read
    /// again: the bound on how late another instance sees a revocation or plan change whose
    /// announcement was lost (announced ones reach it within 1 s).
    #[arg(long, env = "TALLY_KEY_CACHE_TTL_SECONDS", default_value_t = 5)]
    pub key_cache_ttl_seconds: u64,
    /// How long the rollup follower lets written batches gather before adding them to the daily
    /// rollups, in milliseconds: about how far analytics trail an acknowledged event. Longer means
    /// fewer, larger follower transactions; past 900 analytics may trail by more than a second.
    #[arg(long, env = "TALLY_ROLLUP_GATHER_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub rollup_gather_ms: u64,
    /// How often `serve` closes ended billing periods by itself, in seconds.
    #[arg(
        long,
        env = "TALLY_BILLING_CLOSE_INTERVAL_SECONDS",
        default_value_t = 3600
    )]
    pub billing_close_interval_seconds: u64,
    /// Do not close billing periods in the background (run `tally billing close` instead).
    #[arg(long, env = "TALLY_NO_BILLING_CLOSE", action = clap::ArgAction::SetTrue, value_parser = parse_switch)]
    pub no_billing_close: bool,
    /// Requests taking longer than this are answered 408. Ingestion answers well before it:
    /// see --database-wait-ms.
    #[arg(long, env = "TALLY_REQUEST_TIMEOUT_SECONDS", default_value_t = 30, value_parser = parse_seconds)]
    pub request_timeout_seconds: u64,
    /// Longest an ingestion request waits on the database in all, in milliseconds (reading its
    /// key and counters, the writer taking its events, a lock held elsewhere) before it is
    /// answered 503 with `Retry-After: 1`. Also how long a statement waits for another
    /// connection's lock (SQLite busy timeout, PostgreSQL `lock_timeout`). At most a quarter of
    /// the request timeout is used.
    #[arg(long, env = "TALLY_DATABASE_WAIT_MS", default_value_t = DEFAULT_DATABASE_WAIT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub database_wait_ms: u64,
    /// Signing secret of the billing provider's webhook (Stripe's `whsec_...`). Without it
    /// `POST /api/webhooks/billing` answers 503.
    #[arg(long, env = "TALLY_BILLING_WEBHOOK_SECRET", hide_env_values = true)]
    pub billing_webhook_secret: Option<String>,
    /// Raw usage events older than this many days are deleted (hourly); the rollups that
    /// analytics and billing read are kept. 0 keeps raw events forever.
    #[arg(long, env = "TALLY_EVENT_RETENTION_DAYS", default_value_t = 90)]
    pub event_retention_days: u32,
    /// `POST /api/install-callback` requests allowed per client address and minute.
    #[arg(
        long,
        env = "TALLY_INSTALL_RATE_LIMIT_PER_MINUTE",
        default_value_t = 60
    )]
    pub install_rate_limit_per_minute: u32,
    /// Where a client over its plan's quota is sent to upgrade (`upgrade_url` of a 429). Set it
    /// to an absolute URL (your pricing page): the default `/upgrade` is relative, and `serve`
    /// warns about it on the first start with it.
    #[arg(long, env = "TALLY_UPGRADE_URL", default_value = "/upgrade")]
    pub upgrade_url: String,

    // Connections: how long a client may take and how many may be open at once, so that slow
    // or idle sockets cannot starve the service.
    /// A connection that has not sent a complete request head this many seconds after it opened
    /// (or after the first byte of a later request on a kept-alive connection) is closed.
    #[arg(long, env = "TALLY_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_seconds: u64,
    /// A kept-alive connection that has not started a new request this many seconds after the
    /// previous response is closed.
    #[arg(long, env = "TALLY_KEEP_ALIVE_TIMEOUT_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_timeout_seconds: u64,
    /// Most connections open at once; further ones are answered 503 and closed.
    #[arg(long, env = "TALLY_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Most connections one client address may hold open at once; further ones are answered
    /// 503 and closed. Connections from `--trusted-proxies` count against `--max-connections`
    /// only.
    #[arg(long, env = "TALLY_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: u32,
    /// A request body that has not fully arrived this many seconds after its head is answered 408.
    #[arg(long, env = "TALLY_BODY_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_seconds: u64,
    /// Proxies (networks such as 10.0.0.0/8, or single addresses; comma-separated) whose
    /// `Forwarded` / `X-Forwarded-For` headers name the client for the per-address limits. None
    /// by default: every client is its connection's peer.
    #[arg(long, env = "TALLY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_trusted_proxy)]
    pub trusted_proxies: Vec<IpNet>,
    /// Redis (`redis://host:6379`) through which every instance shares the per-key minute
    /// limits. Unset: each instance limits on its own.
    #[arg(long, env = "TALLY_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Origins (`https://dash.example.com`, comma-separated) whose pages may call `/graphql`
    /// from the browser (CORS). None by default: only pages served by Tally itself.
    #[arg(long, env = "TALLY_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_cors_origin)]
    pub cors_origins: Vec<String>,
}

/// `TALLY_DATABASE_WAIT_MS` by default.
pub const DEFAULT_DATABASE_WAIT: Duration = Duration::from_millis(1500);

/// Reads a number of seconds of a timeout or lifetime, which must be at least 1: with 0 every
/// request would time out (or every token expire) at once.
pub fn parse_seconds(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1 second: 0 would end everything at once".to_owned()),
        Ok(seconds) => Ok(seconds),
        Err(_) => Err(format!("`{value}` is not a whole number of seconds")),
    }
}

/// Reads `--bind`: an IP address and a port, said plainly when it is something else (a host
/// name such as `localhost` is the usual mistake).
pub fn parse_bind(value: &str) -> Result<SocketAddr, String> {
    value.trim().parse().map_err(|_| {
        format!(
            "`{value}` is not an IP address and a port: give an IP address and a port, such as \
             127.0.0.1:8080 (this machine only) or 0.0.0.0:8080 (every interface); host names \
             are not resolved"
        )
    })
}

/// Reads a switch given as an environment variable (`TALLY_NO_MIGRATE=...`): on or off, and
/// nothing else, so that a typo is not silently taken as either.
pub fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "`{value}` is not a switch value: use 1, true, yes or on to turn it on, and 0, \
             false, no, off or empty to leave it off"
        )),
    }
}

/// Reads `TALLY_TRUSTED_PROXIES` entries: a network (`10.0.0.0/8`) or one address.
pub fn parse_trusted_proxy(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{entry}` is neither a network (10.0.0.0/8) nor an address"))
}
