//! API keys: `opq_` secrets shown once, stored only as a SHA-256 hash and a display prefix.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::{Action, Catalog};
use crate::scope::Scope;
use crate::types::{Id, Timestamp, random_base62, text};
use crate::{Error, Result};

/// The length of the random part of a key secret (base62, about 238 bits).
pub const SECRET_LEN: usize = 40;
const PREFIX: &str = "opq_";

/// How a key's permitted actions are decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PermissionsMode {
    /// The key may run the actions its scopes cover.
    #[default]
    Scopes,
    /// The scopes, plus the actions of `allow`, minus the actions of `block`.
    Custom,
}

impl PermissionsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionsMode::Scopes => "scopes",
            PermissionsMode::Custom => "custom",
        }
    }
}

impl std::str::FromStr for PermissionsMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "scopes" => Ok(PermissionsMode::Scopes),
            "custom" => Ok(PermissionsMode::Custom),
            other => Err(format!(
                "unknown permissions mode `{other}`; expected scopes or custom"
            )),
        }
    }
}

/// What a key may do beyond (or short of) its scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Permissions {
    pub mode: PermissionsMode,
    /// Action ids allowed on top of the scopes (custom mode).
    pub allow: Vec<String>,
    /// Action ids refused whatever the scopes say (custom mode).
    pub block: Vec<String>,
}

impl Permissions {
    /// Builds permissions from allow/block lists: any list makes the mode custom. Every id
    /// must name an action of the catalog.
    pub fn parse(
        mode: Option<PermissionsMode>,
        allow: Vec<String>,
        block: Vec<String>,
        catalog: &Catalog,
    ) -> Result<Self> {
        for (field, ids) in [("allow", &allow), ("block", &block)] {
            if let Some(unknown) = ids.iter().find(|id| catalog.get(id).is_none()) {
                return Err(Error::validation(
                    field,
                    format!("no action `{unknown}` in the catalog"),
                ));
            }
        }
        let mode = mode.unwrap_or(if allow.is_empty() && block.is_empty() {
            PermissionsMode::Scopes
        } else {
            PermissionsMode::Custom
        });
        let clean = |mut ids: Vec<String>| {
            ids.sort();
            ids.dedup();
            ids
        };
        Ok(Permissions {
            mode,
            allow: clean(allow),
            block: clean(block),
        })
    }
}

/// A stored API key. The secret is never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ApiKey {
    pub id: Id,
    pub workspace_id: Id,
    /// The site the key acts for.
    pub site_id: Id,
    pub name: String,
    /// The first characters of the secret, to recognise a key in lists and logs.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub permissions: Permissions,
    /// Requests a minute; `null` for the install's default.
    pub rate_limit: Option<u32>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub rotated_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A fresh secret with what the store keeps of it.
#[derive(Debug, Clone)]
pub struct Secret {
    /// The full key, handed to the operator once.
    pub plaintext: String,
    pub hash: String,
    pub prefix: String,
}

impl Secret {
    pub fn generate() -> Self {
        let plaintext = format!("{PREFIX}{}", random_base62(SECRET_LEN));
        Secret {
            hash: hash(&plaintext),
            prefix: plaintext[..PREFIX.len() + 8].to_string(),
            plaintext,
        }
    }
}

/// How stale a key's `last_used_at` may get: it is written at most this often (milliseconds).
pub const KEY_TOUCH_INTERVAL_MS: i64 = 60_000;

/// The hex SHA-256 of a presented secret, which is what key lookups use.
pub fn hash(secret: &str) -> String {
    hex_sha256(digest(secret))
}

/// The SHA-256 of a presented secret, as bytes: what the key cache is keyed by, so that a key
/// found there costs no hex digits.
pub(crate) fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A SHA-256 digest as 64 lowercase hex digits, written from a table rather than one `char` at
/// a time (`hex::encode`'s iterator was 0.4% of a point read's CPU).
pub(crate) fn hex_sha256(digest: [u8; 32]) -> String {
    let mut digits = [0u8; 64];
    // 32 bytes always fill 64 digits, and hex digits are ASCII.
    let _ = hex::encode_to_slice(digest, &mut digits);
    String::from_utf8_lossy(&digits).into_owned()
}

