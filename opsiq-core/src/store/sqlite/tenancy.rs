//! Queries for workspaces, sites, departments, agents and API keys.

use rusqlite::{Row, params};

use super::Db;
use super::misc::{Cols, all, conversion, exec, insert, json_text, one};
use crate::keys::{ApiKey, KEY_TOUCH_INTERVAL_MS, NewKey, Permissions};
use crate::store::{KeyReads, KeyWrites, TenancyReads, TenancyWrites};
use crate::tenancy::{Agent, Department, NewSite, Site, Workspace};
use crate::types::{Email, Id, Timestamp};
use crate::{Error, Result, Scope};

fn workspace(r: &Row<'_>) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        id: r.get("id")?,
        name: r.get("name")?,
        created_at: r.get("created_at")?,
    })
}

const SITE: &str = "SELECT id, workspace_id, name, domain, site_key, created_at FROM sites";

fn site(r: &Row<'_>) -> rusqlite::Result<Site> {
    Ok(Site {
        id: r.get("id")?,
        workspace_id: r.get("workspace_id")?,
        name: r.get("name")?,
        domain: r.get("domain")?,
        site_key: r.get("site_key")?,
        created_at: r.get("created_at")?,
    })
}

fn department(r: &Row<'_>) -> rusqlite::Result<Department> {
    Ok(Department {
        id: r.get("id")?,
        workspace_id: r.get("workspace_id")?,
        name: r.get("name")?,
        created_at: r.get("created_at")?,
    })
}

fn agent(r: &Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: r.get("id")?,
        workspace_id: r.get("workspace_id")?,
        name: r.get("name")?,
        email: r.get("email")?,
        created_at: r.get("created_at")?,
    })
}

const KEY: &str = "SELECT id, workspace_id, site_id, name, prefix, scopes, permissions_mode, allow_actions, \
                   block_actions, rate_limit, created_at, last_used_at, rotated_at, revoked_at FROM api_keys";

fn key(r: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let mut c = Cols::new(r);
    Ok(ApiKey {
        id: c.get("id")?,
        workspace_id: c.get("workspace_id")?,
        site_id: c.get("site_id")?,
        name: c.get("name")?,
        prefix: c.get("prefix")?,
        scopes: Scope::parse_list(&c.get::<String>("scopes")?).map_err(conversion)?,
        permissions: Permissions {
            mode: c.parse("permissions_mode")?,
            allow: c.json("allow_actions")?,
            block: c.json("block_actions")?,
        },
        rate_limit: c.get("rate_limit")?,
        created_at: c.get("created_at")?,
        last_used_at: c.get("last_used_at")?,
        rotated_at: c.get("rotated_at")?,
        revoked_at: c.get("revoked_at")?,
    })
}

impl TenancyReads for Db<'_, '_> {
    fn workspaces(&self) -> Result<Vec<Workspace>> {
        all(
            self,
            "SELECT id, name, created_at FROM workspaces ORDER BY id",
            [],
            workspace,
        )
    }

    fn workspace(&self, id: Id) -> Result<Option<Workspace>> {
        one(
            self,
            "SELECT id, name, created_at FROM workspaces WHERE id = ?1",
            [id],
            workspace,
        )
    }

    fn sites(&self, workspace: Option<Id>) -> Result<Vec<Site>> {
        all(
            self,
            &format!("{SITE} WHERE ?1 IS NULL OR workspace_id = ?1 ORDER BY id"),
            [workspace],
            site,
        )
    }

    fn site(&self, id: Id) -> Result<Option<Site>> {
        one(self, &format!("{SITE} WHERE id = ?1"), [id], site)
    }

    fn site_by_key(&self, site_key: &str) -> Result<Option<Site>> {
        one(
            self,
            &format!("{SITE} WHERE site_key = ?1"),
            [site_key],
            site,
        )
    }

    fn departments(&self, workspace: Id) -> Result<Vec<Department>> {
        all(
            self,
            "SELECT * FROM departments WHERE workspace_id = ?1 ORDER BY id",
            [workspace],
            department,
        )
    }

    fn department(&self, workspace: Id, id: Id) -> Result<Option<Department>> {
        one(
            self,
            "SELECT * FROM departments WHERE workspace_id = ?1 AND id = ?2",
            [workspace, id],
            department,
        )
    }

