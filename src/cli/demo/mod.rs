//! Demo data for trying dashboards and for benchmarks: accounts on every plan, their users and
//! keys, and usage events spread over the last days — API calls to 200 endpoints of skewed
//! (Zipf-like) popularity with log-normal response times and per-endpoint error rates, hook tool
//! uses and installs.
//!
//! Events go through [`recorder::write_batch`], the recorder's own writer, in large transactions:
//! raw events and rollups are written by the same code as in production, so they always agree.
//! Blocking (FREE-style) accounts are kept within their monthly quota, as the gate would.

mod accounts;
mod events;

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sea_orm::{DatabaseConnection, EntityTrait};

use crate::domain::auth;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::plans::{self, PlanCode};
use crate::entity::user;

pub const ENDPOINTS: usize = 200;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub accounts: usize,
    pub events: u64,
    /// Events are spread over this many UTC days ending today.
    pub days: u32,
    /// The same seed gives the same data (apart from ids and key secrets).
    pub seed: u64,
    /// Password of every demo user.
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub accounts: usize,
    pub users: usize,
    pub keys: usize,
    pub events: u64,
    pub admin_email: String,
    /// A key of the first account, to try the ingestion routes with.
    pub sample_key: Option<String>,
    pub seconds: f64,
}

pub const ADMIN_EMAIL: &str = "admin@demo.tally.test";

/// The e-mail of member `n` (from 0) of demo account `account` (from 0).
pub fn user_email(account: usize, n: usize) -> String {
    format!("user{n}.account{account:05}@demo.tally.test")
}

pub const MAX_USERS_PER_ACCOUNT: usize = 3;

/// How many members demo account `account` has: 1 to [`MAX_USERS_PER_ACCOUNT`], in turn.
pub fn users_in_account(account: usize) -> usize {
    1 + account % MAX_USERS_PER_ACCOUNT
}

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

struct DemoAccount {
    id: String,
    name: String,
    plan: PlanCode,
    keys: Vec<String>,
    weight: f64,
    /// Monthly quota of a plan that refuses calls over it.
    blocking_quota: Option<i64>,
}
