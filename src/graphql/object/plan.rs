use async_graphql::{Enum, InputObject, SimpleObject};

use crate::domain::plans::{self, PlanUpdate};
use crate::entity::plan;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PlanCode {
    Free,
    Pro,
    Enterprise,
}

impl From<PlanCode> for plans::PlanCode {
    fn from(code: PlanCode) -> Self {
        match code {
            PlanCode::Free => plans::PlanCode::Free,
            PlanCode::Pro => plans::PlanCode::Pro,
            PlanCode::Enterprise => plans::PlanCode::Enterprise,
        }
    }
}

impl PlanCode {
    /// Reads a stored code; an unknown one (impossible through the API) reads as FREE.
    pub fn from_stored(code: &str) -> Self {
        match plans::PlanCode::parse(code) {
            Some(plans::PlanCode::Pro) => PlanCode::Pro,
            Some(plans::PlanCode::Enterprise) => PlanCode::Enterprise,
            _ => PlanCode::Free,
        }
    }
}

/// A plan: quota, prices and limits, as stored.
#[derive(SimpleObject, Clone, Debug)]
pub struct Plan {
    pub code: PlanCode,
    pub name: String,
    /// Calls included per billing period; null means unlimited.
    pub monthly_quota: Option<i64>,
    pub price_cents: i64,
    /// Price of each call over the quota, in millionths of a dollar.
    pub overage_price_micros: i64,
    pub rate_limit_per_minute: i32,
    /// Whether calls over the quota are refused (429) rather than billed.
    pub blocks_over_quota: bool,
}

impl From<plan::Model> for Plan {
    fn from(p: plan::Model) -> Self {
        Self {
            code: PlanCode::from_stored(&p.code),
            name: p.name,
            monthly_quota: p.monthly_quota,
            price_cents: p.price_cents,
            overage_price_micros: p.overage_price_micros,
            rate_limit_per_minute: p.rate_limit_per_minute,
            blocks_over_quota: p.blocks_over_quota,
        }
    }
}

/// Changes to a plan; absent fields stay as they are.
#[derive(InputObject, Debug, Default)]
pub struct PlanInput {
    pub name: Option<String>,
    pub monthly_quota: Option<i64>,
    /// `true` removes the quota.
    pub unlimited: Option<bool>,
    pub price_cents: Option<i64>,
    pub overage_price_micros: Option<i64>,
    pub rate_limit_per_minute: Option<i32>,
    pub blocks_over_quota: Option<bool>,
}

impl From<PlanInput> for PlanUpdate {
    fn from(input: PlanInput) -> Self {
        Self {
            name: input.name,
            monthly_quota: input.monthly_quota,
            unlimited: input.unlimited,
            price_cents: input.price_cents,
            overage_price_micros: input.overage_price_micros,
            rate_limit_per_minute: input.rate_limit_per_minute,
            blocks_over_quota: input.blocks_over_quota,
        }
    }
}
