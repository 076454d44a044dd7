//! What SQLite and PostgreSQL say differently, in one place: every other module builds its
//! statements from the entities' columns and lets sea_query spell them (quotes, `$n` or `?`) for
//! the backend at hand. What remains here is what sea_query does not spell for both alike, and
//! what the backends' error codes mean.

use sea_orm::sea_query::{
    Alias, Condition, DynIden, Expr, ExprTrait, Func, IntoIden, JoinType, Order, SelectStatement,
};
use sea_orm::{ColumnTrait, DatabaseBackend, IntoSimpleExpr};

/// The value an upsert proposed for `column`, in its `ON CONFLICT ... DO UPDATE` clause. SQLite
/// and PostgreSQL both name the rejected row `excluded` (MySQL would say `VALUES(column)`), but
/// sea_query writes that name only for a plain copy (`update_column`), not inside an expression.
pub fn excluded<C: ColumnTrait>(column: C) -> Expr {
    Expr::col(("excluded", column))
}

/// The stored value of `column` plus the one proposed: counters that add up.
pub fn add_excluded<C: ColumnTrait>(column: C) -> Expr {
    column.into_expr().add(excluded(column))
}

/// The later of the stored and the proposed value of `column`. `CASE`, because the two-argument
/// maximum is `MAX` in SQLite and `GREATEST` in PostgreSQL.
pub fn later_of_excluded<C: ColumnTrait>(column: C) -> Expr {
    Expr::case(excluded(column).gt(column.into_expr()), excluded(column))
        .finally(column.into_expr())
        .into()
}

/// `SUM` of a BIGINT expression as a BIGINT, 0 over no rows: PostgreSQL sums BIGINTs to a NUMERIC,
/// which would not read back as an `i64`; SQLite keeps integers as they are.
pub fn total(expr: impl IntoSimpleExpr) -> Expr {
    let sum = Func::sum(expr.into_simple_expr());
    Func::cast_as(Func::coalesce([sum.into(), Expr::val(0i64)]), "BIGINT").into()
}

