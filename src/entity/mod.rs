//! SeaORM entities, one file per table. They describe rows only; the rules live in `domain/`.

pub mod account;
pub mod account_plan_change;
pub mod api_key;
pub mod billing_webhook_event;
pub mod invoice;
pub mod plan;
pub mod rollup_delta;
pub mod setting;
pub mod usage_daily_endpoint;
pub mod usage_daily_install;
pub mod usage_daily_key;
pub mod usage_daily_overall;
pub mod usage_daily_tool;
pub mod usage_daily_total;
pub mod usage_endpoint;
pub mod usage_event;
pub mod usage_key_period;
pub mod usage_period;
pub mod usage_running_endpoint;
pub mod user;