/// Whether a presented token is shaped like one of our secrets (checked before any lookup).
pub fn looks_like_secret(token: &str) -> bool {
    token.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == SECRET_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A key to insert, already validated.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub workspace_id: Id,
    pub site_id: Id,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub permissions: Permissions,
    pub rate_limit: Option<u32>,
    pub hash: String,
    pub prefix: String,
}

/// Who is calling: the verified key and what it may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub key_id: Id,
    pub key_name: String,
    pub workspace_id: Id,
    pub site_id: Id,
    pub scopes: Vec<Scope>,
    pub permissions: Permissions,
    pub rate_limit: Option<u32>,
}

impl Principal {
    pub fn from_key(key: &ApiKey) -> Self {
        Principal {
            key_id: key.id,
            key_name: key.name.clone(),
            workspace_id: key.workspace_id,
            site_id: key.site_id,
            scopes: key.scopes.clone(),
            permissions: key.permissions.clone(),
            rate_limit: key.rate_limit,
        }
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether the key may run `action`: 403 `action_blocked:<id>` or `scope_required:<scope>`
    /// when not.
    pub fn check(&self, action: &Action) -> Result<()> {
        let custom = self.permissions.mode == PermissionsMode::Custom;
        if custom && self.permissions.block.contains(&action.id) {
            return Err(Error::ActionBlocked(action.id.clone()));
        }
        match action.scope {
            None => Ok(()),
            Some(scope) if self.has(scope) => Ok(()),
            Some(_) if custom && self.permissions.allow.contains(&action.id) => Ok(()),
            Some(scope) => Err(Error::ScopeRequired(scope)),
        }
    }
}

/// What a new key is.
#[derive(Debug, Clone)]
pub struct KeySpec<'a> {
    pub workspace: Id,
    /// The site it acts for: id, site key or domain; the workspace's first site when `None`.
    pub site: Option<&'a str>,
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub permissions: Permissions,
    /// Requests a minute; `None` for the install's default.
    pub rate_limit: Option<u32>,
}

/// Changes to a key; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    pub name: Option<String>,
    pub site: Option<String>,
    pub scopes: Option<Vec<Scope>>,
    pub mode: Option<PermissionsMode>,
    pub allow: Option<Vec<String>>,
    pub block: Option<Vec<String>>,
    /// `Some(0)` goes back to the install's default.
    pub rate_limit: Option<u32>,
}

