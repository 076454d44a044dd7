//! Driving the real `tally` binary: start it on a free port, talk HTTP to it, stop it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_tally");

pub fn tally(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TALLY_LOG_FORMAT", "json");
    command
}

pub struct Server {
    pub child: Child,
    pub address: String,
    stdout: String,
}

impl Server {
    /// Starts `tally` (no subcommand) in `dir` on a free port and waits until it listens.
    pub fn start(dir: &Path, extra_env: &[(&str, &str)]) -> Server {
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

    pub fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
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
    pub fn stop(mut self) -> String {
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
