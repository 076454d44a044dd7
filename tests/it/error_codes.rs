//! The machine-readable `code` of every REST error row of the contract, route by route, and of
//! every verify decision: status, `error` message and `code` together, as a client sees them.
//! Each route is one table in the contract's order: what is in place, the request, the answer.

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::ingest::{track_body, Member};
use common::{TestApp, TestResponse};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use tally::clock::Clock;
use tally::config::Config;

use Also::{Details, Equals, NotValid, QuotaFields, RetryAfter};
use Key::{Literal, Without};
use Step::{
    Answers, ClosesDatabase, MemberWithKey, MemberWithSigningKey, PlanIs, RevokesKey, Succeeds,
};

/// One error row: what is in place, the request, and the refusal it gets.
struct Case<'a> {
    when: &'static str,
    config: fn() -> Config,
    given: &'a [Step],
    send: Send,
    status: StatusCode,
    error: &'static str,
    code: &'static str,
    also: &'a [Also],
}

/// What happens before the refused request, in order.
enum Step {
    /// A member on FREE with an API key (the key `Key::Member` sends).
    MemberWithKey,
    /// The same with a key that requires signed requests.
    MemberWithSigningKey,
    /// FREE is edited with this admin input.
    PlanIs(fn() -> Value),
    /// The member revokes its key.
    RevokesKey,
    /// This request answers 200.
    Succeeds(Send),
    /// This request answers exactly this JSON.
    Answers(Send, fn() -> Value),
    /// The database goes away.
    ClosesDatabase,
}

