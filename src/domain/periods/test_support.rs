//! Instants and periods written as RFC 3339 text, for the periods' unit tests: each test reads
//! as the calendar it is about.

use chrono::{DateTime, Utc};

use super::BillingPeriod;

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn period(start: &str, end: &str) -> BillingPeriod {
    BillingPeriod {
        start: at(start),
        end: at(end),
    }
}
