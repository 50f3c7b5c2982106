//! `opsiq serve`: open (or create) the database, bind, serve until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;

use clap::Args;
use opsiq_core::{Error, Opsiq, Result};
use opsiq_http::ServerConfig;
use serde_json::json;

use crate::Printer;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "OPSIQ_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Requests a minute each API key may make, unless the key has its own limit.
    #[arg(long, env = "OPSIQ_RATE_LIMIT", default_value_t = opsiq_core::ratelimit::DEFAULT_PER_MINUTE)]
    pub rate_limit: u32,
    /// Allow webhook deliveries to loopback, private and link-local addresses.
    #[arg(long, env = "OPSIQ_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
}

pub fn run(db: &Path, args: ServeArgs, printer: &Printer) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OPSIQ_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut config = ServerConfig::default();
    if let Some(webhooks) = config.webhooks.as_mut() {
        webhooks.allow_private = args.allow_private_webhooks;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| Error::Unavailable { part: "listener", reason: format!("cannot listen on {}: {e}", args.bind) })?;
        let addr = listener.local_addr().map_err(|e| Error::Internal(e.to_string()))?;
        // The database is opened once the address is ours, so a busy port creates no file.
        let opsiq = Opsiq::open(db)?.with_rate_limit(args.rate_limit);
        let created = opsiq.bootstrap()?;
        let exe = std::env::current_exe().map_or_else(|_| "opsiq".to_string(), |p| p.display().to_string());
        let info = json!({
            "listening": format!("http://{addr}"),
            "db": db.display().to_string(),
            "created": created.as_ref().map(|(w, s)| json!({"workspace": w, "site": s})),
        });
        printer.show(&info, |_| {
            let mut text = format!("OpsIQ listening on http://{addr} (database {})\n", db.display());
            if let Some((workspace, site)) = &created {
                text.push_str(&format!(
                    "New database: created workspace {} \"{}\" with site {} ({}, site key {}).\n\
                     Make an API key with:\n  {exe} --db {} keys create --name my-integration --scopes contacts.read,contacts.write,tickets.read,tickets.write\n",
                    workspace.id, workspace.name, site.id, site.domain, site.site_key, db.display()
                ));
            }
            text
        });
        opsiq_http::run(listener, opsiq, config, shutdown_signal())
            .await
            .map_err(|e| Error::Internal(format!("server failed: {e}")))?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
