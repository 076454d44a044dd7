//! GraphQL object types, each wrapping an entity or a domain value.

pub mod account;
pub mod api_key;
pub mod auth;
pub mod invoice;
pub mod page;
pub mod plan;
pub mod scalar;
pub mod usage;
pub mod user;

pub use account::{Account, AccountPage};
pub use api_key::{ApiKey, ApiKeyStatus, CreatedApiKey};
pub use auth::AuthPayload;
pub use invoice::{BillingRun, Invoice};
pub use plan::{Plan, PlanCode, PlanInput};
pub use scalar::BigInt;
pub use usage::{AdminOverview, DailyUsage, EndpointStat, InstallStat, ToolStat, UsagePeriod};
pub use user::{Role, User};
