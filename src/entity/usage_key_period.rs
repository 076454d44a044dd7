use sea_orm::entity::prelude::*;

/// Calls made with one API key in one billing period of its account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_key_periods")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub api_key_id: String,
    /// The period's start, unix milliseconds (as in `usage_periods`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub period_start: i64,
    /// Billable calls: API calls weighted by their `cost`, and tool uses.
    pub calls: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
