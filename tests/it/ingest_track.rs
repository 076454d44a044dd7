//! `POST /api/track`: every row of the contract's check table, in order, and what a 200 means.

use crate::common;

use axum::http::StatusCode;
use chrono::{Duration, TimeZone, Utc};
use common::ingest::{rfc3339, track_body};
use common::tables;
use common::TestApp;
use serde_json::json;
use tally::clock::Clock;
use tally::domain::signature::sign;

#[tokio::test]
async fn a_valid_tool_use_is_stored_and_counted_once() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let mut body = track_body(&app.now_rfc3339(), Some("e-1"));
    body["hook_event"] = json!("PostToolUse");
    body["tool_input_snippet"] = json!("ls -la");
    body["unknown_field"] = json!({ "ignored": true });
    let response = app.track(&m.key, &body).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.is_empty());
    assert_eq!(app.stored_events(&m.account_id).await, 1);
    assert_eq!(app.counted_calls(&m.account_id).await, 1);
    let tools = app
        .tool_rollups(&m.account_id)
        .await
        .iter()
        .find(|row| row.skill_id == "code-review" && row.kind == "TOOL_CALL")
        .expect("a tool rollup")
        .calls;
    assert_eq!(tools, 1);
}

#[tokio::test]
async fn every_field_of_a_tool_use_is_stored_in_its_own_column() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    // The event happened after the account was opened and before it is reported.
    app.clock.advance(Duration::minutes(10));
    let at = app.clock.now() - Duration::minutes(3);
    let mut body = track_body(&rfc3339(at), Some("e-columns"));
    body["hook_event"] = json!("PostToolUse");
    body["tool_input_snippet"] = json!("the input");
    body["tool_output_snippet"] = json!("the output");
    assert_eq!(app.track(&m.key, &body).await.status, StatusCode::OK);

    let events = tables::all_events(&app.state.db).await;
    assert_eq!(events.len(), 1);
    let stored = &events[0];
    assert_eq!(stored.account_id.as_deref(), Some(m.account_id.as_str()));
    assert_eq!(stored.api_key_id.as_deref(), Some(m.key_id.as_str()));
    assert_eq!(stored.kind, "TOOL_CALL");
    assert_eq!(stored.event_id.as_deref(), Some("e-columns"));
    assert_eq!(stored.skill_id.as_deref(), Some("code-review"));
    assert_eq!(stored.tool_name.as_deref(), Some("Read"));
    assert_eq!(stored.hook_event.as_deref(), Some("PostToolUse"));
    assert_eq!(stored.input_snippet.as_deref(), Some("the input"));
    assert_eq!(stored.output_snippet.as_deref(), Some("the output"));
    assert_eq!(
        (stored.endpoint.as_deref(), stored.method.as_deref()),
        (None, None)
    );
    assert_eq!((stored.status_code, stored.response_time_ms), (None, None));
    assert_eq!(stored.metadata, None);
    assert_eq!(stored.cost, 1);
    assert!(!stored.expired_key);
    assert_eq!(stored.occurred_at, at.timestamp_millis());
    assert_eq!(stored.received_at, app.clock.now().timestamp_millis());
}

#[tokio::test]
async fn empty_optional_strings_are_absent_and_the_tool_use_is_kept() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    // What a hook sends when its editor leaves a field blank.
    let mut body = track_body(&app.now_rfc3339(), None);
    for field in [
        "hook_event",
        "tool_input_snippet",
        "tool_output_snippet",
        "event_id",
    ] {
        body[field] = json!("");
    }
    let response = app.track(&m.key, &body).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let events = tables::all_events(&app.state.db).await;
    assert_eq!(events.len(), 1);
    let stored = &events[0];
    assert_eq!(
        (
            stored.hook_event.as_deref(),
            stored.input_snippet.as_deref(),
            stored.output_snippet.as_deref(),
            stored.event_id.as_deref()
        ),
        (None, None, None, None)
    );
    assert_eq!(app.counted_calls(&m.account_id).await, 1);
    // Required fields stay required: an empty one is still refused.
    let mut empty_tool = track_body(&app.now_rfc3339(), None);
    empty_tool["tool_name"] = json!("");
    let refused = app.track(&m.key, &empty_tool).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json()["details"],
        json!({ "tool_name": ["must be 1 to 200 characters"] })
    );
}

