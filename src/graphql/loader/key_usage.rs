//! `ApiKey.callsThisPeriod` and `ApiKey.usageHistory` for a whole list of keys in one query each.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};

use crate::domain::analytics::DayWindow;
use crate::domain::error::DomainError;
use crate::domain::key_usage::{self, KeyDailyUsage};
use crate::graphql::loader::DbLoader;

/// A key and the instant whose billing period is asked about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyAt {
    pub key_id: String,
    pub now: DateTime<Utc>,
}

/// A key and the days asked about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyWindow {
    pub key_id: String,
    pub window: DayWindow,
}

impl Loader<KeyAt> for DbLoader {
    type Value = i64;
    type Error = DomainError;

    async fn load(&self, keys: &[KeyAt]) -> Result<HashMap<KeyAt, i64>, Self::Error> {
        let mut found = HashMap::new();
        // One query per instant; a request has one.
        let mut by_now: HashMap<DateTime<Utc>, Vec<String>> = HashMap::new();
        for key in keys {
            by_now.entry(key.now).or_default().push(key.key_id.clone());
        }
        for (now, ids) in by_now {
            let calls = key_usage::calls_this_period(&self.db, &ids, now).await?;
            found.extend(
                calls
                    .into_iter()
                    .map(|(key_id, calls)| (KeyAt { key_id, now }, calls)),
            );
        }
        Ok(found)
    }
}

impl Loader<KeyWindow> for DbLoader {
    type Value = Vec<KeyDailyUsage>;
    type Error = DomainError;

    async fn load(
        &self,
        keys: &[KeyWindow],
    ) -> Result<HashMap<KeyWindow, Vec<KeyDailyUsage>>, Self::Error> {
        let mut found = HashMap::new();
        // One query per window; a page of keys asks for one.
        let mut by_window: HashMap<DayWindow, Vec<String>> = HashMap::new();
        for key in keys {
            by_window
                .entry(key.window)
                .or_default()
                .push(key.key_id.clone());
        }
        for (window, ids) in by_window {
            let days = key_usage::daily_usage(&self.db, &ids, window).await?;
            found.extend(
                days.into_iter()
                    .map(|(key_id, days)| (KeyWindow { key_id, window }, days)),
            );
        }
        Ok(found)
    }
}
