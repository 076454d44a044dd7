use sea_orm::entity::prelude::*;

/// API calls of one account to one (method, endpoint) on every UTC day up to and including `day`
/// (`YYYY-MM-DD`): the running sums of the daily endpoint rollups, one row for each day that has
/// calls. A window's sums are the row at its last day less the row before its first day, so any
/// window reads two rows per endpoint.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_running_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub method: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub endpoint: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    /// Billable calls: each API call weighs its `cost`.
    pub calls: i64,
    /// API calls (requests), one per event whatever its cost.
    pub requests: i64,
    /// Calls (cost-weighted) answered with status 2xx/3xx.
    pub successes: i64,
    /// Calls (cost-weighted) answered with status 4xx/5xx.
    pub failures: i64,
    pub latency_sum_ms: i64,
    /// Calls whose response time is known.
    pub latency_count: i64,
    /// Those calls' response times as a JSON object from `crate::domain::histogram` bucket to
    /// count, such as `{"12":3,"40":1}`.
    #[sea_orm(column_type = "Text")]
    pub latency_histogram: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
