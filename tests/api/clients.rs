//! The developer docs' client snippets in `examples/clients/`, each run as a real program (bash
//! and curl, Node's fetch, PHP's curl, Python's requests) against a test server, with only
//! `OPSIQ_URL` and `OPSIQ_KEY` set.
//!
//! `scripts/test` installs the interpreters. A missing one fails the test and says so: a
//! snippet that was never run must not pass as one that works.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::TestServer;

/// How long one snippet may run before it is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Snippet {
    Curl,
    Fetch,
    Php,
    Python,
}

impl Snippet {
    const ALL: [Snippet; 4] = [Snippet::Curl, Snippet::Fetch, Snippet::Php, Snippet::Python];

    fn file(self) -> &'static str {
        match self {
            Snippet::Curl => "curl.sh",
            Snippet::Fetch => "fetch.mjs",
            Snippet::Php => "contacts.php",
            Snippet::Python => "analytics.py",
        }
    }

    fn interpreter(self) -> PathBuf {
        match self {
            Snippet::Curl => "bash".into(),
            Snippet::Fetch => "node".into(),
            Snippet::Php => "php".into(),
            Snippet::Python => repo().join("target/pyenv/bin/python"),
        }
    }

    /// Arguments that make the interpreter exit 0 only if it has what the snippet uses.
    fn probe(self) -> (&'static [&'static str], &'static str) {
        match self {
            Snippet::Curl => (&["-c", "command -v curl"], "bash and curl"),
            Snippet::Fetch => (
                &["-e", "process.exit(typeof fetch === 'function' ? 0 : 1)"],
                "Node 20 (global fetch)",
            ),
            Snippet::Php => (
                &["-r", "exit(function_exists('curl_init') ? 0 : 1);"],
                "php-cli and php-curl",
            ),
            Snippet::Python => (
                &["-c", "import requests"],
                "the venv target/pyenv with requests",
            ),
        }
    }

    /// Fails the test, naming what to install, unless the snippet can run here.
    #[track_caller]
    fn require(self) {
        let (args, needs) = self.probe();
        let interpreter = self.interpreter();
        let ok = Command::new(&interpreter)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "examples/clients/{} needs {needs} ({} is missing or incomplete): run scripts/test, \
             which installs php and the Python venv (Node.js comes with the machine)",
            self.file(),
            interpreter.display()
        );
    }

    /// Runs the snippet against `server` with `key`; blocks, so call it in `block_in_place`.
    fn run(self, server: &TestServer, key: &str) -> Ran {
        self.require();
        let out = tempfile::tempdir().expect("temp dir");
        let (stdout, stderr) = (out.path().join("stdout"), out.path().join("stderr"));
        let mut child = Command::new(self.interpreter())
            .arg(repo().join("examples/clients").join(self.file()))
            .env("OPSIQ_URL", server.base())
            .env("OPSIQ_KEY", key)
            .env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start the snippet");
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the snippet") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} still running after {TIMEOUT:?}", self.file());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ran {
            snippet: self,
            status,
            stdout: std::fs::read_to_string(stdout).expect("read stdout"),
            stderr: std::fs::read_to_string(stderr).expect("read stderr"),
        }
    }
}

/// A finished snippet.
struct Ran {
    snippet: Snippet,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    #[track_caller]
    fn expect_success(self) -> Self {
        assert!(self.status.success(), "{self}");
        self
    }

