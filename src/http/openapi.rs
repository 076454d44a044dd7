//! The OpenAPI 3.1 document of the REST routes, built from the handlers' `#[utoipa::path]`
//! annotations (collected where the routes are declared, `http::rest_routes`) and body types;
//! served at `GET /openapi.json`, printed by `tally openapi`, and checked in as `openapi.json`
//! (a test fails when the copy drifts).
//!
//! What every route shares — `x-request-id`, the rate-limit headers of the metered routes,
//! `Retry-After`, the `X-Tally-Signature` header — is added in one place (`SharedConventions`)
//! rather than repeated in every annotation. GraphQL has its own schema (`schema.graphql`); its
//! route is listed here as opaque.

use serde_json::Value;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, OperationBuilder, Parameter, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HttpMethod, Object, ObjectBuilder, Required, Schema, Type};
use utoipa::{Modify, OpenApi};

use crate::http::billing_webhook::{BillingEvent, BillingEventData};
use crate::http::code::ApiCode;
use crate::http::events::{EventsRequest, FinishedCall};
use crate::http::install::InstallRequest;
use crate::http::response_bodies::{
    ErrorBody, EventsAccepted, Health, InstallRecorded, NotReady, Ready, VerifyAllowed,
    VerifyRefusal, WebhookReceived,
};
use crate::http::track::TrackRequest;
use crate::http::verify::VerifyRequest;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tally REST API",
        description = "Usage metering: hooks report tool uses and installs, gateways verify keys and report finished calls, the billing provider changes plans. Every error body is `{\"error\", \"code\"}`; see docs/rest.md.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
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
/// The document of the REST routes: their paths and the schemas they name, as collected from
/// the handlers' annotations (`http::rest_routes`), with what every route shares added, as
/// pretty JSON.
pub fn render(routes: utoipa::openapi::OpenApi) -> String {
    let mut api = RestApi::openapi();
    api.merge(routes);
    SharedConventions.modify(&mut api);
    let mut document = serde_json::to_value(api).unwrap_or_default();
    mark_required_headers(&mut document);
    let mut json = serde_json::to_string_pretty(&document).unwrap_or_default();
    json.push('\n');
    json
}

fn mark_required_headers(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut() {
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut)
                else {
                    continue;
                };
                for (name, header) in headers.iter_mut() {
                    let always =
                        name == "x-request-id" || (name == "Retry-After" && status == "429");
                    if let (true, Some(header)) = (always, header.as_object_mut()) {
                        header.insert("required".to_owned(), true.into());
                    }
                }
            }
        }
    }
}

/// Serves the OpenAPI document.
const METERED: [&str; 3] = ["/api/track", "/api/v1/verify", "/api/v1/events"];

/// Routes whose body may be left out (it reads as `{}`).
const OPTIONAL_BODY: [&str; 2] = ["/api/v1/verify", "/api/install-callback"];

struct SharedConventions;

impl Modify for SharedConventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi
            .paths
            .paths
            .insert("/graphql".to_owned(), graphql_path());
        for (path, item) in openapi.paths.paths.iter_mut() {
            let metered = METERED.contains(&path.as_str());
            let optional_body = OPTIONAL_BODY.contains(&path.as_str());
            for operation in [item.get.as_mut(), item.post.as_mut()]
                .into_iter()
                .flatten()
            {
                if let (true, Some(body)) = (optional_body, operation.request_body.as_mut()) {
                    body.required = Some(Required::False);
                }
                if metered {
                    operation
                        .parameters
                        .get_or_insert_with(Vec::new)
                        .push(signature_parameter());
                }
                add_response_headers(operation, metered);
            }
        }
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

fn nullable(kind: Type) -> Object {
    Object::with_type(SchemaType::from_iter([kind, Type::Null]))
}

/// `/graphql`, opaque here: its operations are described by `schema.graphql`.
fn graphql_path() -> PathItem {
    let any_json = || ContentBuilder::new().schema(Some(Object::new())).build();
    let post = OperationBuilder::new()
        .tag("graphql")
        .summary(Some("A GraphQL operation (see schema.graphql)"))
        .description(Some(
            "`Authorization: Bearer <JWT>` from `signUp` or `login`. Errors, a missing or empty `query` included, are GraphQL errors with `extensions.code` in a 200 answer.",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new()
                                .property("query", Object::with_type(Type::String))
                                .property("operationName", nullable(Type::String))
                                .property("variables", nullable(Type::Object)),
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

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use utoipa::OpenApi;

    use crate::domain::billing::webhook::event::MAX_ID_LEN;
    use crate::domain::payload::*;

    /// The longest string of each field: schema, field, the length the domain enforces.
    const MAX_LENGTHS: [(&str, &str, usize); 15] = [
        ("TrackRequest", "skill_id", MAX_NAME_LEN),
        ("TrackRequest", "tool_name", MAX_NAME_LEN),
        ("TrackRequest", "hook_event", MAX_HOOK_EVENT_LEN),
        ("TrackRequest", "tool_input_snippet", MAX_SNIPPET_LEN),
        ("TrackRequest", "tool_output_snippet", MAX_SNIPPET_LEN),
        ("TrackRequest", "event_id", MAX_EVENT_ID_LEN),
        ("VerifyRequest", "endpoint", MAX_ENDPOINT_LEN),
        ("VerifyRequest", "method", MAX_METHOD_LEN),
        ("VerifyRequest", "event_id", MAX_EVENT_ID_LEN),
        ("FinishedCall", "event_id", MAX_EVENT_ID_LEN),
        ("FinishedCall", "endpoint", MAX_ENDPOINT_LEN),
        ("FinishedCall", "method", MAX_METHOD_LEN),
        ("EventsRequest", "events", MAX_BATCH),
        ("BillingEvent", "id", MAX_ID_LEN),
        ("BillingEvent", "type", MAX_ID_LEN),
    ];

    /// The range of each number: schema, field, least and greatest value the domain accepts.
    const RANGES: [(&str, &str, i64, i64); 3] = [
        ("VerifyRequest", "cost", 1, MAX_COST),
        (
            "FinishedCall",
            "status_code",
            MIN_STATUS_CODE,
            MAX_STATUS_CODE,
        ),
        ("FinishedCall", "response_time_ms", 0, MAX_RESPONSE_TIME_MS),
    ];

    /// The `#[schema(...)]` bounds are literals (utoipa reads no constants there): each must be
    /// the bound the domain enforces.
    #[test]
    fn documented_bounds_are_the_enforced_ones() {
        let document = serde_json::to_value(super::RestApi::openapi()).unwrap();
        let schemas = &document["components"]["schemas"];
        for (schema, field, max) in MAX_LENGTHS {
            let property = &schemas[schema]["properties"][field];
            let keyword = if field == "events" {
                "maxItems"
            } else {
                "maxLength"
            };
            assert_eq!(property[keyword], Value::from(max), "{schema}.{field}");
        }
        assert_eq!(
            schemas["EventsRequest"]["properties"]["events"]["minItems"],
            1
        );
        for (schema, field, min, max) in RANGES {
            let property = &schemas[schema]["properties"][field];
            assert_eq!(property["minimum"], Value::from(min), "{schema}.{field}");
            assert_eq!(property["maximum"], Value::from(max), "{schema}.{field}");
        }
    }
}
