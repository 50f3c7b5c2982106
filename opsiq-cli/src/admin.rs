//! The administration commands: workspaces, sites, departments, agents and API keys.

use std::path::Path;

use clap::{Args, Subcommand};
use opsiq_core::keys::{ApiKey, IssuedKey, KeySpec, KeyUpdate, Permissions, PermissionsMode};
use opsiq_core::types::{Id, Timestamp};
use opsiq_core::{Error, Opsiq, Result, Scope};

use crate::Printer;

/// Opens the database for a command that changes it; a new one gets the default workspace
/// so the command works at once.
pub(crate) fn open(db: &Path) -> Result<Opsiq> {
    let opsiq = Opsiq::open(db)?;
    opsiq.bootstrap()?;
    Ok(opsiq)
}

/// Opens an existing database for a command that only reads it (never creates a file).
pub(crate) fn open_existing(db: &Path) -> Result<Opsiq> {
    if !db.exists() {
        return Err(Error::Unavailable {
            part: "database",
            reason: format!(
                "{} does not exist; `opsiq serve` or an `add`/`create` command creates it",
                db.display()
            ),
        });
    }
    Opsiq::open(db)
}

fn parse_scope(name: &str) -> std::result::Result<Scope, String> {
    name.trim().parse()
}

pub(crate) fn parse_id(s: &str) -> std::result::Result<Id, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if n > 0 => Ok(Id(n)),
        _ => Err(format!("`{s}` is not an id (a positive integer)")),
    }
}

#[derive(Debug, Clone, Args)]
pub struct WorkspaceArg {
    /// The workspace (its id).
    #[arg(long, default_value = "1", value_parser = parse_id)]
    pub workspace: Id,
}

/// A key's permissions beyond its scopes.
#[derive(Debug, Clone, Args)]
pub struct PermissionArgs {
    /// `scopes` (the scopes decide) or `custom` (scopes plus --allow, minus --block).
    #[arg(long, value_parser = parse_mode)]
    mode: Option<PermissionsMode>,
    /// Action ids allowed on top of the scopes, comma-separated (makes the mode custom; `""`
    /// empties the list).
    #[arg(long, value_delimiter = ',')]
    allow: Option<Vec<String>>,
    /// Action ids refused whatever the scopes say, comma-separated (makes the mode custom; `""`
    /// empties the list).
    #[arg(long, value_delimiter = ',')]
    block: Option<Vec<String>>,
    /// Requests a minute this key may make (0: the install's default, `opsiq serve --rate-limit`).
    #[arg(long)]
    rate_limit: Option<u32>,
}

impl PermissionArgs {
    /// The mode and the lists, with empty names dropped (so `--allow ""` gives an empty list).
    fn into_parts(
        self,
    ) -> (
        Option<PermissionsMode>,
        Option<Vec<String>>,
        Option<Vec<String>>,
    ) {
        let clean = |ids: Option<Vec<String>>| {
            ids.map(|ids| ids.into_iter().filter(|id| !id.trim().is_empty()).collect())
        };
        (self.mode, clean(self.allow), clean(self.block))
    }
}

fn parse_mode(s: &str) -> std::result::Result<PermissionsMode, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (shown only this once).
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated scopes, e.g. contacts.read,tickets.write.
        #[arg(long, required = true, value_delimiter = ',', value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// The site the key acts for: id, site key or domain (default: the workspace's first site).
        #[arg(long)]
        site: Option<String>,
        #[command(flatten)]
        workspace: WorkspaceArg,
        #[command(flatten)]
        permissions: PermissionArgs,
    },
    /// Change a key's name, site, scopes or permissions (its secret stays).
    Update {
        #[arg(value_parser = parse_id)]
        id: Id,
        #[arg(long)]
        name: Option<String>,
        /// Replaces the scopes (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = parse_scope)]
        scopes: Option<Vec<Scope>>,
        /// The site the key acts for: id, site key or domain.
        #[arg(long)]
        site: Option<String>,
        #[command(flatten)]
        permissions: PermissionArgs,
    },
    /// List keys (never their secrets).
    List {
        /// Only this workspace's keys.
        #[arg(long, value_parser = parse_id)]
        workspace: Option<Id>,
    },
    /// Give a key a new secret; the old secret stops working at once.
    Rotate {
        #[arg(value_parser = parse_id)]
        id: Id,
    },
    /// Revoke a key for good.
    Revoke {
        #[arg(value_parser = parse_id)]
        id: Id,
    },
}

fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_string(), |t| t.to_rfc3339())
}

fn key_row(k: &ApiKey) -> Vec<String> {
    vec![
        k.id.to_string(),
        k.name.clone(),
        format!("{}…", k.prefix),
        k.workspace_id.to_string(),
        k.site_id.to_string(),
        Scope::join(&k.scopes),
        when(k.last_used_at),
        if k.revoked_at.is_some() {
            "revoked".into()
        } else {
            "active".into()
        },
    ]
}

fn show_issued(printer: &Printer, issued: &IssuedKey, verb: &str) {
    printer.show(issued, |i| {
        format!(
            "{verb} key {} \"{}\" (workspace {}, site {}, scopes {}).\n\
             Secret (shown only now; store it server-side):\n{}",
            i.key.id,
            i.key.name,
            i.key.workspace_id,
            i.key.site_id,
            Scope::join(&i.key.scopes),
            i.secret
        )
    });
}

pub fn keys(db: &Path, cmd: KeysCommand, printer: &Printer) -> Result<()> {
    let opsiq = if matches!(cmd, KeysCommand::Create { .. }) {
        open(db)?
    } else {
        open_existing(db)?
    };
    match cmd {
        KeysCommand::Create {
            name,
            scopes,
            site,
            workspace,
            permissions,
        } => {
            let rate_limit = permissions.rate_limit;
            let (mode, allow, block) = permissions.into_parts();
            let permissions = Permissions::parse(
                mode,
                allow.unwrap_or_default(),
                block.unwrap_or_default(),
                opsiq.catalog(),
            )?;
            let spec = KeySpec {
                workspace: workspace.workspace,
                site: site.as_deref(),
                name: &name,
                scopes: &scopes,
                permissions,
                rate_limit,
            };
            let issued = opsiq.create_key_with(spec)?;
            show_issued(printer, &issued, "Created");
        }
        KeysCommand::Update {
            id,
            name,
            scopes,
            site,
            permissions,
        } => {
            let rate_limit = permissions.rate_limit;
            let (mode, allow, block) = permissions.into_parts();
            let key = opsiq.update_key(
                id,
                KeyUpdate {
                    name,
                    site,
                    scopes,
                    mode,
                    allow,
                    block,
                    rate_limit,
                },
            )?;
            printer.show(&key, |k| {
                format!(
                    "Updated key {} \"{}\" (site {}, scopes {}, permissions {}).",
                    k.id,
                    k.name,
                    k.site_id,
                    Scope::join(&k.scopes),
                    k.permissions.mode.as_str()
                )
            });
        }
        KeysCommand::List { workspace } => {
            let keys = opsiq.list_keys(workspace)?;
            printer.table(
                &keys,
                &[
                    "ID",
                    "NAME",
                    "PREFIX",
                    "WORKSPACE",
                    "SITE",
                    "SCOPES",
                    "LAST USED",
                    "STATE",
                ],
                key_row,
            );
        }
        KeysCommand::Rotate { id } => {
            let issued = opsiq.rotate_key(id)?;
            show_issued(printer, &issued, "Rotated");
        }
        KeysCommand::Revoke { id } => {
            let key = opsiq.revoke_key(id)?;
            printer.show(&key, |k| format!("Revoked key {} \"{}\".", k.id, k.name));
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// Add a workspace with its first site and a "Support" department.
    Add {
        #[arg(long)]
        name: String,
        /// The domain of the workspace's first site.
        #[arg(long)]
        domain: String,
    },
    /// List workspaces.
    List,
}

pub fn workspaces(db: &Path, cmd: WorkspacesCommand, printer: &Printer) -> Result<()> {
    let opsiq = if matches!(cmd, WorkspacesCommand::Add { .. }) {
        open(db)?
    } else {
        open_existing(db)?
    };
    match cmd {
        WorkspacesCommand::Add { name, domain } => {
            let (workspace, site) = opsiq.create_workspace(&name, &domain)?;
            let out = serde_json::json!({"workspace": workspace, "site": site});
            printer.show(&out, |_| {
                format!(
                    "Created workspace {} \"{}\" with site {} ({}, site key {}).",
                    workspace.id, workspace.name, site.id, site.domain, site.site_key
                )
            });
        }
        WorkspacesCommand::List => {
            let all = opsiq.list_workspaces()?;
            printer.table(&all, &["ID", "NAME", "CREATED"], |w| {
                vec![w.id.to_string(), w.name.clone(), w.created_at.to_rfc3339()]
            });
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum SitesCommand {
    /// Add a site (a tracked domain) to a workspace.
    Add {
        #[arg(long)]
        domain: String,
        /// A display name (default: the domain).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// List sites.
    List {
        /// Only this workspace's sites.
        #[arg(long, value_parser = parse_id)]
        workspace: Option<Id>,
    },
}

pub fn sites(db: &Path, cmd: SitesCommand, printer: &Printer) -> Result<()> {
    let opsiq = if matches!(cmd, SitesCommand::Add { .. }) {
        open(db)?
    } else {
        open_existing(db)?
    };
    match cmd {
        SitesCommand::Add {
            domain,
            name,
            workspace,
        } => {
            let site = opsiq.add_site(workspace.workspace, name.as_deref(), &domain)?;
            printer.show(&site, |s| {
                format!(
                    "Added site {} ({}) to workspace {}; site key {}.",
                    s.id, s.domain, s.workspace_id, s.site_key
                )
            });
        }
        SitesCommand::List { workspace } => {
            let all = opsiq.list_sites(workspace)?;
            printer.table(
                &all,
                &["ID", "WORKSPACE", "DOMAIN", "NAME", "SITE KEY"],
                |s| {
                    vec![
                        s.id.to_string(),
                        s.workspace_id.to_string(),
                        s.domain.clone(),
                        s.name.clone(),
                        s.site_key.clone(),
                    ]
                },
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum DepartmentsCommand {
    /// Add a department to a workspace.
    Add {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// List a workspace's departments.
    List {
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
}

pub fn departments(db: &Path, cmd: DepartmentsCommand, printer: &Printer) -> Result<()> {
    let opsiq = if matches!(cmd, DepartmentsCommand::Add { .. }) {
        open(db)?
    } else {
        open_existing(db)?
    };
    match cmd {
        DepartmentsCommand::Add { name, workspace } => {
            let d = opsiq.add_department(workspace.workspace, &name)?;
            printer.show(&d, |d| {
                format!(
                    "Added department {} \"{}\" to workspace {}.",
                    d.id, d.name, d.workspace_id
                )
            });
        }
        DepartmentsCommand::List { workspace } => {
            let all = opsiq.list_departments(existing(&opsiq, workspace.workspace)?)?;
            printer.table(&all, &["ID", "NAME"], |d| {
                vec![d.id.to_string(), d.name.clone()]
            });
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Add an agent (someone tickets can be assigned to).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// List a workspace's agents.
    List {
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
}

pub fn agents(db: &Path, cmd: AgentsCommand, printer: &Printer) -> Result<()> {
    let opsiq = if matches!(cmd, AgentsCommand::Add { .. }) {
        open(db)?
    } else {
        open_existing(db)?
    };
    match cmd {
        AgentsCommand::Add {
            name,
            email,
            workspace,
        } => {
            let a = opsiq.add_agent(workspace.workspace, &name, &email)?;
            printer.show(&a, |a| {
                format!(
                    "Added agent {} \"{}\" <{}> to workspace {}.",
                    a.id,
                    a.name,
                    a.email.as_str(),
                    a.workspace_id
                )
            });
        }
        AgentsCommand::List { workspace } => {
            let all = opsiq.list_agents(existing(&opsiq, workspace.workspace)?)?;
            printer.table(&all, &["ID", "NAME", "EMAIL"], |a| {
                vec![
                    a.id.to_string(),
                    a.name.clone(),
                    a.email.as_str().to_string(),
                ]
            });
        }
    }
    Ok(())
}

/// The workspace id, if it exists (so listing an unknown workspace is an error, not nothing).
fn existing(opsiq: &Opsiq, workspace: Id) -> Result<Id> {
    opsiq
        .list_workspaces()?
        .iter()
        .find(|w| w.id == workspace)
        .map(|w| w.id)
        .ok_or_else(|| Error::not_found("workspace", workspace))
}
