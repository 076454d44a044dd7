use sea_orm::entity::prelude::*;

/// Installs on one UTC day of one (skill, platform, version), anonymous or attributed to an
/// account. Values the install script did not send are empty strings.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_daily_installs")]
pub struct Model {
    /// `YYYY-MM-DD`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub skill_id: String,
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub platform: String,
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub version: String,
    pub installs: i64,
    /// Installs reported without a valid key.
    pub anonymous: i64,
    /// Installs reported with a valid key (attributed to its account).
    pub attributed: i64,
    /// Unix milliseconds of the latest install that day.
    pub last_installed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
