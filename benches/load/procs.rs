//! The processes a run starts: `opsiq serve` and the baseline server. Each is stopped when its
//! handle drops.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's `target` directory (the bench binary runs from `target/<profile>/deps`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench binary's path");
    exe.ancestors()
        .nth(3)
        .expect("target directory")
        .to_path_buf()
}

/// The `opsiq` binary of this profile. A benchmark run builds it in release first; under
/// `cargo test` it is already built by the workspace's own test build.
pub fn opsiq_binary(full: bool) -> PathBuf {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let profile_dir = exe
        .ancestors()
        .nth(2)
        .expect("profile directory")
        .to_path_buf();
    let binary = profile_dir.join("opsiq");
    if full {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Cargo runs this benchmark with the package's variables set; a build script that
        // reruns when one changes (ring's, on `CARGO_MANIFEST_DIR`) would then rebuild here,
        // and again at the next `cargo bench`. The build sees the environment a shell gives.
        let package_vars = std::env::vars_os().map(|(name, _)| name).filter(|name| {
            let name = name.to_string_lossy();
            name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_MANIFEST_")
                || ["CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE"].contains(&name.as_ref())
        });
        let mut command = Command::new(cargo);
        for name in package_vars {
            command.env_remove(name);
        }
        let status = command
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "opsiq-cli",
                "--bin",
                "opsiq",
            ])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building opsiq in release failed");
    }
    assert!(
        binary.exists(),
        "{} is missing: build it first with `cargo build -p opsiq-cli`",
        binary.display()
    );
    binary
}

/// A child process, killed and reaped on drop.
pub struct Process {
    child: Child,
    pub addr: SocketAddr,
    /// Kept open so that the child can still write to it.
    _stdout: BufReader<ChildStdout>,
}

impl Process {
    /// The bare hyper baseline: this same binary in its baseline role.
    pub fn baseline() -> Process {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("OPSIQ_BENCH_ROLE", "baseline")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the baseline");
        let (addr, stdout) = first_line(&mut child);
        let addr = addr.trim().parse().expect("an address");
        Process {
            child,
            addr,
            _stdout: stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGTERM first, so `opsiq serve` shuts down as it would in production.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `opsiq serve`.
pub struct Server(Process);

impl std::ops::Deref for Server {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.0
    }
}

impl Server {
    /// Starts `opsiq serve` on an ephemeral loopback port over `db`, with rate limits out of
    /// the way, and returns once it has printed its address.
    pub fn start(binary: &Path, db: &Path, allow_private_webhooks: bool) -> Server {
        let wrap = std::env::var("OPSIQ_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(words).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        command
            .arg("--db")
            .arg(db)
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--rate-limit",
                "1000000000",
            ])
            .env("OPSIQ_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if allow_private_webhooks {
            command.arg("--allow-private-webhooks");
        }
        let mut child = command.spawn().expect("start opsiq serve");
        let (line, stdout) = first_line(&mut child);
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .expect("an address");
        Server(Process {
            child,
            addr,
            _stdout: stdout,
        })
    }

    /// Resident memory now, in KiB.
    pub fn rss_kb(&self) -> u64 {
        status_field(self.pid(), "VmRSS:")
    }

    /// The most resident memory so far, in KiB.
    pub fn peak_rss_kb(&self) -> u64 {
        status_field(self.pid(), "VmHWM:")
    }
}

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn first_line(child: &mut Child) -> (String, BufReader<ChildStdout>) {
    let mut stdout = BufReader::new(child.stdout.take().expect("a piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the first line");
    (line, stdout)
}
