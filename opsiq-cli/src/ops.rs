//! Operating an install: `opsiq doctor`, `opsiq backup`, `opsiq restore`.

use std::path::{Path, PathBuf};

use clap::Args;
use opsiq_core::diagnostics::{Finding, Severity, store_findings};
use opsiq_core::store::sqlite;
use opsiq_core::{Error, Result};
use serde_json::json;

use crate::Printer;
use crate::admin::open_existing;

/// Free space below which the disk is an error, and below which it is a warning.
const DISK_ERROR_BYTES: u64 = 100 * 1024 * 1024;
const DISK_WARNING_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write the copy to (must not exist).
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to put back.
    #[arg(long)]
    pub from: PathBuf,
    /// Overwrite an existing database (stop the server first).
    #[arg(long)]
    pub force: bool,
}

fn disk_finding(db: &Path) -> Finding {
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match fs4::available_space(dir) {
        Ok(free) if free < DISK_ERROR_BYTES => Finding::new(
            "disk",
            Severity::Error,
            format!(
                "only {} MiB free next to the database",
                free / (1024 * 1024)
            ),
            "free disk space: writes fail (503) when the disk is full",
        ),
        Ok(free) if free < DISK_WARNING_BYTES => Finding::new(
            "disk",
            Severity::Warning,
            format!("{} MiB free next to the database", free / (1024 * 1024)),
            "free some disk space soon",
        ),
        Ok(free) => Finding::new(
            "disk",
            Severity::Ok,
            format!("{} MiB free", free / (1024 * 1024)),
            "",
        ),
        Err(e) => Finding::new(
            "disk",
            Severity::Warning,
            format!("cannot read the free space: {e}"),
            "check the disk by hand",
        ),
    }
}

pub fn doctor(db: &Path, printer: &Printer) -> Result<()> {
    let opsiq = open_existing(db)?;
    let health = opsiq.store().health(true)?;
    let mut findings = store_findings(&health);
    findings.push(disk_finding(db));
    findings.extend(opsiq.data_findings()?);
    let worst = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Ok);
    printer.show(&findings, |findings| {
        findings
            .iter()
            .map(|f| {
                let mark = match f.severity {
                    Severity::Ok => "ok     ",
                    Severity::Warning => "warning",
                    Severity::Error => "ERROR  ",
                };
                let advice = if f.advice.is_empty() {
                    String::new()
                } else {
                    format!("\n          -> {}", f.advice)
                };
                format!("{mark}  {}: {}{advice}", f.check, f.message)
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    if worst == Severity::Error {
        let broken = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        return Err(Error::Unavailable {
            part: "install",
            reason: format!("{broken} check(s) found something broken"),
        });
    }
    Ok(())
}

pub fn backup(db: &Path, args: BackupArgs, printer: &Printer) -> Result<()> {
    let health = sqlite::backup(db, &args.to)?;
    let out = json!({"backup": args.to.display().to_string(), "schema_version": health.schema_version, "integrity": health.integrity});
    printer.show(&out, |_| {
        format!(
            "Backed up {} to {} (integrity ok, schema version {}).",
            db.display(),
            args.to.display(),
            health.schema_version
        )
    });
    Ok(())
}

pub fn restore(db: &Path, args: RestoreArgs, printer: &Printer) -> Result<()> {
    if db.exists() && !args.force {
        return Err(Error::validation(
            "db",
            format!(
                "{} exists; stop the server and pass --force to overwrite it",
                db.display()
            ),
        ));
    }
    let health = sqlite::restore(&args.from, db)?;
    let out = json!({"restored": db.display().to_string(), "from": args.from.display().to_string(), "schema_version": health.schema_version});
    printer.show(&out, |_| {
        format!(
            "Restored {} from {} (schema version {}).",
            db.display(),
            args.from.display(),
            health.schema_version
        )
    });
    Ok(())
}
