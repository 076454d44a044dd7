//! Driving the real `tally` binary: start it on a free port with some settings, talk HTTP and
//! GraphQL to it, and stop it gracefully (SIGTERM) or not at all (kill -9).

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::ingest::Member;

const BIN: &str = env!("CARGO_BIN_EXE_tally");

/// Longest the tests wait for anything the server is expected to do within a second or two.
pub const PATIENCE: Duration = Duration::from_secs(6);

/// Longest a whole request may take (signing in hashes a password, slow in a debug build).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The admin a server creates on its first start when given `OPS_ADMIN`.
pub const OPS_EMAIL: &str = "ops@example.com";
pub const OPS_PASSWORD: &str = "a long admin password";
pub const OPS_ADMIN: [(&str, &str); 2] = [
    ("TALLY_ADMIN_EMAIL", OPS_EMAIL),
    ("TALLY_ADMIN_PASSWORD", OPS_PASSWORD),
];

pub fn tally(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TALLY_LOG_FORMAT", "json");
    command
}

/// The SQLite database `tally` uses when started in `dir` without a database URL.
pub fn default_database_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("tally.db").display())
}

/// Asserts that a finished command exited 0, showing what it wrote on stderr otherwise.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asks a process to stop with SIGTERM, as a service manager would; it drains and exits.
pub fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

