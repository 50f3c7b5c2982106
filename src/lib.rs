//! OpsIQ, the umbrella crate: re-exports the core, the HTTP adapter and the CLI so that one
//! dependency brings the whole platform. See ARCHITECTURE.md for how the crates fit.

pub use opsiq_cli as cli;
pub use opsiq_core as core;
pub use opsiq_http as http;
