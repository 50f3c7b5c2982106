//! The load benchmark: `cargo bench --bench load`.
//!
//! In one run it builds `opsiq` in release, seeds a realistic database, starts `opsiq serve`
//! and, beside it, a bare hyper server (the baseline: what the HTTP stack alone can do on this
//! machine), drives both with the same load generator, measures the storage's own limit (raw
//! rusqlite, one insert per transaction), the server's memory and start-up time, webhook
//! fan-out and how search and lists scale from 10k to 1M rows. It prints one table, writes
//! `target/bench/load.json`, and reports each target as pass or short. Nothing is timed in CI:
//! under `cargo test` the same code runs once at a tiny size and only checks that every
//! request succeeded.
//!
//! Settings (environment): `OPSIQ_BENCH_SECONDS` (per operation, default 10),
//! `OPSIQ_BENCH_CONNECTIONS` (default 64), `OPSIQ_BENCH_SCALE` (the large scale run's rows,
//! default 1000000; 0 skips the scale run), `OPSIQ_BENCH_ONLY` (what to run: operation numbers
//! from 0, `fanout`, `scale`, such as `0,2,fanout`), `OPSIQ_BENCH_WRAP` (a command the
//! server runs under, such as `perf record -g -o perf.data --`), `OPSIQ_BENCH_KEEP` (keep the
//! seeded databases, for profiling queries).

mod drive;
mod layers;
mod procs;
mod report;
mod seed;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drive::{MakeRequest, Measured, drive, request};
use layers::MakePath;
use opsiq::core::Opsiq;
use opsiq::core::store::sqlite::{Durability, SqliteConfig};
use procs::{Process, Server};
use report::{Layers, Report, Scale};
use seed::Size;
use serde_json::json;

/// An operation of the run: its name, its requests, and for a read its share of the
/// baseline wanted and its request targets (for the core-alone run).
type Operation<'a> = (&'a str, MakeRequest, Option<(f64, MakePath)>);

/// How big and how long a run is.
struct Plan {
    full: bool,
    size: Size,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    raw_seconds: f64,
    /// How long each read runs in-process, in the core alone.
    core_seconds: f64,
    webhook_events: usize,
    scale: Option<(usize, usize)>,
}

impl Plan {
    fn new(full: bool) -> Plan {
        let env = |name: &str, default: u64| -> u64 {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
                })
                .unwrap_or(default)
        };
        if full {
            let large = env("OPSIQ_BENCH_SCALE", 1_000_000) as usize;
            Plan {
                full,
                size: Size {
                    contacts: 100_000,
                    tickets: 100_000,
                    chats: 20_000,
                },
                connections: env("OPSIQ_BENCH_CONNECTIONS", 64) as usize,
                warmup: Duration::from_secs(2),
                duration: Duration::from_secs(env("OPSIQ_BENCH_SECONDS", 10)),
                raw_seconds: 5.0,
                core_seconds: 3.0,
                webhook_events: 10_000,
                scale: (large > 0).then_some((10_000, large)),
            }
        } else {
            // Under `cargo test`: the same steps, tiny, checking correctness only.
            Plan {
                full,
                size: Size {
                    contacts: 1_500,
                    tickets: 1_500,
                    chats: 60,
                },
                connections: 8,
                warmup: Duration::from_millis(100),
                duration: Duration::from_millis(700),
                raw_seconds: 0.3,
                core_seconds: 0.2,
                webhook_events: 100,
                scale: Some((500, 1_500)),
            }
        }
    }
}

