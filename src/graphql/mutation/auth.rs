use async_graphql::{Context, Object, Result};

use crate::domain::accounts::{self, AccountChoice, NewUser, Role};
use crate::domain::error::{DomainError, DomainResult};
use crate::graphql::context::{now, request_info, state};
use crate::graphql::object::{AuthPayload, User};

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates an account on FREE and its first user, and signs that user in.
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
        account_name: String,
    ) -> Result<AuthPayload> {
        let state = state(ctx);
        state
            .auth_limiter
            .check_address(&request_info(ctx).client_address)?;
        let user = accounts::sign_up(
            &state.db,
            &state.passwords,
            NewUser {
                email,
                password,
                role: Role::Member,
                account: AccountChoice::New(account_name),
            },
            now(ctx),
        )
        .await?;
        Ok(payload(ctx, user)?)
    }

    /// Signs in with e-mail and password.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<AuthPayload> {
        let state = state(ctx);
        let address = &request_info(ctx).client_address;
        state.auth_limiter.check_address(address)?;
        let attempt = state
            .auth_limiter
            .begin_login(&email.trim().to_lowercase(), address)?;
        match accounts::authenticate(&state.db, &state.passwords, &email, &password).await {
            Ok(user) => {
                attempt.forget();
                Ok(payload(ctx, user)?)
            }
            // A wrong e-mail or password: the attempt stays counted as a failure.
            Err(err @ DomainError::Unauthenticated { .. }) => Err(err.into()),
            // Nothing was learnt about the password.
            Err(err) => {
                attempt.forget();
                Err(err.into())
            }
        }
    }
}

fn payload(ctx: &Context<'_>, user: crate::entity::user::Model) -> DomainResult<AuthPayload> {
    let token = state(ctx).jwt.issue(&user.id, now(ctx))?;
    Ok(AuthPayload {
        token,
        user: User(user),
    })
}
