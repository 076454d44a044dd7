//! Shared test harness: every test gets its own database (a SQLite file in a temporary directory,
//! or a fresh PostgreSQL database when `TALLY_TEST_DATABASE_URL` points at a server), the real
//! router from `tally::app`, and a manual clock.

pub mod analytics;
pub mod billing;
pub mod ingest;
pub mod process;
pub mod tables;

use std::sync::Arc;

use axum::body::{to_bytes, Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{json, Value};
use tally::clock::{Clock, ManualClock};
use tally::config::Config;
use tally::domain::keys::{self, ResolvedKey};
use tally::AppState;
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery";

/// Signs up a member with an account named `$n`, as the dashboard does.
pub const SIGN_UP: &str = "mutation($e: String!, $p: String!, $n: String!) { signUp(email: $e, password: $p, accountName: $n) { token user { id account { id } } } }";

/// Signs in with an e-mail and a password.
pub const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub clock: ManualClock,
    pub database_url: String,
    /// Last, so that the database outlives everything that uses it.
    _db: TestDb,
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

/// The service's ERROR lines (an internal error's cause among them) go to the test's captured
/// output, so a test that fails on an `INTERNAL` answer shows what was behind it. Lines from
/// threads other than the test's (the SQLite writer's) are printed as they come.
fn show_service_errors_with_failures() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::ERROR)
        .with_ansi(false)
        .with_test_writer()
        .try_init();
}

/// The database of one test: a SQLite file in a temporary directory, or, when
/// `TALLY_TEST_DATABASE_URL` points at a PostgreSQL server, a database of its own on that server,
/// dropped again when the test ends (passed or failed).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// Dropped with the test: drops the PostgreSQL database.
    _postgres: Option<PostgresDb>,
}

impl TestDb {
    /// An empty database (not migrated: a `tally` process migrates its own).
    pub async fn create() -> Self {
        match std::env::var("TALLY_TEST_DATABASE_URL") {
            Ok(server_url) if !server_url.is_empty() => {
                let name = format!("tally_test_{}", uuid::Uuid::new_v4().simple());
                let admin = tally::db::connect(&server_url)
                    .await
                    .expect("connect to PostgreSQL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let slash = server_url
                    .rfind('/')
                    .expect("TALLY_TEST_DATABASE_URL needs a database path");
                Self {
                    url: format!("{}/{name}", &server_url[..slash]),
                    _dir: None,
                    _postgres: Some(PostgresDb { server_url, name }),
                }
            }
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                Self {
                    url: format!(
                        "sqlite://{}?mode=rwc",
                        dir.path().join("tally.db").display()
                    ),
                    _dir: Some(dir),
                    _postgres: None,
                }
            }
        }
    }

    /// A migrated database and a connection to it.
    pub async fn migrated() -> (Self, DatabaseConnection) {
        let test_db = Self::create().await;
        let db = tally::db::connect(&test_db.url)
            .await
            .expect("connect to test database");
        tally::db::migrate(&db).await.expect("migrate");
        (test_db, db)
    }
}

struct PostgresDb {
    server_url: String,
    name: String,
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own
        // drops the database, ending the test's remaining connections (`WITH (FORCE)`).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let admin = tally::db::connect(&server_url).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop test database {}: {err}", self.name);
        }
    }
}

/// A second instance on a test app's database; see [`TestApp::another_instance`].
pub struct Instance {
    pub router: Router,
    pub state: AppState,
}

impl Instance {
    pub async fn request(&self, request: Request<Body>) -> TestResponse {
        send(&self.router, request).await
    }
}

