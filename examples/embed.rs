//! Embedding `opsiq-core` in your own program: no HTTP, no async runtime.
//!
//! Opens a database, makes a key, and runs catalog actions in process through
//! `Opsiq::execute`, with the same scope checks, validation and audit rows as the REST API.
//! Run it with `cargo run --example embed`.

use opsiq::core::keys::Principal;
use opsiq::core::types::Id;
use opsiq::core::{Opsiq, Scope};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opsiq = Opsiq::open(dir.path().join("opsiq.db"))?;
    opsiq.bootstrap()?;

    let issued = opsiq.create_key(
        Id(1),
        None,
        "embedded",
        &[
            Scope::ContactsWrite,
            Scope::TicketsWrite,
            Scope::TicketsRead,
        ],
    )?;
    let me: Principal = opsiq.authenticate(Some(&format!("Bearer {}", issued.secret)))?;

    let contact = opsiq.execute(
        &me,
        "contacts.create",
        json!({"name": "Ada Lovelace", "email": "ada@example.com"}),
    )?;
    println!("contact: {}", contact.data);

    let ticket = opsiq.execute(
        &me,
        "tickets.create",
        json!({"customer_email": "ada@example.com", "subject": "Need help", "status": "resolved"}),
    )?;
    assert_eq!(
        ticket.data["status"], "open",
        "new tickets always start open"
    );
    println!("ticket: {}", ticket.data);

    // The same errors as the API: this key cannot read contacts.
    let denied = opsiq.execute(&me, "contacts.list", json!({})).unwrap_err();
    println!("denied: {} ({})", denied.code(), denied.status());
    assert_eq!(denied.code(), "scope_required:contacts.read");
    Ok(())
}
