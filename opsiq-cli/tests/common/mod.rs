//! Shared helpers of the CLI tests: run the real `opsiq` binary on a database file.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Runs `opsiq --db DB ARGS...` with empty standard input.
pub fn opsiq(db: &Path, args: &[&str]) -> Output {
    opsiq_with_stdin(db, args, "")
}

/// Runs `opsiq --db DB ARGS...` feeding `stdin`.
pub fn opsiq_with_stdin(db: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_opsiq"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run opsiq");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait for opsiq")
}

/// The JSON a successful `--json` command printed.
#[track_caller]
pub fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running `opsiq serve` on an ephemeral port: the process, its address, and the rest of
/// what it prints.
pub struct Served {
    pub child: std::process::Child,
    pub addr: String,
    pub stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

/// Starts `opsiq serve` on `127.0.0.1:0` over `db` and reads its address from the first line
/// it prints. `log` captures its log (stderr) in a pipe instead of dropping it.
pub fn serve(db: &Path, log: bool, env: &[(&str, &str)]) -> Served {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_opsiq"))
        .arg("--db")
        .arg(db)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(if log { Stdio::piped() } else { Stdio::null() })
        .spawn()
        .expect("start opsiq serve");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next().expect("a line").unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address")
        .to_string();
    Served {
        child,
        addr,
        stdout,
    }
}
