use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    /// Unix milliseconds.
    pub period_start: i64,
    pub period_end: i64,
    pub plan_code: String,
    pub calls: i64,
    /// `None` for an unlimited plan.
    pub included_calls: Option<i64>,
    pub overage_calls: i64,
    pub overage_price_micros: i64,
    pub base_cents: i64,
    pub overage_cents: i64,
    pub total_cents: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
