//! What a resolver knows about the request: the bearer token and the client's address, and the
//! helpers that turn the token into the signed-in user.

use async_graphql::Context;
use chrono::{DateTime, Utc};

use crate::domain::accounts::{self, Role};
use crate::domain::api_keys::Actor;
use crate::domain::error::{DomainError, DomainResult, ForbiddenReason, UnauthenticatedReason};
use crate::entity::user;
use crate::state::AppState;

/// Per-request data put into every GraphQL request by the HTTP handler.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The token of an `Authorization: Bearer` header, if any.
    pub bearer: Option<String>,
    pub client_address: String,
}

pub fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

pub fn now(ctx: &Context<'_>) -> DateTime<Utc> {
    state(ctx).clock.now()
}

pub fn request_info<'a>(ctx: &Context<'a>) -> &'a RequestInfo {
    ctx.data_unchecked::<RequestInfo>()
}

/// The signed-in user, read fresh from the database (so a role change or deletion counts at once).
pub async fn current_user(ctx: &Context<'_>) -> DomainResult<user::Model> {
    let state = state(ctx);
    let token = request_info(ctx).bearer.as_deref().ok_or_else(|| {
        DomainError::unauthenticated(
            UnauthenticatedReason::MissingCredentials,
            "Authentication required",
        )
    })?;
    let user_id = state.jwt.verify(token, state.clock.now())?;
    accounts::find_user(&state.db, &user_id)
        .await?
        .ok_or_else(|| {
            DomainError::unauthenticated(
                UnauthenticatedReason::InvalidCredentials,
                "Invalid or expired token",
            )
        })
}

pub async fn current_actor(ctx: &Context<'_>) -> DomainResult<Actor> {
    Ok(actor_of(&current_user(ctx).await?))
}

/// What key management and invoices need to know of a user.
pub fn actor_of(user: &user::Model) -> Actor {
    Actor {
        role: Role::of(user),
        user_id: user.id.clone(),
        account_id: user.account_id.clone(),
    }
}

/// The signed-in user when it is an admin; `FORBIDDEN` for members.
pub async fn current_admin(ctx: &Context<'_>) -> DomainResult<user::Model> {
    let user = current_user(ctx).await?;
    if Role::of(&user) == Role::Admin {
        Ok(user)
    } else {
        Err(DomainError::forbidden(
            ForbiddenReason::RoleRequired,
            "Admin role required",
        ))
    }
}
