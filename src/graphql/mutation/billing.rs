use async_graphql::{Context, Object, Result};
use chrono::{DateTime, Utc};

use crate::domain::billing::close;
use crate::domain::error::DomainError;
use crate::graphql::context::{current_admin, now, state};
use crate::graphql::guard::AdminGuard;
use crate::graphql::object::BillingRun;

#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// Invoices every account for every billing period that ended at or before `asOf` (default:
    /// now). Idempotent: a period is never invoiced twice, however often or concurrently this runs.
    #[graphql(guard = "AdminGuard")]
    async fn admin_close_billing_periods(
        &self,
        ctx: &Context<'_>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<BillingRun> {
        let admin = current_admin(ctx).await?;
        let now = now(ctx);
        let as_of = as_of.unwrap_or(now);
        if as_of > now {
            return Err(DomainError::bad_field("asOf", "must not lie in the future").into());
        }
        let run = close::close_ended_periods(&state(ctx).db, as_of, now).await?;
        tracing::info!(
            admin = %admin.email,
            as_of = %as_of,
            invoices_created = run.invoices_created,
            total_cents = run.total_cents,
            "admin closed billing periods"
        );
        Ok(run.into())
    }
}
