//! The command line and the one typed `Config` the service runs with. Every flag has a `TALLY_*`
//! environment fallback and a default that works on a fresh machine.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::domain::auth::MIN_JWT_SECRET_BYTES;
use crate::http::cors::parse_cors_origin;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
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

/// Everything the running service needs to know, resolved from the command line.
#[derive(Clone)]
pub struct Config {
    pub jwt_ttl: Duration,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub auth_rate_limit_per_minute: u32,
    /// Failed `login`s a minute per (e-mail, client address)...
    pub login_failures_per_email_and_address_per_minute: u32,
    /// ...and per e-mail from every address together, a backstop well above the first.
    pub login_failures_per_email_per_minute: u32,
    /// Password hashes and checks for requests running at once...
    pub password_hashing_concurrency: usize,
    /// ...and how long a request waits for a turn before it is refused (`RATE_LIMITED`).
    pub password_queue_timeout: Duration,
    pub key_cache_ttl: Duration,
    /// See `ServeArgs::rollup_gather_ms`.
    pub rollup_gather: Duration,
    pub request_timeout: Duration,
    /// `None` (or empty) leaves the billing webhook switched off. Never logged: see the `Debug`
    /// below.
    pub billing_webhook_secret: Option<String>,
    /// Days raw usage events are kept; 0: forever.
    pub event_retention_days: u32,
    pub install_rate_limit_per_minute: u32,
    pub upgrade_url: String,
    /// The database wait of an ingestion request, all waits together (see
    /// `ServeArgs::database_wait_ms`), and the database's lock timeout. Derived by
    /// [`write_timeout_for`], so a request is answered (503 at worst) long before it times out.
    pub write_timeout: Duration,

    // Connections (see `ServeArgs`).
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: u32,
    pub max_connections_per_address: u32,
    pub body_read_timeout: Duration,
    /// See `ServeArgs::trusted_proxies`.
    pub trusted_proxies: Vec<IpNet>,
    /// See `ServeArgs::redis_url`. May hold a password: not logged.
    pub redis_url: Option<String>,
    /// See `ServeArgs::cors_origins`.
    pub cors_origins: Vec<String>,
}

/// The configured database wait, but at most a quarter of the request timeout, so that a
/// request refused for it still has most of its time left to be answered.
pub fn write_timeout_for(request_timeout: Duration, database_wait: Duration) -> Duration {
    database_wait.min(request_timeout / 4)
}

/// `TALLY_DATABASE_WAIT_MS` by default.
pub const DEFAULT_DATABASE_WAIT: Duration = Duration::from_millis(1500);

impl Config {
    pub fn from_serve_args(args: &ServeArgs) -> Self {
        Self {
            jwt_ttl: Duration::from_secs(args.jwt_ttl_seconds),
            auth_rate_limit_per_minute: args.auth_rate_limit_per_minute,
            key_cache_ttl: Duration::from_secs(args.key_cache_ttl_seconds),
            rollup_gather: Duration::from_millis(args.rollup_gather_ms),
            request_timeout: Duration::from_secs(args.request_timeout_seconds),
            write_timeout: write_timeout_for(
                Duration::from_secs(args.request_timeout_seconds),
                Duration::from_millis(args.database_wait_ms),
            ),
            billing_webhook_secret: args
                .billing_webhook_secret
                .clone()
                .filter(|secret| !secret.is_empty()),
            event_retention_days: args.event_retention_days,
            install_rate_limit_per_minute: args.install_rate_limit_per_minute,
            upgrade_url: args.upgrade_url.clone(),
            header_read_timeout: Duration::from_secs(args.header_read_timeout_seconds),
            keep_alive_timeout: Duration::from_secs(args.keep_alive_timeout_seconds),
            max_connections: args.max_connections,
            max_connections_per_address: args.max_connections_per_address,
            body_read_timeout: Duration::from_secs(args.body_read_timeout_seconds),
            trusted_proxies: args.trusted_proxies.clone(),
            redis_url: args.redis_url.clone().filter(|url| !url.is_empty()),
            cors_origins: args
                .cors_origins
                .iter()
                .filter(|origin| !origin.is_empty())
                .cloned()
                .collect(),
            ..Self::default()
        }
    }
}

