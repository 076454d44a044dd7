//! Helpers of the ingestion tests: a member with a key, bodies, and counts read from the database.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use tally::domain::histogram;

use super::{TestApp, TestResponse};

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
        let (token, _, account_id) = self.sign_up(&email).await;
        let (key, key_id) = self.create_key(&token, require_signature).await;
        Member {
            token,
            account_id,
            key,
            key_id,
        }
    }

    /// Edits a plan through the admin API, e.g. `json!({"monthlyQuota": 5})`.
    pub async fn update_plan(&self, code: &str, input: Value) {
        let admin = self.admin_token().await;
        self.graphql_ok(
            Some(&admin),
            "mutation($c: PlanCode!, $i: PlanInput!) { adminUpdatePlan(code: $c, input: $i) { code } }",
            json!({ "c": code, "i": input }),
        )
        .await;
    }

    pub async fn set_plan(&self, account_id: &str, code: &str) {
        let admin = self.admin_token().await;
        self.graphql_ok(
            Some(&admin),
            "mutation($a: ID!, $p: PlanCode!) { adminSetPlan(accountId: $a, plan: $p) { id } }",
            json!({ "a": account_id, "p": code }),
        )
        .await;
    }

    pub async fn track(&self, key: &str, body: &Value) -> TestResponse {
        self.post_json("/api/track", Some(key), body).await
    }

    /// One integer from an SQL query (e.g. a count).
    pub async fn scalar(&self, sql: &str) -> i64 {
        let backend = self.state.db.get_database_backend();
        let row = self
            .state
            .db
            .query_one_raw(Statement::from_string(backend, sql.to_owned()))
            .await
            .expect("query")
            .expect("a row");
        row.try_get_by_index::<Option<i64>>(0)
            .expect("an integer")
            .unwrap_or(0)
    }

    /// The latency histogram of one daily endpoint rollup row, read back as bucket → count.
    pub async fn stored_histogram(&self, account_id: &str, endpoint: &str) -> histogram::Counts {
        let backend = self.state.db.get_database_backend();
        let sql = format!(
            "SELECT latency_histogram FROM usage_daily_endpoints \
             WHERE account_id = '{account_id}' AND endpoint = '{endpoint}'"
        );
        let row = self
            .state
            .db
            .query_one_raw(Statement::from_string(backend, sql))
            .await
            .expect("query")
            .expect("a row");
        let stored: String = row.try_get_by_index(0).expect("text");
        let mut counts = histogram::Counts::new();
        histogram::add_json(&mut counts, &stored).expect("a stored histogram");
        counts
    }

    pub async fn stored_events(&self, account_id: &str) -> i64 {
        self.scalar(&format!(
            "SELECT COUNT(*) FROM usage_events WHERE account_id = '{account_id}'"
        ))
        .await
    }

    /// Calls counted in all periods of an account.
    pub async fn counted_calls(&self, account_id: &str) -> i64 {
        self.scalar(&format!(
            "SELECT CAST(SUM(calls) AS BIGINT) FROM usage_periods WHERE account_id = '{account_id}'"
        ))
        .await
    }

    pub fn now_rfc3339(&self) -> String {
        rfc3339(super::Clock::now(&self.clock))
    }
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn tool_use(ts: &str, event_id: Option<&str>) -> Value {
    let mut body = json!({ "skill_id": "code-review", "tool_name": "Read", "ts": ts });
    if let Some(id) = event_id {
        body["event_id"] = json!(id);
    }
    body
}
