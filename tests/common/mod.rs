//! Shared end-to-end helpers: a real server on 127.0.0.1:0 over a temp SQLite file, keys, and
//! a small JSON client. Every test file uses these; none starts a server its own way.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use opsiq::core::Opsiq;
use opsiq::core::store::sqlite::SqliteConfig;
use opsiq::core::types::Id;
use opsiq::core::{Scope, keys::IssuedKey};
use opsiq::http::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server; stop it with [`TestServer::stop`] (dropping it stops it too).
pub struct TestServer {
    pub addr: SocketAddr,
    pub opsiq: Opsiq,
    pub db: PathBuf,
    dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server over a new database in a temp directory.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("opsiq.db");
        let mut server = Self::start_at(&db).await;
        server.dir = Some(dir);
        server
    }

    /// A server over the database at `db` (created if new), without the webhook worker: tests
    /// that create endpoints at random URLs (the fuzzer) must never send anything off this
    /// machine. Webhook tests turn the worker on with [`fast_webhooks`].
    pub async fn start_at(db: &Path) -> Self {
        Self::start_with(
            db,
            ServerConfig {
                webhooks: None,
                ..ServerConfig::default()
            },
        )
        .await
    }

    pub async fn start_with(db: &Path, config: ServerConfig) -> Self {
        Self::start_with_store(db, SqliteConfig::default(), config).await
    }

    /// A server whose SQLite store has the given settings (a short busy timeout, say).
    pub async fn start_with_store(db: &Path, store: SqliteConfig, config: ServerConfig) -> Self {
        // Tests make thousands of requests with one key (the fuzzer); the limits have tests of
        // their own.
        let opsiq = Opsiq::open_with(db, store)
            .expect("open database")
            .with_rate_limit(1_000_000);
        opsiq.bootstrap().expect("bootstrap");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(opsiq::http::run(listener, opsiq.clone(), config, async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            opsiq,
            db: db.to_path_buf(),
            dir: None,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and hands back the temp directory (so the file survives for
    /// a restart).
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
        self.opsiq.store().flush().expect("flush");
        self.dir.take()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Keeps a temp directory alive as long as the server.
    pub fn keep(&mut self, dir: tempfile::TempDir) {
        self.dir = Some(dir);
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A key of workspace 1 with the given scopes.
    pub fn key(&self, scopes: &[Scope]) -> String {
        self.key_in(Id(1), scopes)
    }

    pub fn key_in(&self, workspace: Id, scopes: &[Scope]) -> String {
        self.issue(workspace, scopes).secret
    }

    pub fn issue(&self, workspace: Id, scopes: &[Scope]) -> IssuedKey {
        self.opsiq
            .create_key(workspace, None, "test-key", scopes)
            .expect("create key")
    }

    /// A key holding every scope.
    pub fn admin_key(&self) -> String {
        self.key(&Scope::ALL)
    }

    pub fn client(&self, key: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.base(),
            key: Some(key.to_string()),
        }
    }

    pub fn anonymous(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: self.base(),
            key: None,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A response: status, parsed JSON body, and the `X-Request-Id` header.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub request_id_header: Option<String>,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Asserts a status, printing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

/// A JSON client bound to one key.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub key: Option<String>,
}

impl Client {
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let res = req.send().await.expect("request");
        Self::reply(res).await
    }

    pub async fn send_raw(&self, method: Method, path: &str, body: Vec<u8>) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .body(body);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        Self::reply(req.send().await.expect("request")).await
    }

    async fn reply(res: reqwest::Response) -> Reply {
        let status = res.status();
        let request_id_header = res
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON body ({status}): {text}"));
        Reply {
            status,
            body,
            request_id_header,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&body)).await
    }

    /// POSTs `body`, expects 201, and returns the created row's id.
    pub async fn create(&self, path: &str, body: Value) -> i64 {
        self.post(path, body).await.expect(201).data()["id"]
            .as_i64()
            .expect("an id")
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(&body)).await
    }

    /// Follows `next_cursor` to the end of a list, returning every item.
    pub async fn get_all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next: Option<String> = None;
        loop {
            let page_path = match &next {
                Some(c) => format!("{path}{sep}cursor={c}"),
                None => path.to_string(),
            };
            let reply = self.get(&page_path).await.expect(200);
            items.extend(reply.data().as_array().expect("a list").iter().cloned());
            match reply.body["next_cursor"].as_str() {
                Some(c) => next = Some(c.to_string()),
                None => return items,
            }
        }
    }
}

