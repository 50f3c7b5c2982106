//! The run's figures, the table printed at the end, `load.json`, and the targets.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::drive::Measured;
use crate::layers::CoreCost;
use crate::seed::Size;

#[derive(Debug, Clone, Serialize)]
pub struct Fanout {
    pub events: usize,
    /// Distinct events received.
    pub delivered: usize,
    /// Requests received (a retry counts again).
    pub deliveries: u64,
    /// Distinct events a second, from the first delivery to the last.
    pub per_second: f64,
    /// From `opsiq serve` starting to the last delivery.
    pub seconds_from_start: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scale {
    pub rows: usize,
    pub seed_seconds: f64,
    pub search: Measured,
    pub list: Measured,
}

/// One operation as measured, with what it is compared with.
#[derive(Debug, Clone, Serialize)]
pub struct Op {
    pub name: String,
    pub measured: Measured,
    /// For reads: the baseline, measured in turns with the read, and the share of it wanted.
    pub baseline: Option<(Measured, f64)>,
    /// The ratio in each turn: a read's to the baseline, the insert's to raw rusqlite.
    pub rounds: Vec<f64>,
    /// For the insert: compared with raw rusqlite.
    pub insert: bool,
    /// For reads: where the cost lies.
    pub layers: Option<Layers>,
}

/// A read beside the HTTP stack alone serving as many bytes, and the core alone answering it.
#[derive(Debug, Clone, Serialize)]
pub struct Layers {
    /// The size of one answer's body.
    pub answer_bytes: usize,
    /// The baseline answering `answer_bytes` bytes, measured after the read.
    pub same_size: Measured,
    /// `Opsiq::handle` in-process, one thread, once the server has stopped.
    pub core: Option<CoreCost>,
}

/// One target of the performance issue, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub measured: String,
    pub wanted: String,
    pub pass: bool,
}

pub struct Report {
    pub connections: usize,
    pub duration: Duration,
    pub size: Size,
    pub seed_seconds: f64,
    pub startup_ms: f64,
    pub rss_idle_kb: u64,
    pub rss_peak_kb: u64,
    pub ops: Vec<Op>,
    pub raw_insert_rps: f64,
    pub acknowledged_creates: u64,
    pub stored_creates: u64,
    pub webhooks: Option<Fanout>,
    pub scale: Vec<Scale>,
}

impl Report {
    pub fn new(connections: usize, duration: Duration, size: Size) -> Report {
        Report {
            connections,
            duration,
            size,
            seed_seconds: 0.0,
            startup_ms: 0.0,
            rss_idle_kb: 0,
            rss_peak_kb: 0,
            ops: Vec::new(),
            raw_insert_rps: 0.0,
            acknowledged_creates: 0,
            stored_creates: 0,
            webhooks: None,
            scale: Vec::new(),
        }
    }

    /// Each operation's throughput against what it is compared with: reads against the
    /// baseline measured beside them, the insert against raw rusqlite.
    fn ratio(&self, op: &Op) -> Option<f64> {
        if let Some((base, _)) = &op.baseline {
            Some(op.measured.rps / base.rps)
        } else if op.insert {
            Some(op.measured.rps / self.raw_insert_rps)
        } else {
            None
        }
    }

