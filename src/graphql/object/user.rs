use async_graphql::{Context, Enum, Object, Result, ID};

use crate::domain::accounts;
use crate::domain::error::DomainError;
use crate::entity::user;
use crate::graphql::context::state;
use crate::graphql::object::Account;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Member,
    Admin,
}

impl From<accounts::Role> for Role {
    fn from(role: accounts::Role) -> Self {
        match role {
            accounts::Role::Member => Role::Member,
            accounts::Role::Admin => Role::Admin,
        }
    }
}

/// A person who signs in.
pub struct User(pub user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn role(&self) -> Role {
        accounts::Role::of(&self.0).into()
    }

    async fn account(&self, ctx: &Context<'_>) -> Result<Account> {
        let account = accounts::find_account(&state(ctx).db, &self.0.account_id)
            .await?
            .ok_or_else(|| DomainError::internal(anyhow::anyhow!("user without account")))?;
        Ok(Account(account))
    }
}
