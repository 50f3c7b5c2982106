//! How a Rust receiver verifies an OpsIQ webhook, written from the Standard Webhooks spec
//! alone (<https://www.standardwebhooks.com>), with nothing of OpsIQ's own code.
//!
//! OpsIQ sends `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256>`, several separated by spaces during a secret rotation). The
//! signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`, the key is the base64
//! after `whsec_` in your endpoint's secret. Verify the raw body bytes before parsing them,
//! reject old timestamps, and deduplicate by `webhook-id` (retries and replays reuse it).
//!
//! Run it with `cargo run --example verify_webhook`: it checks the spec's published test vector.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a delivery's timestamp may be from the receiver's clock.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Verifies one delivery. `now` is the receiver's clock in unix seconds.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "the secret is not whsec_ followed by base64".to_string())?;
    let sent: i64 = timestamp
        .parse()
        .map_err(|_| "webhook-timestamp is not a number".to_string())?;
    if (now - sent).abs() > TOLERANCE_SECONDS {
        return Err("webhook-timestamp is too far from now (replayed or clock skew)".into());
    }
    for candidate in signatures.split(' ') {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(signature) = STANDARD.decode(encoded) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err("no v1 signature matches".into())
}

#[allow(dead_code)]
fn main() {
    // The test vector published with the Standard Webhooks specification.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (id, timestamp) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330");
    let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let body = br#"{"test": 2432232314}"#;
    verify(secret, id, timestamp, signature, body, 1614265330)
        .expect("the published test vector verifies");
    assert!(
        verify(
            secret,
            id,
            timestamp,
            signature,
            br#"{"test": 2432232315}"#,
            1614265330
        )
        .is_err()
    );
    assert!(verify(secret, id, timestamp, signature, body, 1614265330 + 3600).is_err());
    println!(
        "verified the Standard Webhooks test vector; a tampered body and an old timestamp were rejected"
    );
}
