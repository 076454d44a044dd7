use async_graphql::{Context, Object, Result};

use crate::graphql::context::current_user;
use crate::graphql::object::User;

#[derive(Default)]
pub struct MeQuery;

#[Object]
impl MeQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        Ok(User(current_user(ctx).await?))
    }
}
