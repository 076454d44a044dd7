//! Creating, listing, revoking and rotating API keys, and who may touch which key.

use crate::common;

use common::{error_code, TestApp};
use serde_json::{json, Value};
use tally::clock::Clock;
use tally::domain::keys;

/// The checksum as the contract defines it, written independently of the server's code: CRC-32
/// (IEEE) of the random part in base 62 (`0-9A-Za-z`), most significant digit first, six digits.
fn contract_checksum(random: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut value = u64::from(crc32fast::hash(random.as_bytes()));
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).unwrap()
}

#[test]
fn the_contract_checksum_matches_a_known_value() {
    // crc32("123456789") is the IEEE check value 0xCBF43926, "3jZRME" in base 62.
    assert_eq!(contract_checksum("123456789"), "3jZRME");
}

const KEY_FIELDS: &str =
    "id name prefix status requireSignature createdAt lastUsedAt expiresAt revokedAt";

async fn list_keys(app: &TestApp, token: &str, include_revoked: bool) -> Vec<Value> {
    let query = format!("query($r: Boolean!) {{ apiKeys(includeRevoked: $r) {{ {KEY_FIELDS} }} }}");
    let data = app
        .graphql_ok(Some(token), &query, json!({ "r": include_revoked }))
        .await;
    data["apiKeys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_created_key_has_the_contract_format_and_is_shown_once() {
    let app = TestApp::new().await;
    let token = app.sign_up("keys@example.com").await.token;
    let body = app
        .graphql(
            Some(&token),
            &format!(r#"mutation {{ createApiKey(name: "ci", requireSignature: true) {{ key apiKey {{ {KEY_FIELDS} }} }} }}"#),
            json!({}),
        )
        .await;
    let created = &body["data"]["createApiKey"];
    let key = created["key"].as_str().unwrap();
    assert_eq!(key.len(), 40);
    assert!(key.starts_with("tly_"));
    assert_eq!(
        &key[34..],
        contract_checksum(&key[4..34]),
        "checksum of {key}"
    );
    assert_eq!(created["apiKey"]["prefix"], &key[..12]);
    assert_eq!(created["apiKey"]["status"], "ACTIVE");
    assert_eq!(created["apiKey"]["requireSignature"], true);

    // The server keeps only the SHA-256 of the key.
    use sea_orm::EntityTrait;
    let stored = tally::entity::api_key::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].key_hash, keys::KeyDigest::of(key).to_hex());

    // Nothing read later contains the plaintext or the hash.
    let listed = app
        .graphql(
            Some(&token),
            &format!("{{ apiKeys {{ {KEY_FIELDS} }} }}"),
            json!({}),
        )
        .await
        .to_string();
    assert!(!listed.contains(key));
    assert!(!listed.contains(&stored[0].key_hash));
    assert!(!body.to_string().contains(&stored[0].key_hash));
}

