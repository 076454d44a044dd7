use async_graphql::{Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::domain::billing::close::RunSummary;
use crate::entity::invoice;
use crate::graphql::object::{BigInt, PlanCode};

/// The bill of one account for one ended billing period. Amounts are integer cents.
pub struct Invoice(pub invoice::Model);

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[Object]
impl Invoice {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn period_start(&self) -> DateTime<Utc> {
        at(self.0.period_start)
    }

    async fn period_end(&self) -> DateTime<Utc> {
        at(self.0.period_end)
    }

    /// The plan in force at the period's end.
    async fn plan(&self) -> PlanCode {
        PlanCode::from_stored(&self.0.plan_code)
    }

    /// Billable calls of the period (a verify weighs its `cost`).
    async fn calls(&self) -> BigInt {
        self.0.calls.into()
    }

    /// The plan's quota; null for an unlimited plan.
    async fn included_calls(&self) -> Option<i64> {
        self.0.included_calls
    }

    async fn overage_calls(&self) -> BigInt {
        self.0.overage_calls.into()
    }

    /// The per-call overage price billed, in millionths of a dollar.
    async fn overage_price_micros(&self) -> i64 {
        self.0.overage_price_micros
    }

    async fn base_cents(&self) -> BigInt {
        self.0.base_cents.into()
    }

    async fn overage_cents(&self) -> BigInt {
        self.0.overage_cents.into()
    }

    async fn total_cents(&self) -> BigInt {
        self.0.total_cents.into()
    }
}

/// What a billing run did.
#[derive(SimpleObject)]
pub struct BillingRun {
    pub invoices_created: i64,
    pub total_cents: BigInt,
}

impl From<RunSummary> for BillingRun {
    fn from(run: RunSummary) -> Self {
        Self {
            invoices_created: run.invoices_created,
            total_cents: run.total_cents.into(),
        }
    }
}
