//! The GraphQL endpoint itself: limits, batches, error codes, GraphiQL and the SDL.

use crate::common;

use axum::http::StatusCode;
use common::{error_code, error_message, TestApp};
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
    let token = app.sign_up("alias@example.com").await.token;
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
        error_message(&body)
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
    let unknown = app.graphql_error_code(None, "{ nope }").await;
    assert_eq!(unknown, "BAD_USER_INPUT");
    let token = app.sign_up("args@example.com").await.token;
    let wrong_type = app
        .graphql_error_code(
            Some(&token),
            "mutation { rotateApiKey(id: \"x\", gracePeriodSeconds: \"soon\") { key } }",
        )
        .await;
    assert_eq!(wrong_type, "BAD_USER_INPUT");
}

#[tokio::test]
async fn internal_errors_are_masked() {
    let app = TestApp::new().await;
    let token = app.sign_up("masked@example.com").await.token;
    app.state.db.close_by_ref().await.unwrap();
    let body = app
        .graphql(Some(&token), "{ apiKeys { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "INTERNAL");
    assert_eq!(body["errors"][0]["message"], "Internal error");
}

fn typename_aliases(n: usize) -> String {
    let aliases: String = (0..n).map(|i| format!("t{i}: __typename ")).collect();
    format!("{{ {aliases} }}")
}

#[tokio::test]
async fn every_field_counts_towards_the_limit_typename_and_introspection_included() {
    let app = TestApp::new().await;
    for n in [1000, 5000] {
        let body = app.graphql(None, &typename_aliases(n), json!({})).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{n} aliases");
        assert!(body["data"].is_null(), "{n} aliases");
        assert!(error_message(&body).contains("too complex"), "{body}");
    }
    let fits = app
        .graphql_ok(None, &typename_aliases(999), json!({}))
        .await;
    assert_eq!(fits["t998"], "QueryRoot");

    // Introspection fields count too, and a fragment counts wherever it is spread.
    let schema_aliases: String = (0..500)
        .map(|i| format!("s{i}: __schema {{ __typename }} "))
        .collect();
    let body = app
        .graphql(None, &format!("{{ {schema_aliases} }}"), json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let fragment_fields: String = (0..100).map(|i| format!("f{i}: __typename ")).collect();
    let spreads: String = (0..10)
        .map(|i| format!("p{i}: plans {{ ...F }} "))
        .collect();
    let body = app
        .graphql(
            None,
            &format!("{{ {spreads} }} fragment F on Plan {{ {fragment_fields} }}"),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn a_nul_character_in_any_text_argument_is_bad_input_and_changes_nothing() {
    use sea_orm::{EntityTrait, PaginatorTrait};
    let app = TestApp::new().await;
    let token = app.sign_up("nul@example.com").await.token;
    let admin = app.admin_token().await;
    let create_key = "mutation($n: String!) { createApiKey(name: $n) { key } }";
    let update_plan =
        "mutation($i: PlanInput!) { adminUpdatePlan(code: FREE, input: $i) { name } }";
    let cases = [
        (
            None,
            common::SIGN_UP,
            json!({ "e": "new@example.com", "p": common::PASSWORD, "n": "Ac\u{0}me" }),
            "accountName",
        ),
        (
            None,
            common::SIGN_UP,
            json!({ "e": "n\u{0}ew@example.com", "p": common::PASSWORD, "n": "Acme" }),
            "email",
        ),
        (
            None,
            common::SIGN_UP,
            json!({ "e": "new@example.com", "p": "correct\u{0}horse", "n": "Acme" }),
            "password",
        ),
        (
            None,
            common::LOGIN,
            json!({ "e": "nul@example.com\u{0}", "p": common::PASSWORD }),
            "email",
        ),
        (Some(&token), create_key, json!({ "n": "ci\u{0}" }), "name"),
        (
            Some(&admin),
            update_plan,
            json!({ "i": { "name": "Free\u{0}" } }),
            "input.name",
        ),
    ];
    for (auth, query, variables, field) in cases {
        let body = app
            .graphql(auth.map(String::as_str), query, variables)
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["data"].is_null(), "{body}");
        assert!(
            body["errors"][0]["extensions"]["fields"][field].is_array(),
            "{field}: {body}"
        );
        assert!(error_message(&body).contains("NUL character"), "{body}");
    }
    // Written into the query itself (a GraphQL string escape) rather than sent as a variable.
    let inline = app
        .graphql(
            Some(&token),
            r#"mutation { createApiKey(name: "ci\u0000") { key } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&inline), "BAD_USER_INPUT", "{inline}");
    let id = app
        .graphql(
            Some(&token),
            r#"mutation { revokeApiKey(id: "\u0000") { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&id), "BAD_USER_INPUT", "{id}");

    let db = &app.state.db;
    let users = tally::entity::user::Entity::find().count(db).await.unwrap();
    let accounts = tally::entity::account::Entity::find()
        .count(db)
        .await
        .unwrap();
    let keys = tally::entity::api_key::Entity::find()
        .count(db)
        .await
        .unwrap();
    assert_eq!((users, accounts, keys), (2, 2, 0), "nothing was stored");
    let plans = app
        .graphql_ok(None, "{ plans { code name } }", json!({}))
        .await;
    assert_eq!(plans["plans"][0], json!({ "code": "FREE", "name": "Free" }));
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_json_413() {
    let app = TestApp::new().await;
    let query = format!("{{ plans {{ code }} }} # {}", "x".repeat(300 * 1024));
    let response = app
        .post_json("/graphql", None, &json!({ "query": query }))
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json(),
        json!({ "error": "Payload too large", "code": "PAYLOAD_TOO_LARGE" })
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_without_waiting_for_the_body() {
    let app = TestApp::new().await;
    let response = app
        .post_stalled("/graphql", 300 * 1024, "{\"query\": \"")
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json(),
        json!({ "error": "Payload too large", "code": "PAYLOAD_TOO_LARGE" })
    );
}

/// The attack document: each fragment spreads the next one twice, `depth` levels deep, and the
/// last one ends in `tail` (`__typename`, or a spread of an undefined fragment: no field at all).
fn doubling_fragments(depth: usize, tail: &str) -> String {
    let chain: Vec<String> = (0..depth)
        .map(|i| {
            format!(
                "fragment F{i} on QueryRoot {{ ...F{next} ...F{next} }}",
                next = i + 1
            )
        })
        .collect();
    format!(
        "query {{ ...F0 }} {} fragment F{depth} on QueryRoot {{ {tail} }}",
        chain.join(" ")
    )
}

/// Sends `query` and returns its answer and how long it took.
async fn timed(app: &TestApp, query: &str) -> (serde_json::Value, std::time::Duration) {
    let started = std::time::Instant::now();
    let response = app
        .post_json("/graphql", None, &json!({ "query": query }))
        .await;
    let took = started.elapsed();
    assert_eq!(response.status, StatusCode::OK);
    (response.json(), took)
}

#[tokio::test]
async fn fragments_that_double_at_every_level_are_refused_at_once() {
    let app = TestApp::new().await;
    // 1.3 KB that expands to 2^30 selections: it used to keep a core busy for most of a minute.
    // Ending in a field it selects too many fields; ending in nothing, too many spreads.
    for (tail, why) in [
        ("__typename", "more than 999 fields"),
        ("...Undefined", "more than 500 fragment spreads"),
    ] {
        let query = doubling_fragments(30, tail);
        assert!(query.len() < 1500, "{}", query.len());
        let (body, took) = timed(&app, &query).await;
        assert!(
            took < std::time::Duration::from_millis(500),
            "{tail}: took {took:?}"
        );
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(body["data"].is_null(), "{body}");
        assert!(error_message(&body).contains(why), "{tail}: {body}");
    }
    // Unused, the same fragments are refused as fast: every definition is measured.
    let unused =
        doubling_fragments(30, "__typename").replacen("query { ...F0 }", "query { __typename }", 1);
    let (body, took) = timed(&app, &unused).await;
    assert!(
        took < std::time::Duration::from_millis(500),
        "took {took:?}"
    );
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn a_fragment_that_spreads_itself_is_refused_at_once() {
    let app = TestApp::new().await;
    for query in [
        "query { ...F0 } fragment F0 on QueryRoot { ...F0 ...F0 }",
        "query { ...F0 } fragment F0 on QueryRoot { ...F1 ...F1 } fragment F1 on QueryRoot { __typename ...F0 ...F0 }",
        "query { plans { ...P } } fragment P on Plan { code ... on Plan { ...P ...P } }",
    ] {
        let (body, took) = timed(&app, query).await;
        assert!(
            took < std::time::Duration::from_millis(500),
            "{query}: took {took:?}"
        );
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(error_message(&body).contains("within itself"), "{body}");
    }
}

#[tokio::test]
async fn too_many_fragments_or_nesting_through_them_are_refused() {
    let app = TestApp::new().await;
    // 101 distinct fragments, each used once.
    let spreads: String = (0..101).map(|i| format!("...F{i} ")).collect();
    let fragments: String = (0..101)
        .map(|i| format!("fragment F{i} on QueryRoot {{ f{i}: __typename }} "))
        .collect();
    let (body, took) = timed(&app, &format!("query {{ {spreads} }} {fragments}")).await;
    assert!(
        took < std::time::Duration::from_millis(500),
        "took {took:?}"
    );
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(error_message(&body).contains("100 fragments"), "{body}");

    // A chain of fragments each spreading the next once, nested deeper than the limit.
    let chain: String = (0..60)
        .map(|i| format!("fragment F{i} on QueryRoot {{ ...F{} }} ", i + 1))
        .collect();
    let (body, _) = timed(
        &app,
        &format!("query {{ ...F0 }} {chain} fragment F60 on QueryRoot {{ __typename }}"),
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(error_message(&body).contains("nested too deep"), "{body}");
}

#[tokio::test]
async fn fragments_spread_in_many_places_still_work() {
    let app = TestApp::new().await;
    let aliases: String = (0..50)
        .map(|i| format!("p{i}: plans {{ ...P }} "))
        .collect();
    let data = app
        .graphql_ok(
            None,
            &format!(
                "{{ {aliases} }} fragment P on Plan {{ code ...Q }} fragment Q on Plan {{ name }}"
            ),
            json!({}),
        )
        .await;
    assert_eq!(data["p49"][0], json!({ "code": "FREE", "name": "Free" }));
}
