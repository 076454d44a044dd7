//! Invoice arithmetic. Money is integer: per-call prices in micros of a dollar, totals in cents,
//! rounded half up once per invoice line.

use crate::entity::plan;

const MICROS_PER_CENT: i128 = 10_000;

/// `overage_calls × price_micros`, in cents, rounded half up.
pub fn overage_cents(overage_calls: i64, price_micros: i64) -> i64 {
    let micros = i128::from(overage_calls.max(0)) * i128::from(price_micros.max(0));
    let cents = (micros + MICROS_PER_CENT / 2) / MICROS_PER_CENT;
    i64::try_from(cents).unwrap_or(i64::MAX)
}

/// Calls past the plan's quota; none for an unlimited plan.
pub fn overage_calls(calls: i64, monthly_quota: Option<i64>) -> i64 {
    monthly_quota.map_or(0, |quota| (calls - quota).max(0))
}

/// The lines of one invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLines {
    pub calls: i64,
    pub included_calls: Option<i64>,
    pub overage_calls: i64,
    pub overage_price_micros: i64,
    pub base_cents: i64,
    pub overage_cents: i64,
    pub total_cents: i64,
}

/// What `calls` calls in one period cost on `plan`.
pub fn lines(plan: &plan::Model, calls: i64) -> InvoiceLines {
    let overage_calls = overage_calls(calls, plan.monthly_quota);
    let overage_cents = overage_cents(overage_calls, plan.overage_price_micros);
    InvoiceLines {
        calls,
        included_calls: plan.monthly_quota,
        overage_calls,
        overage_price_micros: plan.overage_price_micros,
        base_cents: plan.price_cents,
        overage_cents,
        total_cents: plan.price_cents.saturating_add(overage_cents),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pro() -> plan::Model {
        plan::Model {
            code: "PRO".into(),
            name: "Pro".into(),
            monthly_quota: Some(100_000),
            price_cents: 2_900,
            overage_price_micros: 1_000,
            rate_limit_per_minute: 100,
            blocks_over_quota: false,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_contracts_pro_example_bills_fifty_cents_of_overage() {
        let invoice = lines(&pro(), 100_500);
        assert_eq!(invoice.overage_calls, 500);
        assert_eq!(invoice.overage_cents, 50);
        assert_eq!(invoice.base_cents, 2_900);
        assert_eq!(invoice.total_cents, 2_950);
        assert_eq!(invoice.included_calls, Some(100_000));
    }

    #[test]
    fn rounding_is_half_up_at_the_cent_boundary() {
        // 5 calls × 1,000 micros = 5,000 micros = half a cent → 1 cent.
        assert_eq!(overage_cents(5, 1_000), 1);
        // 4,999 micros → 0 cents.
        assert_eq!(overage_cents(4_999, 1), 0);
        // 15,000 micros = 1.5 cents → 2 cents; 14,999 → 1 cent.
        assert_eq!(overage_cents(15, 1_000), 2);
        assert_eq!(overage_cents(14_999, 1), 1);
        assert_eq!(overage_cents(0, 1_000), 0);
    }

    #[test]
    fn unlimited_plans_have_no_overage() {
        let mut enterprise = pro();
        enterprise.monthly_quota = None;
        let invoice = lines(&enterprise, 10_000_000);
        assert_eq!((invoice.overage_calls, invoice.overage_cents), (0, 0));
        assert_eq!(invoice.included_calls, None);
    }

    proptest! {
        #[test]
        fn totals_equal_the_exact_amount_rounded_half_up(
            calls in 0i64..10_000_000_000,
            quota in proptest::option::of(0i64..1_000_000_000),
            micros in 0i64..10_000_000,
            base in 0i64..10_000_000,
        ) {
            let plan = plan::Model { monthly_quota: quota, overage_price_micros: micros, price_cents: base, ..pro() };
            let invoice = lines(&plan, calls);
            let over = quota.map_or(0, |q| (calls - q).max(0));
            // Exact rational amount in cents = over × micros / 10,000; half up means the result r
            // satisfies r - 1/2 <= exact < r + 1/2, i.e. 2·r·10,000 - 10,000 <= 2·exact·10,000 < 2·r·10,000 + 10,000.
            let exact_times_20000 = 2 * i128::from(over) * i128::from(micros);
            let r = i128::from(invoice.overage_cents);
            prop_assert!(r * 20_000 - 10_000 <= exact_times_20000);
            prop_assert!(exact_times_20000 < r * 20_000 + 10_000);
            prop_assert_eq!(invoice.overage_calls, over);
            prop_assert_eq!(invoice.total_cents, base + invoice.overage_cents);
        }
    }
}
