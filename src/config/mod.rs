//! The one typed `Config` the service runs with, built from `serve`'s flags (`cli::args`, where
//! every flag has a `TALLY_*` environment fallback and a default that works on a fresh machine),
//! and the checks of those flags that need more than one value or a dependency.

use std::time::Duration;

use ipnet::IpNet;

use crate::cli::args::{ServeArgs, DEFAULT_DATABASE_WAIT};
use crate::domain::auth::MIN_JWT_SECRET_BYTES;

pub mod cors_origin;

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
