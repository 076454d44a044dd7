//! The fixed log-bucket latency histogram of the daily rollups.
//!
//! Response times below [`LINEAR_LIMIT_MS`] get a bucket per millisecond; above, buckets grow by
//! [`GROWTH`] each, so any value read back as its bucket's geometric middle is within ~2.5% of the
//! truth, which keeps a p95 read from the histogram within the contract's 5% (or 1 ms).
//!
//! The rollups store a histogram as a JSON object from bucket to count (`{"12":3,"40":1}`), which
//! both database backends can merge in SQL; [`to_json`] and [`add_json`] convert.

use std::collections::BTreeMap;

/// Counts by bucket.
pub type Counts = BTreeMap<i32, i64>;

/// Exact 1 ms buckets below this.
pub const LINEAR_LIMIT_MS: i64 = 32;
/// Ratio between consecutive bucket bounds above [`LINEAR_LIMIT_MS`].
pub const GROWTH: f64 = 1.05;
/// The last bucket takes everything above ~1 day.
pub const MAX_BUCKET: i32 = LINEAR_LIMIT_MS as i32 + 300;

/// The bucket of a response time in milliseconds (negative values count as 0).
pub fn bucket_of(ms: i64) -> i32 {
    let ms = ms.max(0);
    if ms < LINEAR_LIMIT_MS {
        return ms as i32;
    }
    let steps = ((ms as f64) / (LINEAR_LIMIT_MS as f64)).ln() / GROWTH.ln();
    (LINEAR_LIMIT_MS as i32 + steps.floor() as i32).min(MAX_BUCKET)
}

/// `[low, high)` in milliseconds of a bucket.
pub fn bucket_bounds(bucket: i32) -> (f64, f64) {
    let bucket = bucket.clamp(0, MAX_BUCKET);
    if bucket < LINEAR_LIMIT_MS as i32 {
        return (bucket as f64, bucket as f64 + 1.0);
    }
    let step = (bucket - LINEAR_LIMIT_MS as i32) as f64;
    let low = LINEAR_LIMIT_MS as f64 * GROWTH.powf(step);
    (low, low * GROWTH)
}

/// The value a bucket stands for: exact below the linear limit, the geometric middle above.
pub fn bucket_value(bucket: i32) -> f64 {
    let (low, high) = bucket_bounds(bucket);
    if bucket < LINEAR_LIMIT_MS as i32 {
        low
    } else {
        (low * high).sqrt()
    }
}

/// The `q`-quantile (0..=1) of a histogram: the nearest-rank value, read as its bucket's value.
pub fn quantile(counts: &Counts, q: f64) -> Option<f64> {
    let total: i64 = counts.values().map(|c| (*c).max(0)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as i64).max(1);
    let mut seen = 0;
    for (bucket, count) in counts {
        seen += (*count).max(0);
        if seen >= rank {
            return Some(bucket_value(*bucket));
        }
    }
    None
}

/// The stored form of a histogram: a JSON object from bucket to count; `{}` when empty.
pub fn to_json(counts: &Counts) -> String {
    let entries: Vec<String> = counts
        .iter()
        .filter(|(_, count)| **count != 0)
        .map(|(bucket, count)| format!("\"{bucket}\":{count}"))
        .collect();
    format!("{{{}}}", entries.join(","))
}

/// Adds a stored histogram to `counts`.
pub fn add_json(counts: &mut Counts, json: &str) -> Result<(), serde_json::Error> {
    let stored: BTreeMap<i32, i64> = serde_json::from_str(json)?;
    for (bucket, count) in stored {
        *counts.entry(bucket).or_default() += count;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lies_in_its_bucket() {
        for ms in (0..200_000).step_by(7) {
            let (low, high) = bucket_bounds(bucket_of(ms));
            assert!(low <= ms as f64 && (ms as f64) < high + 1e-6, "{ms}");
        }
    }

    #[test]
    fn bucket_values_are_within_three_percent() {
        for ms in 1..100_000i64 {
            let v = bucket_value(bucket_of(ms));
            assert!(
                (v - ms as f64).abs() <= (ms as f64 * 0.03).max(1.0),
                "{ms} → {v}"
            );
        }
    }

    #[test]
    fn p95_of_a_histogram_is_within_five_percent_of_the_exact_one() {
        let values: Vec<i64> = (0..1000).map(|i| 5 + (i * i) % 4000).collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let exact = sorted[(0.95 * sorted.len() as f64).ceil() as usize - 1] as f64;
        let mut counts = Counts::new();
        for v in values {
            *counts.entry(bucket_of(v)).or_insert(0) += 1;
        }
        let p95 = quantile(&counts, 0.95).unwrap();
        assert!((p95 - exact).abs() <= exact * 0.05, "{p95} vs {exact}");
    }

    #[test]
    fn stored_form_round_trips_and_adds() {
        let counts = Counts::from([(3, 2), (40, 1), (7, 0)]);
        assert_eq!(to_json(&counts), r#"{"3":2,"40":1}"#);
        assert_eq!(to_json(&Counts::new()), "{}");
        let mut sum = Counts::from([(3, 1)]);
        add_json(&mut sum, &to_json(&counts)).unwrap();
        // PostgreSQL's json_object_agg writes spaces; they read the same.
        add_json(&mut sum, r#"{ "40" : 2, "9" : 1 }"#).unwrap();
        assert_eq!(sum, Counts::from([(3, 3), (9, 1), (40, 3)]));
        assert!(add_json(&mut sum, "[1,2]").is_err());
    }
}
