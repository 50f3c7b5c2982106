//! The HTTP side of the benchmark: the load generator (keep-alive HTTP/1.1 connections, each
//! sending its next request when the last answer is read whole), the bare hyper baseline
//! server, and the webhook receiver.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};

/// Builds the `n`th request of an operation.
pub type MakeRequest = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

/// What one operation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// Answers that completed inside the measured window.
    pub requests: u64,
    /// Every success the server answered, warm-up and the requests in flight at the end
    /// included: what a write's durability is checked against.
    pub acknowledged: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The server's CPU time (user and system, all threads) per measured request, in
    /// microseconds: steadier than requests/s on a shared machine, and what a fix should cut.
    pub server_cpu_us: f64,
    /// How often the scheduler moved one of the server's threads to another core, per 1,000
    /// measured requests, and how often it switched one out, per request: the run-to-run
    /// differences in a read's CPU time are looked for in these.
    pub server_migrations_per_1k: f64,
    pub server_switches_per_request: f64,
    /// The first failure seen, to name what went wrong.
    pub first_error: Option<String>,
    /// What `Measured::combined` adds up: the latencies, the measured seconds and what the
    /// server's threads did.
    #[serde(skip)]
    latencies: Histogram<u64>,
    #[serde(skip)]
    seconds: f64,
    #[serde(skip)]
    server: ServerSample,
}

impl Measured {
    fn new(all: Tally, seconds: f64, server: ServerSample) -> Measured {
        let ms = |q: f64| all.histogram.value_at_quantile(q) as f64 / 1000.0;
        let per_request = |n: f64| n / all.requests.max(1) as f64;
        Measured {
            requests: all.requests,
            acknowledged: all.acknowledged,
            errors: all.errors,
            rps: all.requests as f64 / seconds,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: all.histogram.max() as f64 / 1000.0,
            server_cpu_us: per_request(server.cpu_seconds * 1e6),
            server_migrations_per_1k: per_request(server.migrations as f64 * 1000.0),
            server_switches_per_request: per_request(server.switches as f64),
            first_error: all.first_error,
            latencies: all.histogram,
            seconds,
            server,
        }
    }

    /// Runs of one operation taken as one: their requests over their seconds, the
    /// percentiles of all their latencies together.
    pub fn combined(parts: &[Measured]) -> Measured {
        let mut all = Tally::new();
        let (mut seconds, mut server) = (0.0, ServerSample::default());
        for part in parts {
            all.histogram.add(&part.latencies).unwrap();
            all.requests += part.requests;
            all.acknowledged += part.acknowledged;
            all.errors += part.errors;
            if all.first_error.is_none() {
                all.first_error.clone_from(&part.first_error);
            }
            seconds += part.seconds;
            server = server.add(part.server);
        }
        Measured::new(all, seconds, server)
    }
}

struct Tally {
    histogram: Histogram<u64>,
    requests: u64,
    acknowledged: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
            requests: 0,
            acknowledged: 0,
            errors: 0,
            first_error: None,
        }
    }
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

/// Drives `addr` with `connections` connections for `warmup + duration`. Only answers that
/// complete inside the measured window count for the rate and latencies; every success counts
/// as acknowledged and every failure as an error, whenever it comes.
pub async fn drive(
    addr: SocketAddr,
    server_pid: u32,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    make: MakeRequest,
) -> Measured {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    // What the server's threads did over the measured window only.
    let server = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let from = ServerSample::take(server_pid);
        tokio::time::sleep_until(end.into()).await;
        ServerSample::take(server_pid).since(from)
    });
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (make, counter) = (make.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            'connect: while Instant::now() < end {
                let mut sender = match connect(addr).await {
                    Ok(s) => s,
                    Err(e) => {
                        tally.error(format!("connect: {e}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                while Instant::now() < end {
                    let req = make(counter.fetch_add(1, Ordering::Relaxed));
                    let sent = Instant::now();
                    let outcome = match sender.send_request(req).await {
                        Ok(resp) => {
                            let status = resp.status();
                            match resp.into_body().collect().await {
                                Ok(_) if status.is_success() => Ok(()),
                                Ok(body) => Err(format!(
                                    "{status}: {}",
                                    String::from_utf8_lossy(&body.to_bytes())
                                )),
                                Err(e) => Err(format!("reading the body: {e}")),
                            }
                        }
                        Err(e) => Err(format!("request: {e}")),
                    };
                    let done = Instant::now();
                    match outcome {
                        Ok(()) => {
                            tally.acknowledged += 1;
                            if (measure_from..=end).contains(&done) {
                                tally.requests += 1;
                                let us = (done - sent).as_micros().max(1) as u64;
                                tally.histogram.saturating_record(us);
                            }
                        }
                        // A failure counts in the warm-up too: it is not a matter of timing.
                        Err(e) => {
                            tally.error(e);
                            continue 'connect;
                        }
                    }
                    if done > end {
                        break 'connect;
                    }
                }
            }
            tally
        }));
    }
    let mut all = Tally::new();
    for task in tasks {
        let t = task.await.expect("a load task");
        all.histogram.add(&t.histogram).unwrap();
        all.requests += t.requests;
        all.acknowledged += t.acknowledged;
        all.errors += t.errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    let server = server.await.expect("the server's sampler");
    Measured::new(all, duration.as_secs_f64(), server)
}

