//! What the ingestion handlers share: reading the body within the route's limit (413 before any
//! authentication or database work), the bearer token and signature headers, and the rate-limit
//! headers of every response that got past authentication.
//!
//! For plans without a monthly quota (unlimited), the monthly parts are left out: no
//! `X-RateLimit-*` fields and only the `"minute"` policy in `RateLimit-Policy` / `RateLimit`, since
//! no monthly limit applies that a client could run into.
//!
//! On a 429 the `t=` of the limit that refused is the `Retry-After` of the refusal itself, not a
//! second reading of the clock, so the two headers always name the same wait.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponseParts, Response, ResponseParts};
use chrono::SecondsFormat;

use crate::domain::error::{messages, DomainError};
use crate::domain::ingest::{self, Caller};
use crate::domain::ratelimit::MinuteWindow;
use crate::http::code::ApiCode;
use crate::http::error::error_response;
use crate::http::limited_body::{payload_too_large, read_within, BodyRefusal};
use crate::state::AppState;

/// Body limit of routes that take one event.
pub const SINGLE_EVENT_LIMIT: usize = 64 * 1024;
/// Body limit of `POST /api/v1/events`.
pub const BATCH_LIMIT: usize = 1024 * 1024;

const SIGNATURE: &str = "x-tally-signature";

/// Reads the whole body within `LIMIT` bytes before the handler and its extractors run, so that
/// a body over the route's limit is refused (413) before any authentication or database work. A
/// body that broke off is not JSON (400).
pub async fn buffer_within<const LIMIT: usize>(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match read_within(&parts.headers, body, LIMIT).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(BodyRefusal::TooLarge) => payload_too_large(),
        Err(BodyRefusal::Unreadable) => error_response(
            StatusCode::BAD_REQUEST,
            ApiCode::InvalidJson,
            messages::INVALID_JSON,
        ),
    }
}

/// The token of `Authorization: Bearer <token>`; `None` without such a header.
pub use crate::http::bearer::bearer;

pub fn signature(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(SIGNATURE).map(HeaderValue::as_bytes)
}

/// The limit that refused a request with 429, and the seconds its `Retry-After` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Minute(u64),
    Monthly(u64),
}

impl Refused {
    /// `None` unless `err` is a rate-limit or quota refusal.
    pub fn by(err: &DomainError) -> Option<Self> {
        match err {
            DomainError::RateLimited {
                retry_after_secs, ..
            } => Some(Self::Minute(*retry_after_secs)),
            DomainError::QuotaExceeded {
                retry_after_secs, ..
            } => Some(Self::Monthly(*retry_after_secs)),
            _ => None,
        }
    }
}

/// The rate-limit headers (§3.6) of a response given to a caller past authentication.
pub struct LimitHeaders(HeaderMap);

impl LimitHeaders {
    /// `refused` is the refusal the response carries, if any: its wait is the `t=` of the limit
    /// that refused.
    pub async fn for_caller(
        state: &AppState,
        caller: &Caller,
        minute: MinuteWindow,
        refused: Option<Refused>,
    ) -> Self {
        let monthly = ingest::monthly_window(&state.ingestion, caller).await;
        let mut headers = HeaderMap::new();
        let minute_reset = match refused {
            Some(Refused::Minute(secs)) => secs,
            _ => minute.reset_secs,
        };
        let mut policy = format!("\"minute\";q={};w=60", minute.limit);
        let mut current = format!("\"minute\";r={};t={minute_reset}", minute.remaining);
        if let Some(monthly) = monthly {
            let reset = monthly
                .period
                .end
                .to_rfc3339_opts(SecondsFormat::Secs, true);
            insert(&mut headers, "x-ratelimit-limit", monthly.limit.to_string());
            insert(
                &mut headers,
                "x-ratelimit-remaining",
                monthly.remaining().to_string(),
            );
            insert(&mut headers, "x-ratelimit-reset", reset);
            policy.push_str(&format!(
                ", \"monthly\";q={};w={}",
                monthly.limit,
                monthly.period.seconds()
            ));
            let monthly_reset = match refused {
                Some(Refused::Monthly(secs)) => secs,
                _ => monthly.reset_secs(),
            };
            current.push_str(&format!(
                ", \"monthly\";r={};t={monthly_reset}",
                monthly.remaining(),
            ));
        }
        insert(&mut headers, "ratelimit-policy", policy);
        insert(&mut headers, "ratelimit", current);
        Self(headers)
    }
}

impl IntoResponseParts for LimitHeaders {
    type Error = Infallible;

    fn into_response_parts(self, mut parts: ResponseParts) -> Result<ResponseParts, Infallible> {
        parts.headers_mut().extend(self.0);
        Ok(parts)
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}