/// A server config whose webhook worker polls fast and retries after 50 ms, so tests see a
/// whole retry schedule in well under a second.
pub fn fast_webhooks(allow_private: bool) -> ServerConfig {
    let mut config = ServerConfig::default();
    let webhooks = config
        .webhooks
        .as_mut()
        .expect("the worker is on by default");
    webhooks.allow_private = allow_private;
    webhooks.poll_interval = std::time::Duration::from_millis(20);
    webhooks.retry.schedule = vec![std::time::Duration::from_millis(50); 8];
    config
}

/// Permits of an open [`Receiver`] gate: more than any test sends.
const OPEN: usize = 1 << 20;

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver on 127.0.0.1: records every request and answers each with the next
/// scripted response (the last one repeats). Stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    /// Closed while the receiver holds its answers (see [`Receiver::holding`]).
    gate: std::sync::Arc<tokio::sync::Semaphore>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub async fn ok() -> Self {
        Self::scripted(vec![(200, vec![])]).await
    }

    /// Answers with `(status, extra headers)` in turn; the last answer repeats.
    pub async fn scripted(script: Vec<(u16, Vec<(&'static str, &'static str)>)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, script)
    }

    /// Answers 200 on a given address (to come back up on a port that was down).
    pub async fn ok_at(addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, vec![(200, vec![])])
    }

    /// Records requests but answers none until [`Receiver::release`]: a stuck endpoint.
    pub async fn holding() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self::serve(listener, vec![(200, vec![])]);
        receiver.gate.forget_permits(OPEN);
        receiver
    }

    /// Lets a holding receiver answer.
    pub fn release(&self) {
        self.gate.add_permits(OPEN);
    }

    fn serve(
        listener: tokio::net::TcpListener,
        script: Vec<(u16, Vec<(&'static str, &'static str)>)>,
    ) -> Self {
        use http_body_util::BodyExt;
        let addr = listener.local_addr().unwrap();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Received>::new()));
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(OPEN));
        let (tx, mut rx) = oneshot::channel::<()>();
        let (log, script, gate_in) = (received.clone(), std::sync::Arc::new(script), gate.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted { Ok((s, _)) => s, Err(_) => continue },
                    _ = &mut rx => return,
                };
                let (log, script, gate) = (log.clone(), script.clone(), gate_in.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (log, script, gate) = (log.clone(), script.clone(), gate.clone());
                            async move {
                                let headers = req
                                    .headers()
                                    .iter()
                                    .map(|(n, v)| {
                                        (
                                            n.as_str().to_string(),
                                            v.to_str().unwrap_or("").to_string(),
                                        )
                                    })
                                    .collect();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let n = {
                                    let mut log = log.lock().unwrap();
                                    let at = std::time::Instant::now();
                                    log.push(Received {
                                        headers,
                                        body: String::from_utf8_lossy(&body).into_owned(),
                                        at,
                                    });
                                    log.len()
                                };
                                let _pass = gate.acquire().await;
                                let (status, extra) = script
                                    .get(n - 1)
                                    .or(script.last())
                                    .cloned()
                                    .unwrap_or((200, vec![]));
                                let answer = bytes::Bytes::from(format!("answer {n}"));
                                let mut res =
                                    hyper::Response::new(http_body_util::Full::new(answer));
                                *res.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                                for (name, value) in extra {
                                    res.headers_mut().insert(name, value.parse().unwrap());
                                }
                                Ok::<_, std::convert::Infallible>(res)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            received,
            gate,
            stop: Some(tx),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (at most 30 s) until `done` holds for the requests received.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let got = self.requests();
            if done(&got) {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; got {} requests",
                got.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Waits (at most 30 s) until `check` returns a value.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
