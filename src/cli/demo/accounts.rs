//! The demo's accounts on every plan (mostly FREE, a quarter PRO, a few ENTERPRISE), an operators'
//! account with the admin, each account's members and keys.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use sea_orm::{DatabaseConnection, EntityTrait, Set};

use super::draws::zipf_weight;
use super::people::{user_email, users_in_account, DemoAccount, ADMIN_EMAIL};
use crate::domain::accounts::{new_id, Role};
use crate::domain::error::DomainResult;
use crate::domain::keys;
use crate::domain::plans::PlanCode;
use crate::entity::{account, account_plan_change, api_key, plan, user};

/// Rows per multi-row insert of accounts, users and keys.
const ROWS_PER_INSERT: usize = 500;

/// `count` accounts with their plans and how busy each is; `catalogue` gives the blocking plans'
/// quotas.
pub(super) fn demo_accounts(
    count: usize,
    catalogue: &[plan::Model],
    rng: &mut StdRng,
) -> Vec<DemoAccount> {
    let quota_of = |code: PlanCode| {
        catalogue
            .iter()
            .find(|p| p.code == code.as_str())
            .and_then(|p| p.blocks_over_quota.then_some(p.monthly_quota).flatten())
    };
    let mut accounts = Vec::with_capacity(count);
    for i in 0..count {
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
    order.shuffle(rng);
    let weights: Vec<f64> = order.iter().map(|&i| accounts[i].weight).collect();
    for (slot, &i) in order.iter().enumerate() {
        accounts[i].weight = weights[slot];
    }
    accounts
}

/// Inserts the accounts and the operators' account, each with its plan from `created_at` on;
/// the operators' account id.
pub(super) async fn insert_accounts(
    db: &DatabaseConnection,
    accounts: &[DemoAccount],
    created_at: DateTime<Utc>,
) -> DomainResult<String> {
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
    Ok(admin_account)
}

/// The users and keys inserted, and a key of the first account to try the ingestion routes with.
pub(super) struct Members {
    pub(super) users: usize,
    pub(super) keys: usize,
    pub(super) sample_key: Option<String>,
}

/// Inserts the admin (in the operators' account), each account's members and its one or two
/// keys (their ids kept in `accounts`).
pub(super) async fn insert_members(
    db: &DatabaseConnection,
    accounts: &mut [DemoAccount],
    admin_account: &str,
    password_hash: &str,
    created_at: DateTime<Utc>,
) -> DomainResult<Members> {
    let mut users = vec![user_row(
        admin_account,
        ADMIN_EMAIL,
        password_hash,
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
                password_hash,
                Role::Member,
                created_at,
            ));
        }
        for n in 0..1 + i % 2 {
            let key = keys::generate();
            let id = new_id();
            key_rows.push(key_row(&id, &account.id, n, &key, created_at));
            account.keys.push(id);
            if sample_key.is_none() {
                sample_key = Some(key.plaintext);
            }
        }
    }
    let members = Members {
        users: users.len(),
        keys: key_rows.len(),
        sample_key,
    };
    insert_all(db, users).await?;
    insert_all(db, key_rows).await?;
    Ok(members)
}

fn key_row(
    id: &str,
    account_id: &str,
    n: usize,
    key: &keys::NewKey,
    created_at: DateTime<Utc>,
) -> api_key::ActiveModel {
    api_key::ActiveModel {
        id: Set(id.to_owned()),
        account_id: Set(account_id.to_owned()),
        name: Set(format!("demo key {n}")),
        key_hash: Set(key.digest.to_hex()),
        prefix: Set(key.prefix.clone()),
        require_signature: Set(false),
        created_at: Set(created_at),
        last_used_at: Set(None),
        expires_at: Set(None),
        revoked_at: Set(None),
    }
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
