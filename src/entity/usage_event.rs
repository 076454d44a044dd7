use sea_orm::entity::prelude::*;

/// One stored usage event. Times are unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `None` only for anonymous installs.
    pub account_id: Option<String>,
    pub api_key_id: Option<String>,
    /// `API_CALL`, `TOOL_CALL` or `INSTALL`.
    pub kind: String,
    pub event_id: Option<String>,
    pub endpoint: Option<String>,
    pub method: Option<String>,
    pub status_code: Option<i32>,
    pub response_time_ms: Option<i64>,
    pub skill_id: Option<String>,
    pub tool_name: Option<String>,
    pub hook_event: Option<String>,
    pub input_snippet: Option<String>,
    pub output_snippet: Option<String>,
    /// JSON text.
    pub metadata: Option<String>,
    /// Calls counted against the quota.
    pub cost: i64,
    pub expired_key: bool,
    pub occurred_at: i64,
    pub received_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