/// The bearer token of a request.
#[derive(Clone, Copy)]
enum Key {
    Without,
    Member,
    Literal(&'static str),
}

type Headers = &'static [(&'static str, &'static str)];

/// A request as it is sent.
#[derive(Clone, Copy)]
enum Send {
    /// This JSON POSTed to the path.
    Json(&'static str, Key, fn(&TestApp) -> Value),
    /// These bytes POSTed as they are, with these headers.
    Raw(&'static str, Key, Headers, fn(&TestApp) -> Vec<u8>),
    /// One call for /api/v1/events, signed with another secret than the key.
    BatchSignedWith(&'static [u8]),
    /// A billing webhook delivery: this `stripe-signature` (`None`: a valid one) and body.
    Webhook(Option<&'static str>, fn() -> String),
    Get(&'static str),
    /// An empty request with a method no route has.
    Method(&'static str, &'static str),
    /// A POST whose body sends its first bytes and then nothing.
    Stalled(&'static str, &'static str),
    /// The same declaring a length; it must be answered within two seconds.
    StalledWithLength(&'static str, usize, &'static str),
}

/// What the refusal carries besides status, `error` and `code`.
enum Also {
    RetryAfter,
    /// `details` holds an array of reasons for this field.
    Details(&'static str),
    /// Verify's refusals also say `"valid": false`.
    NotValid,
    /// The quota's `limit` and `used` (1 and 1), its `reset` and the `upgrade_url`.
    QuotaFields,
    Equals(&'static str, fn() -> Value),
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

fn now_call(app: &TestApp) -> Value {
    json!({ "endpoint": "/v1/search", "method": "GET", "status_code": 200,
            "response_time_ms": 12, "ts": app.now_rfc3339() })
}

fn track_now(app: &TestApp) -> Value {
    track_body(&app.now_rfc3339(), None)
}

fn one_call(app: &TestApp) -> Value {
    json!({ "events": [now_call(app)] })
}

fn empty(_: &TestApp) -> Value {
    json!({})
}

const TRACK: Send = Send::Json("/api/track", Key::Member, track_now);
const VERIFY: Send = Send::Json("/api/v1/verify", Key::Member, empty);
const BATCH: Send = Send::Json("/api/v1/events", Key::Member, one_call);
const INSTALL: Send = Send::Json("/api/install-callback", Without, empty);
const MINUTE_LIMIT_OF_ONE: Step = PlanIs(|| json!({ "rateLimitPerMinute": 1 }));
const QUOTA_OF_ONE: Step = PlanIs(|| json!({ "monthlyQuota": 1 }));

const WEBHOOK_SECRET: &str = "whsec_codes";

fn webhook_config() -> Config {
    Config {
        billing_webhook_secret: Some(WEBHOOK_SECRET.to_owned()),
        ..Config::default()
    }
}

/// Sends a case's request (`member` is the one the case's steps made, if any).
async fn send(app: &TestApp, member: Option<&Member>, request: &Send) -> TestResponse {
    let key = |key: Key| match key {
        Without => None,
        Key::Member => Some(member.expect("a MemberWithKey step").key.clone()),
        Literal(key) => Some(key.to_owned()),
    };
    match *request {
        Send::Json(path, bearer, body) => {
            app.post_json(path, key(bearer).as_deref(), &body(app))
                .await
        }
        Send::Raw(path, bearer, headers, body) => {
            app.post_raw(path, key(bearer).as_deref(), headers, body(app))
                .await
        }
        Send::BatchSignedWith(secret) => {
            let body = one_call(app).to_string();
            let wrong = format!("sha256={}", hmac_hex(secret, &[body.as_bytes()]));
            let headers = [("x-tally-signature", wrong.as_str())];
            app.post_raw(
                "/api/v1/events",
                key(Key::Member).as_deref(),
                &headers,
                body,
            )
            .await
        }
        Send::Webhook(signature, body) => {
            let body = body();
            let signature = signature.map_or_else(|| signed(app, &body), str::to_owned);
            let headers = [
                ("content-type", "application/json"),
                ("stripe-signature", signature.as_str()),
            ];
            app.post_raw("/api/webhooks/billing", None, &headers, body)
                .await
        }
        Send::Get(path) => app.get(path).await,
        Send::Method(method, path) => {
            let request = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(path)
                .body(Body::empty())
                .unwrap();
            app.request(request).await
        }
        Send::Stalled(path, first) => {
            let request = Request::post(path)
                .body(common::stalled_body(first))
                .unwrap();
            app.request(request).await
        }
        Send::StalledWithLength(path, length, first) => app.post_stalled(path, length, first).await,
    }
}

fn signed(app: &TestApp, body: &str) -> String {
    let t = app.clock.now().timestamp().to_string();
    let v1 = hmac_hex(
        WEBHOOK_SECRET.as_bytes(),
        &[t.as_bytes(), b".", body.as_bytes()],
    );
    format!("t={t},v1={v1}")
}

/// Runs each case on an app of its own and checks its refusal.
async fn run(cases: &[Case<'_>]) {
    for case in cases {
        let when = case.when;
        let app = TestApp::with_config((case.config)()).await;
        let mut member = None;
        for step in case.given {
            match step {
                MemberWithKey => member = Some(app.member_with_key(false).await),
                MemberWithSigningKey => member = Some(app.member_with_key(true).await),
                PlanIs(input) => app.update_plan("FREE", input()).await,
                RevokesKey => {
                    let m = member.as_ref().expect("a MemberWithKey step");
                    app.graphql_ok(
                        Some(&m.token),
                        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
                        json!({ "id": m.key_id }),
                    )
                    .await;
                }
                Succeeds(request) => {
                    let response = send(&app, member.as_ref(), request).await;
                    assert_eq!(response.status, StatusCode::OK, "{when}: the step before");
                }
                Answers(request, answer) => {
                    let response = send(&app, member.as_ref(), request).await;
                    assert_eq!(response.json(), answer(), "{when}: the step before");
                }
                ClosesDatabase => app.state.db.close_by_ref().await.unwrap(),
            }
        }
        let response = send(&app, member.as_ref(), &case.send).await;
        assert_eq!(
            response.status,
            case.status,
            "{when}: {}",
            String::from_utf8_lossy(&response.body)
        );
        let body = response.json();
        assert_eq!(body["error"], case.error, "{when}: {body}");
        assert_eq!(body["code"], case.code, "{when}: {body}");
        for also in case.also {
            match also {
                RetryAfter => assert!(response.header("retry-after").is_some(), "{when}"),
                Details(field) => assert!(body["details"][*field].is_array(), "{when}: {body}"),
                NotValid => assert_eq!(body["valid"], false, "{when}: {body}"),
                QuotaFields => {
                    assert_eq!(
                        (body["limit"].as_i64(), body["used"].as_i64()),
                        (Some(1), Some(1)),
                        "{when}: {body}"
                    );
                    assert!(
                        body["reset"].is_string() && body["upgrade_url"].is_string(),
                        "{when}: {body}"
                    );
                }
                Equals(field, value) => assert_eq!(body[*field], value(), "{when}: {body}"),
            }
        }
    }
}

/// POST /api/track: every row of 3.1, in the contract's order.
#[tokio::test]
async fn track_refusals_have_their_codes() {
    run(&[
        Case {
            when: "track without authorization",
            config: Config::default,
            given: &[],
            send: Send::Json("/api/track", Without, track_now),
            status: StatusCode::UNAUTHORIZED,
            error: "Missing authorization",
            code: "MISSING_AUTHORIZATION",
            also: &[],
        },
        Case {
            when: "track with an unknown key",
            config: Config::default,
            given: &[],
            send: Send::Json("/api/track", Literal("tly_notakey"), track_now),
            status: StatusCode::UNAUTHORIZED,
            error: "Invalid key",
            code: "INVALID_KEY",
            also: &[],
        },
        Case {
            when: "track over the minute limit",
            config: Config::default,
            given: &[MemberWithKey, MINUTE_LIMIT_OF_ONE, Succeeds(TRACK)],
            send: TRACK,
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "Rate limited",
            code: "RATE_LIMITED",
            also: &[RetryAfter],
        },
        Case {
            when: "track with a body that is not JSON",
            config: Config::default,
            given: &[MemberWithKey],
            send: Send::Raw("/api/track", Key::Member, &[], |_| {
                b"{\"skill_id\":".to_vec()
            }),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid JSON",
            code: "INVALID_JSON",
            also: &[],
        },
        Case {
            when: "track with a broken rule",
            config: Config::default,
            given: &[MemberWithKey],
            send: Send::Json(
                "/api/track",
                Key::Member,
                |app| json!({ "skill_id": "", "tool_name": "Read", "ts": app.now_rfc3339() }),
            ),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid payload",
            code: "INVALID_PAYLOAD",
            also: &[Details("skill_id")],
        },
        Case {
            when: "track with a wrong signature",
            config: Config::default,
            given: &[MemberWithKey],
            send: Send::Raw(
                "/api/track",
                Key::Member,
                &[("x-tally-signature", "sha256=00")],
                |app| track_now(app).to_string().into_bytes(),
            ),
            status: StatusCode::FORBIDDEN,
            error: "Invalid signature",
            code: "INVALID_SIGNATURE",
            also: &[],
        },
        Case {
            when: "track past a blocking quota",
            config: Config::default,
            given: &[MemberWithKey, QUOTA_OF_ONE, Succeeds(TRACK)],
            send: TRACK,
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "Quota exceeded",
            code: "QUOTA_EXCEEDED",
            also: &[QuotaFields],
        },
        Case {
            when: "track with a body over 64 KiB",
            config: Config::default,
            given: &[],
            send: Send::Raw("/api/track", Literal("tly_notakey"), &[], |_| {
                vec![b' '; 70_000]
            }),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "Payload too large",
            code: "PAYLOAD_TOO_LARGE",
            also: &[],
        },
        Case {
            when: "track while the database is gone",
            config: Config::default,
            given: &[MemberWithKey, Succeeds(TRACK), ClosesDatabase],
            send: TRACK,
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "Service unavailable",
            code: "SERVICE_UNAVAILABLE",
            also: &[RetryAfter],
        },
    ])
    .await;
}

/// POST /api/install-callback (3.2).
#[tokio::test]
async fn install_refusals_have_their_codes() {
    run(&[
        Case {
            when: "an install with a body that is not JSON",
            config: Config::default,
            given: &[],
            send: Send::Raw("/api/install-callback", Without, &[], |_| {
                b"not json".to_vec()
            }),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid JSON",
            code: "INVALID_JSON",
            also: &[],
        },
        // A bad optional field is dropped (`ignored`); a body that is no object at all is refused.
        Case {
            when: "an install with a body that is not an object",
            config: Config::default,
            given: &[],
            send: Send::Json("/api/install-callback", Without, |_| json!(["code-review"])),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid payload",
            code: "INVALID_PAYLOAD",
            also: &[Details("body")],
        },
        Case {
            when: "installs over the address limit",
            config: || Config {
                install_rate_limit_per_minute: 1,
                ..Config::default()
            },
            given: &[Answers(INSTALL, || json!({ "recorded": true }))],
            send: INSTALL,
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "Rate limited",
            code: "RATE_LIMITED",
            also: &[],
        },
    ])
    .await;
}

/// POST /api/v1/verify (3.3): an allowed call, then every refusal.
#[tokio::test]
async fn an_allowed_verify_is_valid() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let body = json!({ "event_id": "v-1" });
    let response = app.post_json("/api/v1/verify", Some(&m.key), &body).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["valid"], true);
    assert_eq!(response.json()["code"], "VALID");
    // A retry answers the original decision, code included.
    let retry = app.post_json("/api/v1/verify", Some(&m.key), &body).await;
    assert_eq!(
        (retry.status, retry.json()["code"].clone()),
        (StatusCode::OK, json!("VALID"))
    );
}

#[tokio::test]
async fn verify_refusals_have_their_codes() {
    run(&[
        Case {
            when: "verify without authorization",
            config: Config::default,
            given: &[],
            send: Send::Json("/api/v1/verify", Without, empty),
            status: StatusCode::UNAUTHORIZED,
            error: "Missing authorization",
            code: "MISSING_AUTHORIZATION",
            also: &[NotValid],
        },
        Case {
            when: "verify with a revoked key",
            config: Config::default,
            given: &[MemberWithKey, RevokesKey],
            send: VERIFY,
            status: StatusCode::UNAUTHORIZED,
            error: "Invalid key",
            code: "INVALID_KEY",
            also: &[NotValid],
        },
        Case {
            when: "verify over the minute limit",
            config: Config::default,
            given: &[MemberWithKey, MINUTE_LIMIT_OF_ONE, Succeeds(VERIFY)],
            send: VERIFY,
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "Rate limited",
            code: "RATE_LIMITED",
            also: &[NotValid],
        },
        Case {
            when: "verify past a blocking quota",
            config: Config::default,
            given: &[MemberWithKey, QUOTA_OF_ONE, Succeeds(VERIFY)],
            send: VERIFY,
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "Quota exceeded",
            code: "USAGE_EXCEEDED",
            also: &[NotValid, Equals("limit", || json!(1))],
        },
        Case {
            when: "verify reusing an event id",
            config: Config::default,
            given: &[
                MemberWithKey,
                Succeeds(Send::Json(
                    "/api/v1/verify",
                    Key::Member,
                    |_| json!({ "event_id": "v-1", "endpoint": "/a", "method": "GET" }),
                )),
            ],
            send: Send::Json(
                "/api/v1/verify",
                Key::Member,
                |_| json!({ "event_id": "v-1", "endpoint": "/b", "method": "GET" }),
            ),
            status: StatusCode::CONFLICT,
            error: "Event id reused",
            code: "EVENT_ID_REUSED",
            also: &[NotValid],
        },
        Case {
            when: "verify with a body that is not JSON",
            config: Config::default,
            given: &[MemberWithKey],
            send: Send::Raw("/api/v1/verify", Key::Member, &[], |_| b"{".to_vec()),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid JSON",
            code: "INVALID_JSON",
            also: &[NotValid],
        },
        Case {
            when: "verify with a zero cost",
            config: Config::default,
            given: &[MemberWithKey],
            send: Send::Json("/api/v1/verify", Key::Member, |_| json!({ "cost": 0 })),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid payload",
            code: "INVALID_PAYLOAD",
            also: &[NotValid, Details("cost")],
        },
        Case {
            when: "verify with a key that requires signatures and none",
            config: Config::default,
            given: &[MemberWithSigningKey],
            send: VERIFY,
            status: StatusCode::FORBIDDEN,
            error: "Invalid signature",
            code: "INVALID_SIGNATURE",
            also: &[NotValid],
        },
        Case {
            when: "verify while the database is gone",
            config: Config::default,
            given: &[MemberWithKey, Succeeds(VERIFY), ClosesDatabase],
            send: VERIFY,
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "Service unavailable",
            code: "SERVICE_UNAVAILABLE",
            also: &[NotValid, RetryAfter],
        },
    ])
    .await;
}

/// POST /api/v1/events (3.4).
#[tokio::test]
async fn batch_refusals_have_their_codes() {
    run(&[
        Case {
            when: "a batch without authorization",
            config: Config::default,
            given: &[],
            send: Send::Json("/api/v1/events", Without, one_call),
            status: StatusCode::UNAUTHORIZED,
            error: "Missing authorization",
            code: "MISSING_AUTHORIZATION",
            also: &[],
        },
        Case {
            when: "a batch over the minute limit",
            config: Config::default,
            given: &[MemberWithKey, MINUTE_LIMIT_OF_ONE, Succeeds(BATCH)],
            send: BATCH,
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "Rate limited",
            code: "RATE_LIMITED",
            also: &[],
        },
        Case {
            when: "a batch with a wrong signature",
            config: Config::default,
            given: &[MemberWithKey],
            send: Send::BatchSignedWith(b"not the key"),
            status: StatusCode::FORBIDDEN,
            error: "Invalid signature",
            code: "INVALID_SIGNATURE",
            also: &[],
        },
        Case {
            when: "a batch with an invalid event",
            config: Config::default,
            given: &[MemberWithKey],
            send: Send::Json("/api/v1/events", Key::Member, |app| {
                let mut bad = now_call(app);
                bad["status_code"] = json!("200");
                json!({ "events": [now_call(app), bad] })
            }),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid payload",
            code: "INVALID_PAYLOAD",
            also: &[Details("events[1].status_code")],
        },
        Case {
            when: "a batch past a blocking quota",
            config: Config::default,
            given: &[MemberWithKey, QUOTA_OF_ONE],
            send: Send::Json(
                "/api/v1/events",
                Key::Member,
                |app| json!({ "events": [now_call(app), now_call(app)] }),
            ),
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "Quota exceeded",
            code: "QUOTA_EXCEEDED",
            also: &[],
        },
        Case {
            when: "a batch over 1 MiB",
            config: Config::default,
            given: &[],
            send: Send::Raw("/api/v1/events", Without, &[], |_| {
                vec![b' '; 1024 * 1024 + 1]
            }),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "Payload too large",
            code: "PAYLOAD_TOO_LARGE",
            also: &[],
        },
        Case {
            when: "a batch with a malformed key",
            config: Config::default,
            given: &[],
            send: Send::Json("/api/v1/events", Literal("not-a-key"), one_call),
            status: StatusCode::UNAUTHORIZED,
            error: "Invalid key",
            code: "INVALID_KEY",
            also: &[],
        },
    ])
    .await;
}

/// POST /api/webhooks/billing (3.5).
#[tokio::test]
async fn webhook_refusals_have_their_codes() {
    run(&[
        Case {
            when: "a webhook with a bad signature",
            config: webhook_config,
            given: &[],
            send: Send::Webhook(Some("t=1,v1=00"), || {
                r#"{"id":"evt_1","type":"ping","created":1,"data":{"object":{}}}"#.to_owned()
            }),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid signature",
            code: "INVALID_SIGNATURE",
            also: &[],
        },
        Case {
            when: "a signed webhook that is not JSON",
            config: webhook_config,
            given: &[],
            send: Send::Webhook(None, || "{".to_owned()),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid JSON",
            code: "INVALID_JSON",
            also: &[],
        },
        Case {
            when: "a signed webhook that is not an event",
            config: webhook_config,
            given: &[],
            send: Send::Webhook(None, || "{}".to_owned()),
            status: StatusCode::BAD_REQUEST,
            error: "Invalid payload",
            code: "INVALID_PAYLOAD",
            also: &[],
        },
        Case {
            when: "a webhook over 64 KiB",
            config: webhook_config,
            given: &[],
            send: Send::Webhook(Some("t=1,v1=00"), || " ".repeat(70_000)),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "Payload too large",
            code: "PAYLOAD_TOO_LARGE",
            also: &[],
        },
        Case {
            when: "a webhook without a configured secret",
            config: Config::default,
            given: &[],
            send: Send::Webhook(Some("t=1,v1=00"), || "{}".to_owned()),
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "Billing webhook not configured",
            code: "WEBHOOK_NOT_CONFIGURED",
            also: &[],
        },
    ])
    .await;
}

/// Every route: the errors no handler writes, and readiness (3, 3.7).
#[tokio::test]
async fn refusals_no_handler_writes_have_their_codes() {
    run(&[
        Case {
            when: "an unknown path",
            config: Config::default,
            given: &[],
            send: Send::Get("/api/nothing-here"),
            status: StatusCode::NOT_FOUND,
            error: "Not found",
            code: "NOT_FOUND",
            also: &[],
        },
        Case {
            when: "a wrong method",
            config: Config::default,
            given: &[],
            send: Send::Get("/api/track"),
            status: StatusCode::METHOD_NOT_ALLOWED,
            error: "Method not allowed",
            code: "METHOD_NOT_ALLOWED",
            also: &[],
        },
        Case {
            when: "a method no route has",
            config: Config::default,
            given: &[],
            send: Send::Method("BREW", "/api/track"),
            status: StatusCode::NOT_IMPLEMENTED,
            error: "Method not implemented",
            code: "METHOD_NOT_IMPLEMENTED",
            also: &[],
        },
        Case {
            when: "a request over the timeout",
            config: || Config {
                request_timeout: Duration::from_millis(300),
                body_read_timeout: Duration::from_secs(30),
                ..Config::default()
            },
            given: &[],
            send: Send::Stalled("/api/install-callback", "{\"skill"),
            status: StatusCode::REQUEST_TIMEOUT,
            error: "Request timeout",
            code: "REQUEST_TIMEOUT",
            also: &[],
        },
        Case {
            when: "a body that never finishes",
            config: || Config {
                body_read_timeout: Duration::from_millis(200),
                ..Config::default()
            },
            given: &[],
            send: Send::StalledWithLength("/api/install-callback", 100, "{\"skill"),
            status: StatusCode::REQUEST_TIMEOUT,
            error: "Request body timeout",
            code: "REQUEST_TIMEOUT",
            also: &[],
        },
        Case {
            when: "a GraphQL body over the limit",
            config: Config::default,
            given: &[],
            send: Send::Raw(
                "/graphql",
                Without,
                &[("content-type", "application/json")],
                |_| vec![b' '; 300 * 1024],
            ),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "Payload too large",
            code: "PAYLOAD_TOO_LARGE",
            also: &[],
        },
        Case {
            when: "ready without a database",
            config: Config::default,
            given: &[ClosesDatabase],
            send: Send::Get("/ready"),
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "Database unreachable",
            code: "SERVICE_UNAVAILABLE",
            also: &[Equals("status", || json!("unavailable"))],
        },
    ])
    .await;
}
