//! Billable calls of all accounts per UTC day, for `adminOverview`: this month's calls were a
//! sum over one daily total per account and day (30,000 rows on the 30th with 1,000 accounts),
//! now over one row per day. Filled by the rollup follower like the other rollups, and back-filled
//! here from the daily totals.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("usage_daily_overall")
                    .col(string_len("day", 10).primary_key())
                    .col(big_integer("calls"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO usage_daily_overall (day, calls) \
                 SELECT day, SUM(calls) FROM usage_daily_totals GROUP BY day",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("usage_daily_overall").to_owned())
            .await
    }
}
