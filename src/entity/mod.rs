//! SeaORM entities, one file per table. They describe rows only; the rules live in `domain/`.

pub mod account;
pub mod account_plan_change;
pub mod api_key;
pub mod billing_webhook_event;
pub mod plan;
pub mod setting;
pub mod user;
