//! Installation-wide settings kept in the database, and what a fresh installation sets up on its
//! first start: the JWT secret and the first admin.

use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, Set};

use crate::domain::accounts::{self, AccountChoice, NewUser, Role};
use crate::domain::error::DomainResult;
use crate::entity::{setting, user};

const JWT_SECRET: &str = "jwt_secret";

/// The JWT secret stored in the database, generated on first use. Concurrent first starts agree
/// on one secret: the insert does nothing when another instance won the race.
pub async fn jwt_secret(db: &DatabaseConnection) -> DomainResult<String> {
    let candidate = Alphanumeric.sample_string(&mut rand::rng(), 64);
    setting::Entity::insert(setting::ActiveModel {
        name: Set(JWT_SECRET.to_owned()),
        value: Set(candidate),
    })
    .on_conflict(
        OnConflict::column(setting::Column::Name)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let stored = setting::Entity::find_by_id(JWT_SECRET.to_owned())
        .one(db)
        .await?
        .map(|row| row.value)
        .unwrap_or_default();
    Ok(stored)
}

/// The relative upgrade URL `serve` last warned about.
const UPGRADE_URL_WARNED: &str = "upgrade_url_warned";

/// True when this database has not started with `upgrade_url` (a relative one) before; remembers
/// it, so that its warning is said once rather than on every start.
pub async fn first_start_with_upgrade_url(
    db: &DatabaseConnection,
    upgrade_url: &str,
) -> DomainResult<bool> {
    let warned = setting::Entity::find_by_id(UPGRADE_URL_WARNED.to_owned())
        .one(db)
        .await?;
    if warned.is_some_and(|row| row.value == upgrade_url) {
        return Ok(false);
    }
    setting::Entity::insert(setting::ActiveModel {
        name: Set(UPGRADE_URL_WARNED.to_owned()),
        value: Set(upgrade_url.to_owned()),
    })
    .on_conflict(
        OnConflict::column(setting::Column::Name)
            .update_column(setting::Column::Value)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(true)
}

/// What `ensure_admin` did.
pub enum AdminBootstrap {
    /// Users already exist; nothing was done.
    NotNeeded,
    /// An admin was created; `generated_password` is set when no password was configured.
    Created {
        email: String,
        generated_password: Option<String>,
    },
}

/// On an empty database, creates an admin with the configured password or a random one.
pub async fn ensure_admin(
    db: &DatabaseConnection,
    email: &str,
    password: Option<String>,
    now: DateTime<Utc>,
) -> DomainResult<AdminBootstrap> {
    if user::Entity::find().count(db).await? > 0 {
        return Ok(AdminBootstrap::NotNeeded);
    }
    let generated = password
        .is_none()
        .then(|| Alphanumeric.sample_string(&mut rand::rng(), 24));
    let password = password.or_else(|| generated.clone()).unwrap_or_default();
    let admin = accounts::create_user(
        db,
        NewUser {
            email: email.to_owned(),
            password,
            role: Role::Admin,
            account: AccountChoice::New("Administrators".to_owned()),
        },
        now,
    )
    .await?;
    Ok(AdminBootstrap::Created {
        email: admin.email,
        generated_password: generated,
    })
}
