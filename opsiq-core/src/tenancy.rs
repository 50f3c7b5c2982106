//! Tenancy: workspaces own sites, departments and agents; everything else hangs off a workspace.
//!
//! A site is one tracked website (domain, public `site_...` key). An API key belongs to one
//! workspace and acts for one active site of it.

use schemars::JsonSchema;
use serde::Serialize;

use crate::types::{Email, Id, Timestamp, random_base62, text};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Workspace {
    pub id: Id,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Site {
    pub id: Id,
    pub workspace_id: Id,
    pub name: String,
    pub domain: String,
    /// The public key the website widget identifies the site with.
    pub site_key: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Department {
    pub id: Id,
    pub workspace_id: Id,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Agent {
    pub id: Id,
    pub workspace_id: Id,
    pub name: String,
    pub email: Email,
    pub created_at: Timestamp,
}

/// A site to insert, already validated.
#[derive(Debug, Clone)]
pub struct NewSite {
    pub workspace_id: Id,
    pub name: String,
    pub domain: String,
    pub site_key: String,
}

impl NewSite {
    pub fn parse(workspace_id: Id, name: Option<&str>, domain: &str) -> Result<Self> {
        let domain = parse_domain(domain)?;
        let name = match name {
            Some(n) => text("name", n, 200, true)?,
            None => domain.clone(),
        };
        Ok(NewSite {
            workspace_id,
            name,
            domain,
            site_key: format!("site_{}", random_base62(24)),
        })
    }
}

/// A bare host name (`shop.example.com`, `localhost`), lower-cased; no scheme, path or port.
pub fn parse_domain(raw: &str) -> Result<String> {
    let d = raw.trim().trim_end_matches('.').to_lowercase();
    let bad = |why: &str| {
        Err(Error::validation(
            "domain",
            format!("`{raw}` is not a domain: {why}"),
        ))
    };
    if d.is_empty() || d.len() > 253 {
        return bad("it must have 1 to 253 characters");
    }
    if d.contains("://") || d.contains('/') || d.contains(':') {
        return bad("give the host name only, without scheme, port or path");
    }
    if d.split('.').any(|l| {
        l.is_empty()
            || l.len() > 63
            || l.starts_with('-')
            || l.ends_with('-')
            || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    }) {
        return bad("labels are letters, digits and inner hyphens");
    }
    Ok(d)
}

/// What a new install starts with, so a first key can be made at once.
pub const DEFAULT_WORKSPACE: &str = "Default";
pub const DEFAULT_DOMAIN: &str = "localhost";
pub const DEFAULT_DEPARTMENT: &str = "Support";

impl crate::Opsiq {
    /// Creates the default workspace, site and department when the database has no workspace
    /// yet. Returns what it created, or `None` on an existing install.
    pub fn bootstrap(&self) -> Result<Option<(Workspace, Site)>> {
        if !self.read(|r| r.workspaces())?.is_empty() {
            return Ok(None);
        }
        self.create_workspace(DEFAULT_WORKSPACE, DEFAULT_DOMAIN)
            .map(Some)
    }

    /// Creates a workspace with its first site and a default department.
    pub fn create_workspace(&self, name: &str, domain: &str) -> Result<(Workspace, Site)> {
        let name = text("name", name, 200, true)?;
        let domain = parse_domain(domain)?;
        self.write(move |w| {
            let now = Timestamp::now();
            let id = w.insert_workspace(&name, now)?;
            let new_site = NewSite::parse(id, None, &domain)?;
            let site_id = w.insert_site(&new_site, now)?;
            w.insert_department(id, DEFAULT_DEPARTMENT, now)?;
            let workspace = w
                .workspace(id)?
                .ok_or_else(|| Error::Internal("workspace vanished".into()))?;
            let site = w
                .site(site_id)?
                .ok_or_else(|| Error::Internal("site vanished".into()))?;
            Ok((workspace, site))
        })
    }

    pub fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        self.read(|r| r.workspaces())
    }

    /// Adds a site (a tracked domain) to a workspace.
    pub fn add_site(&self, workspace: Id, name: Option<&str>, domain: &str) -> Result<Site> {
        let new = NewSite::parse(workspace, name, domain)?;
        self.write(move |w| {
            w.workspace(workspace)?
                .ok_or_else(|| Error::not_found("workspace", workspace))?;
            if w.sites(Some(workspace))?
                .iter()
                .any(|s| s.domain == new.domain)
            {
                return Err(Error::validation(
                    "domain",
                    format!(
                        "workspace {workspace} already has a site for `{}`",
                        new.domain
                    ),
                ));
            }
            let id = w.insert_site(&new, Timestamp::now())?;
            w.site(id)?
                .ok_or_else(|| Error::Internal("site vanished".into()))
        })
    }

    pub fn list_sites(&self, workspace: Option<Id>) -> Result<Vec<Site>> {
        self.read(|r| r.sites(workspace))
    }

    /// Finds a site of `workspace` by id, public site key or domain.
    pub fn find_site(&self, workspace: Id, reference: &str) -> Result<Site> {
        let sites = self.read(|r| r.sites(Some(workspace)))?;
        let reference = reference.trim();
        sites
            .into_iter()
            .find(|s| s.id.to_string() == reference || s.site_key == reference || s.domain == reference.to_lowercase())
            .ok_or_else(|| Error::validation("site", format!("workspace {workspace} has no site `{reference}` (give an id, site key or domain)")))
    }

    pub fn add_department(&self, workspace: Id, name: &str) -> Result<Department> {
        let name = text("name", name, 200, true)?;
        self.write(move |w| {
            w.workspace(workspace)?
                .ok_or_else(|| Error::not_found("workspace", workspace))?;
            if w.departments(workspace)?
                .iter()
                .any(|d| d.name.eq_ignore_ascii_case(&name))
            {
                return Err(Error::validation(
                    "name",
                    format!("workspace {workspace} already has a department `{name}`"),
                ));
            }
            let id = w.insert_department(workspace, &name, Timestamp::now())?;
            w.department(workspace, id)?
                .ok_or_else(|| Error::Internal("department vanished".into()))
        })
    }

    pub fn list_departments(&self, workspace: Id) -> Result<Vec<Department>> {
        self.read(|r| r.departments(workspace))
    }

    pub fn add_agent(&self, workspace: Id, name: &str, email: &str) -> Result<Agent> {
        let name = text("name", name, 200, true)?;
        let email = Email::parse(email).map_err(|e| Error::validation("email", e))?;
        self.write(move |w| {
            w.workspace(workspace)?
                .ok_or_else(|| Error::not_found("workspace", workspace))?;
            if w.agents(workspace)?
                .iter()
                .any(|a| a.email.normalized() == email.normalized())
            {
                return Err(Error::validation(
                    "email",
                    format!(
                        "workspace {workspace} already has an agent `{}`",
                        email.as_str()
                    ),
                ));
            }
            let id = w.insert_agent(workspace, &name, &email, Timestamp::now())?;
            w.agent(workspace, id)?
                .ok_or_else(|| Error::Internal("agent vanished".into()))
        })
    }

    pub fn list_agents(&self, workspace: Id) -> Result<Vec<Agent>> {
        self.read(|r| r.agents(workspace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_host_names_only() {
        assert_eq!(
            parse_domain("Shop.Example.com.").unwrap(),
            "shop.example.com"
        );
        assert_eq!(parse_domain("localhost").unwrap(), "localhost");
        for bad in [
            "",
            "https://x.com",
            "x.com/path",
            "x.com:8080",
            "-x.com",
            "a..b",
        ] {
            assert!(parse_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_sites_get_a_public_site_key() {
        let s = NewSite::parse(Id(1), None, "example.com").unwrap();
        assert!(s.site_key.starts_with("site_") && s.site_key.len() == 29);
        assert_eq!(s.name, "example.com");
    }
}