async fn send(router: &Router, request: Request<Body>) -> TestResponse {
    let response = router
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

/// A member just signed up: its session token, its user and the account it owns.
pub struct SignedUp {
    pub token: String,
    pub user_id: String,
    pub account_id: String,
}

pub fn default_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 12, 0, 0).unwrap()
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Self {
        show_service_errors_with_failures();
        let (test_db, db) = TestDb::migrated().await;
        let clock = ManualClock::new(default_start());
        let state = AppState::with_clock(db, config, b"test secret", Arc::new(clock.clone()));
        Self {
            router: tally::app(state.clone()),
            state,
            clock,
            database_url: test_db.url.clone(),
            _db: test_db,
        }
    }

    /// Another instance of the service on this app's database, as a second `tally serve` behind
    /// the same load balancer would be: its own caches, counters, limiters and recorder, and the
    /// same clock. The database stays this app's (it is dropped with it).
    pub async fn another_instance(&self, config: Config) -> Instance {
        let db = tally::db::connect(&self.database_url)
            .await
            .expect("second connection to the test database");
        let state = AppState::with_clock(db, config, b"test secret", Arc::new(self.clock.clone()));
        Instance {
            router: tally::app(state.clone()),
            state,
        }
    }

    pub async fn request(&self, request: Request<Body>) -> TestResponse {
        send(&self.router, request).await
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

    /// Runs one GraphQL operation and returns the whole response body. Events acknowledged
    /// before are rolled up first: analytics may trail them by up to a second (that lag has
    /// tests of its own), and these tests read the settled numbers.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.settle().await;
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

    /// Runs an operation without variables that must fail; returns the `extensions.code` of its
    /// first error.
    pub async fn graphql_error_code(&self, token: Option<&str>, query: &str) -> String {
        error_code(&self.graphql(token, query, json!({})).await).to_owned()
    }

    /// Signs up a new member with its own account.
    pub async fn sign_up(&self, email: &str) -> SignedUp {
        let data = self
            .graphql_ok(
                None,
                SIGN_UP,
                json!({ "e": email, "p": PASSWORD, "n": "Acme" }),
            )
            .await;
        let text = |value: &Value| value.as_str().unwrap().to_owned();
        SignedUp {
            token: text(&data["signUp"]["token"]),
            user_id: text(&data["signUp"]["user"]["id"]),
            account_id: text(&data["signUp"]["user"]["account"]["id"]),
        }
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
            .graphql_ok(None, LOGIN, json!({ "e": email, "p": PASSWORD }))
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

    /// The code of the plan the token's account is on, as its members see it.
    pub async fn plan_code(&self, token: &str) -> String {
        let data = self
            .graphql_ok(
                Some(token),
                "{ me { account { plan { code } } } }",
                json!({}),
            )
            .await;
        data["me"]["account"]["plan"]["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Runs an operation that must succeed as a new admin and returns its `data`.
    pub async fn graphql_as_admin(&self, query: &str, variables: Value) -> Value {
        let admin = self.admin_token().await;
        self.graphql_ok(Some(&admin), query, variables).await
    }

    /// Edits a plan through the admin API, e.g. `json!({"monthlyQuota": 5})`.
    pub async fn update_plan(&self, code: &str, input: Value) {
        self.graphql_as_admin(
            "mutation($c: PlanCode!, $i: PlanInput!) { adminUpdatePlan(code: $c, input: $i) { code } }",
            json!({ "c": code, "i": input }),
        )
        .await;
    }

    /// Moves an account to another plan through the admin API.
    pub async fn set_plan(&self, account_id: &str, code: &str) {
        self.graphql_as_admin(
            "mutation($a: ID!, $p: PlanCode!) { adminSetPlan(accountId: $a, plan: $p) { id } }",
            json!({ "a": account_id, "p": code }),
        )
        .await;
    }

    /// What the ingestion routes resolve a key to, through the same key cache; panics unless the
    /// key exists.
    pub async fn resolve_key(&self, plaintext: &str) -> Arc<ResolvedKey> {
        let digest = keys::parse(plaintext).expect("a well-formed key");
        self.state
            .keys
            .lookup(&self.state.db, digest)
            .await
            .expect("key lookup")
            .expect("a known key")
    }

    /// POSTs JSON to `path` declaring a body of `declared_length` bytes of which only `first`
    /// ever arrives. The answer must come within two seconds: a route that waited for the body
    /// would never answer.
    pub async fn post_stalled(
        &self,
        path: &str,
        declared_length: usize,
        first: &'static str,
    ) -> TestResponse {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .header("content-length", declared_length.to_string())
            .body(stalled_body(first))
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(2), self.request(request))
            .await
            .expect("an answer at once, not after waiting for the body")
    }
}

/// A body that sends `first` and then nothing, never ending.
pub fn stalled_body(first: &'static str) -> Body {
    let chunk = futures::stream::once(async move {
        Ok::<_, std::io::Error>(Bytes::from_static(first.as_bytes()))
    });
    Body::from_stream(chunk.chain(futures::stream::pending()))
}

/// The `extensions.code` of the first error of a GraphQL response.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// The message of the first error of a GraphQL response.
pub fn error_message(body: &Value) -> &str {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
}
