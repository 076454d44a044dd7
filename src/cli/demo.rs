//! Demo data for trying dashboards and for benchmarks: accounts on every plan, their users and
//! keys, and usage events spread over the last days — API calls to 200 endpoints of skewed
//! (Zipf-like) popularity with log-normal response times and per-endpoint error rates, hook tool
//! uses and installs.
//!
//! Events go through [`recorder::write_batch`], the recorder's own writer, in large transactions:
//! raw events and rollups are written by the same code as in production, so they always agree.
//! Blocking (FREE-style) accounts are kept within their monthly quota, as the gate would.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use sea_orm::{DatabaseConnection, EntityTrait, Set};

use crate::domain::accounts::{new_id, Role};
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::periods::BillingPeriod;
use crate::domain::plans::{self, PlanCode};
use crate::domain::recorder::{self, EventKind, NewEvent};
use crate::domain::{auth, keys};
use crate::entity::{account, account_plan_change, api_key, user};

/// Events per transaction.
const EVENTS_PER_TRANSACTION: usize = 20_000;
/// Rows per multi-row insert of accounts, users and keys.
const ROWS_PER_INSERT: usize = 500;
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
    let quota_of = |code: PlanCode| {
        catalogue
            .iter()
            .find(|p| p.code == code.as_str())
            .and_then(|p| p.blocks_over_quota.then_some(p.monthly_quota).flatten())
    };

    // Accounts: mostly FREE, a quarter PRO, a few ENTERPRISE; created before the first event.
    let created_at = now - Duration::days(i64::from(options.days) + 30);
    let password_hash = auth::hash_password(options.password.clone()).await?;
    let mut accounts = Vec::with_capacity(options.accounts);
    for i in 0..options.accounts {
        let roll = rng.random_range(0..100);
        let plan = match roll {
            0..=69 => PlanCode::Free,
            70..=94 => PlanCode::Pro,
            _ => PlanCode::Enterprise,
        };
        // Ensure every plan is present even in tiny demos.
        let plan = match i {
            1 => PlanCode::Pro,
            2 => PlanCode::Enterprise,
            _ => plan,
        };
        accounts.push(DemoAccount {
            id: new_id(),
            name: format!("Demo Co {i:05}"),
            plan,
            keys: Vec::new(),
            // Busy accounts are few; paid plans are busier.
            weight: zipf_weight(i, 0.9)
                * match plan {
                    PlanCode::Free => 0.2,
                    PlanCode::Pro => 1.0,
                    PlanCode::Enterprise => 3.0,
                },
            blocking_quota: quota_of(plan),
        });
    }
    // Busy accounts should not all be the first ones.
    let mut order: Vec<usize> = (0..accounts.len()).collect();
    order.shuffle(&mut rng);
    let weights: Vec<f64> = order.iter().map(|&i| accounts[i].weight).collect();
    for (slot, &i) in order.iter().enumerate() {
        accounts[i].weight = weights[slot];
    }

    let admin_account = new_id();
    let mut account_rows: Vec<account::ActiveModel> = accounts
        .iter()
        .map(|a| account_row(&a.id, &a.name, a.plan, created_at))
        .collect();
    account_rows.push(account_row(
        &admin_account,
        "Demo operators",
        PlanCode::Free,
        created_at,
    ));
    let plan_changes: Vec<account_plan_change::ActiveModel> = accounts
        .iter()
        .map(|a| (a.id.as_str(), a.plan))
        .chain(std::iter::once((admin_account.as_str(), PlanCode::Free)))
        .map(|(id, plan)| account_plan_change::ActiveModel {
            account_id: Set(id.to_owned()),
            plan_code: Set(plan.as_str().to_owned()),
            effective_at: Set(created_at),
            ..Default::default()
        })
        .collect();
    insert_all(db, account_rows).await?;
    insert_all(db, plan_changes).await?;

    let mut users = vec![user_row(
        &admin_account,
        ADMIN_EMAIL,
        &password_hash,
        Role::Admin,
        created_at,
    )];
    let mut key_rows = Vec::new();
    let mut sample_key = None;
    for (i, account) in accounts.iter_mut().enumerate() {
        for n in 0..users_in_account(i) {
            users.push(user_row(
                &account.id,
                &user_email(i, n),
                &password_hash,
                Role::Member,
                created_at,
            ));
        }
        for n in 0..1 + i % 2 {
            let key = keys::generate();
            let id = new_id();
            key_rows.push(api_key::ActiveModel {
                id: Set(id.clone()),
                account_id: Set(account.id.clone()),
                name: Set(format!("demo key {n}")),
                key_hash: Set(key.digest.to_hex()),
                prefix: Set(key.prefix),
                require_signature: Set(false),
                created_at: Set(created_at),
                last_used_at: Set(None),
                expires_at: Set(None),
                revoked_at: Set(None),
            });
            account.keys.push(id);
            if sample_key.is_none() {
                sample_key = Some(key.plaintext);
            }
        }
    }
    let (user_count, key_count) = (users.len(), key_rows.len());
    insert_all(db, users).await?;
    insert_all(db, key_rows).await?;

    let written = write_events(db, options, now, &accounts, &mut rng, progress).await?;
    Ok(DemoSummary {
        accounts: accounts.len() + 1,
        users: user_count,
        keys: key_count,
        events: written,
        admin_email: ADMIN_EMAIL.to_owned(),
        sample_key,
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

/// One of the 200 endpoints, with its own latency and error profile.
struct Endpoint {
    method: &'static str,
    path: String,
    /// Median response time (ms) and spread of its logarithm.
    median_ms: f64,
    sigma: f64,
    error_rate: f64,
}

const RESOURCES: [&str; 20] = [
    "users",
    "orders",
    "items",
    "payments",
    "invoices",
    "search",
    "reports",
    "sessions",
    "files",
    "messages",
    "customers",
    "products",
    "carts",
    "shipments",
    "webhooks",
    "teams",
    "projects",
    "events",
    "metrics",
    "tokens",
];
const SKILLS: [&str; 12] = [
    "code-review",
    "lint",
    "deploy",
    "test-runner",
    "docs",
    "db-migrate",
    "security-scan",
    "format",
    "refactor",
    "search",
    "release-notes",
    "triage",
];
const TOOLS: [&str; 8] = [
    "Read", "Edit", "Bash", "Grep", "Write", "Glob", "WebFetch", "Task",
];
const HOOK_EVENTS: [&str; 3] = ["PreToolUse", "PostToolUse", "Stop"];

fn endpoints(rng: &mut StdRng) -> Vec<Endpoint> {
    let shapes: [(&str, &str, f64); 10] = [
        ("GET", "/v1/{r}", 1.0),
        ("GET", "/v1/{r}/{id}", 0.6),
        ("POST", "/v1/{r}", 2.0),
        ("PUT", "/v1/{r}/{id}", 1.8),
        ("DELETE", "/v1/{r}/{id}", 1.2),
        ("GET", "/v2/{r}", 0.9),
        ("GET", "/v2/{r}/{id}", 0.5),
        ("POST", "/v2/{r}/batch", 4.0),
        ("PATCH", "/v2/{r}/{id}", 1.5),
        ("GET", "/v1/{r}/export", 8.0),
    ];
    let mut all = Vec::with_capacity(ENDPOINTS);
    for resource in RESOURCES {
        for (method, shape, slowness) in shapes {
            let base: f64 = rng.random_range(8.0f64.ln()..120.0f64.ln()).exp();
            all.push(Endpoint {
                method,
                path: shape.replace("{r}", resource),
                median_ms: base * slowness,
                sigma: rng.random_range(0.35..0.9),
                error_rate: rng.random_range(0.002..0.06),
            });
        }
    }
    // Popularity is by rank: shuffle so the popular ones are of every shape.
    all.shuffle(rng);
    all
}

fn zipf_weight(rank: usize, s: f64) -> f64 {
    1.0 / ((rank + 1) as f64).powf(s)
}

fn zipf(n: usize, s: f64) -> DomainResult<WeightedIndex<f64>> {
    WeightedIndex::new((0..n).map(|i| zipf_weight(i, s)))
        .map_err(|err| DomainError::internal(anyhow::anyhow!("weights: {err}")))
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn status_of(rng: &mut StdRng, endpoint: &Endpoint) -> i32 {
    if rng.random_bool(endpoint.error_rate.clamp(0.0, 1.0)) {
        *[400, 401, 403, 404, 404, 409, 422, 429, 500, 502, 503]
            .choose(rng)
            .unwrap_or(&500)
    } else {
        match endpoint.method {
            "POST" => 201,
            "DELETE" => 204,
            "GET" if rng.random_bool(0.05) => 304,
            _ => 200,
        }
    }
}

async fn write_events(
    db: &DatabaseConnection,
    options: &DemoOptions,
    now: DateTime<Utc>,
    accounts: &[DemoAccount],
    rng: &mut StdRng,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> DomainResult<u64> {
    let endpoints = endpoints(rng);
    let endpoint_pick = zipf(endpoints.len(), 1.1)?;
    let skill_pick = zipf(SKILLS.len(), 1.0)?;
    let tool_pick = zipf(TOOLS.len(), 0.8)?;
    let account_pick = WeightedIndex::new(accounts.iter().map(|a| a.weight))
        .map_err(|err| DomainError::internal(anyhow::anyhow!("weights: {err}")))?;
    let paid: Vec<usize> = (0..accounts.len())
        .filter(|&i| accounts[i].blocking_quota.is_none())
        .collect();
    // Calls per (account, month), to keep blocking plans within their quota.
    let mut month_calls: HashMap<(usize, i64), i64> = HashMap::new();

    let today = now.date_naive();
    let days = i64::from(options.days);
    let mut written = 0u64;
    let mut batch: Vec<NewEvent> = Vec::with_capacity(EVENTS_PER_TRANSACTION);
    for day_index in 0..days {
        let day = today - Duration::days(days - 1 - day_index);
        let day_start = Utc
            .with_ymd_and_hms(day.year(), day.month(), day.day(), 0, 0, 0)
            .single()
            .unwrap_or(now);
        // Today only up to now.
        let span_ms = (now - day_start).num_milliseconds().clamp(1, 86_400_000);
        let share = options.events / days as u64
            + u64::from((day_index as u64) < options.events % days as u64);
        let period = BillingPeriod::calendar_month(day_start);
        for _ in 0..share {
            let at = day_start + Duration::milliseconds(rng.random_range(0..span_ms));
            let roll: f64 = rng.random();
            let kind = if roll < 0.85 {
                EventKind::ApiCall
            } else if roll < 0.98 {
                EventKind::ToolCall
            } else {
                EventKind::Install
            };
            let mut who = account_pick.sample(rng);
            if kind != EventKind::Install {
                for _ in 0..10 {
                    let used = month_calls
                        .get(&(who, period.start_ms()))
                        .copied()
                        .unwrap_or(0);
                    match accounts[who].blocking_quota {
                        Some(quota) if used >= quota => who = account_pick.sample(rng),
                        _ => break,
                    }
                }
                if let (Some(quota), Some(&fallback)) =
                    (accounts[who].blocking_quota, paid.choose(rng))
                {
                    let used = month_calls
                        .get(&(who, period.start_ms()))
                        .copied()
                        .unwrap_or(0);
                    if used >= quota {
                        who = fallback;
                    }
                }
                *month_calls.entry((who, period.start_ms())).or_default() += 1;
            }
            let account = &accounts[who];
            let mut event = NewEvent {
                api_key_id: account.keys.choose(rng).cloned(),
                period: Some(period),
                received_at: at + Duration::milliseconds(rng.random_range(5..400)),
                ..NewEvent::new(Some(account.id.clone()), kind, at)
            };
            match kind {
                EventKind::ApiCall => {
                    let endpoint = &endpoints[endpoint_pick.sample(rng)];
                    let ms = (endpoint.median_ms * (endpoint.sigma * normal(rng)).exp()).round();
                    event.method = Some(endpoint.method.to_owned());
                    event.endpoint = Some(endpoint.path.clone());
                    event.status_code = Some(status_of(rng, endpoint));
                    event.response_time_ms = Some((ms as i64).clamp(1, 120_000));
                }
                EventKind::ToolCall => {
                    event.skill_id = Some(SKILLS[skill_pick.sample(rng)].to_owned());
                    event.tool_name = Some(TOOLS[tool_pick.sample(rng)].to_owned());
                    event.hook_event = HOOK_EVENTS.choose(rng).map(|h| (*h).to_owned());
                }
                EventKind::Install => {
                    event.skill_id = Some(SKILLS[skill_pick.sample(rng)].to_owned());
                    event.tool_name = Some("install_confirmed".to_owned());
                    event.metadata = Some(r#"{"source":"install-script"}"#.to_owned());
                }
            }
            batch.push(event);
            if batch.len() == EVENTS_PER_TRANSACTION {
                written += flush(db, &mut batch).await?;
                progress(written, options.events);
            }
        }
    }
    let last = flush(db, &mut batch).await?;
    if last > 0 {
        written += last;
        progress(written, options.events);
    }
    Ok(written)
}

async fn flush(db: &DatabaseConnection, batch: &mut Vec<NewEvent>) -> DomainResult<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    let refs: Vec<&NewEvent> = batch.iter().collect();
    recorder::write_batch(db, &refs, &[]).await?;
    let n = batch.len() as u64;
    batch.clear();
    Ok(n)
}

fn account_row(
    id: &str,
    name: &str,
    plan: PlanCode,
    created_at: DateTime<Utc>,
) -> account::ActiveModel {
    account::ActiveModel {
        id: Set(id.to_owned()),
        name: Set(name.to_owned()),
        plan_code: Set(plan.as_str().to_owned()),
        initial_plan_code: Set(plan.as_str().to_owned()),
        billing_customer_id: Set(None),
        billing_period_start: Set(None),
        billing_period_end: Set(None),
        billing_event_created_at: Set(None),
        created_at: Set(created_at),
    }
}

fn user_row(
    account_id: &str,
    email: &str,
    password_hash: &str,
    role: Role,
    created_at: DateTime<Utc>,
) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(new_id()),
        account_id: Set(account_id.to_owned()),
        email: Set(email.to_owned()),
        password_hash: Set(password_hash.to_owned()),
        role: Set(role.as_str().to_owned()),
        created_at: Set(created_at),
    }
}

async fn insert_all<A>(db: &DatabaseConnection, rows: Vec<A>) -> DomainResult<()>
where
    A: sea_orm::ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        A::Entity::insert_many(chunk).exec(db).await?;
    }
    Ok(())
}