    /// The ratio as the table shows it.
    fn ratio_text(&self, op: &Op) -> String {
        let turns = |show: &dyn Fn(f64) -> String| {
            op.rounds
                .iter()
                .map(|t| show(*t))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.ratio(op) {
            Some(r) if op.baseline.is_some() => format!(
                "{:.0}% of baseline (turns {}%)",
                r * 100.0,
                turns(&|t| format!("{:.0}", t * 100.0))
            ),
            Some(r) => format!(
                "{r:.2}× raw insert (turns {})",
                turns(&|t| format!("{t:.2}×"))
            ),
            None => String::new(),
        }
    }

    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let mut add = |name: String, measured: String, wanted: String, pass: bool| {
            out.push(Target {
                name,
                measured,
                wanted,
                pass,
            });
        };
        for op in &self.ops {
            let (name, m) = (&op.name, &op.measured);
            if let Some(ratio) = self.ratio(op) {
                if let Some((_, share)) = op.baseline {
                    add(
                        format!("{name} req/s vs baseline"),
                        format!("{:.0}%", ratio * 100.0),
                        format!(">= {:.0}%", share * 100.0),
                        ratio >= share,
                    );
                } else {
                    add(
                        format!("{name} req/s vs raw one-insert-per-transaction"),
                        format!("{ratio:.2}x"),
                        ">= 1.5x".into(),
                        ratio >= 1.5,
                    );
                }
            }
            add(
                format!("{name} errors"),
                m.errors.to_string(),
                "0".into(),
                m.errors == 0,
            );
            add(
                format!("{name} p99"),
                format!("{:.1} ms", m.p99_ms),
                "< 50 ms".into(),
                m.p99_ms < 50.0,
            );
        }
        add(
            "acknowledged creates stored".into(),
            format!("{} of {}", self.stored_creates, self.acknowledged_creates),
            "all".into(),
            self.stored_creates >= self.acknowledged_creates,
        );
        let mb = |kb: u64| kb as f64 / 1024.0;
        add(
            "RSS idle".into(),
            format!("{:.1} MB", mb(self.rss_idle_kb)),
            "<= 20 MB".into(),
            mb(self.rss_idle_kb) <= 20.0,
        );
        add(
            "RSS peak".into(),
            format!("{:.1} MB", mb(self.rss_peak_kb)),
            "<= 80 MB".into(),
            mb(self.rss_peak_kb) <= 80.0,
        );
        add(
            "first request after start (seeded)".into(),
            format!("{:.0} ms", self.startup_ms),
            "<= 150 ms".into(),
            self.startup_ms <= 150.0,
        );
        if let Some(w) = &self.webhooks {
            add(
                format!("webhook fan-out, {} events", w.events),
                format!("{:.0}/s ({} delivered)", w.per_second, w.delivered),
                ">= 2000/s, all delivered".into(),
                w.per_second >= 2000.0 && w.delivered == w.events,
            );
        }
        if let [small, large] = &self.scale[..] {
            for (what, s, l) in [
                ("search", &small.search, &large.search),
                ("filtered list", &small.list, &large.list),
            ] {
                let ratio = l.p50_ms / s.p50_ms;
                add(
                    format!("{what} p50 at {} / at {} rows", large.rows, small.rows),
                    format!("{ratio:.2}x ({:.2} / {:.2} ms)", l.p50_ms, s.p50_ms),
                    "<= 2x".into(),
                    ratio <= 2.0,
                );
            }
        }
        out
    }

    pub fn print(&self) {
        println!(
            "\nOpsIQ load benchmark: {} connections, {} s per operation, seeded {} contacts, {} tickets, {} chats in {:.1} s",
            self.connections,
            self.duration.as_secs_f64(),
            self.size.contacts,
            self.size.tickets,
            self.size.chats,
            self.seed_seconds
        );
        println!(
            "\n{:<58} {:>9} {:>8} {:>8} {:>7} {:>7}  ratio",
            "operation", "req/s", "p50 ms", "p99 ms", "errors", "cpu µs"
        );
        let row = |name: &str, m: &Measured, ratio: String| {
            println!(
                "{:<58} {:>9.0} {:>8.2} {:>8.2} {:>7} {:>7.0}  {}",
                name, m.rps, m.p50_ms, m.p99_ms, m.errors, m.server_cpu_us, ratio
            );
        };
        for op in &self.ops {
            if let Some((base, _)) = &op.baseline {
                row(
                    "baseline (bare hyper), in turns with it:",
                    base,
                    String::new(),
                );
            }
            let (name, m) = (&op.name, &op.measured);
            row(name, m, self.ratio_text(op));
        }
        println!(
            "{:<58} {:>9.0}",
            "raw rusqlite, one insert per transaction", self.raw_insert_rps
        );
        for s in &self.scale {
            row(
                &format!("scale {} rows: search", s.rows),
                &s.search,
                String::new(),
            );
            row(
                &format!("scale {} rows: filtered list", s.rows),
                &s.list,
                String::new(),
            );
        }
        self.print_layers();
        println!(
            "\n{:<58} {:>16} {:>26}  result",
            "target", "measured", "wanted"
        );
        for t in self.targets() {
            println!(
                "{:<58} {:>16} {:>26}  {}",
                t.name,
                t.measured,
                t.wanted,
                if t.pass { "pass" } else { "SHORT" }
            );
        }
    }

