use async_graphql::{Context, Object, Result};
use chrono::{TimeZone, Utc};

use crate::domain::api_keys::{self, KeyCursor};
use crate::domain::error::DomainError;
use crate::graphql::context::{current_actor, now, state};
use crate::graphql::guard::PageFirst;
use crate::graphql::object::page::{
    connection, decode_after, not_a_cursor, CursorConnection, Position,
};
use crate::graphql::object::ApiKey;

#[derive(Default)]
pub struct ApiKeyQuery;

#[Object]
impl ApiKeyQuery {
    /// The keys of the caller's account, newest first: active and expired ones, and revoked ones
    /// when asked.
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_revoked: bool,
    ) -> Result<Vec<ApiKey>> {
        let actor = current_actor(ctx).await?;
        let now = now(ctx);
        let keys = api_keys::list(&state(ctx).db, &actor, include_revoked, now).await?;
        Ok(keys.into_iter().map(|k| ApiKey::new(k, now)).collect())
    }

    /// The same keys as `apiKeys`, a page at a time: `first` (1..=100) keys after the cursor
    /// `after` (an `endCursor` of an earlier page).
    #[graphql(guard = "PageFirst(first)")]
    async fn api_keys_connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        #[graphql(default = false)] include_revoked: bool,
    ) -> Result<CursorConnection<ApiKey>> {
        let actor = current_actor(ctx).await?;
        let now = now(ctx);
        let after = decode_after(after.as_deref())?;
        let after_given = after.is_some();
        let cursor = after
            .map(|position| {
                let created_at = Utc
                    .timestamp_millis_opt(position.at)
                    .single()
                    .ok_or_else(not_a_cursor)?;
                Ok::<_, DomainError>(KeyCursor {
                    created_at,
                    id: position.id,
                })
            })
            .transpose()?;
        let first = usize::try_from(first).unwrap_or(0);
        let page =
            api_keys::page(&state(ctx).db, &actor, include_revoked, now, cursor, first).await?;
        Ok(connection(
            page,
            after_given,
            |key| Position {
                at: key.created_at.timestamp_millis(),
                id: key.id.clone(),
            },
            |key| ApiKey::new(key, now),
        ))
    }
}
