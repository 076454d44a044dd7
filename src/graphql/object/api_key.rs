use async_graphql::{Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::domain::analytics::DayWindow;
use crate::domain::api_keys::CreatedKey;
use crate::domain::key_usage;
use crate::domain::keys::{self, KeyStatus};
use crate::entity::api_key;
use crate::graphql::context::now;
use crate::graphql::loader::{self, KeyAt, KeyWindow};
use crate::graphql::object::BigInt;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ApiKeyStatus {
    Active,
    Expired,
    Revoked,
}

impl From<KeyStatus> for ApiKeyStatus {
    fn from(status: KeyStatus) -> Self {
        match status {
            KeyStatus::Active => ApiKeyStatus::Active,
            KeyStatus::Expired => ApiKeyStatus::Expired,
            KeyStatus::Revoked => ApiKeyStatus::Revoked,
        }
    }
}

/// An API key as its owner sees it: never its hash, never its plaintext.
pub struct ApiKey {
    key: api_key::Model,
    status: ApiKeyStatus,
}

impl ApiKey {
    pub fn new(key: api_key::Model, now: DateTime<Utc>) -> Self {
        let status = keys::status(key.expires_at, key.revoked_at, now).into();
        Self { key, status }
    }
}

#[Object]
impl ApiKey {
    async fn id(&self) -> ID {
        ID(self.key.id.clone())
    }

    async fn name(&self) -> &str {
        &self.key.name
    }

    /// `tly_` and the first 8 random characters, to tell keys apart.
    async fn prefix(&self) -> &str {
        &self.key.prefix
    }

    async fn status(&self) -> ApiKeyStatus {
        self.status
    }

    async fn require_signature(&self) -> bool {
        self.key.require_signature
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.key.created_at
    }

    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.key.last_used_at
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.key.expires_at
    }

    /// When the key stopped (or, during a rotation's grace period, will stop) working.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.key.revoked_at
    }

    /// Billable calls made with this key in its account's current billing period (a verify
    /// weighs its `cost`). Like the daily analytics, it may trail an acknowledged event by up to
    /// a second; a usage reset does not zero it.
    async fn calls_this_period(&self, ctx: &Context<'_>) -> Result<BigInt> {
        let key = KeyAt {
            key_id: self.key.id.clone(),
            now: now(ctx),
        };
        let calls = loader::get(ctx)?.load_one(key).await?;
        Ok(calls.unwrap_or(0).into())
    }

    /// Calls made with this key per UTC day, one entry per day ending today (1..=366 days),
    /// zero-filled, oldest first.
    async fn usage_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i64,
    ) -> Result<Vec<KeyDailyUsage>> {
        let key = KeyWindow {
            key_id: self.key.id.clone(),
            window: DayWindow::checked(now(ctx), days)?,
        };
        let history = loader::get(ctx)?.load_one(key).await?;
        Ok(history
            .unwrap_or_default()
            .into_iter()
            .map(KeyDailyUsage::from)
            .collect())
    }
}

/// Calls made with one key on one UTC day.
#[derive(SimpleObject, Clone, Debug)]
pub struct KeyDailyUsage {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// API calls (by cost) and tool uses made with the key.
    pub calls: BigInt,
    /// API calls (by cost) answered 4xx or 5xx.
    pub failed_calls: BigInt,
}

impl From<key_usage::KeyDailyUsage> for KeyDailyUsage {
    fn from(day: key_usage::KeyDailyUsage) -> Self {
        Self {
            date: day.date.format("%Y-%m-%d").to_string(),
            calls: day.calls.into(),
            failed_calls: day.failed_calls.into(),
        }
    }
}

/// A new key with its plaintext, shown this once.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub key: String,
    pub api_key: ApiKey,
}

impl CreatedApiKey {
    pub fn new(created: CreatedKey, now: DateTime<Utc>) -> Self {
        Self {
            key: created.plaintext,
            api_key: ApiKey::new(created.key, now),
        }
    }
}
