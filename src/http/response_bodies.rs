//! The JSON bodies the REST routes answer with, as types: the handlers build them, and the
//! OpenAPI document (`http::openapi`) describes them from the same definitions.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::http::code::ApiCode;

/// Every REST error: a message for people and a stable `code` for programs. `details` comes with
/// `INVALID_PAYLOAD`; `limit`, `used`, `reset` and `upgrade_url` with `QUOTA_EXCEEDED` (and
/// verify's `USAGE_EXCEEDED`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "Invalid key")]
    pub error: String,
    pub code: ApiCode,
    /// What is wrong with each field, keyed by field name (`events[3].ts` in a batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<BTreeMap<String, Vec<String>>>,
    /// The period's quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Calls counted in the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<i64>,
    /// End of the period (RFC 3339), when the quota starts afresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub reset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade_url: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ApiCode, error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            code,
            details: None,
            limit: None,
            used: None,
            reset: None,
            upgrade_url: None,
        }
    }
}

/// A refused `POST /api/v1/verify`: the route's error body with `"valid": false`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyRefusal {
    /// Always `false`.
    pub valid: bool,
    #[serde(flatten)]
    pub body: ErrorBody,
}

/// An allowed `POST /api/v1/verify` (a new call counted, or a retry answered as before).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyAllowed {
    /// Always `true`.
    pub valid: bool,
    /// Always `VALID`.
    pub code: ApiCode,
    pub account_id: String,
    pub key_id: String,
    /// Plan code: `FREE`, `PRO` or `ENTERPRISE`.
    pub plan: String,
    /// The period's quota; `null` for unlimited plans.
    pub limit: Option<i64>,
    /// Calls counted in the period, this one included.
    pub used: i64,
    /// Calls left in the period, never below 0; `null` for unlimited plans.
    pub remaining: Option<i64>,
    /// End of the period (RFC 3339).
    #[schema(format = DateTime)]
    pub reset: String,
    /// True when a plan that bills overage is past its quota.
    pub overage: bool,
}

/// The answer to a batch of finished calls.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventsAccepted {
    /// Newly counted calls.
    pub accepted: usize,
    /// Events that completed a call recorded earlier by verify (same `event_id`), not counted again.
    pub completed: usize,
    /// Events whose `event_id` was already stored; nothing changed.
    pub duplicates: usize,
}

/// The answer to an install report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstallRecorded {
    /// Always `true`.
    pub recorded: bool,
    /// Optional fields dropped for a wrong type or length (the install is recorded without
    /// them); left out when none was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["platform"]))]
    pub ignored: Vec<&'static str>,
}

/// The answer to a billing-provider event that was applied, ignored or seen before.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookReceived {
    /// Always `true`.
    pub received: bool,
    /// `true` when this event id was applied before (nothing changed this time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /ready` when the database answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: String,
    /// With Redis configured: `up`, or `unreachable` (per-key limits per instance meanwhile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// Why the service is degraded, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}

/// `GET /ready` when the database does not answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotReady {
    /// Always `unavailable`.
    pub status: String,
    pub error: String,
    /// Always `SERVICE_UNAVAILABLE`.
    pub code: ApiCode,
    /// With Redis configured: whether it answers too (`up` or `unreachable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
}
