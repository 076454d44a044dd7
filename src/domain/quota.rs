//! The quota gate: per account and billing period, an in-memory call counter loaded once from
//! `usage_periods`. Requests reserve their calls here before the recorder writes them, so that
//! concurrent requests cannot overshoot a blocking plan's quota; a reservation is settled with the
//! calls actually counted once the write is known (and given back when the write fails or turns
//! out to be a duplicate). The database counter, written in the same transaction as the events,
//! is the truth after a restart.
//!
//! The counters are per process: several instances sharing a database each gate on their own
//! count (they converge through the database after [`QuotaGate::forget_account`] or idle
//! eviction).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{DatabaseConnection, EntityTrait, QuerySelect};

use crate::domain::error::DomainResult;
use crate::domain::periods::BillingPeriod;
use crate::entity::usage_period;

/// Counters unused this long are dropped and read again from the database when next needed.
const IDLE_EVICTION: Duration = Duration::from_secs(15 * 60);

#[derive(Clone)]
pub struct QuotaGate {
    counters: moka::sync::Cache<(String, i64), Arc<PeriodCounter>>,
}

/// Calls of one account in one period: committed plus reserved.
#[derive(Default)]
pub struct PeriodCounter {
    used: tokio::sync::OnceCell<Mutex<i64>>,
}

impl PeriodCounter {
    fn cell(&self) -> Option<&Mutex<i64>> {
        self.used.get()
    }

    fn adjust(&self, delta: i64) {
        if let Some(cell) = self.cell() {
            let mut used = cell.lock().unwrap_or_else(|p| p.into_inner());
            *used += delta;
        }
    }
}

/// What a plan allows in a period.
#[derive(Debug, Clone, Copy)]
pub struct Allowance {
    /// `None`: unlimited.
    pub limit: Option<i64>,
    /// Refuse calls past the limit (FREE-style) rather than let them into overage.
    pub blocks: bool,
}

#[derive(Debug)]
pub enum Decision {
    Granted(Reservation),
    /// Nothing was reserved; `used` is the count the refusal was judged on.
    Exceeded {
        limit: i64,
        used: i64,
    },
}

/// Calls held for a request until its events are written. Dropping it gives the calls back.
pub struct Reservation {
    counter: Arc<PeriodCounter>,
    calls: i64,
    /// The period's count right after this reservation.
    pub used_after: i64,
    pub period: BillingPeriod,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("calls", &self.calls)
            .field("used_after", &self.used_after)
            .finish()
    }
}

impl Reservation {
    pub fn period_start_ms(&self) -> i64 {
        self.period.start_ms()
    }

    /// The write is done and counted `counted` calls in this period: the counter keeps those
    /// and gives back (or, when more were counted than reserved, adds) the difference.
    pub fn settle(mut self, counted: i64) {
        self.counter.adjust(counted - self.calls);
        self.calls = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.calls != 0 {
            self.counter.adjust(-self.calls);
        }
    }
}

impl Default for QuotaGate {
    fn default() -> Self {
        Self::new()
    }
}

impl QuotaGate {
    pub fn new() -> Self {
        Self {
            counters: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(IDLE_EVICTION)
                .support_invalidation_closures()
                .build(),
        }
    }

    async fn counter(
        &self,
        db: &DatabaseConnection,
        account_id: &str,
        period: BillingPeriod,
    ) -> DomainResult<Arc<PeriodCounter>> {
        let counter = self
            .counters
            .get_with((account_id.to_owned(), period.start_ms()), Default::default);
        counter
            .used
            .get_or_try_init(|| async { load_calls(db, account_id, period).await.map(Mutex::new) })
            .await?;
        Ok(counter)
    }

    /// Reserves `calls` calls in `period`, all or nothing.
    pub async fn reserve(
        &self,
        db: &DatabaseConnection,
        account_id: &str,
        period: BillingPeriod,
        calls: i64,
        allowance: Allowance,
    ) -> DomainResult<Decision> {
        let counter = self.counter(db, account_id, period).await?;
        let used_after = {
            let Some(cell) = counter.cell() else {
                return Err(crate::domain::error::DomainError::internal(
                    anyhow::anyhow!("quota counter not loaded"),
                ));
            };
            let mut used = cell.lock().unwrap_or_else(|p| p.into_inner());
            if let (Some(limit), true) = (allowance.limit, allowance.blocks) {
                if *used + calls > limit {
                    return Ok(Decision::Exceeded { limit, used: *used });
                }
            }
            *used += calls;
            *used
        };
        Ok(Decision::Granted(Reservation {
            counter,
            calls,
            used_after,
            period,
        }))
    }

    /// Calls counted (and reserved) so far in `period`.
    pub async fn used(
        &self,
        db: &DatabaseConnection,
        account_id: &str,
        period: BillingPeriod,
    ) -> DomainResult<i64> {
        let counter = self.counter(db, account_id, period).await?;
        Ok(counter
            .cell()
            .map(|cell| *cell.lock().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or(0))
    }

    /// Forgets an account's counters, so the next request reads them from the database again:
    /// for changes made to `usage_periods` outside the recorder (e.g. an admin's usage reset).
    pub fn forget_account(&self, account_id: &str) {
        let account_id = account_id.to_owned();
        // Fails only when the cache is built without closure support, which `new` enables.
        let _ = self
            .counters
            .invalidate_entries_if(move |(account, _), _| *account == account_id);
        self.counters.run_pending_tasks();
    }

    /// Forgets every account's counters: for when changes to them may have been missed.
    pub fn forget_all(&self) {
        self.counters.invalidate_all();
    }
}

async fn load_calls(
    db: &DatabaseConnection,
    account_id: &str,
    period: BillingPeriod,
) -> DomainResult<i64> {
    let calls: Option<i64> =
        usage_period::Entity::find_by_id((account_id.to_owned(), period.start_ms()))
            .select_only()
            .column(usage_period::Column::Calls)
            .into_tuple()
            .one(db)
            .await?;
    Ok(calls.unwrap_or(0))
}