fn clean_scopes(scopes: &[Scope]) -> Result<Vec<Scope>> {
    if scopes.is_empty() {
        return Err(Error::validation(
            "scopes",
            "at least one scope is required",
        ));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// A key just created or rotated, with its secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub secret: String,
}

impl crate::Opsiq {
    /// Creates a key in `workspace` acting for `site` (id, site key or domain; the workspace's
    /// first site when not given).
    pub fn create_key(
        &self,
        workspace: Id,
        site: Option<&str>,
        name: &str,
        scopes: &[Scope],
    ) -> Result<IssuedKey> {
        self.create_key_with(KeySpec {
            workspace,
            site,
            name,
            scopes,
            permissions: Permissions::default(),
            rate_limit: None,
        })
    }

    /// Creates a key in a workspace acting for a site (id, site key or domain; the workspace's
    /// first site when not given), with custom permissions if any.
    pub fn create_key_with(&self, spec: KeySpec<'_>) -> Result<IssuedKey> {
        let name = text("name", spec.name, 200, true)?;
        let scopes = clean_scopes(spec.scopes)?;
        let workspace = spec.workspace;
        self.read(|r| r.workspace(workspace))?
            .ok_or_else(|| Error::not_found("workspace", workspace))?;
        let site = self.key_site(workspace, spec.site)?;
        let secret = Secret::generate();
        let new = NewKey {
            workspace_id: workspace,
            site_id: site,
            name,
            scopes,
            permissions: spec.permissions,
            rate_limit: spec.rate_limit.filter(|n| *n > 0),
            hash: secret.hash.clone(),
            prefix: secret.prefix.clone(),
        };
        let key = self.write(move |w| {
            let id = w.insert_key(&new, Timestamp::now())?;
            w.key(id)?
                .ok_or_else(|| Error::Internal("key vanished".into()))
        })?;
        Ok(IssuedKey {
            key,
            secret: secret.plaintext,
        })
    }

    /// Changes a key's name, site, scopes or permissions; its secret stays.
    pub fn update_key(&self, id: Id, update: KeyUpdate) -> Result<ApiKey> {
        let current = self
            .read(|r| r.key(id))?
            .ok_or_else(|| Error::not_found("key", id))?;
        if current.revoked_at.is_some() {
            return Err(Error::validation(
                "id",
                format!("key {id} is revoked; create a new key instead"),
            ));
        }
        let mut key = current.clone();
        if let Some(name) = &update.name {
            key.name = text("name", name, 200, true)?;
        }
        if let Some(scopes) = &update.scopes {
            key.scopes = clean_scopes(scopes)?;
        }
        if update.site.is_some() {
            key.site_id = self.key_site(key.workspace_id, update.site.as_deref())?;
        }
        if update.mode.is_some() || update.allow.is_some() || update.block.is_some() {
            let allow = update.allow.unwrap_or(current.permissions.allow);
            let block = update.block.unwrap_or(current.permissions.block);
            key.permissions = Permissions::parse(update.mode, allow, block, self.catalog())?;
        }
        if let Some(limit) = update.rate_limit {
            key.rate_limit = (limit > 0).then_some(limit);
        }
        self.write(move |w| {
            w.update_key(&key)?;
            w.key(id)?
                .ok_or_else(|| Error::Internal("key vanished".into()))
        })
    }

    fn key_site(&self, workspace: Id, site: Option<&str>) -> Result<Id> {
        match site {
            Some(reference) => Ok(self.find_site(workspace, reference)?.id),
            None => self
                .list_sites(Some(workspace))?
                .first()
                .map(|s| s.id)
                .ok_or_else(|| {
                    Error::validation(
                        "site",
                        format!("workspace {workspace} has no site; add one first"),
                    )
                }),
        }
    }

    pub fn list_keys(&self, workspace: Option<Id>) -> Result<Vec<ApiKey>> {
        self.read(|r| r.keys(workspace))
    }

    /// Gives a key a new secret; the old one stops working at once.
    pub fn rotate_key(&self, id: Id) -> Result<IssuedKey> {
        let secret = Secret::generate();
        let (hash, prefix) = (secret.hash.clone(), secret.prefix.clone());
        let key = self.write(move |w| {
            let key = w.key(id)?.ok_or_else(|| Error::not_found("key", id))?;
            if key.revoked_at.is_some() {
                return Err(Error::validation(
                    "id",
                    format!("key {id} is revoked; create a new key instead"),
                ));
            }
            w.replace_key_secret(id, &hash, &prefix, Timestamp::now())?;
            w.key(id)?
                .ok_or_else(|| Error::Internal("key vanished".into()))
        })?;
        Ok(IssuedKey {
            key,
            secret: secret.plaintext,
        })
    }

    /// Revokes a key for good.
    pub fn revoke_key(&self, id: Id) -> Result<ApiKey> {
        self.write(move |w| {
            w.key(id)?.ok_or_else(|| Error::not_found("key", id))?;
            w.revoke_key(id, Timestamp::now())?;
            w.key(id)?
                .ok_or_else(|| Error::Internal("key vanished".into()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_opq_and_40_base62_characters_hashed_with_sha256() {
        let s = Secret::generate();
        assert!(looks_like_secret(&s.plaintext), "{}", s.plaintext);
        assert_eq!(s.hash.len(), 64);
        assert!(s.plaintext.starts_with(&s.prefix));
        assert_ne!(Secret::generate().plaintext, s.plaintext);
        // The published SHA-256 of "abc".
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_tokens_are_rejected_before_lookup() {
        assert!(!looks_like_secret("opq_short"));
        assert!(!looks_like_secret(&format!("sk_{}", "a".repeat(40))));
        assert!(!looks_like_secret(&format!("opq_{}!", "a".repeat(39))));
    }
}
