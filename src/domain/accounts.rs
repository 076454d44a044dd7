//! Accounts and their users: sign-up, sign-in, creating users from the CLI, and plan changes
//! (kept with the moment they took effect, for billing), and the admin's pages of accounts.

use std::future::Future;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, TransactionSession,
    TransactionTrait,
};

use crate::domain::auth::{self, PasswordWork};
use crate::domain::error::{DomainError, DomainResult, UnauthenticatedReason};
use crate::domain::invalidation::{Change, Invalidation};
use crate::domain::paging::{check_limit, check_offset};
use crate::domain::plans::PlanCode;
use crate::entity::{account, account_plan_change, user};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Member,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "MEMBER",
            Role::Admin => "ADMIN",
        }
    }

    pub fn of(user: &user::Model) -> Role {
        if user.role == Role::Admin.as_str() {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

pub const MAX_EMAIL_LEN: usize = 320;
pub const MAX_ACCOUNT_NAME_LEN: usize = 200;

/// Lower-cases and checks an e-mail address: one `@`, something on both sides, no spaces.
pub fn normalize_email(email: &str) -> DomainResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(email)
    } else {
        Err(DomainError::bad_field(
            "email",
            "must be a valid e-mail address",
        ))
    }
}

fn normalize_account_name(name: &str) -> DomainResult<String> {
    let name = name.trim();
    if (1..=MAX_ACCOUNT_NAME_LEN).contains(&name.chars().count()) {
        Ok(name.to_owned())
    } else {
        Err(DomainError::bad_field(
            "accountName",
            format!("must be 1 to {MAX_ACCOUNT_NAME_LEN} characters"),
        ))
    }
}

/// Which account a new user joins.
pub enum AccountChoice {
    /// A new account of this name, on FREE.
    New(String),
    Existing(String),
}

pub struct NewUser {
    pub email: String,
    pub password: String,
    pub role: Role,
    pub account: AccountChoice,
}

/// Creates a user (and its account when asked) for an operator (the command line, the first
/// admin): the password is hashed at once. Input is checked before anything is written.
pub async fn create_user(
    db: &DatabaseConnection,
    new: NewUser,
    now: DateTime<Utc>,
) -> DomainResult<user::Model> {
    create_user_hashing(db, new, now, auth::hash_password).await
}

/// [`create_user`] for a request (`signUp`): the password is hashed when `passwords` gives it
/// a turn.
pub async fn sign_up(
    db: &DatabaseConnection,
    passwords: &PasswordWork,
    new: NewUser,
    now: DateTime<Utc>,
) -> DomainResult<user::Model> {
    create_user_hashing(db, new, now, |password| passwords.hash(password)).await
}

async fn create_user_hashing<Hashed>(
    db: &DatabaseConnection,
    new: NewUser,
    now: DateTime<Utc>,
    hash: impl FnOnce(String) -> Hashed,
) -> DomainResult<user::Model>
where
    Hashed: Future<Output = DomainResult<String>>,
{
    let email = normalize_email(&new.email)?;
    auth::validate_password(&new.password)?;
    let account = match new.account {
        AccountChoice::New(name) => AccountChoice::New(normalize_account_name(&name)?),
        existing => existing,
    };
    if find_by_email(db, &email).await?.is_some() {
        return Err(email_taken());
    }
    let password_hash = hash(new.password).await?;

    // An existing account is read before the user is written.
    let txn = crate::db::begin_read_write(db).await?;
    let account_id = match account {
        AccountChoice::New(name) => create_account(&txn, &name, now).await?.id,
        AccountChoice::Existing(id) => {
            account::Entity::find_by_id(id)
                .one(&txn)
                .await?
                .ok_or_else(|| DomainError::not_found("Account not found"))?
                .id
        }
    };
    let inserted = user::ActiveModel {
        id: Set(new_id()),
        account_id: Set(account_id),
        email: Set(email),
        password_hash: Set(password_hash),
        role: Set(new.role.as_str().to_owned()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => email_taken(),
        _ => err.into(),
    })?;
    txn.commit().await?;
    Ok(inserted)
}

fn email_taken() -> DomainError {
    DomainError::bad_field("email", "is already registered")
}