pub struct Server {
    child: Child,
    pub address: String,
    /// Every line the server logged, from its start: JSON objects, or strings when it logs
    /// human lines.
    log: Arc<Mutex<Vec<Value>>>,
    /// Reads the log until the server closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `tally` (no subcommand) in `dir` on a free port with extra `TALLY_*` settings and
    /// waits until it listens. Without `TALLY_DATABASE_URL` it uses `tally.db` in `dir`.
    pub fn start(dir: &Path, settings: &[(&str, &str)]) -> Server {
        let mut command = tally(dir);
        command
            .args(["--bind", "127.0.0.1:0"])
            .envs(settings.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start tally");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut address = None;
        let mut before = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                let listening = event["message"] == "tally listening";
                if listening {
                    address = event["address"].as_str().map(str::to_owned);
                }
                before.push(event);
                if listening {
                    break;
                }
            } else {
                let listening = line.contains("tally listening");
                if listening {
                    // A human line (`TALLY_LOG_FORMAT=human`): `... tally listening address=IP:PORT`.
                    address = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("address="))
                        .map(str::to_owned);
                }
                before.push(Value::String(line));
                if listening {
                    break;
                }
            }
        }
        let address = address.expect("server reported its address");
        // Keep reading the log so the server never writes into a closed pipe.
        let log = Arc::new(Mutex::new(before));
        let kept = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                // Human lines are kept as JSON strings.
                let event = serde_json::from_str::<Value>(&line).unwrap_or(Value::String(line));
                kept.lock().unwrap().push(event);
            }
        });
        Server {
            child,
            address,
            log,
            reader: Some(reader),
        }
    }

    /// The log lines so far that `keep` picks, waiting up to `PATIENCE` for at least one (the
    /// log is written by a background thread).
    pub fn logged(&self, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found: Vec<Value> = self
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|e| keep(e))
                .cloned()
                .collect();
            if !found.is_empty() || Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every line logged so far and from now on, readable after the server has stopped.
    pub fn log_handle(&self) -> Arc<Mutex<Vec<Value>>> {
        Arc::clone(&self.log)
    }

    /// The server's resident memory (VmRSS), in KiB.
    pub fn resident_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new connection with a read timeout of `PATIENCE`.
    pub fn connect(&self) -> TcpStream {
        connect(&self.address).expect("connect")
    }

    /// One request on its own connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: &str,
    ) -> io::Result<Response> {
        request(&self.address, method, path, bearer, body)
    }

    /// Runs one GraphQL operation and returns the whole response body.
    pub fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let response = self
            .request("POST", "/graphql", token, &body)
            .expect("graphql request");
        serde_json::from_str(&response.body)
            .unwrap_or_else(|_| panic!("not JSON: {}{}", response.head, response.body))
    }

    /// Runs an operation that must succeed and returns its `data`.
    pub fn graphql_ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.graphql(token, query, variables);
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    pub fn login(&self, email: &str, password: &str) -> String {
        let data = self.graphql_ok(None, super::LOGIN, json!({ "e": email, "p": password }));
        data["login"]["token"].as_str().unwrap().to_owned()
    }

    /// Creates an API key for the token's account; returns its plaintext.
    pub fn create_key(&self, token: &str, name: &str, require_signature: bool) -> String {
        let data = self.graphql_ok(
            Some(token),
            "mutation($n: String!, $s: Boolean!) { createApiKey(name: $n, requireSignature: $s) { key } }",
            json!({ "n": name, "s": require_signature }),
        );
        data["createApiKey"]["key"].as_str().unwrap().to_owned()
    }

    /// Moves an account to another plan as `admin`.
    pub fn set_plan(&self, admin: &str, account_id: &str, plan: &str) {
        self.graphql_ok(
            Some(admin),
            &format!("mutation($a: ID!) {{ adminSetPlan(accountId: $a, plan: {plan}) {{ id }} }}"),
            json!({ "a": account_id }),
        );
    }

    /// Signs up a member with its own account and creates a key for it.
    pub fn member_with_key(&self, email: &str) -> Member {
        let signed_up = self.graphql_ok(
            None,
            super::SIGN_UP,
            json!({ "e": email, "p": super::PASSWORD, "n": "Hooks" }),
        );
        let token = signed_up["signUp"]["token"].as_str().unwrap().to_owned();
        let created = self.graphql_ok(
            Some(&token),
            "mutation { createApiKey(name: \"hook\") { key apiKey { id } } }",
            json!({}),
        );
        Member {
            account_id: signed_up["signUp"]["user"]["account"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            key: created["createApiKey"]["key"].as_str().unwrap().to_owned(),
            key_id: created["createApiKey"]["apiKey"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            token,
        }
    }

    /// Stops the server with SIGTERM (in-flight requests finish, the recorder's queue is
    /// written) and returns what it printed on stdout.
    pub fn stop(mut self) -> String {
        terminate(&self.child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "graceful shutdown exits 0, got {status}");
                let mut out = String::new();
                if let Some(mut stdout) = self.child.stdout.take() {
                    stdout.read_to_string(&mut out).unwrap();
                }
                // Every line it logged is read once it has exited.
                if let Some(reader) = self.reader.take() {
                    reader.join().ok();
                }
                return out;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not stop on SIGTERM");
    }

    /// Kills the server with SIGKILL: no shutdown, no flush.
    pub fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().ok();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

// ---- A small HTTP/1.1 client ------------------------------------------------------------------

/// One HTTP response: the status, the head as sent (status line and headers) and the body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

pub fn connect(address: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    Ok(stream)
}

/// One request on its own connection (`Connection: close`). Fails when the server is gone or
/// closes the connection before a whole response.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> io::Result<Response> {
    let mut stream = connect(address)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let auth = bearer
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: tally\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    read_response(&mut stream)
}

/// A `GET` on a connection that stays open (keep-alive).
pub fn get(stream: &mut TcpStream, path: &str) -> Response {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: tally\r\n\r\n").unwrap();
    read_response(stream).expect("a response")
}

/// Reads one response: by its `Content-Length`, its chunks, or up to the end of a connection the
/// server closes.
pub fn read_response(stream: &mut TcpStream) -> io::Result<Response> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let rest = &raw[end + 4..];
            let lower = head.to_ascii_lowercase();
            let body = if let Some(length) = content_length(&lower) {
                (rest.len() >= length).then(|| String::from_utf8_lossy(&rest[..length]))
            } else if lower.contains("transfer-encoding: chunked") {
                find(rest, b"0\r\n\r\n").map(|_| dechunk(&String::from_utf8_lossy(rest)).into())
            } else if lower.contains("connection: close") {
                None
            } else {
                // Neither a length nor chunks on a connection kept open: no body.
                Some("".into())
            };
            if let Some(body) = body {
                return Ok(response(head, body.into_owned()));
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(err) => return Err(err),
        }
    }
    // The server closed the connection: what came is the whole response, if it has a head.
    let text = String::from_utf8_lossy(&raw).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if !head.is_empty() => Ok(response(head.to_owned(), body.to_owned())),
        _ => Err(io::Error::new(
            ErrorKind::UnexpectedEof,
            format!("connection closed mid-response: {text:?}"),
        )),
    }
}

/// Waits until the server closes the connection; returns how long that took.
pub fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return since.elapsed(),
            Ok(_) => continue,
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return since.elapsed(),
            Err(err) => panic!("the server kept the connection open: {err}"),
        }
    }
}

fn response(head: String, body: String) -> Response {
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Response { status, head, body }
}

fn content_length(lower_head: &str) -> Option<usize> {
    lower_head.lines().find_map(|line| {
        line.strip_prefix("content-length:")
            .and_then(|value| value.trim().parse().ok())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}
