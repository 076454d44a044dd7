//! The OpenAPI 3.1 document of the REST routes, built from the handlers' `#[utoipa::path]`
//! annotations and body types; served at `GET /openapi.json`, printed by `tally openapi`, and
//! checked in as `openapi.json` (a test fails when the copy drifts).
//!
//! What every route shares — `x-request-id`, the rate-limit headers of the metered routes,
//! `Retry-After`, the `X-Tally-Signature` header — is added in one place ([`SharedConventions`])
//! rather than repeated in every annotation. GraphQL has its own schema (`schema.graphql`); its
//! route is listed here as opaque.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, OperationBuilder, Parameter, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HttpMethod, Object, ObjectBuilder, Required, Schema, Type};
use utoipa::{Modify, OpenApi};

use crate::http::billing_webhook::{self, BillingEvent, BillingEventData};
use crate::http::bodies::{
    ErrorBody, EventsAccepted, Health, InstallRecorded, NotReady, Ready, VerifyAllowed,
    VerifyRefusal, WebhookReceived,
};
use crate::http::code::ApiCode;
use crate::http::events::{self, EventsRequest, FinishedCall};
use crate::http::install::{self, InstallRequest};
use crate::http::track::{self, TrackRequest};
use crate::http::verify::{self, VerifyRequest};
use crate::http::{health, metrics};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tally REST API",
        description = "Usage metering: hooks report tool uses and installs, gateways verify keys and report finished calls, the billing provider changes plans. Every error body is `{\"error\", \"code\"}`; see docs/rest.md.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    paths(
        track::track,
        install::install_callback,
        verify::verify,
        events::events,
        billing_webhook::receive,
        health::health,
        health::ready,
        metrics::metrics,
        openapi_json,
    ),
    components(schemas(
        ApiCode,
        ErrorBody,
        VerifyRefusal,
        VerifyAllowed,
        EventsAccepted,
        InstallRecorded,
        WebhookReceived,
        Health,
        Ready,
        NotReady,
        TrackRequest,
        InstallRequest,
        VerifyRequest,
        EventsRequest,
        FinishedCall,
        BillingEvent,
        BillingEventData,
    )),
    modifiers(&SharedConventions),
    tags(
        (name = "hooks", description = "Editor and agent hooks, install scripts"),
        (name = "gateways", description = "API gateways and backends"),
        (name = "billing", description = "The billing provider's webhook"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "graphql", description = "Dashboards and admins; described by schema.graphql"),
    )
)]
struct RestApi;

/// The document as pretty-printed JSON with a final newline, exactly as checked in.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut json = RestApi::openapi()
            .to_pretty_json()
            .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"));
        json.push('\n');
        json
    })
}

/// Serves the OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

/// Routes metered per key: their answers past authentication carry the rate-limit headers.
const METERED: [&str; 3] = ["/api/track", "/api/v1/verify", "/api/v1/events"];

struct SharedConventions;

impl Modify for SharedConventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let metered = METERED.contains(&path.as_str());
            for operation in [item.get.as_mut(), item.post.as_mut()]
                .into_iter()
                .flatten()
            {
                if metered {
                    operation
                        .parameters
                        .get_or_insert_with(Vec::new)
                        .push(signature_parameter());
                }
                add_response_headers(operation, metered);
            }
        }
        openapi
            .paths
            .paths
            .insert("/graphql".to_owned(), graphql_path());
    }
}

fn add_response_headers(operation: &mut Operation, metered: bool) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let utoipa::openapi::RefOr::T(response) = response else {
            continue;
        };
        response.headers.insert(
            "x-request-id".to_owned(),
            text_header("The request's id: the client's own when it sent one, else a new UUID"),
        );
        // 401 and 413 are answered before the key is known: no limits to report.
        if metered && !matches!(status.as_str(), "401" | "413") {
            for (name, description) in RATE_LIMIT_HEADERS {
                response
                    .headers
                    .insert((*name).to_owned(), text_header(description));
            }
        }
        if matches!(status.as_str(), "429" | "503") {
            response.headers.insert(
                "Retry-After".to_owned(),
                text_header("Seconds until a retry can succeed; on 429 equal to the `t=` of the refusing limit in `RateLimit`"),
            );
        }
    }
}

const RATE_LIMIT_HEADERS: &[(&str, &str)] = &[
    ("X-RateLimit-Limit", "The monthly quota; absent for unlimited plans"),
    ("X-RateLimit-Remaining", "Quota minus calls used after this request, never below 0; absent for unlimited plans"),
    ("X-RateLimit-Reset", "End of the billing period (RFC 3339); absent for unlimited plans"),
    ("RateLimit-Policy", "`\"minute\";q=<per minute>;w=60, \"monthly\";q=<quota>;w=<seconds in period>` (IETF draft)"),
    ("RateLimit", "`\"minute\";r=<left>;t=<seconds>, \"monthly\";r=<left>;t=<seconds>` (IETF draft)"),
];

fn text_header(description: &str) -> Header {
    let mut header = Header::new(Object::with_type(Type::String));
    header.description = Some(description.to_owned());
    header
}

fn signature_parameter() -> Parameter {
    let mut parameter = Parameter::new("X-Tally-Signature");
    parameter.parameter_in = ParameterIn::Header;
    parameter.required = Required::False;
    parameter.description = Some(
        "`sha256=<hex>`: HMAC-SHA256 of the raw body keyed with the API key; required when the key requires signatures"
            .to_owned(),
    );
    parameter.schema = Some(Schema::Object(Object::with_type(Type::String)).into());
    parameter
}

/// `/graphql`, opaque here: its operations are described by `schema.graphql`.
fn graphql_path() -> PathItem {
    let any_json = || ContentBuilder::new().schema(Some(Object::new())).build();
    let post = OperationBuilder::new()
        .tag("graphql")
        .summary(Some("A GraphQL operation (see schema.graphql)"))
        .description(Some(
            "`Authorization: Bearer <JWT>` from `signUp` or `login`. Errors are GraphQL errors with `extensions.code`.",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new()
                                .property("query", Object::with_type(Type::String))
                                .property("operationName", Object::with_type(Type::String))
                                .property("variables", Object::with_type(Type::Object))
                                .required("query"),
                        ))
                        .build(),
                )
                .required(Some(Required::True))
                .build(),
        ))
        .response(
            "200",
            // `application/graphql-response+json` when the client's `Accept` asks for it (the
            // GraphQL-over-HTTP draft), plain JSON otherwise.
            ResponseBuilder::new()
                .description("The GraphQL response: `data` and/or `errors`")
                .content("application/json", any_json())
                .content("application/graphql-response+json", any_json()),
        )
        .response(
            "400",
            ResponseBuilder::new()
                .description("Not a GraphQL request")
                .content("application/json", any_json()),
        )
        .response(
            "413",
            ResponseBuilder::new()
                .description("`PAYLOAD_TOO_LARGE`: body over 256 KiB")
                .content("application/json", any_json()),
        );
    let get = OperationBuilder::new()
        .tag("graphql")
        .summary(Some("GraphiQL, the in-browser GraphQL IDE"))
        .response(
            "200",
            ResponseBuilder::new().description("GraphiQL").content(
                "text/html",
                ContentBuilder::new()
                    .schema(Some(Object::with_type(Type::String)))
                    .build(),
            ),
        );
    let mut item = PathItem::new(HttpMethod::Post, post);
    item.get = Some(get.build());
    item
}
