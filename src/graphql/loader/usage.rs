//! `Account.currentUsage` for a whole page of accounts in one query.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;

use crate::domain::analytics::{self, UsageSummary};
use crate::domain::error::DomainError;
use crate::domain::periods::BillingPeriod;
use crate::graphql::loader::DbLoader;

/// An account and the billing period asked about (the resolver knows the account's period).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageKey {
    pub account_id: String,
    pub period: BillingPeriod,
}

impl Loader<UsageKey> for DbLoader {
    type Value = UsageSummary;
    type Error = DomainError;

    async fn load(
        &self,
        keys: &[UsageKey],
    ) -> Result<HashMap<UsageKey, UsageSummary>, Self::Error> {
        let pairs: Vec<(String, BillingPeriod)> = keys
            .iter()
            .map(|k| (k.account_id.clone(), k.period))
            .collect();
        let found = analytics::usage_of(&self.db, &pairs).await?;
        Ok(found
            .into_iter()
            .map(|((account_id, period), usage)| (UsageKey { account_id, period }, usage))
            .collect())
    }
}
