use sea_orm::entity::prelude::*;

/// Sums of one written batch not yet added to the daily rollups (JSON, see
/// `domain::recorder::rollups`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rollup_deltas")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Unix milliseconds of the batch's commit.
    pub created_at: i64,
    pub delta: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
