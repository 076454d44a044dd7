//! Managing API keys: create, list, revoke, rotate. Members act on their own account's keys; an
//! admin on any. A key of another account reads as not found, never as forbidden, so ids cannot
//! be probed.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};

use crate::domain::accounts::{new_id, Role};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::invalidation::{Change, Invalidation};
use crate::domain::keys::{self, digest_from_hex, KeyStatus};
use crate::domain::paging::{self, check_first, After, CursorPage};
use crate::entity::api_key;

pub const MAX_KEY_NAME_LEN: usize = 200;
/// The longest grace period a rotation may give the old key.
pub const MAX_GRACE_PERIOD_SECONDS: i64 = 30 * 24 * 3600;

/// Who is acting, as far as key management cares.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub account_id: String,
    pub role: Role,
}

/// A key row and, right after creation or rotation only, its plaintext.
pub struct CreatedKey {
    pub plaintext: String,
    pub key: api_key::Model,
}

pub struct KeySettings {
    pub name: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub require_signature: bool,
}

fn validate(settings: &KeySettings, now: DateTime<Utc>) -> DomainResult<()> {
    let name_len = settings.name.trim().chars().count();
    if !(1..=MAX_KEY_NAME_LEN).contains(&name_len) {
        return Err(DomainError::bad_field(
            "name",
            format!("must be 1 to {MAX_KEY_NAME_LEN} characters"),
        ));
    }
    if settings.expires_at.is_some_and(|at| at <= now) {
        return Err(DomainError::bad_field("expiresAt", "must be in the future"));
    }
    Ok(())
}

fn new_row(
    account_id: &str,
    settings: &KeySettings,
    now: DateTime<Utc>,
) -> (String, api_key::ActiveModel) {
    let generated = keys::generate();
    let row = api_key::ActiveModel {
        id: Set(new_id()),
        account_id: Set(account_id.to_owned()),
        name: Set(settings.name.trim().to_owned()),
        key_hash: Set(generated.digest.to_hex()),
        prefix: Set(generated.prefix),
        require_signature: Set(settings.require_signature),
        created_at: Set(now),
        last_used_at: Set(None),
        expires_at: Set(settings.expires_at),
        revoked_at: Set(None),
    };
    (generated.plaintext, row)
}

pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    settings: KeySettings,
    now: DateTime<Utc>,
) -> DomainResult<CreatedKey> {
    validate(&settings, now)?;
    let (plaintext, row) = new_row(&actor.account_id, &settings, now);
    let key = row.insert(db).await?;
    Ok(CreatedKey { plaintext, key })
}

/// The keys of the actor's own account, newest first; revoked ones only when asked.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    include_revoked: bool,
    now: DateTime<Utc>,
) -> DomainResult<Vec<api_key::Model>> {
    let all = api_key::Entity::find()
        .filter(api_key::Column::AccountId.eq(actor.account_id.as_str()))
        .order_by_desc(api_key::Column::CreatedAt)
        .order_by_desc(api_key::Column::Id)
        .all(db)
        .await?;
    Ok(all
        .into_iter()
        .filter(|k| {
            include_revoked || keys::status(k.expires_at, k.revoked_at, now) != KeyStatus::Revoked
        })
        .collect())
}

/// Where a page of keys starts: after the key created at `created_at` with id `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCursor {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// The actor's own account's keys in [`list`]'s order, `first` of them after `after`.
pub async fn page(
    db: &DatabaseConnection,
    actor: &Actor,
    include_revoked: bool,
    now: DateTime<Utc>,
    after: Option<KeyCursor>,
    first: usize,
) -> DomainResult<CursorPage<api_key::Model>> {
    use api_key::Column;
    check_first(first)?;
    let mut listed = Condition::all().add(Column::AccountId.eq(actor.account_id.as_str()));
    if !include_revoked {
        // A key whose revocation lies ahead (a rotation's grace period) still works.
        listed = listed.add(
            Condition::any()
                .add(Column::RevokedAt.is_null())
                .add(Column::RevokedAt.gt(now)),
        );
    }
    let total = api_key::Entity::find()
        .filter(listed.clone())
        .count(db)
        .await?;
    let after = after.map(|after| After {
        value: after.created_at.into(),
        id: after.id,
    });
    let query = api_key::Entity::find().filter(listed);
    let keyset = (Column::CreatedAt, Column::Id);
    paging::newest_first(db, query, keyset, after, first, total).await
}

async fn find_accessible(
    db: &DatabaseConnection,
    actor: &Actor,
    id: &str,
) -> DomainResult<api_key::Model> {
    let not_found = || DomainError::not_found("API key not found");
    let key = api_key::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    if actor.role == Role::Admin || key.account_id == actor.account_id {
        Ok(key)
    } else {
        Err(not_found())
    }
}

async fn announce_key(invalidation: &Invalidation, db: &DatabaseConnection, key: &api_key::Model) {
    if let Some(digest) = digest_from_hex(&key.key_hash) {
        invalidation.announce(db, Change::Key(digest)).await;
    }
}

/// Revokes a key now. Revoking a revoked key changes nothing.
pub async fn revoke(
    db: &DatabaseConnection,
    invalidation: &Invalidation,
    actor: &Actor,
    id: &str,
    now: DateTime<Utc>,
) -> DomainResult<api_key::Model> {
    let key = find_accessible(db, actor, id).await?;
    if key.revoked_at.is_some_and(|at| at <= now) {
        return Ok(key);
    }
    let mut row: api_key::ActiveModel = key.into();
    row.revoked_at = Set(Some(now));
    let revoked = row.update(db).await?;
    announce_key(invalidation, db, &revoked).await;
    Ok(revoked)
}

/// Issues a new key with the old one's settings. The old key is revoked now, or when the grace
/// period ends (an earlier scheduled revocation is kept).
pub async fn rotate(
    db: &DatabaseConnection,
    invalidation: &Invalidation,
    actor: &Actor,
    id: &str,
    grace_period_seconds: i64,
    now: DateTime<Utc>,
) -> DomainResult<CreatedKey> {
    if !(0..=MAX_GRACE_PERIOD_SECONDS).contains(&grace_period_seconds) {
        return Err(DomainError::bad_field(
            "gracePeriodSeconds",
            format!("must be between 0 and {MAX_GRACE_PERIOD_SECONDS}"),
        ));
    }
    let old = find_accessible(db, actor, id).await?;
    if keys::status(old.expires_at, old.revoked_at, now) == KeyStatus::Revoked {
        return Err(DomainError::bad_input("A revoked key cannot be rotated"));
    }
    let settings = KeySettings {
        name: old.name.clone(),
        expires_at: old.expires_at,
        require_signature: old.require_signature,
    };
    let ends = now + Duration::seconds(grace_period_seconds);
    let revoke_at = old.revoked_at.map_or(ends, |scheduled| scheduled.min(ends));

    let txn = db.begin().await?;
    let (plaintext, row) = new_row(&old.account_id, &settings, now);
    let key = row.insert(&txn).await?;
    let mut old_row: api_key::ActiveModel = old.into();
    old_row.revoked_at = Set(Some(revoke_at));
    let old = old_row.update(&txn).await?;
    txn.commit().await?;
    announce_key(invalidation, db, &old).await;
    Ok(CreatedKey { plaintext, key })
}