/// Written by hand so that secrets never reach a log line.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("jwt_ttl", &self.jwt_ttl)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field(
                "auth_rate_limit_per_minute",
                &self.auth_rate_limit_per_minute,
            )
            .field(
                "login_failures_per_email_and_address_per_minute",
                &self.login_failures_per_email_and_address_per_minute,
            )
            .field(
                "login_failures_per_email_per_minute",
                &self.login_failures_per_email_per_minute,
            )
            .field(
                "password_hashing_concurrency",
                &self.password_hashing_concurrency,
            )
            .field("password_queue_timeout", &self.password_queue_timeout)
            .field("key_cache_ttl", &self.key_cache_ttl)
            .field("rollup_gather", &self.rollup_gather)
            .field("request_timeout", &self.request_timeout)
            .field("write_timeout", &self.write_timeout)
            .field(
                "install_rate_limit_per_minute",
                &self.install_rate_limit_per_minute,
            )
            .field("upgrade_url", &self.upgrade_url)
            .field("event_retention_days", &self.event_retention_days)
            .field(
                "billing_webhook_secret",
                &self.billing_webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("header_read_timeout", &self.header_read_timeout)
            .field("keep_alive_timeout", &self.keep_alive_timeout)
            .field("max_connections", &self.max_connections)
            .field(
                "max_connections_per_address",
                &self.max_connections_per_address,
            )
            .field("body_read_timeout", &self.body_read_timeout)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<set>"))
            .field("cors_origins", &self.cors_origins)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            jwt_ttl: Duration::from_secs(3600),
            jwt_issuer: "tally".to_owned(),
            jwt_audience: "tally".to_owned(),
            auth_rate_limit_per_minute: 30,
            login_failures_per_email_and_address_per_minute: 10,
            login_failures_per_email_per_minute: 100,
            password_hashing_concurrency: crate::domain::auth::default_hashing_concurrency(),
            password_queue_timeout: Duration::from_secs(5),
            key_cache_ttl: Duration::from_secs(5),
            rollup_gather: crate::domain::recorder::follower::GATHER,
            request_timeout: Duration::from_secs(30),
            billing_webhook_secret: None,
            event_retention_days: 90,
            install_rate_limit_per_minute: 60,
            upgrade_url: "/upgrade".to_owned(),
            write_timeout: write_timeout_for(Duration::from_secs(30), DEFAULT_DATABASE_WAIT),
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_address: 64,
            body_read_timeout: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
            redis_url: None,
            cors_origins: Vec::new(),
        }
    }
}

impl ServeArgs {
    /// The JWT secret given on the command line or in the environment; `None` when unset or
    /// empty (a generated one is used). A secret shorter than 32 bytes is refused: it could be
    /// guessed offline from any issued token.
    pub fn configured_jwt_secret(&self) -> anyhow::Result<Option<&str>> {
        match self.jwt_secret.as_deref() {
            None | Some("") => Ok(None),
            Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => anyhow::bail!(
                "the JWT secret (--jwt-secret / TALLY_JWT_SECRET) is {} bytes long; it must be \
                 at least {MIN_JWT_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`), or leave it \
                 unset to use a generated one",
                secret.len()
            ),
            Some(secret) => Ok(Some(secret)),
        }
    }

    /// Checks what can be checked before anything is opened: refuses a weak JWT secret and an
    /// unusable Redis URL.
    pub fn check(&self) -> anyhow::Result<()> {
        self.configured_jwt_secret()?;
        if let Some(url) = self.redis_url.as_deref().filter(|url| !url.is_empty()) {
            redis::Client::open(url).map_err(|err| {
                anyhow::anyhow!("the Redis URL (--redis-url / TALLY_REDIS_URL) is unusable: {err}")
            })?;
        }
        Ok(())
    }

    /// False for a relative upgrade URL, which works but sends clients nowhere useful.
    pub fn upgrade_url_is_absolute(&self) -> bool {
        is_absolute_http_url(&self.upgrade_url)
    }
}

/// `http://host...` or `https://host...`, scheme in any case.
fn is_absolute_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://"].iter().any(|scheme| {
        lower
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    })
}

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
