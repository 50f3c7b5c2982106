//! Shared end-to-end helpers: a real server on 127.0.0.1:0 over a temp SQLite file, keys, and
//! a small JSON client. Every test file uses these; none starts a server its own way.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use opsiq::core::Opsiq;
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

    /// A server over the database at `db` (created if new).
    pub async fn start_at(db: &Path) -> Self {
        Self::start_with(db, ServerConfig::default()).await
    }

    pub async fn start_with(db: &Path, config: ServerConfig) -> Self {
        let opsiq = Opsiq::open(db).expect("open database");
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