#[tokio::test]
async fn missing_or_non_bearer_authorization_is_401_missing() {
    let app = TestApp::new().await;
    let body = track_body(&app.now_rfc3339(), None);
    let none = app.post_json("/api/track", None, &body).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.json(),
        json!({ "error": "Missing authorization", "code": "MISSING_AUTHORIZATION" })
    );
    let basic = app
        .post_raw(
            "/api/track",
            None,
            &[("authorization", "Basic dXNlcjpwYXNz")],
            body.to_string(),
        )
        .await;
    assert_eq!(
        basic.json(),
        json!({ "error": "Missing authorization", "code": "MISSING_AUTHORIZATION" })
    );
}

#[tokio::test]
async fn unknown_malformed_bad_checksum_and_revoked_keys_are_401_invalid() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let body = track_body(&app.now_rfc3339(), None);
    let mut bad_checksum = m.key.clone().into_bytes();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] = if bad_checksum[last] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let bad_checksum = String::from_utf8(bad_checksum).unwrap();
    let unknown = tally::domain::keys::generate().plaintext;
    for key in [
        "",
        "nope",
        "tly_short",
        bad_checksum.as_str(),
        unknown.as_str(),
    ] {
        let response = app.track(key, &body).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{key}");
        assert_eq!(
            response.json(),
            json!({ "error": "Invalid key", "code": "INVALID_KEY" })
        );
        assert!(response.header("ratelimit").is_none());
    }
    app.graphql_ok(
        Some(&m.token),
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({ "id": m.key_id }),
    )
    .await;
    app.clock.advance(Duration::seconds(1));
    let revoked = app.track(&m.key, &body).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        revoked.json(),
        json!({ "error": "Invalid key", "code": "INVALID_KEY" })
    );
}

#[tokio::test]
async fn non_json_bodies_are_400_invalid_json_whatever_the_content_type() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Headers<'_>, Vec<u8>); 5] = [
        (&[], b"{not json".to_vec()),
        (&[("content-type", "text/plain")], b"skill_id=x".to_vec()),
        (
            &[("content-type", "application/json")],
            vec![0xff, 0xfe, 0x7b],
        ),
        (&[("content-type", "application/json")], Vec::new()),
        (&[("content-type", "application/xml")], b"<a/>".to_vec()),
    ];
    for (headers, body) in cases {
        let response = app
            .post_raw("/api/track", Some(&m.key), headers, body)
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            response.json(),
            json!({ "error": "Invalid JSON", "code": "INVALID_JSON" })
        );
    }
    // Valid JSON sent without any content type is read as JSON.
    let body = track_body(&app.now_rfc3339(), None).to_string();
    let plain = app.post_raw("/api/track", Some(&m.key), &[], body).await;
    assert_eq!(plain.status, StatusCode::OK);
    // Nothing rejected counts.
    assert_eq!(app.counted_calls(&m.account_id).await, 1);
}

