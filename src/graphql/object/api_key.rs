use async_graphql::{Enum, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::domain::api_keys::CreatedKey;
use crate::domain::keys::{self, KeyStatus};
use crate::entity::api_key;

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
