//! The `opsiq` command: runs the server and administers an install (workspaces, sites,
//! departments, agents, API keys). Every command takes `--db` and `--json`; failures print one
//! line to stderr and exit non-zero (1 for a failed operation, 2 for a usage error).
//!
//! Architecture invariant: commands translate arguments into calls of `opsiq-core` and print
//! the results; no business rules live here.

mod admin;
mod openapi;
mod ops;
mod output;
mod rules;
mod serve;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::Printer;

#[derive(Debug, Parser)]
#[command(
    name = "opsiq",
    version,
    about = "OpsIQ: self-hosted customer support and engagement"
)]
pub struct Cli {
    /// The SQLite database file.
    #[arg(long, global = true, env = "OPSIQ_DB", default_value = "./opsiq.db")]
    pub db: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(serve::ServeArgs),
    /// Create, list, rotate and revoke API keys.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Add and list workspaces.
    #[command(subcommand)]
    Workspaces(admin::WorkspacesCommand),
    /// Add and list sites (tracked domains).
    #[command(subcommand)]
    Sites(admin::SitesCommand),
    /// Add and list departments.
    #[command(subcommand)]
    Departments(admin::DepartmentsCommand),
    /// Add and list agents.
    #[command(subcommand)]
    Agents(admin::AgentsCommand),
    /// Add, list, enable and disable proactive rules.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Manage webhook endpoints, see deliveries, replay events.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Check the database, the disk, webhook endpoints and keys; exit 1 when something is broken.
    Doctor,
    /// Write a consistent copy of the database while the server runs.
    Backup(ops::BackupArgs),
    /// Put a checked backup back (stop the server first).
    Restore(ops::RestoreArgs),
    /// Print the OpenAPI 3.1 document of the API (the one served at /api/v1/openapi.php).
    Openapi,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer { json: cli.json };
    let result = match cli.command {
        Command::Serve(args) => serve::run(&cli.db, args, &printer),
        Command::Keys(cmd) => admin::keys(&cli.db, cmd, &printer),
        Command::Workspaces(cmd) => admin::workspaces(&cli.db, cmd, &printer),
        Command::Sites(cmd) => admin::sites(&cli.db, cmd, &printer),
        Command::Departments(cmd) => admin::departments(&cli.db, cmd, &printer),
        Command::Agents(cmd) => admin::agents(&cli.db, cmd, &printer),
        Command::Rules(cmd) => rules::rules(&cli.db, cmd, &printer),
        Command::Webhooks(cmd) => webhooks::webhooks(&cli.db, cmd, &printer),
        Command::Doctor => ops::doctor(&cli.db, &printer),
        Command::Backup(args) => ops::backup(&cli.db, args, &printer),
        Command::Restore(args) => ops::restore(&cli.db, args, &printer),
        Command::Openapi => openapi::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            printer.error(&error);
            ExitCode::from(1)
        }
    }
}