fn main() {
    if std::env::var("OPSIQ_BENCH_ROLE").as_deref() == Ok("baseline") {
        drive::run_baseline();
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let plan = Plan::new(full);
    let binary = procs::opsiq_binary(full);
    let out_dir = procs::target_dir().join("bench");
    std::fs::create_dir_all(&out_dir).expect("create target/bench");
    let scratch = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(&out_dir)
        .expect("a scratch directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(run(&plan, &binary, scratch.path()));
    report.print();
    if std::env::var_os("OPSIQ_BENCH_KEEP").is_some() {
        println!("kept the databases in {}", scratch.keep().display());
    }
    if full {
        let path = out_dir.join("load.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&report.to_json()).unwrap())
            .expect("write load.json");
        println!("\nwritten to {}", path.display());
    } else {
        report.check_correct();
        println!("load benchmark (smoke size): every request succeeded");
    }
}

async fn run(plan: &Plan, binary: &Path, dir: &Path) -> Report {
    let mut report = Report::new(plan.connections, plan.duration, plan.size);
    say(plan, &format!("seeding {:?} ...", plan.size));
    let db = dir.join("opsiq.db");
    let seeded = seed::seed(&db, plan.size);
    report.seed_seconds = seeded.seconds;
    say(plan, &format!("seeded in {:.1} s", seeded.seconds));

    let baseline = Process::baseline();
    let started = Instant::now();
    let server = Server::start(binary, &db, false);
    let first = drive::once(
        server.addr,
        get(server.addr, &seeded.key, point_read(&seeded.ticket_ids))(0),
    )
    .await
    .expect("the first request");
    assert_eq!(
        first.0,
        200,
        "first request: {}",
        String::from_utf8_lossy(&first.1)
    );
    report.startup_ms = started.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    report.rss_idle_kb = server.rss_kb();

    let key = seeded.key.as_str();
    // Each operation, and for reads their targets and the share of the baseline's requests/s
    // wanted.
    let reads: [(&str, MakePath, f64); 3] = [
        (
            "GET /api/v1/tickets/{id}",
            point_read(&seeded.ticket_ids),
            0.5,
        ),
        ("GET /api/v1/contacts?q=…&limit=25", search(), 0.3),
        (
            "GET /api/v1/tickets?status=open&department_id=…&limit=50",
            filtered(seeded.department),
            0.3,
        ),
    ];
    let mut ops: Vec<Operation> = reads
        .iter()
        .map(|(name, paths, share)| {
            let make = get(server.addr, key, paths.clone());
            (*name, make, Some((*share, paths.clone())))
        })
        .collect();
    ops.push(("POST /api/v1/tickets", create(server.addr, key), None));
    ops.push(("POST /v1.php meta.me", meta_me(server.addr, key), None));
    let only: Option<Vec<String>> = std::env::var("OPSIQ_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|part| part.trim().to_string()).collect());
    let wanted = |part: &str| {
        only.as_ref()
            .is_none_or(|only| only.iter().any(|p| p == part))
    };
    let mut core_runs = Vec::new();
    for (i, (name, make, read)) in ops.into_iter().enumerate() {
        if !wanted(&i.to_string()) {
            continue;
        }
        let insert = name.starts_with("POST /api/v1/tickets");
        let (measured, base, rounds) = if let Some((share, _)) = &read {
            let baseline_turn = async |round| {
                say(plan, &format!("baseline, turn {round} of {ROUNDS} ..."));
                let request = baseline_request(baseline.addr);
                let measured = load_turn(plan, &baseline, request, round).await;
                (measured.rps, measured)
            };
            let (ours, bare, rounds) =
                turns(plan, &server, make.clone(), name, baseline_turn).await;
            let base = Measured::combined(&bare);
            (Measured::combined(&ours), Some((base, *share)), rounds)
        } else if insert {
            let mut raw = RawInserts::new(dir);
            let raw_turn = async |round| {
                say(
                    plan,
                    &format!("raw rusqlite inserts, turn {round} of {ROUNDS} ..."),
                );
                (raw.run(plan.raw_seconds / f64::from(ROUNDS)), ())
            };
            let (ours, _, rounds) = turns(plan, &server, make.clone(), name, raw_turn).await;
            report.raw_insert_rps = raw.rate();
            (Measured::combined(&ours), None, rounds)
        } else {
            say(plan, &format!("{name} ..."));
            (load(plan, &server, make.clone()).await, None, Vec::new())
        };
        say(
            plan,
            &format!(
                "  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {:.0} µs server CPU each \
                 ({:.1} thread migrations a 1,000, {:.2} switches each), {} errors {}",
                measured.rps,
                measured.p50_ms,
                measured.p99_ms,
                measured.server_cpu_us,
                measured.server_migrations_per_1k,
                measured.server_switches_per_request,
                measured.errors,
                measured.first_error.as_deref().unwrap_or("")
            ),
        );
        let layers = match read {
            Some((_, paths)) => {
                core_runs.push((report.ops.len(), paths));
                Some(layers(plan, &server, &baseline, make).await)
            }
            None => None,
        };
        report.ops.push(report::Op {
            name: name.to_string(),
            measured,
            baseline: base,
            rounds,
            insert,
            layers,
        });
    }
    report.rss_peak_kb = server.peak_rss_kb();
    drop(server);
    report.acknowledged_creates = report
        .ops
        .iter()
        .find(|op| op.insert)
        .map_or(0, |op| op.measured.acknowledged);
    report.stored_creates = count_load_tickets(&db);
    drop(baseline);
    // With nothing else running, each read in the core alone.
    for (i, paths) in core_runs {
        let op = &mut report.ops[i];
        say(plan, &format!("{} in the core alone ...", op.name));
        let run = Duration::from_secs_f64(plan.core_seconds);
        if let Some(layers) = &mut op.layers {
            layers.core = Some(layers::core_cost(&db, &seeded.key, &paths, run));
        }
    }

    if wanted("fanout") {
        say(plan, "webhook fan-out ...");
        report.webhooks = Some(webhook_fan_out(plan, binary, dir).await);
    }
    if let Some((small, large)) = plan.scale.filter(|_| wanted("scale")) {
        for rows in [small, large] {
            say(plan, &format!("scale run at {rows} rows: seeding ..."));
            report.scale.push(scale_run(plan, binary, dir, rows).await);
        }
    }
    report
}

fn say(plan: &Plan, what: &str) {
    if plan.full {
        eprintln!("[load] {what}");
    }
}

async fn load(plan: &Plan, process: &Process, make: MakeRequest) -> Measured {
    drive(
        process.addr,
        process.pid(),
        plan.connections,
        plan.warmup,
        plan.duration,
        make,
    )
    .await
}

/// An operation and what it is compared with (`reference`: the baseline for a read, raw
/// rusqlite for the insert), run in turns, `ROUNDS` of each within the operation's time, so
/// that the machine's drift, which here changes the same binary's speed by a quarter within
/// minutes, falls on both alike. `reference` gets the turn's number (from 1) and gives its
/// rate and what it measured.
async fn turns<R>(
    plan: &Plan,
    server: &Process,
    make: MakeRequest,
    name: &str,
    mut reference: impl AsyncFnMut(u32) -> (f64, R),
) -> (Vec<Measured>, Vec<R>, Vec<f64>) {
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (rate, measured_there) = reference(round).await;
        say(plan, &format!("{name}, turn {round} of {ROUNDS} ..."));
        let measured = load_turn(plan, server, make.clone(), round).await;
        say(
            plan,
            &format!(
                "  {:.0} against {rate:.0} a second: {:.2} ({:.0} µs server CPU each, {:.1} thread \
                 migrations a 1,000)",
                measured.rps,
                measured.rps / rate,
                measured.server_cpu_us,
                measured.server_migrations_per_1k
            ),
        );
        ratios.push(measured.rps / rate);
        ours.push(measured);
        theirs.push(measured_there);
    }
    (ours, theirs, ratios)
}

/// How many turns an operation and what it is compared with take.
const ROUNDS: u32 = 3;

/// One turn (numbered from 1) of an operation: its share of the operation's time. Only the
/// first turn warms up for the whole warm-up time.
async fn load_turn(plan: &Plan, process: &Process, make: MakeRequest, round: u32) -> Measured {
    let warmup = if round == 1 {
        plan.warmup
    } else {
        plan.warmup / 4
    };
    let share = plan.duration / ROUNDS;
    drive(
        process.addr,
        process.pid(),
        plan.connections,
        warmup,
        share,
        make,
    )
    .await
}

fn baseline_request(addr: SocketAddr) -> MakeRequest {
    Arc::new(move |_| request("GET", addr, "/", "none", None))
}

/// The baseline answering `bytes` bytes, as many as an operation's answer.
fn sized_request(addr: SocketAddr, bytes: usize) -> MakeRequest {
    let path = format!("/bytes/{bytes}");
    Arc::new(move |_| request("GET", addr, &path, "none", None))
}

/// A read's second look, beside its measurement: the size of its answer, and the bare HTTP
/// stack serving that many bytes (the core alone runs later, once the server has stopped).
async fn layers(plan: &Plan, server: &Server, baseline: &Process, make: MakeRequest) -> Layers {
    let (status, answer) = drive::once(server.addr, make(0)).await.expect("one answer");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    say(
        plan,
        &format!("baseline answering {} bytes ...", answer.len()),
    );
    let same_size = load(plan, baseline, sized_request(baseline.addr, answer.len())).await;
    say(
        plan,
        &format!(
            "  {:.0} req/s, p50 {:.2} ms",
            same_size.rps, same_size.p50_ms
        ),
    );
    Layers {
        answer_bytes: answer.len(),
        same_size,
        core: None,
    }
}

/// GET requests with the bearer key to the targets `paths` builds.
fn get(addr: SocketAddr, key: &str, paths: MakePath) -> MakeRequest {
    let key = key.to_string();
    Arc::new(move |n| request("GET", addr, &paths(n), &key, None))
}

fn point_read(ids: &[i64]) -> MakePath {
    let ids = Arc::new(ids.to_vec());
    // A stride through the ids, so reads are spread over the whole table.
    Arc::new(move |n| {
        let id = ids[(n.wrapping_mul(7919) % ids.len() as u64) as usize];
        format!("/api/v1/tickets/{id}")
    })
}

fn search() -> MakePath {
    let prefixes = seed::search_prefixes();
    Arc::new(move |n| {
        let q = &prefixes[n as usize % prefixes.len()];
        format!("/api/v1/contacts?q={q}&limit=25")
    })
}

fn filtered(department: i64) -> MakePath {
    let path = format!("/api/v1/tickets?status=open&department_id={department}&limit=50");
    Arc::new(move |_| path.clone())
}

/// Marks the tickets the load run creates, so they can be counted afterwards.
const LOAD_SUBJECT: &str = "Load benchmark ticket";

fn create(addr: SocketAddr, key: &str) -> MakeRequest {
    let key = key.to_string();
    Arc::new(move |n| {
        // A thousand customers: the first ticket of each creates the contact, later ones find it.
        let body = json!({
            "customer_email": format!("customer{}@load.example", n % 1000),
            "customer_name": "Load Customer",
            "subject": LOAD_SUBJECT,
            "body": "The parcel never arrived.",
            "priority": "high",
            "tags": ["load"],
        });
        request(
            "POST",
            addr,
            "/api/v1/tickets",
            &key,
            Some(body.to_string()),
        )
    })
}

fn meta_me(addr: SocketAddr, key: &str) -> MakeRequest {
    let key = key.to_string();
    Arc::new(move |_| {
        request(
            "POST",
            addr,
            "/v1.php",
            &key,
            Some(r#"{"action":"meta.me"}"#.into()),
        )
    })
}

fn count_load_tickets(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    conn.query_row(
        "SELECT count(*) FROM tickets WHERE subject = ?1",
        [LOAD_SUBJECT],
        |r| r.get(0),
    )
    .expect("count")
}

/// The storage's own limit: raw rusqlite, one ticket-like row per transaction, from one thread,
/// with the durability the server gives (`Durability::Full`: every commit synced before it is
/// acknowledged, which for this loop is `synchronous = FULL`). The database lasts across
/// turns and is removed with this.
struct RawInserts {
    path: std::path::PathBuf,
    conn: Option<rusqlite::Connection>,
    inserted: u64,
    seconds: f64,
}

impl RawInserts {
    fn new(dir: &Path) -> RawInserts {
        let path = dir.join("raw.db");
        let conn = rusqlite::Connection::open(&path).expect("open raw.db");
        let synchronous = match SqliteConfig::default().durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};
             CREATE TABLE tickets (id INTEGER PRIMARY KEY, workspace_id INTEGER NOT NULL,
                 contact_id INTEGER NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL,
                 status TEXT NOT NULL, priority TEXT NOT NULL, tags TEXT NOT NULL,
                 created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
             CREATE INDEX tickets_workspace ON tickets (workspace_id, id);
             CREATE INDEX tickets_status ON tickets (workspace_id, status, id);"
        ))
        .expect("raw schema");
        RawInserts {
            path,
            conn: Some(conn),
            inserted: 0,
            seconds: 0.0,
        }
    }

    /// Inserts for `seconds`; gives this turn's rate.
    fn run(&mut self, seconds: f64) -> f64 {
        let conn = self.conn.as_ref().expect("open until dropped");
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO tickets (workspace_id, contact_id, subject, body, status, priority, tags, \
                 created_at, updated_at) VALUES (1, ?1, ?2, ?3, 'open', 'high', '[\"load\"]', ?4, ?4)",
            )
            .unwrap();
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed().as_secs_f64() < seconds {
            let i = (self.inserted + n) as i64;
            insert
                .execute(rusqlite::params![
                    i % 1000,
                    LOAD_SUBJECT,
                    "The parcel never arrived.",
                    i
                ])
                .unwrap();
            n += 1;
        }
        let elapsed = started.elapsed().as_secs_f64();
        self.inserted += n;
        self.seconds += elapsed;
        n as f64 / elapsed
    }

    /// Inserts a second over every turn.
    fn rate(&self) -> f64 {
        self.inserted as f64 / self.seconds
    }
}

impl Drop for RawInserts {
    fn drop(&mut self) {
        drop(self.conn.take());
        remove_database(&self.path);
    }
}

/// Queues `events` ticket.created events for one endpoint while no server runs, then starts
/// `opsiq serve` and times how fast its worker delivers them all to a local receiver.
async fn webhook_fan_out(plan: &Plan, binary: &Path, dir: &Path) -> report::Fanout {
    let (receiver, received) = drive::start_receiver().await;
    let db = dir.join("webhooks.db");
    {
        let opsiq = Opsiq::open_with(
            &db,
            SqliteConfig {
                durability: Durability::Normal,
                ..SqliteConfig::default()
            },
        )
        .expect("open webhooks.db");
        opsiq.bootstrap().expect("bootstrap");
        let key = opsiq
            .create_key(
                opsiq::core::types::Id(1),
                None,
                "fan-out",
                &opsiq::core::Scope::ALL,
            )
            .expect("key");
        let me = opsiq
            .authenticate(Some(&format!("Bearer {}", key.secret)))
            .expect("auth");
        opsiq
            .execute(
                &me,
                "webhooks.add",
                json!({"url": format!("http://{receiver}/hook"), "events": ["ticket.created"]}),
            )
            .expect("endpoint");
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (opsiq, me) = (opsiq.clone(), me.clone());
                let n = plan.webhook_events;
                std::thread::spawn(move || {
                    for i in (w..n).step_by(4) {
                        opsiq
                            .execute(
                                &me,
                                "tickets.create",
                                json!({"customer_email": format!("c{}@hooks.example", i % 100), "subject": "Fan-out"}),
                            )
                            .expect("ticket");
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }
    let started = Instant::now();
    let server = Server::start(binary, &db, true);
    let deadline = started + Duration::from_secs(if plan.full { 300 } else { 60 });
    loop {
        let got = received.lock().unwrap().ids.len();
        if got >= plan.webhook_events || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server);
    let seen = received.lock().unwrap();
    let span = match (seen.first, seen.last) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => f64::NAN,
    };
    report::Fanout {
        events: plan.webhook_events,
        delivered: seen.ids.len(),
        deliveries: seen.deliveries,
        per_second: seen.ids.len() as f64 / span,
        seconds_from_start: seen.last.map_or(f64::NAN, |l| (l - started).as_secs_f64()),
    }
}

/// Search and filtered list on a database of `rows` contacts and `rows` tickets.
async fn scale_run(plan: &Plan, binary: &Path, dir: &Path, rows: usize) -> Scale {
    let db = dir.join(format!("scale-{rows}.db"));
    let seeded = seed::seed(
        &db,
        Size {
            contacts: rows,
            tickets: rows,
            chats: 0,
        },
    );
    say(
        plan,
        &format!(
            "seeded {rows} rows in {:.1} s; measuring ...",
            seeded.seconds
        ),
    );
    let server = Server::start(binary, &db, false);
    let search = load(plan, &server, get(server.addr, &seeded.key, search())).await;
    let list = load(
        plan,
        &server,
        get(server.addr, &seeded.key, filtered(seeded.department)),
    )
    .await;
    drop(server);
    remove_database(&db);
    Scale {
        rows,
        seed_seconds: seeded.seconds,
        search,
        list,
    }
}

/// Deletes a database file with its WAL and shared-memory files, so large runs free the disk.
fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
