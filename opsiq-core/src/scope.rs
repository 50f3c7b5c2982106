//! API key scopes: the closed vocabulary of what a key may do.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One scope of the public scope table.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Scope {
    #[serde(rename = "contacts.read")]
    ContactsRead,
    #[serde(rename = "contacts.write")]
    ContactsWrite,
    #[serde(rename = "tickets.read")]
    TicketsRead,
    #[serde(rename = "tickets.write")]
    TicketsWrite,
    #[serde(rename = "chats.read")]
    ChatsRead,
    #[serde(rename = "analytics.read")]
    AnalyticsRead,
    #[serde(rename = "proactive.write")]
    ProactiveWrite,
    #[serde(rename = "kb.write")]
    KbWrite,
    #[serde(rename = "kb.read")]
    KbRead,
    /// Administration of the install's automation (proactive rules, webhooks).
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 10] = [
        Scope::ContactsRead,
        Scope::ContactsWrite,
        Scope::TicketsRead,
        Scope::TicketsWrite,
        Scope::ChatsRead,
        Scope::AnalyticsRead,
        Scope::ProactiveWrite,
        Scope::KbWrite,
        Scope::KbRead,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ContactsRead => "contacts.read",
            Scope::ContactsWrite => "contacts.write",
            Scope::TicketsRead => "tickets.read",
            Scope::TicketsWrite => "tickets.write",
            Scope::ChatsRead => "chats.read",
            Scope::AnalyticsRead => "analytics.read",
            Scope::ProactiveWrite => "proactive.write",
            Scope::KbWrite => "kb.write",
            Scope::KbRead => "kb.read",
            Scope::Admin => "admin",
        }
    }

    /// Parses a comma-separated list such as `contacts.read,tickets.write`, deduplicated and
    /// sorted. An empty list is an error: a key without scopes can do nothing.
    pub fn parse_list(list: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            scopes.push(part.parse::<Scope>()?);
        }
        if scopes.is_empty() {
            return Err("at least one scope is required".into());
        }
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }

    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scope `{s}`; known scopes: {}",
                    Scope::ALL.map(Scope::as_str).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_name() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            assert_eq!(serde_json::to_value(scope).unwrap(), scope.as_str());
        }
    }

    #[test]
    fn scope_lists_are_deduplicated_and_reject_unknown_names() {
        assert_eq!(
            Scope::parse_list("tickets.write, contacts.read,tickets.write"),
            Ok(vec![Scope::ContactsRead, Scope::TicketsWrite])
        );
        assert!(
            Scope::parse_list("tickets.admin")
                .unwrap_err()
                .contains("tickets.admin")
        );
        assert!(Scope::parse_list(" , ").is_err());
    }
}
