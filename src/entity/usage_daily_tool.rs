use sea_orm::entity::prelude::*;

/// Tool uses (`TOOL_CALL`) or installs (`INSTALL`) of one account on one UTC day, per
/// (skill, tool). Anonymous installs are kept as raw events only.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_daily_tools")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub skill_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tool_name: String,
    pub calls: i64,
    /// Unix milliseconds of the latest use that day.
    pub last_used_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
