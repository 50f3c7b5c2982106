//! The hyper server: accepts connections, reads requests within limits, runs them through the
//! core (bounded reads in place, the rest on fixed thread pools), writes the envelope back, and
//! drains on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use opsiq_core::Opsiq;
use opsiq_core::api::{ApiRequest, ApiResponse, Door, EXTRA_HEADERS, MAX_BODY_BYTES};
use opsiq_core::error::Error;
use opsiq_core::types::RequestId;
use serde_json::json;
use tokio::net::TcpListener;

use crate::pool::{Panicked, Pool, run_here};
use crate::router::{Routed, Router};
use crate::webhooks::{WebhookConfig, run_worker};

/// Limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub max_body_bytes: usize,
    /// A client must send its request headers within this time (slow or idle clients are cut
    /// off).
    pub header_read_timeout: Duration,
    /// The largest request head (request line and headers) read; larger ones answer 431.
    pub max_header_bytes: usize,
    /// Connections served at once; past it new connections are closed at once (and logged).
    pub max_connections: usize,
    /// Bounded reads (REST routes of actions that change nothing and scan nothing: one row or
    /// one page) run on the runtime's own threads instead of a pool thread. They take a few
    /// tens of microseconds, less than the hand-off to a pool thread and back; a read that
    /// has to wait for the disk holds its runtime thread meanwhile.
    pub inline_reads: bool,
    /// Threads that run the reads not run inline: those that scan (`analytics.summary`), and
    /// every read when `inline_reads` is off. More reads wait in a queue, holding no thread.
    pub read_threads: usize,
    /// Threads that run every other call: writes, and the action endpoint (whose action is
    /// only known once its body is read). Writes waiting together share one commit, so this
    /// should not be much below the writers expected at once.
    ///
    /// The two bound the threads, and the memory each keeps, however many connections there
    /// are.
    pub call_threads: usize,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
    /// The webhook delivery worker's settings; `None` runs no worker.
    pub webhooks: Option<WebhookConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: MAX_BODY_BYTES,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            inline_reads: true,
            read_threads: 4,
            call_threads: 32,
            drain_timeout: Duration::from_secs(10),
            webhooks: Some(WebhookConfig::default()),
        }
    }
}

struct App {
    opsiq: Opsiq,
    router: Router,
    config: ServerConfig,
    /// Threads that run reads in the core (see `ServerConfig::read_threads`).
    reads: Pool,
    /// Threads that run any other call (see `ServerConfig::call_threads`).
    calls: Pool,
    /// When the webhook worker last went round its loop (unix ms; 0 before it starts).
    heartbeat: Arc<AtomicI64>,
}

/// Serves `opsiq` on `listener` until `shutdown` completes, then stops accepting and waits (up
/// to the drain timeout) for requests in flight.
pub async fn run(
    listener: TcpListener,
    opsiq: Opsiq,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = Arc::new(App {
        router: Router::new(opsiq.catalog()),
        reads: Pool::new("opsiq-read", config.read_threads)?,
        calls: Pool::new("opsiq-call", config.call_threads)?,
        opsiq,
        config,
        heartbeat: Arc::new(AtomicI64::new(0)),
    });
    let (stop_worker, worker_stop) = tokio::sync::watch::channel(false);
    let worker = app.config.webhooks.clone().map(|config| {
        tokio::spawn(run_worker(
            app.opsiq.clone(),
            config,
            worker_stop,
            app.heartbeat.clone(),
        ))
    });
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(tokio::sync::Semaphore::new(app.config.max_connections));
    let mut last_refusal_log = None::<Instant>;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = connections.clone().try_acquire_owned() else {
                    // Dropping the stream closes it. Logged at most once a second.
                    if last_refusal_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(
                            limit = app.config.max_connections,
                            "connection limit reached: refusing new connections until some close"
                        );
                        last_refusal_log = Some(Instant::now());
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let timeout = app.config.header_read_timeout;
                let max_head = app.config.max_header_bytes.max(8192);
                let app = app.clone();
                let service = service_fn(move |req| handle(app.clone(), req));
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(timeout)
                    .max_buf_size(max_head)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_worker.send(true);
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    let drain = app.config.drain_timeout;
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {drain:?}; closing them");
    }
    Ok(())
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let request_id = RequestId::generate();
    // The method and path are copied only into an error that names them.
    let (method, path) = (req.method(), req.uri().path());
    let response = match app.router.route(method.as_str(), path) {
        Routed::Health => json_response(200, br#"{"status":"ok"}"#.to_vec(), &request_id),
        Routed::OpenApi => json_response(200, app.router.openapi().into(), &request_id),
        Routed::Ready => {
            let (status, body) = readiness(&app).await;
            json_response(status, body.to_string().into_bytes(), &request_id)
        }
        Routed::NotFound => {
            let error = Error::RouteNotFound {
                method: method.to_string(),
                path: path.to_owned(),
            };
            reply(app.opsiq.reject(request_id, started, error))
        }
        Routed::MethodNotAllowed { allowed } => {
            let allow = allowed.join(", ");
            let error = Error::MethodNotAllowed {
                method: method.to_string(),
                path: path.to_owned(),
                allowed: allowed.iter().map(|s| s.to_string()).collect(),
            };
            let mut response = reply(app.opsiq.reject(request_id, started, error));
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        Routed::Action {
            action,
            path_params,
        } => {
            call_core(&app, req, request_id, started, |query| Door::Rest {
                action,
                path_params,
                query,
            })
            .await
        }
        Routed::ActionEndpoint => {
            call_core(&app, req, request_id, started, |_| Door::ActionEndpoint).await
        }
    };
    Ok(response)
}

/// The readiness report: the database answers a read and commits a write, its schema is the
/// one this build expects, and the webhook worker is going round its loop.
async fn readiness(app: &App) -> (u16, serde_json::Value) {
    let opsiq = app.opsiq.clone();
    let database = tokio::task::spawn_blocking(move || opsiq.store().health(false)).await;
    let (database, migrations) = match database {
        Ok(Ok(h)) => {
            let current = h.schema_version == h.expected_schema_version;
            (
                json!({"ok": true}),
                json!({"ok": current, "schema_version": h.schema_version, "expected": h.expected_schema_version}),
            )
        }
        Ok(Err(e)) => (
            json!({"ok": false, "error": e.to_string()}),
            json!({"ok": false, "error": "unknown: the database did not answer"}),
        ),
        Err(e) => (
            json!({"ok": false, "error": e.to_string()}),
            json!({"ok": false}),
        ),
    };
    let worker = match &app.config.webhooks {
        None => json!({"ok": true, "running": false, "note": "this server runs no webhook worker"}),
        Some(config) => {
            let last = app.heartbeat.load(Ordering::Relaxed);
            let stale_after = (config.poll_interval * 10)
                .max(Duration::from_secs(5))
                .as_millis() as i64;
            let age = opsiq_core::types::Timestamp::now().millis() - last;
            let running = last > 0 && age <= stale_after;
            json!({"ok": running, "running": running, "last_seen_ms_ago": (last > 0).then_some(age)})
        }
    };
    let ready = [&database, &migrations, &worker]
        .iter()
        .all(|c| c["ok"] == true);
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {"database": database, "migrations": migrations, "webhook_worker": worker},
    });
    (if ready { 200 } else { 503 }, body)
}

