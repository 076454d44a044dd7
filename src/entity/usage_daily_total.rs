use sea_orm::entity::prelude::*;

/// API calls and tool uses of one account on one UTC day, and the API calls' outcomes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_daily_totals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    /// `YYYY-MM-DD`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    /// Billable calls: API calls weighted by their `cost`, and tool uses.
    pub calls: i64,
    /// API calls (cost-weighted) with status 2xx/3xx.
    pub successes: i64,
    /// API calls (cost-weighted) with status 4xx/5xx.
    pub failures: i64,
    pub latency_sum_ms: i64,
    /// API calls whose response time is known.
    pub latency_count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
