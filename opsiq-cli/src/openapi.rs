//! `opsiq openapi`: prints the OpenAPI 3.1 document the server publishes at
//! `/api/v1/openapi.php`, generated from the built-in catalog (no database needed).

use std::io::{ErrorKind, Write};

use opsiq_core::catalog::Catalog;
use opsiq_core::{Error, Result};

pub fn run() -> Result<()> {
    let text = render()?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        // `opsiq openapi | head` closes the pipe early, which is not a failure.
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Error::Internal(format!(
            "cannot write the OpenAPI document: {e}"
        ))),
        _ => Ok(()),
    }
}

/// The document as pretty JSON.
fn render() -> Result<String> {
    let document = opsiq_core::openapi::document(&Catalog::builtin());
    serde_json::to_string_pretty(&document)
        .map_err(|e| Error::Internal(format!("cannot render the OpenAPI document: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_document_the_server_serves() {
        let printed: serde_json::Value = serde_json::from_str(&render().unwrap()).unwrap();
        assert_eq!(printed, opsiq_core::openapi::document(&Catalog::builtin()));
        assert_eq!(printed["openapi"], "3.1.0");
    }
}
