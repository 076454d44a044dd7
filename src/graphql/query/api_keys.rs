use async_graphql::{Context, Object, Result};

use crate::domain::api_keys;
use crate::graphql::context::{current_actor, now, state};
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
}
