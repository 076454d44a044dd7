//! The GraphQL endpoint itself: limits, batches, error codes, GraphiQL and the SDL.

mod common;

use axum::http::StatusCode;
use common::{error_code, TestApp};
use serde_json::json;

#[tokio::test]
async fn graphiql_is_served_on_get() {
    let app = TestApp::new().await;
    let response = app.get("/graphql").await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&response.body)
        .to_lowercase()
        .contains("graphiql"));
}

#[tokio::test]
async fn a_batch_of_operations_is_refused() {
    let app = TestApp::new().await;
    let batch = json!([{ "query": "{ plans { code } }" }, { "query": "{ plans { code } }" }]);
    let response = app.post_json("/graphql", None, &batch).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&response.json()), "BAD_USER_INPUT");
    assert!(response.json().get("data").is_none());
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_a_code() {
    let app = TestApp::new().await;
    let response = app
        .post_raw("/graphql", None, &[], "{ plans { code } }")
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&response.json()), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_thousand_aliases_are_refused_before_any_resolver_runs() {
    let app = TestApp::new().await;
    let (token, _, _) = app.sign_up("alias@example.com").await;
    let aliases: String = (0..1000)
        .map(|i| format!("k{i}: createApiKey(name: \"k{i}\") {{ key }} "))
        .collect();
    let body = app
        .graphql(
            Some(&token),
            &format!("mutation {{ {aliases} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(body["data"].is_null());
    let keys = app
        .graphql_ok(Some(&token), "{ apiKeys { id } }", json!({}))
        .await;
    assert_eq!(keys["apiKeys"], json!([]), "no resolver ran");
}

#[tokio::test]
async fn an_overly_deep_query_is_refused() {
    let app = TestApp::new().await;
    let deep = format!("{{ {}__typename{} }}", "__schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType {", "} } } } } } } } } } } } } } } }");
    let body = app.graphql(None, &deep, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("nested too deep"),
        "{body}"
    );
}

#[tokio::test]
async fn graphiqls_introspection_query_fits_the_limits() {
    let app = TestApp::new().await;
    let introspection = r#"query IntrospectionQuery { __schema { queryType { name } mutationType { name }
      types { ...FullType } directives { name description locations args { ...InputValue } } } }
      fragment FullType on __Type { kind name description
        fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
        inputFields { ...InputValue } interfaces { ...TypeRef }
        enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
      fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
      fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
        ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }"#;
    let data = app.graphql_ok(None, introspection, json!({})).await;
    assert!(data["__schema"]["types"].as_array().unwrap().len() > 10);
}

#[tokio::test]
async fn unknown_fields_and_bad_arguments_carry_a_code() {
    let app = TestApp::new().await;
    let unknown = app.graphql(None, "{ nope }", json!({})).await;
    assert_eq!(error_code(&unknown), "BAD_USER_INPUT");
    let (token, _, _) = app.sign_up("args@example.com").await;
    let wrong_type = app
        .graphql(
            Some(&token),
            "mutation { rotateApiKey(id: \"x\", gracePeriodSeconds: \"soon\") { key } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&wrong_type), "BAD_USER_INPUT");
}

#[tokio::test]
async fn internal_errors_are_masked() {
    let app = TestApp::new().await;
    let (token, _, _) = app.sign_up("masked@example.com").await;
    app.state.db.close_by_ref().await.unwrap();
    let body = app
        .graphql(Some(&token), "{ apiKeys { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "INTERNAL");
    assert_eq!(body["errors"][0]["message"], "Internal error");
}

/// A body that sends `first` and then nothing, never ending.
fn stalled_body(first: &'static str) -> axum::body::Body {
    use futures::StreamExt;
    let chunk = futures::stream::once(async move {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(first.as_bytes()))
    });
    axum::body::Body::from_stream(chunk.chain(futures::stream::pending()))
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_json_413() {
    let app = TestApp::new().await;
    let query = format!("{{ plans {{ code }} }} # {}", "x".repeat(300 * 1024));
    let response = app
        .post_json("/graphql", None, &json!({ "query": query }))
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json(), json!({ "error": "Payload too large" }));
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_without_waiting_for_the_body() {
    let app = TestApp::new().await;
    let request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("content-length", (300 * 1024).to_string())
        .body(stalled_body("{\"query\": \""))
        .unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(2), app.request(request))
        .await
        .expect("413 at once, not after waiting for the body");
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json(), json!({ "error": "Payload too large" }));
}