#[tokio::test]
async fn rule_breaking_json_is_400_invalid_payload_with_details_per_field() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let now = app.clock.now();
    let response = app
        .track(
            &m.key,
            &json!({
                "skill_id": "",
                "tool_name": 7,
                "ts": rfc3339(now + Duration::minutes(6)),
                "hook_event": "x".repeat(101),
                "tool_input_snippet": "y".repeat(1001),
                "event_id": "z".repeat(129),
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let body = response.json();
    assert_eq!(body["error"], "Invalid payload");
    let details = body["details"].as_object().unwrap();
    for field in [
        "skill_id",
        "tool_name",
        "ts",
        "hook_event",
        "tool_input_snippet",
        "event_id",
    ] {
        assert!(details.contains_key(field), "{field} missing in {body}");
        assert!(details[field].as_array().is_some_and(|m| !m.is_empty()));
    }

    let missing = app.track(&m.key, &json!({})).await;
    let details = &missing.json()["details"];
    assert_eq!(details["skill_id"], json!(["is required"]));
    assert_eq!(details["ts"], json!(["is required"]));

    let old = app
        .track(
            &m.key,
            &track_body(&rfc3339(now - Duration::days(36)), None),
        )
        .await;
    assert_eq!(
        old.json()["details"]["ts"],
        json!(["must not be older than 35 days"])
    );
    let not_a_time = app.track(&m.key, &track_body("last tuesday", None)).await;
    assert_eq!(
        not_a_time.json()["details"]["ts"],
        json!(["must be an RFC 3339 timestamp"])
    );
    let array = app.track(&m.key, &json!([1, 2])).await;
    assert_eq!(array.json()["error"], "Invalid payload");
    assert_eq!(app.counted_calls(&m.account_id).await, 0);
    assert_eq!(app.stored_events(&m.account_id).await, 0);
}

#[tokio::test]
async fn the_oldest_and_newest_allowed_timestamps_pass() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    // The account has been around for longer than the 35 days looked back.
    app.clock.advance(Duration::days(40));
    let now = app.clock.now();
    for ts in [now + Duration::minutes(5), now - Duration::days(35)] {
        let response = app.track(&m.key, &track_body(&rfc3339(ts), None)).await;
        assert_eq!(response.status, StatusCode::OK, "{ts}");
    }
}

#[tokio::test]
async fn a_tool_use_dated_before_its_account_was_created_is_refused() {
    let app = TestApp::new().await;
    // The account is created half a second into 12:00:00.
    app.clock.advance(Duration::milliseconds(500));
    let m = app.member_with_key(false).await;
    let created = app.clock.now();
    app.clock.advance(Duration::hours(1));
    for before in [
        created - Duration::days(1),
        Utc.with_ymd_and_hms(2026, 11, 10, 11, 59, 59).unwrap(),
        Utc.with_ymd_and_hms(2026, 10, 31, 23, 0, 0).unwrap(),
    ] {
        let refused = app
            .track(&m.key, &track_body(&rfc3339(before), Some("early")))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{before}");
        assert_eq!(
            refused.json(),
            json!({
                "error": "Invalid payload", "code": "INVALID_PAYLOAD",
                "details": { "ts": ["must not be before the account was created"] }
            })
        );
    }
    assert_eq!(app.stored_events(&m.account_id).await, 0);
    assert_eq!(app.counted_calls(&m.account_id).await, 0);
    assert_eq!(
        tables::periods(&app.state.db, &m.account_id).await.len(),
        0,
        "no period was opened before the account existed"
    );
    // A second-precision time of the second the account was created in is its own.
    let same_second = app
        .track(&m.key, &track_body("2026-11-10T12:00:00Z", Some("early")))
        .await;
    assert_eq!(same_second.status, StatusCode::OK);
    assert_eq!(app.counted_calls(&m.account_id).await, 1);
}

#[tokio::test]
async fn nul_characters_are_invalid_payload_and_nothing_is_stored() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    for field in [
        "skill_id",
        "tool_name",
        "hook_event",
        "tool_input_snippet",
        "tool_output_snippet",
        "event_id",
    ] {
        let mut body = track_body(&app.now_rfc3339(), None);
        body[field] = json!("before\u{0}after");
        let response = app.track(&m.key, &body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(
            response.json(),
            json!({
                "error": "Invalid payload", "code": "INVALID_PAYLOAD",
                "details": { field: ["must not contain NUL characters"] }
            })
        );
        assert!(response.header("retry-after").is_none());
    }
    // Written as a JSON escape in the raw body, as a client would send it.
    let raw = format!(
        r#"{{"skill_id":"a\u0000b","tool_name":"t","ts":"{}"}}"#,
        app.now_rfc3339()
    );
    let escaped = app.post_raw("/api/track", Some(&m.key), &[], raw).await;
    assert_eq!(escaped.status, StatusCode::BAD_REQUEST);
    assert!(escaped.json()["details"]["skill_id"].is_array());
    // A lone surrogate is not JSON text at all.
    let surrogate = format!(
        r#"{{"skill_id":"\ud800","tool_name":"t","ts":"{}"}}"#,
        app.now_rfc3339()
    );
    let response = app
        .post_raw("/api/track", Some(&m.key), &[], surrogate)
        .await;
    assert_eq!(
        response.json(),
        json!({ "error": "Invalid JSON", "code": "INVALID_JSON" })
    );
    assert_eq!(app.stored_events(&m.account_id).await, 0);
    assert_eq!(app.counted_calls(&m.account_id).await, 0);
    // Other control characters are stored as sent.
    let mut tab = track_body(&app.now_rfc3339(), None);
    tab["tool_input_snippet"] = json!("a\tb\u{1}c");
    assert_eq!(app.track(&m.key, &tab).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_quota_refusal_for_an_ended_period_names_one_wait_in_both_headers() {
    let app = TestApp::new().await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 10, 20, 8, 0, 0).unwrap());
    let m = app.member_with_key(false).await;
    app.update_plan("FREE", json!({ "monthlyQuota": 2 })).await;
    for _ in 0..2 {
        let ok = app.track_now(&m.key).await;
        assert_eq!(ok.status, StatusCode::OK);
    }
    // In November, a late report dated in the full October is refused.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 10, 12, 0, 0).unwrap() + Duration::milliseconds(250));
    let late = app
        .track(&m.key, &track_body("2026-10-25T10:00:00Z", None))
        .await;
    assert_eq!(late.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(late.json()["error"], "Quota exceeded");
    let retry_after = late.header("retry-after").unwrap().to_owned();
    let ratelimit = late.header("ratelimit").unwrap();
    let monthly_t = ratelimit
        .split(", ")
        .find_map(|part| part.strip_prefix("\"monthly\";"))
        .and_then(|part| part.split(';').find_map(|kv| kv.strip_prefix("t=")))
        .unwrap();
    assert_eq!(monthly_t, retry_after, "{ratelimit}");
    // The end of November, rounded up: never earlier than a retry could succeed.
    assert_eq!(retry_after, (20 * 86_400 + 12 * 3_600).to_string());
}

#[tokio::test]
async fn signatures_are_hmac_sha256_of_the_raw_body() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let raw = format!(
        "{{ \"skill_id\": \"s\",  \"tool_name\": \"t\", \"ts\": \"{}\" }}",
        app.now_rfc3339()
    );
    let good = sign(&m.key, raw.as_bytes());
    let ok = app
        .post_raw(
            "/api/track",
            Some(&m.key),
            &[("x-tally-signature", good.as_str())],
            raw.clone(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);

    // Signed over a re-serialisation of the same JSON: not the bytes sent.
    let reserialized =
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&raw).unwrap()).unwrap();
    let over_other_bytes = sign(&m.key, reserialized.as_bytes());
    let wrong_key = sign(&tally::domain::keys::generate().plaintext, raw.as_bytes());
    let truncated = good[..good.len() - 2].to_owned();
    for signature in [
        over_other_bytes.as_str(),
        wrong_key.as_str(),
        "",
        truncated.as_str(),
        "sha256=zz",
    ] {
        let response = app
            .post_raw(
                "/api/track",
                Some(&m.key),
                &[("x-tally-signature", signature)],
                raw.clone(),
            )
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{signature:?}");
        assert_eq!(
            response.json(),
            json!({ "error": "Invalid signature", "code": "INVALID_SIGNATURE" })
        );
    }
    assert_eq!(app.counted_calls(&m.account_id).await, 1);
}

