//! The key behind an ingestion request, as an extractor: bearer token, key lookup and the key's
//! per-minute rate limit, in the contract's order. A request refused here is answered by the
//! extractor itself: 401 before the key is known, and 429 with the rate-limit headers once it is.
//!
//! The body is read before this runs (see [`crate::http::ingest::buffer_within`]), so a body
//! over the route's limit is refused before any authentication.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::domain::error::DomainError;
use crate::domain::ingest::{self, Route};
use crate::domain::ratelimit::MinuteWindow;
use crate::http::bearer::bearer;
use crate::http::ingest::{LimitHeaders, Refused};
use crate::state::AppState;

/// What one ingestion route accepts and how it words a refusal.
pub trait IngestRoute: Send + Sync + 'static {
    const ROUTE: Route;

    /// The response for an error of this route (verify adds `"valid": false`).
    fn refusal(err: DomainError) -> Response {
        err.into_response()
    }
}

/// A request's valid key, with the minute window its request was counted in. (The domain's
/// [`ingest::Caller`] is the key alone, without the route or the HTTP answers.)
pub struct AuthenticatedKey<R> {
    pub caller: ingest::Caller,
    pub minute: MinuteWindow,
    route: PhantomData<R>,
}

impl<R: IngestRoute> AuthenticatedKey<R> {
    /// The rate-limit headers for a response to this caller; `refused` names the limit that
    /// refused it, if one did.
    pub async fn limit_headers(&self, state: &AppState, refused: Option<Refused>) -> LimitHeaders {
        LimitHeaders::for_caller(state, &self.caller, self.minute, refused).await
    }

    /// This route's response for `err`, with the rate-limit headers.
    pub async fn refuse(&self, state: &AppState, err: DomainError) -> Response {
        let headers = self.limit_headers(state, Refused::by(&err)).await;
        (headers, R::refusal(err)).into_response()
    }
}

impl<R: IngestRoute> FromRequestParts<AppState> for AuthenticatedKey<R> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = ingest::authenticate(&state.ingestion, bearer(&parts.headers), R::ROUTE)
            .await
            .map_err(R::refusal)?;
        let (minute, allowed) = ingest::spend_rate_limit(&state.ingestion, &caller).await;
        let key = Self {
            caller,
            minute,
            route: PhantomData,
        };
        match allowed {
            Ok(()) => Ok(key),
            Err(err) => Err(key.refuse(state, err).await),
        }
    }
}
