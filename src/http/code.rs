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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use utoipa::PartialSchema;

    use super::ApiCode;

    /// Every code, with the statuses it is answered with.
    const CODES: [(ApiCode, &[u16]); 19] = [
        (ApiCode::Valid, &[200]),
        (ApiCode::MissingAuthorization, &[401]),
        (ApiCode::InvalidKey, &[401]),
        (ApiCode::RateLimited, &[429]),
        (ApiCode::QuotaExceeded, &[429]),
        (ApiCode::UsageExceeded, &[429]),
        (ApiCode::InvalidJson, &[400]),
        (ApiCode::InvalidPayload, &[400]),
        (ApiCode::InvalidSignature, &[403, 400]),
        (ApiCode::PayloadTooLarge, &[413]),
        (ApiCode::EventIdReused, &[409]),
        (ApiCode::NotFound, &[404]),
        (ApiCode::MethodNotAllowed, &[405]),
        (ApiCode::MethodNotImplemented, &[501]),
        (ApiCode::RequestTimeout, &[408]),
        (ApiCode::BadRequest, &[400]),
        (ApiCode::WebhookNotConfigured, &[503]),
        (ApiCode::ServiceUnavailable, &[503]),
        (ApiCode::Internal, &[500]),
    ];

    fn name(code: ApiCode) -> String {
        serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap()
    }

    /// The rows of the "Error codes" table of docs/rest.md: code → statuses.
    fn documented() -> BTreeMap<String, Vec<u16>> {
        let doc = include_str!("../../docs/rest.md");
        let table = doc
            .split("\n## Error codes\n")
            .nth(1)
            .expect("docs/rest.md has an \"Error codes\" section");
        table
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .skip(2)
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let code = cells[1].trim_matches('`').to_owned();
                let statuses = cells[2]
                    .split('/')
                    .map(|status| status.trim().parse().unwrap())
                    .collect();
                (code, statuses)
            })
            .collect()
    }

    #[test]
    fn the_list_holds_every_code_of_the_enum() {
        let schema = serde_json::to_value(ApiCode::schema()).unwrap();
        let mut in_schema: Vec<String> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        let mut listed: Vec<String> = CODES.iter().map(|(code, _)| name(*code)).collect();
        in_schema.sort();
        listed.sort();
        assert_eq!(listed, in_schema);
    }

    #[test]
    fn the_docs_table_lists_exactly_the_codes_and_their_statuses() {
        let expected: BTreeMap<String, Vec<u16>> = CODES
            .iter()
            .map(|(code, statuses)| (name(*code), statuses.to_vec()))
            .collect();
        assert_eq!(documented(), expected);
    }
}
