//! What the tests read back from the tables, through the entities with bound values: each helper
//! is named for what it returns.

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tally::domain::histogram;
use tally::entity::{
    account, rollup_delta, usage_daily_endpoint, usage_daily_tool, usage_daily_total, usage_event,
    usage_period,
};

/// How many usage events are stored for an account.
pub async fn stored_events(db: &DatabaseConnection, account_id: &str) -> i64 {
    usage_event::Entity::find()
        .filter(usage_event::Column::AccountId.eq(account_id))
        .count(db)
        .await
        .expect("count events") as i64
}

/// The `event_id`s stored for an account, in order, one per stored event (repeats included).
pub async fn stored_event_ids(db: &DatabaseConnection, account_id: &str) -> Vec<String> {
    usage_event::Entity::find()
        .select_only()
        .column(usage_event::Column::EventId)
        .filter(usage_event::Column::AccountId.eq(account_id))
        .order_by_asc(usage_event::Column::EventId)
        .into_tuple::<Option<String>>()
        .all(db)
        .await
        .expect("event ids")
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect()
}

/// Calls counted in all billing periods of an account.
pub async fn counted_calls(db: &DatabaseConnection, account_id: &str) -> i64 {
    periods(db, account_id)
        .await
        .iter()
        .map(|period| period.calls)
        .sum()
}

/// The billing-period counters of an account, oldest first.
pub async fn periods(db: &DatabaseConnection, account_id: &str) -> Vec<usage_period::Model> {
    usage_period::Entity::find()
        .filter(usage_period::Column::AccountId.eq(account_id))
        .order_by_asc(usage_period::Column::PeriodStart)
        .all(db)
        .await
        .expect("periods")
}

/// The daily endpoint rollup rows of an account.
pub async fn endpoint_rollups(
    db: &DatabaseConnection,
    account_id: &str,
) -> Vec<usage_daily_endpoint::Model> {
    rows_of_account::<usage_daily_endpoint::Entity>(
        db,
        usage_daily_endpoint::Column::AccountId,
        account_id,
    )
    .await
}

/// The daily tool rollup rows of an account.
pub async fn tool_rollups(
    db: &DatabaseConnection,
    account_id: &str,
) -> Vec<usage_daily_tool::Model> {
    rows_of_account::<usage_daily_tool::Entity>(db, usage_daily_tool::Column::AccountId, account_id)
        .await
}

/// Every row of `E`'s table that belongs to the account.
async fn rows_of_account<E: EntityTrait>(
    db: &DatabaseConnection,
    account_column: E::Column,
    account_id: &str,
) -> Vec<E::Model> {
    E::find()
        .filter(account_column.eq(account_id))
        .all(db)
        .await
        .expect("rows of the account")
}

/// The latency histogram of one daily endpoint rollup row, read back as bucket → count.
pub async fn stored_histogram(
    db: &DatabaseConnection,
    account_id: &str,
    endpoint: &str,
) -> histogram::Counts {
    let row = endpoint_rollups(db, account_id)
        .await
        .into_iter()
        .find(|row| row.endpoint == endpoint)
        .expect("a rollup row");
    let mut counts = histogram::Counts::new();
    histogram::add_json(&mut counts, &row.latency_histogram).expect("a stored histogram");
    counts
}

/// How many usage events are stored, of all accounts and anonymous ones.
pub async fn stored_events_in_total(db: &DatabaseConnection) -> i64 {
    usage_event::Entity::find()
        .count(db)
        .await
        .expect("count events") as i64
}

/// Every stored usage event, oldest first.
pub async fn all_events(db: &DatabaseConnection) -> Vec<usage_event::Model> {
    usage_event::Entity::find()
        .order_by_asc(usage_event::Column::Id)
        .all(db)
        .await
        .expect("events")
}

/// The usage events stored without an account (anonymous installs).
pub async fn anonymous_events(db: &DatabaseConnection) -> Vec<usage_event::Model> {
    usage_event::Entity::find()
        .filter(usage_event::Column::AccountId.is_null())
        .all(db)
        .await
        .expect("anonymous events")
}

/// When the oldest stored event happened (unix milliseconds), if any is stored.
pub async fn oldest_event_at(db: &DatabaseConnection) -> Option<i64> {
    usage_event::Entity::find()
        .select_only()
        .column(usage_event::Column::OccurredAt)
        .order_by_asc(usage_event::Column::OccurredAt)
        .into_tuple::<i64>()
        .one(db)
        .await
        .expect("oldest event")
}

/// The status code stored with each usage event of an account.
pub async fn stored_status_codes(db: &DatabaseConnection, account_id: &str) -> Vec<Option<i32>> {
    usage_event::Entity::find()
        .select_only()
        .column(usage_event::Column::StatusCode)
        .filter(usage_event::Column::AccountId.eq(account_id))
        .into_tuple::<Option<i32>>()
        .all(db)
        .await
        .expect("status codes")
}

/// The daily endpoint rollup rows of every account.
pub async fn all_endpoint_rollups(db: &DatabaseConnection) -> Vec<usage_daily_endpoint::Model> {
    usage_daily_endpoint::Entity::find()
        .all(db)
        .await
        .expect("endpoint rollups")
}

/// The billing-period counters of every account on `plan_code`.
pub async fn periods_on_plan(db: &DatabaseConnection, plan_code: &str) -> Vec<usage_period::Model> {
    let accounts: Vec<String> = account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .filter(account::Column::PlanCode.eq(plan_code))
        .into_tuple()
        .all(db)
        .await
        .expect("accounts on plan");
    usage_period::Entity::find()
        .filter(usage_period::Column::AccountId.is_in(accounts))
        .all(db)
        .await
        .expect("periods")
}

/// The calls counted in the billing period of an account that starts at `period_start` (unix
/// milliseconds); panics when that period was never opened.
pub async fn period_calls(db: &DatabaseConnection, account_id: &str, period_start: i64) -> i64 {
    usage_period::Entity::find_by_id((account_id.to_owned(), period_start))
        .one(db)
        .await
        .expect("period")
        .expect("the period was opened")
        .calls
}

/// How many events of an account were sent with an expired key.
pub async fn events_with_expired_key(db: &DatabaseConnection, account_id: &str) -> i64 {
    usage_event::Entity::find()
        .filter(usage_event::Column::AccountId.eq(account_id))
        .filter(usage_event::Column::ExpiredKey.eq(true))
        .count(db)
        .await
        .expect("count events") as i64
}

/// Rollup deltas stored and not applied yet.
pub async fn pending_rollup_deltas(db: &DatabaseConnection) -> i64 {
    rollup_delta::Entity::find()
        .count(db)
        .await
        .expect("count rollup deltas") as i64
}

/// Tool uses of an account as its daily rollups count them: (per tool, per account and day).
pub async fn rolled_up_tool_uses(db: &DatabaseConnection, account_id: &str) -> (i64, i64) {
    let per_tool: i64 = tool_rollups(db, account_id)
        .await
        .iter()
        .filter(|row| row.kind == "TOOL_CALL")
        .map(|row| row.calls)
        .sum();
    let per_day: i64 = usage_daily_total::Entity::find()
        .filter(usage_daily_total::Column::AccountId.eq(account_id))
        .all(db)
        .await
        .expect("daily totals")
        .iter()
        .map(|row| row.calls)
        .sum();
    (per_tool, per_day)
}
