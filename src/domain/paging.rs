//! The bounds every list and daily window shares: `days` 1..=366, `limit` 1..=100, `offset` from
//! 0, refused with the field named.

use crate::domain::error::{DomainError, DomainResult};

/// Longest window of the daily queries, in days.
pub const MAX_DAYS: i64 = 366;
/// Largest page (`limit`) of any list.
pub const MAX_PAGE_SIZE: i64 = 100;
/// `days` must be 1..=366.
pub fn check_days(days: i64) -> DomainResult<()> {
    if (1..=MAX_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(DomainError::bad_field(
            "days",
            format!("must be between 1 and {MAX_DAYS}"),
        ))
    }
}

/// `limit` must be 1..=100.
pub fn check_limit(limit: i64) -> DomainResult<()> {
    if (1..=MAX_PAGE_SIZE).contains(&limit) {
        Ok(())
    } else {
        Err(DomainError::bad_field(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ))
    }
}

/// `offset` must not be negative.
pub fn check_offset(offset: i64) -> DomainResult<()> {
    if offset < 0 {
        Err(DomainError::bad_field("offset", "must not be negative"))
    } else {
        Ok(())
    }
}