    fn agents(&self, workspace: Id) -> Result<Vec<Agent>> {
        all(
            self,
            "SELECT * FROM agents WHERE workspace_id = ?1 ORDER BY id",
            [workspace],
            agent,
        )
    }

    fn agent(&self, workspace: Id, id: Id) -> Result<Option<Agent>> {
        one(
            self,
            "SELECT * FROM agents WHERE workspace_id = ?1 AND id = ?2",
            [workspace, id],
            agent,
        )
    }
}

impl TenancyWrites for Db<'_, '_> {
    fn insert_workspace(&mut self, name: &str, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO workspaces (name, created_at) VALUES (?1, ?2)",
            params![name, now],
        )
    }

    fn insert_site(&mut self, s: &NewSite, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO sites (workspace_id, name, domain, site_key, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.workspace_id, s.name, s.domain, s.site_key, now],
        )
    }

    fn insert_department(&mut self, workspace: Id, name: &str, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO departments (workspace_id, name, created_at) VALUES (?1, ?2, ?3)",
            params![workspace, name, now],
        )
    }

    fn insert_agent(
        &mut self,
        workspace: Id,
        name: &str,
        email: &Email,
        now: Timestamp,
    ) -> Result<Id> {
        insert(
            self,
            "INSERT INTO agents (workspace_id, name, email, email_norm, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![workspace, name, email.as_str(), email.normalized(), now],
        )
    }
}

impl KeyReads for Db<'_, '_> {
    fn key(&self, id: Id) -> Result<Option<ApiKey>> {
        one(self, &format!("{KEY} WHERE id = ?1"), [id], key)
    }

    fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        one(self, &format!("{KEY} WHERE secret_hash = ?1"), [hash], key)
    }

    fn key_generation(&self) -> Result<i64> {
        one(
            self,
            "SELECT generation FROM key_generation WHERE id = 1",
            [],
            |r| r.get(0),
        )?
        .ok_or_else(|| Error::Internal("the key_generation row is missing".into()))
    }

    fn keys(&self, workspace: Option<Id>) -> Result<Vec<ApiKey>> {
        all(
            self,
            &format!("{KEY} WHERE ?1 IS NULL OR workspace_id = ?1 ORDER BY id"),
            [workspace],
            key,
        )
    }
}

impl KeyWrites for Db<'_, '_> {
    fn insert_key(&mut self, k: &NewKey, now: Timestamp) -> Result<Id> {
        insert(
            self,
            "INSERT INTO api_keys (workspace_id, site_id, name, prefix, secret_hash, scopes, permissions_mode, \
             allow_actions, block_actions, rate_limit, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                k.workspace_id,
                k.site_id,
                k.name,
                k.prefix,
                k.hash,
                Scope::join(&k.scopes),
                k.permissions.mode.as_str(),
                json_text(&k.permissions.allow)?,
                json_text(&k.permissions.block)?,
                k.rate_limit,
                now
            ],
        )
    }

    fn update_key(&mut self, k: &ApiKey) -> Result<()> {
        exec(
            self,
            "UPDATE api_keys SET name = ?2, site_id = ?3, scopes = ?4, permissions_mode = ?5, allow_actions = ?6, \
             block_actions = ?7, rate_limit = ?8 WHERE id = ?1",
            params![
                k.id,
                k.name,
                k.site_id,
                Scope::join(&k.scopes),
                k.permissions.mode.as_str(),
                json_text(&k.permissions.allow)?,
                json_text(&k.permissions.block)?,
                k.rate_limit
            ],
        )?;
        Ok(())
    }

    fn replace_key_secret(
        &mut self,
        id: Id,
        hash: &str,
        prefix: &str,
        now: Timestamp,
    ) -> Result<()> {
        exec(
            self,
            "UPDATE api_keys SET secret_hash = ?2, prefix = ?3, rotated_at = ?4 WHERE id = ?1",
            params![id, hash, prefix, now],
        )?;
        Ok(())
    }

    fn revoke_key(&mut self, id: Id, now: Timestamp) -> Result<()> {
        exec(
            self,
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
        Ok(())
    }

    fn touch_key(&mut self, id: Id, now: Timestamp) -> Result<()> {
        exec(
            self,
            "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2 - ?3)",
            params![id, now, KEY_TOUCH_INTERVAL_MS],
        )?;
        Ok(())
    }
}
