//! The `tally` binary: first start on an empty database, restarts, and the subcommands.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tally");

fn tally(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TALLY_LOG_FORMAT", "json");
    command
}

struct Server {
    child: Child,
    address: String,
    stdout: String,
}

impl Server {
    /// Starts `tally` (no subcommand) in `dir` on a free port and waits until it listens.
    fn start(dir: &Path, extra_env: &[(&str, &str)]) -> Server {
        let mut command = tally(dir);
        command
            .args(["--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start tally");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut address = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                if event["message"] == "tally listening" {
                    address = event["address"].as_str().map(str::to_owned);
                    break;
                }
            }
        }
        let address = address.expect("server reported its address");
        // Keep reading the log so the server never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server {
            child,
            address,
            stdout: String::new(),
        }
    }

    fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        );
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (_, body) = response.split_once("\r\n\r\n").expect("HTTP response");
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response}"))
    }

    /// Stops the server with SIGTERM and returns what it printed on stdout.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "graceful shutdown exits 0, got {status}");
                let mut out = std::mem::take(&mut self.stdout);
                if let Some(mut stdout) = self.child.stdout.take() {
                    stdout.read_to_string(&mut out).unwrap();
                }
                return out;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("server did not stop on SIGTERM");
    }
}

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { role } } }";

#[test]
fn first_start_creates_an_admin_with_a_one_time_password_and_keeps_the_jwt_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let first = server.graphql(None, "{ plans { code } }", json!({}));
    assert_eq!(first["data"]["plans"][0]["code"], "FREE");
    let stdout = server.stop();
    let password = stdout
        .lines()
        .find_map(|line| {
            line.split_once("with password: ")
                .map(|(_, p)| p.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no password printed: {stdout}"));
    assert!(
        dir.path().join("tally.db").exists(),
        "SQLite file in the working directory"
    );

    // Second start: same database, no new admin, the printed password works, and a token from
    // this run still works after another restart (the generated secret was kept).
    let server = Server::start(dir.path(), &[]);
    let login = server.graphql(
        None,
        LOGIN,
        json!({ "e": "admin@localhost", "p": password }),
    );
    assert_eq!(login["data"]["login"]["user"]["role"], "ADMIN", "{login}");
    let token = login["data"]["login"]["token"].as_str().unwrap().to_owned();
    let stdout = server.stop();
    assert!(
        !stdout.contains("with password"),
        "the password is printed once only"
    );

    let server = Server::start(dir.path(), &[]);
    let me = server.graphql(Some(&token), "{ me { email } }", json!({}));
    assert_eq!(me["data"]["me"]["email"], "admin@localhost", "{me}");
    server.stop();
}

#[test]
fn admin_credentials_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TALLY_ADMIN_EMAIL", "ops@example.com"),
        ("TALLY_ADMIN_PASSWORD", "a long admin password"),
    ];
    let server = Server::start(dir.path(), &env);
    let login = server.graphql(
        None,
        LOGIN,
        json!({ "e": "ops@example.com", "p": "a long admin password" }),
    );
    assert_eq!(login["data"]["login"]["user"]["role"], "ADMIN", "{login}");
    let stdout = server.stop();
    assert!(
        !stdout.contains("a long admin password"),
        "a configured password is never printed"
    );
}

#[test]
fn user_create_makes_users_that_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let status = tally(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "cli@example.com",
            "--password",
            "from the command line",
            "--admin",
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let member = tally(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "colleague@example.com",
            "--password",
            "another password",
            "--account",
            "cli@example.com",
        ])
        .output()
        .unwrap();
    assert!(
        member.status.success(),
        "{}",
        String::from_utf8_lossy(&member.stderr)
    );
    let duplicate = tally(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "cli@example.com",
            "--password",
            "from the command line",
        ])
        .output()
        .unwrap();
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already registered"));

    let server = Server::start(dir.path(), &[]);
    let admin = server.graphql(
        None,
        LOGIN,
        json!({ "e": "cli@example.com", "p": "from the command line" }),
    );
    assert_eq!(admin["data"]["login"]["user"]["role"], "ADMIN", "{admin}");
    let colleague = server.graphql(
        None,
        LOGIN,
        json!({ "e": "colleague@example.com", "p": "another password" }),
    );
    assert_eq!(
        colleague["data"]["login"]["user"]["role"], "MEMBER",
        "{colleague}"
    );
    let token = colleague["data"]["login"]["token"].as_str().unwrap();
    let me = server.graphql(Some(token), "{ me { account { name } } }", json!({}));
    assert_eq!(
        me["data"]["me"]["account"]["name"], "cli@example.com",
        "joined the named account"
    );
    server.stop();
}

#[test]
fn migrate_subcommands_apply_list_and_revert() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = tally(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    run(&["migrate", "up"]);
    assert!(run(&["migrate", "status"]).contains("m20261123_000001_core"));
    run(&["migrate", "down"]);
    run(&["migrate", "up"]);
}

#[test]
fn schema_prints_the_sdl_and_check_spots_drift() {
    let dir = tempfile::tempdir().unwrap();
    let printed = tally(dir.path()).arg("schema").output().unwrap();
    assert!(printed.status.success());
    let sdl = String::from_utf8(printed.stdout).unwrap();
    assert!(sdl.contains("type Query"));
    let file = dir.path().join("schema.graphql");
    std::fs::write(&file, &sdl).unwrap();
    let same = tally(dir.path())
        .args(["schema", "--check", "schema.graphql"])
        .status()
        .unwrap();
    assert!(same.success());
    std::fs::write(&file, format!("{sdl}\ntype Extra {{ x: Int }}\n")).unwrap();
    let drifted = tally(dir.path())
        .args(["schema", "--check", "schema.graphql"])
        .status()
        .unwrap();
    assert!(!drifted.success());
}
