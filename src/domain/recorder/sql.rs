//! SQL pieces every recorder statement shares: the statement sizes of multi-row writes, and
//! the upserts that add to counters and merge latency histograms.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel, QueryTrait,
};

use crate::domain::dialect::{add_excluded, merge_histograms};

/// Most rows per multi-row statement (SQLite allows 32,766 bound values per statement).
const ROWS_PER_STATEMENT: usize = 512;

/// Splits `n` rows into statements of power-of-two sizes (37 → 32, 4, 1), so that a handful of
/// statement shapes serve every batch and the connections' prepared-statement caches reuse them
/// instead of preparing (and keeping) one statement per batch size.
pub(super) fn statement_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let size = (1usize << n.ilog2()).min(ROWS_PER_STATEMENT);
        n -= size;
        Some(size)
    })
}
/// `ON CONFLICT (keys) DO UPDATE` adding the proposed value of each `added` column to the stored
/// one: the rollups are counters.
pub(super) fn adding<C: ColumnTrait, const K: usize, const A: usize>(
    keys: [C; K],
    added: [C; A],
) -> OnConflict {
    let mut on_conflict = OnConflict::columns(keys);
    for column in added {
        on_conflict.value(column, add_excluded(column));
    }
    on_conflict
}

/// [`adding`], and the stored latency histogram merged bucket by bucket with the proposed one:
/// the upsert of an endpoint's rollup row, daily or running.
pub(super) fn adding_merging_histogram<C: ColumnTrait, const K: usize, const A: usize>(
    backend: sea_orm::DatabaseBackend,
    keys: [C; K],
    added: [C; A],
    histogram: C,
) -> OnConflict {
    let mut on_conflict = adding(keys, added);
    on_conflict.value(histogram, merge_histograms(backend, histogram));
    on_conflict
}

/// Multi-row `INSERT ... ON CONFLICT DO UPDATE` of `rows`, in statements of
/// [`statement_sizes`].
pub(super) async fn upsert<M, A>(
    txn: &DatabaseTransaction,
    rows: impl ExactSizeIterator<Item = M>,
    on_conflict: OnConflict,
) -> Result<(), DbErr>
where
    M: IntoActiveModel<A>,
    A: ActiveModelTrait,
{
    let sizes = statement_sizes(rows.len());
    let mut rows = rows.into_iter();
    for size in sizes {
        let insert = A::Entity::insert_many(rows.by_ref().take(size).map(M::into_active_model))
            .on_conflict(on_conflict.clone())
            .into_query();
        txn.execute(&insert).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_sizes_are_powers_of_two_adding_up() {
        assert_eq!(statement_sizes(37).collect::<Vec<_>>(), [32, 4, 1]);
        assert_eq!(statement_sizes(0).count(), 0);
        assert_eq!(
            statement_sizes(1200).collect::<Vec<_>>(),
            [512, 512, 128, 32, 16]
        );
    }
}
