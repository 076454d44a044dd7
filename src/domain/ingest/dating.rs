//! The billing period of each event a request reports, or the refusal of those no period can
//! take (before the account existed, or in a period already invoiced).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};

use super::caller::Caller;
use super::service::Ingestion;
use crate::domain::error::{DomainError, DomainResult};
use crate::domain::periods::{BillingPeriod, Layout};

/// The period each event counts in, in order; or the refusal of the events dated where no period
/// can take them: before the account was created (no period or invoice covers that time), or
/// inside a period that has already been invoiced (a closed period never changes, and an event is
/// never silently moved to another one). `at` pairs each event's detail key (`ts`,
/// `events[3].ts`) with its time.
///
/// An event the account row alone places in a period that has not ended — nearly all of them, the
/// current period's — needs no database work. One in a period that has ended may be in an
/// invoiced one, and one dated before the provider's period began may lie in a period stored
/// before it: those are placed by the stored periods and invoices around their time.
///
/// The creation time counts to the whole second: clients often send second-precision times, and
/// an event from the second the account was created in is its own (period boundaries are whole
/// seconds, so this never reaches into an earlier period).
pub(super) async fn date_events(
    service: &Ingestion,
    caller: &Caller,
    at: impl IntoIterator<Item = (String, DateTime<Utc>)>,
) -> DomainResult<Vec<BillingPeriod>> {
    let account = &caller.resolved.account;
    let created = account.created_at.trunc_subsecs(0);
    let now = service.clock.now();
    let mut periods = Vec::new();
    let mut refused = Vec::new();
    // Stored periods by calendar month: a batch's late events share few months.
    let mut layouts: HashMap<i64, Layout> = HashMap::new();
    for (field, ts) in at {
        if ts < created {
            refused.push((field, "must not be before the account was created"));
            continue;
        }
        let period = BillingPeriod::for_account(account, ts);
        if BillingPeriod::placed_by_account(account, ts) && period.end > now {
            periods.push(period);
            continue;
        }
        let month = BillingPeriod::calendar_month(ts).start_ms();
        let layout = match layouts.entry(month) {
            Entry::Occupied(found) => found.into_mut(),
            Entry::Vacant(slot) => {
                let layout = caller
                    .deadline
                    .bound(
                        "placing an event in its billing period",
                        Layout::load_around(&service.db, account, ts),
                    )
                    .await?;
                slot.insert(layout)
            }
        };
        if layout.is_closed(ts) {
            refused.push((field, "billing period closed"));
        } else {
            periods.push(layout.period_at(ts));
        }
    }
    if refused.is_empty() {
        Ok(periods)
    } else {
        Err(DomainError::invalid_payload(refused))
    }
}
