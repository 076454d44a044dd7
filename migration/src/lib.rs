//! Schema migrations. Every migration spells out its columns: an old migration must never change
//! when an entity in `src/entity/` does.

// `MigrationTrait` is an `async_trait`: its `up`/`down` take `&SchemaManager` with the lifetime
// elided, and writing `SchemaManager<'_>` there no longer matches the trait's expanded signature.
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_core;
mod m20261123_000002_usage;
mod m20261123_000003_billing_webhooks;
mod m20261123_000004_invoices;
mod m20261124_000001_analytics_indexes;
mod m20261124_000002_daily_totals;
mod m20261125_000001_latency_histogram_column;
mod m20261125_000002_daily_totals_outcomes;
mod m20261129_000001_account_initial_plan;
mod m20261129_000002_cost_weighted_calls;
mod m20261129_000003_install_rollups;
mod m20261129_200001_drop_usage_event_user_id;
mod m20261130_000001_rollup_deltas;
mod m20261130_000002_weekly_endpoint_rollups;
mod m20261201_000001_key_rollups;
mod m20261202_000001_running_endpoint_sums;
mod m20261202_000002_overall_daily_calls;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_core::Migration),
            Box::new(m20261123_000002_usage::Migration),
            Box::new(m20261123_000003_billing_webhooks::Migration),
            Box::new(m20261123_000004_invoices::Migration),
            Box::new(m20261124_000001_analytics_indexes::Migration),
            Box::new(m20261124_000002_daily_totals::Migration),
            Box::new(m20261125_000001_latency_histogram_column::Migration),
            Box::new(m20261125_000002_daily_totals_outcomes::Migration),
            Box::new(m20261129_000001_account_initial_plan::Migration),
            Box::new(m20261129_000002_cost_weighted_calls::Migration),
            Box::new(m20261129_000003_install_rollups::Migration),
            Box::new(m20261129_200001_drop_usage_event_user_id::Migration),
            Box::new(m20261130_000001_rollup_deltas::Migration),
            Box::new(m20261130_000002_weekly_endpoint_rollups::Migration),
            Box::new(m20261201_000001_key_rollups::Migration),
            Box::new(m20261202_000001_running_endpoint_sums::Migration),
            Box::new(m20261202_000002_overall_daily_calls::Migration),
        ]
    }
}
