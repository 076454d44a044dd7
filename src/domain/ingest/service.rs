//! What ingestion needs of the service, gathered in one value the HTTP faces hand to every
//! ingestion step.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::clock::Clock;
use crate::domain::deadline::Deadline;
use crate::domain::keys::KeyCache;
use crate::domain::quota::QuotaGate;
use crate::domain::ratelimit::{KeyLimits, RateLimits};
use crate::domain::recorder::Recorder;

/// What ingestion needs of the service, and nothing else: the database, the key cache, the
/// quota gate, the per-key and per-address limits, the recorder, the clock and two settings.
#[derive(Clone)]
pub struct Ingestion {
    pub db: DatabaseConnection,
    pub keys: KeyCache,
    pub quota: QuotaGate,
    /// Per-minute limits of API keys (keyed by key id).
    pub key_limits: KeyLimits,
    /// Per-minute limits of install callbacks (keyed by client address).
    pub install_limits: RateLimits,
    pub recorder: Recorder,
    pub clock: Arc<dyn Clock>,
    pub settings: IngestSettings,
}

#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Sent with a 429 `Quota exceeded`.
    pub upgrade_url: String,
    pub install_rate_limit_per_minute: u32,
    /// What a request may wait on the database in all (`TALLY_DATABASE_WAIT_MS`).
    pub database_wait: Duration,
}

impl Ingestion {
    /// The deadline of a request starting now.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.settings.database_wait)
    }
}