/// An expression of text ordered by its bytes, as Rust orders strings: SQLite's default
/// (`BINARY`); PostgreSQL would follow the database's locale without `COLLATE "C"`.
pub fn byte_ordered(backend: DatabaseBackend, text: Expr) -> Expr {
    match backend {
        DatabaseBackend::Postgres => Expr::cust_with_expr(r#"$1 COLLATE "C""#, text),
        _ => text,
    }
}

/// Inner-joins `table AS alias` on `on` so that what the query already reads stays the outer
/// loop. Without statistics SQLite may start from a table that a transitive equality narrows to
/// an account and scan all of that account's rows; it keeps the left side of a `CROSS JOIN`
/// outside (sea_query writes no `ON` for one, so the condition goes to `WHERE`, which for an
/// inner join means the same). PostgreSQL plans from its statistics.
pub fn join_in_written_order(
    query: &mut SelectStatement,
    backend: DatabaseBackend,
    table: impl IntoIden,
    alias: &str,
    on: Condition,
) {
    match backend {
        DatabaseBackend::Postgres => {
            query.join_as(JoinType::InnerJoin, table, Alias::new(alias), on);
        }
        _ => {
            query.join_as(
                JoinType::CrossJoin,
                table,
                Alias::new(alias),
                Condition::all(),
            );
            query.cond_where(on);
        }
    }
}

/// Picks the row of `alias` with the latest `day` among `candidates`, rows of the same table
/// read as `candidate` (with their key and bounds in `WHERE`): `same_key` says that `alias` has
/// the candidates' key. PostgreSQL finds the latest day, then the row by its key. SQLite reads
/// the latest candidate's rowid from the key's index together with the day and the row by it:
/// one walk of that index fewer per lookup.
pub fn latest_row(
    backend: DatabaseBackend,
    alias: &str,
    same_key: Condition,
    mut candidates: SelectStatement,
    candidate: &str,
    day: impl IntoIden,
) -> Condition {
    let day = day.into_iden();
    let column = |table: &str, name: DynIden| Expr::col((Alias::new(table), name));
    match backend {
        DatabaseBackend::Postgres => {
            candidates.expr(Func::max(column(candidate, day.clone())));
            same_key.add(column(alias, day).eq(Expr::from(candidates)))
        }
        _ => {
            let rowid = || Alias::new("rowid").into_iden();
            candidates
                .expr(column(candidate, rowid()))
                .order_by_expr(column(candidate, day), Order::Desc)
                .limit(1);
            Condition::all().add(column(alias, rowid()).eq(Expr::from(candidates)))
        }
    }
}

/// The stored latency histogram of `column` (a JSON object from bucket to count) plus the one an
/// upsert proposes, bucket by bucket, in SQL: the sum happens under the row's lock, so concurrent
/// writers (several instances on PostgreSQL) never lose each other's counts. An empty side skips
/// the JSON work. The JSON functions differ: SQLite has `json_each` and `json_group_object`,
/// PostgreSQL `json_each_text` (text values, summed as BIGINT) and `json_object_agg` (JSON, kept
/// as text), and wants its derived tables named. sea_query writes the two columns where the text
/// has `$1` and `$2` (PostgreSQL) or each `?` in turn (SQLite): no value is bound there.
pub fn merge_histograms<C: ColumnTrait>(backend: DatabaseBackend, column: C) -> Expr {
    const EMPTY: &str = "{}";
    let merged = match backend {
        DatabaseBackend::Postgres => Expr::cust_with_exprs(
            "(SELECT COALESCE(json_object_agg(key, total)::text, '{}') FROM ( \
               SELECT key, SUM(value::bigint) AS total FROM ( \
                 SELECT key, value FROM json_each_text($1::json) \
                 UNION ALL \
                 SELECT key, value FROM json_each_text($2::json) \
               ) AS parts GROUP BY key) AS merged)",
            [column.into_expr(), excluded(column)],
        ),
        _ => Expr::cust_with_exprs(
            "(SELECT COALESCE(json_group_object(key, total), '{}') FROM ( \
               SELECT key, SUM(value) AS total FROM ( \
                 SELECT key, value FROM json_each(?) \
                 UNION ALL \
                 SELECT key, value FROM json_each(?) \
               ) GROUP BY key))",
            [column.into_expr(), excluded(column)],
        ),
    };
    Expr::case(excluded(column).eq(EMPTY), column.into_expr())
        .case(column.into_expr().eq(EMPTY), excluded(column))
        .finally(merged)
        .into()
}

/// True for a database error code that says nothing about the data written: the database
/// cannot take writes right now, and a retry later may succeed. The backends number their
/// errors differently.
pub fn transient_code(backend: DatabaseBackend, code: &str) -> bool {
    match backend {
        // SQLSTATE classes: connection, transaction rollback (serialization, deadlock),
        // insufficient resources, operator intervention (statement timeout, shutdown), system
        // error; and lock not available (lock timeout).
        DatabaseBackend::Postgres => {
            code == "55P03"
                || ["08", "40", "53", "57", "58"]
                    .iter()
                    .any(|class| code.starts_with(class))
        }
        // Extended result codes, whose low byte is the primary code: BUSY, LOCKED, NOMEM,
        // READONLY, INTERRUPT, IOERR, FULL, CANTOPEN, PROTOCOL.
        _ => code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5..=10 | 13..=15)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_that_say_nothing_about_the_data_are_transient() {
        let postgres = DatabaseBackend::Postgres;
        let sqlite = DatabaseBackend::Sqlite;
        // Lock timeout, statement timeout, serialization failure, connection lost.
        for code in ["55P03", "57014", "40001", "08006"] {
            assert!(transient_code(postgres, code), "{code}");
        }
        // NUL in text, unique and foreign-key violations.
        for code in ["22021", "23505", "23503"] {
            assert!(!transient_code(postgres, code), "{code}");
        }
        // BUSY, BUSY_TIMEOUT (extended), LOCKED, IOERR_FSYNC (extended).
        for code in ["5", "773", "6", "1034"] {
            assert!(transient_code(sqlite, code), "{code}");
        }
        // CONSTRAINT_FOREIGNKEY, CONSTRAINT_UNIQUE, TOOBIG.
        for code in ["787", "2067", "18"] {
            assert!(!transient_code(sqlite, code), "{code}");
        }
    }
}
