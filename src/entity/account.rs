use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub plan_code: String,
    /// The plan the account was created with: billed for periods before its first plan change.
    pub initial_plan_code: String,
    pub billing_customer_id: Option<String>,
    /// The billing provider's own period, when it sent one; otherwise calendar months apply.
    pub billing_period_start: Option<DateTimeUtc>,
    pub billing_period_end: Option<DateTimeUtc>,
    /// `created` (unix seconds) of the last billing-provider event applied to this account: an
    /// older event delivered late must not undo it.
    pub billing_event_created_at: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::plan::Entity",
        from = "Column::PlanCode",
        to = "super::plan::Column::Code"
    )]
    Plan,
}

impl ActiveModelBehavior for ActiveModel {}
