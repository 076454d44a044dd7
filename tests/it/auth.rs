//! Sign-up, sign-in, `me`, and every way a JWT can be wrong.

use crate::common;

use common::{error_code, TestApp, LOGIN, PASSWORD, SIGN_UP};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

const ME: &str = "{ me { id email role account { id name plan { code } } } }";

#[tokio::test]
async fn sign_up_creates_a_free_account_and_its_member_and_signs_in() {
    let app = TestApp::new().await;
    let data = app
        .graphql_ok(
            None,
            r#"mutation { signUp(email: "Ada@Example.com", password: "correct horse battery", accountName: "Analytical") {
                token user { id email role account { name plan { code monthlyQuota } } } } }"#,
            json!({}),
        )
        .await;
    let user = &data["signUp"]["user"];
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["role"], "MEMBER");
    assert_eq!(user["account"]["name"], "Analytical");
    assert_eq!(user["account"]["plan"]["code"], "FREE");
    assert_eq!(user["account"]["plan"]["monthlyQuota"], 1000);

    let token = data["signUp"]["token"].as_str().unwrap();
    let me = app.graphql_ok(Some(token), ME, json!({})).await;
    assert_eq!(me["me"]["id"], user["id"]);
}

#[tokio::test]
async fn login_returns_a_working_token_and_ignores_email_case() {
    let app = TestApp::new().await;
    app.sign_up("grace@example.com").await;
    let token = app.login("GRACE@example.com").await;
    let me = app.graphql_ok(Some(&token), ME, json!({})).await;
    assert_eq!(me["me"]["email"], "grace@example.com");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::new().await;
    app.sign_up("linus@example.com").await;
    let wrong_password = app
        .graphql(
            None,
            LOGIN,
            json!({ "e": "linus@example.com", "p": "not the password" }),
        )
        .await;
    let unknown_email = app
        .graphql(
            None,
            LOGIN,
            json!({ "e": "nobody@example.com", "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(error_code(&unknown_email), "UNAUTHENTICATED");
    assert_eq!(
        wrong_password["errors"][0]["message"],
        unknown_email["errors"][0]["message"]
    );
    assert!(wrong_password["data"].is_null());
}

#[tokio::test]
async fn sign_up_refuses_bad_input_and_changes_nothing() {
    let app = TestApp::new().await;
    for (email, password, name, field) in [
        ("not-an-email", PASSWORD, "Acme", "email"),
        ("short@example.com", "short", "Acme", "password"),
        ("blank@example.com", PASSWORD, "   ", "accountName"),
    ] {
        let body = app
            .graphql(
                None,
                SIGN_UP,
                json!({ "e": email, "p": password, "n": name }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(
            body["errors"][0]["extensions"]["fields"][field].is_array(),
            "{body}"
        );
    }
    app.sign_up("taken@example.com").await;
    let again = app
        .graphql(
            None,
            SIGN_UP,
            json!({ "e": "Taken@Example.com", "p": PASSWORD, "n": "Other" }),
        )
        .await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    use sea_orm::{EntityTrait, PaginatorTrait};
    let users = tally::entity::user::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    let accounts = tally::entity::account::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!((users, accounts), (1, 1));
}

async fn me_with(app: &TestApp, token: &str) -> Value {
    app.graphql(Some(token), ME, json!({})).await
}

#[tokio::test]
async fn missing_malformed_and_foreign_tokens_are_unauthenticated() {
    let app = TestApp::new().await;
    let missing = app.graphql_error_code(None, ME).await;
    assert_eq!(missing, "UNAUTHENTICATED");
    assert_eq!(
        error_code(&me_with(&app, "not.a.jwt").await),
        "UNAUTHENTICATED"
    );
    // Signed with another secret.
    let foreign = sign(
        &claims("someone", 3600, "tally", "tally"),
        b"another secret",
    );
    assert_eq!(
        error_code(&me_with(&app, &foreign).await),
        "UNAUTHENTICATED"
    );
}

fn claims(sub: &str, expires_in: i64, iss: &str, aud: &str) -> Value {
    let now = common::default_start().timestamp();
    json!({ "sub": sub, "iss": iss, "aud": aud, "iat": now, "exp": now + expires_in })
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn expired_tampered_alg_none_and_wrong_audience_tokens_are_refused() {
    let app = TestApp::new().await;
    let common::SignedUp { token, user_id, .. } = app.sign_up("eve@example.com").await;
    // The genuine token works.
    assert!(me_with(&app, &token).await.get("errors").is_none());

    let expired = sign(&claims(&user_id, -10, "tally", "tally"), b"test secret");
    assert_eq!(
        error_code(&me_with(&app, &expired).await),
        "UNAUTHENTICATED"
    );

    let wrong_audience = sign(
        &claims(&user_id, 3600, "tally", "someone-else"),
        b"test secret",
    );
    assert_eq!(
        error_code(&me_with(&app, &wrong_audience).await),
        "UNAUTHENTICATED"
    );

    let wrong_issuer = sign(&claims(&user_id, 3600, "evil", "tally"), b"test secret");
    assert_eq!(
        error_code(&me_with(&app, &wrong_issuer).await),
        "UNAUTHENTICATED"
    );

    // Payload swapped for another user's id, signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let forged_payload =
        base64_url(&serde_json::to_vec(&claims("someone-else", 3600, "tally", "tally")).unwrap());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(
        error_code(&me_with(&app, &tampered).await),
        "UNAUTHENTICATED"
    );

    // `alg: none` with no signature.
    let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload =
        base64_url(&serde_json::to_vec(&claims(&user_id, 3600, "tally", "tally")).unwrap());
    let unsigned = format!("{header}.{payload}.");
    assert_eq!(
        error_code(&me_with(&app, &unsigned).await),
        "UNAUTHENTICATED"
    );

    // HS512 with the right secret: the algorithm is pinned to HS256.
    let hs512 = encode(
        &Header::new(jsonwebtoken::Algorithm::HS512),
        &claims(&user_id, 3600, "tally", "tally"),
        &EncodingKey::from_secret(b"test secret"),
    )
    .unwrap();
    assert_eq!(error_code(&me_with(&app, &hs512).await), "UNAUTHENTICATED");
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn a_token_stops_working_once_the_clock_passes_its_expiry() {
    let app = TestApp::new().await;
    let token = app.sign_up("clock@example.com").await.token;
    app.clock.advance(chrono::Duration::seconds(3_599));
    assert!(me_with(&app, &token).await.get("errors").is_none());
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(error_code(&me_with(&app, &token).await), "UNAUTHENTICATED");
}

/// Signs in as `email` from the client address `peer`; returns the whole GraphQL answer.
async fn login_from(app: &TestApp, peer: &str, email: &str, password: &str) -> Value {
    let body = json!({ "query": LOGIN, "variables": { "e": email, "p": password } });
    let mut request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let peer: std::net::SocketAddr = peer.parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    app.request(request).await.json()
}

#[tokio::test]
async fn wrong_passwords_from_one_address_lock_out_only_that_address() {
    let app = TestApp::new().await;
    app.sign_up("target@example.com").await;
    let attacker = "203.0.113.66:5000";
    for _ in 0..10 {
        let body = login_from(&app, attacker, "target@example.com", "guess-guess").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
    }
    // The attacker's address is refused, even with the right password...
    let limited = login_from(&app, attacker, "Target@example.com", PASSWORD).await;
    assert_rate_limited(&limited);
    // ...while the user, from an address with no failures, signs in as usual.
    let user = login_from(&app, "198.51.100.7:6000", "target@example.com", PASSWORD).await;
    assert!(user["data"]["login"]["token"].is_string(), "{user}");
    // The limiter reads the service clock: a minute later the attacker's address may try again.
    app.clock.advance(chrono::Duration::seconds(60));
    let again = login_from(&app, attacker, "target@example.com", PASSWORD).await;
    assert!(again["data"]["login"]["token"].is_string(), "{again}");
}

#[tokio::test]
async fn successful_logins_are_not_failures() {
    let app = TestApp::new().await;
    app.sign_up("often@example.com").await;
    for _ in 0..15 {
        let body = login_from(&app, "198.51.100.8:6000", "often@example.com", PASSWORD).await;
        assert!(body["data"]["login"]["token"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn failures_from_many_addresses_reach_a_per_email_backstop() {
    let app = TestApp::with_config(tally::config::Config {
        login_failures_per_email_and_address_per_minute: 2,
        login_failures_per_email_per_minute: 5,
        ..Default::default()
    })
    .await;
    app.sign_up("popular@example.com").await;
    for (peer, tries) in [
        ("203.0.113.1:1", 2),
        ("203.0.113.2:1", 2),
        ("203.0.113.3:1", 1),
    ] {
        for _ in 0..tries {
            let body = login_from(&app, peer, "popular@example.com", "guess-guess").await;
            assert_eq!(error_code(&body), "UNAUTHENTICATED");
        }
    }
    // 5 failures: now every address is refused for this e-mail, and only for it.
    let body = login_from(&app, "198.51.100.9:1", "popular@example.com", PASSWORD).await;
    assert_eq!(error_code(&body), "RATE_LIMITED");
    app.sign_up("bystander@example.com").await;
    let other = login_from(&app, "203.0.113.1:1", "bystander@example.com", PASSWORD).await;
    assert!(other["data"]["login"]["token"].is_string(), "{other}");
    app.clock.advance(chrono::Duration::seconds(60));
    let body = login_from(&app, "198.51.100.9:1", "popular@example.com", PASSWORD).await;
    assert!(body["data"]["login"]["token"].is_string(), "{body}");
}

#[tokio::test]
async fn login_and_sign_up_together_are_limited_per_client_address() {
    let config = tally::config::Config {
        auth_rate_limit_per_minute: 3,
        ..Default::default()
    };
    let app = TestApp::with_config(config).await;
    app.sign_up("one@example.com").await;
    app.login("one@example.com").await;
    app.login("one@example.com").await;
    let limited = app
        .graphql(
            None,
            r#"mutation { signUp(email: "two@example.com", password: "correct horse battery", accountName: "A") { token } }"#,
            json!({}),
        )
        .await;
    assert_rate_limited(&limited);
}

#[tokio::test]
async fn a_token_is_refused_until_its_not_before_time() {
    let app = TestApp::new().await;
    let common::SignedUp { token, user_id, .. } = app.sign_up("patient@example.com").await;
    // Issued tokens carry `nbf` = `iat`.
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["tally"]);
    validation.validate_exp = false;
    let issued = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(b"test secret"),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(issued["nbf"], issued["iat"], "{issued}");

    let mut early = claims(&user_id, 3600, "tally", "tally");
    early["nbf"] = json!(common::default_start().timestamp() + 60);
    let early = sign(&early, b"test secret");
    let refused = me_with(&app, &early).await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED", "{refused}");
    app.clock.advance(chrono::Duration::seconds(59));
    assert_eq!(error_code(&me_with(&app, &early).await), "UNAUTHENTICATED");
    app.clock.advance(chrono::Duration::seconds(1));
    let accepted = me_with(&app, &early).await;
    assert!(accepted.get("errors").is_none(), "{accepted}");
}

#[tokio::test]
async fn a_bearer_that_is_not_ascii_is_an_invalid_token_not_a_missing_one() {
    use axum::body::Body;
    use axum::http::{HeaderValue, Request};
    let app = TestApp::new().await;
    let token = app.sign_up("latin@example.com").await.token;
    let utf8 = format!("Bearer {token}é").into_bytes();
    let latin1 = [format!("Bearer {token}").as_bytes(), b"\xe9"].concat();
    for value in [utf8, latin1] {
        let request = Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", HeaderValue::from_bytes(&value).unwrap())
            .body(Body::from(json!({ "query": ME }).to_string()))
            .unwrap();
        let body = app.request(request).await.json();
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
        assert_eq!(body["errors"][0]["message"], "Invalid or expired token");
    }
}

// ---- Password hashing under a flood of sign-ins ------------------------------------------------

#[tokio::test]
async fn logins_waiting_too_long_for_a_turn_at_hashing_are_rate_limited() {
    let app = TestApp::with_config(tally::config::Config {
        password_hashing_concurrency: 1,
        password_queue_timeout: std::time::Duration::from_millis(1),
        ..Default::default()
    })
    .await;
    app.sign_up("busy@example.com").await;
    let app = &app;
    let logins = (0..8).map(|i| async move {
        let peer = format!("198.51.100.{i}:7000");
        login_from(app, &peer, "busy@example.com", PASSWORD).await
    });
    let answers = futures::future::join_all(logins).await;
    let mut limited = 0;
    for answer in &answers {
        if answer["data"]["login"]["token"].is_string() {
            continue;
        }
        assert_eq!(error_code(answer), "RATE_LIMITED", "{answer}");
        assert!(
            common::error_message(answer).contains("password checks"),
            "{answer}"
        );
        assert_eq!(answer["errors"][0]["extensions"]["retryAfter"], 1);
        limited += 1;
    }
    assert!(limited > 0, "one hash at a time, none waits: {answers:?}");
    // Waiting for a turn is no failed login: the user is not locked out.
    let again = login_from(app, "198.51.100.0:7000", "busy@example.com", PASSWORD).await;
    assert!(again["data"]["login"]["token"].is_string(), "{again}");
}

/// The largest resident set the process has had so far, in bytes (`VmHWM`).
fn peak_resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kib * 1024
}

#[test]
#[cfg(target_os = "linux")]
fn a_flood_of_logins_keeps_memory_bounded() {
    use common::process::{self, Server};
    use std::io::Write as _;

    let dir = tempfile::tempdir().unwrap();
    // Behind a trusted proxy: three users signing in from five client addresses, each address
    // within its sign-in limits.
    let server = Server::start(dir.path(), &[("TALLY_TRUSTED_PROXIES", "127.0.0.1")]);
    for user in 0..3 {
        server.graphql_ok(
            None,
            SIGN_UP,
            json!({ "e": format!("flood-{user}@example.com"), "p": PASSWORD, "n": "Flood" }),
        );
    }
    let before = peak_resident_bytes(server.pid());

    let logins = 150;
    let start = std::sync::Arc::new(std::sync::Barrier::new(logins));
    let threads: Vec<_> = (0..logins)
        .map(|i| {
            let (address, start) = (server.address.clone(), start.clone());
            std::thread::spawn(move || {
                let email = format!("flood-{}@example.com", i / 5 % 3);
                let body = json!({ "query": LOGIN, "variables": { "e": email, "p": PASSWORD } })
                    .to_string();
                let mut stream = process::connect(&address).unwrap();
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(120)))
                    .unwrap();
                start.wait();
                write!(
                    stream,
                    "POST /graphql HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\n\
                     X-Forwarded-For: 198.51.100.{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    i % 5,
                    body.len()
                )
                .unwrap();
                let response = process::read_response(&mut stream).unwrap();
                serde_json::from_str::<Value>(&response.body).unwrap()
            })
        })
        .collect();
    let mut signed_in = 0;
    for thread in threads {
        let answer = thread.join().unwrap();
        if answer["data"]["login"]["token"].is_string() {
            signed_in += 1;
        } else {
            // Waiting too long for a turn is the only refusal allowed.
            assert_eq!(error_code(&answer), "RATE_LIMITED", "{answer}");
        }
    }
    let peak = peak_resident_bytes(server.pid());
    eprintln!(
        "{signed_in} of {logins} logins signed in; peak resident memory {} MB before, {} MB after",
        before / 1_000_000,
        peak / 1_000_000
    );
    assert!(signed_in > 0);
    assert!(
        peak < 200_000_000,
        "peak resident memory {} MB (from {} MB)",
        peak / 1_000_000,
        before / 1_000_000
    );
    server.stop();
}

/// A refusal of the limiter: `RATE_LIMITED`, saying when to try again.
#[track_caller]
fn assert_rate_limited(body: &Value) {
    assert_eq!(error_code(body), "RATE_LIMITED");
    assert!(
        body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
}
