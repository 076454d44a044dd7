//! Shared test harness: every test gets its own database (a SQLite file in a temporary directory,
//! or a fresh PostgreSQL database when `TALLY_TEST_DATABASE_URL` points at a server), the real
//! router from `tally::app`, and a manual clock.

pub mod analytics;
pub mod ingest;
pub mod process;

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{json, Value};
use tally::clock::{Clock, ManualClock};
use tally::config::Config;
use tally::AppState;
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub clock: ManualClock,
    pub database_url: String,
    _dir: Option<tempfile::TempDir>,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A fresh, migrated database: its URL and a connection.
pub async fn fresh_database() -> (String, DatabaseConnection, Option<tempfile::TempDir>) {
    match std::env::var("TALLY_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let admin = tally::db::connect(&base)
                .await
                .expect("connect to PostgreSQL");
            let name = format!("tally_test_{}", uuid::Uuid::new_v4().simple());
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let url = match base.rfind('/') {
                Some(slash) => format!("{}/{name}", &base[..slash]),
                None => panic!("TALLY_TEST_DATABASE_URL needs a database path"),
            };
            let db = tally::db::connect(&url)
                .await
                .expect("connect to test database");
            tally::db::migrate(&db).await.expect("migrate");
            (url, db, None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("tally.db").display()
            );
            let db = tally::db::connect(&url).await.expect("open SQLite");
            tally::db::migrate(&db).await.expect("migrate");
            (url, db, Some(dir))
        }
    }
}

pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 12, 0, 0).unwrap()
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Self {
        let (database_url, db, dir) = fresh_database().await;
        let clock = ManualClock::new(default_start());
        let state = AppState::with_clock(db, config, b"test secret", Arc::new(clock.clone()));
        Self {
            router: tally::app(state.clone()),
            state,
            clock,
            database_url,
            _dir: dir,
        }
    }

    pub async fn request(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// POSTs raw bytes with optional bearer token and extra headers.
    pub async fn post_raw(
        &self,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> TestResponse {
        let mut builder = Request::post(path);
        if let Some(token) = bearer {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.request(builder.body(body.into()).unwrap()).await
    }

    pub async fn post_json(&self, path: &str, bearer: Option<&str>, body: &Value) -> TestResponse {
        self.post_raw(
            path,
            bearer,
            &[("content-type", "application/json")],
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// Runs one GraphQL operation and returns the whole response body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let response = self
            .post_json(
                "/graphql",
                token,
                &json!({ "query": query, "variables": variables }),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "graphql answered {}",
            String::from_utf8_lossy(&response.body)
        );
        response.json()
    }

    /// Runs an operation that must succeed and returns its `data`.
    pub async fn graphql_ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.graphql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Signs up a new member with its own account; returns (token, user id, account id).
    pub async fn sign_up(&self, email: &str) -> (String, String, String) {
        let data = self
            .graphql_ok(
                None,
                "mutation($e: String!, $p: String!) { signUp(email: $e, password: $p, accountName: \"Acme\") { token user { id account { id } } } }",
                json!({ "e": email, "p": PASSWORD }),
            )
            .await;
        (
            data["signUp"]["token"].as_str().unwrap().to_owned(),
            data["signUp"]["user"]["id"].as_str().unwrap().to_owned(),
            data["signUp"]["user"]["account"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    /// Creates an admin user directly and signs it in; returns its token.
    pub async fn admin_token(&self) -> String {
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        tally::domain::accounts::create_user(
            &self.state.db,
            tally::domain::accounts::NewUser {
                email: email.clone(),
                password: PASSWORD.to_owned(),
                role: tally::domain::accounts::Role::Admin,
                account: tally::domain::accounts::AccountChoice::New("Operators".to_owned()),
            },
            self.clock.now(),
        )
        .await
        .expect("create admin");
        self.login(&email).await
    }

    pub async fn login(&self, email: &str) -> String {
        let data = self
            .graphql_ok(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": PASSWORD }),
            )
            .await;
        data["login"]["token"].as_str().unwrap().to_owned()
    }

    /// Creates an API key for the token's account; returns (plaintext, key id).
    pub async fn create_key(&self, token: &str, require_signature: bool) -> (String, String) {
        let data = self
            .graphql_ok(
                Some(token),
                "mutation($s: Boolean!) { createApiKey(name: \"test\", requireSignature: $s) { key apiKey { id } } }",
                json!({ "s": require_signature }),
            )
            .await;
        (
            data["createApiKey"]["key"].as_str().unwrap().to_owned(),
            data["createApiKey"]["apiKey"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }
}

/// The `extensions.code` of the first error of a GraphQL response.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}
