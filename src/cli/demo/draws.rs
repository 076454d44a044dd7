//! Skewed popularity for demo data: Zipf-like weights by rank, shared by the accounts (some
//! far busier than others) and the endpoints they call.

use rand::distr::weighted::WeightedIndex;

use crate::domain::error::{DomainError, DomainResult};

/// The weight of the item of rank `rank` (from 0) with exponent `s`.
pub(super) fn zipf_weight(rank: usize, s: f64) -> f64 {
    1.0 / ((rank + 1) as f64).powf(s)
}

pub(super) fn zipf(n: usize, s: f64) -> DomainResult<WeightedIndex<f64>> {
    WeightedIndex::new((0..n).map(|i| zipf_weight(i, s)))
        .map_err(|err| DomainError::internal(anyhow::anyhow!("weights: {err}")))
}