/// Reads the request within its limits and runs it through the core's pipeline: a bounded
/// read in place, anything else on one of the pools.
async fn call_core(
    app: &App,
    req: Request<Incoming>,
    request_id: RequestId,
    started: Instant,
    door: impl FnOnce(Vec<(String, String)>) -> Door,
) -> Response<Full<Bytes>> {
    let RequestParts {
        authorization,
        idempotency_key,
        query,
        body,
    } = match read_request(req, app.config.max_body_bytes).await {
        Ok(parts) => parts,
        Err(error) => return reply(app.opsiq.reject(request_id, started, error)),
    };
    let api = ApiRequest {
        request_id,
        started,
        authorization,
        door: door(query),
        idempotency_key,
        body,
    };
    let opsiq = app.opsiq.clone();
    let id = api.request_id.clone();
    let action = match &api.door {
        Door::Rest { action, .. } => opsiq.catalog().get(action),
        Door::ActionEndpoint => None,
    };
    let reads = action.is_some_and(|a| !a.mutates);
    let answer = if reads && app.config.inline_reads && action.is_some_and(|a| !a.scans) {
        // A bounded read (one row, one page) runs here: handing it to a pool thread and back
        // cost more than the read itself.
        run_here(|| opsiq.handle(api))
    } else {
        let pool = if reads { &app.reads } else { &app.calls };
        pool.run(move || opsiq.handle(api)).await
    };
    match answer {
        Ok(answer) => reply(answer),
        Err(Panicked) => reply(app.opsiq.reject(
            id,
            started,
            Error::Internal("the request handler failed".into()),
        )),
    }
}

/// What the pipeline takes from a request.
struct RequestParts {
    authorization: Option<String>,
    /// The `Idempotency-Key` of a POST (other methods are idempotent by themselves).
    idempotency_key: Option<String>,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

/// Takes the parts the pipeline needs: the Authorization header, the query pairs and the body
/// (refused with 413 past the limit, before it is read whole).
async fn read_request(req: Request<Incoming>, limit: usize) -> Result<RequestParts, Error> {
    let header = |name| {
        req.headers()
            .get(name)
            .map(|v: &HeaderValue| match std::str::from_utf8(v.as_bytes()) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })
    };
    let authorization = header(header::AUTHORIZATION.as_str());
    let idempotency_key = if req.method() == hyper::Method::POST {
        header("idempotency-key")
    } else {
        None
    };
    let query = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    if req.body().size_hint().lower() > limit as u64 {
        return Err(Error::PayloadTooLarge { limit });
    }
    let collected = Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Error::PayloadTooLarge { limit }
            } else {
                Error::InvalidJson(format!("the request body could not be read: {e}"))
            }
        })?;
    let bytes = collected.to_bytes();
    Ok(RequestParts {
        authorization,
        idempotency_key,
        query,
        body: (!bytes.is_empty()).then(|| bytes.to_vec()),
    })
}

fn reply(answer: ApiResponse) -> Response<Full<Bytes>> {
    let mut response = json_response(answer.status, answer.body, &answer.request_id);
    for (name, value) in answer.headers {
        let Some(name) = header_name(name) else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Checked once, at compile time, rather than by `insert` on every answer.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The names of the core's extra headers, parsed once: a name given as a string is parsed
/// again on every insert, three times an answer for the rate limit's.
static CORE_HEADERS: LazyLock<Vec<HeaderName>> = LazyLock::new(|| {
    EXTRA_HEADERS
        .iter()
        .map(|name| HeaderName::from_static(name))
        .collect()
});

fn header_name(name: &str) -> Option<HeaderName> {
    match CORE_HEADERS.iter().find(|known| known.as_str() == name) {
        Some(known) => Some(known.clone()),
        None => HeaderName::from_bytes(name.as_bytes()).ok(),
    }
}

fn json_response(status: u16, body: Vec<u8>, request_id: &RequestId) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        headers.insert(X_REQUEST_ID, value);
    }
    response
}
