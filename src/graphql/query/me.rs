use async_graphql::{Context, ErrorExtensions, Object, Result};

use crate::graphql::context::current_user;
use crate::graphql::object::User;

#[derive(Default)]
pub struct MeQuery;

#[Object]
impl MeQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        current_user(ctx)
            .await
            .map(User)
            .map_err(|err| err.extend())
    }
}