#[tokio::test]
async fn a_key_that_requires_signatures_refuses_unsigned_requests() {
    let app = TestApp::new().await;
    let m = app.member_with_key(true).await;
    let body = track_body(&app.now_rfc3339(), None).to_string();
    let unsigned = app
        .post_raw("/api/track", Some(&m.key), &[], body.clone())
        .await;
    assert_eq!(unsigned.status, StatusCode::FORBIDDEN);
    assert_eq!(
        unsigned.json(),
        json!({ "error": "Invalid signature", "code": "INVALID_SIGNATURE" })
    );
    let signature = sign(&m.key, body.as_bytes());
    let signed = app
        .post_raw(
            "/api/track",
            Some(&m.key),
            &[("x-tally-signature", signature.as_str())],
            body,
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK);
}

#[tokio::test]
async fn checks_run_in_the_contract_order() {
    let app = TestApp::new().await;
    let m = app.member_with_key(true).await;
    // Bad JSON and a bad signature: the JSON check comes first.
    let response = app
        .post_raw(
            "/api/track",
            Some(&m.key),
            &[("x-tally-signature", "sha256=00")],
            "{",
        )
        .await;
    assert_eq!(response.json()["error"], "Invalid JSON");
    // Rule-breaking JSON and no signature on a key that needs one: payload first.
    let response = app.track(&m.key, &json!({ "skill_id": "s" })).await;
    assert_eq!(response.json()["error"], "Invalid payload");
    // An invalid key with a too-large body: 413 comes before authentication.
    let big = vec![b' '; 64 * 1024 + 1];
    let response = app.post_raw("/api/track", Some("nope"), &[], big).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.json(),
        json!({ "error": "Payload too large", "code": "PAYLOAD_TOO_LARGE" })
    );
    // Without any key too.
    let response = app
        .post_raw("/api/track", None, &[], vec![b'x'; 70_000])
        .await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    // 64 KiB exactly is not too large.
    let mut body = track_body(&app.now_rfc3339(), None).to_string();
    body.push_str(&" ".repeat(64 * 1024 - body.len()));
    let response = app.post_raw("/api/track", Some(&m.key), &[], body).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn expired_keys_are_accepted_by_track_and_marked() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let expires = rfc3339(app.clock.now() + Duration::hours(1));
    let data = app
        .graphql_ok(
            Some(&m.token),
            "mutation($e: DateTime!) { createApiKey(name: \"soon\", expiresAt: $e) { key } }",
            json!({ "e": expires }),
        )
        .await;
    let key = data["createApiKey"]["key"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::hours(2));
    let response = app.track_now(&key).await;
    assert_eq!(response.status, StatusCode::OK);
    let marked = tables::events_with_expired_key(&app.state.db, &m.account_id).await;
    assert_eq!(marked, 1);
    let verify = app
        .post_json("/api/v1/verify", Some(&key), &json!({}))
        .await;
    assert_eq!(verify.status, StatusCode::UNAUTHORIZED);
    let events = app
        .post_json("/api/v1/events", Some(&key), &json!({ "events": [] }))
        .await;
    assert_eq!(events.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_repeated_event_id_answers_200_and_stores_nothing_new() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let body = track_body(&app.now_rfc3339(), Some("same"));
    for _ in 0..3 {
        assert_eq!(app.track(&m.key, &body).await.status, StatusCode::OK);
    }
    assert_eq!(app.stored_events(&m.account_id).await, 1);
    assert_eq!(app.counted_calls(&m.account_id).await, 1);
    // Another account may use the same id.
    let other = app.member_with_key(false).await;
    assert_eq!(app.track(&other.key, &body).await.status, StatusCode::OK);
    assert_eq!(app.stored_events(&other.account_id).await, 1);
}

