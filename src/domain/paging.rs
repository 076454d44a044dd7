//! The bounds every list and daily window shares: `days` 1..=366, `limit` and `first` 1..=100,
//! `offset` from 0, refused with the field named; the shape of a cursor page, and the keyset
//! read of one (newest first, ties by id) that every cursor list shares.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Select, Value,
};

use crate::domain::error::{DomainError, DomainResult};

/// Longest window of the daily queries, in days.
pub const MAX_DAYS: i64 = 366;
/// Largest page (`limit`) of any list.
pub const MAX_PAGE_SIZE: i64 = 100;
/// `days` must be 1..=366.
pub fn check_days(days: i64) -> DomainResult<()> {
    check_between_1_and("days", days, MAX_DAYS)
}

/// `limit` must be 1..=100.
pub fn check_limit(limit: i64) -> DomainResult<()> {
    check_between_1_and("limit", limit, MAX_PAGE_SIZE)
}

/// `offset` must not be negative.
pub fn check_offset(offset: i64) -> DomainResult<()> {
    if offset < 0 {
        Err(DomainError::bad_field("offset", "must not be negative"))
    } else {
        Ok(())
    }
}

/// `first` (a cursor page's size) must be 1..=100.
pub fn check_first(first: usize) -> DomainResult<()> {
    // Past `i64::MAX` is past the largest page too.
    let first = i64::try_from(first).unwrap_or(i64::MAX);
    check_between_1_and("first", first, MAX_PAGE_SIZE)
}

/// `value` of `field` must be 1..=`max`.
fn check_between_1_and(field: &str, value: i64, max: i64) -> DomainResult<()> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(DomainError::bad_field(
            field,
            format!("must be between 1 and {max}"),
        ))
    }
}

/// One page of a list read in a fixed order after a cursor.
#[derive(Debug)]
pub struct CursorPage<T> {
    pub items: Vec<T>,
    /// More items follow the page.
    pub has_next: bool,
    /// Items in the whole list, cursor aside.
    pub total: u64,
}

impl<T> CursorPage<T> {
    /// The page from `fetched`, read with a limit of `first + 1` so that one row more tells
    /// whether another page follows.
    pub fn from_one_more(mut fetched: Vec<T>, first: usize, total: u64) -> Self {
        let has_next = fetched.len() > first;
        fetched.truncate(first);
        Self {
            items: fetched,
            has_next,
            total,
        }
    }
}

/// Where a keyset page starts: after the row whose ordering column holds `value` and whose id is
/// `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub value: Value,
    pub id: String,
}

/// One page of `query`'s rows in descending (`order`, `id`) order: `first` of them after
/// `after`, and whether more follow. `total` is the whole list's size, cursor aside.
pub async fn newest_first<E: EntityTrait>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    (order, id): (E::Column, E::Column),
    after: Option<After>,
    first: usize,
    total: u64,
) -> DomainResult<CursorPage<E::Model>> {
    let query = match after {
        Some(after) => query.filter(
            Condition::any().add(order.lt(after.value.clone())).add(
                Condition::all()
                    .add(order.eq(after.value))
                    .add(id.lt(after.id)),
            ),
        ),
        None => query,
    };
    let fetched = query
        .order_by_desc(order)
        .order_by_desc(id)
        .limit(first as u64 + 1)
        .all(db)
        .await?;
    Ok(CursorPage::from_one_more(fetched, first, total))
}
