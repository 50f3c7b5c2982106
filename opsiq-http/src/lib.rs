//! OpsIQ's HTTP adapter: a small hyper 1.x server that turns requests into calls of the core's
//! API pipeline and its answers back into responses.
//!
//! Architecture invariant: no business rules and no SQL here. The routing table is built from
//! the core's action catalog; everything a route means is decided by `opsiq_core::api`.

mod pool;
mod router;
mod server;
mod webhooks;

pub use router::{Routed, Router};
pub use server::{ServerConfig, run};
pub use webhooks::{WebhookConfig, is_public, run_worker};
