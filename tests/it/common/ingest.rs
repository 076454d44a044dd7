//! Helpers of the ingestion tests: a member with a key, bodies, and counts read from the database.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tally::domain::histogram;
use tally::entity::{usage_daily_endpoint, usage_daily_tool};

use super::{tables, TestApp, TestResponse};

/// A member with an account on FREE and an API key.
pub struct Member {
    pub token: String,
    pub account_id: String,
    pub key: String,
    pub key_id: String,
}

impl TestApp {
    pub async fn member_with_key(&self, require_signature: bool) -> Member {
        let email = format!("m-{}@example.com", uuid::Uuid::new_v4().simple());
        let super::SignedUp {
            token, account_id, ..
        } = self.sign_up(&email).await;
        let (key, key_id) = self.create_key(&token, require_signature).await;
        Member {
            token,
            account_id,
            key,
            key_id,
        }
    }

    pub async fn track(&self, key: &str, body: &Value) -> TestResponse {
        self.post_json("/api/track", Some(key), body).await
    }

    /// Tracks one tool use dated now, without an event id.
    pub async fn track_now(&self, key: &str) -> TestResponse {
        self.track(key, &track_body(&self.now_rfc3339(), None))
            .await
    }

    /// Tracks one tool use dated now with this event id.
    pub async fn track_now_with_id(&self, key: &str, event_id: &str) -> TestResponse {
        self.track(key, &track_body(&self.now_rfc3339(), Some(event_id)))
            .await
    }

    /// Waits until every acknowledged event is rolled up (analytics trail events by up to a
    /// second).
    pub async fn settle(&self) {
        self.state.ingestion.recorder.flush().await;
    }

    /// The latency histogram of one daily endpoint rollup row, read back as bucket → count.
    pub async fn stored_histogram(&self, account_id: &str, endpoint: &str) -> histogram::Counts {
        self.settle().await;
        tables::stored_histogram(&self.state.db, account_id, endpoint).await
    }

    /// The daily endpoint rollup rows of an account, once settled.
    pub async fn endpoint_rollups(&self, account_id: &str) -> Vec<usage_daily_endpoint::Model> {
        self.settle().await;
        tables::endpoint_rollups(&self.state.db, account_id).await
    }

    /// The daily tool rollup rows of an account, once settled.
    pub async fn tool_rollups(&self, account_id: &str) -> Vec<usage_daily_tool::Model> {
        self.settle().await;
        tables::tool_rollups(&self.state.db, account_id).await
    }

    pub async fn stored_events(&self, account_id: &str) -> i64 {
        tables::stored_events(&self.state.db, account_id).await
    }

    /// Calls counted in all periods of an account.
    pub async fn counted_calls(&self, account_id: &str) -> i64 {
        tables::counted_calls(&self.state.db, account_id).await
    }

    pub fn now_rfc3339(&self) -> String {
        rfc3339(super::Clock::now(&self.clock))
    }
}

/// How clients write `ts`: RFC 3339 in UTC with milliseconds and `Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The body of a `/api/track` request: one tool use at `ts`.
pub fn track_body(ts: &str, event_id: Option<&str>) -> Value {
    let mut body = json!({ "skill_id": "code-review", "tool_name": "Read", "ts": ts });
    if let Some(id) = event_id {
        body["event_id"] = json!(id);
    }
    body
}
