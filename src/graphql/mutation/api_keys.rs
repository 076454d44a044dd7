use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

use crate::domain::api_keys::{self, KeySettings};
use crate::graphql::context::{current_actor, now, state};
use crate::graphql::object::{ApiKey, CreatedApiKey};

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Issues a key for the caller's account. The plaintext is in the answer and nowhere else.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        name: String,
        expires_at: Option<DateTime<Utc>>,
        #[graphql(default = false)] require_signature: bool,
    ) -> Result<CreatedApiKey> {
        let actor = current_actor(ctx).await?;
        let now = now(ctx);
        let settings = KeySettings {
            name,
            expires_at,
            require_signature,
        };
        let created = api_keys::create(&state(ctx).db, &actor, settings, now).await?;
        Ok(CreatedApiKey::new(created, now))
    }

    /// Revokes a key at once: the caller's own account's keys, or any key for an admin.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKey> {
        let actor = current_actor(ctx).await?;
        let state = state(ctx);
        let now = now(ctx);
        let key = api_keys::revoke(&state.db, &state.invalidation, &actor, &id, now).await?;
        Ok(ApiKey::new(key, now))
    }

    /// Issues a new key with the same settings; the old one is revoked at once, or when the grace
    /// period ends.
    async fn rotate_api_key(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 0)] grace_period_seconds: i64,
    ) -> Result<CreatedApiKey> {
        let actor = current_actor(ctx).await?;
        let state = state(ctx);
        let now = now(ctx);
        let created = api_keys::rotate(
            &state.db,
            &state.invalidation,
            &actor,
            &id,
            grace_period_seconds,
            now,
        )
        .await?;
        Ok(CreatedApiKey::new(created, now))
    }
}
