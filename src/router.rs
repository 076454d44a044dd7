//! Every route and every tower layer, in one place: the REST routes (declared with their OpenAPI
//! operations in `http::rest_routes`), GraphQL and the dashboard.

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::middleware;
use axum::routing::get;
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::graphql::build_schema;
use crate::http::code::ApiCode;
use crate::http::cors::{self, graphql_cors};
use crate::http::dashboard::{self, ASSETS_PREFIX};
use crate::http::request_id::REQUEST_ID;
use crate::http::response_bodies::ErrorBody;
use crate::http::{
    access_log, error, graphql, limited_body, methods, metrics_route, request_id, rest_routes,
};
use crate::state::AppState;

pub fn app(state: AppState) -> Router {
    let schema = build_schema(state.clone());
    let timeout = state.config.request_timeout;

    let mut graphql_routes = Router::new()
        .route("/graphql", get(dashboard::graphiql).post(graphql::execute))
        .layer(Extension(schema));
    if let Some(cors) = graphql_cors(&state.config.cors_origins) {
        graphql_routes = graphql_routes.layer(middleware::from_fn_with_state(
            cors,
            cors::answer_listed_origins,
        ));
    }

    let dashboard_routes = Router::new()
        .route("/", get(dashboard::index))
        .route("/dashboard", get(dashboard::index))
        .route("/dashboard/{*screen}", get(dashboard::index))
        .route(&format!("{ASSETS_PREFIX}/{{*path}}"), get(dashboard::asset));

    // The OpenAPI document is built once by `rest_routes::document`; the one collected here is
    // left unused.
    let (rest_routes, _) = rest_routes::rest_routes().split_for_parts();
    rest_routes
        .merge(graphql_routes)
        .merge(dashboard_routes)
        .route_layer(middleware::from_fn(metrics_route::name_route))
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(request_id::drop_unacceptable))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                // Before the log and the metrics, which name the method.
                .layer(middleware::from_fn(methods::refuse_unknown_methods))
                .layer(middleware::from_fn(access_log::log_request))
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    metrics_route::count_requests,
                ))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(middleware::map_response(error::json_error_bodies))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(middleware::from_fn_with_state(
                    state,
                    limited_body::body_read_deadline,
                )),
        )
}

fn request_span(request: &Request<Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = methods::label(request.method()),
        path = %request.uri().path(),
        request_id
    )
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    let body = serde_json::to_string(&ErrorBody::new(ApiCode::Internal, "Internal error"))
        .unwrap_or_default();
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_answers_500_with_the_internal_code_and_no_detail() {
        let response = panic_response(Box::new("secret detail".to_owned()));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "error": "Internal error", "code": "INTERNAL" })
        );
    }
}
