//! OpsIQ's domain core: the typed model, the services behind every API action, the action
//! catalog that drives every door (REST, the action endpoint, OpenAPI, `meta.me`), the storage
//! traits and the bundled SQLite store.
//!
//! Architecture invariant: this crate knows nothing of HTTP, hyper or tokio. It is synchronous;
//! adapters call it from wherever they like (a blocking thread pool, a CLI, a test).

pub mod analytics;
pub mod api;
pub mod audit;
pub mod catalog;
pub mod chats;
pub mod contacts;
pub mod diagnostics;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod kb;
pub mod keys;
pub mod meta;
pub mod openapi;
pub mod proactive;
pub mod ratelimit;
pub mod scope;
pub mod service;
pub mod store;
pub mod tenancy;
pub mod tickets;
pub mod types;
pub mod webhooks;

pub use error::{Error, Result};
pub use scope::Scope;
pub use service::{Call, Opsiq};