#[tokio::test]
async fn twenty_concurrent_repeats_of_an_event_id_store_it_once() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let body = track_body(&app.now_rfc3339(), Some("raced"));
    let responses = futures::future::join_all((0..20).map(|_| app.track(&m.key, &body))).await;
    assert!(responses.iter().all(|r| r.status == StatusCode::OK));
    assert_eq!(app.stored_events(&m.account_id).await, 1);
    assert_eq!(app.counted_calls(&m.account_id).await, 1);
}

#[tokio::test]
async fn the_101st_request_in_a_minute_is_rate_limited() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    // Invalid keys and oversized bodies first: they spend nobody's budget.
    for _ in 0..50 {
        app.track("tly_nope", &json!({})).await;
        app.post_raw("/api/track", Some(&m.key), &[], vec![b' '; 70_000])
            .await;
    }
    // The key's own malformed requests do spend it.
    for _ in 0..10 {
        assert_eq!(
            app.post_raw("/api/track", Some(&m.key), &[], "{")
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
    }
    let body = track_body(&app.now_rfc3339(), None);
    for n in 0..90 {
        let response = app.track(&m.key, &body).await;
        assert_eq!(response.status, StatusCode::OK, "request {n}");
    }
    let limited = app.track(&m.key, &body).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.json(),
        json!({ "error": "Rate limited", "code": "RATE_LIMITED" })
    );
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert!(limited
        .header("ratelimit")
        .unwrap()
        .starts_with("\"minute\";r=0;"));
    // Rejected requests never count.
    assert_eq!(app.counted_calls(&m.account_id).await, 90);

    // Once the announced time has passed, a retry succeeds.
    app.clock.advance(Duration::seconds(retry as i64));
    assert_eq!(app.track(&m.key, &body).await.status, StatusCode::OK);
    // A plan's new rate limit applies to the next request.
    app.update_plan("FREE", json!({ "rateLimitPerMinute": 1000 }))
        .await;
    assert_eq!(app.track(&m.key, &body).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_free_plan_over_its_quota_is_refused_with_the_details() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.update_plan("FREE", json!({ "monthlyQuota": 3 })).await;
    for _ in 0..3 {
        let ok = app.track_now(&m.key).await;
        assert_eq!(ok.status, StatusCode::OK);
    }
    let refused = app.track_now(&m.key).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let body = refused.json();
    assert_eq!(body["error"], "Quota exceeded");
    assert_eq!(body["limit"], 3);
    assert_eq!(body["used"], 3);
    assert_eq!(body["reset"], "2026-12-01T00:00:00Z");
    assert!(body["upgrade_url"].is_string());
    // Seconds to the end of the period (clock is 2026-11-10T12:00:00Z).
    let to_end = (20 * 86_400 + 12 * 3_600).to_string();
    assert_eq!(refused.header("retry-after"), Some(to_end.as_str()));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(app.counted_calls(&m.account_id).await, 3);
    // A PRO plan goes into overage instead.
    app.set_plan(&m.account_id, "PRO").await;
    app.update_plan("PRO", json!({ "monthlyQuota": 3 })).await;
    let overage = app.track_now(&m.key).await;
    assert_eq!(overage.status, StatusCode::OK);
    assert_eq!(app.counted_calls(&m.account_id).await, 4);
}

