//! Cursor pagination of `apiKeysConnection` and `invoicesConnection`.

use crate::common;

use chrono::{TimeZone, Utc};
use common::{error_code, TestApp};
use serde_json::{json, Value};

const KEYS_PAGE: &str = "query($f: Int!, $a: String, $r: Boolean!) { apiKeysConnection(first: $f, after: $a, includeRevoked: $r) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { id } } nodes { id status } } }";

const INVOICES_PAGE: &str = "query($f: Int!, $a: String, $acc: ID) { invoicesConnection(first: $f, after: $a, accountId: $acc) { totalCount pageInfo { hasNextPage endCursor } nodes { id periodStart } } }";

fn ids(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A connection: the query of one page and the field that answers it.
type Connection = (&'static str, &'static str);
const KEYS: Connection = (KEYS_PAGE, "apiKeysConnection");
const INVOICES: Connection = (INVOICES_PAGE, "invoicesConnection");

/// Walks every page of a connection, `first` at a time.
async fn walk(
    app: &TestApp,
    token: &str,
    (query, field): Connection,
    vars: Value,
    first: i64,
) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut vars = vars.clone();
        vars["f"] = json!(first);
        vars["a"] = after.clone();
        let data = app.graphql_ok(Some(token), query, vars).await;
        let page = data[field].clone();
        let more = page["pageInfo"]["hasNextPage"].as_bool().unwrap();
        after = page["pageInfo"]["endCursor"].clone();
        pages.push(page);
        if !more {
            return pages;
        }
        assert!(pages.len() < 20, "pagination does not end");
    }
}

#[tokio::test]
async fn key_pages_follow_each_other_to_the_same_list_as_api_keys() {
    let app = TestApp::new().await;
    let token = app.sign_up("pages@example.com").await.token;
    let mut revoked = None;
    for n in 0..25 {
        let (_, id) = app.create_key(&token, false).await;
        if n == 7 {
            revoked = Some(id);
        }
        // Several keys share a creation instant: the id breaks the tie.
        if n % 3 == 0 {
            app.clock.advance(chrono::Duration::seconds(1));
        }
    }
    let revoked = revoked.unwrap();
    app.graphql_ok(
        Some(&token),
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({ "id": revoked }),
    )
    .await;

    let pages = walk(&app, &token, KEYS, json!({ "r": false }), 10).await;
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["nodes"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [10, 10, 4]);
    assert_eq!(pages[0]["totalCount"], 24);
    assert_eq!(pages[0]["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(pages[1]["pageInfo"]["hasPreviousPage"], true);
    for page in &pages {
        let edge_ids: Vec<Value> = page["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].clone())
            .collect();
        assert_eq!(
            Value::from(edge_ids),
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].clone())
                .collect::<Value>()
        );
        let last_cursor = page["edges"].as_array().unwrap().last().unwrap()["cursor"].clone();
        assert_eq!(last_cursor, page["pageInfo"]["endCursor"]);
    }
    let paged: Vec<String> = pages.iter().flat_map(|p| ids(&p["nodes"])).collect();
    let listed = app
        .graphql_ok(Some(&token), "{ apiKeys { id } }", json!({}))
        .await;
    assert_eq!(paged, ids(&listed["apiKeys"]));
    assert!(!paged.contains(&revoked));

    let with_revoked = walk(&app, &token, KEYS, json!({ "r": true }), 100).await;
    assert_eq!(with_revoked.len(), 1);
    assert_eq!(with_revoked[0]["totalCount"], 25);
    assert!(ids(&with_revoked[0]["nodes"]).contains(&revoked));
}

#[tokio::test]
async fn a_page_size_outside_1_to_100_or_a_foreign_cursor_is_bad_input() {
    let app = TestApp::new().await;
    let token = app.sign_up("bad-pages@example.com").await.token;
    for first in [0, 101, -1] {
        let body = app
            .graphql(Some(&token), KEYS_PAGE, json!({ "f": first, "r": false }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "first {first}: {body}");
    }
    for cursor in ["not a cursor", "eyJ4IjoxfQ"] {
        let body = app
            .graphql(
                Some(&token),
                KEYS_PAGE,
                json!({ "f": 5, "a": cursor, "r": false }),
            )
            .await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "cursor {cursor}: {body}"
        );
    }
    let anonymous = app
        .graphql(None, KEYS_PAGE, json!({ "f": 5, "r": false }))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn invoice_pages_run_newest_period_first_and_stay_within_the_account() {
    let app = TestApp::new().await;
    let account = app.sign_up("invoiced@example.com").await.account_id;
    // Four ended periods (November to February) once it is March.
    app.clock
        .set(Utc.with_ymd_and_hms(2027, 3, 2, 0, 0, 0).unwrap());
    let token = app.login("invoiced@example.com").await;
    let run = app
        .graphql_as_admin(
            "mutation { adminCloseBillingPeriods { invoicesCreated } }",
            json!({}),
        )
        .await;
    assert!(
        run["adminCloseBillingPeriods"]["invoicesCreated"]
            .as_i64()
            .unwrap()
            >= 4,
        "{run}"
    );

    let pages = walk(&app, &token, INVOICES, json!({}), 3).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0]["totalCount"], 4);
    let starts: Vec<String> = pages
        .iter()
        .flat_map(|p| p["nodes"].as_array().unwrap().clone())
        .map(|n| n["periodStart"].as_str().unwrap()[..7].to_owned())
        .collect();
    assert_eq!(starts, ["2027-02", "2027-01", "2026-12", "2026-11"]);

    // An admin may page through any account's invoices; a member only through their own.
    let admin = app.admin_token().await;
    let theirs = walk(&app, &admin, INVOICES, json!({ "acc": account }), 100).await;
    assert_eq!(theirs[0]["totalCount"], 4);
    let stranger = app.sign_up("stranger@example.com").await.token;
    let body = app
        .graphql(
            Some(&stranger),
            INVOICES_PAGE,
            json!({ "f": 10, "acc": account }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
}
