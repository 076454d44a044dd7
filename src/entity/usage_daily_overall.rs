use sea_orm::entity::prelude::*;

/// Billable calls of all accounts on one UTC day: the sum of that day's `usage_daily_totals`
/// rows, kept beside them so that `adminOverview` reads one row per day, not one per account and
/// day.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_daily_overall")]
pub struct Model {
    /// `YYYY-MM-DD`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    /// Billable calls: API calls weighted by their `cost`, and tool uses.
    pub calls: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