    /// Every JSON value printed on stdout, in order.
    #[track_caller]
    fn json(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "examples/clients/{} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            self.snippet.file(),
            self.status,
            self.stdout,
            self.stderr
        )
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Asserts a success envelope and returns its `data`.
#[track_caller]
fn envelope(reply: &Value) -> &Value {
    assert_eq!(reply["success"], true, "{reply}");
    let request_id = reply["request_id"].as_str().unwrap_or_default();
    assert!(request_id.starts_with("req_"), "no request_id: {reply}");
    &reply["data"]
}

/// Turns a Python literal, as `print(r.json())` writes it, into JSON, with the venv's Python.
fn python_literal_to_json(literal: &str) -> Value {
    let mut child = Command::new(Snippet::Python.interpreter())
        .args([
            "-c",
            "import ast, json, sys; print(json.dumps(ast.literal_eval(sys.stdin.read())))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(literal.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("run python");
    assert!(out.status.success(), "not a Python literal: {literal}");
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_sh_runs_the_docs_curl_lines_and_prints_each_response() {
    let server = TestServer::start().await;
    let key = server.admin_key();
    let ran = tokio::task::block_in_place(|| Snippet::Curl.run(&server, &key)).expect_success();
    let replies = ran.json();
    let [contact, tickets, summary, openapi] = replies.as_slice() else {
        panic!("expected four JSON responses: {ran}");
    };

    let contact = envelope(contact);
    assert_eq!(
        (contact["name"].as_str(), contact["email"].as_str()),
        (Some("Ada Lovelace"), Some("ada@example.com"))
    );
    let path = format!("/api/v1/contacts/{}", contact["id"]);
    let stored = server.client(&key).get(&path).await.expect(200);
    assert_eq!(stored.data()["email"], "ada@example.com");

    assert!(envelope(tickets).is_array(), "{tickets}");
    assert!(envelope(summary).is_object(), "{summary}");

    let version = openapi["openapi"].as_str().unwrap_or_default();
    assert!(
        version.starts_with("3."),
        "not an OpenAPI document: {openapi}"
    );
    let paths = openapi["paths"].as_object().expect("OpenAPI paths");
    for noun in ["/contacts", "/tickets"] {
        assert!(
            paths.keys().any(|p| p.ends_with(noun)),
            "no {noun} path in {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_mjs_creates_the_docs_ticket_and_prints_it() {
    let server = TestServer::start().await;
    let key = server.admin_key();
    let ran = tokio::task::block_in_place(|| Snippet::Fetch.run(&server, &key)).expect_success();
    let [reply] = ran.json().try_into().unwrap_or_else(|_| panic!("{ran}"));

    let ticket = envelope(&reply);
    assert_eq!(
        (
            ticket["customer_email"].as_str(),
            ticket["subject"].as_str(),
            ticket["status"].as_str()
        ),
        (
            Some("customer@example.com"),
            Some("Need help"),
            Some("open")
        )
    );
    let path = format!("/api/v1/tickets/{}", ticket["id"]);
    let stored = server.client(&key).get(&path).await.expect(200);
    assert_eq!(stored.data()["body"], "The checkout page is failing.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_php_creates_the_docs_contact_and_prints_it() {
    let server = TestServer::start().await;
    let key = server.admin_key();
    let ran = tokio::task::block_in_place(|| Snippet::Php.run(&server, &key)).expect_success();
    let [reply] = ran.json().try_into().unwrap_or_else(|_| panic!("{ran}"));

    let contact = envelope(&reply);
    assert_eq!(
        (contact["name"].as_str(), contact["email"].as_str()),
        (Some("Ada Lovelace"), Some("ada@example.com"))
    );
    let path = format!("/api/v1/contacts/{}", contact["id"]);
    let stored = server.client(&key).get(&path).await.expect(200);
    assert_eq!(stored.data()["name"], "Ada Lovelace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_py_prints_the_30_day_summary() {
    let server = TestServer::start().await;
    let key = server.admin_key();
    let (ran, reply) = tokio::task::block_in_place(|| {
        let ran = Snippet::Python.run(&server, &key).expect_success();
        let reply = python_literal_to_json(&ran.stdout);
        (ran, reply)
    });
    assert!(envelope(&reply).is_object(), "{ran}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snippet_exits_non_zero_and_shows_the_error_body_when_a_request_fails() {
    let server = TestServer::start().await;
    let runs = tokio::task::block_in_place(|| {
        Snippet::ALL.map(|snippet| snippet.run(&server, "opq_not_a_key_of_this_server"))
    });
    for ran in runs {
        assert!(!ran.status.success(), "{ran}");
        let output = format!("{}{}", ran.stdout, ran.stderr);
        assert!(
            output.contains(r#""success":false"#) && output.contains("req_"),
            "the error body is not shown: {ran}"
        );
    }
}