async fn create_account(
    db: &impl ConnectionTrait,
    name: &str,
    now: DateTime<Utc>,
) -> DomainResult<account::Model> {
    let created = account::ActiveModel {
        id: Set(new_id()),
        name: Set(name.to_owned()),
        plan_code: Set(PlanCode::Free.as_str().to_owned()),
        initial_plan_code: Set(PlanCode::Free.as_str().to_owned()),
        billing_customer_id: Set(None),
        billing_period_start: Set(None),
        billing_period_end: Set(None),
        billing_event_created_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    record_plan_change(db, &created.id, PlanCode::Free, now).await?;
    Ok(created)
}

pub async fn find_by_email(
    db: &DatabaseConnection,
    email: &str,
) -> DomainResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(db)
        .await?)
}

pub async fn find_user(db: &DatabaseConnection, id: &str) -> DomainResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id.to_owned()).one(db).await?)
}

pub async fn find_account(
    db: &DatabaseConnection,
    id: &str,
) -> DomainResult<Option<account::Model>> {
    Ok(account::Entity::find_by_id(id.to_owned()).one(db).await?)
}

/// The user with this e-mail and password; one answer for every kind of mismatch. The password
/// is checked when `passwords` gives it a turn.
pub async fn authenticate(
    db: &DatabaseConnection,
    passwords: &PasswordWork,
    email: &str,
    password: &str,
) -> DomainResult<user::Model> {
    let wrong = || {
        DomainError::unauthenticated(
            UnauthenticatedReason::InvalidCredentials,
            "Invalid email or password",
        )
    };
    let found = match normalize_email(email) {
        Ok(email) => find_by_email(db, &email).await?,
        Err(_) => None,
    };
    let stored = found.as_ref().map(|u| u.password_hash.clone());
    if passwords.verify(password.to_owned(), stored).await? {
        found.ok_or_else(wrong)
    } else {
        Err(wrong())
    }
}

/// An admin moves an account to another plan from `now` on. Ingestion sees the new plan at once
/// here and within 1 s on other instances: the key caches, which hold each key's account and
/// plan, are emptied.
pub async fn change_plan(
    db: &DatabaseConnection,
    invalidation: &Invalidation,
    account_id: &str,
    code: PlanCode,
    now: DateTime<Utc>,
) -> DomainResult<account::Model> {
    let account = set_plan(db, account_id, code, now).await?;
    invalidation.announce(db, Change::AllKeys).await;
    Ok(account)
}

/// Moves an account to another plan from `now` on. Given a transaction, the change commits or
/// rolls back with it (it runs in a savepoint); the caller announces the change once it has
/// committed, as [`change_plan`] does.
pub async fn set_plan<C: TransactionTrait>(
    db: &C,
    account_id: &str,
    code: PlanCode,
    now: DateTime<Utc>,
) -> DomainResult<account::Model> {
    let txn = crate::db::begin_read_write(db).await?;
    let current = account::Entity::find_by_id(account_id.to_owned())
        .one(&txn)
        .await?
        .ok_or_else(|| DomainError::not_found("Account not found"))?;
    if current.plan_code == code.as_str() {
        return Ok(current);
    }
    let mut row: account::ActiveModel = current.into();
    row.plan_code = Set(code.as_str().to_owned());
    let updated = row.update(&txn).await?;
    record_plan_change(&txn, account_id, code, now).await?;
    txn.commit().await?;
    Ok(updated)
}

async fn record_plan_change(
    db: &impl ConnectionTrait,
    account_id: &str,
    code: PlanCode,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    account_plan_change::ActiveModel {
        account_id: Set(account_id.to_owned()),
        plan_code: Set(code.as_str().to_owned()),
        effective_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A page of accounts, oldest first, with the true number of accounts matching.
pub async fn page(
    db: &DatabaseConnection,
    plan: Option<PlanCode>,
    limit: i64,
    offset: i64,
) -> DomainResult<(Vec<account::Model>, i64)> {
    check_limit(limit)?;
    check_offset(offset)?;
    let mut query = account::Entity::find();
    if let Some(plan) = plan {
        query = query.filter(account::Column::PlanCode.eq(plan.as_str()));
    }
    let total = query.clone().count(db).await?;
    let nodes = query
        .order_by_asc(account::Column::CreatedAt)
        .order_by_asc(account::Column::Id)
        .limit(u64::try_from(limit).unwrap_or(0))
        .offset(u64::try_from(offset).unwrap_or(0))
        .all(db)
        .await?;
    Ok((nodes, i64::try_from(total).unwrap_or(i64::MAX)))
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
