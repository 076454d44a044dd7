//! Demo data for trying dashboards and for benchmarks: accounts on every plan, their users and
//! keys, and usage events spread over the last days — API calls to 200 endpoints of skewed
//! (Zipf-like) popularity with log-normal response times and per-endpoint error rates, hook tool
//! uses and installs.
//!
//! Events go through [`recorder::write_batch`](crate::domain::recorder::write_batch), the recorder's own writer, in large transactions:
//! raw events and rollups are written by the same code as in production, so they always agree.
//! Blocking (FREE-style) accounts are kept within their monthly quota, as the gate would.

mod accounts;
mod draws;
mod events;
mod options;
mod people;

pub use options::{DemoOptions, DemoSummary, ENDPOINTS};
pub use people::{user_email, users_in_account, ADMIN_EMAIL, MAX_USERS_PER_ACCOUNT};

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sea_orm::{DatabaseConnection, EntityTrait};

use crate::domain::auth;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::plans;
use crate::entity::user;

/// Refuses a database that holds users: the demo plants an admin whose password is printed, and
/// on an installation in use that would be a back door. Reads nothing but the `users` table, and
/// finds none on a database that was never migrated.
pub async fn refuse_a_database_in_use(db: &DatabaseConnection) -> DomainResult<()> {
    use migration::SchemaManager;
    use sea_orm::PaginatorTrait;
    if !SchemaManager::new(db).has_table("users").await? {
        return Ok(());
    }
    let users = user::Entity::find().count(db).await?;
    if users == 0 {
        return Ok(());
    }
    Err(DomainError::bad_input(format!(
        "this database already holds {users} user(s): seed-demo only fills a new, empty database \
         (its demo admin's password is printed); point --database-url (TALLY_DATABASE_URL) at \
         a new one, e.g. --database-url 'sqlite://demo.db?mode=rwc'"
    )))
}

/// A password for the demo users when none is given: random, so that a demo database never
/// opens with a password anyone else knows.
pub fn generated_password() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 20)
}

/// Fills `db` (migrated) with demo data; `progress` hears (events written, events asked).
pub async fn seed(
    db: &DatabaseConnection,
    options: &DemoOptions,
    now: DateTime<Utc>,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> DomainResult<DemoSummary> {
    let started = Instant::now();
    if options.accounts == 0 || options.days == 0 {
        return Err(DomainError::bad_input(
            "--accounts and --days must be at least 1",
        ));
    }
    refuse_a_database_in_use(db).await?;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let catalogue = plans::list(db).await?;
    // Created before the first event.
    let created_at = now - Duration::days(i64::from(options.days) + 30);
    let password_hash = auth::hash_password(options.password.clone()).await?;
    let mut accounts = accounts::demo_accounts(options.accounts, &catalogue, &mut rng);
    let admin_account = accounts::insert_accounts(db, &accounts, created_at).await?;
    let members = accounts::insert_members(
        db,
        &mut accounts,
        &admin_account,
        &password_hash,
        created_at,
    )
    .await?;
    let written = events::write_events(db, options, now, &accounts, &mut rng, progress).await?;
    Ok(DemoSummary {
        accounts: accounts.len() + 1,
        users: members.users,
        keys: members.keys,
        events: written,
        admin_email: ADMIN_EMAIL.to_owned(),
        sample_key: members.sample_key,
        seconds: started.elapsed().as_secs_f64(),
    })
}