#[tokio::test]
async fn events_count_in_the_period_of_their_own_time() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 1, 0, 1, 0).unwrap());
    let last_of_november = "2026-11-30T23:59:59.999Z";
    let first_of_december = "2026-12-01T00:00:00Z";
    for (ts, id) in [(last_of_november, "a"), (first_of_december, "b")] {
        let response = app.track(&m.key, &track_body(ts, Some(id))).await;
        assert_eq!(response.status, StatusCode::OK);
    }
    let periods = tables::periods(&app.state.db, &m.account_id)
        .await
        .iter()
        .filter(|period| period.calls == 1)
        .count();
    assert_eq!(periods, 2);
    let november_start = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let november = tables::period_calls(&app.state.db, &m.account_id, november_start).await;
    assert_eq!(november, 1);
}

#[tokio::test]
async fn rate_limit_headers_report_the_minute_and_the_month() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    let response = app.track_now(&m.key).await;
    assert_eq!(response.header("x-ratelimit-limit"), Some("1000"));
    assert_eq!(response.header("x-ratelimit-remaining"), Some("999"));
    assert_eq!(
        response.header("x-ratelimit-reset"),
        Some("2026-12-01T00:00:00Z")
    );
    assert_eq!(
        response.header("ratelimit-policy"),
        Some("\"minute\";q=100;w=60, \"monthly\";q=1000;w=2592000")
    );
    assert_eq!(
        response.header("ratelimit"),
        Some("\"minute\";r=99;t=1, \"monthly\";r=999;t=1771200")
    );
    // A rejected request carries them too, and counts nothing.
    let bad = app.track(&m.key, &json!({})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.header("x-ratelimit-remaining"), Some("999"));
    assert!(bad
        .header("ratelimit")
        .unwrap()
        .starts_with("\"minute\";r=98;"));
    // Unlimited plans have no monthly part.
    app.set_plan(&m.account_id, "ENTERPRISE").await;
    let unlimited = app.track_now(&m.key).await;
    assert_eq!(unlimited.status, StatusCode::OK);
    assert!(unlimited.header("x-ratelimit-limit").is_none());
    assert!(unlimited.header("x-ratelimit-remaining").is_none());
    assert_eq!(
        unlimited.header("ratelimit-policy"),
        Some("\"minute\";q=100;w=60")
    );
}

