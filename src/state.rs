//! What every handler and resolver shares: the database, the configuration, the clock and the
//! in-memory helpers built on top of them.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::auth::{AuthLimiter, FailureLimits, JwtKeys, PasswordWork, TokenSettings};
use crate::domain::ingest::{IngestSettings, Ingestion};
use crate::domain::invalidation::{Invalidation, Listening};
use crate::domain::keys::KeyCache;
use crate::domain::quota::QuotaGate;
use crate::domain::ratelimit::shared::SharedLimits;
use crate::domain::ratelimit::{KeyLimits, RateLimits};
use crate::domain::recorder::Recorder;
use crate::telemetry::metrics::Metrics;

/// Cloned for every request (axum's `State`), so one shared allocation: a clone is one reference
/// count, not one per cache and pool.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub jwt: Arc<JwtKeys>,
    pub keys: KeyCache,
    pub auth_limiter: Arc<AuthLimiter>,
    /// Turns at password hashing for sign-up and sign-in.
    pub passwords: PasswordWork,
    pub metrics: Metrics,
    /// What ingestion needs: the key cache (shared with the rest), the quota gate, the limits
    /// of keys and install callbacks, the recorder.
    pub ingestion: Arc<Ingestion>,
    /// Clears the caches above after a change, here and (on PostgreSQL) on every instance.
    pub invalidation: Invalidation,
    /// Applies the changes other instances announce, for as long as any clone of the state lives.
    _listening: Option<Arc<Listening>>,
}

impl AppState {
    pub fn new(db: DatabaseConnection, config: Config, jwt_secret: &[u8]) -> Self {
        Self::with_clock(db, config, jwt_secret, Arc::new(SystemClock))
    }

    /// Also starts the recorder's writer task and, on PostgreSQL, the task listening for changes
    /// made on other instances: call it inside a Tokio runtime.
    pub fn with_clock(
        db: DatabaseConnection,
        config: Config,
        jwt_secret: &[u8],
        clock: Arc<dyn Clock>,
    ) -> Self {
        let jwt = Arc::new(JwtKeys::new(
            jwt_secret,
            TokenSettings {
                issuer: config.jwt_issuer.clone(),
                audience: config.jwt_audience.clone(),
                ttl: config.jwt_ttl,
            },
        ));
        let keys = KeyCache::new(config.key_cache_ttl);
        let auth_limiter = Arc::new(AuthLimiter::new(
            config.auth_rate_limit_per_minute,
            FailureLimits {
                per_email_and_address_per_minute: config
                    .login_failures_per_email_and_address_per_minute,
                per_email_per_minute: config.login_failures_per_email_per_minute,
            },
            clock.clone(),
        ));
        let passwords = PasswordWork::new(
            config.password_hashing_concurrency,
            config.password_queue_timeout,
        );
        let metrics = Metrics::new();
        let quota = QuotaGate::new();
        let invalidation = Invalidation::new(keys.clone(), quota.clone());
        let listening = invalidation.listen(&db).map(Arc::new);
        let ingestion = Arc::new(Ingestion {
            db: db.clone(),
            keys: keys.clone(),
            quota,
            key_limits: KeyLimits::new(clock.clone(), shared_limits(&config, &metrics)),
            install_limits: RateLimits::new(clock.clone()),
            recorder: Recorder::start(
                db.clone(),
                metrics.clone(),
                config.write_timeout,
                config.rollup_gather,
            ),
            clock: clock.clone(),
            settings: IngestSettings {
                upgrade_url: config.upgrade_url.clone(),
                install_rate_limit_per_minute: config.install_rate_limit_per_minute,
                database_wait: config.write_timeout,
            },
        });
        Self(Arc::new(Services {
            metrics,
            db,
            config: Arc::new(config),
            clock,
            jwt,
            keys,
            auth_limiter,
            passwords,
            ingestion,
            invalidation,
            _listening: listening,
        }))
    }
}

/// Redis for the per-key limits, when configured. `serve` checked the URL before starting; a
/// URL that cannot be read here leaves the limits per instance, loudly.
fn shared_limits(config: &Config, metrics: &Metrics) -> Option<SharedLimits> {
    let url = config.redis_url.as_deref()?;
    match SharedLimits::new(url, metrics.clone()) {
        Ok(shared) => Some(shared),
        Err(err) => {
            tracing::error!(error = %err, "Redis URL unusable: per-key rate limits are per instance");
            None
        }
    }
}
