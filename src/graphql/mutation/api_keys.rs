use async_graphql::{Context, Object, Result, ID};
use chrono::{DateTime, Utc};

use crate::domain::api_keys::{self, Actor, KeySettings};
use crate::entity::user;
use crate::graphql::context::{actor_of, current_user, now, state};
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
        let (_, actor) = signed_in(ctx).await?;
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
        let (user, actor) = signed_in(ctx).await?;
        let state = state(ctx);
        let now = now(ctx);
        let key = api_keys::revoke(&state.db, &state.invalidation, &actor, &id, now).await?;
        tracing::info!(
            by = %user.email,
            key_id = %key.id,
            account_id = %key.account_id,
            "API key revoked"
        );
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
        let (user, actor) = signed_in(ctx).await?;
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
        tracing::info!(
            by = %user.email,
            old_key_id = %id.as_str(),
            new_key_id = %created.key.id,
            grace_period_seconds,
            "API key rotated"
        );
        Ok(CreatedApiKey::new(created, now))
    }
}

/// The signed-in user (for the log: who acted) and what key management needs of them.
async fn signed_in(ctx: &Context<'_>) -> Result<(user::Model, Actor)> {
    let user = current_user(ctx).await?;
    let actor = actor_of(&user);
    Ok((user, actor))
}