#[tokio::test]
async fn while_the_database_is_gone_track_answers_503_never_200() {
    let app = TestApp::new().await;
    let m = app.member_with_key(false).await;
    // Warm the key cache and the quota counter, so the recorder is what meets the outage.
    assert_eq!(app.track_now(&m.key).await.status, StatusCode::OK);
    app.state.db.close_by_ref().await.unwrap();
    let response = app.track_now(&m.key).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.json(),
        json!({ "error": "Service unavailable", "code": "SERVICE_UNAVAILABLE" })
    );
    assert!(response.header("retry-after").is_some());
    // The failed write gave its quota reservation back.
    let period = tally::domain::periods::BillingPeriod::calendar_month(app.clock.now());
    let used = app
        .state
        .ingestion
        .quota
        .used(&app.state.db, &m.account_id, period)
        .await
        .unwrap();
    assert_eq!(used, 1);
    // A key never seen before meets the outage at its lookup.
    let other = tally::domain::keys::generate().plaintext;
    let response = app.track_now(&other).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.get("/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_provider_billing_period_replaces_the_calendar_month_inside_it() {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let app = TestApp::new().await;
    // The account exists since the start of November.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
    let m = app.member_with_key(false).await;
    app.clock.set(common::default_start());
    let account = tally::entity::account::Entity::find_by_id(m.account_id.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let mut row: tally::entity::account::ActiveModel = account.into();
    row.billing_period_start = Set(Some(Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap()));
    row.billing_period_end = Set(Some(Utc.with_ymd_and_hms(2026, 12, 5, 0, 0, 0).unwrap()));
    row.update(&app.state.db).await.unwrap();
    app.state.keys.forget_all();

    let inside = app.track_now(&m.key).await;
    assert_eq!(inside.status, StatusCode::OK);
    assert_eq!(
        inside.header("x-ratelimit-reset"),
        Some("2026-12-05T00:00:00Z")
    );
    let start = Utc
        .with_ymd_and_hms(2026, 11, 5, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let counted = tables::period_calls(&app.state.db, &m.account_id, start).await;
    assert_eq!(counted, 1);
    // An event dated before the provider's period counts in its calendar month.
    let before = app
        .track(&m.key, &track_body("2026-11-04T23:00:00Z", None))
        .await;
    assert_eq!(before.status, StatusCode::OK);
    let november = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .unwrap()
        .timestamp_millis();
    let calendar = tables::period_calls(&app.state.db, &m.account_id, november).await;
    assert_eq!(calendar, 1);
}
