//! Every parser of untrusted text: e-mail addresses, timestamps, scope lists, webhook URLs,
//! proactive rule files, idempotency keys, visitor ids, key tokens and webhook signatures.
//! A panic is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use opsiq_core::types::{Email, Timestamp};
use opsiq_core::{Scope, chats, idempotency, keys, proactive, webhooks};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Email::parse(text);
    let _ = Timestamp::parse_rfc3339(text);
    let _ = Scope::parse_list(text);
    let _ = webhooks::parse_url(text);
    let _ = proactive::parse_rule_json(text);
    let _ = idempotency::parse_key(text);
    let _ = chats::parse_visitor_id(text);
    let _ = keys::looks_like_secret(text);
    let mut parts = text.splitn(4, '\n');
    let (id, ts, sig, body) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let _ = webhooks::verify(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        id,
        ts,
        sig,
        body,
        0,
        i64::MAX,
    );
    let _ = webhooks::verify(text, "evt_1", "1", "v1,AAAA", "{}", 1, 300);
});
