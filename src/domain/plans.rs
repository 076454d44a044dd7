//! The plan catalogue. Plans are rows in the database, edited by admins; every check reads them
//! from there (through the key cache on the hot path), never from constants.

use std::fmt;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, Set};

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::invalidation::{Change, Invalidation};
use crate::entity::plan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanCode {
    Free,
    Pro,
    Enterprise,
}

impl PlanCode {
    pub const ALL: [PlanCode; 3] = [PlanCode::Free, PlanCode::Pro, PlanCode::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            PlanCode::Free => "FREE",
            PlanCode::Pro => "PRO",
            PlanCode::Enterprise => "ENTERPRISE",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(code))
    }
}

impl fmt::Display for PlanCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub async fn list(db: &DatabaseConnection) -> DomainResult<Vec<plan::Model>> {
    let mut plans = plan::Entity::find()
        .order_by_asc(plan::Column::PriceCents)
        .all(db)
        .await?;
    plans.sort_by_key(|p| PlanCode::parse(&p.code).map(|c| c as u8).unwrap_or(u8::MAX));
    Ok(plans)
}

pub async fn get(db: &DatabaseConnection, code: PlanCode) -> DomainResult<plan::Model> {
    plan::Entity::find_by_id(code.as_str().to_owned())
        .one(db)
        .await?
        .ok_or_else(|| {
            DomainError::internal(anyhow::anyhow!("plan {code} missing from the database"))
        })
}

/// An admin's edit of a plan; `None` leaves a value as it is.
#[derive(Debug, Default, Clone)]
pub struct PlanUpdate {
    pub name: Option<String>,
    pub monthly_quota: Option<i64>,
    pub unlimited: Option<bool>,
    pub price_cents: Option<i64>,
    pub overage_price_micros: Option<i64>,
    pub rate_limit_per_minute: Option<i32>,
    pub blocks_over_quota: Option<bool>,
}

pub const MAX_RATE_LIMIT_PER_MINUTE: i32 = 1_000_000;
/// Largest quota, price in cents or overage price in micros a plan may have: what a GraphQL
/// `Int` holds (2,147,483,647 cents is over $21 million a month). Totals built from them (revenue,
/// invoices, usage) are 64-bit and never overflow.
pub const MAX_PLAN_AMOUNT: i64 = i32::MAX as i64;

impl PlanUpdate {
    fn validate(&self) -> DomainResult<()> {
        let mut problems = Vec::new();
        if let Some(name) = &self.name {
            let len = name.trim().chars().count();
            if !(1..=100).contains(&len) {
                problems.push(("name", "must be 1 to 100 characters".to_owned()));
            }
        }
        let out_of_range =
            |value: Option<i64>| value.is_some_and(|v| !(0..=MAX_PLAN_AMOUNT).contains(&v));
        let range = format!("must be between 0 and {MAX_PLAN_AMOUNT}");
        if out_of_range(self.monthly_quota) {
            problems.push(("monthlyQuota", range.clone()));
        }
        if self.monthly_quota.is_some() && self.unlimited == Some(true) {
            problems.push((
                "monthlyQuota",
                "cannot be set together with unlimited: true".to_owned(),
            ));
        }
        if out_of_range(self.price_cents) {
            problems.push(("priceCents", range.clone()));
        }
        if out_of_range(self.overage_price_micros) {
            problems.push(("overagePriceMicros", range.clone()));
        }
        if self
            .rate_limit_per_minute
            .is_some_and(|r| !(1..=MAX_RATE_LIMIT_PER_MINUTE).contains(&r))
        {
            problems.push((
                "rateLimitPerMinute",
                format!("must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE}"),
            ));
        }
        match problems.first() {
            None => Ok(()),
            Some((field, problem)) => Err(DomainError::bad_fields(
                format!("{field}: {problem}"),
                problems.iter().map(|(f, p)| (*f, p.clone())),
            )),
        }
    }
}

/// An admin's edit of plan `code`. Ingestion sees it at once here and within 1 s on other
/// instances: the key caches, which hold each key's plan, are emptied.
pub async fn update(
    db: &DatabaseConnection,
    invalidation: &Invalidation,
    code: PlanCode,
    change: PlanUpdate,
    now: DateTime<Utc>,
) -> DomainResult<plan::Model> {
    change.validate()?;
    let current = get(db, code).await?;
    if change.unlimited == Some(false)
        && change.monthly_quota.is_none()
        && current.monthly_quota.is_none()
    {
        return Err(DomainError::bad_field(
            "monthlyQuota",
            "is required to make an unlimited plan limited",
        ));
    }
    let mut row: plan::ActiveModel = current.into();
    if let Some(name) = change.name {
        row.name = Set(name.trim().to_owned());
    }
    if let Some(quota) = change.monthly_quota {
        row.monthly_quota = Set(Some(quota));
    }
    if change.unlimited == Some(true) {
        row.monthly_quota = Set(None);
    }
    if let Some(price) = change.price_cents {
        row.price_cents = Set(price);
    }
    if let Some(price) = change.overage_price_micros {
        row.overage_price_micros = Set(price);
    }
    if let Some(rate) = change.rate_limit_per_minute {
        row.rate_limit_per_minute = Set(rate);
    }
    if let Some(blocks) = change.blocks_over_quota {
        row.blocks_over_quota = Set(blocks);
    }
    row.updated_at = Set(now);
    let updated = row.update(db).await?;
    invalidation.announce(db, Change::AllKeys).await;
    Ok(updated)
}
