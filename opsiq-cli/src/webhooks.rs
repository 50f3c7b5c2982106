//! `opsiq webhooks`: endpoints, their secrets, the delivery log and replays.

use std::path::Path;

use clap::Subcommand;
use opsiq_core::Result;
use opsiq_core::types::{Id, Limit, Timestamp};
use opsiq_core::webhooks::{
    CreateEndpoint, DeliveryStatus, EndpointWithSecret, ListDeliveries, Replay, UpdateEndpoint,
};

use crate::Printer;
use crate::admin::{WorkspaceArg, open, open_existing, parse_id};

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Subscribe a URL to events; prints its signing secret once.
    Add {
        #[arg(long)]
        url: String,
        /// Event types, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// List endpoints (never their secrets).
    List {
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// Change an endpoint's URL, events or description.
    Update {
        #[arg(value_parser = parse_id)]
        id: Id,
        #[arg(long)]
        url: Option<String>,
        /// Event types, comma-separated (`*` for all).
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// Stop delivering to an endpoint. Deliveries already queued wait until it is enabled again;
    /// events while it is disabled are not queued for it (`replay --since` sends them later).
    Disable {
        #[arg(value_parser = parse_id)]
        id: Id,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// Deliver to an endpoint again.
    Enable {
        #[arg(value_parser = parse_id)]
        id: Id,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// Give an endpoint a new secret; the old one keeps signing for 24 hours.
    RotateSecret {
        #[arg(value_parser = parse_id)]
        id: Id,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// Remove an endpoint and its delivery log.
    Remove {
        #[arg(value_parser = parse_id)]
        id: Id,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// The delivery log, newest first (with `--json`, every attempt of each).
    Deliveries {
        #[arg(long, value_parser = parse_id)]
        endpoint: Option<Id>,
        /// An event id (evt_...).
        #[arg(long)]
        event: Option<String>,
        /// pending, retrying, delivered or failed.
        #[arg(long, value_parser = parse_status)]
        status: Option<DeliveryStatus>,
        #[arg(long, default_value = "25", value_parser = parse_limit)]
        limit: Limit,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// Deliver an event (or every event since a time) again, with the same event id.
    Replay {
        /// The event id (evt_...).
        event_id: Option<String>,
        /// Every event since this RFC 3339 time instead.
        #[arg(long, value_parser = parse_time, conflicts_with = "event_id")]
        since: Option<Timestamp>,
        /// Only to this endpoint.
        #[arg(long, value_parser = parse_id)]
        endpoint: Option<Id>,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
}

fn parse_status(s: &str) -> std::result::Result<DeliveryStatus, String> {
    s.parse()
}

fn parse_limit(s: &str) -> std::result::Result<Limit, String> {
    Limit::new(
        s.parse::<i64>()
            .map_err(|_| format!("`{s}` is not a number"))?,
    )
}

fn parse_time(s: &str) -> std::result::Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s)
}

fn show_secret(printer: &Printer, e: &EndpointWithSecret, verb: &str) {
    printer.show(e, |e| {
        format!(
            "{verb} webhook endpoint {} -> {}.\nSigning secret (shown only now):\n{}",
            e.endpoint.id, e.endpoint.url, e.secret
        )
    });
}

pub fn webhooks(db: &Path, cmd: WebhooksCommand, printer: &Printer) -> Result<()> {
    let opsiq = if matches!(cmd, WebhooksCommand::Add { .. }) {
        open(db)?
    } else {
        open_existing(db)?
    };
    let toggle = |id: Id, workspace: Id, enabled: bool| {
        opsiq.update_endpoint(
            workspace,
            UpdateEndpoint {
                id,
                url: None,
                events: None,
                description: None,
                enabled: Some(enabled),
            },
        )
    };
    match cmd {
        WebhooksCommand::Add {
            url,
            events,
            description,
            workspace,
        } => {
            let created = opsiq.create_endpoint(
                workspace.workspace,
                CreateEndpoint {
                    url,
                    events,
                    description,
                },
            )?;
            show_secret(printer, &created, "Added");
        }
        WebhooksCommand::List { workspace } => {
            let all = opsiq.list_endpoints(workspace.workspace)?;
            printer.table(
                &all,
                &["ID", "URL", "EVENTS", "STATE", "FAILING SINCE"],
                |e| {
                    vec![
                        e.id.to_string(),
                        e.url.clone(),
                        e.events.as_ref().map_or_else(
                            || "*".to_string(),
                            |ev| ev.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","),
                        ),
                        if e.enabled {
                            "enabled".into()
                        } else {
                            format!(
                                "disabled{}",
                                e.disabled_reason
                                    .as_ref()
                                    .map(|r| format!(" ({r})"))
                                    .unwrap_or_default()
                            )
                        },
                        e.failing_since
                            .map_or_else(|| "-".into(), |t| t.to_rfc3339()),
                    ]
                },
            );
        }
        WebhooksCommand::Update {
            id,
            url,
            events,
            description,
            workspace,
        } => {
            let e = opsiq.update_endpoint(
                workspace.workspace,
                UpdateEndpoint {
                    id,
                    url,
                    events,
                    description,
                    enabled: None,
                },
            )?;
            printer.show(&e, |e| {
                format!("Updated webhook endpoint {} -> {}.", e.id, e.url)
            });
        }
        WebhooksCommand::Disable { id, workspace } => {
            let e = toggle(id, workspace.workspace, false)?;
            printer.show(&e, |e| format!("Disabled webhook endpoint {}.", e.id));
        }
        WebhooksCommand::Enable { id, workspace } => {
            let e = toggle(id, workspace.workspace, true)?;
            printer.show(&e, |e| format!("Enabled webhook endpoint {}.", e.id));
        }
        WebhooksCommand::RotateSecret { id, workspace } => {
            let rotated = opsiq.rotate_endpoint_secret(workspace.workspace, id)?;
            show_secret(printer, &rotated, "Rotated the secret of");
        }
        WebhooksCommand::Remove { id, workspace } => {
            let e = opsiq.remove_endpoint(workspace.workspace, id)?;
            printer.show(&e, |e| {
                format!("Removed webhook endpoint {} ({}).", e.id, e.url)
            });
        }
        WebhooksCommand::Deliveries {
            endpoint,
            event,
            status,
            limit,
            workspace,
        } => {
            let page = opsiq.list_deliveries(
                workspace.workspace,
                ListDeliveries {
                    endpoint_id: endpoint,
                    event_id: event,
                    status,
                    limit,
                    cursor: None,
                },
            )?;
            printer.table(
                &page.items,
                &[
                    "ID",
                    "ENDPOINT",
                    "EVENT",
                    "TYPE",
                    "STATUS",
                    "ATTEMPTS",
                    "LAST CODE",
                    "NEXT ATTEMPT",
                ],
                |d| {
                    let d = &d.delivery;
                    vec![
                        d.id.to_string(),
                        d.endpoint_id.to_string(),
                        d.event_id.clone(),
                        d.event.as_str().to_string(),
                        d.status.as_str().to_string(),
                        d.attempts.to_string(),
                        d.last_status_code
                            .map_or_else(|| "-".into(), |c| c.to_string()),
                        d.next_attempt_at
                            .map_or_else(|| "-".into(), |t| t.to_rfc3339()),
                    ]
                },
            );
        }
        WebhooksCommand::Replay {
            event_id,
            since,
            endpoint,
            workspace,
        } => {
            let replayed = opsiq.replay(
                workspace.workspace,
                Replay {
                    event_id,
                    since,
                    endpoint_id: endpoint,
                },
            )?;
            printer.show(&replayed, |r| {
                format!("Queued {} deliveries of {} events.", r.deliveries, r.events)
            });
        }
    }
    Ok(())
}
