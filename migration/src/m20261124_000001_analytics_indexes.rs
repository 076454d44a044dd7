//! Indexes for the admin overview, which sums the daily rollups of every account for a range of
//! days: without them those sums read every rollup row ever written. They cover the columns the
//! sums read, so the table rows are not visited.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str, &[&str]); 2] = [
    (
        "idx_usage_daily_endpoints_day",
        "usage_daily_endpoints",
        &["day", "calls"],
    ),
    (
        "idx_usage_daily_tools_day",
        "usage_daily_tools",
        &["day", "kind", "calls"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, columns) in INDEXES {
            let mut index = Index::create();
            index.name(name).table(table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
