use async_graphql::SimpleObject;

use crate::graphql::object::User;

#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A JWT for `Authorization: Bearer`.
    pub token: String,
    pub user: User,
}
