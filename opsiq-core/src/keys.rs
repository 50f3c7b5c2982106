//! API keys: `opq_` secrets shown once, stored only as a SHA-256 hash and a display prefix.

use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::scope::Scope;
use crate::types::{Id, Timestamp, random_base62, text};
use crate::{Error, Result};

/// The length of the random part of a key secret (base62, about 238 bits).
pub const SECRET_LEN: usize = 40;
const PREFIX: &str = "opq_";

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

/// The hex SHA-256 of a presented secret, which is what key lookups use.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
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
}

impl Principal {
    pub fn from_key(key: &ApiKey) -> Self {
        Principal {
            key_id: key.id,
            key_name: key.name.clone(),
            workspace_id: key.workspace_id,
            site_id: key.site_id,
            scopes: key.scopes.clone(),
        }
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
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
        let name = text("name", name, 200, true)?;
        if scopes.is_empty() {
            return Err(Error::validation(
                "scopes",
                "at least one scope is required",
            ));
        }
        self.read(|r| r.workspace(workspace))?
            .ok_or_else(|| Error::not_found("workspace", workspace))?;
        let site = match site {
            Some(reference) => self.find_site(workspace, reference)?,
            None => self
                .list_sites(Some(workspace))?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    Error::validation(
                        "site",
                        format!("workspace {workspace} has no site; add one first"),
                    )
                })?,
        };
        let secret = Secret::generate();
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let new = NewKey {
            workspace_id: workspace,
            site_id: site.id,
            name,
            scopes,
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