async fn connect(
    addr: SocketAddr,
) -> Result<
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one request on a new connection and returns the status and body.
pub async fn once(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), Box<dyn std::error::Error + Send + Sync>> {
    let mut sender = connect(addr).await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

/// A request with a bearer key, and a JSON body when given.
pub fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    key: &str,
    body: Option<String>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {key}"));
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap()
}

/// The baseline's fixed answer: about 100 bytes of JSON, like a small API answer.
pub const BASELINE_BODY: &str = r#"{"success":true,"data":{"id":1,"status":"open","subject":"Cannot log in"},"request_id":"req_0000"}"#;

/// Runs the baseline server: bare hyper 1.x on tokio's default multi-thread runtime (as
/// `opsiq serve` uses), answering every request with [`BASELINE_BODY`], or `/bytes/{n}` with
/// an answer of `n` bytes. Prints its address, then serves until standard input closes.
pub fn run_baseline() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0);
        });
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let body = match req.uri().path().strip_prefix("/bytes/") {
                            Some(n) => sized_body(n.parse().unwrap_or(0)),
                            None => Bytes::from_static(BASELINE_BODY.as_bytes()),
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .unwrap(),
                        )
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// A JSON answer of exactly `size` bytes (at least the envelope's own), made once per size: what
/// the baseline serves at `/bytes/{size}`, to show the HTTP stack's limit for an answer as big
/// as an operation's.
fn sized_body(size: usize) -> Bytes {
    static MADE: Mutex<Vec<(usize, Bytes)>> = Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap();
    if let Some((_, body)) = made.iter().find(|(s, _)| *s == size) {
        return body.clone();
    }
    let (open, close) = (
        r#"{"success":true,"data":""#,
        r#"","request_id":"req_0000"}"#,
    );
    let fill = size.saturating_sub(open.len() + close.len());
    let body = Bytes::from(format!("{open}{}{close}", "x".repeat(fill)));
    made.push((size, body.clone()));
    body
}

/// What the webhook receiver has seen.
#[derive(Default)]
pub struct Received {
    pub ids: HashSet<String>,
    pub deliveries: u64,
    pub first: Option<Instant>,
    pub last: Option<Instant>,
}

/// Starts a webhook receiver on loopback that answers 200 to every delivery and records its
/// `webhook-id`. It runs until the runtime stops.
pub async fn start_receiver() -> (SocketAddr, Arc<Mutex<Received>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Received::default()));
    let seen = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let id = req
                                .headers()
                                .get("webhook-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            let _ = req.into_body().collect().await;
                            let mut seen = seen.lock().unwrap();
                            let now = Instant::now();
                            seen.first.get_or_insert(now);
                            seen.last = Some(now);
                            seen.deliveries += 1;
                            seen.ids.insert(id);
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, received)
}

/// What a process's threads have done so far: their CPU time, and the scheduler's moves and
/// switches of them (from each thread's `/proc/<pid>/task/<tid>/sched`; a thread that has
/// ended is no longer counted, and the server's threads live as long as it does).
#[derive(Debug, Clone, Copy, Default)]
struct ServerSample {
    cpu_seconds: f64,
    migrations: u64,
    switches: u64,
}

impl ServerSample {
    fn take(pid: u32) -> ServerSample {
        let mut sample = ServerSample {
            cpu_seconds: cpu_seconds(pid),
            ..ServerSample::default()
        };
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let sched = std::fs::read_to_string(task.path().join("sched")).unwrap_or_default();
            for line in sched.lines() {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim().parse::<u64>().unwrap_or(0);
                match name.trim() {
                    "se.nr_migrations" => sample.migrations += value,
                    "nr_switches" => sample.switches += value,
                    _ => {}
                }
            }
        }
        sample
    }

    fn since(self, from: ServerSample) -> ServerSample {
        ServerSample {
            cpu_seconds: self.cpu_seconds - from.cpu_seconds,
            migrations: self.migrations.saturating_sub(from.migrations),
            switches: self.switches.saturating_sub(from.switches),
        }
    }

    fn add(self, other: ServerSample) -> ServerSample {
        ServerSample {
            cpu_seconds: self.cpu_seconds + other.cpu_seconds,
            migrations: self.migrations + other.migrations,
            switches: self.switches + other.switches,
        }
    }
}

/// A process's CPU time so far (user and system, every thread), in seconds, from
/// `/proc/<pid>/stat` (fields 14 and 15, in USER_HZ ticks: 100 a second on Linux).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name in field 2 may hold spaces; the fields after it are plain.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}
