//! The quota gate: per account and billing period, an in-memory call counter loaded once from
//! `usage_periods`. Requests reserve their calls here before the recorder writes them, so that
//! concurrent requests cannot overshoot a blocking plan's quota; a reservation is settled with the
//! calls actually counted once the write is known (and given back when the write fails or turns
//! out to be a duplicate). The database counter, written in the same transaction as the events,
//! is the truth after a restart.
//!
//! The counters are per process, so with several instances on one database the gate is a fast
//! pre-filter: for blocking plans the recorder decides again under the period counter's row lock,
//! where the count is committed (see `recorder::admission`), and brings this gate's count up to the
//! database's after every write.

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

/// Calls of one account in one period, loaded once from the database.
#[derive(Default)]
pub struct PeriodCounter {
    count: tokio::sync::OnceCell<Mutex<Count>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Count {
    /// Calls the database holds, as last known here.
    committed: i64,
    /// Calls held by requests whose events are not written yet.
    reserved: i64,
}

impl Count {
    fn used(self) -> i64 {
        self.committed + self.reserved
    }
}

impl PeriodCounter {
    fn update(&self, change: impl FnOnce(&mut Count)) {
        if let Some(cell) = self.count.get() {
            change(&mut cell.lock().unwrap_or_else(|p| p.into_inner()));
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

impl Allowance {
    /// The limit calls are refused past, for a blocking plan.
    fn blocking_limit(self) -> Option<i64> {
        self.limit.filter(|_| self.blocks)
    }
}

#[derive(Debug)]
pub enum Decision {
    Granted(Reservation),
    /// Nothing was reserved.
    Exceeded(Refusal),
}

/// Why calls were refused: the period's limit, and the count the refusal was judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: i64,
    pub used: i64,
    pub period: BillingPeriod,
}

/// Calls held for a request until its events are written. Dropping it gives the calls back.
pub struct Reservation {
    counter: Arc<PeriodCounter>,
    calls: i64,
    account_id: String,
    /// Set for a blocking plan: the recorder checks the calls against it again where they are
    /// committed.
    blocking_limit: Option<i64>,
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

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Calls reserved.
    pub fn calls(&self) -> i64 {
        self.calls
    }

    /// The limit past which the period refuses calls, when its plan blocks.
    pub fn blocking_limit(&self) -> Option<i64> {
        self.blocking_limit
    }

    /// The write is done and counted `counted` calls in this period; `committed` is the
    /// period's count in the database right after it, when the write read it back. The held
    /// calls are given back, and the counter keeps what was counted (or takes the database's
    /// count, which includes what other instances committed).
    pub fn settle(mut self, counted: i64, committed: Option<i64>) {
        let calls = std::mem::take(&mut self.calls);
        self.counter.update(|count| {
            count.reserved -= calls;
            count.committed = committed.unwrap_or(count.committed + counted);
        });
    }

    /// The write was refused or failed; `committed` as for [`Reservation::settle`].
    pub fn give_back(self, committed: Option<i64>) {
        self.settle(0, committed);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let calls = self.calls;
        if calls != 0 {
            self.counter.update(|count| count.reserved -= calls);
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
            .count
            .get_or_try_init(|| async {
                let committed = load_calls(db, account_id, period).await?;
                DomainResult::Ok(Mutex::new(Count {
                    committed,
                    reserved: 0,
                }))
            })
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
            let Some(cell) = counter.count.get() else {
                return Err(crate::domain::error::DomainError::internal(
                    anyhow::anyhow!("quota counter not loaded"),
                ));
            };
            let mut count = cell.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(limit) = allowance.blocking_limit() {
                if count.used() + calls > limit {
                    return Ok(Decision::Exceeded(Refusal {
                        limit,
                        used: count.used(),
                        period,
                    }));
                }
            }
            count.reserved += calls;
            count.used()
        };
        Ok(Decision::Granted(Reservation {
            counter,
            calls,
            account_id: account_id.to_owned(),
            blocking_limit: allowance.blocking_limit(),
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
            .count
            .get()
            .map(|cell| cell.lock().unwrap_or_else(|p| p.into_inner()).used())
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
