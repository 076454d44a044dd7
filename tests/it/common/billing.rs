//! The billing provider as the tests play it: signed webhook deliveries of subscription events.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tally::clock::Clock;
use tally::config::Config;

use super::{TestApp, TestResponse};

pub const WEBHOOK_SECRET: &str = "whsec_test_secret";

/// A configuration with the billing webhook's secret set.
pub fn config() -> Config {
    Config {
        billing_webhook_secret: Some(WEBHOOK_SECRET.to_owned()),
        ..Config::default()
    }
}

/// A `customer.subscription.updated` event for `account_id` with the period `[start, end)`.
pub fn subscription_updated(
    id: &str,
    created: DateTime<Utc>,
    account_id: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
    plan: Option<&str>,
) -> Value {
    let mut metadata = json!({ "account_id": account_id });
    if let Some(plan) = plan {
        metadata["plan"] = json!(plan);
    }
    json!({
        "id": id, "object": "event", "type": "customer.subscription.updated",
        "created": created.timestamp(),
        "data": { "object": {
            "object": "subscription", "customer": format!("cus_{account_id}"), "status": "active",
            "current_period_start": period.0.timestamp(), "current_period_end": period.1.timestamp(),
            "metadata": metadata
        } }
    })
}

/// A `customer.subscription.deleted` event for `account_id`.
pub fn subscription_deleted(id: &str, created: DateTime<Utc>, account_id: &str) -> Value {
    json!({
        "id": id, "object": "event", "type": "customer.subscription.deleted",
        "created": created.timestamp(),
        "data": { "object": {
            "object": "subscription", "customer": format!("cus_{account_id}"), "status": "canceled",
            "metadata": { "account_id": account_id }
        } }
    })
}

impl TestApp {
    /// Delivers `event` to the billing webhook, signed now with [`WEBHOOK_SECRET`].
    pub async fn billing_event(&self, event: &Value) -> TestResponse {
        let body = serde_json::to_vec(event).unwrap();
        let t = self.clock.now().timestamp();
        let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(&body);
        let header = format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()));
        self.post_raw(
            "/api/webhooks/billing",
            None,
            &[
                ("content-type", "application/json"),
                ("stripe-signature", header.as_str()),
            ],
            body,
        )
        .await
    }
}