    /// Where each read's cost lies: the HTTP stack alone serving an answer as big (against
    /// the 100-byte baseline), and the server's CPU per request split into the core's part
    /// (in-process, no HTTP) and the rest (HTTP, runtime, wake-ups).
    fn print_layers(&self) {
        let reads: Vec<_> = self
            .ops
            .iter()
            .filter_map(|op| Some((op, op.layers.as_ref()?, &op.baseline.as_ref()?.0)))
            .collect();
        if reads.is_empty() {
            return;
        }
        println!(
            "\n{:<58} {:>8} {:>24} {:>10} {:>8} {:>8}",
            "where a read's cost lies",
            "bytes",
            "bare hyper, same bytes",
            "server µs",
            "core µs",
            "rest µs"
        );
        for (op, layers, base) in reads {
            let hyper = format!(
                "{:.0}/s ({:.0}%)",
                layers.same_size.rps,
                layers.same_size.rps / base.rps * 100.0
            );
            let server = op.measured.server_cpu_us;
            let core = layers.core.as_ref().map_or(f64::NAN, |c| c.cpu_us);
            println!(
                "{:<58} {:>8} {:>24} {:>10.0} {:>8.0} {:>8.0}",
                op.name,
                layers.answer_bytes,
                hyper,
                server,
                core,
                server - core
            );
        }
    }

    pub fn to_json(&self) -> Value {
        let machine = json!({
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "cpu": cpu_model(),
            "commit": git(&["rev-parse", "HEAD"]),
            "dirty": !git(&["status", "--porcelain"]).is_empty(),
        });
        json!({
            "machine": machine,
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "connections": self.connections,
            "seconds_per_operation": self.duration.as_secs_f64(),
            "seed": {"contacts": self.size.contacts, "tickets": self.size.tickets, "chats": self.size.chats, "seconds": self.seed_seconds},
            "operations": self.ops.iter().map(|op| json!({
                "name": op.name, "measured": op.measured,
                "baseline": op.baseline.as_ref().map(|b| &b.0), "ratio": self.ratio(op),
                "turns": op.rounds,
                "layers": op.layers,
            })).collect::<Vec<_>>(),
            "raw_insert_per_second": self.raw_insert_rps,
            "creates": {"acknowledged": self.acknowledged_creates, "stored": self.stored_creates},
            "rss_kb": {"idle": self.rss_idle_kb, "peak": self.rss_peak_kb},
            "startup_ms": self.startup_ms,
            "webhooks": self.webhooks,
            "scale": self.scale,
            "targets": self.targets(),
        })
    }

    /// What a smoke run checks: every request succeeded, every acknowledged write is stored,
    /// every event was delivered.
    pub fn check_correct(&self) {
        let scale = self
            .scale
            .iter()
            .flat_map(|s| [("scale search", &s.search), ("scale list", &s.list)]);
        let all = self
            .ops
            .iter()
            .map(|op| (op.name.as_str(), &op.measured))
            .chain(
                self.ops
                    .iter()
                    .filter_map(|op| op.baseline.as_ref())
                    .map(|b| ("baseline", &b.0)),
            )
            .chain(
                self.ops
                    .iter()
                    .filter_map(|op| op.layers.as_ref())
                    .map(|l| ("baseline, same bytes", &l.same_size)),
            )
            .chain(scale);
        for (name, m) in all {
            assert!(m.requests > 0, "{name}: no request completed");
            assert_eq!(m.errors, 0, "{name}: {:?}", m.first_error);
        }
        assert!(
            self.stored_creates >= self.acknowledged_creates,
            "{} tickets acknowledged, {} stored",
            self.acknowledged_creates,
            self.stored_creates
        );
        if let Some(w) = &self.webhooks {
            assert_eq!(w.delivered, w.events, "webhook events delivered");
        }
        for op in &self.ops {
            if let Some(layers) = &op.layers {
                let core = layers.core.as_ref().map_or(0, |c| c.requests);
                assert!(
                    core > 0,
                    "{}: no request answered by the core alone",
                    op.name
                );
            }
        }
        assert!(self.rss_idle_kb > 0 && self.rss_peak_kb >= self.rss_idle_kb);
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default()
}

fn git(args: &[&str]) -> String {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
