//! `POST /graphql` runs one operation (`GET /graphql`, GraphiQL, is in `http::dashboard`).
//!
//! The body is parsed here rather than by an extractor so that a batch (a JSON array) and
//! malformed bodies get a GraphQL-shaped 400 with `extensions.code`, and so that errors raised by
//! async-graphql itself (syntax, validation, depth and complexity limits) carry a code too. A body
//! over the limit is a REST-style 413 `{"error": "Payload too large"}` (no operation ran), refused
//! at once when its declared `Content-Length` is over the limit.

use async_graphql::ServerError;
use async_graphql_axum::GraphQLResponse;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::graphql::context::RequestInfo;
use crate::graphql::error::GraphqlCode;
use crate::graphql::loader;
use crate::graphql::TallySchema;
use crate::http::bearer::bearer;
use crate::http::client::ClientAddress;
use crate::http::limited_body::{payload_too_large, read_within, BodyRefusal};
use crate::state::AppState;

/// Largest GraphQL request body.
pub const GRAPHQL_BODY_LIMIT: usize = 256 * 1024;

pub async fn execute(
    Extension(schema): Extension<TallySchema>,
    State(state): State<AppState>,
    ClientAddress(client_address): ClientAddress,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_within(&headers, body, GRAPHQL_BODY_LIMIT).await {
        Ok(body) => body,
        Err(BodyRefusal::TooLarge) => return payload_too_large(),
        Err(BodyRefusal::Unreadable) => return refuse("Body is not valid JSON"),
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(_) => return refuse("Body is not valid JSON"),
    };
    if value.is_array() {
        return refuse("Batched operations are not supported: send one operation per request");
    }
    let request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(request) => request,
        Err(_) => return refuse("Body is not a GraphQL request"),
    };
    let info = RequestInfo {
        bearer: bearer(&headers).map(str::to_owned),
        client_address,
    };
    let request = loader::attach(request.data(info), &state.db);
    let mut response = schema.execute(request).await;
    for error in &mut response.errors {
        add_default_code(error);
    }
    GraphQLResponse::from(response).into_response()
}

/// Errors raised before any resolver (parse, validation, limits) come without a code.
fn add_default_code(error: &mut ServerError) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if !has_code {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", GraphqlCode::BadUserInput.as_str());
    }
}

fn refuse(message: &str) -> Response {
    let body = json!({
        "errors": [{
            "message": message,
            "extensions": { "code": GraphqlCode::BadUserInput.as_str() }
        }]
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}
