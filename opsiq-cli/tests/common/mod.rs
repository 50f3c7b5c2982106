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
