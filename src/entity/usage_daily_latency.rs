use sea_orm::entity::prelude::*;

/// How many calls of one (account, day, method, endpoint) fell in one latency bucket of
/// `crate::domain::histogram`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_daily_latency")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub method: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub endpoint: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket: i32,
    pub count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
