//! The stable, machine-readable `code` of every REST answer that carries one, defined here and
//! nowhere else: clients branch on the code, people read the `error` message beside it. A code
//! never changes meaning once published; new situations get new codes.

use serde::Serialize;
use utoipa::ToSchema;

/// `code` of a REST error body, and of every `POST /api/v1/verify` decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiCode {
    /// Verify: the key may make the call (200).
    Valid,
    /// No `Authorization` header, or not `Bearer` (401).
    MissingAuthorization,
    /// Unknown, malformed, bad-checksum, revoked or (outside `/api/track`) expired key (401).
    InvalidKey,
    /// The key's per-minute limit, or the client address's install limit, is spent (429).
    RateLimited,
    /// A blocking plan has no calls left in its period (429).
    QuotaExceeded,
    /// Verify's word for `QUOTA_EXCEEDED`, as gateways know it (429).
    UsageExceeded,
    /// The body is not JSON (400).
    InvalidJson,
    /// JSON that breaks the route's rules; `details` names the fields (400).
    InvalidPayload,
    /// `X-Tally-Signature` wrong or missing when required (403); `Stripe-Signature` bad (400).
    InvalidSignature,
    /// The body is over the route's limit (413).
    PayloadTooLarge,
    /// Verify: the `event_id` was used before by something this request is not a retry of (409).
    EventIdReused,
    /// No such route (404).
    NotFound,
    /// The route exists, the method does not (405).
    MethodNotAllowed,
    /// No route has this method, nor does HTTP define it for resources (501).
    MethodNotImplemented,
    /// The request, or its body, did not arrive or finish in time (408).
    RequestTimeout,
    /// Any other refused request (400).
    BadRequest,
    /// `POST /api/webhooks/billing` without a configured secret (503).
    WebhookNotConfigured,
    /// The database (or another dependency) cannot be reached right now; retry (503).
    ServiceUnavailable,
    /// Something failed inside; the cause is logged, never sent (500).
    Internal,
}