#[tokio::test]
async fn create_refuses_a_blank_name_and_a_past_expiry() {
    let app = TestApp::new().await;
    let token = app.sign_up("bad@example.com").await.token;
    let create =
        "mutation($n: String!, $e: DateTime) { createApiKey(name: $n, expiresAt: $e) { key } }";
    let blank = app
        .graphql(Some(&token), create, json!({ "n": " ", "e": null }))
        .await;
    assert_eq!(error_code(&blank), "BAD_USER_INPUT");
    let past = app
        .graphql(
            Some(&token),
            create,
            json!({ "n": "old", "e": "2020-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(error_code(&past), "BAD_USER_INPUT");
    assert!(list_keys(&app, &token, true).await.is_empty());
    let anonymous = app
        .graphql(None, create, json!({ "n": "x", "e": null }))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn keys_expire_on_their_date() {
    let app = TestApp::new().await;
    let token = app.sign_up("expiry@example.com").await.token;
    let expires = common::default_start() + chrono::Duration::hours(1);
    app.graphql_ok(
        Some(&token),
        "mutation($e: DateTime) { createApiKey(name: \"short-lived\", expiresAt: $e) { key } }",
        json!({ "e": expires.to_rfc3339() }),
    )
    .await;
    assert_eq!(list_keys(&app, &token, false).await[0]["status"], "ACTIVE");
    app.clock.advance(chrono::Duration::hours(1));
    let token = app.login("expiry@example.com").await; // the old token expired too
    let listed = list_keys(&app, &token, false).await;
    assert_eq!(listed.len(), 1, "expired keys are still listed");
    assert_eq!(listed[0]["status"], "EXPIRED");
}

#[tokio::test]
async fn revoked_keys_are_listed_only_when_asked() {
    let app = TestApp::new().await;
    let token = app.sign_up("revoke@example.com").await.token;
    let (_, kept) = app.create_key(&token, false).await;
    let (plaintext, revoked) = app.create_key(&token, false).await;
    let data = app
        .graphql_ok(
            Some(&token),
            "mutation($id: ID!) { revokeApiKey(id: $id) { id status revokedAt } }",
            json!({ "id": revoked }),
        )
        .await;
    assert_eq!(data["revokeApiKey"]["status"], "REVOKED");
    assert!(data["revokeApiKey"]["revokedAt"].is_string());

    let active: Vec<_> = list_keys(&app, &token, false)
        .await
        .iter()
        .map(|k| k["id"].clone())
        .collect();
    assert_eq!(active, vec![json!(kept)]);
    assert_eq!(list_keys(&app, &token, true).await.len(), 2);

    // The lookup used by ingestion no longer accepts it.
    let found = app.resolve_key(&plaintext).await;
    assert_eq!(found.status(app.clock.now()), keys::KeyStatus::Revoked);
}

#[tokio::test]
async fn revocation_takes_effect_at_once_even_for_a_cached_key() {
    let app = TestApp::new().await;
    let token = app.sign_up("cache@example.com").await.token;
    let (plaintext, id) = app.create_key(&token, false).await;
    let now = app.clock.now();
    // Warm the cache.
    let cached = app.resolve_key(&plaintext).await;
    assert_eq!(cached.status(now), keys::KeyStatus::Active);
    app.graphql_ok(
        Some(&token),
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    let after = app.resolve_key(&plaintext).await;
    assert_eq!(after.status(now), keys::KeyStatus::Revoked);
}

#[tokio::test]
async fn another_accounts_key_is_not_found_for_revoke_and_rotate() {
    let app = TestApp::new().await;
    let owner = app.sign_up("owner@example.com").await.token;
    let intruder = app.sign_up("intruder@example.com").await.token;
    let (_, key_id) = app.create_key(&owner, false).await;
    let revoke = app
        .graphql(
            Some(&intruder),
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": key_id }),
        )
        .await;
    assert_eq!(error_code(&revoke), "NOT_FOUND");
    let rotate = app
        .graphql(
            Some(&intruder),
            "mutation($id: ID!) { rotateApiKey(id: $id) { key } }",
            json!({ "id": key_id }),
        )
        .await;
    assert_eq!(error_code(&rotate), "NOT_FOUND");
    let unknown = app
        .graphql_error_code(
            Some(&intruder),
            "mutation { revokeApiKey(id: \"no-such-key\") { id } }",
        )
        .await;
    assert_eq!(unknown, "NOT_FOUND");
    // The owner's key is untouched and the intruder does not see it.
    assert_eq!(list_keys(&app, &owner, false).await[0]["status"], "ACTIVE");
    assert!(list_keys(&app, &intruder, true).await.is_empty());
}

#[tokio::test]
async fn an_admin_may_revoke_any_key() {
    let app = TestApp::new().await;
    let owner = app.sign_up("member@example.com").await.token;
    let (_, key_id) = app.create_key(&owner, false).await;
    let data = app
        .graphql_as_admin(
            "mutation($id: ID!) { revokeApiKey(id: $id) { status } }",
            json!({ "id": key_id }),
        )
        .await;
    assert_eq!(data["revokeApiKey"]["status"], "REVOKED");
    assert_eq!(list_keys(&app, &owner, true).await[0]["status"], "REVOKED");
}

#[tokio::test]
async fn rotation_without_grace_revokes_the_old_key_at_once() {
    let app = TestApp::new().await;
    let token = app.sign_up("rotate@example.com").await.token;
    let data = app
        .graphql_ok(
            Some(&token),
            r#"mutation { createApiKey(name: "gateway", requireSignature: true) { key apiKey { id } } }"#,
            json!({}),
        )
        .await;
    let old_id = data["createApiKey"]["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_key = data["createApiKey"]["key"].as_str().unwrap().to_owned();
    let rotated = app
        .graphql_ok(
            Some(&token),
            "mutation($id: ID!) { rotateApiKey(id: $id) { key apiKey { id name requireSignature status } } }",
            json!({ "id": old_id }),
        )
        .await;
    let new = &rotated["rotateApiKey"];
    assert_ne!(new["key"], old_key.as_str());
    assert!(keys::parse(new["key"].as_str().unwrap()).is_some());
    assert_eq!(new["apiKey"]["name"], "gateway");
    assert_eq!(new["apiKey"]["requireSignature"], true);
    assert_eq!(new["apiKey"]["status"], "ACTIVE");

    let all = list_keys(&app, &token, true).await;
    let old = all.iter().find(|k| k["id"] == old_id.as_str()).unwrap();
    assert_eq!(old["status"], "REVOKED");
    // A revoked key cannot be rotated again.
    let again = app
        .graphql(
            Some(&token),
            "mutation($id: ID!) { rotateApiKey(id: $id) { key } }",
            json!({ "id": old_id }),
        )
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
}

#[tokio::test]
async fn rotation_with_grace_keeps_the_old_key_working_until_the_grace_ends() {
    let app = TestApp::new().await;
    let token = app.sign_up("grace@example.com").await.token;
    let (old_key, old_id) = app.create_key(&token, false).await;
    app.graphql_ok(
        Some(&token),
        "mutation($id: ID!) { rotateApiKey(id: $id, gracePeriodSeconds: 3600) { key } }",
        json!({ "id": old_id }),
    )
    .await;
    let status_of_old = |keys: Vec<Value>| {
        keys.into_iter()
            .find(|k| k["id"] == old_id.as_str())
            .map(|k| k["status"].clone())
    };
    assert_eq!(
        status_of_old(list_keys(&app, &token, false).await),
        Some(json!("ACTIVE"))
    );
    let resolved = app.resolve_key(&old_key).await;
    assert_eq!(resolved.status(app.clock.now()), keys::KeyStatus::Active);

    app.clock.advance(chrono::Duration::seconds(3600));
    let token = app.login("grace@example.com").await; // the old token expired too
    assert_eq!(status_of_old(list_keys(&app, &token, false).await), None);
    assert_eq!(
        status_of_old(list_keys(&app, &token, true).await),
        Some(json!("REVOKED"))
    );
    assert_eq!(resolved.status(app.clock.now()), keys::KeyStatus::Revoked);
}

#[tokio::test]
async fn rotation_refuses_a_negative_or_huge_grace_period() {
    let app = TestApp::new().await;
    let token = app.sign_up("limits@example.com").await.token;
    let (_, id) = app.create_key(&token, false).await;
    for grace in [-1, 31 * 24 * 3600] {
        let body = app.graphql(Some(&token), "mutation($id: ID!, $g: Int!) { rotateApiKey(id: $id, gracePeriodSeconds: $g) { key } }", json!({ "id": id, "g": grace })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
    }
    assert_eq!(
        list_keys(&app, &token, true).await.len(),
        1,
        "nothing was created"
    );
}

#[tokio::test]
async fn a_bearer_that_is_not_ascii_is_an_invalid_key_on_every_rest_route() {
    use axum::body::Body;
    use axum::http::{HeaderValue, Request, StatusCode};
    let app = TestApp::new().await;
    let token = app.sign_up("bytes@example.com").await.token;
    let (key, _) = app.create_key(&token, false).await;
    let utf8 = format!("Bearer {key}é").into_bytes();
    let latin1 = [format!("Bearer {key}").as_bytes(), b"\xe9"].concat();
    let only_latin1 = b"Bearer \xe9\xe8".to_vec();
    for route in ["/api/track", "/api/v1/verify", "/api/v1/events"] {
        for value in [&utf8, &latin1, &only_latin1] {
            let request = Request::post(route)
                .header("content-type", "application/json")
                .header("authorization", HeaderValue::from_bytes(value).unwrap())
                .body(Body::from("{}"))
                .unwrap();
            let response = app.request(request).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{route}");
            assert_eq!(response.json()["error"], "Invalid key", "{route}");
        }
    }
}
