//! Idempotent writes: a POST carrying `Idempotency-Key` runs once. A retry with the same key and
//! the same request gets the stored response (`Idempotent-Replayed: true`) and writes nothing;
//! the same key for a different request is 422 `idempotency_key_reused`; a retry while the first
//! is still running is 409 `idempotency_key_in_use`. Keys expire after a day.
//!
//! The claim is a row written before the action runs. The action's own write marks it committed
//! in the same transaction (see `service::Call::enter`) and, for actions that answer with what
//! they wrote (`Opsiq::write_audited`), stores the answer there too; the answer actually sent is
//! stored right after. So a retry replays the answer even after a crash between the commit and
//! the response; where no answer could be stored with the change, the retry learns that the
//! change was committed (409) and never writes twice.

use sha2::{Digest, Sha256};

use crate::types::{Id, Timestamp};
use crate::{Error, Result};

/// How long a key is remembered.
pub const TTL_MS: i64 = 24 * 3600 * 1000;

/// A stored idempotency record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub action: String,
    pub fingerprint: String,
    /// Whether the first request's change was committed.
    pub committed: bool,
    /// The first request's answer, once sent.
    pub response: Option<(u16, String)>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: this request runs.
    Claimed,
    /// The key was used before.
    Existing(Record),
}

/// Checks an `Idempotency-Key` header: 1 to 255 printable ASCII characters.
pub fn parse_key(raw: &str) -> Result<String> {
    if (1..=255).contains(&raw.len()) && raw.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        Ok(raw.to_string())
    } else {
        Err(Error::parameter(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        ))
    }
}

/// What makes two requests the same: the action and everything the request said.
pub fn fingerprint(action: &str, parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    hash.update(action.as_bytes());
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    crate::keys::hex_sha256(hash.finalize().into())
}

/// The key's claim on the write that carries it, for the current-call hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub key_id: Id,
    pub idem_key: String,
}

/// The oldest time a remembered key may have.
pub fn expiry(now: Timestamp) -> Timestamp {
    Timestamp(now.0 - TTL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_up_to_255() {
        assert!(parse_key("order-42:retry").is_ok());
        for bad in ["", "é", "a\u{7f}", &"k".repeat(256)] {
            assert_eq!(
                parse_key(bad).unwrap_err().code(),
                "invalid_parameter:Idempotency-Key",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let a = fingerprint("tickets.create", &[b"{}", b""]);
        assert_eq!(a, fingerprint("tickets.create", &[b"{}", b""]));
        assert_ne!(a, fingerprint("contacts.create", &[b"{}", b""]));
        assert_ne!(
            a,
            fingerprint("tickets.create", &[b"{", b"}"]),
            "parts are length-delimited"
        );
    }
}
